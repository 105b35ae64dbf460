// swift-tools-version:6.1
// Performance suites for Plateau's hot paths, outside the CI gate.
//   swift package --scratch-path ../.build-bench benchmark          (package-benchmark suites)
//   swift run -c release --scratch-path ../.build-bench simulator-timing    (plain timing, no plugin)
//   swift run -c release --scratch-path ../.build-bench route-timing        (ODE right-hand side per expectation route)
//   swift run -c release --scratch-path ../.build-bench amp-timing          (α_c, SE curve, GAMP iteration vs its products)
//   swift run -c release --scratch-path ../.build-bench spectral-timing     (L and T solves vs their products and LAPACK)
//   swift run -c release --scratch-path ../.build-bench inner-loop-timing   (ODE right-hand side, Euler step, map step vs the transcendental floor)
import PackageDescription

let package = Package(
    name: "PlateauBenchmarks",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(name: "Plateau", path: ".."),
        .package(url: "https://github.com/ordo-one/package-benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "SimulatorBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "PlateauSimulation", package: "Plateau"),
                .product(name: "PlateauCore", package: "Plateau"),
            ],
            path: "SimulatorBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]),
        .executableTarget(
            name: "TheoryBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "PlateauTheory", package: "Plateau"),
                .product(name: "PlateauCore", package: "Plateau"),
            ],
            path: "TheoryBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]),
        .executableTarget(
            name: "simulator-timing",
            dependencies: [
                .product(name: "PlateauSimulation", package: "Plateau"),
                .product(name: "PlateauCore", package: "Plateau"),
            ],
            path: "Tools/SimulatorTiming"),
        .executableTarget(
            name: "route-timing",
            dependencies: [
                .product(name: "PlateauTheory", package: "Plateau"),
                .product(name: "PlateauCore", package: "Plateau"),
            ],
            path: "Tools/RouteTiming"),
        .executableTarget(
            name: "inner-loop-timing",
            dependencies: [
                .product(name: "PlateauTheory", package: "Plateau"),
                .product(name: "PlateauCore", package: "Plateau"),
            ],
            path: "Tools/InnerLoopTiming"),
        .executableTarget(
            name: "amp-timing",
            dependencies: [
                .product(name: "PlateauTheory", package: "Plateau"),
                .product(name: "PlateauSimulation", package: "Plateau"),
                .product(name: "PlateauCore", package: "Plateau"),
            ],
            path: "Tools/AMPTiming"),
        .executableTarget(
            name: "spectral-timing",
            dependencies: [
                .product(name: "PlateauTheory", package: "Plateau"),
                .product(name: "PlateauSimulation", package: "Plateau"),
                .product(name: "PlateauCore", package: "Plateau"),
            ],
            path: "Tools/SpectralTiming"),
    ]
)
