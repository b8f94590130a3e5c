import XCTest
import Models
import Numerics
@testable import Study

/// The PGD attack library on a tiny random Llama.
final class AttackTests: XCTestCase {
    static let prompt = [256, 117, 115, 101, 114, 10, 72, 111, 119, 32, 116, 111, 257, 10, 256, 97, 10]
    static let target = [83, 117, 114, 101]

    func attack(_ o: PGDOptions, model: TransformerModel? = nil) throws -> PGDAttack {
        try PGDAttack(model: model ?? TinyChatModel.model(), options: o)
    }

    func testTargetedLowersTargetNLLAtEveryLayerKind() throws {
        let model = try TinyChatModel.model()
        for layer in [LayerRef.embedding, .mid, .last, .block(1)] {
            let a = try attack(PGDOptions(layer: layer, epsilon: 0.3), model: model)
            let out = try a.run(prompt: Self.prompt, target: Self.target)
            XCTAssertLessThan(out.targetNLLAfter, out.targetNLLBefore - 1e-3, "layer \(layer): NLL \(out.targetNLLBefore) -> \(out.targetNLLAfter)")
            XCTAssertEqual(out.objectiveAfter, out.targetNLLAfter)
            XCTAssertEqual(out.delta.shape, [TinyChatModel.hidden])
        }
    }

    func testTargetNLLMatchesAFullForward() throws {
        let model = try TinyChatModel.model()
        let ids = Self.prompt + Self.target
        let logits = try XCTUnwrap(try model.forward(TokenBatch(ids: [ids])).logits).scalars
        let v = model.config.vocabSize, p = Self.prompt.count
        var nll = 0.0
        for (k, t) in Self.target.enumerated() {
            let row = logits[((p - 1 + k) * v)..<((p + k) * v)].map(Double.init)
            let m = row.max() ?? 0
            nll -= row[t] - m - log(row.map { exp($0 - m) }.reduce(0, +))
        }
        nll /= Double(Self.target.count)
        for layer in [LayerRef.embedding, .mid, .last] {
            let out = try attack(PGDOptions(layer: layer, epsilon: 0.1, steps: 0), model: model).run(prompt: Self.prompt, target: Self.target)
            XCTAssertEqual(out.targetNLLBefore, nll, accuracy: 1e-4, "layer \(layer)")
            XCTAssertEqual(out.targetNLLAfter, out.targetNLLBefore)
            XCTAssertEqual(out.deltaLinf, 0)
            // With steps, the NLL before comes from the first step's pass at delta = 0: the same value.
            for shape in [DeltaShape.shared, .perPosition] {
                var o = PGDOptions(layer: layer, epsilon: 0.1, steps: 3)
                o.deltaShape = shape
                let attacked = try attack(o, model: model).run(prompt: Self.prompt, target: Self.target)
                XCTAssertEqual(attacked.targetNLLBefore, out.targetNLLBefore, "layer \(layer) \(shape)")
                XCTAssertEqual(attacked.objectiveBefore, out.targetNLLBefore)
            }
        }
    }

    func testEveryStepStaysInsideTheBall() throws {
        let model = try TinyChatModel.model()
        let configs: [PGDOptions] = [
            PGDOptions(layer: .mid, epsilon: 0.2),
            PGDOptions(layer: .embedding, epsilon: 0.05, epsilonMode: .absolute, deltaShape: .perPosition),
            PGDOptions(layer: .last, epsilon: 0.3, deltaPositions: .all),
            PGDOptions(layer: .mid, epsilon: 0.2, attack: .untargeted),
            PGDOptions(layer: .mid, epsilon: 0.2, attack: .random),
        ]
        for o in configs {
            let a = try attack(o, model: model)
            var snapshots: [Tensor] = []
            let out = try a.run(prompt: Self.prompt, target: Self.target, cleanResponse: [65, 66, 67]) { _, delta in
                snapshots.append(delta)
            }
            let eps = out.epsilonAbsolute
            XCTAssertGreaterThan(eps, 0)
            XCTAssertEqual(snapshots.count, o.attack == .random ? 1 : 10)
            for (k, snap) in snapshots.enumerated() {
                snap.withUnsafeBufferPointer { p in
                    for (i, x) in p.enumerated() where Double(abs(x)) > eps {
                        XCTFail("\(o.attack) \(o.layer) step \(k) element \(i): |\(x)| > \(eps)")
                    }
                }
            }
            XCTAssertLessThanOrEqual(out.deltaLinf, out.epsilonAbsolute)
            if o.deltaShape == .perPosition { XCTAssertEqual(out.delta.shape, [Self.prompt.count, TinyChatModel.hidden]) }
        }
    }

