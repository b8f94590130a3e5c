// Slurm resources of a stage (`resources:` in YAML, `--slurm-*` defaults): parsing, validation, merging.
import Foundation

/// What one Slurm job asks for. Unset fields fall back to the next level: instance overrides,
/// then the stage's `resources`, then the top-level per-kind `resources`, then the command line.
public struct SlurmResources: Sendable, Hashable {
    /// CPUs per task (`--cpus-per-task`).
    public var cpus: Int?
    /// Memory per node (`--mem`), Slurm syntax: megabytes or a number with K/M/G/T.
    public var mem: String?
    /// Wall-clock limit (`--time`): minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS.
    public var time: String?
    public var partition: String?
    public var account: String?
    /// Generic resources (`--gres`), e.g. `gpu:1` or `gpu:a100:2`.
    public var gres: String?
    /// Further sbatch arguments, appended as given (e.g. `--qos=long`).
    public var sbatchArgs: [String] = []

    public init(cpus: Int? = nil, mem: String? = nil, time: String? = nil, partition: String? = nil,
                account: String? = nil, gres: String? = nil, sbatchArgs: [String] = []) {
        self.cpus = cpus
        self.mem = mem
        self.time = time
        self.partition = partition
        self.account = account
        self.gres = gres
        self.sbatchArgs = sbatchArgs
    }

    /// The keys accepted in a `resources:` map (plus `instances` at stage level).
    static let keys = ["cpus", "mem", "time", "partition", "account", "gres", "sbatch_args"]

    /// sbatch options the executor sets itself; `sbatch_args` may not override them.
    static let reservedArgs = ["--array", "-a", "--dependency", "-d", "--output", "-o", "--error", "-e", "--wrap", "--parsable",
                               "--job-name", "-J", "--chdir", "-D", "--kill-on-invalid-dep"]

    /// `self` with every unset field taken from `base`; sbatch args are concatenated (base first).
    public func over(_ base: SlurmResources) -> SlurmResources {
        SlurmResources(cpus: cpus ?? base.cpus, mem: mem ?? base.mem, time: time ?? base.time,
                       partition: partition ?? base.partition, account: account ?? base.account,
                       gres: gres ?? base.gres, sbatchArgs: base.sbatchArgs + sbatchArgs)
    }

    /// The sbatch command-line options for these resources.
    public var sbatchOptions: [String] {
        var out: [String] = []
        if let cpus { out.append("--cpus-per-task=\(cpus)") }
        if let mem { out.append("--mem=\(mem)") }
        if let time { out.append("--time=\(time)") }
        if let partition { out.append("--partition=\(partition)") }
        if let account { out.append("--account=\(account)") }
        if let gres { out.append("--gres=\(gres)") }
        return out + sbatchArgs
    }

    /// A short readable summary (`cpus=2 mem=4G time=1:00:00`).
    public var summary: String {
        let s = sbatchOptions.map { $0.hasPrefix("--") ? String($0.dropFirst(2)) : $0 }.joined(separator: " ")
        return s.isEmpty ? "cluster defaults" : s
    }

    // MARK: validation (each returns an error message, or nil when the value is valid)

