import Foundation

/// Runs another program (age, age-keygen, zstd, python3) by name from PATH.
public enum Tool {
    public struct Failed: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// Runs `arguments` with `input` on stdin; returns stdout. Throws when it exits non-zero.
    @discardableResult
    public static func run(_ arguments: [String], input: [UInt8]? = nil) throws -> [UInt8] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        let stdin = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input == nil ? FileHandle.nullDevice : stdin
        try process.run()
        if let input {
            DispatchQueue.global().async {
                stdin.fileHandleForWriting.write(Data(input))
                try? stdin.fileHandleForWriting.close()
            }
        }
        let (data, errData) = readBoth(out, err)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failed(message: "\(arguments.joined(separator: " ")): \(String(decoding: errData, as: UTF8.self))")
        }
        return Array(data)
    }
}
