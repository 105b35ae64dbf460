import Foundation
import PlateauCore

/// The d = ∞ curves of the spectral estimators of a multi-index model at one α (EQUATIONS.md §2.1):
/// the asymmetric L (linearised AMP), the symmetric T with the optimal preprocessing 𝒯 = G(I + G)⁻¹,
/// and optionally the plain matrix (1/n)Σ_μ p(y_μ) x_μx_μᵀ with a scalar preprocessing p.
///
/// Overlaps are m² = ‖Π_{W*}Ŵ‖²_F/‖Ŵ‖²_F of the top eigenvector's estimator; with a degenerate outlier
/// (the top eigenvalue of 𝓕 is multiple: z₁z₂, sign(z₁z₂)) they are the mean over the group, and
/// `m2LSpread` says how much the members differ.
public struct SpectralPoint: Sendable, Hashable {
    public var alpha: Double
    /// m² of L's estimator Ŵ = X̃ᵀ mat(Ĝω) (0 for α ≤ α_c).
    public var m2L: Double
    /// max − min of m² over the members of a degenerate top group (0 when simple).
    public var m2LSpread: Double
    /// L's informative outlier αλ_max(𝓕) = α/α_c (it is an eigenvalue outside the bulk only for α > α_c).
    public var outlierL: Double
    /// The radius √(α/α_c) of the disk holding L's bulk.
    public var bulkRadiusL: Double
    /// m² of T's top eigenvector (0 for α ≤ α_c); nil when 𝒯 is undefined.
    public var m2T: Double?
    /// T's outlier (exactly 1 above α_c; nil below, or when 𝒯 is undefined).
    public var outlierT: Double?
    /// The right edge of T's bulk; nil when 𝒯 is undefined.
    public var bulkEdgeT: Double?
    /// |ν − 1|, ν the top eigenvalue of the linearised state evolution at T's fixed point: the theory's
    /// own consistency check (T's outlier is exactly 1), 0 below α_c.
    public var selfCheckT: Double
    /// The plain preprocessed matrix (1/n)Σ p(y) xxᵀ: m² of its top eigenvector, its outlier and its
    /// bulk edge (nil without a preprocessing, or when not defined).
    public var m2P: Double?
    public var outlierP: Double?
    public var bulkEdgeP: Double?
}

/// What makes a spectral theory impossible for a problem.
public struct SpectralTheoryError: Error, Sendable, CustomStringConvertible {
    public var field: String
    public var value: String
    public var reason: String
    public var description: String { "\(field) = \(value): \(reason)" }
}

