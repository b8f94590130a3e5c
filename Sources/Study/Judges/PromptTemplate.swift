// PromptTemplate: `{prompt}` / `{response}` placeholders filled in one pass.
import Foundation

/// A text template with `{prompt}` and `{response}` placeholders (other braces are literal).
public struct PromptTemplate: Sendable, Equatable, Codable {
    /// The hh-rlhf format reward models are trained on.
    public static let hhRLHF = PromptTemplate("\n\nHuman: {prompt} \n\nAssistant: {response}")

    public var text: String

    public init(_ text: String) { self.text = text }

    /// The template with placeholders replaced; a placeholder inside the inserted text is not expanded again.
    public func fill(prompt: String, response: String) -> String {
        var out = ""
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "{") {
            out += rest[..<open]
            let tail = rest[open...]
            if tail.hasPrefix("{prompt}") {
                out += prompt
                rest = tail.dropFirst("{prompt}".count)
            } else if tail.hasPrefix("{response}") {
                out += response
                rest = tail.dropFirst("{response}".count)
            } else {
                out += "{"
                rest = tail.dropFirst()
            }
        }
        return out + rest
    }
}
