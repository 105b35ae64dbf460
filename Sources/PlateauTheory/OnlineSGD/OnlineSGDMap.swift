import Foundation
import PlateauCore

/// The exact one-step map of online SGD on the overlaps (EQUATIONS.md §1.2): one SGD step with a
/// fresh batch of n_b samples, averaged over the batch, at dimension d:
///
///     ΔM_jr = (η/d) a_j Ψ_jr
///     ΔQ_jl = (η/d)(a_jΦ_jl + a_lΦ_lj) + (η²/(n_b d)) a_j a_l Ξ_jl
///             + (η²/d²)(1 − 1/n_b) a_j a_l [Ψ P⁻¹ Ψᵀ + Φ⊥ Q⊥⁻¹ Φ⊥ᵀ]_jl
///     Q⊥ = Q − M P⁻¹ Mᵀ,  Φ⊥ = Φ − Ψ P⁻¹ Mᵀ   (Φ⊥_jl: gradient j projected on student l ⊥ teacher)
///
/// The last line is the squared population gradient (cross terms of distinct samples of a batch):
/// negligible when η n_b ≪ d, decisive when n_b ~ d^{ℓ/2} with η ∝ n_b. P⁻¹ and Q⊥⁻¹ are
/// pseudo-inverses (GSL eigen-solver), so a student in the teacher span (Q⊥ singular, Φ⊥ = 0 on
/// that subspace) is handled. Weight decay κ enters exactly: w ← (1 − ηκ/d) w + step. A trained
/// second layer moves by (η_a/d) E[σ(λ_j) D] per step. Spherical students are renormalised after
/// each step (§1.3): M'_j = (M + ΔM)_j / √(Q'_jj/q_j), Q'_jl scaled likewise, q_j the target norm.
///
/// With `theory.populationFlow` (no sampling noise) a step is full-batch GD on the population loss:
/// Ξ is dropped and the squared population gradient enters whole (the n_b → ∞ weight 1 instead of
/// 1 − 1/n_b), so the step is exact for that dynamics and keeps the rank of a singular Ω.
///
/// The cost of a step does not depend on d, so the map runs at d = 2³² as easily as at d = 100;
/// the number of steps is t·d. Its continuum limit (η n_b/d → 0) is `OnlineSGDTheory`'s ODE.
public struct OnlineSGDMap: OnlineTheoryModel, Sendable {
    public let theory: OnlineSGDTheory
    /// The input dimension d (a real number: the map only needs d as a scale).
    public let dimension: Double
    /// Keep the squared-population-gradient term (false only for studies and negative controls).
    public let squaredPopulationGradient: Bool

    public init(_ theory: OnlineSGDTheory, dimension: Double, squaredPopulationGradient: Bool = true) {
        precondition(dimension > 0)
        self.theory = theory
        self.dimension = dimension
        self.squaredPopulationGradient = squaredPopulationGradient
    }

    var experiment: Experiment { theory.experiment }

    /// The overlaps after one SGD step from `o` (averaged over the batch).
    public func step(_ o: Overlaps) -> Overlaps {
        let iteration = Iteration(self, from: o)
        iteration.advance()
        return iteration.overlaps
    }

    /// Iterates the map from `start` and records the curve at `times` (t = steps/d; each time is
    /// rounded to a whole step). Ends early with a status when the overlaps become non-finite or
    /// leave the PSD cone (`Iteration.enforceCone`).
    public func trajectory(from start: Overlaps, times: [Double], progress: ((Double) -> Void)? = nil) -> Trajectory {
        run(from: start, times: times, progress: progress).trajectory
    }

