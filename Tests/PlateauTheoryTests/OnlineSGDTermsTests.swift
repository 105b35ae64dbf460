import Foundation
import Testing
import PlateauCore
@testable import PlateauTheory

/// The allocation-free right-hand side against straightforward references: the erf terms computed
/// from shared pieces (`SharedErfTerms`) against one `GaussianExpectations` call per term
/// (`PerTermExpectations`), and the in-place exact map against the map written with `Matrix`
/// products (EQUATIONS.md §1.2). Both must agree to 10⁻¹² relative (they are written to give the
/// same bits), at single evaluations and along whole trajectories.
@Suite("Online-SGD terms: shared pieces against per-term references")
struct OnlineSGDTermsTests {
    static let tolerance = 1e-12

    /// Problems that exercise every branch: square and correlation loss, unequal and zero weights,
    /// label noise, a trained second layer, spherical students, weight decay, the population flow.
    static func experiments() -> [(String, Experiment, Bool)] {
        let committee = Experiment(teacher: TeacherSpec(k: 2, activation: .erf), student: StudentSpec(p: 2, activation: .erf),
                                   training: TrainingSpec(learningRate: 0.5, time: 10), initialization: .random(scale: 1))
        let general = Experiment(
            teacher: TeacherSpec(k: 2, activation: .erf, weights: [1, 0.7], covariance: Matrix([[1, 0.2], [0.2, 1]]), noiseVariance: 0.01),
            student: StudentSpec(p: 3, activation: .erf, secondLayer: [1, 0.8, 0], trainSecondLayer: true, secondLayerLearningRate: 0.2),
            training: TrainingSpec(learningRate: 0.7, batchSize: 3, weightDecay: 0.05, time: 10), initialization: .random(scale: 1))
        let correlation = Experiment(
            teacher: TeacherSpec(k: 3, activation: .erf, weights: [0.5, 0, 1.5], noiseVariance: 0.1),
            student: StudentSpec(p: 2, activation: .erf, secondLayer: [0.5, 1.2], spherical: true),
            training: TrainingSpec(loss: .correlation, learningRate: 0.3, time: 10), initialization: .random(scale: 1))
        return [("committee K = M = 2", committee, false), ("p = 3, k = 2, general", general, false),
                ("correlation loss, spherical", correlation, false), ("committee, population flow", committee, true)]
    }

    /// Overlaps of random weights in a small dimension (Ω positive definite, every entry non-zero).
    static func randomOverlaps(p: Int, k: Int, a: [Double], seed: UInt64) -> Overlaps {
        var rng = SplitMix64(seed: seed)
        let d = p + k + 2
        let W = Matrix(rows: p, cols: d, values: (0..<(p * d)).map { _ in rng.normal() / Double(d).squareRoot() })
        let T = Matrix(rows: k, cols: d, values: (0..<(k * d)).map { _ in rng.normal() * 1.3 / Double(d).squareRoot() })
        return Overlaps(M: W * T.transposed, Q: W * W.transposed, P: T * T.transposed, a: a)
    }

    /// The largest deviation of `x` from `reference`, each in units of max(|reference entry|, 10⁻³ · max|reference|).
    static func relativeDeviation(_ x: [Double], _ reference: [Double]) -> Double {
        let scale = reference.map(abs).max() ?? 0
        return zip(x, reference).map { abs($0 - $1) / max(abs($1), 1e-3 * scale, .leastNormalMagnitude) }.max() ?? 0
    }

    static func flat(_ t: (psi: Matrix, phi: Matrix, xi: Matrix, aDrift: [Double])) -> [Double] {
        t.psi.values + t.phi.values + t.xi.values + t.aDrift
    }

    static func flat(_ d: (dM: Matrix, dQ: Matrix, da: [Double])) -> [Double] { d.dM.values + d.dQ.values + d.da }

    @Test("Ψ, Φ, Ξ, E[σD] and the rates from shared erf pieces equal the per-term closed forms", arguments: 0..<4)
    func sharedAgainstPerTerm(_ index: Int) {
        let (label, e, flow) = Self.experiments()[index]
        let shared = OnlineSGDTheory(e, populationFlow: flow)
        var perTerm = shared
        perTerm.sharesErfTerms = false
        #expect(shared.sharesErfTerms)
        for seed in UInt64(1)...20 {
            let o = Self.randomOverlaps(p: e.student.p, k: e.teacher.k, a: e.student.secondLayer, seed: seed)
            let terms = Self.relativeDeviation(Self.flat(shared.expectationTerms(o)), Self.flat(perTerm.expectationTerms(o)))
            let rates = Self.relativeDeviation(Self.flat(shared.derivatives(o)), Self.flat(perTerm.derivatives(o)))
            #expect(terms <= Self.tolerance && rates <= Self.tolerance, "\(label), seed \(seed): terms \(terms), rates \(rates)")
        }
    }

