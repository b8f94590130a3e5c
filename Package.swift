// swift-tools-version:6.0
import PackageDescription

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
                swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release)),
                                .unsafeFlags(["-O"], .when(configuration: .debug))]),
        .target(name: "Tokenizers"),
        .target(name: "Models", dependencies: ["Numerics", "Tokenizers"],
                swiftSettings: [.unsafeFlags(["-O"], .when(configuration: .debug))]),
        .target(name: "Pipeline", dependencies: ["CYAML"]),
        .target(name: "Study", dependencies: ["Models", "Pipeline", "CZlib"]),
        .executableTarget(name: "auditgap", dependencies: ["Numerics", "Tokenizers", "Models", "Pipeline", "Study", "CBLAS"]),
        .testTarget(name: "NumericsTests", dependencies: ["Numerics"], resources: [.copy("Fixtures")]),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ModelsTests", dependencies: ["Models"], resources: [.copy("Fixtures")]),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline"]),
        .testTarget(name: "StudyTests", dependencies: ["Study"], resources: [.copy("Fixtures")]),
    ]
)
