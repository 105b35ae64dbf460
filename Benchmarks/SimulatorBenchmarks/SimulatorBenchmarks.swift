// One online-SGD step of PlateauSimulation against its irreducible cost (the step's Gaussians plus
// its two matrix products), p = k = 2, erf, square loss. Run from Benchmarks/:
//   swift package --scratch-path ../.build-bench benchmark
// mallocCountTotal must be 0 for the step benchmarks: the hot loop allocates nothing.
import Benchmark
import PlateauCore
import PlateauSimulation

let benchmarks: @Sendable () -> Void = {
    // (.cpuTotal is left out: reading it allocates inside the measured region and would hide a
    // regression of the zero-allocation hot loop.)
    let metrics: [BenchmarkMetric] = [.wallClock, .throughput, .mallocCountTotal]
    let cases: [(d: Int, nb: Int, scaling: BenchmarkScalingFactor)] = [(1000, 1, .kilo), (10_000, 1, .kilo), (1000, 100, .one)]

    for c in cases {
        let configuration = Benchmark.Configuration(metrics: metrics, warmupIterations: 3, scalingFactor: c.scaling,
                                                    maxDuration: .seconds(3), maxIterations: 1000)
        Benchmark("SGD step d=\(c.d) nb=\(c.nb)", configuration: configuration) { benchmark in
            let network = try! OnlineSGDNetwork(SimulatorTiming.timingExperiment(batchSize: c.nb), dimension: c.d, seed: 1)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations { blackHole(network.step()) }
            benchmark.stopMeasurement()
        }
        Benchmark("baseline d=\(c.d) nb=\(c.nb)", configuration: configuration) { benchmark in
            let baseline = BaselineStep(dimension: c.d, batchSize: c.nb, p: 2, k: 2, seed: 2)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations { baseline.step() }
            benchmark.stopMeasurement()
        }
    }

    Benchmark("1000 standard normals",
              configuration: .init(metrics: metrics, scalingFactor: .kilo, maxDuration: .seconds(3))) { benchmark in
        var rng = Xoshiro256PlusPlus(seed: 7)
        let buffer = UnsafeMutablePointer<Double>.allocate(capacity: 1000)
        defer { buffer.deallocate() }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            rng.fillStandardNormal(buffer, count: 1000)
            blackHole(buffer[999])
        }
        benchmark.stopMeasurement()
    }
}
