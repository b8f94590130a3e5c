// ExternalCommandJudge / ExternalCommandScorer: judges and scorers implemented by another program.
import Foundation
import Pipeline

/// A judge run as an external command.
///
/// Protocol: the command reads one `{"prompt": ..., "response": ...}` JSON object per line on
/// stdin and prints, per input line and in order, one `{"label": "...", "score": x}` object on
/// stdout (`score` optional, a finite number). Labels are `refusal`, `compliance`, `safe`,
/// `unsafe`, `empty` or `invalid` (or keys of `labelAliases`). Items whose response has fewer
/// than 3 characters are labelled `empty` locally and not sent.
public struct ExternalCommandJudge: Judge {
    /// The command.
    public var command: ExternalCommand
    /// The judge's name.
    public var name: String
    /// Labels the command may print besides the `JudgeLabel` raw values (lowercased -> label),
    /// e.g. `["yes": .compliance, "no": .refusal]` for HarmBench-style classifiers.
    public var labelAliases: [String: JudgeLabel]
    /// Whether near-empty responses are labelled `empty` without asking the command.
    public var labelEmptyLocally: Bool

    /// A command judge.
    public init(command: ExternalCommand, name: String = "external", labelAliases: [String: JudgeLabel] = [:],
                labelEmptyLocally: Bool = true) {
        self.command = command
        self.name = name
        self.labelAliases = labelAliases
        self.labelEmptyLocally = labelEmptyLocally
    }

    /// Runs the command once on all non-empty items.
    public func judge(_ items: [JudgeItem]) throws -> [Judgement] {
        var results = [Judgement?](repeating: nil, count: items.count)
        var sendIndex: [Int] = []
        for (i, item) in items.enumerated() {
            if labelEmptyLocally && item.isEmptyResponse { results[i] = Judgement(label: .empty) } else { sendIndex.append(i) }
        }
        if !sendIndex.isEmpty {
            let lines = try ExternalCommandIO.exchange(command, items: sendIndex.map { items[$0] })
            for (k, (line, value)) in lines.enumerated() {
                guard let text = value.value(at: "label")?.scalarText?.lowercased() else {
                    throw StudyError.externalCommand(command: command.description, line: line,
                                                     reason: "missing string field 'label'")
                }
                guard let label = labelAliases[text] ?? JudgeLabel(rawValue: text) else {
                    let allowed = (JudgeLabel.allCases.map(\.rawValue) + labelAliases.keys.sorted()).joined(separator: ", ")
                    throw StudyError.externalCommand(command: command.description, line: line,
                                                     reason: "unknown label '\(text)'; expected one of \(allowed)")
                }
                let score = try ExternalCommandIO.optionalScore(value, command: command, line: line)
                results[sendIndex[k]] = Judgement(label: label, score: score)
            }
        }
        return results.map { $0 ?? Judgement(label: .invalid) }
    }
}

/// A harmlessness scorer run as an external command: same stdin protocol as
/// `ExternalCommandJudge`; stdout has one `{"score": x}` per input line (x finite, higher = more harmless).
public struct ExternalCommandScorer: HarmlessnessScorer {
    /// The command.
    public var command: ExternalCommand
    /// The scorer's name.
    public var name: String

    /// A command scorer.
    public init(command: ExternalCommand, name: String = "external-scorer") {
        self.command = command
        self.name = name
    }

    /// Runs the command once on all items.
    public func scores(_ items: [JudgeItem]) throws -> [Double] {
        guard !items.isEmpty else { return [] }
        return try ExternalCommandIO.exchange(command, items: items).map { line, value in
            guard let s = try ExternalCommandIO.optionalScore(value, command: command, line: line) else {
                throw StudyError.externalCommand(command: command.description, line: line, reason: "missing numeric field 'score'")
            }
            return s
        }
    }
}

/// Shared request/response handling of the command judges.
enum ExternalCommandIO {
    /// Sends items, returns one output object per item (validated count and shape).
    static func exchange(_ command: ExternalCommand, items: [JudgeItem]) throws -> [(Int, Value)] {
        let input = items.map { Value.map(["prompt": .string($0.prompt), "response": .string($0.response)]) }
        let lines = try CommandRunner.runJSONL(command, input: input)
        guard lines.count == items.count else {
            throw StudyError.externalCommand(command: command.description, line: nil,
                                             reason: "printed \(lines.count) result lines for \(items.count) inputs; print exactly one JSON object per input line")
        }
        for (line, value) in lines {
            guard case .map = value else {
                throw StudyError.externalCommand(command: command.description, line: line, reason: "expected a JSON object, got \(value.jsonTypeName)")
            }
        }
        return lines
    }

    /// The `score` field: nil when absent or null, an error when not a finite number.
    static func optionalScore(_ value: Value, command: ExternalCommand, line: Int) throws -> Double? {
        switch value.value(at: "score") {
        case nil, .null?: return nil
        case let .int(i)?: return Double(i)
        case let .double(d)?: return d
        case let other?:
            throw StudyError.externalCommand(command: command.description, line: line,
                                             reason: "field 'score' must be a finite number, got \(other.jsonTypeName)")
        }
    }
}
