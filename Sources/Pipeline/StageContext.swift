// What a running stage sees: resolved params, input paths, output directory, logger, progress, seed.
import Foundation

/// The resolved params of a stage instance, with typed accessors that fail with clear errors.
public struct StageParams: Sendable {
    public let values: [String: Value]
    public let instance: String

    public init(_ values: [String: Value], instance: String) {
        self.values = values
        self.instance = instance
    }

    private func fail(_ name: String, _ message: String) -> PipelineError {
        .stageInput(instance: instance, name: "params.\(name)", message: message)
    }

    /// The raw value; throws when absent.
    public func value(_ name: String) throws -> Value {
        guard let v = values[name], v != .null else {
            throw fail(name, "missing parameter" + Suggest.hint(name, values.keys))
        }
        return v
    }

    public func has(_ name: String) -> Bool { values[name].map { $0 != .null } ?? false }

    public func string(_ name: String) throws -> String {
        let v = try value(name)
        switch v {
        case let .string(s): return s
        case .int, .double, .bool: return v.description
        default: throw fail(name, "expected a string, got \(v.typeName)")
        }
    }

    public func int(_ name: String) throws -> Int {
        let v = try value(name)
        guard let i = v.intValue else { throw fail(name, "expected an integer, got \(v.typeName) \(v)") }
        return i
    }

    public func double(_ name: String) throws -> Double {
        let v = try value(name)
        guard let d = v.doubleValue else { throw fail(name, "expected a number, got \(v.typeName) \(v)") }
        return d
    }

    public func bool(_ name: String) throws -> Bool {
        let v = try value(name)
        guard let b = v.boolValue else { throw fail(name, "expected true or false, got \(v.typeName) \(v)") }
        return b
    }

    public func strings(_ name: String) throws -> [String] {
        let v = try value(name)
        if case let .string(s) = v { return [s] }
        guard let l = v.listValue else { throw fail(name, "expected a list of strings, got \(v.typeName)") }
        return try l.map {
            guard let s = $0.stringValue else { throw fail(name, "expected a list of strings, found \($0.typeName) \($0)") }
            return s
        }
    }

    public func doubles(_ name: String) throws -> [Double] {
        let v = try value(name)
        guard let l = v.listValue else { throw fail(name, "expected a list of numbers, got \(v.typeName)") }
        return try l.map {
            guard let d = $0.doubleValue else { throw fail(name, "expected a list of numbers, found \($0.typeName) \($0)") }
            return d
        }
    }

    public func string(_ name: String, default d: String) throws -> String { has(name) ? try string(name) : d }
    public func int(_ name: String, default d: Int) throws -> Int { has(name) ? try int(name) : d }
    public func double(_ name: String, default d: Double) throws -> Double { has(name) ? try double(name) : d }
    public func bool(_ name: String, default d: Bool) throws -> Bool { has(name) ? try bool(name) : d }
}

/// Appends timestamped lines to a stage's log file (kept in the store's `logs/`).
public final class StageLogger: @unchecked Sendable {
    // Guarded by `lock`: stages may log from worker threads of their own.
    private let lock = NSLock()
    private let handle: FileHandle?
    public let path: String

    public init(path: String) {
        self.path = path
        if !FileManager.default.fileExists(atPath: path) {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
        }
        handle = FileHandle(forWritingAtPath: path)
        handle?.seekToEndOfFile()
    }

    deinit { try? handle?.close() }

    /// Writes one line.
    public func log(_ message: String) {
        let stamp = ISO8601DateFormatter.string(from: Date(), timeZone: .gmt, formatOptions: [.withInternetDateTime])
        lock.lock()
        defer { lock.unlock() }
        handle?.write(Data("[\(stamp)] \(message)\n".utf8))
    }

    /// The underlying file handle (the shell kind sends a command's output here).
    public var fileHandle: FileHandle? { handle }
}

/// One artifact an input receives: its path and, for stage outputs, which instance produced it.
public struct InputArtifact: Sendable {
    public var url: URL
    /// The producing instance (`pgd[eps=0.1,layer=mid]`), nil for file inputs.
    public var instance: String?
    /// The producing instance's matrix values (empty for file inputs and stages without a matrix).
    public var matrix: [String: Value]

