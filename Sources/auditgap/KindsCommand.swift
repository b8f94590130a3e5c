// `auditgap kinds`: the reference of every registered stage kind, from the kinds' declarations.
import Foundation
import Pipeline
import Study

/// Prints every stage kind pipelines may use: name, version, description, inputs, params, outputs.
enum KindsCommand {
    static let usage = "auditgap kinds    [--markdown | --json]"

    /// Prints the reference as text, Markdown (the content of docs/stages.md) or JSON.
    static func run(_ argv: [String]) throws -> Int32 {
        let args = try Arguments(argv, valued: [], knownFlags: ["--markdown", "--json"])
        guard args.positionals.isEmpty else { throw UsageError("kinds takes no arguments, got \(args.positionals.joined(separator: " "))") }
        guard !(args.flag("--markdown") && args.flag("--json")) else { throw UsageError("kinds takes --markdown or --json, not both") }
        let registry = StudyKinds.registry()
        let out: String
        if args.flag("--markdown") {
            out = KindReference.markdown(registry)
        } else if args.flag("--json") {
            out = KindReference.json(registry).prettyJSON
        } else {
            out = KindReference.text(registry)
        }
        FileHandle.standardOutput.write(Data(out.utf8))
        return 0
    }
}
