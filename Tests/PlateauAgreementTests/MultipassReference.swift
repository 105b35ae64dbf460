import Foundation
import PlateauCore
@testable import PlateauTheory

/// The reference numbers of `../shared/reference/dmft.md` and the experiments they describe.
enum MultipassReference {
    /// §1: ridge regression (linear student and teacher, square loss, noiseless), |w⊥(0)|²/d = 1.
    struct RidgeCase: Sendable, CustomStringConvertible {
        var alpha: Double, ridge: Double, eta: Double, m0: Double
        /// (t, m, Q, train loss, test error) at t = 1, 5, 10.
        var rows: [(t: Int, m: Double, Q: Double, train: Double, test: Double)]
        var description: String { "α = \(alpha), λ = \(ridge), η = \(eta), m₀ = \(m0)" }

        func experiment(steps: Int = 10) -> Experiment {
            Experiment(teacher: TeacherSpec(k: 1, activation: .linear), student: StudentSpec(p: 1, activation: .linear),
                       training: TrainingSpec(multipass: MultipassSettings(alpha: alpha, steps: steps, ridge: ridge), learningRate: eta),
                       initialization: .overlaps(M: Matrix([[m0]]), Q: Matrix([[1 + m0 * m0]])))
        }
    }

    static let ridge = [
        RidgeCase(alpha: 0.5, ridge: 0.1, eta: 0.3, m0: 0, rows: [
            (1, 0.150000, 0.784900, 0.331450, 0.742450),
            (5, 0.329457, 0.677679, 0.050191, 0.509382),
            (10, 0.384149, 0.606879, 0.017982, 0.419291)]),
        RidgeCase(alpha: 2, ridge: 0, eta: 0.2, m0: 0.1, rows: [
            (1, 0.460000, 0.716400, 0.217200, 0.398200),
            (5, 0.789472, 0.790967, 0.028510, 0.106011),
            (10, 0.894574, 0.869916, 0.007941, 0.040384)]),
    ]

    /// The random-matrix solution of ridge GD (dmft.md §1) by Gauss–Legendre quadrature (GSL's tables)
    /// over the Marchenko–Pastur spectrum of XᵀX/d (ratio α, an atom 1 − α at 0 when α < 1), after
    /// s = s₋ + (s₊ − s₋)(1 − cos θ)/2, which makes the integrand smooth. Per eigenvalue s, with
    /// a = (1 − η(λ + s))ᵗ, b = s/(λ + s): w_s = a(m₀ − b) + b along the teacher and a along w⊥, so
    /// m = ⟨a(m₀ − b) + b⟩, Q = ⟨(a(m₀ − b) + b)² + a²⟩, train loss = ⟨s[(a(m₀ − b) + b − 1)² + a²]⟩/(2α).
    static func marchenkoPastur(_ c: RidgeCase, t: Int, nodes: Int = 100) -> (m: Double, Q: Double, train: Double, mass: Double) {
        let (x, w) = GSL.gaussLegendreUnit(nodes)
        let lo = pow(1 - c.alpha.squareRoot(), 2), hi = pow(1 + c.alpha.squareRoot(), 2)
        var m = 0.0, Q = 0.0, train = 0.0, mass = 0.0
        func add(_ s: Double, _ weight: Double) {
            let a = pow(1 - c.eta * (c.ridge + s), Double(t))
            let b = s == 0 ? 0 : s / (c.ridge + s)
            let along = a * (c.m0 - b) + b
            m += weight * along
            Q += weight * (along * along + a * a)
            train += weight * s * ((along - 1) * (along - 1) + a * a) / (2 * c.alpha)
            mass += weight
        }
        for i in 0..<nodes {
            let theta = Double.pi * x[i]
            let s = lo + (hi - lo) * (1 - cos(theta)) / 2
            let density = pow((hi - lo) / 2 * sin(theta), 2) / (2 * Double.pi * s)   // ρ(s) ds/dθ
            add(s, Double.pi * w[i] * density)
        }
        if c.alpha < 1 { add(0, 1 - c.alpha) }
        return (m, Q, train, mass)
    }

    /// §2: the two-layer ReLU student on tanh(z₁ + z₂³ − 3z₂), a = (1, −1)/√2, η = 0.2, λ = 0, from
    /// m(0) = 0, Q(0) = I.
    static func reluExperiment(alpha: Double = 3, steps: Int = 6) -> Experiment {
        let target = try! Formula(parsing: "tanh(z1 + z2^3 - 3*z2)", variables: .target(k: 2))
        let a = 1 / 2.0.squareRoot()
        return Experiment(teacher: TeacherSpec(link: target), student: StudentSpec(p: 2, activation: .relu, secondLayer: [a, -a]),
                          training: TrainingSpec(multipass: MultipassSettings(alpha: alpha, steps: steps), learningRate: 0.2),
                          initialization: .orthogonal(Q: .identity(2)))
    }

    /// The simulations of dmft.md §2 (d = 5000, 32 seeds) at t = 1…6: m00, m01, m10, m11, their SEM,
    /// Q00, Q11, Q01, the test error and its SEM.
    static let reluSimulations: [(m: [Double], mSEM: Double, Q: [Double], test: Double, testSEM: Double)] = [
        ([0.0757, -0.0626, -0.0757, 0.0629], 0.0004, [0.8550, 0.8533, 0.1099], 0.4202, 0.0005),
        ([0.1238, -0.1018, -0.1239, 0.1022], 0.0007, [0.8057, 0.8034, 0.1491], 0.3859, 0.0005),
        ([0.1562, -0.1276, -0.1564, 0.1280], 0.0009, [0.7917, 0.7891, 0.1602], 0.3683, 0.0005),
        ([0.1800, -0.1461, -0.1802, 0.1464], 0.0010, [0.7929, 0.7901, 0.1591], 0.3587, 0.0005),
        ([0.1989, -0.1604, -0.1990, 0.1609], 0.0011, [0.8017, 0.7987, 0.1522], 0.3534, 0.0005),
        ([0.2147, -0.1722, -0.2146, 0.1729], 0.0012, [0.8146, 0.8115, 0.1427], 0.3504, 0.0005),
    ]
}

extension Trajectory {
    /// The rows at `times` and the columns `names` (both must exist).
    func subset(times: [Double], names: [String]) -> Trajectory {
        let columns = names.map { observables.firstIndex(of: $0)! }
        var out = Trajectory(observables: names, status: status, message: message)
        for t in times {
            let i = self.times.firstIndex { abs($0 - t) < 1e-9 }!
            out.append(time: t, values: columns.map { values[i][$0] })
        }
        return out
    }
}
