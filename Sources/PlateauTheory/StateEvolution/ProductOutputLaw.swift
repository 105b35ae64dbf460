import Foundation
import PlateauCore
internal import CGSL

/// The exact law of a noiseless product output y = c·z_{a₁}⋯z_{a_m} (m = 2, 3 or 4 distinct coordinates)
/// under the prior z ~ N(0, I_k): the atoms of `PriorConditional` without binning the output.
///
/// With x = y/c = z_{a₁}⋯z_{a_m} (its law is even), E[z | y] = 0 and G(y) = E[zzᵀ | y] − I_k vanishes outside
/// the factors; on them, every E[z_a² | x] is the same function s_m(x)/p_m(x) (the factors are exchangeable),
/// and the off-diagonal entries are E[z_a z_b | x] = x for m = 2 and 0 for m ≥ 3 (flipping the signs of z_a
/// and of a third factor keeps x and turns z_a z_b into −z_a z_b). For x > 0:
///
///     m = 2:  p₂(x) = K₀(x)/π,                        s₂(x) = x K₁(x)/π                 (closed form)
///     m = 3:  p₃(x) = (2/π) ∫ φ(e^v) K₀(x e^{−v}) dv, s₃(x) = (2/π) ∫ φ(e^v) e^{2v} K₀(x e^{−v}) dv
///     m = 4:  p₄(x) = (2/π²) ∫ K₀(e^v) K₀(x e^{−v}) dv, s₄(x) = (2/π²) ∫ e^v K₁(e^v) K₀(x e^{−v}) dv
///
/// (x = z_{a_m}·(the product of the others), or for m = 4 the product of two independent products of two,
/// with u = e^v the conditioning factor; the inner integrals are GSL's adaptive Gauss–Kronrod rule to a
/// relative 10⁻¹³, with GSL's modified Bessel functions K₀, K₁.)
///
/// The atoms are the nodes of a fixed rule in x > 0 and their mirror images −x: x = e^σ on σ ∈ [−50, 0]
/// (cells of 1; the log singularity of p_m at 0 becomes a smooth decay) and x = r^m on r ∈ [1, 10] (cells of
/// 1/4; the tail exp(−(m/2) r²) is smooth on that scale), 10 Gauss–Legendre nodes per cell. The accuracy is
/// measured by the sum rules ∫p = 1, ∫s = 1 and E[x²] = 1 (`sumRuleError`).
public struct ProductOutputLaw: Sendable {
    /// The constant c and the 0-based indices of the factors.
    public let coefficient: Double
    public let factors: [Int]
    public let k: Int
    /// The atoms: weight p(x)dx, y = c·x, mean 0, G(y).
    public let atoms: [PriorConditional]
    /// max(|Σ P − 1|, |Σ s − 1|, |Σ x² P − 1|) over the atoms (the accuracy of the rule).
    public let sumRuleError: Double

    /// The law of `problem`'s output when it is a noiseless product of 2 to 4 distinct coordinates times a
    /// constant; nil otherwise (any other target, or Δ > 0).
    public init?(problem: EstimationProblem) {
        guard let (c, factors) = Self.monomial(of: problem) else { return nil }
        self.init(coefficient: c, factors: factors, k: problem.k)
    }

    /// Whether `problem`'s output is a noiseless product of 2 to 4 distinct coordinates times a constant
    /// (without computing the law).
    public static func applies(to problem: EstimationProblem) -> Bool { monomial(of: problem) != nil }

    static func monomial(of problem: EstimationProblem) -> (coefficient: Double, factors: [Int])? {
        guard problem.noise == 0, let terms = problem.target.polynomialCoefficients(), terms.count == 1,
              let (exponents, c) = terms.first, c != 0, c.isFinite, exponents.allSatisfy({ $0 == 0 || $0 == 1 })
        else { return nil }
        let factors = exponents.indices.filter { exponents[$0] == 1 }
        guard (2...4).contains(factors.count), factors.allSatisfy({ $0 < problem.k }) else { return nil }
        return (c, factors)
    }