    /// `trajectory`, and the projections back onto the PSD cone it needed (rounding only: the map
    /// is exact, so a rank-deficient start stays on the cone's boundary up to round-off).
    public func run(from start: Overlaps, times: [Double], progress: ((Double) -> Void)? = nil)
        -> (trajectory: Trajectory, projections: StateProjections)
    {
        let p = start.p, k = start.k
        var out = Trajectory(observables: Trajectory.overlapObservables(p: p, k: k))
        let iteration = Iteration(self, from: start)
        var stepIndex = 0.0
        let last = (times.last ?? 0) * dimension
        for t in times {
            let target = (t * dimension).rounded()
            while stepIndex < target {
                iteration.advance()
                stepIndex += 1
                if !iteration.isFinite {
                    out.status = .diverged
                    out.message = "overlaps became non-finite at step \(Int(stepIndex)) (t = \(stepIndex / dimension))"
                    return (out, iteration.projections)
                }
                if case let .outside(depth) = iteration.enforceCone() {
                    out.status = .leftPSDCone
                    out.message = "the overlaps left the PSD cone at step \(Int(stepIndex)) (t = \(stepIndex / dimension); depth \(String(format: "%.2e", depth)))" + iteration.projections.summary
                    return (out, iteration.projections)
                }
            }
            let o = iteration.overlaps
            out.append(time: stepIndex / dimension, values: [theory.risk(o)] + o.observableValues)
            if last > 0 { progress?(stepIndex / last) }
        }
        out.message = "exact one-step map at d = \(dimension)" + iteration.projections.summary
        return (out, iteration.projections)
    }

    /// How far outside the PSD cone the map's overlaps may be and still be round-off: 10⁻¹⁰ of Ω's
    /// largest diagonal entry (the map itself keeps Ω a Gram matrix: E over the batch of
    /// (W + ΔW)(W + ΔW)ᵀ/d).
    public static let coneAllowance = 1e-10

    public func curve(from start: Overlaps, times: [Double], options: ODEOptions) -> Trajectory {
        trajectory(from: start, times: times)
    }

    /// The map iterated in place: the overlaps live in a workspace (Ω, a) and a step allocates
    /// nothing (the terms of `OnlineSGDTheory`, the squared population gradient with P⁺ computed
    /// once and Q⊥⁺ by a reused eigen-solver).
    public final class Iteration {
        let map: OnlineSGDMap
        let w: OnlineSGDWorkspace
        let p: Int, k: Int
        /// New M (p×k) and Q (p×p).
        private let newM: UnsafeMutablePointer<Double>, newQ: UnsafeMutablePointer<Double>
        private let gradient: SquaredGradient
        private let guardian: ConeGuard
        /// The projections back onto the PSD cone so far (`enforceCone`).
        public private(set) var projections = StateProjections()

        public init(_ map: OnlineSGDMap, from start: Overlaps) {
            self.map = map
            p = start.p
            k = start.k
            w = map.theory.makeWorkspace()
            w.load(start)
            gradient = SquaredGradient(p: p, P: start.P)
            guardian = ConeGuard(p: p, P: start.P)
            newM = .allocate(capacity: p * k)
            newQ = .allocate(capacity: p * p)
        }

        deinit {
            newM.deallocate()
            newQ.deallocate()
        }

        /// The current overlaps.
        public var overlaps: Overlaps { w.overlaps }

        /// M_jr / √(Q_jj P_rr) (`Overlaps.cosine`).
        public func cosine(_ j: Int, _ r: Int) -> Double {
            let n = p + k
            return w.omega[j * n + p + r] / (w.omega[j * n + j] * w.omega[(p + r) * n + p + r]).squareRoot()
        }

        /// Whether M, Q and a are finite.
        public var isFinite: Bool {
            for i in 0..<((p + k) * (p + k)) where !w.omega[i].isFinite { return false }
            for j in 0..<p where !w.a[j].isFinite { return false }
            return true
        }

        /// Whether Ω = [[Q, M], [Mᵀ, P]] is positive semi-definite (to 10⁻¹²).
        public var isInsideCone: Bool { w.omegaIsPSD(tolerance: 1e-12) }

        /// Keeps Ω on the PSD cone (`ConeGuard`, allowance `OnlineSGDMap.coneAllowance` × Ω's
        /// largest diagonal entry): round-off across the boundary of a rank-deficient Ω is projected
        /// away and counted.
        public func enforceCone() -> ConeCheck {
            let allowance = OnlineSGDMap.coneAllowance * ConeGuard.scale(w.omega, p + k)
            let result = guardian.enforce(w.omega, allowance: allowance)
            if case let .projected(depth) = result { projections.record(depth) }
            return result
        }