    @Test("Saad–Solla K = M = 2 and 4 through the plateau: shared and per-term trajectories agree (Euler and rk8pd)",
          arguments: [(2, ODEMethod.euler), (2, .rk8pd), (4, .euler)])
    func trajectories(_ k: Int, _ method: ODEMethod) {
        let (shared, start) = OnlineODEReferenceTests.saadSolla(k: k)
        var perTerm = shared
        perTerm.sharesErfTerms = false
        let times = [1.0, 20, 60]
        let options = ODEOptions(method: method, eulerStep: 0.01)
        let a = shared.trajectory(from: start, times: times, options: options)
        let b = perTerm.trajectory(from: start, times: times, options: options)
        #expect(a.solution.status == .completed && a.solution.rhsEvaluations == b.solution.rhsEvaluations)
        let deviation = Self.relativeDeviation(a.solution.states.flatMap { $0 }, b.solution.states.flatMap { $0 })
        #expect(deviation <= Self.tolerance, "K = \(k), \(method): \(deviation)")
    }

    /// One step of the exact map written with `Matrix` products, as EQUATIONS.md §1.2 states it.
    static func referenceStep(_ map: OnlineSGDMap, _ o: Overlaps) -> Overlaps {
        let e = map.theory.experiment, p = o.p, k = o.k, d = map.dimension
        let eta = e.training.learningRate, nb = Double(e.training.batchSize)
        let shrink = 1 - eta * e.training.weightDecay / d
        let t = map.theory.expectationTerms(o)
        let a = o.a
        var G = Matrix(rows: p, cols: p)
        if nb > 1 {
            let Pinv = GSL.symmetricPseudoInverse(o.P)
            let qPerp = o.Q - o.M * Pinv * o.M.transposed
            let phiPerp = t.phi - t.psi * Pinv * o.M.transposed
            G = t.psi * Pinv * t.psi.transposed + phiPerp * GSL.symmetricPseudoInverse(qPerp) * phiPerp.transposed
        }
        var M = Matrix(rows: p, cols: k), Q = Matrix(rows: p, cols: p)
        for j in 0..<p { for r in 0..<k { M[j, r] = shrink * o.M[j, r] + eta / d * a[j] * t.psi[j, r] } }
        for j in 0..<p { for l in 0..<p {
            Q[j, l] = shrink * shrink * o.Q[j, l] + shrink * eta / d * (a[j] * t.phi[j, l] + a[l] * t.phi[l, j])
                + eta * eta / (nb * d) * a[j] * a[l] * t.xi[j, l]
                + eta * eta / (d * d) * (1 - 1 / nb) * a[j] * a[l] * 0.5 * (G[j, l] + G[l, j])
        } }
        var newA = a
        if e.student.trainSecondLayer { for j in 0..<p { newA[j] += e.student.secondLayerLearningRate / d * t.aDrift[j] } }
        if e.student.spherical {
            let scale = (0..<p).map { (o.Q[$0, $0] / Q[$0, $0]).squareRoot() }
            for j in 0..<p { for r in 0..<k { M[j, r] *= scale[j] } }
            for j in 0..<p { for l in 0..<p { Q[j, l] *= scale[j] * scale[l] } }
        }
        return Overlaps(M: M, Q: Q, P: o.P, a: newA)
    }

    @Test("the in-place exact map equals the map written with Matrix products, over 200 steps", arguments: 0..<3)
    func mapAgainstReference(_ index: Int) {
        let (label, e, _) = Self.experiments()[index]
        for nb in [1, 50] {
            var experiment = e
            experiment.training.batchSize = nb
            let map = OnlineSGDMap(OnlineSGDTheory(experiment), dimension: 300)
            var reference = Self.randomOverlaps(p: e.student.p, k: e.teacher.k, a: e.student.secondLayer, seed: 7)
            let iteration = OnlineSGDMap.Iteration(map, from: reference)
            for _ in 0..<200 {
                reference = Self.referenceStep(map, reference)
                iteration.advance()
            }
            let o = iteration.overlaps
            let deviation = Self.relativeDeviation(o.M.values + o.Q.values + o.a, reference.M.values + reference.Q.values + reference.a)
            #expect(deviation <= Self.tolerance, "\(label), n_b = \(nb): \(deviation)")
        }
    }

    @Test("the cone check agrees with Matrix.choleskyPSD, inside and outside the cone")
    func coneCheck() {
        let e = Self.experiments()[1].1
        let theory = OnlineSGDTheory(e)
        for seed in UInt64(1)...10 {
            var o = Self.randomOverlaps(p: 3, k: 2, a: e.student.secondLayer, seed: seed)
            if seed % 2 == 0 { o.M[0, 0] += 3 }
            let map = OnlineSGDMap(theory, dimension: 100)
            let iteration = OnlineSGDMap.Iteration(map, from: o)
            #expect(iteration.isInsideCone == (o.jointCovariance.choleskyPSD(tolerance: 1e-12) != nil), "seed \(seed)")
        }
    }
}
