import XCTest
@testable import Pipeline

final class SHA256Tests: XCTestCase {
    func testKnownVectors() {
        XCTAssertEqual(SHA256.hex(of: ""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(of: "abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex(of: "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hex(of: String(repeating: "a", count: 1_000_000)),
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testStreamingMatchesOneShot() {
        let text = String((0..<1000).map { Character(UnicodeScalar(65 + $0 % 26)!) })
        for chunk in [1, 7, 63, 64, 65, 333] {
            var s = SHA256()
            var rest = Substring(text)
            while !rest.isEmpty {
                s.update(String(rest.prefix(chunk)))
                rest = rest.dropFirst(chunk)
            }
            XCTAssertEqual(s.finalizeHex(), SHA256.hex(of: text), "chunk \(chunk)")
        }
    }

    func testFileHash() throws {
        let path = NSTemporaryDirectory() + "sha-\(getpid()).txt"
        try Data("abc".utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertEqual(try SHA256.hex(ofFile: path).hash, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    func testJSONRoundTripAndCanonicalOrder() throws {
        let v: Value = .map(["b": .list([.int(1), .double(0.5), .string("x\"\n")]), "a": .null, "c": .bool(true)])
        XCTAssertEqual(v.canonicalJSON, #"{"a":null,"b":[1,0.5,"x\"\n"],"c":true}"#)
        XCTAssertEqual(try JSON.parse(Array(v.canonicalJSON.utf8)), v)
        XCTAssertEqual(try JSON.parse(Array(v.prettyJSON.utf8)), v)
    }
}