    init(coefficient: Double, factors: [Int], k: Int) {
        _ = GSL.ready
        self.coefficient = coefficient
        self.factors = factors
        self.k = k
        let m = factors.count
        // The rule on x > 0.
        var nodes: [(x: Double, w: Double)] = []
        let (gx, gw) = GSL.gaussLegendreUnit(10)
        for cell in -50..<0 {
            for (t, w) in zip(gx, gw) {
                let sigma = Double(cell) + t, x = exp(sigma)
                nodes.append((x, w * x))
            }
        }
        for cell in 0..<36 {
            for (t, w) in zip(gx, gw) {
                let r = 1 + 0.25 * (Double(cell) + t)
                nodes.append((pow(r, Double(m)), 0.25 * w * Double(m) * pow(r, Double(m - 1))))
            }
        }
        var atoms: [PriorConditional] = []
        var mass = 0.0, second = 0.0, productSecond = 0.0
        for (x, w) in nodes {
            let (p, s) = Self.density(x, m: m)
            let weight = w * p
            guard weight > 1e-300 else { continue }
            mass += 2 * weight; second += 2 * w * s; productSecond += 2 * weight * x * x
            for sign in [1.0, -1.0] {
                var G = Matrix(rows: k, cols: k)
                for a in factors { G[a, a] = s / p - 1 }
                if m == 2 { G[factors[0], factors[1]] = sign * x; G[factors[1], factors[0]] = sign * x }
                atoms.append(PriorConditional(weight: weight, y: coefficient * sign * x,
                                              mean: [Double](repeating: 0, count: k), G: G))
            }
        }
        self.atoms = atoms
        sumRuleError = max(abs(mass - 1), abs(second - 1), abs(productSecond - 1))
    }

    /// p_m(x) and s_m(x) = E[z_a² 1(x)] per unit x (x > 0), see the type's documentation.
    static func density(_ x: Double, m: Int) -> (p: Double, s: Double) {
        switch m {
        case 2:
            guard x < 700 else { return (0, 0) }  // K₀ underflows
            return (gsl_sf_bessel_K0(x) / Double.pi, x * gsl_sf_bessel_K1(x) / Double.pi)
        case 3:
            // u = e^v ≤ 12 (φ(12) < e^{−72}); x/u ≤ 60 (K₀(60) < e^{−60}).
            let lo = log(x / 60), hi = log(12.0)
            guard lo < hi else { return (0, 0) }
            let p = integrate(lo, hi) { v in Self.phi(exp(v)) * k0(x * exp(-v)) }
            let s = integrate(lo, hi) { v in let u = exp(v); return Self.phi(u) * u * u * k0(x / u) }
            return (2 / Double.pi * p, 2 / Double.pi * s)
        default:
            // w = e^v ≤ 60 and x/w ≤ 60.
            let lo = log(x / 60), hi = log(60.0)
            guard lo < hi else { return (0, 0) }
            let p = integrate(lo, hi) { v in k0(exp(v)) * k0(x * exp(-v)) }
            let s = integrate(lo, hi) { v in let w = exp(v); return w * k1(w) * k0(x / w) }
            let c = 2 / (Double.pi * Double.pi)
            return (c * p, c * s)
        }
    }

    static func phi(_ u: Double) -> Double { exp(-0.5 * u * u) / (2 * Double.pi).squareRoot() }
    static func k0(_ a: Double) -> Double { a < 700 ? gsl_sf_bessel_K0(a) : 0 }
    static func k1(_ a: Double) -> Double { a < 700 ? gsl_sf_bessel_K1(a) : 0 }

    /// ∫_lo^hi f by GSL's adaptive 61-point Gauss–Kronrod rule to a relative 10⁻¹³.
    static func integrate(_ lo: Double, _ hi: Double, _ f: @escaping (Double) -> Double) -> Double {
        GSLIntegrand.with(f) { function in
            let workspace = gsl_integration_workspace_alloc(200)!
            defer { gsl_integration_workspace_free(workspace) }
            var result = 0.0, error = 0.0
            _ = gsl_integration_qag(&function, lo, hi, 0, 1e-13, 200, Int32(GSL_INTEG_GAUSS61), workspace, &result, &error)
            return result
        }
    }
}
