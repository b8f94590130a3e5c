import XCTest
@testable import Pipeline

/// Deterministic pseudo-random bytes (SplitMix64), so a failing size can be reproduced.
private func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed
    var out = [UInt8](repeating: 0, count: count)
    var i = 0
    while i < count {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        z ^= z >> 31
        for b in 0..<min(8, count - i) { out[i + b] = UInt8(truncatingIfNeeded: z >> (8 * UInt64(b))) }
        i += 8
    }
    return out
}

final class SHA256Tests: XCTestCase {
    /// NIST FIPS 180-4 example messages and their digests.
    static let nistVectors: [(message: String, digest: String)] = [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        (String(repeating: "a", count: 1_000_000), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
    ]

    func testKnownVectors() {
        for (message, digest) in Self.nistVectors {
            XCTAssertEqual(SHA256.hex(of: message), digest, "\(message.count) bytes")
            XCTAssertEqual(SHA256.hex(of: Array(message.utf8)), digest, "\(message.count) bytes as [UInt8]")
            XCTAssertEqual(SHA256.hex(of: Data(message.utf8)), digest, "\(message.count) bytes as Data")
            var s = SHA256()
            s.update(message)
            XCTAssertEqual(s.finalizeHex(), digest, "\(message.count) bytes, incremental")
        }
    }

    func testReferenceImplementationOnKnownVectors() {
        for (message, digest) in Self.nistVectors {
            XCTAssertEqual(ReferenceSHA256.hex(of: message), digest, "\(message.count) bytes")
        }
    }

    func testEmptyInputMatchesReference() {
        var s = SHA256()
        s.update(UnsafeRawBufferPointer(start: nil, count: 0))
        s.update([UInt8]())
        XCTAssertEqual(s.finalizeHex(), ReferenceSHA256.hex(of: [UInt8]()))
        XCTAssertEqual(SHA256.hex(of: [UInt8]()), ReferenceSHA256.hex(of: [UInt8]()))
    }

    func testRandomBuffersAroundBlockBoundariesMatchReference() {
        for n in 0...200 {
            let bytes = randomBytes(n, seed: UInt64(n))
            XCTAssertEqual(SHA256.hex(of: bytes), ReferenceSHA256.hex(of: bytes), "\(n) bytes")
        }
    }

    func testRandomMegabyteBuffersMatchReference() {
        for n in [(1 << 20) - 1, 1 << 20, 3 << 20 | 55] {
            let bytes = randomBytes(n, seed: UInt64(n))
            XCTAssertEqual(SHA256.hex(of: bytes), ReferenceSHA256.hex(of: bytes), "\(n) bytes")
            XCTAssertEqual(SHA256.hex(of: Data(bytes)), ReferenceSHA256.hex(of: bytes), "\(n) bytes as Data")
        }
    }

    func testIncrementalOddChunksMatchOneShot() {
        let bytes = randomBytes(100_003, seed: 7)
        let oneShot = SHA256.hex(of: bytes)
        XCTAssertEqual(oneShot, ReferenceSHA256.hex(of: bytes))
        for chunk in [1, 3, 7, 31, 55, 63, 64, 65, 127, 1000, 4097, 65_537] {
            var s = SHA256()
            bytes.withUnsafeBytes { all in
                var offset = 0
                while offset < all.count {
                    let n = min(chunk, all.count - offset)
                    s.update(UnsafeRawBufferPointer(rebasing: all[offset..<(offset + n)]))
                    offset += n
                }
            }
            XCTAssertEqual(s.finalizeHex(), oneShot, "chunk \(chunk)")
        }
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

    func testCopyHashesIndependently() {
        var a = SHA256()
        a.update("abc")
        var b = a
        b.update("def")
        XCTAssertEqual(a.finalizeHex(), SHA256.hex(of: "abc"))
        XCTAssertEqual(b.finalizeHex(), SHA256.hex(of: "abcdef"))
        var c = SHA256()
        c.update("ab")
        let d = c
        c.update("c")
        var e = d
        XCTAssertEqual(c.finalizeHex(), SHA256.hex(of: "abc"))
        XCTAssertEqual(e.finalizeHex(), SHA256.hex(of: "ab"))
    }

    func testFileHash() throws {
        let path = NSTemporaryDirectory() + "sha-\(getpid()).txt"
        try Data("abc".utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertEqual(try SHA256.hex(ofFile: path).hash, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    func testFileHashAcrossReadChunksMatchesReference() throws {
        let path = NSTemporaryDirectory() + "sha-chunks-\(getpid()).bin"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let chunk = SHA256.fileChunk
        for n in [0, 1, 64, chunk - 1, chunk, chunk + 1, 2 * chunk + 12_345] {
            let bytes = randomBytes(n, seed: UInt64(n) ^ 0x5eed)
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let (hash, size) = try SHA256.hex(ofFile: path)
            XCTAssertEqual(size, n)
            XCTAssertEqual(hash, ReferenceSHA256.hex(of: bytes), "\(n) bytes")
        }
    }

    func testFileHashOfMissingFileThrowsIOError() {
        let path = NSTemporaryDirectory() + "sha-missing-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        XCTAssertThrowsError(try SHA256.hex(ofFile: path)) { error in
            guard case let .io(p, _)? = error as? PipelineError else { return XCTFail("\(error)") }
            XCTAssertEqual(p, path)
        }
    }

    func testContentHashesAreSHA256OfTheSameBytes() throws {
        // Cache keys and manifests hash the same bytes as before: check them against the reference.
        let manifest = Manifest(key: "k", files: [.init(path: "b.txt", sha256: "22", size: 2), .init(path: "a.txt", sha256: "11", size: 1)])
        XCTAssertEqual(manifest.contentHash, ReferenceSHA256.hex(of: "a.txt\u{0}11\nb.txt\u{0}22\n"))
        let box = Sandbox()
        box.write("tree/x.txt", "x")
        box.write("tree/sub/y.txt", "yy")
        let cache = StatCache(path: nil)
        let expected = "sub/y.txt\u{0}" + ReferenceSHA256.hex(of: "yy") + "\n" + "x.txt\u{0}" + ReferenceSHA256.hex(of: "x") + "\n"
        XCTAssertEqual(try cache.contentHash(box.dir + "/tree"), "tree:" + ReferenceSHA256.hex(of: expected))
        XCTAssertEqual(try cache.contentHash(box.dir + "/tree/x.txt"), ReferenceSHA256.hex(of: "x"))
    }

    func testJSONRoundTripAndCanonicalOrder() throws {
        let v: Value = .map(["b": .list([.int(1), .double(0.5), .string("x\"\n")]), "a": .null, "c": .bool(true)])
        XCTAssertEqual(v.canonicalJSON, #"{"a":null,"b":[1,0.5,"x\"\n"],"c":true}"#)
        XCTAssertEqual(try JSON.parse(Array(v.canonicalJSON.utf8)), v)
        XCTAssertEqual(try JSON.parse(Array(v.prettyJSON.utf8)), v)
    }
}
