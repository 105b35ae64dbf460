import Foundation
internal import CGSL

/// Exact Gaussian expectations with ReLU steps that have no elementary closed form in four
/// fields: the orthant probability P(u₁ > 0, …, u₄ > 0) and the quartic
/// E[θ(u₁) θ(u₂) relu(u₃) relu(u₄)] of the online-SGD noise term (θ = 1{x > 0}, the derivative
/// of relu = max(0, x) as in `Activation`).
///
/// Everything is done in correlation units, zᵢ = uᵢ/√Cᵢᵢ: θ(uᵢ) = θ(zᵢ) and
/// relu(uᵢ) = √Cᵢᵢ relu(zᵢ), and relu(z) = z·θ(z), so with A = {z₁, …, z₄ > 0}
///
///     E[θ(u₁) θ(u₂) relu(u₃) relu(u₄)] = √(C₃₃C₄₄) · E[z₃ z₄ 1_A].
///
/// **Stein reduction.** E[z_a G(z)] = Σₖ R_ak E[∂ₖG] with G = z_b 1_A gives
///
///     E[z_a z_b 1_A] = R_ab P(A) + Σ_{k≠b} R_ak φ(0) E[z_b 1{z_l > 0, l ≠ k} | z_k = 0]
///
/// (the k = b term vanishes, z_b δ(z_b) = 0). Given z_k = 0 the other fields y are Gaussian with
/// covariance S = R − R_{·k} R_{k·}, and Stein once more gives the truncated first moment
///
///     E[y_b 1{y > 0}] = Σ_j S_bj φ(0)/√S_jj · P(the rest > 0 | y_j = 0),
///
/// so with φ(0)² / √S_jj = φ₂(0, 0; R_kj) = 1/(2π√(1 − R_kj²)):
///
///     E[z_a z_b 1_A] = R_ab P_m + Σ_{k≠b} R_ak Σ_{j≠k} S⁽ᵏ⁾_bj / (2π√(1 − R_kj²)) · Q_kj,
///
/// with Q_kj = P(remaining m − 2 fields > 0 | z_k = z_j = 0): 1, ½, or ¼ + asin(ρ_kj)/(2π) where
/// ρ_kj is the correlation of the remaining pair given z_k = z_j = 0 (m fields after merging).
///
/// **Orthant probabilities.** P₁ = ½, P₂ = ¼ + asin ρ/(2π), P₃ = ⅛ + Σ asin ρᵢⱼ/(4π) (Sheppard);
/// P₄ by Plackett's reduction ∂P/∂ρᵢⱼ = φ₂(0, 0; ρᵢⱼ) · P(z_k > 0, z_l > 0 | zᵢ = zⱼ = 0),
/// integrated along R(τ) = I + τ(R − I) from P(I) = 1/16: a one-dimensional adaptive integral
/// (GSL qag, 21-point Gauss–Kronrod, to 10⁻¹⁴ absolute) in s with τ = 1 − s², which removes the
/// square-root endpoint behaviour of a nearly singular R. R(τ) is positive definite for τ < 1, so
/// the integrand never sees a singular conditional covariance except at the endpoint, which
/// Gauss–Kronrod never samples. A nearly singular R (smallest Cholesky pivot or 1 − ρ² of a pair
/// λ < 10⁻²) leaves a step of width ~√λ at s = 0 that one Kronrod rule on [0, 1] steps over:
/// there the interval is cut at s = √λ·4ᵏ (GSL qagp).
///
/// **Degenerate fields.** A zero-variance field gives 0 (θ(0) = 0 and relu(0) = 0, as in
/// `Activation`). Fields with correlation ≥ 1 − `coincidence` are merged (θ(z)² = θ(z)), so
/// u₁ ≡ u₂ (the diagonal of the ODE's Ξ) is an exact three-field problem; correlation
/// ≤ −(1 − `coincidence`) empties the orthant (result 0). Four distinct fields of rank 2 (all in
/// one plane) are done in polar coordinates: A is a sector [α, β] and
/// E[z_a z_b 1_A] = (1/π) ∫_α^β cos(φ − φ_a) cos(φ − φ_b) dφ. Near rank 3 (no pair near ±1) the
/// conditional correlations ρ_kj all tend to ±1, where asin amplifies round-off; the expectation
/// itself is smooth there, and is extrapolated from R + εI (`collectiveSingularity`). Should a
/// conditional variance of the remaining pair still vanish (zₚ in the span of z_k, z_j), its
/// correlation is taken as 0: the limit along R + εI (the symmetric mollification of θ).
///
/// Accuracy (tests; 40-digit reference arithmetic during development): ~10⁻¹⁴ for generic
/// covariances, ≤ 10⁻¹² at and near rank 3 and in the coincident-field limits, a few 10⁻¹¹ close
/// to (not at) rank 2; across the merge at 1 − ρ = 10⁻¹² the value jumps by O(√(1 − ρ)) ≲ 10⁻⁷,
/// the genuine variation of the expectation there.
public enum ReLUExpectations {
    /// Correlations within this of ±1 are treated as identical (anti-identical) fields. The value
    /// moves by O(√(1 − ρ)) across the merge, i.e. ≲ 10⁻⁷ here.
    public static let coincidence = 1e-12
    /// A conditional variance (correlation units) at or below this is treated as exactly zero.
    static let zeroConditionalVariance = 1e-14
    /// Four distinct fields whose third pivoted-Cholesky pivot is at or below this are taken as
    /// rank 2 (the polar route).
    static let rankTwoPivot = 1e-12

