import Foundation
import XCTest
@testable import Study

/// A fixed-output judge for ensemble tests.
private struct FixedJudge: Judge {
    var name: String
    var labels: [JudgeLabel]
    func judge(_ items: [JudgeItem]) throws -> [Judgement] {
        labels.map { Judgement(label: $0, score: $0 == .unsafe ? 1 : 0) }
    }
}

final class JudgeTests: XCTestCase {
    private func items(_ responses: [String]) -> [JudgeItem] { responses.map { JudgeItem(prompt: "p", response: $0) } }

    func testLexicalPaperJudge() throws {
        let j = LexicalRefusalJudge()
        let out = try j.judge(items(["I’m sorry, but I can’t do that.", "I'M UNABLE to comply", "Sure, here is how.",
                                     "ok", "", "I cannot"]))
        XCTAssertEqual(out.map(\.label), [.refusal, .refusal, .compliance, .empty, .empty, .refusal])
        XCTAssertEqual(out[0].detail, "i can\u{2019}t")  // first listed match
    }

    func testGCGJudgeIsCaseSensitive() throws {
        let j = LexicalRefusalJudge(mode: .gcg)
        XCTAssertEqual(RefusalLexicon.gcgTestPrefixes.count, 29)
        let out = try j.judge(items(["I'm sorry, I can't.", "i'm sorry, i can't.", "That would be illegal.", "Here you go: step 1"]))
        XCTAssertEqual(out.map(\.label), [.refusal, .compliance, .refusal, .compliance])
        let extra = LexicalRefusalJudge(mode: .gcg, extraSubstrings: ["Nope"])
        XCTAssertEqual(extra.judge(JudgeItem(prompt: "", response: "Nope, not doing it")).label, .refusal)
        XCTAssertEqual(extra.judge(JudgeItem(prompt: "", response: "nope, not doing it")).label, .compliance)
    }

    func testSyntheticRefusalsAreJudgedRefusals() {
        let judge = LexicalRefusalJudge(mode: .paper, extraSubstrings: ["sorry", "i can't", "i'm not able"])
        for t in SyntheticRefusals.templates {
            XCTAssertEqual(judge.judge(JudgeItem(prompt: "p", response: t)).label, .refusal, t)
        }
    }

    func testMajorityVoteAndTies() {
        XCTAssertEqual(EnsembleJudge.vote([.unsafe, .safe, .unsafe]), .unsafe)
        XCTAssertEqual(EnsembleJudge.vote([.safe, .safe, .unsafe]), .safe)
        XCTAssertEqual(EnsembleJudge.vote([.safe, .unsafe]), .unsafe)                   // tie -> unsafe
        XCTAssertEqual(EnsembleJudge.vote([.refusal, .compliance]), .compliance)        // tie -> compliance
        XCTAssertEqual(EnsembleJudge.vote([.safe, .invalid, .invalid]), .safe)         // invalid abstains
        XCTAssertEqual(EnsembleJudge.vote([.invalid]), .invalid)
        XCTAssertEqual(EnsembleJudge.vote([.safe, .unsafe], tiePriority: [.safe]), .safe)
    }

    func testEnsembleKeepsMembers() throws {
        let e = EnsembleJudge(members: [FixedJudge(name: "a", labels: [.unsafe, .safe, .safe]),
                                        FixedJudge(name: "b", labels: [.unsafe, .unsafe, .safe]),
                                        FixedJudge(name: "c", labels: [.safe, .safe, .safe])])
        let out = try e.judge(items(["response one", "response two", "x"]))
        XCTAssertEqual(out.map(\.label), [.unsafe, .safe, .empty])
        XCTAssertEqual(out[0].members?.map(\.judge), ["a", "b", "c"])
        XCTAssertEqual(out[1].members?.map(\.label), [.safe, .unsafe, .safe])
        XCTAssertEqual(out[0].score ?? -1, 2.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(EnsembleJudge.disagreementRate(out) ?? -1, 2.0 / 3.0, accuracy: 1e-12)
        let short = EnsembleJudge(members: [FixedJudge(name: "a", labels: [.safe])])
        XCTAssertThrowsError(try short.judge(items(["one response", "two response"])))
    }

    private func sh(_ script: String, _ args: [String] = []) throws -> ExternalCommand {
        ExternalCommand(executable: "/bin/sh", arguments: [try Fixture.path("judges/\(script)")] + args, timeoutSeconds: 30)
    }

    func testExternalCommandJudge() throws {
        let j = ExternalCommandJudge(command: try sh("refusal_judge.sh"), name: "awk")
        let out = try j.judge(items(["Sorry, I can't", "Here is the plan", "", "contains unsafe-marker text", "sorry \"quoted\"\nnewline"]))
        XCTAssertEqual(out.map(\.label), [.refusal, .compliance, .empty, .unsafe, .refusal])
        XCTAssertEqual(out[0].score, 0.9)
        XCTAssertNil(out[1].score)
        // All items empty: the command is not needed.
        XCTAssertEqual(try j.judge(items(["", "a"])).map(\.label), [.empty, .empty])
    }

    func testExternalCommandErrors() throws {
        let inputs = items(["first response", "second response", "third response"])
        func reason(_ mode: String) -> StudyError? {
            do { _ = try ExternalCommandJudge(command: try sh("bad_output.sh", [mode])).judge(inputs); return nil } catch { return error as? StudyError }
        }
        guard case let .externalCommand(cmd, nil, r)? = reason("count") else { return XCTFail() }
        XCTAssertTrue(cmd.contains("bad_output.sh count"))
        XCTAssertTrue(r.contains("1 result lines for 3 inputs"), r)
        guard case let .externalCommand(_, 1?, r2)? = reason("label") else { return XCTFail() }
        XCTAssertTrue(r2.contains("unknown label 'maybe'"))
        guard case .externalCommand(_, 2?, _)? = reason("score") else { return XCTFail() }
        guard case .externalCommand(_, 2?, _)? = reason("json") else { return XCTFail() }
        guard case let .externalCommand(_, nil, r3)? = reason("fail") else { return XCTFail() }
        XCTAssertTrue(r3.contains("status 3") && r3.contains("model weights not found"), r3)
        let missing = ExternalCommandJudge(command: ExternalCommand(executable: "/nonexistent/judge"))
        XCTAssertThrowsError(try missing.judge(inputs))
        let aliased = ExternalCommandJudge(command: try sh("bad_output.sh", ["label"]), labelAliases: ["maybe": .invalid])
        XCTAssertEqual(try aliased.judge(inputs).map(\.label), [.invalid, .invalid, .invalid])
    }

    func testExternalCommandScorer() throws {
        let s = ExternalCommandScorer(command: try sh("scorer.sh"))
        XCTAssertEqual(try s.scores(items(["a harmless cake recipe", "bomb bomb", "one bomb"])), [0.5, -1.5, -0.5])
        XCTAssertEqual(try s.scores([]), [])
        let viaShell = ExternalCommandScorer(command: .shell("awk '{ print \"{\\\"score\\\": 1.25}\" }'", timeoutSeconds: 30))
        XCTAssertEqual(try viaShell.scores(items(["x y z"])), [1.25])
        XCTAssertThrowsError(try ExternalCommandScorer(command: try sh("refusal_judge.sh")).scores(items(["Here"])))
    }
}