/// The asymptotic theory of the spectral estimators, from the output channel's prior conditionals
/// (atoms carrying G(y) = E[zzᵀ | y] − I_k, `StateEvolution.priorConditionals()`).
///
/// **Derivation** (the state evolution of a linear AMP whose fixed points are the eigenvectors; the
/// package's convention, EQUATIONS.md §2.1). An AMP with channel g_μ = F(y_μ)ω_μ and linear prior
/// step ŵ_i = C b_i has the state evolution ω = μz + noise(S):
///
///     μ' = α C E[F μ G],     S' = α C (E[F μ (I + G) μᵀ Fᵀ] + E[F S Fᵀ]) Cᵀ
///
/// (Stein's lemma on z; E[G] = 0). Its fixed points are eigenvectors of X̃ᵀ diag(F(I + CF)⁻¹) X̃ with
/// eigenvalue λ, where C⁻¹ + αE[F] = λI.
/// - **L**: F = G, C = 1 without normalisation: μ grows by the factor αθ (θ = λ_max(𝓕) on ℝ^{k×k},
///   𝓕(μ) = E[GμG]), so the outlier is α/α_c; the noise grows by α𝓕 on S, so the bulk radius is
///   √(α/α_c); the ratio is stationary at S* = (λ²I − α𝓕)⁻¹ αE[G V (I + G) Vᵀ G] for a top eigenvector V.
/// - **T** (preprocessing P = 𝒯, or p(y)I_k): F = P(I − CP)⁻¹, where the symmetric C solves the
///   resolvent equation C⁻¹ + αE[P(I − CP)⁻¹] = λI on its physical branch (the one reached from C = 0,
///   where the Jacobian α𝒩, 𝒩(S) = C E[F S Fᵀ] C, has spectral radius < 1). The outlier is the λ at
///   which the signal map μ ↦ αC E[F μ G] has eigenvalue 1 (λ = 1 for the optimal 𝒯: its resolvent
///   at λ = 1 is the point where the map is stationary, checked as `selfCheckT`), the bulk edge is
///   the fold of the branch (ρ(α𝒩) = 1), and m² = ‖μ‖²/(‖μ‖² + tr S) with S = (I − α𝒩)⁻¹ αC E[Fμ(I + G)μᵀFᵀ] C.
/// For k = 1 these reduce to m²_L = (α − α_c)/(α + α_c² E[ℓ³]) and to the m²_T = 1 − 1/a of §2.1.
public final class SpectralTheory: @unchecked Sendable {
    public let k: Int
    /// Atom weights (probabilities of y, or p(y)dy on the y-grid) and G(y) (row-major k×k).
    let weights: [Double]
    let labels: [Double]
    let G: [[Double]]
    /// 𝒯(y) = I − E[zzᵀ | y]⁻¹ per atom; nil when undefined (see `optimalUndefinedReason`).
    let optimal: [[Double]]?
    /// Why 𝒯 is undefined (E[zzᵀ | y] singular on atoms of positive mass), when it is.
    public let optimalUndefinedReason: String?
    /// λ_max(𝓕) on ℝ^{k×k}, its eigenvalues (descending) and an orthonormal basis of its top eigenspace.
    public let theta: Double
    public let operatorEigenvalues: [Double]
    let topSpace: [[Double]]
    /// 𝓕 as a k²×k² matrix.
    let F: Matrix
    /// Relative gap below which eigenvalues count as one degenerate group (10h² for a binned output).
    public let degeneracyTolerance: Double
    /// α_c = 1/θ.
    public var alphaC: Double { theta > 0 ? 1 / theta : .infinity }
    /// Multiplicity of the top eigenvalue of 𝓕 (the number of informative outliers of L).
    public var outlierMultiplicity: Int { topSpace.count }
    /// min over atoms of the smallest eigenvalue of 𝒯(y): very negative when 𝒯 is unbounded below
    /// (phase retrieval: 𝒯 = 1 − 1/y²).
    public let optimalMinimum: Double?

    /// - Throws: `SpectralTheoryError` when the trivial subspace is non-empty (E[z | y] ≠ 0: a
    ///   first-moment estimator already recovers it at any α, and the spectral matrices do not apply)
    ///   or when 𝓕 = 0 within the channel's accuracy (no finite threshold).
    public init(stateEvolution se: StateEvolution) throws {
        let k = se.problem.k
        self.k = k
        let analysis = se.weakRecovery()
        guard analysis.trivialSubspace.isEmpty else {
            throw SpectralTheoryError(
                field: "teacher.target", value: se.problem.target.description,
                reason: "E[z | y] ≠ 0 (a non-empty trivial subspace, learned at any α > 0 by the first-moment estimator); "
                    + "the spectral estimators of EQUATIONS.md §2.1 are defined for targets with E[z | y] = 0")
        }
        let atoms = se.priorConditionals()
        weights = atoms.map(\.weight)
        labels = atoms.map(\.y)
        G = atoms.map(\.G.values)
        let kk = k * k
        // 𝓕 on ℝ^{k×k} in the basis E_ab: 𝓕[(ab), (cd)] = E[G_ac G_db].
        var F = Matrix(rows: kk, cols: kk)
        for (w, g) in zip(weights, G) {
            for a in 0..<k { for b in 0..<k { for c in 0..<k { for d in 0..<k {
                F.values[(a * k + b) * kk + c * k + d] += w * g[a * k + c] * g[d * k + b]
            } } } }
        }
        self.F = F
        let (values, vectors) = GSL.symmetricEigen(F)
        operatorEigenvalues = values
        let theta = values[0]
        self.theta = theta
        guard theta > analysis.operatorResolution else {
            throw SpectralTheoryError(field: "teacher.target", value: se.problem.target.description,
                                      reason: "𝓕 = 0 within the channel's accuracy: no finite weak-recovery threshold (α_c = ∞)")
        }
        // A binned output breaks exact degeneracies (z₁z₂: y ↦ −y swaps the (z₁ ± z₂)/√2 directions) by
        // its resolution O(h²): eigenvalues that close count as one group.
        let h = se.productLaw != nil ? 0 : se.channel.binWidth ?? 0
        let tolerance = max(1e-7, 10 * h * h)
        degeneracyTolerance = tolerance
        let degenerate = (0..<kk).filter { values[$0] >= theta * (1 - tolerance) }
        topSpace = degenerate.map { e in (0..<kk).map { vectors[$0, e] } }
        // 𝒯 = I − (I + G)⁻¹: undefined where E[zzᵀ | y] = I + G is singular. A binned output resolves
        // y to a width h, so a level set inside a hyperplane (z₁/z₂) leaves an eigenvalue O(h²).
        let cutoff = max(1e-9, 4 * h * h)
        var optimal: [[Double]] = [], singularMass = 0.0, minimum = Double.infinity
        for (w, g) in zip(atoms.map(\.weight), atoms.map(\.G.values)) {
            let second = Matrix(rows: k, cols: k, values: g) + Matrix.identity(k)
            let eigen = GSL.symmetricEigen(second).values
            if eigen.last! <= cutoff { singularMass += w; optimal.append([]); continue }
            let inverse = Self.inverse(second.values, k)!
            var t = [Double](repeating: 0, count: kk)
            for i in 0..<kk { t[i] = -inverse[i] }
            for i in 0..<k { t[i * k + i] += 1 }
            minimum = min(minimum, 1 - 1 / eigen.last!)
            optimal.append(t)
        }
        if singularMass > 1e-6 {
            self.optimal = nil
            optimalMinimum = nil
            optimalUndefinedReason = "𝒯(y) = I − E[zzᵀ | y]⁻¹ is undefined for \(se.problem.target.description): E[zzᵀ | y] is singular "
                + "on outputs of probability \(Experiment.format(singularMass)) (its level sets lie in hyperplanes)"
        } else {
            self.optimal = optimal.map { $0.isEmpty ? [Double](repeating: 0, count: kk) : $0 }
            optimalMinimum = minimum
            optimalUndefinedReason = nil
        }
    }

