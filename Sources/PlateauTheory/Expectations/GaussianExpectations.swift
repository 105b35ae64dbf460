import Foundation
import PlateauCore

/// The covariance of up to four jointly Gaussian, zero-mean fields u₁…u₄, stored without heap
/// allocation (the ODE right-hand side builds thousands of these per evaluation).
public struct FieldCovariance: Sendable {
    public var count: Int
    @usableFromInline var c: (Double, Double, Double, Double, Double, Double, Double, Double, Double, Double)

    /// `entries` row-major upper triangle: for n = 3, [c11, c12, c13, c22, c23, c33].
    public init(_ n: Int, upper entries: [Double]) {
        precondition((1...4).contains(n) && entries.count == n * (n + 1) / 2)
        count = n
        c = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var idx = 0
        for i in 0..<n { for j in i..<n { self[i, j] = entries[idx]; idx += 1 } }
    }

    /// The sub-covariance of `Ω` on the listed field indices (0-based).
    @inlinable public init(_ omega: Matrix, _ fields: Int...) {
        count = fields.count
        c = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        for i in 0..<fields.count { for j in i..<fields.count { self[i, j] = omega[fields[i], fields[j]] } }
    }

    /// Allocation-free sub-covariances of a row-major n×n `Ω` (the ODE's hot path).
    @inlinable public init(_ omega: UnsafeBufferPointer<Double>, _ n: Int, _ i: Int, _ j: Int) {
        count = 2
        c = (omega[i * n + i], omega[i * n + j], 0, 0, omega[j * n + j], 0, 0, 0, 0, 0)
    }

    @inlinable public init(_ omega: UnsafeBufferPointer<Double>, _ n: Int, _ i: Int, _ j: Int, _ k: Int) {
        count = 3
        c = (omega[i * n + i], omega[i * n + j], omega[i * n + k], 0,
             omega[j * n + j], omega[j * n + k], 0,
             omega[k * n + k], 0, 0)
    }

    @inlinable public init(_ omega: UnsafeBufferPointer<Double>, _ n: Int, _ i: Int, _ j: Int, _ k: Int, _ l: Int) {
        count = 4
        c = (omega[i * n + i], omega[i * n + j], omega[i * n + k], omega[i * n + l],
             omega[j * n + j], omega[j * n + k], omega[j * n + l],
             omega[k * n + k], omega[k * n + l], omega[l * n + l])
    }

    /// Whether an entry is NaN (non-finite input must never give a plausible number).
    @inlinable public var hasNaN: Bool {
        for i in 0..<count { for j in i..<count where self[i, j].isNaN { return true } }
        return false
    }

    @inlinable static func slot(_ i: Int, _ j: Int) -> Int {
        let (a, b) = i <= j ? (i, j) : (j, i)
        // Packed upper triangle of a 4×4 matrix.
        return a * 4 - a * (a - 1) / 2 + (b - a)
    }

    @inlinable public subscript(i: Int, j: Int) -> Double {
        get {
            withUnsafeBytes(of: c) { $0.load(fromByteOffset: Self.slot(i, j) * 8, as: Double.self) }
        }
        set {
            let s = Self.slot(i, j)
            withUnsafeMutableBytes(of: &c) { $0.storeBytes(of: newValue, toByteOffset: s * 8, as: Double.self) }
        }
    }
}

/// How an expectation was computed.
public enum ExpectationRoute: String, Sendable, Hashable, CaseIterable {
    /// An exact closed form (erf: EQUATIONS.md §1.4; ReLU: arc-cosine kernel and its derivatives).
    case closedForm = "closed form"
    /// Exact reduction by Stein's lemma / Wick when a linear function is involved.
    case stein = "Stein/Wick reduction"
    /// A Gauss–Hermite product rule over the distinct correlated fields (Cholesky-factored).
    case quadrature = "Gauss-Hermite quadrature"
}

/// Gaussian expectations of the online-SGD order-parameter equations, with the route chosen per
/// combination of activations (closed form when one exists, Stein reduction for linear factors,
/// otherwise a deterministic Gauss–Hermite product rule so the ODE right-hand side stays smooth).
///
/// The four shapes (u zero-mean Gaussian with covariance C):
/// - `pair`:       E[f(u₁) g(u₂)]
/// - `slopePair`:  E[f'(u₁) g'(u₂)]
/// - `stein`:      E[s'(u₁) u₂ f(u₃)]
/// - `quartic`:    E[s'(u₁) s'(u₂) f(u₃) g(u₄)]
public struct GaussianExpectations: Sendable {
    /// Gauss–Hermite nodes per dimension of the quadrature route, indexed by the number of
    /// non-degenerate fields minus one (1, 2, 3, 4 fields). The default (64, 40, 20, 12) keeps a
    /// four-field expectation at 12⁴ ≈ 2·10⁴ points; smooth integrands (tanh-like) converge
    /// exponentially in the node count, integrands with kinks (ReLU) only algebraically.
    public let nodesByDimension: [Int]
    let rules: [(nodes: [Double], weights: [Double])]