    /// Checks a memory size: digits with an optional K/M/G/T suffix, greater than zero.
    public static func memoryProblem(_ s: String) -> String? {
        let t = s.uppercased()
        let digits = t.last.map { "KMGT".contains($0) } == true ? String(t.dropLast()) : t
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), let n = Int(digits), n > 0 else {
            return "expected memory like 4G, 500M or 2048 (megabytes), got '\(s)'"
        }
        return nil
    }

    /// Checks a Slurm time limit: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS, or UNLIMITED.
    public static func timeProblem(_ s: String) -> String? {
        let bad = "expected a time limit like 30 (minutes), 1:30:00 (HH:MM:SS) or 2-00:00:00 (D-HH:MM:SS), got '\(s)'"
        if ["UNLIMITED", "INFINITE"].contains(s.uppercased()) { return nil }
        func number(_ p: Substring, max: Int? = nil) -> Int? {
            guard !p.isEmpty, p.count <= 6, p.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(p) else { return nil }
            if let max, n > max { return nil }
            return n
        }
        var rest = Substring(s)
        var days: Int?
        if let dash = s.firstIndex(of: "-") {
            guard let d = number(s[..<dash]) else { return bad }
            days = d
            rest = s[s.index(after: dash)...]
        }
        let parts = rest.split(separator: ":", omittingEmptySubsequences: false)
        var values: [Int] = []
        if days != nil {
            // D-HH, D-HH:MM, D-HH:MM:SS
            guard (1...3).contains(parts.count), let h = number(parts[0], max: 23) else { return bad }
            values.append(h)
            for p in parts.dropFirst() {
                guard let v = number(p, max: 59) else { return bad }
                values.append(v)
            }
        } else {
            // MM, MM:SS, HH:MM:SS
            guard (1...3).contains(parts.count), let first = number(parts[0]) else { return bad }
            values.append(first)
            for p in parts.dropFirst() {
                guard let v = number(p, max: 59) else { return bad }
                values.append(v)
            }
        }
        if days == 0 && values.allSatisfy({ $0 == 0 }) || days == nil && values.allSatisfy({ $0 == 0 }) {
            return "a time limit of zero would never run; got '\(s)'"
        }
        return nil
    }

    /// Checks a gres specification: `name[:type]:count` items separated by commas.
    public static func gresProblem(_ s: String) -> String? {
        let ok = !s.isEmpty && s.split(separator: ",", omittingEmptySubsequences: false).allSatisfy { item in
            let parts = item.split(separator: ":", omittingEmptySubsequences: false)
            return !parts.isEmpty && parts.count <= 3 && parts.allSatisfy { p in
                !p.isEmpty && p.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_-.".contains($0)) }
            }
        }
        return ok ? nil : "expected generic resources like gpu:1 or gpu:a100:2 (comma-separated), got '\(s)'"
    }

    /// Checks a partition or account name: non-empty, no whitespace.
    public static func nameProblem(_ s: String, what: String) -> String? {
        s.isEmpty || s.contains(where: { $0.isWhitespace }) ? "expected a \(what) name without spaces, got '\(s)'" : nil
    }

    /// Checks one extra sbatch argument: an option (`--qos=x`) that the executor does not set itself.
    public static func sbatchArgProblem(_ s: String) -> String? {
        guard s.hasPrefix("-"), s.count > 1 else { return "expected an sbatch option such as --qos=long, got '\(s)'" }
        let name = String(s.split(separator: "=", maxSplits: 1)[0])
        if reservedArgs.contains(name) || (name.count > 2 && !name.hasPrefix("--") && reservedArgs.contains(String(name.prefix(2)))) {
            return "\(name) is set by the Slurm executor itself and cannot be given in sbatch_args"
        }
        return nil
    }

    // MARK: YAML

    /// Parses a `resources:` map. `path` is the key path for messages (`stages.pgd.resources`);
    /// `allowInstances` accepts an `instances:` map of matrix selectors to overrides.
    static func parse(_ node: YAMLNode, path: String, allowInstances: Bool) throws -> StageResources {
        guard let pairs = node.pairs else {
            throw PipelineError.spec(.wrongType, node.location, key: path,
                                     message: "expected a map with cpus, mem, time, partition, account, gres, sbatch_args, got \(node.typeName)")
        }
        var out = StageResources()
        for p in pairs {
            let key = p.key.scalarText ?? ""
            let kp = "\(path).\(key)"
            let v = p.value
            func string(_ check: (String) -> String?) throws -> String {
                let value = v.toValue()
                let text: String
                switch value {
                case let .string(s): text = s
                case let .int(i): text = String(i)
                default:
                    throw PipelineError.spec(.wrongType, v.location, key: kp, message: "expected a string, got \(v.typeName)")
                }
                if let problem = check(text) { throw PipelineError.spec(.invalidValue, v.location, key: kp, message: problem) }
                return text
            }
            switch key {
            case "cpus":
                guard case let .int(n) = v.toValue() else {
                    throw PipelineError.spec(.wrongType, v.location, key: kp, message: "expected a positive integer, got \(v.typeName)")
                }
                guard n > 0 else { throw PipelineError.spec(.invalidValue, v.location, key: kp, message: "expected a positive integer, got \(n)") }
                out.base.cpus = n
            case "mem": out.base.mem = try string(memoryProblem)
            case "time": out.base.time = try string(timeProblem)
            case "partition": out.base.partition = try string { nameProblem($0, what: "partition") }
            case "account": out.base.account = try string { nameProblem($0, what: "account") }
            case "gres": out.base.gres = try string(gresProblem)
            case "sbatch_args":
                let items = v.items ?? [v]
                for item in items {
                    guard let s = item.scalarText, case .string = item.toValue() else {
                        throw PipelineError.spec(.wrongType, item.location, key: kp, message: "expected a list of sbatch options (strings), got \(item.typeName)")
                    }
                    if let problem = sbatchArgProblem(s) { throw PipelineError.spec(.invalidValue, item.location, key: kp, message: problem) }
                    out.base.sbatchArgs.append(s)
                }
            case "instances" where allowInstances:
                guard let ps = v.pairs else {
                    throw PipelineError.spec(.wrongType, v.location, key: kp,
                                             message: "expected a map of matrix selectors (like 'model=big,layer=last') to resources, got \(v.typeName)")
                }
                for q in ps {
                    let sel = q.key.scalarText ?? ""
                    let body = sel.hasPrefix("[") && sel.hasSuffix("]") ? String(sel.dropFirst().dropLast()) : sel
                    let filter: [(String, String)]?
                    do { filter = try InputReference.parseSelector(body) } catch {
                        throw PipelineError.spec(.invalidValue, q.key.location, key: "\(kp).\(sel)",
                                                 message: "expected a matrix selector like 'model=big' or 'model=big,layer=last'")
                    }
                    let inner = try parse(q.value, path: "\(kp).\(sel)", allowInstances: false)
                    out.instances.append(.init(selector: sel, filter: filter, location: q.key.location, resources: inner.base))
                }
            default:
                let allowed = keys + (allowInstances ? ["instances"] : [])
                throw PipelineError.spec(.unknownKey, p.key.location, key: kp,
                                         message: "unknown resources key" + Suggest.hint(key, allowed) + "; expected one of: " + allowed.joined(separator: ", "))
            }
        }
        return out
    }
}

/// A stage's `resources:`: the stage-wide values and per-instance overrides by matrix selector.
public struct StageResources: Sendable {
    /// One `instances:` entry.
    public struct Override: Sendable {
        public var selector: String
        var filter: [(String, String)]?
        public var location: SourceLocation
        public var resources: SlurmResources
    }

    public var base = SlurmResources()
    /// Applied in order; a later match wins over an earlier one.
    public var overrides: [Override] { instances }
    var instances: [Override] = []

    /// The resources of one instance (by its matrix values), before kind and command-line defaults.
    public func resolve(matrix: [String: Value]) -> SlurmResources {
        var r = base
        for o in instances where InputReference.matches(matrix, o.filter) { r = o.resources.over(r) }
        return r
    }
}
