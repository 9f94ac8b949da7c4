import ArgumentParser
import Foundation
import SupabackupKit

#if canImport(Glibc)
    import Glibc
#endif

/// `backup`: whom to encrypt to. Public keys only; the backup host needs no private key.
struct RecipientOptions: ParsableArguments {
    @Option(
        name: .customLong("recipient"),
        help: ArgumentHelp(
            "Encrypt every file to this age public key (repeatable; default: $SUPABACKUP_RECIPIENTS, space-separated).",
            valueName: "age1..."))
    var recipients: [String] = []

    @Option(
        name: .customLong("recipients-file"),
        help: ArgumentHelp(
            "Encrypt to the age public keys in this file, one per line (repeatable).", valueName: "file"))
    var recipientsFiles: [String] = []

    /// The recipients from the options, else from `SUPABACKUP_RECIPIENTS`; empty: no encryption.
    func resolve() throws -> [AgeRecipient] {
        var out = try recipients.map { try AgeRecipient(parsing: $0) }
        for file in recipientsFiles {
            // Each file must hold a key: an empty one is a mistake even beside other recipients.
            let listed = try AgeRecipient.parseList(try readKeyFile(file), source: file)
            if listed.isEmpty { throw UsageError("\(file) holds no age public key") }
            out += listed
        }
        if out.isEmpty && recipientsFiles.isEmpty,
            let variable = ProcessInfo.processInfo.environment["SUPABACKUP_RECIPIENTS"], !variable.isEmpty
        {
            out = try AgeRecipient.parseList(
                variable.split(whereSeparator: { " ,\n\t".contains($0) }).joined(separator: "\n"),
                source: "SUPABACKUP_RECIPIENTS")
        }
        return Array(Set(out)).sorted { $0.description < $1.description }
    }
}

/// `restore`, `cat`, `verify`: what decrypts an encrypted backup. Keys come from files only,
/// never from argv.
struct IdentityOptions: ParsableArguments {
    @Option(
        name: .customLong("identity"),
        help: ArgumentHelp(
            "age identity file (age-keygen, or supabackup keygen) for encrypted backups; repeatable (default: $SUPABACKUP_IDENTITY_FILE). A passphrase-protected file asks on the terminal, or reads $SUPABACKUP_PASSPHRASE_FILE.",
            valueName: "file"))
    var identityFiles: [String] = []

    func resolve() throws -> [AgeIdentity] {
        var files = identityFiles
        if files.isEmpty, let file = ProcessInfo.processInfo.environment["SUPABACKUP_IDENTITY_FILE"], !file.isEmpty {
            files = [file]
        }
        return try Self.load(files)
    }

    static func load(_ files: [String]) throws -> [AgeIdentity] {
        try files.flatMap { file in
            try AgeIdentity.parseFile(try readKeyBytes(file), source: file) { try passphrase(for: file) }
        }
    }

    private static func passphrase(for file: String) throws -> String {
        if let path = ProcessInfo.processInfo.environment["SUPABACKUP_PASSPHRASE_FILE"], !path.isEmpty {
            let text = try readKeyFile(path)
            // The first line, as a passphrase file written with echo holds a newline.
            return String(text.split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
        }
        guard isatty(STDIN_FILENO) == 1, let answer = getpass("Passphrase for identity file \(file): ") else {
            throw UsageError(
                "\(file) is passphrase-protected: set SUPABACKUP_PASSPHRASE_FILE to a file holding the passphrase (there is no terminal to ask on)"
            )
        }
        return String(cString: answer)
    }
}

/// Reads a small key file; a missing or unreadable one is a usage error naming it.
private func readKeyFile(_ path: String) throws -> String {
    String(decoding: try readKeyBytes(path), as: UTF8.self)
}

/// The bytes of a key file (an identity file may itself be a binary age file).
private func readKeyBytes(_ path: String) throws -> [UInt8] {
    let data: Data
    do {
        data = try Data(contentsOf: URL(fileURLWithPath: path))
    } catch {
        throw UsageError(
            "cannot read \(path): \((error as NSError).localizedFailureReason ?? "no such file or not readable")")
    }
    guard data.count < 1 << 20 else { throw UsageError("\(path) is too large to be a key file") }
    return Array(data)
}

struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Make an age key pair for encrypted backups (as age-keygen does).",
        discussion: """
            Writes the identity file (private key; mode 0600) and prints the public key to give to \
            `backup --recipient`. With -y, prints the public keys of an existing identity file. Files \
            work with age itself: age -d -i FILE.
            """)

    @Option(
        name: .customShort("o"),
        help: ArgumentHelp("Write the identity file here (default: stdout).", valueName: "file"))
    var output: String?

    @Option(
        name: .customShort("y"), help: ArgumentHelp("Print the public keys of this identity file.", valueName: "file"))
    var convert: String?

    func run() throws {
        try Terminal.run {
            if let convert {
                for identity in try IdentityOptions.load([convert]) {
                    if let recipient = identity.recipient { print(recipient) }
                }
                return
            }
            let identity = AgeIdentity.generate()
            let contents = identity.fileContents()
            if let output {
                let fd = open(output, O_WRONLY | O_CREAT | O_EXCL, 0o600)
                guard fd >= 0 else {
                    throw UsageError(
                        errno == EEXIST
                            ? "\(output) exists; not overwriting a key"
                            : "cannot create \(output): \(String(cString: strerror(errno)))")
                }
                let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
                try handle.write(contentsOf: Data(contents.utf8))
                try handle.synchronize()
                Terminal.stderr("Public key: \(identity.recipient!)")
            } else {
                print(contents, terminator: "")
            }
        }
    }
}