    static let epsabs = 1e-14
    static let epsrel = 1e-12
    static let limit = 200

    // MARK: Public entry points

    /// P(u₁ > 0, …, u_n > 0) for zero-mean Gaussian fields with covariance `C` (n ≤ 4). A
    /// zero-variance field gives 0 (θ(0) = 0); NaN or a negative variance gives NaN.
    public static func orthantProbability(_ C: FieldCovariance) -> Double {
        switch reduce(C) {
        case .undefined: return .nan
        case .empty: return 0
        case .fields(let R, _, _): return orthant(R)
        }
    }

    /// E[θ(u₁) θ(u₂) relu(u₃) relu(u₄)] for zero-mean Gaussian fields with covariance `C`
    /// (count 4), exact up to the ~10⁻¹³ tolerance of the orthant integral.
    public static func slopeSlopeReluRelu(_ C: FieldCovariance) -> Double {
        precondition(C.count == 4, "slopeSlopeReluRelu needs four fields")
        switch reduce(C) {
        case .undefined: return .nan
        case .empty: return 0
        case .fields(let R, let group, let scale):
            return scale[2] * scale[3] * truncatedSecondMoment(R, group[2], group[3])
        }
    }

    // MARK: Correlation matrices

    /// A symmetric correlation matrix of n ≤ 4 fields, stored without heap allocation (plain
    /// stored entries: fast in debug builds too).
    struct Correlation {
        var n: Int
        var r01 = 0.0, r02 = 0.0, r03 = 0.0, r12 = 0.0, r13 = 0.0, r23 = 0.0

        init(_ n: Int) { self.n = n }

        subscript(i: Int, j: Int) -> Double {
            get {
                if i == j { return 1 }
                switch i < j ? i * 4 + j : j * 4 + i {
                case 1: return r01
                case 2: return r02
                case 3: return r03
                case 6: return r12
                case 7: return r13
                default: return r23
                }
            }
            set {
                precondition(i != j)
                switch i < j ? i * 4 + j : j * 4 + i {
                case 1: r01 = newValue
                case 2: r02 = newValue
                case 3: r03 = newValue
                case 6: r12 = newValue
                case 7: r13 = newValue
                default: r23 = newValue
                }
            }
        }