    public init(nodesByDimension: [Int] = [64, 40, 20, 12]) {
        precondition(nodesByDimension.count == 4 && nodesByDimension.allSatisfy { $0 >= 1 })
        self.nodesByDimension = nodesByDimension
        rules = nodesByDimension.map { GSL.gaussHermite($0) }
    }

    /// The same number of nodes in every dimension.
    public init(nodesPerDimension: Int) {
        self.init(nodesByDimension: Array(repeating: nodesPerDimension, count: 4))
    }

    // MARK: Routes

    // pair, slopePair and stein are exact for every combination of erf, linear and ReLU: closed
    // forms, Stein's lemma for linear factors, and two reductions for the mixed erf/ReLU terms:
    // (i) the Gaussian tilt of erf' = √(2/π)e^{−u²/2}: E[σ'(u₁)h(rest)] = √(2/π)(1+C₁₁)^{−1/2}
    //     E'[h(rest)] with the rest's covariance C' = C_rr − C_r1 C_1r/(1 + C₁₁);
    // (ii) Stein's lemma on a ReLU written as u·θ(u), where the δ term vanishes because erf is odd
    //     and the conditional law given u = 0 is symmetric.

    public static func pairRoute(_ f: Activation, _ g: Activation) -> ExpectationRoute {
        f == .linear || g == .linear || f != g ? .stein : .closedForm
    }

    public static func slopePairRoute(_ f: Activation, _ g: Activation) -> ExpectationRoute {
        f == .linear || g == .linear ? .stein : .closedForm
    }

    public static func steinRoute(_ s: Activation, _ f: Activation) -> ExpectationRoute {
        s == .linear || f == .linear ? .stein : .closedForm
    }

    public static func quarticRoute(_ s: Activation, _ f: Activation, _ g: Activation) -> ExpectationRoute {
        if s == .linear { return .stein }
        if s == .erf { return .closedForm }
        if s == .relu { return .closedForm }
        return .quadrature
    }

    // MARK: One-dimensional moments used by the Stein reductions

    /// E[f'(u)], u ~ N(0, c). ReLU uses θ(0) = 0, as `Activation.derivative` and the simulator do:
    /// a field of zero variance has slope 0.
    @inlinable static func meanSlope(_ f: Activation, _ c: Double) -> Double {
        switch f {
        case .erf: return 0.79788456080286535588 / (1 + c).squareRoot()
        case .linear: return 1
        case .relu: return c > 0 ? 0.5 : (c.isNaN ? .nan : 0)
        default: return gaussianMean(c) { f.derivative($0) }
        }
    }

    /// E[h(u)], u ~ N(0, c), by a 96-point Gauss–Hermite rule (for the activations without closed forms).
    @usableFromInline static func gaussianMean(_ c: Double, _ h: (Double) -> Double) -> Double {
        if c.isNaN { return .nan }
        let sd = max(0, c).squareRoot()
        var total = 0.0
        for (x, w) in zip(hermite96.nodes, hermite96.weights) { total += w * h(sd * x) }
        return total
    }

    @usableFromInline static let hermite96 = GSL.gaussHermite(96)

    /// A correlation clipped into [−1, 1] against rounding; NaN stays NaN.
    @inlinable static func clampCorrelation(_ x: Double) -> Double {
        x.isNaN ? x : max(-1, min(1, x))
    }

    /// P(u₁ > 0, u₂ > 0) for zero-mean fields (Sheppard), with θ(0) = 0 for a zero-variance field.
    @inlinable static func orthant(_ c11: Double, _ c12: Double, _ c22: Double) -> Double {
        let n = (c11 * c22).squareRoot()
        if n.isNaN || c12.isNaN { return .nan }
        if n == 0 { return 0 }
        return 0.25 + asin(clampCorrelation(c12 / n)) / (2 * Double.pi)
    }

