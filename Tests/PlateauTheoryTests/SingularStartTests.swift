import Foundation
import Testing
import PlateauCore
@testable import PlateauTheory

/// Rank-deficient joint covariances Ω = [[Q, M], [Mᵀ, P]] are valid states (issue 12): a start
/// realised at a small dimension d₀ (rank d₀), a student inside the teacher span. The exact flow
/// keeps the rank; the integrators must follow it (`ConeGuard`) and still stop at real departures.
@Suite("Singular starts")
struct SingularStartTests {
    static let long = ProcessInfo.processInfo.environment["PLATEAU_LONG_TESTS"] != nil

    /// Overlaps of p student rows drawn i.i.d. N(0, I) in ℝ^{d₀} and k teacher rows √d₀·e_r
    /// (P = I): M_jr = w_jr/√d₀, Q = WWᵀ/d₀, so Ω has rank d₀ (d₀ ≥ k).
    static func realised(p: Int, k: Int, dimension d0: Int, seed: UInt64) -> (M: Matrix, Q: Matrix) {
        var rng = SplitMix64(seed: seed)
        let W = (0..<p).map { _ in (0..<d0).map { _ in rng.normal() } }
        var M = Matrix(rows: p, cols: k), Q = Matrix(rows: p, cols: p)
        for j in 0..<p {
            for r in 0..<k { M[j, r] = W[j][r] / Double(d0).squareRoot() }
            for l in 0..<p { Q[j, l] = zip(W[j], W[l]).reduce(0) { $0 + $1.0 * $1.1 } / Double(d0) }
        }
        return (M, Q)
    }

    /// The issue's problem: a 10-unit erf student (a = 1/10) learning a 2-direction erf committee
    /// with weights ½, population gradient flow at η = 1.
    static func committee(_ start: (M: Matrix, Q: Matrix), eta: Double = 1, time: Double) -> Experiment {
        Experiment(
            teacher: TeacherSpec(k: 2, activation: .erf, weights: [0.5, 0.5]),
            student: StudentSpec(p: 10, activation: .erf, secondLayer: Array(repeating: 0.1, count: 10)),
            training: TrainingSpec(learningRate: eta, time: time),
            initialization: .overlaps(M: start.M, Q: start.Q),
            output: OutputSpec(times: .log(count: 40, start: 0.01)))
    }

    static func regularised(_ start: (M: Matrix, Q: Matrix), _ epsilon: Double) -> (M: Matrix, Q: Matrix) {
        (start.M, start.Q + epsilon * .identity(start.Q.rows))
    }

    /// Ω's rank at `o`: eigenvalues above 10⁻¹⁰ of the largest.
    static func rank(_ o: Overlaps) -> Int {
        let values = GSL.symmetricEigen(o.jointCovariance).values
        return values.filter { $0 > 1e-10 * values[0] }.count
    }

    static func curve(_ e: Experiment, options: ODEOptions = ODEOptions(), populationFlow: Bool = true)
        -> (trajectory: Trajectory, solution: ODESolution, theory: OnlineSGDTheory)
    {
        let theory = OnlineSGDTheory(e, populationFlow: populationFlow)
        let (trajectory, solution) = theory.trajectory(from: theory.initialOverlaps, times: e.recordTimes, options: options)
        return (trajectory, solution, theory)
    }

    /// The largest difference between two curves over the overlaps and the risk (cosines left out).
    static func difference(_ a: Trajectory, _ b: Trajectory) -> Double {
        var worst = 0.0
        for i in 0..<min(a.times.count, b.times.count) {
            for c in 0..<a.observables.count where !a.observables[c].hasPrefix("cos") {
                worst = max(worst, abs(a.values[i][c] - b.values[i][c]))
            }
        }
        return worst
    }