        /// From a list of upper-triangle entries including the unit diagonal (tests).
        init(_ n: Int, upper: [Double]) {
            self.init(n)
            var idx = 0
            for i in 0..<n { for j in i..<n { if i != j { self[i, j] = upper[idx] }; idx += 1 } }
        }

        /// (1 − ε)R + εI.
        func shrunk(_ epsilon: Double) -> Correlation {
            var s = self
            let f = 1 - epsilon
            s.r01 *= f; s.r02 *= f; s.r03 *= f; s.r12 *= f; s.r13 *= f; s.r23 *= f
            return s
        }
    }

    enum Reduction {
        /// Non-finite input or a negative variance.
        case undefined
        /// The orthant is empty (a zero-variance field, or two anti-identical fields).
        case empty
        /// Distinct fields: their correlations, the group of each input field, its √Cᵢᵢ.
        case fields(Correlation, group: SIMD4<Int>, scale: SIMD4<Double>)
    }

    /// Normalises to correlations and merges coincident fields.
    static func reduce(_ C: FieldCovariance) -> Reduction {
        let n = C.count
        for i in 0..<n { for j in i..<n where !C[i, j].isFinite { return .undefined } }
        var scale = SIMD4<Double>(repeating: 0)
        for i in 0..<n {
            let c = C[i, i]
            if c < 0 { return .undefined }
            if c == 0 { return .empty }
            scale[i] = c.squareRoot()
        }
        func rho(_ i: Int, _ j: Int) -> Double { max(-1, min(1, C[i, j] / (scale[i] * scale[j]))) }
        for i in 0..<n { for j in (i + 1)..<n where rho(i, j) <= -(1 - coincidence) { return .empty } }
        var group = SIMD4<Int>(repeating: 0)
        var representative = SIMD4<Int>(repeating: 0)
        var m = 0
        for i in 0..<n {
            var g = -1
            for q in 0..<m where rho(i, representative[q]) >= 1 - coincidence { g = q; break }
            if g < 0 {
                representative[m] = i
                g = m
                m += 1
            }
            group[i] = g
        }
        var R = Correlation(m)
        for p in 0..<m { for q in (p + 1)..<m { R[p, q] = rho(representative[p], representative[q]) } }
        return .fields(R, group: group, scale: scale)
    }

    // MARK: Orthant probabilities

    static let twoPi = 2 * Double.pi

    /// P(z > 0) for distinct fields (|ρ| < 1 − coincidence).
    static func orthant(_ R: Correlation) -> Double {
        switch R.n {
        case 1: return 0.5
        case 2: return 0.25 + asin(R[0, 1]) / twoPi
        case 3: return 0.125 + (asin(R[0, 1]) + asin(R[0, 2]) + asin(R[1, 2])) / (2 * twoPi)
        default: return plackettOrthant4(R)
        }
    }

    /// The six ways of splitting four fields into a conditioning pair (i, j) and its complement.
    static let pairs: [(Int, Int, Int, Int)] = [(0, 1, 2, 3), (0, 2, 1, 3), (0, 3, 1, 2), (1, 2, 0, 3), (1, 3, 0, 2), (2, 3, 0, 1)]

    /// The correlations one Plackett term reads: the conditioning pair (i, j) and the complement
    /// (k, l).
    struct PairTerm {
        var ij, ki, kj, li, lj, kl: Double

        init(_ R: Correlation, _ i: Int, _ j: Int, _ k: Int, _ l: Int) {
            ij = R[i, j]; ki = R[k, i]; kj = R[k, j]; li = R[l, i]; lj = R[l, j]; kl = R[k, l]
        }

        /// 1 − (τρ)² for τ = 1 − s², as (1 − τρ)(1 + τρ) with 1 − τρ = (1 − ρ) + ρs²: accurate
        /// for ρ → ±1 and τ → 1.
        @inline(__always)
        static func oneMinusSquare(_ rho: Double, _ s2: Double) -> Double {
            ((1 - rho) + rho * s2) * ((1 + rho) - rho * s2)
        }