    /// E[f'''(u)], u ~ N(0, c) (ReLU: E[δ'(u)] = 0).
    @inlinable static func meanThirdDerivative(_ f: Activation, _ c: Double) -> Double {
        switch f {
        case .erf: return -0.79788456080286535588 / ((1 + c) * (1 + c).squareRoot())
        case .linear, .relu: return 0
        default:
            // Stein three times: E[f'''(u)] = E[f(u) He₃(u/√c)] / c^{3/2}.
            guard c > 0 else { return c.isNaN ? .nan : 0 }
            let sd = c.squareRoot()
            return gaussianMean(c) { u in let x = u / sd; return f.value(u) * (x * x * x - 3 * x) } / (c * sd)
        }
    }

    // MARK: Expectations

    /// E[f(u₁) g(u₂)].
    public func pair(_ f: Activation, _ g: Activation, _ C: FieldCovariance) -> Double {
        if C.hasNaN { return .nan }
        let c11 = C[0, 0], c12 = C[0, 1], c22 = C[1, 1]
        if g == .linear { return c12 * Self.meanSlope(f, c11) }
        if f == .linear { return c12 * Self.meanSlope(g, c22) }
        switch (f, g) {
        case (.erf, .erf):
            // (2/π) asin(C₁₂/√((1+C₁₁)(1+C₂₂))), written with atan2 so that it stays exact when the
            // arcsine's argument rounds to ±1 at large variances.
            return (2 / Double.pi) * atan2(c12, ((1 + c11) * (1 + c22) - c12 * c12).squareRoot())
        case (.relu, .relu):
            // Arc-cosine kernel of degree 1 (Cho & Saul 2009).
            let n = (c11 * c22).squareRoot()
            if n.isNaN || c12.isNaN { return .nan }
            if n == 0 { return 0 }
            let rho = Self.clampCorrelation(c12 / n)
            return n / (2 * Double.pi) * ((1 - rho * rho).squareRoot() + (Double.pi - acos(rho)) * rho)
        case (.erf, .relu):
            // E[σ(u₁) u₂ θ(u₂)] = C₁₂ E[σ'(u₁) θ(u₂)] (the δ(u₂) term vanishes: σ is odd).
            return c12 * Self.meanSlope(.erf, c11) * Self.halfIfPositive(c22)
        case (.relu, .erf):
            return c12 * Self.meanSlope(.erf, c22) * Self.halfIfPositive(c11)
        default:
            return quadrature(C) { u in f.value(u[0]) * g.value(u[1]) }
        }
    }

    /// P(u > 0) for a zero-mean field of variance c, with θ(0) = 0.
    @inlinable static func halfIfPositive(_ c: Double) -> Double { meanSlope(.relu, c) }

    /// E[f'(u₁) g'(u₂)].
    public func slopePair(_ f: Activation, _ g: Activation, _ C: FieldCovariance) -> Double {
        if C.hasNaN { return .nan }
        let c11 = C[0, 0], c12 = C[0, 1], c22 = C[1, 1]
        if f == .linear { return Self.meanSlope(g, c22) }
        if g == .linear { return Self.meanSlope(f, c11) }
        switch (f, g) {
        case (.erf, _):
            // Tilt by σ'(u₁): the second field's variance becomes C₂₂ − C₁₂²/(1 + C₁₁).
            return Self.meanSlope(.erf, c11) * Self.meanSlope(g, c22 - c12 * c12 / (1 + c11))
        case (_, .erf):
            return Self.meanSlope(.erf, c22) * Self.meanSlope(f, c11 - c12 * c12 / (1 + c22))
        case (.relu, .relu):
            return Self.orthant(c11, c12, c22)
        default:
            return quadrature(C) { u in f.derivative(u[0]) * g.derivative(u[1]) }
        }
    }

