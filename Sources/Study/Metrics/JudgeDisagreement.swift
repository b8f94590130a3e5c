// JudgeDisagreement: per-judge label counts and pairwise agreement of ensemble members.
import Foundation

/// How the members of an ensemble agreed on a set of items.
public struct JudgeDisagreement: Sendable, Codable, Equatable {
    /// Agreement of two judges.
    public struct Pair: Sendable, Codable, Equatable {
        /// First judge.
        public var a: String
        /// Second judge.
        public var b: String
        /// Items where both gave a valid label.
        public var compared: Int
        /// Of those, items with the same label.
        public var agreed: Int
        /// agreed / compared (nil when nothing was compared).
        public var rate: Double?

        /// Encodes a missing rate as JSON null.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(a, forKey: .a)
            try c.encode(b, forKey: .b)
            try c.encode(compared, forKey: .compared)
            try c.encode(agreed, forKey: .agreed)
            try c.encode(rate, forKey: .rate)
        }
    }

    /// A name for the item set (e.g. model and source).
    public var name: String
    /// Member judges in vote order.
    public var judges: [String]
    /// Items with member votes.
    public var items: Int
    /// Items where valid member labels are not unanimous.
    public var disagreements: Int
    /// Label counts per judge (judge -> label raw value -> count).
    public var labelCounts: [String: [String: Int]]
    /// Agreement for every pair of judges.
    public var pairs: [Pair]

    /// Computes agreement statistics from ensemble judgements (items without members are ignored).
    public init(name: String, judgements: [Judgement]) {
        self.name = name
        let voted = judgements.compactMap(\.members)
        var judges: [String] = []
        for votes in voted { for v in votes where !judges.contains(v.judge) { judges.append(v.judge) } }
        self.judges = judges
        items = voted.count
        disagreements = voted.filter { Set($0.map(\.label).filter { $0 != .invalid }).count > 1 }.count
        var counts: [String: [String: Int]] = [:]
        for votes in voted { for v in votes { counts[v.judge, default: [:]][v.label.rawValue, default: 0] += 1 } }
        labelCounts = counts
        var pairs: [Pair] = []
        for i in judges.indices {
            for j in judges.indices where j > i {
                var compared = 0, agreed = 0
                for votes in voted {
                    guard let a = votes.first(where: { $0.judge == judges[i] })?.label,
                          let b = votes.first(where: { $0.judge == judges[j] })?.label,
                          a != .invalid, b != .invalid else { continue }
                    compared += 1
                    if a == b { agreed += 1 }
                }
                pairs.append(Pair(a: judges[i], b: judges[j], compared: compared, agreed: agreed,
                                  rate: compared > 0 ? Double(agreed) / Double(compared) : nil))
            }
        }
        self.pairs = pairs
    }
}
