// Store maintenance: verify, gc, export and import of artifacts with their lineage.
import Foundation

/// One problem found by `verify`.
public struct VerifyProblem: Sendable {
    public var key: String
    public var problems: [String]
}

/// What `gc` kept and removed.
public struct GCResult: Sendable {
    public var kept: Int
    public var removed: [String]
}

/// What `import` did.
public struct ImportResult: Sendable {
    public var imported: [String] = []
    public var alreadyPresent: [String] = []
    public var corrupted: [VerifyProblem] = []
}

extension ArtifactStore {
    /// Re-hashes every object (ignoring the stat cache); reports, never deletes.
    public func verifyAll() -> (checked: Int, problems: [VerifyProblem]) {
        let keys = allKeys()
        var problems: [VerifyProblem] = []
        for k in keys {
            let p = verify(k, useStatCache: false)
            if !p.isEmpty { problems.append(VerifyProblem(key: k, problems: p)) }
        }
        return (keys.count, problems)
    }

    /// Keys the listed pipelines reference: current keys, plus the last recorded key of instances
    /// whose current key is unknown (an upstream is not computed), so nothing still needed is lost.
    public func referencedKeys(_ planners: [Planner]) throws -> Set<String> {
        var keep = Set<String>()
        for planner in planners {
            for s in try planner.status() {
                if let k = s.key {
                    keep.insert(k)
                } else if let r = readRef(pipelineID: planner.pipelineID, instance: s.name), let k = r["key"]?.stringValue {
                    keep.insert(k)
                }
            }
        }
        return keep
    }

    /// Removes objects no listed pipeline references (and crash debris).
    public func gc(keeping keep: Set<String>, dryRun: Bool) throws -> GCResult {
        if !dryRun { try requireWritable(); clearDebris() }
        var removed: [String] = []
        var kept = 0
        for k in allKeys() {
            if keep.contains(k) { kept += 1; continue }
            removed.append(k)
            if !dryRun {
                let l = try lock(k)
                try delete(k)
                l.release()
            }
        }
        return GCResult(kept: kept, removed: removed)
    }

    /// Writes the objects `keys` (each with manifest and lineage) to a tar file.
    public func export(keys: [String], to file: String) throws {
        let rels = keys.sorted().map { "objects/\($0.prefix(2))/\($0)" }
        try ArtifactStore.tar(["-cf", PipelineSpec.absolute(file), "-C", root] + rels)
    }

    /// Reads a tar written by `export`: verifies each object against its manifest and publishes
    /// the intact ones that are not already present.
    public func importArchive(_ file: String) throws -> ImportResult {
        try requireWritable()
        let name = "import-\(UInt32.random(in: 0...UInt32.max))"
        let l = try lock(name)
        defer { l.release() }
        let temp = try makeTemp(name)
        defer { FileTree.remove(temp) }
        try ArtifactStore.tar(["-xf", PipelineSpec.absolute(file), "-C", temp, "--no-same-owner"])
        var result = ImportResult()
        let fm = FileManager.default
        for shard in ((try? fm.contentsOfDirectory(atPath: temp + "/objects")) ?? []).sorted() {
            for key in ((try? fm.contentsOfDirectory(atPath: "\(temp)/objects/\(shard)")) ?? []).sorted() {
                let dir = "\(temp)/objects/\(shard)/\(key)"
                let problems = verify(directory: dir, key: key, useStatCache: false)
                if !problems.isEmpty {
                    result.corrupted.append(VerifyProblem(key: key, problems: problems))
                    continue
                }
                let kl = try lock(key)
                defer { kl.release() }
                if case .ok = quickCheck(key) {
                    result.alreadyPresent.append(key)
                    continue
                }
                if fm.fileExists(atPath: objectDir(key)) { try quarantine(key) }
                try? fm.createDirectory(atPath: "\(root)/objects/\(shard)", withIntermediateDirectories: true)
                guard rename(dir, objectDir(key)) == 0 else {
                    throw PipelineError.io(path: objectDir(key), message: "cannot publish imported object: \(String(cString: strerror(errno)))")
                }
                FileTree.fsyncPath("\(root)/objects/\(shard)")
                result.imported.append(key)
            }
        }
        return result
    }

    static func tar(_ args: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["tar"] + args
        let err = Pipe()
        p.standardError = err
        do { try p.run() } catch { throw PipelineError.io(path: "tar", message: "cannot run tar: \(error)") }
        let data = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw PipelineError.io(path: args.count > 1 ? args[1] : "tar",
                                   message: "tar failed: " + String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }
}