    /// The curves at each α of `alphas`, in parallel; `preprocessing` p(y) adds the plain matrix.
    public func curve(alphas: [Double], preprocessing: Formula? = nil, threads: Int = 0) -> [SpectralPoint] {
        let slots = JobResults<SpectralPoint>(count: alphas.count)
        let workers = min(alphas.count, threads > 0 ? threads : WorkerThreads.count)
        DispatchQueue.concurrentPerform(iterations: max(workers, 1)) { worker in
            var i = worker
            while i < alphas.count {
                slots.set(i, point(alpha: alphas[i], preprocessing: preprocessing))
                i += max(workers, 1)
            }
        }
        return slots.values
    }

    /// All quantities at one α.
    public func point(alpha: Double, preprocessing: Formula? = nil) -> SpectralPoint {
        let (m2L, spread) = asymmetricOverlap(alpha: alpha)
        var point = SpectralPoint(alpha: alpha, m2L: m2L, m2LSpread: spread, outlierL: alpha * theta,
                                  bulkRadiusL: (alpha * theta).squareRoot(), m2T: nil, outlierT: nil, bulkEdgeT: nil,
                                  selfCheckT: 0, m2P: nil, outlierP: nil, bulkEdgeP: nil)
        if let optimal {
            let r = symmetric(alpha: alpha, P: optimal, fixedLambda: 1)
            point.m2T = r.m2
            point.outlierT = r.outlier
            point.bulkEdgeT = r.edge
            point.selfCheckT = r.selfCheck
        }
        if let p = preprocessing {
            let values = labels.map { p.value([$0]) }
            let P = values.map { v in (0..<(k * k)).map { $0 % (k + 1) == 0 ? v : 0 } }
            let r = symmetric(alpha: alpha, P: P, fixedLambda: nil)
            // (1/n)Σ p(y) xxᵀ = T_p/α.
            point.m2P = r.m2
            point.outlierP = r.outlier.map { $0 / alpha }
            point.bulkEdgeP = r.edge.map { $0 / alpha }
        }
        return point
    }

    // MARK: - L

