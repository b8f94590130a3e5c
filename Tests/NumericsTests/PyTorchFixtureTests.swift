// Comparisons against golden numbers from PyTorch / transformers, written by
// Tests/Fixtures/make_numerics_fixtures.py into Fixtures/numerics_fixtures.json.
import Foundation
import XCTest
@testable import Numerics

private struct Fixtures: Decodable {
    struct AdamWGroup: Decodable {
        let lr: Float, weight_decay: Float, shape: [Int], `init`: [Float], grads: [[Float]], after: [[Float]]
    }
    struct AdamWCase: Decodable {
        let beta1: Float, beta2: Float, eps: Float, steps: Int, warmup: Int, groups: [AdamWGroup], lrs: [[Double]]
    }
    struct SGDCase: Decodable {
        let lr: Float, momentum: Float, weight_decay: Float, `init`: [Float], grads: [[Float]], after: [[Float]]
    }
    struct ClipCase: Decodable { let grads: [[Float]], max_norm: Float, norm: Float, clipped: [[Float]] }
    struct Schedules: Decodable { let warmup: Int, total: Int, linear: [Double], cosine: [Double] }
    struct RopeCase: Decodable {
        let name: String, theta: Double, params: [String: FlexibleValue], inv_freq: [Float]
        let attention_scaling: Float, cos: [Float], sin: [Float]
    }
    struct Rope: Decodable { let head_dim: Int, positions: [Int], cases: [RopeCase] }
    struct Activations: Decodable {
        let x: [Float], gelu: [Float], gelu_tanh: [Float], silu: [Float]
        let rows: [Float], rows_shape: [Int], softmax: [Float], log_softmax: [Float]
    }
    let adamw: AdamWCase, sgd: SGDCase, clip: ClipCase, schedules: Schedules, rope: Rope, activations: Activations
}

/// A JSON number or string.
private enum FlexibleValue: Decodable {
    case number(Double), string(String)
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let d = try? c.decode(Double.self) { self = .number(d) } else { self = .string(try c.decode(String.self)) }
    }
    var number: Double { if case .number(let d) = self { return d }; return .nan }
}