        /// Correlation of (z_k, z_l) given zᵢ = zⱼ = 0 under R(τ), τ = 1 − s² (off-diagonal
        /// entries scaled by τ); 0 when either conditional variance vanishes (the R + εI limit).
        @inline(__always)
        func conditionalCorrelation(s2: Double) -> Double {
            let tau = 1 - s2
            let r = tau * ij
            let d = Self.oneMinusSquare(ij, s2)
            let a = tau * ki, b = tau * kj, c = tau * li, e = tau * lj
            // Sequential conditioning: first on zᵢ, then on zⱼ's residual (variance d).
            let kRes = b - r * a, lRes = e - r * c
            let vk = Self.oneMinusSquare(ki, s2) - kRes * kRes / d
            let vl = Self.oneMinusSquare(li, s2) - lRes * lRes / d
            if vk <= zeroConditionalVariance || vl <= zeroConditionalVariance { return 0 }
            let cov = tau * kl - a * c - kRes * lRes / d
            return max(-1, min(1, cov / (vk * vl).squareRoot()))
        }
    }

    /// Correlation of (z_k, z_l) given zᵢ = zⱼ = 0 (at τ = 1).
    static func conditionalCorrelation(_ R: Correlation, _ i: Int, _ j: Int, _ k: Int, _ l: Int) -> Double {
        PairTerm(R, i, j, k, l).conditionalCorrelation(s2: 0)
    }

    /// The four-field orthant probability by Plackett's reduction (see the type's documentation):
    ///
    ///     P = 1/16 + ∫₀¹ 2s Σ_{i<j} ρᵢⱼ φ₂(0, 0; τρᵢⱼ) P(z_k, z_l > 0 | zᵢ = zⱼ = 0; R(τ)) ds,  τ = 1 − s².
    ///
    /// A nearly singular R (a correlation near ±1, a small conditional variance λ) puts a step of
    /// width ~√λ near s = 0 that a Kronrod rule on [0, 1] would step over: the interval is then
    /// cut at s = √λ·4ᵏ, k = 0, 1, … (λ the smallest Cholesky pivot of R).
    static func plackettOrthant4(_ R: Correlation) -> Double {
        precondition(R.n == 4)
        let terms = pairs.map { PairTerm(R, $0.0, $0.1, $0.2, $0.3) }
        let f: (Double) -> Double = { s in
            let s2 = s * s
            var sum = 0.0
            for t in terms where t.ij != 0 {
                let q = 0.25 + asin(t.conditionalCorrelation(s2: s2)) / twoPi
                sum += t.ij / PairTerm.oneMinusSquare(t.ij, s2).squareRoot() * q
            }
            return 2 * s * sum / twoPi
        }
        let lambda = min(smallestPivot(R), closestPair(R))
        // The integral is accurate to ~10⁻¹⁴; clamp the round-off of an empty orthant (P = 0).
        if lambda >= 1e-2 { return max(0, min(1, 0.0625 + adaptiveIntegral(0, 1, f))) }
        var cuts = [0.0]
        var s = max(lambda, 1e-32).squareRoot()
        while s < 1 {
            cuts.append(s)
            s *= 4
        }
        cuts.append(1)
        return max(0, min(1, 0.0625 + adaptiveIntegral(breakpoints: cuts, f)))
    }