    /// m²_L (mean over the top eigenspace of 𝓕) and the spread of m² over its basis.
    func asymmetricOverlap(alpha: Double) -> (Double, Double) {
        let lambda = alpha * theta
        guard lambda > 1 else { return (0, 0) }
        let kk = k * k
        var system = Matrix(rows: kk, cols: kk)
        for i in 0..<(kk * kk) { system.values[i] = -alpha * F.values[i] }
        for i in 0..<kk { system[i, i] += lambda * lambda }
        let overlaps = topSpace.map { V -> Double in
            // R = α E[G V (I + G) Vᵀ G].
            var R = [Double](repeating: 0, count: kk)
            for (w, g) in zip(weights, G) {
                let gv = Self.multiply(g, V, k)
                var m = gv
                let gvg = Self.multiply(gv, g, k)
                for i in 0..<kk { m[i] += gvg[i] }             // G V (I + G)
                let full = Self.multiply(m, Self.transpose(gv, k), k)  // G V (I + G) Vᵀ G
                for i in 0..<kk { R[i] += alpha * w * full[i] }
            }
            guard let S = GSL.solve(system, R) else { return .nan }
            let signal = V.reduce(0) { $0 + $1 * $1 }
            let noise = (0..<k).reduce(0) { $0 + S[$1 * k + $1] }
            return signal / (signal + noise)
        }
        let mean = overlaps.reduce(0, +) / Double(overlaps.count)
        return (mean, (overlaps.max() ?? 0) - (overlaps.min() ?? 0))
    }

    // MARK: - T and the plain preprocessed matrix

    struct SymmetricResult {
        var m2: Double?
        var outlier: Double?
        var edge: Double?
        var selfCheck: Double
    }

    /// The symmetric matrix X̃ᵀ diag(P) X̃: the bulk edge, and the outlier with its overlap — at the fixed
    /// λ (optimal 𝒯: λ = 1) or at the λ where the signal map reaches 1 (a plain preprocessing).
    func symmetric(alpha: Double, P: [[Double]], fixedLambda: Double?) -> SymmetricResult {
        let edge = bulkEdge(alpha: alpha, P: P)
        var result = SymmetricResult(m2: 0, outlier: nil, edge: edge?.lambda, selfCheck: 0)
        if let lambda = fixedLambda {
            guard alpha * theta > 1 else { return result }
            // Start below the informative root (C = 0) and stay on the physical branch.
            guard let C = resolvent(alpha: alpha, lambda: lambda, P: P, start: nil),
                  let r = signal(alpha: alpha, C: C, P: P) else {
                result.m2 = nil
                return result
            }
            result.selfCheck = abs(r.top - 1)
            result.m2 = r.m2
            result.outlier = lambda
            return result
        }
        // A plain preprocessing: follow the branch from large λ down to the edge and find the λ where
        // the signal map's top eigenvalue crosses 1 (it increases as λ decreases).
        guard let edge else { result.m2 = nil; return result }
        func top(_ C: [Double]) -> Double { signal(alpha: alpha, C: C, P: P, overlap: false)?.top ?? .nan }
        guard top(edge.C) > 1 else { return result }
        var lo = edge.lambda, hi = max(2 * edge.lambda, 1)
        var cHi: [Double]? = resolvent(alpha: alpha, lambda: hi, P: P, start: nil)
        while let c = cHi, top(c) > 1 {
            lo = hi; hi *= 2
            cHi = resolvent(alpha: alpha, lambda: hi, P: P, start: nil)
            if hi > 1e12 { break }
        }
        guard var cUpper = cHi else { result.m2 = nil; return result }
        for _ in 0..<80 {
            let mid = 0.5 * (lo + hi)
            guard let c = resolvent(alpha: alpha, lambda: mid, P: P, start: cUpper) else { lo = mid; continue }
            if top(c) > 1 { lo = mid } else { hi = mid; cUpper = c }
            if hi - lo <= 1e-11 * hi { break }
        }
        let lambda = 0.5 * (lo + hi)
        guard let C = resolvent(alpha: alpha, lambda: lambda, P: P, start: cUpper),
              let r = signal(alpha: alpha, C: C, P: P) else { result.m2 = nil; return result }
        result.m2 = r.m2
        result.outlier = lambda
        result.selfCheck = abs(r.top - 1)
        return result
    }

