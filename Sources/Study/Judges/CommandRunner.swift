// CommandRunner: runs an external process with JSONL on stdin and reads JSONL from stdout.
import Foundation
import Pipeline

/// An external command: executable plus arguments (no shell unless you call one).
public struct ExternalCommand: Sendable, Codable, Equatable, CustomStringConvertible {
    /// Path of the executable, or a name looked up on PATH through `/usr/bin/env`.
    public var executable: String
    /// Arguments.
    public var arguments: [String]
    /// Kill the process after this many seconds (nil = no limit).
    public var timeoutSeconds: Double?

    /// A command.
    public init(executable: String, arguments: [String] = [], timeoutSeconds: Double? = nil) {
        self.executable = executable
        self.arguments = arguments
        self.timeoutSeconds = timeoutSeconds
    }

    /// A command line run by `/bin/sh -c` (for pipelines and quoting written in a config file).
    public static func shell(_ commandLine: String, timeoutSeconds: Double? = nil) -> ExternalCommand {
        ExternalCommand(executable: "/bin/sh", arguments: ["-c", commandLine], timeoutSeconds: timeoutSeconds)
    }

    /// The command line as text (for messages).
    public var description: String { ([executable] + arguments).joined(separator: " ") }
}

/// Thread-safe holder for results produced on helper threads.
private final class ResultBox: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    private var value = Data()
    func set(_ d: Data) { lock.lock(); value = d; lock.unlock() }
    func get() -> Data { lock.lock(); defer { lock.unlock() }; return value }
}

/// Runs external commands speaking JSONL.
public enum CommandRunner {
    /// Writes `input` (one JSON object per line) to the command's stdin, closes it, and returns
    /// the non-empty stdout lines parsed as JSON with their 1-based output line numbers.
    /// - Throws: `StudyError.externalCommand` when the command cannot start, times out, exits
    ///   non-zero (with the end of stderr) or prints a line that is not JSON.
    public static func runJSONL(_ command: ExternalCommand, input: [Value]) throws -> [(line: Int, value: Value)] {
        // Writing to a command that already exited raises SIGPIPE, which would kill this process;
        // ignore it process-wide so the failure surfaces as an exit status / count error instead.
        signal(SIGPIPE, SIG_IGN)
        let process = Process()
        if command.executable.contains("/") {
            process.executableURL = URL(fileURLWithPath: command.executable)
            process.arguments = command.arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [command.executable] + command.arguments
        }
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var payload = Data()
        for value in input {
            payload.append(try encoder.encode(value))
            payload.append(0x0A)
        }
        do { try process.run() } catch {
            throw StudyError.externalCommand(command: command.description, line: nil, reason: "cannot start: \(error.localizedDescription)")
        }
        let group = DispatchGroup()
        let errBox = ResultBox()
        let writer = stdin.fileHandleForWriting
        let errReader = stderr.fileHandleForReading
        let body = payload
        group.enter()
        DispatchQueue.global().async {
            // A command that exits early closes its stdin; the write then fails, which we ignore
            // here and report through the exit status / output count instead.
            try? writer.write(contentsOf: body)
            try? writer.close()
            group.leave()
        }
        group.enter()
        DispatchQueue.global().async {
            errBox.set(errReader.readDataToEndOfFile())
            group.leave()
        }
        let timedOut = ResultBox()
        if let limit = command.timeoutSeconds {
            DispatchQueue.global().asyncAfter(deadline: .now() + limit) { [process] in
                if process.isRunning { timedOut.set(Data([1])); process.terminate() }
            }
        }
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        group.wait()
        let errText = String(decoding: errBox.get().suffix(2000), as: UTF8.self)
        if !timedOut.get().isEmpty {
            throw StudyError.externalCommand(command: command.description, line: nil,
                                             reason: "timed out after \(command.timeoutSeconds ?? 0) s")
        }
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            throw StudyError.externalCommand(command: command.description, line: nil,
                                             reason: "exited with status \(process.terminationStatus); stderr: \(errText)")
        }
        var lines: [(Int, Value)] = []
        for (i, raw) in out.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
            if raw.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            do {
                lines.append((i + 1, try JSONReader.parse(Data(raw), file: "stdout", baseLine: i + 1).value))
            } catch {
                throw StudyError.externalCommand(command: command.description, line: i + 1,
                                                 reason: "not a JSON object: \(String(decoding: raw.prefix(200), as: UTF8.self))")
            }
        }
        return lines
    }
}
