// The d = ∞ side: the online-SGD ODE for the Saad–Solla committee (erf, K = M = 2 and 4, η = 0.5)
// from a tiny symmetry-breaking start to t = 1000 at rtol 1e-8 (rk8pd), and the right-hand side alone.
// The public C++ Euler code (sgoldt/nn2pp) needs about 0.36 s of CPU for K = M = 2 at dt = 0.01.
// Run from Benchmarks/:  swift package --scratch-path ../.build-bench benchmark --target TheoryBenchmarks
import Benchmark
import PlateauCore
import PlateauTheory

func committee(_ k: Int) -> (OnlineSGDTheory, Overlaps) {
    let e = Experiment(teacher: TeacherSpec(k: k, activation: .erf), student: StudentSpec(p: k, activation: .erf),
                       training: TrainingSpec(learningRate: 0.5, time: 1000), initialization: .random(scale: 1))
    var M = Matrix(rows: k, cols: k), Q = Matrix.identity(k)
    for j in 0..<k { for r in 0..<k { M[j, r] = 1e-9 * (1 + 0.37 * Double(j) - 0.23 * Double(r)) } }
    for j in 0..<k { for l in 0..<k where l != j { Q[j, l] = 5e-10 } }
    return (OnlineSGDTheory(e), Overlaps(M: M, Q: Q, P: .identity(k), a: Array(repeating: 1, count: k)))
}

let benchmarks: @Sendable () -> Void = {
    let times = TimeGrid.log(count: 60, start: 0.01).times(horizon: 1000)
    for k in [2, 4] {
        let (theory, start) = committee(k)
        Benchmark("ODE committee K=M=\(k) to t=1000 rtol 1e-8",
                  configuration: .init(metrics: [.wallClock, .cpuTotal], maxDuration: .seconds(5))) { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(theory.trajectory(from: start, times: times).solution.rhsEvaluations)
            }
        }
        Benchmark("ODE right-hand side K=M=\(k)",
                  configuration: .init(metrics: [.wallClock, .mallocCountTotal], scalingFactor: .kilo, maxDuration: .seconds(3))) { benchmark in
            for _ in benchmark.scaledIterations { blackHole(theory.derivatives(start).dM[0, 0]) }
        }
    }
}