    func testEpsilonModesScaleAsDefined() throws {
        let model = try TinyChatModel.model()
        let fwd = try model.forward(TokenBatch(ids: [Self.prompt]), options: ForwardOptions(hidden: .all, logits: .none))
        let hMid = try XCTUnwrap(fwd.hidden[LayerRef.mid.hiddenIndex(layers: TinyChatModel.layers)])
        let maxAbs = Double(hMid.scalars.map { abs($0) }.max() ?? 0)
        let rel = try attack(PGDOptions(layer: .mid, epsilon: 0.1), model: model).run(prompt: Self.prompt, target: Self.target)
        XCTAssertEqual(rel.hiddenMaxAbs, maxAbs, accuracy: 1e-5 * maxAbs)
        XCTAssertEqual(rel.epsilonAbsolute, 0.1 * maxAbs, accuracy: 1e-6 * maxAbs)
        XCTAssertEqual(rel.epsilonRelative, 0.1)
        let absolute = try attack(PGDOptions(layer: .mid, epsilon: 0.1, epsilonMode: .absolute), model: model)
            .run(prompt: Self.prompt, target: Self.target)
        XCTAssertEqual(absolute.epsilonAbsolute, 0.1)
        XCTAssertEqual(try XCTUnwrap(absolute.epsilonRelative), 0.1 / maxAbs, accuracy: 1e-6)
        XCTAssertNotEqual(maxAbs, 1, "the check needs a stream whose max differs from 1")
    }

    func testRandomBaselineHasTheSameLinfNormAndIsSeeded() throws {
        let model = try TinyChatModel.model()
        let o = PGDOptions(layer: .mid, epsilon: 0.2, attack: .random)
        let a = try attack(o, model: model)
        let r1 = try a.run(prompt: Self.prompt, target: Self.target, seed: 1)
        let r2 = try a.run(prompt: Self.prompt, target: Self.target, seed: 1)
        let r3 = try a.run(prompt: Self.prompt, target: Self.target, seed: 2)
        let pgd = try attack(PGDOptions(layer: .mid, epsilon: 0.2), model: model).run(prompt: Self.prompt, target: Self.target)
        XCTAssertEqual(r1.deltaLinf, r1.epsilonAbsolute, accuracy: 1e-6 * r1.epsilonAbsolute)
        XCTAssertEqual(r1.epsilonAbsolute, pgd.epsilonAbsolute)
        XCTAssertEqual(pgd.deltaLinf, pgd.epsilonAbsolute, accuracy: 1e-6 * pgd.epsilonAbsolute, "10 steps of eps/4 reach the boundary")
        let eps = Float(r1.deltaLinf)
        XCTAssertTrue(r1.delta.scalars.allSatisfy { $0 == eps || $0 == -eps })
        XCTAssertLessThanOrEqual(r1.deltaLinf, r1.epsilonAbsolute)
        XCTAssertEqual(r1.delta.scalars, r2.delta.scalars)
        XCTAssertNotEqual(r1.delta.scalars, r3.delta.scalars)
    }

    func testDeterministicAndUntargetedRaisesCleanResponseNLL() throws {
        let model = try TinyChatModel.model()
        let a = try attack(PGDOptions(layer: .mid, epsilon: 0.3), model: model)
        let x = try a.run(prompt: Self.prompt, target: Self.target)
        let y = try a.run(prompt: Self.prompt, target: Self.target)
        XCTAssertEqual(x.delta.scalars, y.delta.scalars)
        XCTAssertEqual(x.targetNLLAfter, y.targetNLLAfter)
        let u = try attack(PGDOptions(layer: .mid, epsilon: 0.3, attack: .untargeted), model: model)
        let out = try u.run(prompt: Self.prompt, target: Self.target, cleanResponse: [72, 101, 108, 108, 111])
        let before = try XCTUnwrap(out.objectiveBefore), after = try XCTUnwrap(out.objectiveAfter)
        XCTAssertGreaterThan(after, before + 1e-3, "untargeted NLL(y) \(before) -> \(after)")
    }

