// YAML documents parsed with libyaml (through CYAML) into nodes that keep their source position.
import CYAML
import Foundation

/// One YAML node with its position in the source file.
public struct YAMLNode: Sendable {
    /// A key/value pair of a mapping, in source order.
    public struct Pair: Sendable {
        public var key: YAMLNode
        public var value: YAMLNode
    }

    /// The node's content.
    public enum Content: Sendable {
        /// A scalar; `plain` is false for quoted or block scalars (which are always strings).
        case scalar(String, plain: Bool)
        case sequence([YAMLNode])
        case mapping([Pair])
    }

    public var content: Content
    public var location: SourceLocation

    /// A type name for error messages.
    public var typeName: String {
        switch content {
        case .scalar: return toValue().typeName
        case .sequence: return "list"
        case .mapping: return "map"
        }
    }

    /// The scalar text, if a scalar.
    public var scalarText: String? {
        if case let .scalar(s, _) = content { return s }
        return nil
    }

    /// Mapping pairs, if a mapping.
    public var pairs: [Pair]? {
        if case let .mapping(p) = content { return p }
        return nil
    }

    /// Sequence items, if a sequence.
    public var items: [YAMLNode]? {
        if case let .sequence(s) = content { return s }
        return nil
    }

    /// The deepest node along `path`, a run of `[index]` and `.key` steps (`[0].schema`): the
    /// place an error about that key is reported at. Stops at the last step that exists.
    public func descendant(_ path: Substring) -> YAMLNode {
        var node = self, rest = path
        while let first = rest.first {
            if first == "[" {
                guard let close = rest.firstIndex(of: "]"), let i = Int(rest[rest.index(after: rest.startIndex)..<close]),
                      let items = node.items, items.indices.contains(i) else { break }
                node = items[i]
                rest = rest[rest.index(after: close)...]
            } else if first == "." {
                let body = rest.dropFirst()
                let end = body.firstIndex { $0 == "." || $0 == "[" } ?? body.endIndex
                guard let pair = node.pairs?.last(where: { $0.key.scalarText == String(body[..<end]) }) else { break }
                node = pair.value
                rest = body[end...]
            } else {
                break
            }
        }
        return node
    }

    /// Converts to a value with YAML 1.2 core-schema typing of plain scalars.
    public func toValue() -> Value {
        switch content {
        case let .scalar(text, plain):
            return plain ? YAMLNode.resolvePlain(text) : .string(text)
        case let .sequence(items):
            return .list(items.map { $0.toValue() })
        case let .mapping(pairs):
            var m: [String: Value] = [:]
            for p in pairs { m[p.key.scalarText ?? p.key.toValue().canonicalJSON] = p.value.toValue() }
            return .map(m)
        }
    }

    /// Core-schema resolution of a plain scalar: null, booleans, integers, floats, else string.
    static func resolvePlain(_ text: String) -> Value {
        switch text {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        case ".inf", ".Inf", ".INF", "+.inf": return .double(.infinity)
        case "-.inf", "-.Inf", "-.INF": return .double(-.infinity)
        case ".nan", ".NaN", ".NAN": return .double(.nan)
        default: break
        }
        guard let first = text.utf8.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+")
                || first == UInt8(ascii: ".") || (first >= 0x30 && first <= 0x39) else { return .string(text) }
        if let i = Int(text) { return .int(i) }
        if text.hasPrefix("0x"), let i = Int(text.dropFirst(2), radix: 16) { return .int(i) }
        if text.hasPrefix("0o"), let i = Int(text.dropFirst(2), radix: 8) { return .int(i) }
        let allowed = Set("0123456789.eE+-".utf8)
        if text.utf8.allSatisfy({ allowed.contains($0) }), text.utf8.contains(where: { $0 >= 0x30 && $0 <= 0x39 }),
           let d = Double(text) { return .double(d) }
        return .string(text)
    }
}

/// Parses YAML text with libyaml.
public enum YAMLParser {
    private enum Frame {
        case sequence([YAMLNode], SourceLocation, anchor: String?)
        case mapping([YAMLNode.Pair], pendingKey: YAMLNode?, SourceLocation, anchor: String?)
    }

