import Foundation
import PlateauCore

/// Orthant probabilities and truncated Gaussian moments over a small zero-mean Gaussian vector
/// (≤ 6 variables), by Stein's lemma: with 1_A = Π_{k∈A} θ(u_k),
///
///     E[u_i 1_A]     = Σ_{k∈A} C_ik φ_k(0) P(A∖k | u_k = 0)
///     E[u_i u_j 1_A] = C_ij P(A) + Σ_{k∈A, k≠j} C_ik φ_k(0) E[u_j 1_{A∖k} | u_k = 0]
///
/// φ_k(0) = (2π C_kk)^{−1/2}; conditioning on u_k = 0 keeps the vector zero-mean with covariance
/// C − C_·k C_k· / C_kk. The orthant probabilities (|A| ≤ 4) are `ReLUExpectations.orthantProbability`
/// (closed forms up to three fields, Plackett's one-dimensional integral for four). θ(0) = 0: a
/// zero-variance variable in A makes the indicator vanish.
struct OrthantMoments {
    var n: Int
    var C: [Double]   // n×n row-major

    init(_ n: Int, _ C: [Double]) {
        self.n = n
        self.C = C
    }

    @inline(__always) func c(_ i: Int, _ j: Int) -> Double { C[i * n + j] }

    /// The law given u_k = 0 (same indexing; u_k becomes identically 0).
    func conditioned(on k: Int) -> OrthantMoments {
        let ckk = c(k, k)
        var out = C
        for i in 0..<n { for j in 0..<n { out[i * n + j] -= c(i, k) * c(k, j) / ckk } }
        // A variable identical to u_k (up to rounding) is exactly 0 given u_k = 0: zero its row and
        // column instead of keeping a rounding-size variance (whose φ(0) would amplify noise).
        for i in 0..<n where out[i * n + i] <= 1e-12 * max(c(i, i), 0) {
            for j in 0..<n { out[i * n + j] = 0; out[j * n + i] = 0 }
        }
        return OrthantMoments(n, out)
    }

    /// P(u_k > 0 for all k in A).
    func probability(_ A: [Int]) -> Double {
        if A.isEmpty { return 1 }
        // Merge exact duplicates of an index (θ(u)² = θ(u)); coincident distinct fields are merged
        // inside `orthantProbability`.
        var unique: [Int] = []
        for k in A where !unique.contains(k) { unique.append(k) }
        precondition(unique.count <= 4, "orthant probability of more than four fields")
        for k in unique where !(c(k, k) > 0) { return c(k, k).isNaN ? .nan : 0 }
        var upper: [Double] = []
        for a in 0..<unique.count { for b in a..<unique.count { upper.append(c(unique[a], unique[b])) } }
        if unique.count == 4, let p = Self.smoothOrthant4(unique.map { i in unique.map { j in c(i, j) } }) { return p }
        return ReLUExpectations.orthantProbability(FieldCovariance(unique.count, upper: upper))
    }

    static let legendre = GSL.gaussLegendreUnit(96)
    static let pairs = [(0, 1, 2, 3), (0, 2, 1, 3), (0, 3, 1, 2), (1, 2, 0, 3), (1, 3, 0, 2), (2, 3, 0, 1)]
    static let others = [[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]]

    /// The (i, j) cofactor of a row-major 4×4 matrix.
    @inline(__always) static func cofactor(_ m: [Double], _ i: Int, _ j: Int) -> Double {
        let r = others[i], c = others[j]
        @inline(__always) func e(_ a: Int, _ b: Int) -> Double { m[r[a] * 4 + c[b]] }
        let d = e(0, 0) * (e(1, 1) * e(2, 2) - e(1, 2) * e(2, 1)) - e(0, 1) * (e(1, 0) * e(2, 2) - e(1, 2) * e(2, 0))
            + e(0, 2) * (e(1, 0) * e(2, 1) - e(1, 1) * e(2, 0))
        return (i + j) % 2 == 0 ? d : -d
    }

    /// P(u > 0) for four fields by Plackett's reduction along R(τ) = I + τ(R − I) on a fixed
    /// 96-point Gauss–Legendre rule in s = √(1 − τ) — a smooth function of the covariance (an ODE right-hand side
    /// needs that; adaptive subdivision is not). dP/dτ = Σ_{i<j} ρ_ij φ₂(0, 0; τρ_ij) P(u_k, u_l > 0 |
    /// u_i = u_j = 0), the last a bivariate orthant of the partial correlation −A_kl/√(A_kk A_ll), A
    /// the cofactor matrix of R(τ) (defined also where R is singular). Returns nil when two fields
    /// are (anti-)coincident (|ρ| > 1 − 10⁻⁸), where the merged lower-dimensional form is exact.
    static func smoothOrthant4(_ C: [[Double]]) -> Double? {
        var R = [[Double]](repeating: [Double](repeating: 0, count: 4), count: 4)
        for i in 0..<4 { for j in 0..<4 { R[i][j] = C[i][j] / (C[i][i] * C[j][j]).squareRoot() } }
        for i in 0..<4 { for j in (i + 1)..<4 where !(abs(R[i][j]) <= 1 - 1e-8) { return nil } }
        var integral = 0.0
        let (x, w) = legendre
        var m = [Double](repeating: 0, count: 16)
        for q in 0..<x.count {
            // τ = 1 − s²: nodes cluster at τ → 1, where a nearly singular R sharpens the integrand.
            let tau = 1 - x[q] * x[q], jacobian = 2 * x[q]
            for i in 0..<4 { for j in 0..<4 { m[i * 4 + j] = i == j ? 1 : tau * R[i][j] } }
            var derivative = 0.0
            for (i, j, k, l) in Self.pairs where R[i][j] != 0 {
                let r = tau * R[i][j]
                let density = 1 / (2 * Double.pi * (1 - r * r).squareRoot())
                let akk = Self.cofactor(m, k, k), all = Self.cofactor(m, l, l), akl = Self.cofactor(m, k, l)
                let partial = akk > 0 && all > 0 ? max(-1, min(1, -akl / (akk * all).squareRoot())) : 0
                derivative += R[i][j] * density * (0.25 + asin(partial) / (2 * Double.pi))
            }
            integral += w[q] * jacobian * derivative
        }
        return 1.0 / 16 + integral
    }

