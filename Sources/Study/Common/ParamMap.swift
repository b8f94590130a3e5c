// ParamMap: typed access to one map inside a stage's params (a source, a judge), with errors naming the key.
import Foundation
import Pipeline

/// A `map` value from a stage's params (e.g. `params.sources[2]`), read with typed accessors.
public struct ParamMap: Sendable {
    /// The map's entries.
    public let values: [String: Value]
    /// Where it sits, for messages (`params.sources[2]`).
    public let path: String

    /// Wraps `value`; throws when it is not a map.
    public init(_ value: Value, path: String) throws {
        guard case let .map(m) = value else {
            throw StudyError.invalidConfiguration("\(path): expected a map, got \(value.typeName)")
        }
        values = m
        self.path = path
    }

    /// The maps of a list param (`params.<name>`); empty when absent.
    public static func list(_ params: StageParams, _ name: String) throws -> [ParamMap] {
        guard params.has(name) else { return [] }
        guard case let .list(items) = try params.value(name) else {
            throw StudyError.invalidConfiguration("params.\(name): expected a list of maps")
        }
        return try items.enumerated().map { try ParamMap($1, path: "params.\(name)[\($0)]") }
    }

    public func has(_ key: String) -> Bool { values[key].map { $0 != .null } ?? false }

    /// Rejects keys outside `allowed` (catches typos in nested config).
    public func checkKeys(_ allowed: [String]) throws {
        for k in values.keys.sorted() where !allowed.contains(k) {
            throw StudyError.invalidConfiguration("\(path).\(k): unknown key '\(k)'" + Suggest.hint(k, allowed)
                                                  + "; allowed: \(allowed.joined(separator: ", "))")
        }
    }

    public func string(_ key: String) throws -> String {
        guard let v = values[key], v != .null else { throw StudyError.invalidConfiguration("\(path).\(key): missing") }
        switch v {
        case let .string(s): return s
        case .int, .double, .bool: return v.description
        default: throw StudyError.invalidConfiguration("\(path).\(key): expected a string, got \(v.typeName)")
        }
    }

    public func optionalString(_ key: String) throws -> String? { has(key) ? try string(key) : nil }

    public func bool(_ key: String, default d: Bool) throws -> Bool {
        guard has(key) else { return d }
        guard let b = values[key]?.boolValue else { throw StudyError.invalidConfiguration("\(path).\(key): expected true or false") }
        return b
    }

    public func int(_ key: String, default d: Int) throws -> Int {
        guard has(key) else { return d }
        guard let i = values[key]?.intValue else { throw StudyError.invalidConfiguration("\(path).\(key): expected an integer") }
        return i
    }

    public func double(_ key: String, default d: Double) throws -> Double {
        guard has(key) else { return d }
        guard let x = values[key]?.doubleValue else { throw StudyError.invalidConfiguration("\(path).\(key): expected a number") }
        return x
    }

    /// A string or a list of strings.
    public func strings(_ key: String) throws -> [String] {
        guard let v = values[key], v != .null else { return [] }
        if case let .string(s) = v { return [s] }
        guard case let .list(items) = v else { throw StudyError.invalidConfiguration("\(path).\(key): expected a string or a list of strings") }
        return try items.map {
            guard let s = $0.stringValue else { throw StudyError.invalidConfiguration("\(path).\(key): expected strings, found \($0.typeName)") }
            return s
        }
    }

    /// A map of strings to strings.
    public func stringMap(_ key: String) throws -> [String: String] {
        guard let v = values[key], v != .null else { return [:] }
        guard case let .map(m) = v else { throw StudyError.invalidConfiguration("\(path).\(key): expected a map") }
        var out: [String: String] = [:]
        for (k, x) in m {
            switch x {
            case let .string(s): out[k] = s
            case .int, .double, .bool: out[k] = x.description
            default: throw StudyError.invalidConfiguration("\(path).\(key).\(k): expected a string")
            }
        }
        return out
    }

    /// A nested map.
    public func map(_ key: String) throws -> ParamMap? {
        guard let v = values[key], v != .null else { return nil }
        return try ParamMap(v, path: "\(path).\(key)")
    }

    /// A prompt type by its raw name.
    public func promptType(_ key: String) throws -> PromptType? {
        guard let s = try optionalString(key) else { return nil }
        guard let t = PromptType(rawValue: s) else {
            throw StudyError.invalidConfiguration("\(path).\(key): unknown prompt type '\(s)'; use one of \(PromptType.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return t
    }
}

extension StageParams {
    /// A prompt type param by its raw name (nil when absent).
    public func promptType(_ name: String) throws -> PromptType? {
        guard has(name) else { return nil }
        let s = try string(name)
        guard let t = PromptType(rawValue: s) else {
            throw StudyError.invalidConfiguration("params.\(name): unknown prompt type '\(s)'; use one of \(PromptType.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return t
    }
}
