// Plain release-mode timing of the online-SGD step against its baseline (no benchmark plugin).
//   swift run -c release --scratch-path ../.build-bench simulator-timing [steps-scale]
import Foundation
import PlateauSimulation

let scale = CommandLine.arguments.count > 1 ? Double(CommandLine.arguments[1]) ?? 1 : 1
let cases: [(d: Int, nb: Int, steps: Int)] = [(1000, 1, 100_000), (10_000, 1, 10_000), (1000, 100, 1000)]
print("d\tn_b\tsteps/s\tstep_us\tbaseline_us\tratio\tns/gaussian")
for c in cases {
    let m = SimulatorTiming.measure(dimension: c.d, batchSize: c.nb, steps: max(1, Int(Double(c.steps) * scale)))
    print(String(format: "%d\t%d\t%.4g\t%.3f\t%.3f\t%.3f\t%.3f", c.d, c.nb, m.stepsPerSecond, m.stepSeconds * 1e6,
                 m.baselineSeconds * 1e6, m.ratio, m.gaussianSeconds * 1e9))
}
