import XCTest
@testable import Numerics

final class BLASCoreTests: XCTestCase {
    let avx512: Set<String> = ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]
    let avx2: Set<String> = ["sse4_2", "avx", "avx2", "fma"]

    /// OpenBLAS's generic fallback on a vector CPU gets the core that fits the CPU; a core
    /// with vector kernels, or a CPU without AVX2, is left alone.
    func testOverrideOnlyReplacesGenericKernels() {
        XCTAssertEqual(BLASCore.override(core: "Prescott", flags: avx512), "SkylakeX")
        XCTAssertEqual(BLASCore.override(core: "Prescott", flags: avx2), "Haswell")
        XCTAssertEqual(BLASCore.override(core: "Sandybridge", flags: avx2), "Haswell")
        XCTAssertEqual(BLASCore.override(core: "Nehalem", flags: avx512.subtracting(["avx512vl"])), "Haswell")
        XCTAssertNil(BLASCore.override(core: "Prescott", flags: ["sse4_2", "avx"]))
        for core in ["Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"] {
            XCTAssertNil(BLASCore.override(core: core, flags: avx512), core)
        }
    }

    /// The library reports a core name.
    func testNameIsReported() {
        XCTAssertFalse(BLASCore.name.isEmpty)
    }
}