    /// The smallest pivot of the Cholesky factorisation of R, i.e. the smallest of the
    /// conditional variances Var(zⱼ | z₀ … zⱼ₋₁) (≥ the smallest eigenvalue; small when R is
    /// nearly singular or a pair nearly coincident).
    static func smallestPivot(_ R: Correlation) -> Double {
        let n = R.n
        var L = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        return withUnsafeMutableBytes(of: &L) { raw in
            let L = raw.bindMemory(to: Double.self)
            var smallest = 1.0
            for j in 0..<n {
                var d = 1.0
                for k in 0..<j { d -= L[j * 4 + k] * L[j * 4 + k] }
                smallest = min(smallest, max(d, 0))
                if d <= 0 { continue }
                let root = d.squareRoot()
                L[j * 4 + j] = root
                for i in (j + 1)..<n {
                    var t = R[i, j]
                    for k in 0..<j { t -= L[i * 4 + k] * L[j * 4 + k] }
                    L[i * 4 + j] = t / root
                }
            }
            return smallest
        }
    }

    /// min over pairs of 1 − ρᵢⱼ².
    static func closestPair(_ R: Correlation) -> Double {
        var smallest = 1.0
        for i in 0..<R.n { for j in (i + 1)..<R.n { smallest = min(smallest, (1 - abs(R[i, j])) * (1 + abs(R[i, j]))) } }
        return smallest
    }

    // MARK: Truncated second moment

    /// E[z_a z_b 1{z > 0}] for m ≤ 4 distinct unit-variance fields with correlations R.
    static func truncatedSecondMoment(_ R: Correlation, _ a: Int, _ b: Int) -> Double {
        let m = R.n
        if m == 1 { return 0.5 }
        if m == 4, let polar = rankTwoSecondMoment(R, a, b) { return polar }
        if m == 4 && smallestPivot(R) < collectiveSingularity && closestPair(R) > 1e-4 {
            // Nearly singular without a nearly coincident pair: see `collectiveSingularity`.
            let e = regularisation
            let R1 = R.shrunk(e), R2 = R.shrunk(2 * e)
            return 2 * (R1[a, b] * orthant(R1) + steinTerms(R1, a, b)) - (R2[a, b] * orthant(R2) + steinTerms(R2, a, b))
        }
        return R[a, b] * orthant(R) + steinTerms(R, a, b)
    }

    /// Below this smallest Cholesky pivot (with no pair within 10⁻⁴ of ±1), the expectation is
    /// evaluated on R_ε = (1 − ε)R + εI at ε = `regularisation` and 2ε and extrapolated linearly
    /// to ε = 0. Near a rank deficiency every conditional correlation ρ_kj of the four-field terms
    /// tends to ±1, where asin has an infinite slope: round-off δ in 1 − |ρ| becomes δ/√λ in the
    /// terms, although their sum (the expectation) is smooth in ε — the √λ parts cancel. (The
    /// orthant probability alone is not linear there, ~ε^{3/2}, so the whole expectation is
    /// extrapolated, not the Stein terms alone.) Measured against 40-digit arithmetic at rank 3:
    /// errors up to 1.5·10⁻⁹ directly, ~10⁻¹³ extrapolated.
    static let collectiveSingularity = 1e-6
    static let regularisation = 1e-7

    /// Σ_{k≠b} R_ak Σ_{j≠k} S⁽ᵏ⁾_bj / (2π√(1 − R_kj²)) · Q_kj: E[z_a z_b 1_A] − R_ab P(A).
    static func steinTerms(_ R: Correlation, _ a: Int, _ b: Int) -> Double {
        let m = R.n
        var total = 0.0
        for k in 0..<m where k != b {
            let rak = R[a, k]
            if rak == 0 { continue }
            var inner = 0.0
            for j in 0..<m where j != k {
                let rjk = R[j, k]
                // S⁽ᵏ⁾_bj = R_bj − R_bk R_jk (the variance (1 − R_bk)(1 + R_bk) when j = b).
                let sbj = j == b ? (1 - rjk) * (1 + rjk) : R[b, j] - R[b, k] * rjk
                if sbj == 0 { continue }
                let q: Double
                switch m {
                case 2: q = 1
                case 3: q = 0.5
                default:
                    var rest = (0, 0), c = 0
                    for l in 0..<4 where l != k && l != j {
                        if c == 0 { rest.0 = l } else { rest.1 = l }
                        c += 1
                    }
                    q = 0.25 + asin(conditionalCorrelation(R, k, j, rest.0, rest.1)) / twoPi
                }
                inner += sbj / ((1 - rjk) * (1 + rjk)).squareRoot() * q
            }
            total += rak * inner / twoPi
        }
        return total
    }

