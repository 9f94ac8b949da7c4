public enum Supabackup {
    /// The tool's version, recorded in every manifest.
    public static let version = "0.1.0"
}
