import Foundation
import Testing
import PlateauCore
@testable import PlateauTheory

/// Reference numbers from `../shared/reference/online-sgd.md`.
@Suite("Online SGD ODE against shared/reference/online-sgd.md")
struct OnlineODEReferenceTests {
    /// §1: Saad–Solla K = M = 2, erf, a = 1, η = 0.5, tiny symmetric-breaking start ε = 1e-9.
    static func saadSolla(epsilon: Double = 1e-9, k: Int = 2) -> (OnlineSGDTheory, Overlaps) {
        let exp = Experiment(
            teacher: TeacherSpec(k: k, activation: .erf), student: StudentSpec(p: k, activation: .erf),
            training: TrainingSpec(learningRate: 0.5, time: 1000), initialization: .random(scale: 1))
        let theory = OnlineSGDTheory(exp)
        // Deterministic tiny perturbation (the reference's plateau does not depend on its draw).
        var M = Matrix(rows: k, cols: k), Q = Matrix.identity(k)
        for j in 0..<k { for r in 0..<k { M[j, r] = epsilon * (1 + 0.37 * Double(j) - 0.23 * Double(r) + 0.11 * Double(j * r)) } }
        for j in 0..<k { for l in (j + 1)..<max(j + 1, k) { Q[j, l] = epsilon * 0.5; Q[l, j] = epsilon * 0.5 } }
        return (theory, Overlaps(M: M, Q: Q, P: .identity(k), a: Array(repeating: 1, count: k)))
    }

    @Test("risk at Q = I, M = 0 is exactly 2/3")
    func initialRisk() {
        let (theory, _) = Self.saadSolla()
        let o = Overlaps(M: Matrix(rows: 2, cols: 2), Q: .identity(2), P: .identity(2), a: [1, 1])
        #expect(abs(theory.risk(o) - 2.0 / 3.0) < 1e-14)
    }

    @Test("symmetric plateau: risk 0.014652, Q ≈ (0.375, 0.321, 0.375), M ≈ 0.416, escape after t ≈ 700")
    func plateau() {
        let (theory, start) = Self.saadSolla()
        let times = stride(from: 0.0, through: 1000, by: 1).map { $0 }
        let (traj, sol) = theory.trajectory(from: start, times: times)
        #expect(sol.status == .completed)
        let risk = traj.column("risk")!
        let window = zip(times, risk).filter { $0.0 >= 100 && $0.0 <= 500 }.map(\.1)
        let plateau = window.min()!
        // Reference value has 5 significant digits.
        #expect(abs(plateau - 0.014652) < 5e-6, "plateau risk \(plateau)")
        // The reference's plateau overlaps are read where its risk is lowest in the window (t ≈ 500).
        let i = risk.firstIndex(of: plateau)!
        let q11 = traj.column("Q_1_1")![i], q12 = traj.column("Q_1_2")![i], m11 = traj.column("M_1_1")![i]
        #expect(abs(q11 - 0.375) < 2e-3 && abs(q12 - 0.321) < 2e-3 && abs(m11 - 0.416) < 2e-3, "Q11 \(q11) Q12 \(q12) M11 \(m11)")
        // Escape: the risk falls below 1e-3 only after the plateau, at t of order several hundred
        // (log-sensitive to ε; the reference's ε draw gives 758–759).
        let escape = zip(times, risk).first { $0.1 < 1e-3 }?.0
        #expect(escape != nil && escape! > 500 && escape! < 1000, "escape at \(String(describing: escape))")
    }
}

/// `../shared/reference/online-sgd.md` §2: the three-way agreement case (nn2pp = pyscm normalised =
/// committee_learning): erf, K = M = 2, a = (½, ½), g = ½(σ(ν₁) + σ(ν₂)), η = 0.5, Δ = 0.01, n_b = 1.
@Suite("Three-way reference case")
struct ThreeWayReferenceTests {
    static let experiment = Experiment(
        teacher: TeacherSpec(k: 2, activation: .erf, weights: [0.5, 0.5], noiseVariance: 0.01),
        student: StudentSpec(p: 2, activation: .erf, secondLayer: [0.5, 0.5]),
        training: TrainingSpec(learningRate: 0.5, time: 201.4),
        initialization: .overlaps(M: Matrix([[0.01, 0.002], [0.003, 0.015]]), Q: Matrix([[0.2, 0.05], [0.05, 0.3]])))
    static let times = [1.0, 10.04, 50.53, 201.4]
    /// ε = ½E[(f − g)²] from the reference's Euler table (dt = 0.01).
    static let eulerEpsilon = [0.0950158, 0.0147558, 0.00349, 0.00342106]

