import Foundation
import XCTest
@testable import Tokenizers

/// Jinja subset against jinja2 as configured by transformers (fixture), plus error reporting.
final class JinjaTests: XCTestCase {
    /// Converts fixture JSON (with {"__ordered__": [[k, v]...]} dicts) to Jinja values.
    static func value(_ any: Any?) -> JinjaValue {
        if let d = any as? [String: Any], let pairs = d["__ordered__"] as? [[Any]] {
            return .dict(pairs.map { ($0[0] as? String ?? "", value($0[1])) })
        }
        if let a = any as? [Any] { return .array(a.map { value($0) }) }
        return JinjaValue.fromJSON(any)
    }

    func testFixtureCases() throws {
        let cases = try XCTUnwrap(Fixtures.json("jinja_expected.json") as? [[String: Any]])
        XCTAssertGreaterThan(cases.count, 25)
        var failures: [String] = []
        for c in cases {
            let name = c["name"] as? String ?? "?"
            let source = c["template"] as? String ?? ""
            var context: [String: JinjaValue] = [:]
            if case let .object(o) = JinjaTests.value(c["context"]) { for k in o.keys { context[k] = o[k] } }
            do {
                let out = try JinjaTemplate(source).render(context)
                if let expected = c["text"] as? String {
                    if out != expected { failures.append("\(name): \(out.debugDescription) != \(expected.debugDescription)") }
                } else {
                    failures.append("\(name): expected an error (\(c["error"] ?? "")), rendered \(out.debugDescription)")
                }
            } catch {
                if c["text"] != nil { failures.append("\(name): unexpected error \(error)") }
                if name == "raise", case let TokenizerError.templateRaised(msg) = error {
                    XCTAssertEqual(msg, "bad input: 1")
                }
            }
        }
        XCTAssert(failures.isEmpty, "\(failures.count) of \(cases.count) Jinja cases differ:\n" + failures.joined(separator: "\n"))
    }

    func testSyntaxErrorsReportLineAndColumn() {
        func error(_ src: String) -> TokenizerError? {
            do {
                _ = try JinjaTemplate(src).render([:])
                return nil
            } catch let e as TokenizerError {
                return e
            } catch {
                return nil
            }
        }
        guard case let .template(line, column, message)? = error("ok\n  {% for x in %}{% endfor %}") else {
            return XCTFail("expected a template error")
        }
        XCTAssertEqual(line, 2)
        XCTAssertEqual(column, 15)  // where the tag ended early
        XCTAssert(message.contains("expected an expression"), message)
        guard case let .template(l2, c2, m2)? = error("{% if x %}\nabc") else { return XCTFail("missing endif") }
        XCTAssertEqual(l2, 1)
        XCTAssertEqual(c2, 1)
        XCTAssert(m2.contains("endif"), m2)
        guard case let .template(_, _, m3)? = error("{% call foo() %}{% endcall %}") else { return XCTFail("call") }
        XCTAssert(m3.contains("unsupported construct"), m3)
        guard case let .template(_, _, m4)? = error("{{ x | frobnicate }}") else { return XCTFail("filter") }
        XCTAssert(m4.contains("unsupported filter 'frobnicate'"), m4)
        guard case .template? = error("{{ 'unterminated }}") else { return XCTFail("string") }
        XCTAssertEqual(error("{{ foo.bar }}")?.description, "chat template 1:7: 'foo' is undefined")
        guard case let .template(l5, c5, m5)? = error("a\n{% if x %}{% break %}{% endif %}") else { return XCTFail("break") }
        XCTAssertEqual([l5, c5], [2, 11])
        XCTAssert(m5.contains("outside a for loop"), m5)
        guard case let .template(_, _, m6)? = error("{% for x in y recursive %}{% endfor %}") else { return XCTFail("rec") }
        XCTAssert(m6.contains("recursive"), m6)
    }

    func testRawBlockAndComments() throws {
        let out = try JinjaTemplate("{% raw %}{{ not evaluated }}{% endraw %}|{# gone #}|{{ '{{' }}").render([:])
        XCTAssertEqual(out, "{{ not evaluated }}||{{")
    }

    func testDictLiteralClosingBracesInsideOutputTag() throws {
        let out = try JinjaTemplate("{{ {'a': {'b': 1}} | tojson }}").render([:])
        XCTAssertEqual(out, "{\"a\": {\"b\": 1}}")
    }

    func testStrftimeNow() throws {
        let date = Date(timeIntervalSince1970: 1_721_952_000)  // 2024-07-26 00:00:00 UTC
        let tz = TimeZone.current.secondsFromGMT(for: date)
        let out = try JinjaTemplate("{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%B %A %j') }}")
            .render([:], now: date.addingTimeInterval(TimeInterval(-tz + 12 * 3600)))
        XCTAssertEqual(out, "26 Jul 2024|July Friday 208")
    }
}