        /// One SGD step (EQUATIONS.md §1.2; see `OnlineSGDMap`).
        public func advance() {
            let e = map.experiment, d = map.dimension, n = p + k, omega = w.omega, a = w.a
            let eta = e.training.learningRate, nb = Double(e.training.batchSize)
            let shrink = 1 - eta * e.training.weightDecay / d
            map.theory.evaluateTerms(w)
            // Population flow (no sampling noise, Ξ dropped) is full-batch GD on the population
            // loss: its step's square is the squared population gradient in full (n_b → ∞).
            let populationFlow = map.theory.populationFlow
            let gradientWeight = populationFlow ? 1 : 1 - 1 / nb
            let withGradient = (nb > 1 || populationFlow) && map.squaredPopulationGradient
            if withGradient { gradient.compute(w) }
            for j in 0..<p { for r in 0..<k {
                newM[j * k + r] = shrink * omega[j * n + p + r] + eta / d * a[j] * w.psi[j * k + r]
            } }
            for j in 0..<p { for l in j..<p {
                var v = shrink * shrink * omega[j * n + l] + shrink * eta / d * (a[j] * w.phi[j * p + l] + a[l] * w.phi[l * p + j])
                v += eta * eta / (nb * d) * a[j] * a[l] * w.xi[j * p + l]
                if withGradient {
                    v += eta * eta / (d * d) * gradientWeight * a[j] * a[l] * 0.5 * (gradient.G[j * p + l] + gradient.G[l * p + j])
                }
                newQ[j * p + l] = v
                newQ[l * p + j] = v
            } }
            if e.student.trainSecondLayer {
                for j in 0..<p { a[j] += e.student.secondLayerLearningRate / d * w.drift[j] }
            }
            if e.student.spherical {
                // scale_j = √(Q_jj/Q'_jj), kept in the workspace's free `norm`.
                let scale = w.norm
                for j in 0..<p { scale[j] = (omega[j * n + j] / newQ[j * p + j]).squareRoot() }
                for j in 0..<p { for r in 0..<k { newM[j * k + r] *= scale[j] } }
                for j in 0..<p { for l in 0..<p { newQ[j * p + l] *= scale[j] * scale[l] } }
            }
            for j in 0..<p {
                for r in 0..<k {
                    omega[j * n + p + r] = newM[j * k + r]
                    omega[(p + r) * n + j] = newM[j * k + r]
                }
                for l in 0..<p { omega[j * n + l] = newQ[j * p + l] }
            }
        }
    }
}

/// The squared population gradient of the exact map with its scratch allocated once: P⁺ is computed
/// at the start (P does not move), Q⊥⁺ by a reused eigen-solver every step.
final class SquaredGradient {
    let p: Int, k: Int
    /// G (p×p) after `compute`.
    let G: UnsafeMutablePointer<Double>
    private let pInverse: UnsafeMutablePointer<Double>
    private let psiP: UnsafeMutablePointer<Double>, mP: UnsafeMutablePointer<Double>
    private let qPerp: UnsafeMutablePointer<Double>, phiPerp: UnsafeMutablePointer<Double>
    private let qPerpInverse: UnsafeMutablePointer<Double>, product: UnsafeMutablePointer<Double>
    private let eigen: SymmetricEigenWorkspace
    private let storage: UnsafeMutablePointer<Double>

    init(p: Int, P: Matrix) {
        self.p = p
        k = P.rows
        eigen = SymmetricEigenWorkspace(p)
        let sizes = [p * p, k * k, p * k, p * k, p * p, p * p, p * p, p * p]
        storage = .allocate(capacity: sizes.reduce(0, +))
        storage.initialize(repeating: 0, count: sizes.reduce(0, +))
        var next = storage
        func take(_ s: Int) -> UnsafeMutablePointer<Double> { defer { next += s }; return next }
        (G, pInverse, psiP, mP) = (take(sizes[0]), take(sizes[1]), take(sizes[2]), take(sizes[3]))
        (qPerp, phiPerp, qPerpInverse, product) = (take(sizes[4]), take(sizes[5]), take(sizes[6]), take(sizes[7]))
        let pinv = GSL.symmetricPseudoInverse(P)
        for i in 0..<(k * k) { pInverse[i] = pinv.values[i] }
    }