    /// Parses the first document of `text`; nil when the document is empty.
    /// Syntax errors, duplicate keys and unknown aliases are `.spec(.yamlSyntax, ...)` errors.
    public static func parse(_ text: String, file: String) throws -> YAMLNode? {
        var bytes = Array(text.utf8)
        if bytes.isEmpty { return nil }
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            throw PipelineError.io(path: file, message: "libyaml could not initialise")
        }
        defer { yaml_parser_delete(&parser) }
        return try bytes.withUnsafeMutableBufferPointer { buf -> YAMLNode? in
            yaml_parser_set_input_string(&parser, buf.baseAddress, buf.count)
            var stack: [Frame] = []
            var anchors: [String: YAMLNode] = [:]
            var root: YAMLNode?
            var done = false

            func loc(_ mark: yaml_mark_t) -> SourceLocation {
                SourceLocation(file: file, line: Int(mark.line) + 1, column: Int(mark.column) + 1)
            }
            func str(_ p: UnsafeMutablePointer<yaml_char_t>?) -> String? {
                guard let p else { return nil }
                return String(cString: UnsafeRawPointer(p).assumingMemoryBound(to: CChar.self))
            }
            func add(_ node: YAMLNode) throws {
                guard let top = stack.popLast() else {
                    if root == nil { root = node }
                    return
                }
                switch top {
                case .sequence(var items, let l, let a):
                    items.append(node)
                    stack.append(.sequence(items, l, anchor: a))
                case .mapping(var pairs, let pending, let l, let a):
                    if let key = pending {
                        pairs.append(.init(key: key, value: node))
                        stack.append(.mapping(pairs, pendingKey: nil, l, anchor: a))
                    } else {
                        if let text = node.scalarText, text != "<<",
                           let prev = pairs.first(where: { $0.key.scalarText == text }) {
                            throw PipelineError.spec(.duplicateName, node.location, key: text,
                                                     message: "duplicate key (first defined at \(prev.key.location))")
                        }
                        stack.append(.mapping(pairs, pendingKey: node, l, anchor: a))
                    }
                }
            }

            while !done {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else {
                    let problem = parser.problem.map { String(cString: $0) } ?? "syntax error"
                    let context = parser.context.map { String(cString: $0) + ": " } ?? ""
                    throw PipelineError.spec(.yamlSyntax, loc(parser.problem_mark), key: "",
                                             message: "YAML syntax error: \(context)\(problem)")
                }
                defer { yaml_event_delete(&event) }
                let start = loc(event.start_mark)
                switch event.type {
                case YAML_SCALAR_EVENT:
                    let s = event.data.scalar
                    let text = String(decoding: UnsafeBufferPointer(start: s.value, count: s.length), as: UTF8.self)
                    let node = YAMLNode(content: .scalar(text, plain: s.style == YAML_PLAIN_SCALAR_STYLE), location: start)
                    if let a = str(s.anchor) { anchors[a] = node }
                    try add(node)
                case YAML_SEQUENCE_START_EVENT:
                    stack.append(.sequence([], start, anchor: str(event.data.sequence_start.anchor)))
                case YAML_MAPPING_START_EVENT:
                    stack.append(.mapping([], pendingKey: nil, start, anchor: str(event.data.mapping_start.anchor)))
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    guard let top = stack.popLast() else { break }
                    let node: YAMLNode, anchor: String?
                    switch top {
                    case let .sequence(items, l, a):
                        node = YAMLNode(content: .sequence(items), location: l)
                        anchor = a
                    case let .mapping(pairs, _, l, a):
                        node = YAMLNode(content: .mapping(try mergeKeys(pairs)), location: l)
                        anchor = a
                    }
                    if let anchor { anchors[anchor] = node }
                    try add(node)
                case YAML_ALIAS_EVENT:
                    let name = str(event.data.alias.anchor) ?? ""
                    guard var node = anchors[name] else {
                        throw PipelineError.spec(.yamlSyntax, start, key: "", message: "unknown alias '*\(name)'")
                    }
                    node.location = start
                    try add(node)
                case YAML_DOCUMENT_END_EVENT, YAML_STREAM_END_EVENT:
                    done = true
                default:
                    break
                }
            }
            return root
        }
    }

    /// Applies YAML merge keys (`<<: *anchor` or a list of them); explicit keys win.
    private static func mergeKeys(_ pairs: [YAMLNode.Pair]) throws -> [YAMLNode.Pair] {
        guard pairs.contains(where: { $0.key.scalarText == "<<" }) else { return pairs }
        var explicit = pairs.filter { $0.key.scalarText != "<<" }
        var seen = Set(explicit.compactMap { $0.key.scalarText })
        for merge in pairs where merge.key.scalarText == "<<" {
            let sources = merge.value.items ?? [merge.value]
            for source in sources {
                guard let sp = source.pairs else {
                    throw PipelineError.spec(.wrongType, source.location, key: "<<",
                                             message: "expected a map (or list of maps) to merge, got \(source.typeName)")
                }
                for p in sp where !seen.contains(p.key.scalarText ?? "") {
                    explicit.append(p)
                    seen.insert(p.key.scalarText ?? "")
                }
            }
        }
        return explicit
    }
}
