// FeatureSet: pooled features [N, L, D] with per-row ids and labels, stored as an artifact
// (features.safetensors + rows.jsonl + info.json) so probes can be refit without the model.
import Foundation
import Pipeline
import Numerics

/// One row of a feature set.
public struct FeatureRow: Sendable, Codable, Equatable {
    /// Row index in the features tensor.
    public var index: Int
    public var id: String
    /// 1 = unsafe, 0 = safe, nil = unlabelled.
    public var label: Int?
    public var source: String?
    public var type: PromptType?

    public init(index: Int, id: String, label: Int?, source: String? = nil, type: PromptType? = nil) {
        self.index = index
        self.id = id
        self.label = label
        self.source = source
        self.type = type
    }
}

/// Features plus rows.
public struct FeatureSet: Sendable {
    /// [N, L, D]
    public var features: Tensor
    public var rows: [FeatureRow]

    public init(features: Tensor, rows: [FeatureRow]) {
        precondition(features.rank == 3 && features.shape[0] == rows.count, "FeatureSet: features \(features.shape) for \(rows.count) rows")
        self.features = features
        self.rows = rows
    }

    public var layers: Int { features.shape[1] }
    public var hidden: Int { features.shape[2] }

    /// Rows [N, L*D] of the listed indices, gathered into a new tensor.
    public func gather(_ indices: [Int]) -> Tensor {
        let f = layers * hidden
        return Tensor(shape: [indices.count, f]) { out in
            features.withUnsafeBufferPointer { src in
                for (k, i) in indices.enumerated() {
                    (out.baseAddress! + k * f).update(from: src.baseAddress! + i * f, count: f)
                }
            }
        }
    }

    /// Writes features.safetensors (`features` [N, L, D] in `dtype`), rows.jsonl and info.json.
    public func save(to directory: URL, dtype: SafeTensorsDType = .f32, info: [String: Value] = [:]) throws {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try SafeTensors.write(["features": features], to: directory.appendingPathComponent("features.safetensors"), dtype: dtype,
                                  metadata: ["layers": String(layers), "hidden": String(hidden),
                                             "pooling": "attention-masked mean over positions, hidden_states[1:]"])
        } catch {
            throw StudyError.writeFailed(path: directory.path, reason: "\(error)")
        }
        try StageSupport.writeJSONL(rows, to: directory.appendingPathComponent("rows.jsonl"))
        var all = info
        all["rows"] = .int(rows.count)
        all["layers"] = .int(layers)
        all["hidden"] = .int(hidden)
        all["unsafe"] = .int(rows.filter { $0.label == 1 }.count)
        all["safe"] = .int(rows.filter { $0.label == 0 }.count)
        all["dtype"] = .string(dtype.rawValue)
        try StageSupport.writeJSON(Value.map(all), to: directory.appendingPathComponent("info.json"))
    }

    /// Loads a feature-set directory.
    public static func load(from directory: URL) throws -> FeatureSet {
        let file = directory.appendingPathComponent("features.safetensors")
        let tensors: [String: Tensor]
        do { tensors = try SafeTensors.read(file) } catch { throw StudyError.unreadable(file: file.path, reason: "\(error)") }
        guard let f = tensors["features"], f.rank == 3 else {
            throw StudyError.schemaMismatch(SourceLocation(file: file.path, line: 0), field: "features", expected: "a [N, L, D] tensor")
        }
        let rowsURL = directory.appendingPathComponent("rows.jsonl")
        let rows: [FeatureRow] = try StageSupport.readObjects(rowsURL).map { r in
            let idx: Int
            if let d = r.value.value(at: "index")?.doubleValue { idx = Int(d) } else {
                throw StudyError.schemaMismatch(r.location, field: "index", expected: "an integer")
            }
            var label: Int?
            if let d = r.value.value(at: "label")?.doubleValue { label = Int(d) }
            return FeatureRow(index: idx, id: try RowField.text(r, "id"), label: label, source: RowField.optionalText(r, "source"),
                              type: RowField.optionalText(r, "type").flatMap(PromptType.init(rawValue:)))
        }
        guard rows.count == f.shape[0], rows.enumerated().allSatisfy({ $0.offset == $0.element.index }) else {
            throw StudyError.countMismatch(what: "\(rowsURL.path) rows vs features", expected: f.shape[0], got: rows.count)
        }
        return FeatureSet(features: f, rows: rows)
    }
}