    static func epsilon(_ traj: Trajectory) -> [Double] { traj.column("risk")!.map { $0 - 0.005 } }

    @Test("explicit Euler with dt = 0.01 reproduces the Euler table to its printed digits")
    func euler() {
        let theory = OnlineSGDTheory(Self.experiment)
        let (traj, sol) = theory.trajectory(from: theory.initialOverlaps, times: Self.times,
                                            options: ODEOptions(method: .euler, eulerStep: 0.01))
        #expect(sol.status == .completed)
        #expect(sol.steps == 20140)
        let eps = Self.epsilon(traj)
        // Half a unit in the last printed digit of each reference value.
        let halfULP = [5e-8, 5e-8, 5e-6, 5e-9]
        for i in 0..<4 {
            #expect(abs(eps[i] - Self.eulerEpsilon[i]) <= halfULP[i] + 1e-15, "t = \(Self.times[i]): \(eps[i]) vs \(Self.eulerEpsilon[i])")
        }
        let o = theory.overlaps(fromState: sol.states.last!)
        let qRef = [0.410746, 0.299883, 0.413733], mRef = [0.43622, 0.403608, 0.405313, 0.437956]
        let q = [o.Q[0, 0], o.Q[0, 1], o.Q[1, 1]]
        for i in 0..<3 { #expect(abs(q[i] - qRef[i]) <= 5e-7, "Q \(q)") }
        for i in 0..<4 { #expect(abs(o.M.values[i] - mRef[i]) <= 5e-6, "M \(o.M.values)") }
    }

    @Test("adaptive rk8pd converges, and differs from Euler at t = 1 by the stated ~2e-5 bias, first order in dt")
    func adaptive() {
        let theory = OnlineSGDTheory(Self.experiment)
        let tight = theory.trajectory(from: theory.initialOverlaps, times: Self.times,
                                      options: ODEOptions(method: .rk8pd, relativeTolerance: 1e-11, absoluteTolerance: 1e-13))
        let loose = theory.trajectory(from: theory.initialOverlaps, times: Self.times,
                                      options: ODEOptions(method: .rk8pd, relativeTolerance: 1e-8, absoluteTolerance: 1e-10))
        #expect(tight.solution.status == .completed)
        let a = Self.epsilon(tight.trajectory), b = Self.epsilon(loose.trajectory)
        // Converged: tolerance 1e-8 and 1e-11 agree to a few times the looser tolerance.
        for i in 0..<4 { #expect(abs(a[i] - b[i]) <= 1e-7 * max(a[i], 1e-3), "t = \(Self.times[i])") }
        // Euler's bias at t = 1 (dt = 0.01) is "about 2e-5" (the reference's figure, read as an
        // absolute difference in ε: relative it is 2.3e-4) ...
        let bias = abs(Self.eulerEpsilon[0] - a[0])
        #expect(bias > 1e-5 && bias < 4e-5, "Euler bias at t = 1: \(bias)")
        // ... and it is first order: dt = 0.001 shrinks it tenfold (ratio within 0.08...0.12).
        let fine = theory.trajectory(from: theory.initialOverlaps, times: [1.0],
                                     options: ODEOptions(method: .euler, eulerStep: 0.001))
        let ratio = abs(Self.epsilon(fine.trajectory)[0] - a[0]) / bias
        #expect(ratio > 0.08 && ratio < 0.12, "Euler bias ratio dt 0.001 / 0.01: \(ratio)")
        // At late times both sit on the same fixed point: agreement to the table's precision.
        #expect(abs(a[3] - Self.eulerEpsilon[3]) < 2e-6)
        // Counters are reported.
        #expect(tight.solution.rhsEvaluations > 0 && tight.solution.steps > 0)
    }
}