    /// The signal map μ ↦ αC E[F μ G] at a resolvent C: its top eigenvalue (by real part) and the mean
    /// overlap over its top eigenspace.
    func signal(alpha: Double, C: [Double], P: [[Double]], overlap: Bool = true) -> (top: Double, m2: Double)? {
        let kk = k * k
        var A = Matrix(rows: kk, cols: kk)
        var CF: [[Double]] = []
        for (w, (g, p)) in zip(weights, zip(G, P)) {
            guard let f = Self.resolventKernel(p, C, k) else { return nil }
            let cf = Self.multiply(C, f, k)
            CF.append(cf)
            // (C F μ G)_ab = Σ_de (CF)_ad μ_de G_eb.
            for a in 0..<k { for b in 0..<k { for d in 0..<k { for e in 0..<k {
                A.values[(a * k + b) * kk + d * k + e] += alpha * w * cf[a * k + d] * g[e * k + b]
            } } } }
        }
        guard let eigen = GSL.nonsymmetricEigen(A) else { return nil }
        let top = eigen.real[0]
        guard overlap else { return (top, .nan) }
        let N = noiseMap(alpha: alpha, CF: CF)
        var system = Matrix(rows: kk, cols: kk)
        for i in 0..<(kk * kk) { system.values[i] = -N.values[i] }
        for i in 0..<kk { system[i, i] += 1 }
        let members = (0..<kk).filter { abs(eigen.real[$0] - top) <= max(1e-6, degeneracyTolerance) * max(1, abs(top)) && abs(eigen.imaginary[$0]) < 1e-9 }
        var total = 0.0
        for e in members {
            let mu = (0..<kk).map { eigen.vectors[$0, e] }
            var R = [Double](repeating: 0, count: kk)
            for (w, (g, cf)) in zip(weights, zip(G, CF)) {
                let cfm = Self.multiply(cf, mu, k)
                var m = cfm
                let cfmg = Self.multiply(cfm, g, k)
                for i in 0..<kk { m[i] += cfmg[i] }                       // CFμ(I + G)
                let full = Self.multiply(m, Self.transpose(cfm, k), k)   // CFμ(I + G)μᵀFᵀC
                for i in 0..<kk { R[i] += alpha * w * full[i] }
            }
            guard let S = GSL.solve(system, R) else { return nil }
            let signal = mu.reduce(0) { $0 + $1 * $1 }
            let noise = (0..<k).reduce(0) { $0 + S[$1 * k + $1] }
            guard noise >= -1e-12 * signal else { return nil }
            total += signal / (signal + max(noise, 0))
        }
        return (top, total / Double(max(members.count, 1)))
    }

    /// α𝒩 as a k²×k² matrix: S ↦ α C E[F S Fᵀ] C, entries α E[(CF)_ac (CF)_bd].
    func noiseMap(alpha: Double, CF: [[Double]]) -> Matrix {
        let kk = k * k
        var N = Matrix(rows: kk, cols: kk)
        for (w, cf) in zip(weights, CF) {
            for a in 0..<k { for b in 0..<k { for c in 0..<k { for d in 0..<k {
                N.values[(a * k + b) * kk + c * k + d] += alpha * w * cf[a * k + c] * cf[b * k + d]
            } } } }
        }
        return N
    }

    /// The spectral radius of α𝒩 at C (the branch is physical while it is below 1).
    func noiseRadius(alpha: Double, C: [Double], P: [[Double]]) -> Double? {
        var CF: [[Double]] = []
        for p in P {
            guard let f = Self.resolventKernel(p, C, k) else { return nil }
            CF.append(Self.multiply(C, f, k))
        }
        guard let e = GSL.nonsymmetricEigen(noiseMap(alpha: alpha, CF: CF)) else { return nil }
        return zip(e.real, e.imaginary).map { ($0 * $0 + $1 * $1).squareRoot() }.max()
    }

    /// The map C ↦ (λI − αE[P(I − CP)⁻¹])⁻¹ (nil when a matrix on the way is singular).
    func resolventMap(alpha: Double, lambda: Double, C: [Double], P: [[Double]]) -> [Double]? {
        let kk = k * k
        var sum = [Double](repeating: 0, count: kk)
        for (w, p) in zip(weights, P) {
            guard let f = Self.resolventKernel(p, C, k) else { return nil }
            for i in 0..<kk { sum[i] -= alpha * w * f[i] }
        }
        for i in 0..<k { sum[i * k + i] += lambda }
        guard var out = Self.inverse(sum, k) else { return nil }
        for a in 0..<k { for b in (a + 1)..<k { let s = 0.5 * (out[a * k + b] + out[b * k + a]); out[a * k + b] = s; out[b * k + a] = s } }
        return out
    }