    public init(url: URL, instance: String?, matrix: [String: Value]) {
        self.url = url
        self.instance = instance
        self.matrix = matrix
    }
}

/// Everything a stage kind's `run` gets.
public final class StageContext: @unchecked Sendable {
    // Immutable after init except through the thread-safe logger/progress objects.
    public let instanceName: String
    public let stageName: String
    /// This instance's matrix values (empty without a matrix).
    public let matrix: [String: Value]
    public let params: StageParams
    public let seed: Int
    /// Where the stage writes its outputs (published atomically after `run` returns).
    public let outputDirectory: URL
    /// The directory of the pipeline file (relative paths in params are relative to it).
    public let workingDirectory: URL
    public let logger: StageLogger
    /// Input name -> paths (an upstream object's directory, one of its files, or a file input).
    public let inputMap: [String: [URL]]
    /// Input name -> artifacts with their producing instance (same order as `inputMap`).
    public let artifactMap: [String: [InputArtifact]]
    private let progressSink: ProgressSink

    public init(instanceName: String, stageName: String, matrix: [String: Value], params: StageParams, seed: Int,
                outputDirectory: URL, workingDirectory: URL, logger: StageLogger, inputs: [String: [InputArtifact]],
                progressSink: ProgressSink = .standardError) {
        self.instanceName = instanceName
        self.stageName = stageName
        self.matrix = matrix
        self.params = params
        self.seed = seed
        self.outputDirectory = outputDirectory
        self.workingDirectory = workingDirectory
        self.logger = logger
        self.inputMap = inputs.mapValues { $0.map(\.url) }
        self.artifactMap = inputs
        self.progressSink = progressSink
    }

    /// Input names, sorted.
    public var inputNames: [String] { inputMap.keys.sorted() }

    public func hasInput(_ name: String) -> Bool { inputMap[name] != nil }

    /// The single path of an input; throws when absent or a fan-in of several.
    public func input(_ name: String) throws -> URL {
        let all = try inputs(name)
        guard all.count == 1 else {
            throw PipelineError.stageInput(instance: instanceName, name: "inputs.\(name)",
                                           message: "expected one artifact, got \(all.count); use inputs(\"\(name)\")")
        }
        return all[0]
    }

    /// Every path of an input (a fan-in gives one per upstream instance, in instance order).
    public func inputs(_ name: String) throws -> [URL] {
        guard let urls = inputMap[name] else {
            throw PipelineError.stageInput(instance: instanceName, name: "inputs.\(name)",
                                           message: "no such input" + Suggest.hint(name, inputMap.keys)
                                               + (inputMap.isEmpty ? "" : "; inputs: " + inputNames.joined(separator: ", ")))
        }
        return urls
    }

    /// Every artifact of an input with the instance that produced it (for fan-in tables keyed by
    /// matrix values).
    public func artifacts(_ name: String) throws -> [InputArtifact] {
        _ = try inputs(name)
        return artifactMap[name] ?? []
    }

    /// The path of an output file (parent directories are created).
    public func output(_ relativePath: String) -> URL {
        let url = outputDirectory.appendingPathComponent(relativePath)
        try? FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        return url
    }

    /// Writes a line to the stage's log.
    public func log(_ message: String) { logger.log(message) }

    /// Starts a progress reporter for a loop of `total` steps.
    public func progress(_ label: String, total: Int) -> ProgressReporter {
        ProgressReporter(label: "\(instanceName): \(label)", total: total, sink: progressSink, logger: logger)
    }

    /// Writes `metrics.json` (shown by `auditgap show`).
    public func writeMetrics(_ metrics: [String: Value]) throws {
        let url = output("metrics.json")
        do { try Data(Value.map(metrics).prettyJSON.utf8).write(to: url) } catch {
            throw PipelineError.io(path: url.path, message: "cannot write metrics: \(error.localizedDescription)")
        }
    }
}
