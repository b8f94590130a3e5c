// TEMPORARY: stand-in for the `models` branch's ModelError until that branch is merged.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case missingWeight(name: String, source: String)
    case badWeightShape(name: String, source: String, shape: [Int], expected: [Int])
    case invalidInput(String)
    case io(path: String, reason: String)
    public var description: String { "\(self)" }
}