    deinit { storage.deallocate() }

    /// G_jl = v_j · v_l with v_j = E[σ'(λ_j) D x] the population gradient direction of unit j (before
    /// the factor a_j): [Ψ P⁺ Ψᵀ + Φ⊥ Q⊥⁺ Φ⊥ᵀ]_jl, Q⊥ = Q − M P⁺ Mᵀ, into `G`. v_j lies in the
    /// span of the teacher and student rows; Ψ_jr = v_j·w*_r/√d and Φ_jl = v_j·w_l/√d are its projections.
    /// Φ⊥_jl = Φ_jl − (Ψ P⁺ Mᵀ)_jl projects gradient j on the part of student l orthogonal to the
    /// teacher span (EQUATIONS.md writes Φ − M P⁺ Ψᵀ, its transpose, which differs when Ψ P⁺ Mᵀ is not
    /// symmetric: OnlineSGDMapTests measures v_j·v_l by Monte Carlo).
    func compute(_ w: OnlineSGDWorkspace) {
        let p = self.p, k = self.k, n = p + k, omega = w.omega, M = UnsafePointer(omega + p)
        // ΨP⁺ and MP⁺ (p×k).
        Self.multiply(psiP, w.psi, k, p, k, pInverse, k, 1, k)
        Self.multiply(mP, M, n, p, k, pInverse, k, 1, k)
        // Q⊥ = Q − (MP⁺)Mᵀ, Φ⊥ = Φ − (ΨP⁺)Mᵀ.
        Self.multiply(qPerp, mP, k, p, k, M, 1, n, p)
        for j in 0..<p { for l in 0..<p { qPerp[j * p + l] = omega[j * n + l] - qPerp[j * p + l] } }
        Self.multiply(phiPerp, psiP, k, p, k, M, 1, n, p)
        for i in 0..<(p * p) { phiPerp[i] = w.phi[i] - phiPerp[i] }
        // G = (ΨP⁺)Ψᵀ + (Φ⊥Q⊥⁺)Φ⊥ᵀ.
        eigen.pseudoInverse(qPerp, into: qPerpInverse, relativeCutoff: 1e-10)
        Self.multiply(G, psiP, k, p, k, w.psi, 1, k, p)
        Self.multiply(product, phiPerp, p, p, p, qPerpInverse, p, 1, p)
        Self.multiply(qPerp, product, p, p, p, phiPerp, 1, p, p)
        for i in 0..<(p * p) { G[i] = G[i] + qPerp[i] }
    }

    /// out (rows×cols) = L R with L(i, l) = lhs[i·lhsRow + l] (rows×inner) and
    /// R(l, j) = rhs[l·rhsRow + j·rhsColumn], summed in the order of `Matrix.*` (zero entries of L skipped).
    private static func multiply(_ out: UnsafeMutablePointer<Double>, _ lhs: UnsafePointer<Double>, _ lhsRow: Int,
                                 _ rows: Int, _ inner: Int, _ rhs: UnsafePointer<Double>, _ rhsRow: Int, _ rhsColumn: Int,
                                 _ cols: Int) {
        for i in 0..<(rows * cols) { out[i] = 0 }
        for i in 0..<rows {
            for l in 0..<inner {
                let x = lhs[i * lhsRow + l]
                if x == 0 { continue }
                for j in 0..<cols { out[i * cols + j] += x * rhs[l * rhsRow + j * rhsColumn] }
            }
        }
    }
}

extension OnlineSGDMap {
    /// G at `o` for the given Ψ, Φ (`SquaredGradient`), as a matrix.
    static func squaredPopulationGradient(_ o: Overlaps, psi: Matrix, phi: Matrix) -> Matrix {
        let p = o.p, k = o.k
        let w = OnlineSGDWorkspace(p: p, k: k)
        w.load(o)
        for i in 0..<(p * k) { w.psi[i] = psi.values[i] }
        for i in 0..<(p * p) { w.phi[i] = phi.values[i] }
        let gradient = SquaredGradient(p: p, P: o.P)
        gradient.compute(w)
        return Matrix(rows: p, cols: p, values: (0..<(p * p)).map { gradient.G[$0] })
    }
}
