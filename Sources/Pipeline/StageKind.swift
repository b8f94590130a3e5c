// The stage-kind API: what a kind declares (name, version, params schema, inputs, outputs) and the registry.
import Foundation

/// A parameter type in a kind's schema.
public indirect enum ParamType: Sendable, CustomStringConvertible {
    case string, int, number, bool, map, any
    case list(ParamType)

    public var description: String {
        switch self {
        case .string: return "string"
        case .int: return "integer"
        case .number: return "number"
        case .bool: return "boolean"
        case .map: return "map"
        case .any: return "any value"
        case let .list(t): return "list of \(t)"
        }
    }

    /// Whether `value` has this type (integers are accepted as numbers).
    public func accepts(_ value: Value) -> Bool {
        switch (self, value) {
        case (.any, _): return true
        case (.string, .string), (.int, .int), (.bool, .bool), (.map, .map): return true
        case (.number, .int), (.number, .double): return true
        case let (.list(t), .list(items)): return items.allSatisfy { t.accepts($0) }
        default: return false
        }
    }
}

/// One declared parameter of a kind.
public struct ParamSpec: Sendable {
    public var name: String
    public var type: ParamType
    /// The value used when the stage does not set it; nil with `required == false` means "absent".
    public var defaultValue: Value?
    public var required: Bool
    /// Allowed values for string params (nil: any).
    public var choices: [String]?
    public var doc: String

    public init(_ name: String, _ type: ParamType, required: Bool = false, default defaultValue: Value? = nil,
                choices: [String]? = nil, doc: String = "") {
        self.name = name
        self.type = type
        self.required = required
        self.defaultValue = defaultValue
        self.choices = choices
        self.doc = doc
    }
}

/// A kind's params schema, validated before anything runs.
public struct ParamsSchema: Sendable {
    public var params: [ParamSpec]
    /// Whether params not in the list are accepted (the `shell` kind passes them as environment variables).
    public var allowsExtra: Bool

    public init(_ params: [ParamSpec], allowsExtra: Bool = false) {
        self.params = params
        self.allowsExtra = allowsExtra
    }

    public static let empty = ParamsSchema([])

    /// The spec of a param, if declared.
    public func spec(_ name: String) -> ParamSpec? { params.first { $0.name == name } }
}

/// The outputs a kind produces.
public enum OutputsDeclaration: Sendable {
    /// The kind always writes these files (relative to its output directory).
    case fixed([String])
    /// Each stage lists its outputs under `outputs:` (the `shell` kind).
    case declaredByStage
}

/// One declared input of a kind.
public struct InputSpec: Sendable {
    public var name: String
    public var required: Bool
    /// Whether the input may receive several artifacts (a fan-in).
    public var multiple: Bool
    public var doc: String

    public init(_ name: String, required: Bool = true, multiple: Bool = false, doc: String = "") {
        self.name = name
        self.required = required
        self.multiple = multiple
        self.doc = doc
    }
}

/// The inputs a kind accepts.
public enum InputsDeclaration: Sendable {
    /// Any input names, any number of artifacts each.
    case any
    /// Exactly these names (unknown names are spec errors).
    case named([InputSpec])
}

/// A stage kind: a named, versioned computation the engine caches.
///
/// Bump `version` whenever the kind's output for the same params and inputs changes; every
/// instance of the kind then becomes stale ("kind version 1 -> 2").
public protocol StageKind: Sendable {
    /// The name used in `kind:` (e.g. `shell`, `pgd`).
    var name: String { get }
    /// The version string entering every cache key.
    var version: String { get }
    /// One paragraph on what the kind computes and writes, for `auditgap kinds` and
    /// docs/stages.md; its first sentence is the kind's summary. Empty by default.
    static var kindDescription: String { get }
    /// What the kind reads from its inputs, beyond each `InputSpec.doc`; kinds whose inputs are
    /// `.any` (the names depend on params) say here which names they read. Empty by default.
    static var inputsDescription: String { get }
    /// Declared params, validated (types, required, unknown names) before any stage runs.
    var paramsSchema: ParamsSchema { get }
    /// Declared inputs; `.any` by default.
    var inputs: InputsDeclaration { get }
    /// Declared output files.
    var outputs: OutputsDeclaration { get }
    /// Checks a stage's params (defaults applied, interpolated, schema-checked) and the names
    /// of its inputs when the pipeline is read, before any stage runs, so that a mistake in
    /// a late stage shows at once with its place in the file. Throw `StageCheckFailure`
    /// (or `PipelineError.stageInput`, which the params readers throw). Nothing by default.
    func check(_ params: StageParams, inputNames: [String]) throws
    /// Computes the outputs into `context.outputDirectory`; throwing fails the stage.
    func run(_ context: StageContext) throws
    /// What a Slurm job of this kind asks for unless the pipeline says otherwise (none by default).
    var defaultResources: SlurmResources { get }
}

/// A stage configuration problem found by `StageKind.check`: `key` is relative to the stage
/// (`params.layer`, `params.judges[1].kind`, `inputs.prompts`, `inputs`), and the pipeline
/// reports it at that key's place in the file.
public struct StageCheckFailure: Error, Sendable, CustomStringConvertible {
    public var key: String
    public var message: String

    public init(key: String, message: String) {
        self.key = key
        self.message = message
    }

    public var description: String { "\(key): \(message)" }
}

extension StageKind {
    public static var kindDescription: String { "" }
    public static var inputsDescription: String { "" }
    public func check(_ params: StageParams, inputNames: [String]) throws {}
    public var inputs: InputsDeclaration { .any }
    public var defaultResources: SlurmResources { SlurmResources() }
}

/// The set of stage kinds a pipeline may use; the CLI builds it (built-in plus study kinds).
public struct KindRegistry: Sendable {
    private var kinds: [String: any StageKind] = [:]

    public init() {}

    /// The built-in kinds: `shell`.
    public static func builtin() -> KindRegistry {
        var r = KindRegistry()
        r.register(ShellKind())
        return r
    }

    /// Adds a kind; a later registration of the same name replaces the earlier one.
    public mutating func register(_ kind: any StageKind) {
        kinds[kind.name] = kind
    }

    /// The kind called `name`.
    public func kind(named name: String) -> (any StageKind)? { kinds[name] }

    /// Every registered name, sorted.
    public var names: [String] { kinds.keys.sorted() }

    /// Every registered kind, sorted by name.
    public var all: [any StageKind] { names.compactMap { kinds[$0] } }
}