    /// The physical solution C of C⁻¹ + αE[P(I − CP)⁻¹] = λI: fixed-point iteration from `start` (C = 0
    /// when nil: the map is monotone, so it rises to the smallest root), then Newton with the Jacobian
    /// α𝒩; nil when there is none (λ inside the bulk) or the root found is past the fold.
    func resolvent(alpha: Double, lambda: Double, P: [[Double]], start: [Double]?) -> [Double]? {
        let kk = k * k
        var C = start ?? [Double](repeating: 0, count: kk)
        var iterations = 0
        func change(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).map { abs($0 - $1) }.max()! }
        func scale(_ a: [Double]) -> Double { max(a.map(abs).max()!, 1e-300) }
        // Fixed-point iterations until they slow down (or converge).
        var lastChange = Double.infinity
        while start == nil && iterations < 2000 {
            guard let next = resolventMap(alpha: alpha, lambda: lambda, C: C, P: P), next.allSatisfy(\.isFinite),
                  Self.positiveDefinite(next, k) else { return nil }
            let c = change(next, C)
            C = next
            iterations += 1
            if c <= 1e-15 * scale(C) { break }
            if iterations > 50 && c > 0.999 * lastChange { break }
            lastChange = c
        }
        // Newton on C − Φ(C) = 0 with the Jacobian of Φ: dΦ = Φ (αE[F dC Fᵀ]) Φ, F = P(I − CP)⁻¹. Without
        // convergence there is no root here (λ below the edge, where Newton wanders): nil, not the last iterate.
        var converged = false
        for _ in 0..<40 {
            guard let phi = resolventMap(alpha: alpha, lambda: lambda, C: C, P: P) else { return nil }
            var CF: [[Double]] = []
            for p in P {
                guard let f = Self.resolventKernel(p, C, k) else { return nil }
                CF.append(Self.multiply(phi, f, k))
            }
            let J = noiseMap(alpha: alpha, CF: CF)
            var system = Matrix(rows: kk, cols: kk)
            for i in 0..<(kk * kk) { system.values[i] = -J.values[i] }
            for i in 0..<kk { system[i, i] += 1 }
            let residual = (0..<kk).map { phi[$0] - C[$0] }
            guard let step = GSL.solve(system, residual) else { return nil }
            for i in 0..<kk { C[i] += step[i] }
            for a in 0..<k { for b in (a + 1)..<k { let s = 0.5 * (C[a * k + b] + C[b * k + a]); C[a * k + b] = s; C[b * k + a] = s } }
            guard C.allSatisfy(\.isFinite), Self.positiveDefinite(C, k) else { return nil }
            if step.map(abs).max()! <= 1e-13 * scale(C) { converged = true; break }
        }
        guard converged, let radius = noiseRadius(alpha: alpha, C: C, P: P), radius < 1 else { return nil }
        return C
    }

    /// The right edge of the bulk of X̃ᵀ diag(P) X̃: the smallest λ with a physical resolvent (bisection
    /// on λ, warm-started from above); nil when none is found.
    func bulkEdge(alpha: Double, P: [[Double]], forceMatrix: Bool = false) -> (lambda: Double, C: [Double])? {
        if !forceMatrix, let edge = scalarEdge(alpha: alpha, P: P) { return edge }
        var hi = 1.0
        var cHi = resolvent(alpha: alpha, lambda: hi, P: P, start: nil)
        while cHi == nil {
            hi *= 2
            if hi > 1e15 { return nil }
            cHi = resolvent(alpha: alpha, lambda: hi, P: P, start: nil)
        }
        var C = cHi!
        // Step down (doubling) until the branch ends; the edge may be negative when P is mostly negative.
        var step = 0.5 * hi, lo = hi - step
        while let c = resolvent(alpha: alpha, lambda: lo, P: P, start: C) {
            hi = lo; C = c; step *= 2; lo = hi - step
            if step > 1e15 { return nil }
        }
        for _ in 0..<200 {
            let mid = 0.5 * (lo + hi)
            if let c = resolvent(alpha: alpha, lambda: mid, P: P, start: C) { hi = mid; C = c } else { lo = mid }
            if hi - lo <= 1e-9 * max(1, abs(hi)) { break }
        }
        return (hi, C)
    }

    /// The bulk edge when every P(y) is a multiple p(y)I of the identity (k = 1, a scalar preprocessing):
    /// C = sI and the branch is λ(s) = 1/s + αE[p/(1 − sp)] for 0 < s < 1/max p, whose minimum is the
    /// edge (the fold ρ(α𝒩) = s²αE[(p/(1 − sp))²] = 1). A geometric grid brackets it, golden sections refine it.
    func scalarEdge(alpha: Double, P: [[Double]]) -> (lambda: Double, C: [Double])? {
        let kk = k * k
        for p in P { for i in 0..<kk where (i % (k + 1) == 0 ? abs(p[i] - p[0]) : abs(p[i])) > 1e-14 * max(1, abs(p[0])) { return nil } }
        let values = P.map { $0[0] }
        let top = values.max() ?? 0
        let sMax = top > 0 ? 1 / top : 1e8
        func lambda(_ s: Double) -> Double {
            var sum = 0.0
            for (w, p) in zip(weights, values) { sum += w * p / (1 - s * p) }
            return 1 / s + alpha * sum
        }
        // Grid on (0, sMax): geometric from sMax·10⁻⁸, then dense near sMax.
        var grid: [Double] = []
        for i in 0..<400 { grid.append(sMax * pow(10, -8 + 8 * Double(i) / 400)) }
        for i in 1..<200 { grid.append(sMax * (1 - pow(10, -1 - 11 * Double(i) / 200))) }
        grid.sort()
        let values2 = grid.map(lambda)
        guard let best = values2.indices.min(by: { values2[$0] < values2[$1] }) else { return nil }
        var a = grid[max(best - 1, 0)], b = grid[min(best + 1, grid.count - 1)]
        let ratio = (5.0.squareRoot() - 1) / 2
        var c = b - ratio * (b - a), d = a + ratio * (b - a)
        var fc = lambda(c), fd = lambda(d)
        for _ in 0..<200 where b - a > 1e-15 * b {
            if fc < fd { b = d; d = c; fd = fc; c = b - ratio * (b - a); fc = lambda(c) } else { a = c; c = d; fc = fd; d = a + ratio * (b - a); fd = lambda(d) }
        }
        let s = 0.5 * (a + b)
        var C = [Double](repeating: 0, count: kk)
        for i in 0..<k { C[i * k + i] = s }
        return (lambda(s), C)
    }

    // MARK: - small dense algebra (k ≤ 4, row-major)

    static func multiply(_ a: [Double], _ b: [Double], _ k: Int) -> [Double] {
        var c = [Double](repeating: 0, count: k * k)
        for i in 0..<k { for l in 0..<k { let x = a[i * k + l]; if x == 0 { continue }; for j in 0..<k { c[i * k + j] += x * b[l * k + j] } } }
        return c
    }

    static func transpose(_ a: [Double], _ k: Int) -> [Double] {
        var t = a
        for i in 0..<k { for j in 0..<k { t[j * k + i] = a[i * k + j] } }
        return t
    }

    /// The inverse by Gauss–Jordan elimination with partial pivoting; nil when singular.
    static func inverse(_ a: [Double], _ k: Int) -> [Double]? {
        var m = a, inv = [Double](repeating: 0, count: k * k)
        for i in 0..<k { inv[i * k + i] = 1 }
        let scale = max(a.map(abs).max() ?? 0, 1e-300)
        for c in 0..<k {
            var p = c
            for r in (c + 1)..<max(k, c + 1) where abs(m[r * k + c]) > abs(m[p * k + c]) { p = r }
            guard abs(m[p * k + c]) > 1e-14 * scale else { return nil }
            if p != c { for j in 0..<k { m.swapAt(p * k + j, c * k + j); inv.swapAt(p * k + j, c * k + j) } }
            let pivot = 1 / m[c * k + c]
            for j in 0..<k { m[c * k + j] *= pivot; inv[c * k + j] *= pivot }
            for r in 0..<k where r != c {
                let f = m[r * k + c]
                if f == 0 { continue }
                for j in 0..<k { m[r * k + j] -= f * m[c * k + j]; inv[r * k + j] -= f * inv[c * k + j] }
            }
        }
        return inv
    }

    /// F = P(I − CP)⁻¹.
    static func resolventKernel(_ p: [Double], _ C: [Double], _ k: Int) -> [Double]? {
        var m = multiply(C, p, k)
        for i in 0..<(k * k) { m[i] = -m[i] }
        for i in 0..<k { m[i * k + i] += 1 }
        guard let inv = inverse(m, k) else { return nil }
        return multiply(p, inv, k)
    }

    /// Cholesky test of a symmetric k×k matrix.
    static func positiveDefinite(_ a: [Double], _ k: Int) -> Bool {
        Matrix(rows: k, cols: k, values: a).inverseSPD(tolerance: 1e-14) != nil
    }
}
