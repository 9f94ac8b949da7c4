import Foundation

/// Runs the built `supabackup` executable as a user would.
public enum CLI {
    public struct Result {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        /// The last non-empty stdout line.
        public var lastLine: String { stdout.split(separator: "\n").last.map(String.init) ?? "" }

        public init(status: Int32, stdout: String, stderr: String) {
            self.status = status
            self.stdout = stdout
            self.stderr = stderr
        }
    }

    public static var binary: String {
        if let path = ProcessInfo.processInfo.environment["SUPABACKUP_BIN"] { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/supabackup").path
    }

    /// Starts the executable without waiting: stdout and stderr are the returned pipes.
    /// `DATABASE_URL` is removed from the inherited environment unless `environment` sets it.
    public static func start(
        _ arguments: [String], environment: [String: String] = [:], directory: String? = nil
    ) throws -> (Process, out: Pipe, err: Pipe) {
        let process = Process()
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = TestJobs.arguments(arguments)
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "DATABASE_URL")
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return (process, out, err)
    }

    public static func run(_ arguments: [String], environment: [String: String] = [:], directory: String? = nil)
        throws -> Result
    {
        let (process, out, err) = try start(arguments, environment: environment, directory: directory)
        let (outData, errData) = readBoth(out, err)
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
    }
}

/// Reads a child's stdout and stderr to their ends, concurrently, so neither pipe fills up and
/// blocks the child.
func readBoth(_ out: Pipe, _ err: Pipe) -> (Data, Data) {
    nonisolated(unsafe) var errData = Data()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async {
        errData = err.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    return (outData, errData)
}
