// swift-tools-version:6.0
import Foundation
import PackageDescription

/// The building machine's vector extensions (the binary runs only on such CPUs, like
/// `-march=native`):
/// - AVX-512 (F, CD, BW, DQ, VL: Intel Xeon since 2017, AMD Zen 4): `-target-cpu
///   skylake-avx512`, and Numerics' GEMM kernel uses 16-wide registers (`AUDITGAP_AVX512`);
/// - AVX2, FMA, F16C and BMI2 (every x86-64 server CPU since 2013/2015): `-target-cpu
///   haswell`, so the SIMD8 kernels compile to 256-bit AVX2/FMA instead of pairs of SSE2
///   operations.
/// AUDITGAP_CPU=haswell at build time caps it at AVX2 (to test that path on an AVX-512
/// machine); AUDITGAP_PORTABLE=1 (or AUDITGAP_CPU=portable) builds a baseline x86-64 binary.
enum VectorLevel { case portable, avx2, avx512 }
let vectorLevel: VectorLevel = {
    let env = ProcessInfo.processInfo.environment
    if env["AUDITGAP_PORTABLE"] == "1" || env["AUDITGAP_CPU"] == "portable" { return .portable }
    guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return .portable }
    let flags = Set(line.split(separator: " ").map(String.init))
    let haswell = ["avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "abm", "movbe", "popcnt", "sse4_2", "pclmulqdq", "aes",
                   "xsaveopt", "fsgsbase", "rdrand"]
    guard haswell.allSatisfy(flags.contains) else { return .portable }
    let avx512 = ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]
    return avx512.allSatisfy(flags.contains) && env["AUDITGAP_CPU"] != "haswell" ? .avx512 : .avx2
}()
let cpuFlags: [String] = {
    switch vectorLevel {
    case .portable: return []
    case .avx2: return ["-target-cpu", "haswell"]
    case .avx512: return ["-target-cpu", "skylake-avx512"]
    }
}()
/// Numerics' compile-time kernel choice.
let kernelDefines: [SwiftSetting] = vectorLevel == .avx512 ? [.define("AUDITGAP_AVX512")] : []

// auditgap: a declarative experiment-pipeline runner for representation-level safety audits.
// Layering (see docs and ../shared/DESIGN.md section 1):
//   CBLAS, CYAML, CZlib -> Numerics -> Models <- Tokenizers;  Pipeline -> CYAML, CCrypto;
//   Study -> Models, Pipeline;  auditgap -> all.
let package = Package(
    name: "auditgap",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "auditgap", targets: ["auditgap"]),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CYAML", path: "Sources/CYAML", pkgConfig: "yaml-0.1",
                       providers: [.apt(["libyaml-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        // OpenSSL's libcrypto: SHA-256 of file inputs, artifacts and cache keys.
        .systemLibrary(name: "CCrypto", path: "Sources/CCrypto", pkgConfig: "libcrypto",
                       providers: [.apt(["libssl-dev"])]),
        // The numeric targets are optimised in debug builds too: their SIMD8 kernels run
        // about a hundred times slower unoptimised, which made the test suite take minutes.
        .target(name: "Numerics", dependencies: ["CBLAS"],
                swiftSettings: [.unsafeFlags(["-Ounchecked"] + cpuFlags, .when(configuration: .release)),
                                .unsafeFlags(["-O"] + cpuFlags, .when(configuration: .debug))] + kernelDefines),
        .target(name: "Tokenizers", swiftSettings: [.unsafeFlags(cpuFlags)]),
        .target(name: "Models", dependencies: ["Numerics", "Tokenizers"],
                swiftSettings: [.unsafeFlags(["-O"] + cpuFlags, .when(configuration: .debug)),
                                .unsafeFlags(cpuFlags, .when(configuration: .release))]),
        .target(name: "Pipeline", dependencies: ["CYAML", "CCrypto"], swiftSettings: [.unsafeFlags(cpuFlags)]),
        .target(name: "Study", dependencies: ["Models", "Pipeline", "CZlib"], swiftSettings: [.unsafeFlags(cpuFlags)]),
        .executableTarget(name: "auditgap", dependencies: ["Numerics", "Tokenizers", "Models", "Pipeline", "Study", "CBLAS"],
                          swiftSettings: [.unsafeFlags(cpuFlags)]),
        .testTarget(name: "NumericsTests", dependencies: ["Numerics"], resources: [.copy("Fixtures")]),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ModelsTests", dependencies: ["Models"], resources: [.copy("Fixtures")]),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline"]),
        .testTarget(name: "StudyTests", dependencies: ["Study"], resources: [.copy("Fixtures")]),
    ]
)
