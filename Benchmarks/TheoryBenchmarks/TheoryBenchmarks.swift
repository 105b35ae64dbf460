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

/// The right-hand side of one problem on each route that can compute it (the `route-timing` tool
/// prints the same as ratios).
func routeProblems() -> [(String, Experiment)] {
    let staircase2 = try! PlateauCore.Formula(parsing: "z1 + z1*z2", variables: .target(k: 2))
    let staircase4 = try! PlateauCore.Formula(parsing: "z1 + z1*z2 + z1*z2*z3 + z1*z2*z3*z4", variables: .target(k: 4))
    func e(_ s: Activation, _ t: TeacherSpec, _ p: Int) -> Experiment {
        Experiment(teacher: t, student: StudentSpec(p: p, activation: s), training: TrainingSpec(learningRate: 0.5, time: 10),
                   initialization: .random(scale: 1))
    }
    return [("erf p=k=2", e(.erf, TeacherSpec(k: 2, activation: .erf), 2)),
            ("He2/staircase p=k=2", e(.hermite(2), TeacherSpec(link: staircase2), 2)),
            ("erf p=8 k=4", e(.erf, TeacherSpec(k: 4, activation: .erf), 8)),
            ("He2/staircase p=8 k=4", e(.hermite(2), TeacherSpec(link: staircase4), 8))]
}

let benchmarks: @Sendable () -> Void = {
    for (label, e) in routeProblems() {
        let p = e.student.p, k = e.teacher.k
        var M = Matrix(rows: p, cols: k), Q = Matrix(rows: p, cols: p)
        for j in 0..<p {
            for r in 0..<k { M[j, r] = j % k == r ? 0.4 : 0.05 }
            for l in 0..<p { Q[j, l] = j == l ? 1 : 0.1 }
        }
        let o = Overlaps(M: M, Q: Q, P: .identity(k), a: Array(repeating: 1, count: p))
        for route in TheoryRoute.available(for: e) {
            let theory = OnlineSGDTheory(e, route: route)
            Benchmark("ODE right-hand side \(label), route \(route.rawValue)",
                      configuration: .init(metrics: [.wallClock], maxDuration: .seconds(3))) { benchmark in
                for _ in benchmark.scaledIterations { blackHole(theory.derivatives(o).dQ[0, 0]) }
            }
        }
    }
    let times = TimeGrid.log(count: 60, start: 0.01).times(horizon: 1000)
    for k in [2, 4] {
        let (theory, start) = committee(k)
        Benchmark("ODE committee K=M=\(k) to t=1000 rtol 1e-8",
                  configuration: .init(metrics: [.wallClock, .cpuTotal], maxDuration: .seconds(5))) { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(theory.trajectory(from: start, times: times).solution.rhsEvaluations)
            }
        }
        // The integrator's right-hand side (what every step pays): its problem and state are set up
        // once per run (three allocations), the evaluations allocate nothing.
        Benchmark("ODE right-hand side K=M=\(k)",
                  configuration: .init(metrics: [.wallClock, .mallocCountTotal], scalingFactor: .kilo, maxDuration: .seconds(3))) { benchmark in
            let problem = theory.problem
            var y = theory.state(of: start), f = y
            for _ in benchmark.scaledIterations {
                y.withUnsafeBufferPointer { yp in f.withUnsafeMutableBufferPointer { fp in try! problem.rhs(0, yp, fp) } }
                blackHole(f[0])
            }
        }
        let steps = 1000, options = ODEOptions(method: .euler, eulerStep: 0.01)
        Benchmark("ODE Euler K=M=\(k), \(steps) steps",
                  configuration: .init(metrics: [.wallClock, .mallocCountTotal], maxDuration: .seconds(3))) { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(theory.trajectory(from: start, times: [Double(steps) * 0.01], options: options).solution.steps)
            }
        }
    }
}