    /// Four distinct fields spanning a plane: z = L w with w ~ N(0, I₂), each row of L a unit
    /// vector at angle φᵢ; A is the sector where cos(φ − φᵢ) > 0 for all i. Nil if the rank is 3
    /// or more.
    static func rankTwoSecondMoment(_ R: Correlation, _ a: Int, _ b: Int) -> Double? {
        // Pivoted Cholesky: first pivot field 0, second the largest residual.
        var residual = SIMD4<Double>(repeating: 0)
        var second = 0
        for i in 0..<4 {
            residual[i] = (1 - R[i, 0]) * (1 + R[i, 0])
            if residual[i] > residual[second] { second = i }
        }
        let pivot = residual[second]
        guard pivot > 0 else { return nil }
        var angle = SIMD4<Double>(repeating: 0)
        var third = 0.0
        for i in 0..<4 {
            let y = (R[i, second] - R[i, 0] * R[second, 0]) / pivot.squareRoot()
            third = max(third, residual[i] - y * y)
            angle[i] = atan2(y, R[i, 0])
        }
        guard third <= rankTwoPivot else { return nil }
        // Angles relative to field 0 (which is at angle 0); the sector lies in (−π/2, π/2).
        var lo = -Double.pi / 2, hi = Double.pi / 2
        for i in 1..<4 {
            lo = max(lo, angle[i] - Double.pi / 2)
            hi = min(hi, angle[i] + Double.pi / 2)
        }
        if hi <= lo { return 0 }
        // ∫ cos(φ − φa) cos(φ − φb) dφ = ½[(β − α) cos(φa − φb) + ½(sin(2β − φa − φb) − sin(2α − φa − φb))].
        let sumAngle = angle[a] + angle[b]
        let integral = 0.5 * ((hi - lo) * cos(angle[a] - angle[b]) + 0.5 * (sin(2 * hi - sumAngle) - sin(2 * lo - sumAngle)))
        return integral / Double.pi
    }

    // MARK: GSL adaptive quadrature

    /// ∫_a^b f by GSL qag (21-point Gauss–Kronrod, adaptive bisection). A GSL status other than
    /// success (round-off limiting the tolerance) still leaves the best estimate, which is returned.
    static func adaptiveIntegral(_ a: Double, _ b: Double, _ f: @escaping (Double) -> Double) -> Double {
        _ = GSL.ready
        guard let workspace = gsl_integration_workspace_alloc(limit) else { return .nan }
        defer { gsl_integration_workspace_free(workspace) }
        var result = 0.0, error = 0.0
        GSLIntegrand.with(f) { function in
            _ = gsl_integration_qag(&function, a, b, epsabs, epsrel, limit, Int32(GSL_INTEG_GAUSS21), workspace, &result, &error)
        }
        return result
    }

    /// ∫ f over [first, last] of `breakpoints` by GSL qagp (21-point Gauss–Kronrod on each piece,
    /// adaptive, with extrapolation), the pieces cut at the given points.
    static func adaptiveIntegral(breakpoints: [Double], _ f: @escaping (Double) -> Double) -> Double {
        _ = GSL.ready
        guard let workspace = gsl_integration_workspace_alloc(limit) else { return .nan }
        defer { gsl_integration_workspace_free(workspace) }
        var result = 0.0, error = 0.0
        var points = breakpoints
        GSLIntegrand.with(f) { function in
            _ = points.withUnsafeMutableBufferPointer { p in
                gsl_integration_qagp(&function, p.baseAddress, p.count, epsabs, epsrel, limit, workspace, &result, &error)
            }
        }
        return result
    }
}
