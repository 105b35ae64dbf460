import Foundation
import Testing
import PlateauCore
@testable import PlateauTheory

/// The allocation-free right-hand side against straightforward references: the erf terms computed
/// from shared pieces (`SharedErfTerms`) against one `GaussianExpectations` call per term
/// (`PerTermExpectations`), and the in-place exact map against the map written with `Matrix`
/// products (EQUATIONS.md §1.2). Both must agree to 10⁻¹² relative (the same closed forms, factored
/// differently, so they differ in the last bits), at single evaluations and along whole trajectories
/// (through the Saad–Solla plateau up to t = 60, before its escape amplifies rounding, and from
/// generic starts that have no symmetric plateau).
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

    @Test("from generic starts (no symmetric plateau) shared and per-term trajectories agree through learning",
          arguments: [(0, ODEMethod.euler), (0, .rk8pd), (1, .euler), (2, .rk8pd)])
    func genericTrajectories(_ index: Int, _ method: ODEMethod) {
        let (label, e, _) = Self.experiments()[index]
        let shared = OnlineSGDTheory(e)
        var perTerm = shared
        perTerm.sharesErfTerms = false
        // Random student rows W against teacher rows T = [L | 0] with L Lᵀ = P (the theory's P).
        let p = e.student.p, k = e.teacher.k, d = p + k + 2
        var rng = SplitMix64(seed: 3)
        let W = Matrix(rows: p, cols: d, values: (0..<(p * d)).map { _ in rng.normal() / Double(d).squareRoot() })
        let L = e.teacher.covariance.choleskyPSD()!
        var T = Matrix(rows: k, cols: d)
        for r in 0..<k { for s in 0..<k { T[r, s] = L[r, s] } }
        let start = Overlaps(M: W * T.transposed, Q: W * W.transposed, P: e.teacher.covariance, a: e.student.secondLayer)
        let options = ODEOptions(method: method, eulerStep: 0.01)
        let a = shared.trajectory(from: start, times: [1, 3, 10], options: options)
        let b = perTerm.trajectory(from: start, times: [1, 3, 10], options: options)
        #expect(a.solution.status == .completed && a.solution.rhsEvaluations == b.solution.rhsEvaluations,
                "\(label), \(method): \(a.solution.message) / \(b.solution.message)")
        let deviation = Self.relativeDeviation(a.solution.states.flatMap { $0 }, b.solution.states.flatMap { $0 })
        #expect(deviation <= Self.tolerance, "\(label), \(method): \(deviation)")
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

    @Test("the root-free PSD check (LDLᵀ) takes Matrix.choleskyPSD's decisions: full and deficient rank, indefinite")
    func rootFreeCheck() {
        var rng = SplitMix64(seed: 11)
        var counts = (psd: 0, notPSD: 0)
        for n in 2...8 { for rank in max(1, n - 2)...n { for negative in [0.0, 1e-6, 1e-3] {
            // A Gram matrix of the given rank at scale ~1, minus `negative`·v vᵀ for a unit v.
            let W = Matrix(rows: n, cols: rank, values: (0..<(n * rank)).map { _ in rng.normal() })
            var A = W * W.transposed
            let v = (0..<n).map { _ in rng.normal() }, norm = v.map { $0 * $0 }.reduce(0, +)
            for i in 0..<n { for j in 0..<n { A[i, j] -= negative * v[i] * v[j] / norm } }
            var copy = A.values
            let rootFree = copy.withUnsafeMutableBufferPointer { Matrix.isPSDInPlace($0.baseAddress!, n, tolerance: 1e-12) }
            let cholesky = A.choleskyPSD(tolerance: 1e-12) != nil
            #expect(rootFree == cholesky, "n = \(n), rank \(rank), −\(negative) v vᵀ: root-free \(rootFree), Cholesky \(cholesky)")
            if cholesky { counts.psd += 1 } else { counts.notPSD += 1 }
        } } }
        // Both verdicts occur (rank-deficient Gram matrices are PSD; −10⁻³ v vᵀ makes them indefinite).
        #expect(counts.psd > 10 && counts.notPSD > 10, "\(counts)")
    }

    @Test("Wick route with a fixed second layer: the terms combined once with a equal the pieces combined per evaluation")
    func wickFixedSecondLayer() {
        let link = try! Formula(parsing: "z1 + z1*z2 + 0.5*z2^2", variables: .target(k: 2))
        let fixed = Experiment(teacher: TeacherSpec(link: link, noiseVariance: 0.05),
                               student: StudentSpec(p: 3, activation: .hermite(2), secondLayer: [0.6, -0.4, 0.3]),
                               training: TrainingSpec(learningRate: 0.1, time: 10), initialization: .random(scale: 1))
        var trained = fixed
        trained.student.trainSecondLayer = true
        for (loss, label) in [(Loss.square, "square"), (.correlation, "correlation")] {
            var f = fixed, t = trained
            f.training.loss = loss
            t.training.loss = loss
            let folded = OnlineSGDTheory(f), pieces = OnlineSGDTheory(t)
            #expect(folded.route == .wick && folded.wick?.fixed != nil && pieces.wick?.fixed == nil)
            for seed in UInt64(1)...10 {
                let o = Self.randomOverlaps(p: 3, k: 2, a: fixed.student.secondLayer, seed: seed)
                let deviation = Self.relativeDeviation(Self.flat(folded.expectationTerms(o)), Self.flat(pieces.expectationTerms(o)))
                #expect(deviation <= Self.tolerance, "\(label), seed \(seed): \(deviation)")
            }
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
