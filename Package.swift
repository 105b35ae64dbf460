// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Plateau",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "PlateauCore", targets: ["PlateauCore"]),
        .library(name: "PlateauTheory", targets: ["PlateauTheory"]),
        .library(name: "PlateauSimulation", targets: ["PlateauSimulation"]),
        .library(name: "PlateauCompare", targets: ["PlateauCompare"]),
        .library(name: "PlateauStudies", targets: ["PlateauStudies"]),
        .executable(name: "plateau", targets: ["plateau"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        // GSL, linked as `gsl` alone (never `gslcblas`): CBLAS symbols resolve to OpenBLAS.
        .systemLibrary(name: "CGSL", path: "Sources/CGSL"),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS"),
        .target(name: "PlateauCore", dependencies: [.product(name: "Yams", package: "Yams")]),
        .target(name: "PlateauTheory", dependencies: ["PlateauCore", "CGSL"]),
        .target(name: "PlateauSimulation", dependencies: ["PlateauCore", "COpenBLAS"]),
        .target(name: "PlateauCompare", dependencies: ["PlateauCore", "CGSL"]),
        // Orchestration shared by the CLI and the agreement tests: simulate, run each seed's theory
        // from its realised start, compare.
        .target(name: "PlateauStudies", dependencies: [
            "PlateauCore", "PlateauTheory", "PlateauSimulation", "PlateauCompare", .product(name: "Yams", package: "Yams"),
        ]),
        .executableTarget(
            name: "plateau",
            dependencies: [
                "PlateauCore", "PlateauTheory", "PlateauSimulation", "PlateauCompare", "PlateauStudies",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // The front-door fuzzer: generated specs and expressions with their checks (a library for the
        // default suite's short run) and the tool for the long run (`swift run -c release plateau-fuzz`).
        .target(name: "PlateauFuzzing", dependencies: ["PlateauCore", .product(name: "Yams", package: "Yams")]),
        .executableTarget(name: "plateau-fuzz", dependencies: ["PlateauCore", "PlateauFuzzing"]),
        .testTarget(name: "PlateauCoreTests", dependencies: ["PlateauCore", "PlateauFuzzing"]),
        .testTarget(name: "PlateauTheoryTests", dependencies: ["PlateauTheory", "PlateauCore", "CGSL"]),
        .testTarget(
            name: "PlateauSimulationTests",
            dependencies: ["PlateauSimulation", "PlateauTheory", "PlateauCore"]),
        .testTarget(name: "PlateauCompareTests", dependencies: ["PlateauCompare", "PlateauCore"]),
        // Theory against simulation: the agreement tests across modules.
        .testTarget(
            name: "PlateauAgreementTests",
            dependencies: ["PlateauStudies", "PlateauTheory", "PlateauSimulation", "PlateauCompare", "PlateauCore"]),
        .testTarget(name: "PlateauCLITests", dependencies: ["plateau"]),
    ]
)