    /// E[s'(u₁) u₂ f(u₃)].
    public func stein(_ s: Activation, _ f: Activation, _ C: FieldCovariance) -> Double {
        if C.hasNaN { return .nan }
        let c11 = C[0, 0], c12 = C[0, 1], c13 = C[0, 2], c23 = C[1, 2], c33 = C[2, 2]
        if s == .linear {
            // E[u₂ f(u₃)] = C₂₃ E[f'(u₃)].
            return c23 * Self.meanSlope(f, c33)
        }
        if f == .linear {
            // E[s'(u₁) u₂ u₃] = C₂₃ E[s'(u₁)] + C₁₂ C₁₃ E[s'''(u₁)].
            return c23 * Self.meanSlope(s, c11) + c12 * c13 * Self.meanThirdDerivative(s, c11)
        }
        switch (s, f) {
        case (.erf, _):
            // Tilt by σ'(u₁), then Stein on u₂: √(2/π)(1+C₁₁)^{−1/2} C'₂₃ E'[f'(u₃)]. For f = erf this
            // is EQUATIONS.md §1.4's (2/π)[C₂₃(1+C₁₁) − C₁₂C₁₃]/[(1+C₁₁)√((1+C₁₁)(1+C₃₃) − C₁₃²)].
            let tilted23 = Self.erfTilted(c23, c12, c13, c11), tilted33 = Self.erfTilted(c33, c13, c13, c11)
            return Self.meanSlope(.erf, c11) * tilted23 * Self.meanSlope(f, tilted33)
        case (.relu, .relu):
            // Stein on u₂: C₁₂ E[δ(u₁) relu(u₃)] + C₂₃ E[θ(u₁) θ(u₃)].
            var result = 0.0
            if c11 > 0 {
                let conditional = max(0, c33 - c13 * c13 / c11)
                result += c12 / (2 * Double.pi * c11.squareRoot()) * conditional.squareRoot()
            }
            return result + c23 * Self.orthant(c11, c13, c33)
        case (.relu, .erf):
            // Stein on u₂: C₁₂ E[δ(u₁) σ(u₃)] (= 0: σ odd, symmetric given u₁ = 0) + C₂₃ E[θ(u₁) σ'(u₃)].
            return c23 * Self.meanSlope(.erf, c33) * Self.halfIfPositive(c11)
        default:
            return quadrature(C) { u in s.derivative(u[0]) * u[1] * f.value(u[2]) }
        }
    }

    /// E[s'(u₁) s'(u₂) f(u₃) g(u₄)].
    ///
    /// s = f = g = ReLU, E[θ(u₁) θ(u₂) relu(u₃) relu(u₄)], is exact (`ReLUExpectations`): Stein's
    /// identity twice reduces it to the four-field orthant probability plus closed-form bivariate
    /// orthant terms, and that orthant probability is a one-dimensional adaptive integral
    /// (Plackett's reduction, GSL qag to ~10⁻¹⁴); coincident fields (u₁ ≡ u₂) drop to the
    /// elementary three-field form.
    public func quartic(_ s: Activation, _ f: Activation, _ g: Activation, _ C: FieldCovariance) -> Double {
        if C.hasNaN { return .nan }
        if s == .linear {
            return pair(f, g, FieldCovariance(2, upper: [C[2, 2], C[2, 3], C[3, 3]]))
        }
        if s == .relu && f == .relu && g == .relu {
            return ReLUExpectations.slopeSlopeReluRelu(C)
        }
        if s == .relu {
            // θ(u₁)θ(u₂) times erf, linear or ReLU factors: orthant probabilities and truncated
            // moments (`OrthantMoments`), exact up to the orthant integral's ~10⁻¹³.
            return OrthantMoments.slopeSlope(f, g, C)
        }
        if s == .erf && !(f == .erf && g == .erf) {
            // Tilt by σ'(u₁)σ'(u₂) = (2/π)e^{−(u₁² + u₂²)/2}: (2/π) det(I + C_AA)^{−1/2} E'[f(u₃) g(u₄)]
            // with C' = C_BB − C_BA (I + C_AA)⁻¹ C_AB, A = {1, 2}, B = {3, 4}; then `pair` is exact.
            let a11 = 1 + C[0, 0], a12 = C[0, 1], a22 = 1 + C[1, 1]
            let det = a11 * a22 - a12 * a12
            func tilted(_ i: Int, _ j: Int) -> Double {
                let (x1, x2, y1, y2) = (C[0, i], C[1, i], C[0, j], C[1, j])
                return C[i, j] - (x1 * (a22 * y1 - a12 * y2) + x2 * (a11 * y2 - a12 * y1)) / det
            }
            let reduced = FieldCovariance(2, upper: [tilted(2, 2), tilted(2, 3), tilted(3, 3)])
            return 2 / Double.pi / det.squareRoot() * pair(f, g, reduced)
        }
        if s == .erf && f == .erf && g == .erf {
            let c11 = C[0, 0], c12 = C[0, 1], c13 = C[0, 2], c14 = C[0, 3]
            let c22 = C[1, 1], c23 = C[1, 2], c24 = C[1, 3], c33 = C[2, 2], c34 = C[2, 3], c44 = C[3, 3]
            let l4 = Self.erfQuarticDeterminant(c11, c12, c22)
            let l0 = Self.erfQuarticCross(l4, c11, c22, c13, c23, c14, c24, c34, c12 * c13, c12 * c14)
            let l1 = Self.erfQuarticNorm(l4, c11, c12, c22, c13, c23, c33)
            let l2 = Self.erfQuarticNorm(l4, c11, c12, c22, c14, c24, c44)
            return Self.erfQuarticWeight(l4) * asin(l0 / (l1 * l2).squareRoot())
        }
        return quadrature(C) { u in s.derivative(u[0]) * s.derivative(u[1]) * f.value(u[2]) * g.value(u[3]) }
    }

