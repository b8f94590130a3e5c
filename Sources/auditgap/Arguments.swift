// A small command-line argument parser: positionals, `--flag`, `--option value` (repeatable).

/// A usage error: bad flags or values on the command line (exit code 2).
struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Parsed arguments of one subcommand.
struct Arguments {
    private(set) var positionals: [String] = []
    private var options: [String: [String]] = [:]
    private var flags: Set<String> = []

    /// Parses `argv` given the option names that take a value; every other `--name` is a flag.
    /// `knownFlags` and `valued` together list everything accepted; anything else is an error.
    init(_ argv: [String], valued: Set<String>, knownFlags: Set<String>) throws {
        var i = 0
        while i < argv.count {
            let arg = argv[i]
            if arg.hasPrefix("-") && arg.count > 1 && Double(arg) == nil {
                var name = arg
                var inline: String?
                if let eq = arg.firstIndex(of: "=") {
                    name = String(arg[..<eq])
                    inline = String(arg[arg.index(after: eq)...])
                }
                if valued.contains(name) {
                    let value: String
                    if let inline { value = inline } else {
                        guard i + 1 < argv.count else { throw UsageError("option \(name) needs a value") }
                        i += 1
                        value = argv[i]
                    }
                    options[name, default: []].append(value)
                } else if knownFlags.contains(name) && inline == nil {
                    flags.insert(name)
                } else {
                    let all = valued.union(knownFlags).sorted()
                    throw UsageError("unknown option \(name)" + (all.isEmpty ? "" : "; accepted: \(all.joined(separator: ", "))"))
                }
            } else {
                positionals.append(arg)
            }
            i += 1
        }
    }

    /// Whether a flag was given.
    func flag(_ name: String) -> Bool { flags.contains(name) }
    /// The last value of an option.
    func value(_ name: String) -> String? { options[name]?.last }
    /// Every value of a repeatable option.
    func values(_ name: String) -> [String] { options[name] ?? [] }
    /// An integer option, with a usage error when it is not an integer.
    func int(_ name: String) throws -> Int? {
        guard let raw = value(name) else { return nil }
        guard let v = Int(raw) else { throw UsageError("option \(name) needs an integer, got '\(raw)'") }
        return v
    }
}