    /// The indicator set with coincident fields merged (θ(u)θ(u') = θ(u) when u' ≡ u): indices that
    /// are equal, or whose fields have correlation ≥ 1 − 10⁻¹², keep one representative. Without
    /// this the Stein sum conditions on u_k = 0, zeroes the identical u', and drops the δ term of
    /// the merged indicator altogether.
    func distinct(_ A: [Int]) -> [Int] {
        var unique: [Int] = []
        for k in A {
            let same = unique.contains { q in
                q == k || (c(q, q) > 0 && c(k, k) > 0 && c(q, k) / (c(q, q) * c(k, k)).squareRoot() >= 1 - 1e-12)
            }
            if !same { unique.append(k) }
        }
        return unique
    }

    /// E[u_i 1_A].
    func firstMoment(_ i: Int, _ A: [Int]) -> Double {
        let unique = distinct(A)
        var total = 0.0
        for k in unique where c(i, k) != 0 {
            let ckk = c(k, k)
            guard ckk > 0 else { if ckk.isNaN { return .nan }; continue }
            let rest = unique.filter { $0 != k }
            total += c(i, k) / (2 * Double.pi * ckk).squareRoot() * conditioned(on: k).probability(rest)
        }
        return total
    }

    /// E[u_i u_j 1_A].
    func secondMoment(_ i: Int, _ j: Int, _ A: [Int]) -> Double {
        let unique = distinct(A)
        var total = c(i, j) * probability(unique)
        for k in unique where k != j && c(i, k) != 0 {
            let ckk = c(k, k)
            guard ckk > 0 else { if ckk.isNaN { return .nan }; continue }
            let rest = unique.filter { $0 != k }
            total += c(i, k) / (2 * Double.pi * ckk).squareRoot() * conditioned(on: k).firstMoment(j, rest)
        }
        return total
    }

    /// E[Π(poly) 1_A] for a monomial of degree ≤ 2.
    func moment(_ poly: [Int], _ A: [Int]) -> Double {
        switch poly.count {
        case 0: return probability(A)
        case 1: return firstMoment(poly[0], A)
        default: return secondMoment(poly[0], poly[1], A)
        }
    }
}

extension OrthantMoments {
    /// A factor f(u) of an integrand written as Σ coefficient · (monomial) · (indicators), exactly:
    /// linear u = u; relu(u) = u θ(u); erf(u/√2) = E_w[2θ(u + w) − 1] with an independent w ~ N(0, 1),
    /// i.e. the indicator of an augmented variable v = u + w of variance C_uu + 1.
    struct Term {
        var coefficient: Double
        var monomial: [Int]
        var indicators: [Int]
    }

    static func expand(_ a: Activation, field u: Int, augmented v: Int) -> [Term] {
        switch a {
        case .linear: return [Term(coefficient: 1, monomial: [u], indicators: [])]
        case .relu: return [Term(coefficient: 1, monomial: [u], indicators: [u])]
        case .erf: return [Term(coefficient: 2, monomial: [], indicators: [v]), Term(coefficient: -1, monomial: [], indicators: [])]
        default: preconditionFailure("orthant moments expand erf, linear and ReLU only, not \(a.name)")
        }
    }

    /// E[θ(u₁) θ(u₂) f(u₃) g(u₄)] for f, g ∈ {erf, linear, relu}, exactly.
    static func slopeSlope(_ f: Activation, _ g: Activation, _ C: FieldCovariance) -> Double {
        // Augmented vector (u₁, u₂, u₃, u₄, v₃ = u₃ + w₃, v₄ = u₄ + w₄).
        let n = 6
        var M = [Double](repeating: 0, count: n * n)
        let source = [0, 1, 2, 3, 2, 3]
        for i in 0..<n { for j in 0..<n { M[i * n + j] = C[source[i], source[j]] } }
        M[4 * n + 4] += 1
        M[5 * n + 5] += 1
        let law = OrthantMoments(n, M)
        var total = 0.0
        for a in expand(f, field: 2, augmented: 4) {
            for b in expand(g, field: 3, augmented: 5) {
                total += a.coefficient * b.coefficient * law.moment(a.monomial + b.monomial, [0, 1] + a.indicators + b.indicators)
            }
        }
        return total
    }
}
