// The reference of a registry's stage kinds, built from their declarations: `auditgap kinds`
// prints it as text, Markdown (docs/stages.md) or JSON.
import Foundation

/// Renders every kind of a registry: name, version, description, inputs, params and outputs.
public enum KindReference {
    /// The Markdown reference written to docs/stages.md.
    public static func markdown(_ registry: KindRegistry) -> String {
        var md = """
        # Stage kinds

        Every stage kind a pipeline may use: what it computes, its inputs, its params with type and
        default, and its outputs. This file is generated from the kinds' own declarations by
        `auditgap kinds --markdown > docs/stages.md`; a test fails when it differs from that output.
        Params are validated before anything runs: unknown names, wrong types, values outside a
        param's choices and missing required params are spec errors naming `file:line:column`.
        Bumping a kind's version makes every instance of it stale. Pipeline syntax is in
        [pipelines.md](pipelines.md); row formats, judges and conventions in [study-stages.md](study-stages.md).

        | kind | version | summary |
        |---|---|---|

        """
        for kind in registry.all {
            md += "| [`\(kind.name)`](#\(kind.name)) | \(kind.version) | \(cell(firstSentence(description(of: kind)))) |\n"
        }
        for kind in registry.all { md += "\n" + markdownSection(kind) }
        return md
    }

    /// One kind's Markdown section.
    static func markdownSection(_ kind: any StageKind) -> String {
        var md = "## \(kind.name)\n\nVersion \(kind.version). \(description(of: kind))\n\n"
        let inputsNote = type(of: kind).inputsDescription
        switch kind.inputs {
        case .any:
            md += "**Inputs:** any names." + (inputsNote.isEmpty ? "" : " " + inputsNote) + "\n\n"
        case let .named(specs) where specs.isEmpty:
            md += "**Inputs:** none.\n\n"
        case let .named(specs):
            md += "**Inputs:**" + (inputsNote.isEmpty ? "" : " " + inputsNote) + "\n\n"
            for s in specs { md += "- `\(s.name)` (\(inputTraits(s)))" + (s.doc.isEmpty ? "" : ": \(s.doc)") + "\n" }
            md += "\n"
        }
        let schema = kind.paramsSchema
        if schema.params.isEmpty {
            md += "**Params:** none" + (schema.allowsExtra ? " declared; any other param is accepted.\n\n" : ".\n\n")
        } else {
            md += "**Params:**" + (schema.allowsExtra ? " any param besides these is accepted too." : "") + "\n\n"
            md += "| param | type | default | description |\n|---|---|---|---|\n"
            for p in schema.params {
                md += "| `\(p.name)` | \(cell(typeText(p, code: true))) | \(cell(defaultText(p, code: true))) | \(cell(p.doc)) |\n"
            }
            md += "\n"
        }
        md += "**Outputs:** " + outputsText(kind.outputs, code: true) + "\n"
        return md
    }

    /// The plain-text reference `auditgap kinds` prints.
    public static func text(_ registry: KindRegistry) -> String {
        var out = ""
        for kind in registry.all {
            out += "\(kind.name) (version \(kind.version))\n"
            out += wrap(description(of: kind), indent: "  ")
            let note = type(of: kind).inputsDescription
            switch kind.inputs {
            case .any: out += wrap("inputs: any names." + (note.isEmpty ? "" : " " + note), indent: "  ")
            case let .named(specs) where specs.isEmpty: out += "  inputs: none\n"
            case let .named(specs):
                out += "  inputs:\n" + (note.isEmpty ? "" : wrap(note, indent: "    "))
                for s in specs {
                    out += wrap("\(s.name) (\(inputTraits(s)))" + (s.doc.isEmpty ? "" : ": \(s.doc)"), indent: "    ")
                }
            }
            let schema = kind.paramsSchema
            out += "  params:" + (schema.params.isEmpty ? " none" : "") + (schema.allowsExtra ? " (any other param is accepted)" : "") + "\n"
            for p in schema.params {
                let line = "\(p.name): \(typeText(p, code: false)); default \(defaultText(p, code: false))" + (p.doc.isEmpty ? "" : "; \(p.doc)")
                out += wrap(line, indent: "    ")
            }
            out += "  outputs: " + outputsText(kind.outputs, code: false) + "\n\n"
        }
        return out
    }