    /// Prompts of different lengths attacked together (left-padded) give each example the
    /// outcome of its own single-example attack, for every attack kind and delta mode.
    func testBatchedAttackMatchesSingleExampleAttacks() throws {
        let model = try TinyChatModel.model()
        let prompts = [Self.prompt, Array(Self.prompt.suffix(9)), Array(Self.prompt.prefix(12)) + [10]]
        let cleans = [[72, 105, 33], [], [78, 111, 32, 119, 97, 121]]
        let examples = prompts.indices.map {
            PGDAttack.Example(prompt: prompts[$0], target: Self.target, cleanResponse: cleans[$0], seed: UInt64($0 + 7))
        }
        let configs: [PGDOptions] = [
            PGDOptions(layer: .mid, epsilon: 0.3),
            PGDOptions(layer: .embedding, epsilon: 0.2, epsilonMode: .absolute, deltaShape: .perPosition),
            PGDOptions(layer: .block(0), epsilon: 0.3, deltaPositions: .all),
            PGDOptions(layer: .mid, epsilon: 0.3, attack: .untargeted),
            PGDOptions(layer: .last, epsilon: 0.3, deltaShape: .perPosition, attack: .random),
        ]
        for o in configs {
            let a = try attack(o, model: model)
            let batched = try a.run(batch: examples)
            XCTAssertEqual(batched.count, examples.count)
            for (i, e) in examples.enumerated() {
                let single = try a.run(prompt: e.prompt, target: e.target, cleanResponse: e.cleanResponse, seed: e.seed)
                let b = batched[i], tag = "\(o.attack) \(o.layer) \(o.deltaShape) example \(i)"
                XCTAssertEqual(b.delta.shape, single.delta.shape, tag)
                // Padding changes float summation order (|h| and so the budget move by ulps), and a
                // gradient element near zero may flip its sign: compare up to 1e-4 of the budget.
                let tol = 1e-4 * single.epsilonAbsolute
                let same = zip(b.delta.scalars, single.delta.scalars).filter { Double(abs($0 - $1)) <= tol }.count
                XCTAssertGreaterThanOrEqual(Double(same), 0.97 * Double(single.delta.count), "\(tag): deltas agree")
                XCTAssertEqual(b.targetNLLBefore, single.targetNLLBefore, accuracy: 1e-4, tag)
                XCTAssertEqual(b.targetNLLAfter, single.targetNLLAfter, accuracy: 1e-3, tag)
                XCTAssertEqual(b.hiddenMaxAbs, single.hiddenMaxAbs, accuracy: 1e-6 * single.hiddenMaxAbs, tag)
                XCTAssertEqual(b.epsilonAbsolute, single.epsilonAbsolute, accuracy: 1e-6 * single.epsilonAbsolute, tag)
                XCTAssertEqual(b.objectiveBefore == nil, single.objectiveBefore == nil, tag)
                if let x = b.objectiveAfter, let y = single.objectiveAfter { XCTAssertEqual(x, y, accuracy: 1e-3, tag) }
                XCTAssertLessThanOrEqual(b.deltaLinf, b.epsilonAbsolute, tag)
            }
        }
    }

    func testInvalidCombinationsAreRejected() throws {
        let model = try TinyChatModel.model()
        XCTAssertThrowsError(try attack(PGDOptions(layer: .mid, epsilon: 0.1, deltaShape: .perPosition, deltaPositions: .all), model: model))
        XCTAssertThrowsError(try attack(PGDOptions(layer: .block(9), epsilon: 0.1), model: model))
        XCTAssertThrowsError(try attack(PGDOptions(layer: .mid, epsilon: -1), model: model))
    }

    func testExampleRunnerGeneratesWithTheIntervention() throws {
        let dir = try Fixture.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let chat = try TinyChatModel.chat(in: dir)
        let ids = try chat.chatPrompt("How to")
        XCTAssertEqual(ids, chat.plainIds("<|im_start|>user\nHow to<|im_end|>\n<|im_start|>assistant\n"))
        XCTAssertEqual(ids.first, TinyTokenizer.bosId)
        XCTAssertEqual(ids.filter { $0 == TinyTokenizer.eosId }.count, 1)
        let runner = try PGDExampleRunner(chat: chat, options: PGDOptions(layer: .embedding, epsilon: 2, epsilonMode: .absolute),
                                          maxNewTokens: 6)
        let r = try runner.run(prompt: "How to", seed: 0)
        XCTAssertLessThanOrEqual(r.cleanIds.count, 6)
        XCTAssertLessThan(r.outcome.targetNLLAfter, r.outcome.targetNLLBefore)
        XCTAssertNotEqual(r.cleanIds, r.perturbedIds, "a large embedding perturbation changes the greedy response")
        let again = try runner.run(prompt: "How to", seed: 0)
        XCTAssertEqual(again.perturbedIds, r.perturbedIds)
    }
}