    // MARK: The erf closed forms in pieces
    //
    // The per-term closed forms above, written out. The right-hand side's `SharedErfTerms` computes
    // the same polynomials factored by the fields they depend on (and their square roots once, as
    // reciprocals), so the two agree up to rounding (`OnlineSGDTermsTests`, 10⁻¹²).

    /// C_xy − C₁ₓC₁ᵧ/(1 + C₁₁): the covariance of u_x, u_y after the tilt by σ'(u₁) (erf).
    @inlinable static func erfTilted(_ cxy: Double, _ c1x: Double, _ c1y: Double, _ c11: Double) -> Double {
        cxy - c1x * c1y / (1 + c11)
    }

    /// Λ₄ = (1 + C₁₁)(1 + C₂₂) − C₁₂² of E[σ'(u₁)σ'(u₂)σ(u₃)σ(u₄)] (EQUATIONS.md §1.4).
    @inlinable static func erfQuarticDeterminant(_ c11: Double, _ c12: Double, _ c22: Double) -> Double {
        (1 + c11) * (1 + c22) - c12 * c12
    }

    /// (4/π²) Λ₄^{-1/2}, the prefactor of the quartic.
    @inlinable static func erfQuarticWeight(_ l4: Double) -> Double {
        4 / (Double.pi * Double.pi) / l4.squareRoot()
    }

    /// Λ₁ of the quartic for the field u₃ (Λ₂ is the same function of u₄).
    @inlinable static func erfQuarticNorm(_ l4: Double, _ c11: Double, _ c12: Double, _ c22: Double,
                                          _ c13: Double, _ c23: Double, _ c33: Double) -> Double {
        l4 * (1 + c33) - c23 * c23 * (1 + c11) - c13 * c13 * (1 + c22) + 2 * c12 * c13 * c23
    }

    /// Λ₀ of the quartic, given the products C₁₂C₁₃ and C₁₂C₁₄ (shared per field).
    @inlinable static func erfQuarticCross(_ l4: Double, _ c11: Double, _ c22: Double, _ c13: Double, _ c23: Double,
                                           _ c14: Double, _ c24: Double, _ c34: Double,
                                           _ c12c13: Double, _ c12c14: Double) -> Double {
        l4 * c34 - c23 * c24 * (1 + c11) - c13 * c14 * (1 + c22) + c12c13 * c24 + c12c14 * c23
    }

    // MARK: Quadrature route

    /// E[h(u)] for u ~ N(0, C) by a Gauss–Hermite product rule: C = L Lᵀ (PSD-tolerant Cholesky),
    /// u = L z, summing over the nodes of the non-degenerate directions of z only.
    public func quadrature(_ C: FieldCovariance, _ h: (UnsafeBufferPointer<Double>) -> Double) -> Double {
        let n = C.count
        var m = Matrix(rows: n, cols: n)
        for i in 0..<n { for j in 0..<n { m[i, j] = C[i, j] } }
        guard let L = m.choleskyPSD(tolerance: 1e-13) else { return .nan }
        let active = (0..<n).filter { L[$0, $0] > 0 }
        if active.isEmpty { return [0.0, 0, 0, 0].withUnsafeBufferPointer { h($0) } }
        let rule = rules[active.count - 1]
        let (ghNodes, ghWeights) = (rule.nodes, rule.weights)
        let q = ghNodes.count
        var total = 0.0
        var index = [Int](repeating: 0, count: active.count)
        var u = [Double](repeating: 0, count: 4)
        let points = active.reduce(1) { acc, _ in acc * q }
        for _ in 0..<points {
            var weight = 1.0
            for i in 0..<n { u[i] = 0 }
            for (a, col) in active.enumerated() {
                let z = ghNodes[index[a]]
                weight *= ghWeights[index[a]]
                for i in col..<n { u[i] += L[i, col] * z }
            }
            total += weight * u.withUnsafeBufferPointer { h($0) }
            // Next multi-index.
            var a = 0
            while a < active.count {
                index[a] += 1
                if index[a] < q { break }
                index[a] = 0
                a += 1
            }
        }
        return total
    }
}
