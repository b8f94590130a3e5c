// Loading of the architecture fixtures written by Tests/Fixtures/make_model_fixtures.py.
import Foundation
import XCTest
@testable import Models
import Numerics

/// One fixture directory: checkpoint, cases.json and expected arrays.
struct ArchFixture {
    let dir: URL
    /// Hyper-parameters from modelconfig.json (nil for adapter-only fixtures).
    let config: ModelConfig?
    let cases: [String: Any]
    let expected: [String: Tensor]

    init(_ name: String) throws {
        guard let base = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
            throw ModelError.invalidInput("fixture bundle missing")
        }
        dir = base.appendingPathComponent("arch").appendingPathComponent(name)
        let cfgURL = dir.appendingPathComponent("modelconfig.json")
        if FileManager.default.fileExists(atPath: cfgURL.path) {
            config = try JSONDecoder().decode(ModelConfig.self, from: Data(contentsOf: cfgURL))
        } else {
            config = nil
        }
        let casesURL = dir.appendingPathComponent("cases.json")
        cases = (try JSONSerialization.jsonObject(with: Data(contentsOf: casesURL))) as? [String: Any] ?? [:]
        expected = try readSafeTensors(dir.appendingPathComponent("expected.safetensors"))
    }

    func model(file: String = "model.safetensors") throws -> TransformerModel {
        guard let config else { throw ModelError.invalidInput("fixture \(dir.lastPathComponent) has no modelconfig.json") }
        return try TransformerModel(config: config, weights: readSafeTensors(dir.appendingPathComponent(file)))
    }

    func intRows(_ key: String, in dict: [String: Any]? = nil) -> [[Int]] {
        ((dict ?? cases)[key] as? [[Any]] ?? []).map { $0.compactMap { ($0 as? NSNumber)?.intValue } }
    }

    var batch: TokenBatch { TokenBatch(ids: intRows("ids"), mask: intRows("mask")) }

    func expect(_ key: String) throws -> Tensor {
        guard let t = expected[key] else { throw ModelError.invalidInput("fixture \(dir.lastPathComponent) lacks \(key)") }
        return t
    }
}

/// Minimal safetensors reader (F32 / BF16 / F16) for the fixtures.
func readSafeTensors(_ url: URL) throws -> [String: Tensor] {
    let data = try Data(contentsOf: url)
    let headerLen = data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    let header = data.subdata(in: 8..<(8 + Int(headerLen)))
    guard let json = try JSONSerialization.jsonObject(with: header) as? [String: Any] else {
        throw ModelError.io(path: url.path, reason: "bad safetensors header")
    }
    var out: [String: Tensor] = [:]
    let start = 8 + Int(headerLen)
    for (name, value) in json where name != "__metadata__" {
        guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
              let shape = (info["shape"] as? [NSNumber])?.map({ $0.intValue }),
              let offs = (info["data_offsets"] as? [NSNumber])?.map({ $0.intValue }) else { continue }
        let bytes = data.subdata(in: (start + offs[0])..<(start + offs[1]))
        let n = shape.reduce(1, *)
        var values = [Float](repeating: 0, count: n)
        bytes.withUnsafeBytes { raw in
            for i in 0..<n {
                switch dtype {
                case "F32": values[i] = raw.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
                case "BF16":
                    let bits = raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
                    values[i] = Float(bitPattern: UInt32(bits) << 16)
                default: values[i] = .nan
                }
            }
        }
        out[name] = Tensor(shape: shape, data: values)
    }
    return out
}

/// Max |a - b| over the rows of [B, T, X] tensors where `mask` [B*T] is 1 (all rows without a mask).
func maxAbsDiff(_ a: Tensor, _ b: Tensor, mask: [Float]? = nil) -> Float {
    precondition(a.count == b.count, "compared tensors differ in size: \(a.shape) vs \(b.shape)")
    let pa = a.scalars, pb = b.scalars
    let rows = mask?.count ?? 1, width = a.count / rows
    var m: Float = 0
    for r in 0..<rows where mask == nil || mask![r] != 0 {
        for i in 0..<width { m = max(m, abs(pa[r * width + i] - pb[r * width + i])) }
    }
    return m
}

/// Runs `body` with attention query blocks of 2 rows, so that the fixtures' short sequences
/// span several blocks (each block multiplies only the keys it can see).
func withQueryBlocksOfTwo(_ body: () throws -> Void) rethrows {
    try Kernels.withQueryBlockSize(2, body)
}
