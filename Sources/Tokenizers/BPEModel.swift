import Foundation

/// A BPE model as in HF tokenizers (`model.type == "BPE"`): vocabulary, ranked merges,
/// `ignore_merges`, `byte_fallback` (`<0xXX>` tokens) and `unk_token` with `fuse_unk`.
///
/// Words are merged lowest-rank first, ties to the leftmost pair, using a binary heap over a
/// doubly linked list of symbols; results are cached per word.
final class BPEModel: @unchecked Sendable {
    // @unchecked Sendable: all stored properties are immutable after init except `cache`,
    // which is only accessed under `cacheLock`.
    let vocab: [String: Int]
    let idToToken: [String?]
    /// (left id << 32 | right id) -> (rank, merged id)
    let merges: [UInt64: (rank: Int32, id: Int32)]
    /// Single-scalar tokens for fast initial symbol lookup.
    let scalarIds: [UInt32: Int32]
    let byteFallbackIds: [Int32]?
    let unkId: Int?
    let fuseUnk: Bool
    let ignoreMerges: Bool
    private var cache: [String: [Int32]] = [:]
    private let cacheLock = NSLock()
    private static let cacheLimit = 50_000
    /// Long words (e.g. whole SentencePiece segments) are not cached.
    private static let maxCachedWordLength = 256

    init(vocab: [String: Int], merges: [(String, String)], unkToken: String?, fuseUnk: Bool,
         byteFallback: Bool, ignoreMerges: Bool) throws {
        self.vocab = vocab
        let maxId = vocab.values.max() ?? -1
        var rev = [String?](repeating: nil, count: maxId + 1)
        var scalarIds: [UInt32: Int32] = [:]
        for (t, id) in vocab {
            guard id >= 0 else { throw TokenizerError.invalidArgument("negative id \(id) for token \(t)") }
            rev[id] = t
            let us = t.unicodeScalars
            if us.count == 1, let s = us.first { scalarIds[s.value] = Int32(id) }
        }
        self.idToToken = rev
        self.scalarIds = scalarIds
        var table: [UInt64: (rank: Int32, id: Int32)] = [:]
        table.reserveCapacity(merges.count)
        for (rank, (a, b)) in merges.enumerated() {
            guard let ia = vocab[a], let ib = vocab[b] else {
                throw TokenizerError.invalidArgument("merge \(rank) '\(a) \(b)' uses a token not in the vocabulary")
            }
            guard let m = vocab[a + b] else {
                throw TokenizerError.invalidArgument("merge \(rank) '\(a) \(b)': merged token not in the vocabulary")
            }
            let key = UInt64(UInt32(ia)) << 32 | UInt64(UInt32(ib))
            if table[key] == nil { table[key] = (Int32(rank), Int32(m)) }
        }
        self.merges = table
        if byteFallback {
            var ids: [Int32] = []
            for b in 0..<256 {
                guard let id = vocab[String(format: "<0x%02X>", b)] else { ids = []; break }
                ids.append(Int32(id))
            }
            self.byteFallbackIds = ids.count == 256 ? ids : nil
        } else {
            self.byteFallbackIds = nil
        }
        self.unkId = unkToken.flatMap { vocab[$0] }
        self.fuseUnk = fuseUnk
        self.ignoreMerges = ignoreMerges
    }

    /// Token ids for one pre-tokenized word.
    func tokenize(_ word: [Unicode.Scalar], into out: inout [Int]) {
        if word.isEmpty { return }
        let key = String(String.UnicodeScalarView(word))
        if ignoreMerges, let id = vocab[key] {
            out.append(id)
            return
        }
        cacheLock.lock()
        let hit = cache[key]
        cacheLock.unlock()
        if let hit {
            for id in hit { out.append(Int(id)) }
            return
        }
        let ids = merge(word)
        if word.count > BPEModel.maxCachedWordLength {
            for id in ids { out.append(Int(id)) }
            return
        }
        cacheLock.lock()
        if cache.count >= BPEModel.cacheLimit { cache.removeAll(keepingCapacity: true) }
        cache[key] = ids
        cacheLock.unlock()
        for id in ids { out.append(Int(id)) }
    }

    private struct Candidate: Comparable {
        var rank: Int32
        var pos: Int32
        var newId: Int32
        static func < (a: Candidate, b: Candidate) -> Bool {
            a.rank != b.rank ? a.rank < b.rank : a.pos < b.pos
        }
    }

    /// Initial symbols then heap-driven merging.
    private func merge(_ word: [Unicode.Scalar]) -> [Int32] {
        var ids: [Int32] = []
        ids.reserveCapacity(word.count)
        var lastWasUnk = false
        for s in word {
            if let id = scalarIds[s.value] {
                ids.append(id)
                lastWasUnk = false
                continue
            }
            if let fb = byteFallbackIds {
                UTF8.encode(s) { ids.append(fb[Int($0)]) }
                lastWasUnk = false
                continue
            }
            if let unk = unkId {
                if fuseUnk && lastWasUnk { continue }
                ids.append(Int32(unk))
                lastWasUnk = true
            }
        }
        let n = ids.count
        if n < 2 || merges.isEmpty { return ids }
        var prev = [Int32](repeating: -1, count: n)
        var next = [Int32](repeating: -1, count: n)
        var alive = [Bool](repeating: true, count: n)
        for i in 0..<n {
            prev[i] = Int32(i - 1)
            next[i] = i + 1 < n ? Int32(i + 1) : -1
        }
        var heap = MinHeap<Candidate>()
        @inline(__always) func pair(_ a: Int32, _ b: Int32) -> (rank: Int32, id: Int32)? {
            merges[UInt64(UInt32(a)) << 32 | UInt64(UInt32(b))]
        }
        for i in 0..<(n - 1) {
            if let m = pair(ids[i], ids[i + 1]) { heap.push(Candidate(rank: m.rank, pos: Int32(i), newId: m.id)) }
        }
        while let top = heap.pop() {
            let p = Int(top.pos)
            guard alive[p] else { continue }
            let q = Int(next[p])
            guard q >= 0, let m = pair(ids[p], ids[q]), m.id == top.newId else { continue }
            ids[p] = m.id
            alive[q] = false
            let r = next[q]
            next[p] = r
            if r >= 0 { prev[Int(r)] = Int32(p) }
            let l = prev[p]
            if l >= 0, let lm = pair(ids[Int(l)], ids[p]) {
                heap.push(Candidate(rank: lm.rank, pos: l, newId: lm.id))
            }
            if r >= 0, let rm = pair(ids[p], ids[Int(r)]) {
                heap.push(Candidate(rank: rm.rank, pos: Int32(p), newId: rm.id))
            }
        }
        var out: [Int32] = []
        var i: Int32 = 0
        while i >= 0 {
            out.append(ids[Int(i)])
            i = next[Int(i)]
        }
        return out
    }
}

/// A minimal binary min-heap.
struct MinHeap<T: Comparable> {
    private var items: [T] = []

    mutating func push(_ x: T) {
        items.append(x)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if items[i] < items[parent] {
                items.swapAt(i, parent)
                i = parent
            } else {
                break
            }
        }
    }

    mutating func pop() -> T? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            let n = items.count
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < n && items[l] < items[m] { m = l }
                if r < n && items[r] < items[m] { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return first
    }
}
