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
        let e = experiment, p = o.p, k = o.k, d = dimension
        let eta = e.training.learningRate, nb = Double(e.training.batchSize)
        let shrink = 1 - eta * e.training.weightDecay / d
        let t = theory.expectationTerms(o)
        let a = o.a
        let G = nb > 1 && squaredPopulationGradient ? Self.squaredPopulationGradient(o, psi: t.psi, phi: t.phi) : Matrix(rows: p, cols: p)
        var M = Matrix(rows: p, cols: k), Q = Matrix(rows: p, cols: p)
        for j in 0..<p { for r in 0..<k {
            M[j, r] = shrink * o.M[j, r] + eta / d * a[j] * t.psi[j, r]
        } }
        for j in 0..<p { for l in j..<p {
            var v = shrink * shrink * o.Q[j, l] + shrink * eta / d * (a[j] * t.phi[j, l] + a[l] * t.phi[l, j])
            v += eta * eta / (nb * d) * a[j] * a[l] * t.xi[j, l]
            v += eta * eta / (d * d) * (1 - 1 / nb) * a[j] * a[l] * 0.5 * (G[j, l] + G[l, j])
            Q[j, l] = v
            Q[l, j] = v
        } }
        var newA = a
        if e.student.trainSecondLayer {
            for j in 0..<p { newA[j] += e.student.secondLayerLearningRate / d * t.aDrift[j] }
        }
        if e.student.spherical {
            let target = (0..<p).map { o.Q[$0, $0] }
            let scale = (0..<p).map { (target[$0] / Q[$0, $0]).squareRoot() }
            for j in 0..<p { for r in 0..<k { M[j, r] *= scale[j] } }
            for j in 0..<p { for l in 0..<p { Q[j, l] *= scale[j] * scale[l] } }
        }
        return Overlaps(M: M, Q: Q, P: o.P, a: newA)
    }

    /// G_jl = v_j · v_l with v_j = E[σ'(λ_j) D x] the population gradient direction of unit j (before
    /// the factor a_j): [Ψ P⁻¹ Ψᵀ + Φ⊥ Q⊥⁻¹ Φ⊥ᵀ]_jl, Q⊥ = Q − M P⁻¹ Mᵀ. v_j lies in the span of the
    /// teacher and student rows; Ψ_jr = v_j·w*_r/√d and Φ_jl = v_j·w_l/√d are its projections.
    static func squaredPopulationGradient(_ o: Overlaps, psi: Matrix, phi: Matrix) -> Matrix {
        let Pinv = GSL.symmetricPseudoInverse(o.P)
        let qPerp = o.Q - o.M * Pinv * o.M.transposed
        // Projection of gradient j on the part of student l orthogonal to the teacher span:
        // Φ⊥_jl = Φ_jl − (Ψ P⁻¹ Mᵀ)_jl. (EQUATIONS.md writes Φ − M P⁻¹ Ψᵀ, its transpose, which
        // differs when Ψ P⁻¹ Mᵀ is not symmetric: OnlineSGDMapTests measures v_j·v_l by Monte Carlo.)
        let phiPerp = phi - psi * Pinv * o.M.transposed
        return psi * Pinv * psi.transposed + phiPerp * GSL.symmetricPseudoInverse(qPerp) * phiPerp.transposed
    }

    /// Iterates the map from `start` and records the curve at `times` (t = steps/d; each time is
    /// rounded to a whole step). Ends early with a status when the overlaps become non-finite or
    /// leave the PSD cone.
    public func trajectory(from start: Overlaps, times: [Double], progress: ((Double) -> Void)? = nil) -> Trajectory {
        let p = start.p, k = start.k
        var out = Trajectory(observables: Trajectory.overlapObservables(p: p, k: k))
        var o = start
        var stepIndex = 0.0
        let last = (times.last ?? 0) * dimension
        for t in times {
            let target = (t * dimension).rounded()
            while stepIndex < target {
                o = step(o)
                stepIndex += 1
                if !(o.M.allFinite && o.Q.allFinite && o.a.allSatisfy(\.isFinite)) {
                    out.status = .diverged
                    out.message = "overlaps became non-finite at step \(Int(stepIndex)) (t = \(stepIndex / dimension))"
                    return out
                }
                if o.jointCovariance.choleskyPSD(tolerance: 1e-12) == nil {
                    out.status = .leftPSDCone
                    out.message = "the overlaps left the PSD cone at step \(Int(stepIndex)) (t = \(stepIndex / dimension))"
                    return out
                }
            }
            out.append(time: stepIndex / dimension, values: [theory.risk(o)] + o.observableValues)
            if last > 0 { progress?(stepIndex / last) }
        }
        out.message = "exact one-step map at d = \(dimension)"
        return out
    }

    public func curve(from start: Overlaps, times: [Double], options: ODEOptions) -> Trajectory {
        trajectory(from: start, times: times)
    }
}
