// swift-tools-version:6.0
import Foundation
import PackageDescription

/// `-target-cpu haswell` when the building machine has AVX2, FMA, F16C and BMI2 (every x86-64
/// server CPU since 2013/2015): the SIMD8 kernels then compile to 256-bit AVX2/FMA instead
/// of pairs of SSE2 operations. The binary runs only on such CPUs, like `-march=native`;
/// set AUDITGAP_PORTABLE=1 at build time for a baseline x86-64 binary.
let cpuFlags: [String] = {
    if ProcessInfo.processInfo.environment["AUDITGAP_PORTABLE"] == "1" { return [] }
    guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return [] }
    let flags = Set(line.split(separator: " ").map(String.init))
    let haswell = ["avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "abm", "movbe", "popcnt", "sse4_2", "pclmulqdq", "aes",
                   "xsaveopt", "fsgsbase", "rdrand"]
    return haswell.allSatisfy(flags.contains) ? ["-target-cpu", "haswell"] : []
}()

// auditgap: a declarative experiment-pipeline runner for representation-level safety audits.
// Layering (see docs and ../shared/DESIGN.md section 1):
//   CBLAS, CYAML, CZlib -> Numerics -> Models <- Tokenizers;  Pipeline -> CYAML;
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
        // The numeric targets are optimised in debug builds too: their SIMD8 kernels run
        // about a hundred times slower unoptimised, which made the test suite take minutes.
        .target(name: "Numerics", dependencies: ["CBLAS"],
                swiftSettings: [.unsafeFlags(["-Ounchecked"] + cpuFlags, .when(configuration: .release)),
                                .unsafeFlags(["-O"] + cpuFlags, .when(configuration: .debug))]),
        .target(name: "Tokenizers", swiftSettings: [.unsafeFlags(cpuFlags)]),
        .target(name: "Models", dependencies: ["Numerics", "Tokenizers"],
                swiftSettings: [.unsafeFlags(["-O"] + cpuFlags, .when(configuration: .debug)),
                                .unsafeFlags(cpuFlags, .when(configuration: .release))]),
        .target(name: "Pipeline", dependencies: ["CYAML"], swiftSettings: [.unsafeFlags(cpuFlags)]),
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