    @Test("the issue's d = 3 start (rank 3 of 12) integrates to the end and keeps its rank; so does a student in the teacher span")
    func integratesThrough() {
        for (d0, label) in [(3, "realised at d = 3"), (2, "inside the teacher span")] {
            let start = Self.realised(p: 10, k: 2, dimension: d0, seed: 3)
            let e = Self.committee(start, time: 1000)
            let (trajectory, solution, theory) = Self.curve(e)
            #expect(Self.rank(theory.initialOverlaps) == d0)
            #expect(solution.status == .completed, "\(label): \(solution.message)")
            #expect(trajectory.times.last == 1000, "\(label): ended at \(trajectory.times.last ?? -1)")
            let last = theory.overlaps(fromState: solution.states.last!)
            #expect(Self.rank(last) == d0, "\(label): rank \(Self.rank(last)) at t = 1000")
            // Every projection was within the integrator's allowance (else the run would have stopped)
            // and far below it in practice.
            let allowance = theory.coneAllowance(localError: 1e-10 + 1e-8)
            #expect(solution.projections.largestDepth < allowance)
            print("singular start \(label): \(solution.projections.count) projections in \(solution.steps) steps, largest depth \(solution.projections.largestDepth) (allowance ≥ \(allowance))")
        }
    }

    /// The curve from the singular start is the ε → 0 limit of curves c(ε) from Q + εI. With
    /// c(ε) = c₀ + C₁ε + C₂ε² + …, the limit from ε₃ = 10⁻⁶ and ε₄ = 10⁻⁷ is c₄ − (c₃ − c₄)/9, off
    /// by C₂(ε₄² − (ε₃² − ε₄²)/9) = −1.0·10⁻¹³ C₂; the remainder (c₂ − c₃) − 10(c₃ − c₄) =
    /// 8.9·10⁻¹¹ C₂ measures C₂, so the extrapolation error is 1.12·10⁻³ × that remainder (ε₁ = 10⁻⁴
    /// only checks that the curves are linear in ε). Each curve carries the integrator's error,
    /// measured as the singular curve's change from rtol = 10⁻¹⁰ to 10⁻¹²; the extrapolated limit
    /// carries it 1 + 10/9 + 1/9 times, and the difference once more. Bound: 2·(3.3 × integration +
    /// 1.12·10⁻³ × remainder), the 2 for the estimates' own error.
    @Test("the singular curve is the limit of curves from regularised starts ε = 1e-4 … 1e-7, over t ≤ 10⁵ (risk below 10⁻⁶)")
    func limitOfRegularisedStarts() {
        let horizon = 1e5
        let start = Self.realised(p: 10, k: 2, dimension: 3, seed: 3)
        let tight = ODEOptions(relativeTolerance: 1e-10, absoluteTolerance: 1e-12)
        let tighter = ODEOptions(relativeTolerance: 1e-12, absoluteTolerance: 1e-14)
        let clock = ContinuousClock.now
        let singular = Self.curve(Self.committee(start, time: horizon), options: tight)
        let reference = Self.curve(Self.committee(start, time: horizon), options: tighter)
        let curves = [1e-4, 1e-5, 1e-6, 1e-7].map { Self.curve(Self.committee(Self.regularised(start, $0), time: horizon), options: tight) }
        for c in [singular, reference] + curves { #expect(c.solution.status == .completed, "\(c.solution.message)") }
        let integration = Self.difference(singular.trajectory, reference.trajectory)
        let (c1, c2, c3, c4) = (curves[0].trajectory, curves[1].trajectory, curves[2].trajectory, curves[3].trajectory)
        var limit = c4
        var remainder = 0.0, linear12 = 0.0, linear23 = 0.0, linear34 = 0.0
        for i in 0..<c4.times.count {
            for c in 0..<c4.observables.count where !c4.observables[c].hasPrefix("cos") {
                let (v1, v2, v3, v4) = (c1.values[i][c], c2.values[i][c], c3.values[i][c], c4.values[i][c])
                limit.values[i][c] = v4 - (v3 - v4) / 9
                remainder = max(remainder, abs((v2 - v3) - 10 * (v3 - v4)))
                linear12 = max(linear12, abs(v1 - v2))
                linear23 = max(linear23, abs(v2 - v3))
                linear34 = max(linear34, abs(v3 - v4))
            }
        }
        let extrapolation = 1.12e-3 * remainder
        let deviation = Self.difference(singular.trajectory, limit)
        let bound = 2 * (3.3 * integration + extrapolation)
        let finalRisk = singular.trajectory.column("risk")!.last!
        print("singular vs limit of regularised starts over t ≤ \(horizon): \(deviation) (bound \(bound): integration error \(integration), extrapolation \(extrapolation); max |c(ε) − c(ε/10)| = \(linear12), \(linear23), \(linear34) from ε = 1e-4); final risk \(finalRisk); projections \(singular.solution.projections.count) in \(singular.solution.steps) steps; \(ContinuousClock.now - clock)")
        for (x, y) in [(linear12, linear23), (linear23, linear34)] {
            #expect(x > 8 * y && x < 12 * y, "not linear in ε: \(linear12), \(linear23), \(linear34)")
        }
        #expect(deviation <= bound, "singular vs limit \(deviation) > \(bound)")
        // The ε curves are resolved: the regularisation moves the curve far more than the bound.
        #expect(linear34 > 100 * bound, "the regularisation is not resolved: \(linear34) vs \(bound)")
        // The student specialises: the risk falls below 10⁻⁶.
        #expect(finalRisk < 1e-6, "risk \(finalRisk) at t = 10⁵")
        #expect(singular.trajectory.times.last == horizon)
    }

    /// The ReLU route (orthant probabilities, arc-cosine kernel) on the boundary: a ReLU student
    /// (p = 3, a = ½) inside the span of an erf committee, population flow. Same error model as
    /// `limitOfRegularisedStarts`, with ε = 10⁻⁵, 10⁻⁶, 10⁻⁷.
    @Test("a ReLU student inside the teacher span: the closed-form route integrates through, and is the limit of regularised starts")
    func reluStudentInTeacherSpan() {
        let M = Matrix([[0.3, 0.1], [0.2, 0.4], [0.5, -0.2]])
        func experiment(_ epsilon: Double) -> Experiment {
            Experiment(teacher: TeacherSpec(k: 2, activation: .erf),
                       student: StudentSpec(p: 3, activation: .relu, secondLayer: [0.5, 0.5, 0.5]),
                       training: TrainingSpec(learningRate: 0.5, time: 200),
                       initialization: .overlaps(M: M, Q: M * M.transposed + epsilon * .identity(3)),
                       output: OutputSpec(times: .log(count: 30, start: 0.01)))
        }
        let tight = ODEOptions(relativeTolerance: 1e-10, absoluteTolerance: 1e-12)
        let singular = Self.curve(experiment(0), options: tight)
        let reference = Self.curve(experiment(0), options: ODEOptions(relativeTolerance: 1e-12, absoluteTolerance: 1e-14))
        let curves = [1e-5, 1e-6, 1e-7].map { Self.curve(experiment($0), options: tight).trajectory }
        #expect(singular.solution.status == .completed, "\(singular.solution.message)")
        let integration = Self.difference(singular.trajectory, reference.trajectory)
        var limit = curves[2]
        var remainder = 0.0
        for i in 0..<limit.times.count {
            for c in 0..<limit.observables.count where !limit.observables[c].hasPrefix("cos") {
                let (v1, v2, v3) = (curves[0].values[i][c], curves[1].values[i][c], curves[2].values[i][c])
                limit.values[i][c] = v3 - (v2 - v3) / 9
                remainder = max(remainder, abs((v1 - v2) - 10 * (v2 - v3)))
            }
        }
        let bound = 2 * (3.3 * integration + 1.12e-3 * remainder)
        let deviation = Self.difference(singular.trajectory, limit)
        print("ReLU student in the teacher span, t ≤ 200: singular vs limit \(deviation) (bound \(bound)); \(singular.solution.projections.count) projections; risk \(singular.trajectory.column("risk")!.last!)")
        #expect(deviation <= bound)
    }

    @Test("explicit Euler and the exact map integrate through the singular start and follow the adaptive curve")
    func eulerAndMap() {
        let start = Self.realised(p: 10, k: 2, dimension: 3, seed: 3)
        let e = Self.committee(start, time: 50)
        let adaptive = Self.curve(e, options: ODEOptions(relativeTolerance: 1e-11, absoluteTolerance: 1e-13))
        let errors = [0.02, 0.01].map { dt -> Double in
            let euler = Self.curve(e, options: ODEOptions(method: .euler, eulerStep: dt))
            #expect(euler.solution.status == .completed, "Euler dt = \(dt): \(euler.solution.message)")
            return Self.difference(euler.trajectory, adaptive.trajectory)
        }
        // First order: halving dt halves the error (ratio 2 up to O(dt)).
        #expect(errors[0] / errors[1] > 1.7 && errors[0] / errors[1] < 2.3, "Euler errors \(errors)")
        // The map of population GD at d is Euler with dt = 1/d plus the exact O(1/d²) square of the
        // step, so it also converges at first order in 1/d, and keeps the rank to round-off.
        let mapErrors = [50.0, 100.0].map { d -> Double in
            let (map, projections) = OnlineSGDMap(adaptive.theory, dimension: d).run(from: adaptive.theory.initialOverlaps, times: e.recordTimes)
            #expect(map.status == .completed, "map d = \(d): \(map.message)")
            #expect(projections.largestDepth <= OnlineSGDMap.coneAllowance * 10)
            return Self.difference(map, adaptive.trajectory)
        }
        #expect(mapErrors[0] / mapErrors[1] > 1.7 && mapErrors[0] / mapErrors[1] < 2.3, "map errors \(mapErrors)")
        print("singular start, t ≤ 50: Euler errors \(errors) (dt = 0.02, 0.01), map errors \(mapErrors) (d = 50, 100)")
    }

    @Test("the quadrature route integrates through a student in the teacher span and matches the closed form")
    func quadratureRoute() {
        // p = k = 2, the student rows inside the teacher span: Ω has rank 2 of 4.
        let M = Matrix([[0.3, 0.1], [0.2, 0.4]])
        let start = (M: M, Q: M * M.transposed)
        var e = Self.committee(start, time: 20)
        e.student = StudentSpec(p: 2, activation: .erf, secondLayer: [1, 1])
        e.teacher = TeacherSpec(k: 2, activation: .erf)
        e.output = OutputSpec(times: .linear(count: 5))
        let options = ODEOptions(method: .rkck, relativeTolerance: 1e-6, absoluteTolerance: 1e-8)
        let closed = OnlineSGDTheory(e, populationFlow: true)
        let quadrature = OnlineSGDTheory(e, populationFlow: true, route: .quadrature)
        let a = closed.trajectory(from: closed.initialOverlaps, times: e.recordTimes, options: options)
        let b = quadrature.trajectory(from: quadrature.initialOverlaps, times: e.recordTimes, options: options)
        #expect(a.solution.status == .completed, "\(a.solution.message)")
        #expect(b.solution.status == .completed, "\(b.solution.message)")
        // Still inside the teacher span: Q − M Mᵀ (P = I) vanishes up to the integrator's error.
        let last = quadrature.overlaps(fromState: b.solution.states.last!)
        let perpendicular = GSL.symmetricEigen(last.Q - last.M * last.M.transposed).values.map(abs).max()!
        let allowance = quadrature.coneAllowance(localError: options.absoluteTolerance + options.relativeTolerance)
        #expect(perpendicular <= allowance, "|Q − MMᵀ| = \(perpendicular) at t = 20")
        // The rule's error per term (its calibrated accuracy) times η·t bounds the drift of the curve.
        let bound = 10 * e.training.learningRate * e.training.time * quadrature.quadratureErrorEstimate(quadrature.initialOverlaps) + 1e-6
        let deviation = Self.difference(a.trajectory, b.trajectory)
        print("student in the teacher span, quadrature vs closed form, t ≤ 20: \(deviation) (bound \(bound)); |Q − MMᵀ| = \(perpendicular) (allowance \(allowance)); \(b.solution.projections.count) projections")
        #expect(deviation <= bound)
    }

    @Test("real departures still end the curve: a divergent learning rate from a student inside the teacher span (ODE, Euler, map)")
    func realDepartures() {
        // Linear student (p = 3) inside the span of a linear teacher (k = 2): Ω has rank 2 of 5.
        let M = Matrix([[0.3, 0.1], [0.2, 0.4], [0.5, -0.2]])
        func experiment(_ eta: Double) -> Experiment {
            Experiment(teacher: TeacherSpec(k: 2, activation: .linear), student: StudentSpec(p: 3, activation: .linear),
                       training: TrainingSpec(learningRate: eta, time: 100), initialization: .overlaps(M: M, Q: M * M.transposed),
                       output: OutputSpec(times: .log(count: 20, start: 0.01)))
        }
        for (eta, converges) in [(0.2, true), (5.0, false)] {
            let e = experiment(eta)
            let adaptive = Self.curve(e, populationFlow: false)
            let euler = Self.curve(e, options: ODEOptions(method: .euler, eulerStep: 0.01), populationFlow: false)
            let map = OnlineSGDMap(adaptive.theory, dimension: 100).trajectory(from: adaptive.theory.initialOverlaps, times: e.recordTimes)
            for (label, status, message) in [("rk8pd", adaptive.solution.status, adaptive.solution.message),
                                             ("Euler", euler.solution.status, euler.solution.message), ("map", map.status, map.message)] {
                #expect((status == .completed) == converges, "η = \(eta), \(label): \(status) \(message)")
                if !converges { print("η = \(eta), \(label): \(status): \(message)") }
            }
        }
    }

    @Test("the cone guard: an interior Ω untouched, a shallow departure projected onto the boundary, a deep one refused")
    func coneGuard() {
        let M = Matrix([[0.3, 0.1], [0.2, 0.4], [0.5, -0.2]])
        let boundary = Overlaps(M: M, Q: M * M.transposed, P: .identity(2), a: [1, 1, 1])
        let guardian = ConeGuard(p: 3, P: .identity(2))
        func run(_ Q: Matrix, allowance: Double) -> (ConeCheck, Matrix) {
            var omega = Overlaps(M: M, Q: Q, P: .identity(2), a: [1, 1, 1]).jointCovariance
            let result = omega.values.withUnsafeMutableBufferPointer { guardian.enforce($0.baseAddress!, allowance: allowance) }
            var out = Matrix(rows: 3, cols: 3)
            for j in 0..<3 { for l in 0..<3 { out[j, l] = omega[j, l] } }
            return (result, out)
        }
        let interior = boundary.Q + 0.01 * .identity(3)
        let (r0, q0) = run(interior, allowance: 1e-6)
        #expect(r0 == .inside && q0 == interior)
        // Q − M Mᵀ = −δ·uuᵀ: outside by δ along u.
        let u = [0.6, 0.0, 0.8]
        var outside = boundary.Q
        for j in 0..<3 { for l in 0..<3 { outside[j, l] -= 1e-8 * u[j] * u[l] } }
        let (r1, q1) = run(outside, allowance: 1e-6)
        guard case let .projected(depth) = r1 else { Issue.record("not projected: \(r1)"); return }
        #expect(abs(depth - 1e-8) < 1e-12)
        // Back on the boundary: Q = M Mᵀ to round-off.
        #expect((0..<9).allSatisfy { abs(q1.values[$0] - boundary.Q.values[$0]) < 1e-14 })
        let (r2, _) = run(outside, allowance: 1e-9)
        guard case .outside = r2 else { Issue.record("a departure beyond the allowance was accepted: \(r2)"); return }
        #expect(abs(r2.depth - 1e-8) < 1e-12)
    }
}

extension ConeCheck {
    var depth: Double {
        switch self {
        case .inside: return 0
        case let .projected(depth), let .outside(depth): return depth
        }
    }
}