    /// The reference as JSON: `{"kinds": [{name, version, description, inputs, params, outputs}]}`.
    public static func json(_ registry: KindRegistry) -> Value {
        .map(["kinds": .list(registry.all.map(jsonKind))])
    }

    /// One kind as JSON.
    static func jsonKind(_ kind: any StageKind) -> Value {
        var inputs: [String: Value] = ["description": .string(type(of: kind).inputsDescription)]
        switch kind.inputs {
        case .any: inputs["any"] = .bool(true)
        case let .named(specs):
            inputs["any"] = .bool(false)
            inputs["named"] = .list(specs.map {
                .map(["name": .string($0.name), "required": .bool($0.required), "multiple": .bool($0.multiple),
                      "description": .string($0.doc)])
            })
        }
        let params: [Value] = kind.paramsSchema.params.map { p in
            var m: [String: Value] = ["name": .string(p.name), "type": .string(p.type.description), "required": .bool(p.required),
                                      "default": p.defaultValue ?? .null, "description": .string(p.doc)]
            if let choices = p.choices { m["choices"] = .list(choices.map { .string($0) }) }
            return .map(m)
        }
        let outputs: Value
        switch kind.outputs {
        case let .fixed(files): outputs = .list(files.map { .string($0) })
        case .declaredByStage: outputs = .string("declared by the stage")
        }
        return .map(["name": .string(kind.name), "version": .string(kind.version), "description": .string(description(of: kind)),
                     "inputs": .map(inputs), "params": .list(params), "extra_params": .bool(kind.paramsSchema.allowsExtra),
                     "outputs": outputs])
    }

    /// A kind's description, or a placeholder naming what is missing.
    static func description(of kind: any StageKind) -> String {
        let d = type(of: kind).kindDescription
        return d.isEmpty ? "(no description)" : d
    }

    /// The first sentence of a description: up to the first ". " (or the end).
    static func firstSentence(_ text: String) -> String {
        guard let r = text.range(of: ". ") else { return text }
        return String(text[..<r.lowerBound]) + "."
    }

    /// "required, one" / "optional, fan-in".
    static func inputTraits(_ s: InputSpec) -> String {
        (s.required ? "required" : "optional") + (s.multiple ? ", fan-in" : "")
    }

    /// A param's type, with its choices.
    static func typeText(_ p: ParamSpec, code: Bool) -> String {
        guard let choices = p.choices else { return p.type.description }
        return "\(p.type): one of " + choices.map { code ? "`\($0)`" : $0 }.joined(separator: ", ")
    }

    /// A param's default: its value as JSON, "required", or "none" (the param is absent).
    static func defaultText(_ p: ParamSpec, code: Bool) -> String {
        if let v = p.defaultValue { return code ? "`\(v.canonicalJSON)`" : v.canonicalJSON }
        return p.required ? "required" : "none"
    }

    /// The declared output files, or that the stage lists them.
    static func outputsText(_ outputs: OutputsDeclaration, code: Bool) -> String {
        switch outputs {
        case let .fixed(files) where files.isEmpty: return "none."
        case let .fixed(files): return files.map { code ? "`\($0)`" : $0 }.joined(separator: ", ") + "."
        case .declaredByStage: return "the files the stage lists under `outputs:`."
        }
    }

    /// Text for a Markdown table cell: `|` escaped, line breaks as spaces.
    static func cell(_ text: String) -> String {
        text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }

    /// `text` wrapped at `width` columns: the first line starts with `indent`, the others two
    /// spaces further in.
    static func wrap(_ text: String, indent: String, width: Int = 100) -> String {
        var lines: [String] = [], line = ""
        for word in text.split(separator: " ") {
            let prefix = lines.isEmpty ? indent : indent + "  "
            if !line.isEmpty && prefix.count + line.count + 1 + word.count > width {
                lines.append(prefix + line)
                line = String(word)
            } else {
                line += (line.isEmpty ? "" : " ") + word
            }
        }
        lines.append((lines.isEmpty ? indent : indent + "  ") + line)
        return lines.joined(separator: "\n") + "\n"
    }
}
