// Job records of Slurm runs kept in the store (`jobs/<run-id>.json`), read back by `auditgap status`.
import Foundation

/// What one `run --executor slurm` submitted: its jobs, their array tasks and the last known states.
public struct SlurmRunRecord: Sendable {
    /// One sbatch submission: a single job, or a job array for (part of) a matrix stage.
    public struct Job: Sendable {
        public var jobID: String
        public var stage: String
        public var array: Bool
        public var dependsOn: [String]
        public var resources: String
        public var tasks: [Task]
    }

    /// One instance: an array task (or the whole job when not an array).
    public struct Task: Sendable {
        public var index: Int
        public var instance: String
        public var state: String
        public var reason: String?
        public var exitCode: String?
        /// The Slurm output file of this task.
        public var log: String
        /// The file the job script writes the exit status of `auditgap run --only` into.
        public var exitFile: String
    }

    public var run: String
    public var pipeline: String
    public var store: String
    public var submitted: String
    public var host: String
    public var pid: Int
    public var detached: Bool
    /// `submitting`, `submitted`, `running`, `done`, `failed`, `cancelled`, `rejected`.
    public var state: String
    public var jobs: [Job] = []

    /// `12` or `12_3`: how squeue and scancel name a task.
    public static func taskID(_ job: Job, _ task: Task) -> String { job.array ? "\(job.jobID)_\(task.index)" : job.jobID }

    /// The records directory of a store.
    public static func directory(_ store: ArtifactStore) -> String { store.root + "/jobs" }

    /// Where this record is written.
    public func path(_ store: ArtifactStore) -> String { SlurmRunRecord.directory(store) + "/\(run).json" }

    var json: Value {
        .map([
            "run": .string(run), "pipeline": .string(pipeline), "store": .string(store), "submitted": .string(submitted),
            "host": .string(host), "pid": .int(pid), "detached": .bool(detached), "state": .string(state),
            "jobs": .list(jobs.map { j in
                .map(["job_id": .string(j.jobID), "stage": .string(j.stage), "array": .bool(j.array),
                      "depends_on": .list(j.dependsOn.map { .string($0) }), "resources": .string(j.resources),
                      "tasks": .list(j.tasks.map { t in
                          .map(["index": .int(t.index), "instance": .string(t.instance), "state": .string(t.state),
                                "reason": t.reason.map { .string($0) } ?? .null, "exit_code": t.exitCode.map { .string($0) } ?? .null,
                                "log": .string(t.log), "exit_file": .string(t.exitFile)])
                      })])
            }),
        ])
    }

    init(run: String, pipeline: String, store: String, submitted: String, host: String, pid: Int, detached: Bool, state: String) {
        self.run = run
        self.pipeline = pipeline
        self.store = store
        self.submitted = submitted
        self.host = host
        self.pid = pid
        self.detached = detached
        self.state = state
    }

    init?(json v: Value) {
        guard let run = v["run"]?.stringValue, let pipeline = v["pipeline"]?.stringValue else { return nil }
        self.init(run: run, pipeline: pipeline, store: v["store"]?.stringValue ?? "", submitted: v["submitted"]?.stringValue ?? "",
                  host: v["host"]?.stringValue ?? "", pid: v["pid"]?.intValue ?? 0, detached: v["detached"]?.boolValue ?? false,
                  state: v["state"]?.stringValue ?? "")
        for j in v["jobs"]?.listValue ?? [] {
            guard let id = j["job_id"]?.stringValue else { continue }
            let tasks: [Task] = (j["tasks"]?.listValue ?? []).compactMap { t in
                guard let i = t["index"]?.intValue, let inst = t["instance"]?.stringValue else { return nil }
                return Task(index: i, instance: inst, state: t["state"]?.stringValue ?? "", reason: t["reason"]?.stringValue,
                            exitCode: t["exit_code"]?.stringValue, log: t["log"]?.stringValue ?? "", exitFile: t["exit_file"]?.stringValue ?? "")
            }
            jobs.append(Job(jobID: id, stage: j["stage"]?.stringValue ?? "", array: j["array"]?.boolValue ?? false,
                            dependsOn: (j["depends_on"]?.listValue ?? []).compactMap(\.stringValue),
                            resources: j["resources"]?.stringValue ?? "", tasks: tasks))
        }
    }

    /// Writes the record atomically.
    public func save(_ store: ArtifactStore) throws {
        try FileManager.default.createDirectory(atPath: SlurmRunRecord.directory(store), withIntermediateDirectories: true)
        try FileTree.atomicWrite(Data(json.prettyJSON.utf8), to: path(store))
    }

    /// Every record of a pipeline (by absolute path) in the store, newest first.
    public static func load(_ store: ArtifactStore, pipeline: String) -> [SlurmRunRecord] {
        let dir = directory(store)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return [] }
        return names.filter { $0.hasSuffix(".json") }.sorted(by: >).compactMap { name in
            guard let v = try? JSON.read(dir + "/" + name), let r = SlurmRunRecord(json: v), r.pipeline == pipeline else { return nil }
            return r
        }
    }
}

/// The Slurm job of an instance as `auditgap status` shows it.
public struct SlurmInstanceJob: Sendable {
    public var run: String
    /// `12` or `12_3`.
    public var taskID: String
    public var state: SlurmJobState
    public var log: String
    /// Whether `state` came from squeue just now (false: the state recorded by the submitter).
    public var live: Bool

    /// The most recent Slurm job of each named instance that is still queued or running (live
    /// states from squeue when it is available, else the recorded ones). Cheap when the store has
    /// no job records.
    public static func active(store: ArtifactStore, pipeline: String, instances: Set<String>) -> [String: SlurmInstanceJob] {
        guard !instances.isEmpty, FileManager.default.fileExists(atPath: SlurmRunRecord.directory(store)) else { return [:] }
        var found: [String: SlurmInstanceJob] = [:]
        for record in SlurmRunRecord.load(store, pipeline: pipeline) {
            for job in record.jobs {
                for task in job.tasks where instances.contains(task.instance) && found[task.instance] == nil {
                    found[task.instance] = SlurmInstanceJob(run: record.run, taskID: SlurmRunRecord.taskID(job, task),
                                                            state: SlurmJobState(state: task.state, reason: task.reason), log: task.log, live: false)
                }
            }
        }
        let open = found.filter { !$0.value.state.isTerminal }
        guard !open.isEmpty else { return [:] }
        if let client = try? SlurmClient.locate(), let live = client.queueStates(Array(Set(open.values.map { jobPart($0.taskID) })).sorted()) {
            for (name, job) in open {
                if let s = live[job.taskID] {
                    found[name]?.state = s
                } else {
                    found[name]?.state = SlurmJobState(state: "UNKNOWN", reason: "no longer known to Slurm")
                }
                found[name]?.live = true
            }
        }
        return found.filter { !$0.value.state.isTerminal }
    }

    static func jobPart(_ taskID: String) -> String { String(taskID.split(separator: "_").first ?? Substring(taskID)) }
}
