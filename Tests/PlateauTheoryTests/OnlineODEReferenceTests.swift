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