final class PyTorchFixtureTests: XCTestCase {
    private func load() throws -> Fixtures {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "numerics_fixtures", withExtension: "json",
                                                  subdirectory: "Fixtures"), "fixture file missing")
        return try JSONDecoder().decode(Fixtures.self, from: Data(contentsOf: url))
    }

    private func assertClose(_ a: [Float], _ b: [Float], _ tol: Float, _ what: String,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, "\(what): sizes differ", file: file, line: line)
        let diff = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(diff, tol, "\(what): max abs difference \(diff)", file: file, line: line)
    }

    func testAdamWWithGroupsAndLinearSchedule() throws {
        let f = try load().adamw
        let params = f.groups.map { Variable(Tensor(shape: $0.shape, data: $0.`init`), requiresGrad: true) }
        let groups = zip(f.groups, params).map { ParameterGroup(parameters: [$1], learningRate: $0.lr, weightDecay: $0.weight_decay) }
        let opt = AdamW(groups: groups, beta1: f.beta1, beta2: f.beta2, eps: f.eps)
        let schedule = LRSchedule.linearWarmupDecay(warmupSteps: f.warmup, totalSteps: f.steps)
        for step in 0..<f.steps {
            opt.learningRateFactor = schedule.factor(step: step)
            for (k, g) in f.groups.enumerated() {
                XCTAssertEqual(Double(g.lr * opt.learningRateFactor), f.lrs[step][k], accuracy: 1e-9, "lr at step \(step)")
                params[k].grad = Tensor(shape: g.shape, data: g.grads[step])
            }
            opt.step()
            for (k, g) in f.groups.enumerated() {
                assertClose(params[k].value.scalars, g.after[step], 1e-6, "AdamW group \(k) step \(step)")
            }
        }
    }

    func testSGDMomentum() throws {
        let f = try load().sgd
        let p = Variable(Tensor(shape: [f.`init`.count], data: f.`init`), requiresGrad: true)
        let opt = SGD(parameters: [p], learningRate: f.lr, momentum: f.momentum, weightDecay: f.weight_decay)
        for (step, g) in f.grads.enumerated() {
            p.grad = Tensor(shape: [g.count], data: g)
            opt.step()
            assertClose(p.value.scalars, f.after[step], 1e-6, "SGD step \(step)")
        }
    }

    func testClipGradNorm() throws {
        let f = try load().clip
        let ps = f.grads.map { g -> Variable in
            let v = Variable(Tensor(zeros: [g.count]), requiresGrad: true)
            v.grad = Tensor(shape: [g.count], data: g)
            return v
        }
        let norm = Gradients.clipGlobalNorm(ps, maxNorm: f.max_norm)
        XCTAssertEqual(norm, f.norm, accuracy: 1e-5)
        for (p, c) in zip(ps, f.clipped) { assertClose(p.grad!.scalars, c, 1e-6, "clipped gradient") }
    }

    func testSchedules() throws {
        let f = try load().schedules
        for (step, expected) in f.linear.enumerated() {
            XCTAssertEqual(Double(LRSchedule.linearWarmupDecay(warmupSteps: f.warmup, totalSteps: f.total).factor(step: step)),
                           expected, accuracy: 1e-6, "linear step \(step)")
        }
        for (step, expected) in f.cosine.enumerated() {
            XCTAssertEqual(Double(LRSchedule.cosine(warmupSteps: f.warmup, totalSteps: f.total).factor(step: step)),
                           expected, accuracy: 1e-6, "cosine step \(step)")
        }
    }

    func testRopeTablesMatchTransformers() throws {
        let f = try load().rope
        for c in f.cases {
            let scaling: RopeScaling
            switch c.name {
            case "default": scaling = .none
            case "linear": scaling = .linear(factor: c.params["factor"]!.number)
            default:
                scaling = .llama3(factor: c.params["factor"]!.number, lowFreqFactor: c.params["low_freq_factor"]!.number,
                                  highFreqFactor: c.params["high_freq_factor"]!.number,
                                  originalMaxPositions: Int(c.params["original_max_position_embeddings"]!.number))
            }
            let table = RopeTable(headDim: f.head_dim, theta: c.theta, maxPositions: 4100, scaling: scaling,
                                  attentionFactor: c.attention_scaling)
            for (i, (a, b)) in zip(table.inverseFrequencies, c.inv_freq).enumerated() {
                XCTAssertEqual(a, b, accuracy: b * 2e-6, "\(c.name) inv_freq[\(i)]")
            }
            let half = f.head_dim / 2
            var cosv: [Float] = [], sinv: [Float] = []
            for p in f.positions {
                cosv += table.cos[(p * half)..<((p + 1) * half)]
                sinv += table.sin[(p * half)..<((p + 1) * half)]
            }
            // Position 4097 times a float32 frequency: 1e-3 absorbs the float32 angle rounding.
            assertClose(cosv, c.cos, 1e-3, "\(c.name) cos")
            assertClose(sinv, c.sin, 1e-3, "\(c.name) sin")
            assertClose(Array(cosv.prefix(3 * half)), Array(c.cos.prefix(3 * half)), 2e-6, "\(c.name) cos small positions")
        }
    }

    func testActivationsMatchTorch() throws {
        let f = try load().activations
        let x = Variable(Tensor(shape: [f.x.count], data: f.x))
        assertClose(Ops.gelu(x, approximate: false).value.scalars, f.gelu, 2e-6, "gelu")
        assertClose(Ops.gelu(x, approximate: true).value.scalars, f.gelu_tanh, 2e-6, "gelu tanh")
        assertClose(Ops.silu(x).value.scalars, f.silu, 2e-6, "silu")
        let rows = Variable(Tensor(shape: f.rows_shape, data: f.rows))
        assertClose(Ops.softmax(rows).value.scalars, f.softmax, 1e-6, "softmax")
        assertClose(Ops.logSoftmax(rows).value.scalars, f.log_softmax, 2e-6, "log_softmax")
    }
}
