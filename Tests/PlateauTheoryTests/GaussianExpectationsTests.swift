import CGSL
import Foundation
import PlateauCore
import PlateauTheory
import Testing

// Three levels for every Gaussian expectation of the online-SGD equations (STYLE.md), for every
// combination of the engine's activations (erf(x/√2), linear, ReLU) in every shape:
//
//   pair       E[f(u₁) g(u₂)]
//   slopePair  E[f'(u₁) g'(u₂)]
//   stein      E[s'(u₁) u₂ f(u₃)]
//   quartic    E[s'(u₁) s'(u₂) f(u₃) g(u₄)]
//
// 1. Against deterministic quadrature written here, independent of the library's routes: nested
//    adaptive Gauss–Kronrod (GSL qag) over the standard-normal coordinates of u = L z, every level
//    cut at the ReLU kinks it completes, the innermost coordinate(s) in closed form (a bivariate
//    normal orthant for the θθ of the ReLU quartic; the erf quartic through its Gaussian tilt);
//    and, for the smooth erf integrands, a Gauss–Hermite product rule assembled here from GSL's
//    Hermite nodes.
// 2. Against seeded Monte Carlo, accepted at 5 sample standard errors.
// 3. Special values: zero covariance, Q = I with M = 0, arcsine arguments at ±1, non-finite input.
// 4. The library's own Gauss–Hermite route against its erf closed forms.

// MARK: - Integrands

/// Which function of a field a factor is: the activation's value σ(u) or its slope σ'(u).
private enum FactorPart: Sendable { case value, slope }

/// One factor of a product integrand, read from `Activation` (the definitions the simulator uses).
private struct Factor: Sendable {
    var field: Int
    var activation: Activation
    var part: FactorPart

    func callAsFunction(_ u: Double) -> Double {
        part == .value ? activation.value(u) : activation.derivative(u)
    }

    var isConstant: Bool { activation == .linear && part == .slope }
    var isStep: Bool { activation == .relu && part == .slope }

    /// E[F(m + s z)], z ~ N(0, 1): elementary one-dimensional Gaussian integrals, used only for
    /// the innermost coordinate of the nested quadrature.
    func gaussianMean(_ m: Double, _ s: Double) -> Double {
        let s = abs(s)
        if s == 0 { return self(m) }
        switch (activation, part) {
        case (.linear, .value): return m
        case (.linear, .slope): return 1
        case (.relu, .value): return m * normalCDF(m / s) + s * normalPDF(m / s)
        case (.relu, .slope): return normalCDF(m / s)
        // erf(x/√2) = 2Φ(x) − 1 and E[Φ(m + s z)] = Φ(m / √(1 + s²)).
        case (.erf, .value): return Foundation.erf(m / (2 * (1 + s * s)).squareRoot())
        case (.erf, .slope):
            let v = 1 + s * s
            return (2 / Double.pi).squareRoot() * Foundation.exp(-m * m / (2 * v)) / v.squareRoot()
        default: preconditionFailure("the nested reference covers erf, linear and ReLU")
        }
    }
}

private func normalPDF(_ x: Double) -> Double { Foundation.exp(-0.5 * x * x) / (2 * Double.pi).squareRoot() }
private func normalCDF(_ x: Double) -> Double { 0.5 * Foundation.erfc(-x / 2.0.squareRoot()) }

/// C = L Lᵀ for a positive semidefinite C. A pivot below 1e-12 × the largest variance marks a
/// direction the fields do not span: its column of L stays zero and no integral runs over it.
private func choleskyLower(_ C: [[Double]]) -> [[Double]] {
    let n = C.count
    let scale = max((0..<n).map { C[$0][$0] }.max() ?? 0, .leastNormalMagnitude)
    var L = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
    for j in 0..<n {
        var d = C[j][j]
        for k in 0..<j { d -= L[j][k] * L[j][k] }
        if d <= 1e-12 * scale { continue }
        let r = d.squareRoot()
        L[j][j] = r
        for i in (j + 1)..<n {
            var t = C[i][j]
            for k in 0..<j { t -= L[i][k] * L[j][k] }
            L[i][j] = t / r
        }
    }
    return L
}

/// The factors of an integrand grouped by the coordinate of z that completes their field: with
/// u = L z (L lower triangular), field i depends on z₀…z_c(i), c(i) its last non-zero column.
private struct FieldLevels {
    struct Level { var column: Int; var factors: [Factor] }
    var L: [[Double]]
    var levels: [Level]
    /// Product of the factors on fields that vanish identically (u ≡ 0).
    var constant: Double

    init(_ C: [[Double]], _ factors: [Factor]) {
        L = choleskyLower(C)
        constant = 1
        var byColumn: [Int: [Factor]] = [:]
        for f in factors {
            if let c = L[f.field].lastIndex(where: { $0 != 0 }) {
                byColumn[c, default: []].append(f)
            } else {
                constant *= f(0)
            }
        }
        levels = byColumn.keys.sorted().map { Level(column: $0, factors: byColumn[$0]!) }
    }

    /// All factors, at this level or deeper, whose field has a non-zero coefficient on `column`.
    func factors(involving column: Int) -> [Factor] {
        levels.filter { $0.column >= column }.flatMap(\.factors).filter { L[$0.field][column] != 0 }
    }

    /// Σ_{k<column} L[i][k] z[k]: the part of field i fixed by the outer coordinates.
    func partialField(_ i: Int, before column: Int, _ z: [Double]) -> Double {
        var m = 0.0
        for k in 0..<column { m += L[i][k] * z[k] }
        return m
    }
}

// MARK: - GSL helpers

private enum GSLSetup {
    /// GSL aborts on error by default; every status is checked here instead.
    static let handlerOff: Bool = {
        _ = gsl_set_error_handler_off()
        return true
    }()
}

/// A Swift closure behind the opaque `params` pointer of a `gsl_function`.
private final class ClosureBox {
    let f: (Double) -> Double
    init(_ f: @escaping (Double) -> Double) { self.f = f }
}

/// ∫ₐᵇ f by GSL's adaptive 31-point Gauss–Kronrod rule (qag); the closure reaches GSL through a
/// `@convention(c)` trampoline and an unretained context pointer.
private func adaptiveIntegral(
    _ a: Double, _ b: Double, epsabs: Double, epsrel: Double,
    workspace: UnsafeMutablePointer<gsl_integration_workspace>, limit: Int, _ f: (Double) -> Double
) -> (value: Double, abserr: Double, status: Int32) {
    withoutActuallyEscaping(f) { escapable in
        let box = ClosureBox(escapable)
        return withExtendedLifetime(box) {
            var function = gsl_function(
                function: { x, params in Unmanaged<ClosureBox>.fromOpaque(params!).takeUnretainedValue().f(x) },
                params: Unmanaged.passUnretained(box).toOpaque())
            var result = 0.0, abserr = 0.0
            let status = gsl_integration_qag(
                &function, a, b, epsabs, epsrel, limit, Int32(GSL_INTEG_GAUSS31), workspace, &result, &abserr)
            return (result, abserr, status)
        }
    }
}

/// P(X < h, Y < k) for standard normals with correlation ρ, from Plackett's identity
/// ∂Φ₂/∂ρ = φ₂ integrated along ρ = sin θ (Drezner & Wesolowsky 1990):
/// Φ₂ = Φ(h)Φ(k) + (1/2π) ∫₀^{asin ρ} exp(−(h² + k² − 2hk sin θ) / (2cos²θ)) dθ,
/// the exponent evaluated without cancellation near θ = ±π/2. Gauss–Legendre with 6, 12 or 20
/// points for |ρ| < 0.3, < 0.75, ≤ 0.925 (Genz 2004's choice, double precision there), adaptive
/// qag beyond, where the integrand steepens.
private final class BivariateNormal {
    private let rules: [(nodes: [Double], weights: [Double])]
    private let workspace: UnsafeMutablePointer<gsl_integration_workspace>
    private(set) var failures: [String] = []

    init() {
        _ = GSLSetup.handlerOff
        rules = [6, 12, 20].map { n in
            let table = gsl_integration_glfixed_table_alloc(n)!
            defer { gsl_integration_glfixed_table_free(table) }
            var nodes: [Double] = [], weights: [Double] = []
            for i in 0..<n {
                var x = 0.0, w = 0.0
                gsl_integration_glfixed_point(-1, 1, i, &x, &w, table)
                nodes.append(x)
                weights.append(w)
            }
            return (nodes, weights)
        }
        workspace = gsl_integration_workspace_alloc(200)!
    }

    deinit { gsl_integration_workspace_free(workspace) }

    func cdf(_ h: Double, _ k: Double, _ rho: Double) -> Double {
        if rho >= 1 { return normalCDF(min(h, k)) }
        if rho <= -1 { return max(0, normalCDF(h) - normalCDF(-k)) }
        func integrand(_ theta: Double) -> Double {
            let s = Foundation.sin(theta), c = Foundation.cos(theta)
            // h² + k² − 2hk s = (h − k)² + 2hk(1 − s) = (h + k)² − 2hk(1 + s), 1 ∓ s = c²/(1 ± s).
            let exponent = theta >= 0
                ? -(h - k) * (h - k) / (2 * c * c) - h * k / (1 + s)
                : -(h + k) * (h + k) / (2 * c * c) + h * k / (1 - s)
            return Foundation.exp(exponent)
        }
        let end = Foundation.asin(rho)
        var integral = 0.0
        if abs(rho) <= 0.925 {
            let rule = abs(rho) < 0.3 ? rules[0] : abs(rho) < 0.75 ? rules[1] : rules[2]
            var i = 0
            while i < rule.nodes.count {
                integral += rule.weights[i] * integrand(0.5 * end * (rule.nodes[i] + 1))
                i += 1
            }
            integral *= 0.5 * end
        } else {
            let r = adaptiveIntegral(0, end, epsabs: 1e-15, epsrel: 1e-13, workspace: workspace, limit: 200, integrand)
            if r.status != GSL_SUCCESS { failures.append("Φ₂(\(h), \(k); \(rho)): \(String(cString: gsl_strerror(r.status)))") }
            integral = r.value
        }
        return normalCDF(h) * normalCDF(k) + integral / (2 * Double.pi)
    }
}

// MARK: - Reference 1: nested adaptive quadrature

/// E[Π factors(u)] for u ~ N(0, C), by nested one-dimensional adaptive Gauss–Kronrod integration
/// over the standard-normal coordinates z of u = L z.
///
/// Each level integrates φ(z) × (the factors its coordinate completes) × (the inner integral) over
/// [−12, 12] (mass outside 2·10⁻³³), cut at the kinks of those factors, so every piece is analytic
/// and ReLU costs no accuracy: the inner integral is a smooth function of the outer coordinates.
/// Where it is smooth but steep (a nearly singular covariance, a large variance), a graded mesh of
/// cuts keeps a Kronrod rule from stepping over it. The innermost coordinate is done in closed
/// form when it completes a single factor (`Factor.gaussianMean`) or only ReLU steps (an interval
/// probability); when the two innermost coordinates complete one ReLU step each (θ(uᵢ)θ(uⱼ) of the
/// quartic), they are integrated together as a bivariate normal orthant probability
/// (`BivariateNormal`). A four-field expectation is thus at most two adaptive levels deep.
private final class NestedQuadrature {
    static let span = 12.0
    static let limit = 400

    private enum Innermost {
        case none
        case single(Factor, column: Int)
        case steps([Factor], column: Int)
        case stepPair(Factor, firstColumn: Int, Factor, secondColumn: Int)
    }

    private struct Feature { var field: Int; var coefficient: Double; var width: Double }

    let epsabs: Double
    let epsrel: Double
    private let n: Int
    private let L: UnsafeMutablePointer<Double>
    private let z: UnsafeMutablePointer<Double>
    private let constant: Double
    private var numeric: [FieldLevels.Level]
    private var features: [[Feature]] = []
    private var innermost = Innermost.none
    private var workspaces: [UnsafeMutablePointer<gsl_integration_workspace>] = []
    private let orthant = BivariateNormal()
    private var statusFailures: [String] = []
    private(set) var evaluations = 0
    /// GSL statuses other than success (must stay empty).
    var failures: [String] { statusFailures + orthant.failures }

    init(_ covariance: [[Double]], _ factors: [Factor], epsabs: Double = 1e-11, epsrel: Double = 1e-10) {
        _ = GSLSetup.handlerOff
        self.epsabs = epsabs
        self.epsrel = epsrel
        // Constant factors (a linear slope) are dropped and fields nothing else reads are
        // marginalised away (a sub-covariance), so no level integrates φ(z) × 1.
        let live = factors.filter { !$0.isConstant }
        let used = Array(Set(live.map(\.field))).sorted()
        // Field order: those carrying a single factor go innermost, ReLU steps last of all.
        func rank(_ i: Int) -> Int {
            let own = live.filter { $0.field == i }
            guard own.count == 1 else { return 0 }
            return own[0].isStep ? 3 : (own[0].activation == .relu ? 2 : 1)
        }
        let order = used.enumerated().sorted { (rank($0.element), $0.offset) < (rank($1.element), $1.offset) }.map(\.element)
        let position = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($1, $0) })
        let C = order.map { i in order.map { j in covariance[i][j] } }
        let fields = FieldLevels(C, live.map { Factor(field: position[$0.field]!, activation: $0.activation, part: $0.part) })
        n = C.count
        L = .allocate(capacity: max(1, n * n))
        z = .allocate(capacity: max(1, n))
        for i in 0..<n {
            z[i] = 0
            for j in 0..<n { L[i * n + j] = fields.L[i][j] }
        }
        constant = fields.constant
        numeric = fields.levels
        let m = numeric.count
        if m >= 3, numeric[m - 1].factors.count == 1, numeric[m - 2].factors.count == 1,
           numeric[m - 1].factors[0].isStep, numeric[m - 2].factors[0].isStep {
            innermost = .stepPair(numeric[m - 2].factors[0], firstColumn: numeric[m - 2].column,
                                  numeric[m - 1].factors[0], secondColumn: numeric[m - 1].column)
            numeric.removeLast(2)
        } else if let last = numeric.last, last.factors.allSatisfy(\.isStep) {
            innermost = .steps(last.factors, column: last.column)
            numeric.removeLast()
        } else if let last = numeric.last, last.factors.count == 1 {
            innermost = .single(last.factors[0], column: last.column)
            numeric.removeLast()
        }
        // Every non-linear factor whose field involves a level's coordinate changes fastest around
        // the point b where its field's outer part vanishes, over a width w: the spread of the
        // deeper coordinates plus the activation's own scale (0 for ReLU, 1 for erf), in units of
        // this coordinate's coefficient. w = 0 (a ReLU completed at this level) is a kink: cut at
        // b. Narrower than the standard normal itself (w < 1): cut at b; w < ¼: also at b ± w·4ʲ.
        features = numeric.map { level in
            fields.factors(involving: level.column).filter { $0.activation != .linear }.compactMap { f in
                let row = fields.L[f.field]
                var spread = f.activation == .erf ? 1.0 : 0.0
                for k in (level.column + 1)..<row.count { spread += row[k] * row[k] }
                let width = spread.squareRoot() / abs(row[level.column])
                return width < 1 ? Feature(field: f.field, coefficient: row[level.column], width: width) : nil
            }
        }
        workspaces = numeric.map { _ in gsl_integration_workspace_alloc(Self.limit)! }
    }

    deinit {
        workspaces.forEach { gsl_integration_workspace_free($0) }
        L.deallocate()
        z.deallocate()
    }

    static func expectation(
        _ C: [[Double]], _ factors: [Factor], epsabs: Double = 1e-11, epsrel: Double = 1e-10
    ) -> (value: Double, failures: [String]) {
        let q = NestedQuadrature(C, factors, epsabs: epsabs, epsrel: epsrel)
        let v = q.run()
        return (v, q.failures)
    }

    func run() -> Double {
        constant * (numeric.isEmpty ? innermostMean() : integrate(0))
    }

    /// Σ_{k<column} L[i][k] z[k]: the part of field i fixed by the outer coordinates.
    private func partial(_ field: Int, before column: Int) -> Double {
        var m = 0.0
        let row = L + field * n
        var k = 0
        while k < column { m += row[k] * z[k]; k += 1 }
        return m
    }

    private func innermostMean() -> Double {
        switch innermost {
        case .none:
            return 1
        case let .single(f, column):
            return f.gaussianMean(partial(f.field, before: column), L[f.field * n + column])
        case let .steps(steps, column):
            // P(mᵢ + cᵢ z > 0 for all i) = P(lo < z < hi).
            var lo = -Double.infinity, hi = Double.infinity
            for f in steps {
                let c = L[f.field * n + column], b = -partial(f.field, before: column) / c
                if c > 0 { lo = max(lo, b) } else { hi = min(hi, b) }
            }
            guard lo < hi else { return 0 }
            return lo > 0 ? normalCDF(-lo) - normalCDF(-hi) : normalCDF(hi) - normalCDF(lo)
        case let .stepPair(f, a, g, b):
            // uᵢ = mᵢ + αz_a, uⱼ = mⱼ + β₁z_a + β₂z_b: P(uᵢ > 0, uⱼ > 0) = Φ₂(mᵢ/|α|, mⱼ/‖β‖; sign(α)β₁/‖β‖).
            let mi = partial(f.field, before: a), alpha = L[f.field * n + a]
            let mj = partial(g.field, before: a), b1 = L[g.field * n + a], b2 = L[g.field * n + b]
            let norm = (b1 * b1 + b2 * b2).squareRoot()
            return orthant.cdf(mi / abs(alpha), mj / norm, (alpha < 0 ? -b1 : b1) / norm)
        }
    }

    private func integrate(_ level: Int) -> Double {
        let column = numeric[level].column
        var cuts = [-Self.span, Self.span]
        for feature in features[level] {
            let b = -partial(feature.field, before: column) / feature.coefficient
            cuts.append(b)
            var step = feature.width
            while step > 0 && step < 0.25 {
                cuts.append(b - step)
                cuts.append(b + step)
                step *= 4
            }
        }
        cuts = cuts.filter { abs($0) <= Self.span }.sorted()
        var total = 0.0
        for (a, b) in zip(cuts, cuts.dropFirst()) where b > a {
            let r = adaptiveIntegral(a, b, epsabs: epsabs, epsrel: epsrel, workspace: workspaces[level], limit: Self.limit) {
                self.integrand(level, $0)
            }
            if r.status != GSL_SUCCESS {
                statusFailures.append("level \(level) on [\(a), \(b)]: \(String(cString: gsl_strerror(r.status))), abserr \(r.abserr)")
            }
            total += r.value
        }
        return total
    }

    private func integrand(_ level: Int, _ x: Double) -> Double {
        evaluations += 1
        let column = numeric[level].column
        z[column] = x
        var p = normalPDF(x)
        for f in numeric[level].factors {
            p *= f(partial(f.field, before: column) + L[f.field * n + column] * x)
            if p == 0 { return 0 }
        }
        return p * (level + 1 < numeric.count ? integrate(level + 1) : innermostMean())
    }
}

/// E[σ'(u₁)σ'(u₂) F(u₃, u₄)] for σ = erf(·/√2), through the Gaussian tilt
/// σ'(u₁)σ'(u₂) = (2/π) exp(−(u₁² + u₂²)/2): it equals (2/π) det(I + C_AA)^{−1/2} E'[F(u₃, u₄)],
/// with (u₃, u₄) ~ N(0, C_BB − C_BA (I + C_AA)⁻¹ C_AB) under E' (A = fields 1, 2; B = 3, 4) —
/// the tilted covariance (C⁻¹ + diag(1, 1, 0, 0))⁻¹ written without inverting C, so it holds for
/// singular C. E' is then a two-field nested quadrature.
private func erfSlopeTiltedExpectation(_ C: [[Double]], _ f: Activation, _ g: Activation) -> (value: Double, failures: [String]) {
    let a11 = 1 + C[0][0], a12 = C[0][1], a22 = 1 + C[1][1]
    let det = a11 * a22 - a12 * a12
    let inverse = [[a22 / det, -a12 / det], [-a12 / det, a11 / det]]
    var tilted = [[0.0, 0.0], [0.0, 0.0]]
    for i in 0..<2 {
        for j in 0..<2 {
            var s = C[2 + i][2 + j]
            for p in 0..<2 { for q in 0..<2 { s -= C[2 + i][p] * inverse[p][q] * C[q][2 + j] } }
            tilted[i][j] = s
        }
    }
    let r = NestedQuadrature.expectation(
        tilted, [Factor(field: 0, activation: f, part: .value), Factor(field: 1, activation: g, part: .value)])
    return (2 / Double.pi / det.squareRoot() * r.value, r.failures)
}

// MARK: - Reference 2: Gauss–Hermite product rule (smooth integrands only)

/// Nodes and weights of the n-point Gauss–Hermite rule for the standard normal density, from GSL's
/// fixed Hermite rule (weight e^{−x²/2}, weights summing to √(2π)).
private func standardNormalHermiteRule(_ n: Int) -> (nodes: [Double], weights: [Double]) {
    _ = GSLSetup.handlerOff
    let w = gsl_integration_fixed_alloc(plateau_fixed_hermite(), n, 0, 0.5, 0, 0)!
    defer { gsl_integration_fixed_free(w) }
    let x = gsl_integration_fixed_nodes(w)!, wt = gsl_integration_fixed_weights(w)!
    let norm = (2 * Double.pi).squareRoot()
    return ((0..<n).map { x[$0] }, (0..<n).map { wt[$0] / norm })
}

/// E[Π factors(u)] by an n-point-per-dimension Gauss–Hermite product rule over the active
/// coordinates of u = L z (no closed-form step: a structurally different second reference).
/// Geometrically convergent for the entire integrands of erf; not for ReLU kinks.
private func gaussHermiteProduct(_ C: [[Double]], _ factors: [Factor], nodes n: Int) -> Double {
    let fields = FieldLevels(C, factors)
    let (x, w) = standardNormalHermiteRule(n)
    var z = [Double](repeating: 0, count: C.count)
    func sum(_ level: Int) -> Double {
        guard level < fields.levels.count else { return 1 }
        let lvl = fields.levels[level]
        let partial = lvl.factors.map { fields.partialField($0.field, before: lvl.column, z) }
        var total = 0.0
        for q in 0..<n {
            z[lvl.column] = x[q]
            var p = w[q]
            for (f, m) in zip(lvl.factors, partial) { p *= f(m + fields.L[f.field][lvl.column] * x[q]) }
            if p != 0 { p *= sum(level + 1) }
            total += p
        }
        return total
    }
    return fields.constant * sum(0)
}

// MARK: - Shapes and activation combinations

private enum Shape: String, Sendable, CaseIterable {
    case pair, slopePair, stein, quartic

    /// The fields of a 4×4 test covariance each shape reads, chosen so that the degenerate test
    /// covariances put ρ = −1 inside `pair` (u₂, u₃), ρ → +1 inside `slopePair` (u₀, u₁), and a
    /// nearly identical s' field and f field inside `stein` (as E[σ'(λⱼ) ν σ(λⱼ)] has).
    var fields: [Int] {
        switch self {
        case .pair: return [2, 3]
        case .slopePair: return [0, 1]
        case .stein: return [0, 2, 1]
        case .quartic: return [0, 1, 2, 3]
        }
    }
}

/// One shape with one choice of activations: pair (f, g), slopePair (f, g), stein (s, f),
/// quartic (s, f, g).
private struct Combo: Sendable, Equatable, CustomTestStringConvertible {
    var shape: Shape
    var acts: [Activation]

    static let all: [Combo] = {
        let a = Activation.closedForm
        var list: [Combo] = []
        for shape in [Shape.pair, .slopePair, .stein] {
            for x in a { for y in a { list.append(Combo(shape: shape, acts: [x, y])) } }
        }
        for s in a { for f in a { for g in a { list.append(Combo(shape: .quartic, acts: [s, f, g])) } } }
        return list
    }()

    var testDescription: String { "\(shape.rawValue)(\(acts.map(\.name).joined(separator: ", ")))" }

    /// The integrand on local field indices 0..<shape.fields.count.
    var factors: [Factor] {
        func v(_ i: Int, _ a: Activation) -> Factor { Factor(field: i, activation: a, part: .value) }
        func d(_ i: Int, _ a: Activation) -> Factor { Factor(field: i, activation: a, part: .slope) }
        switch shape {
        case .pair: return [v(0, acts[0]), v(1, acts[1])]
        case .slopePair: return [d(0, acts[0]), d(1, acts[1])]
        case .stein: return [d(0, acts[0]), v(1, .linear), v(2, acts[1])]
        case .quartic: return [d(0, acts[0]), d(1, acts[0]), v(2, acts[1]), v(3, acts[2])]
        }
    }

    var route: ExpectationRoute {
        switch shape {
        case .pair: return GaussianExpectations.pairRoute(acts[0], acts[1])
        case .slopePair: return GaussianExpectations.slopePairRoute(acts[0], acts[1])
        case .stein: return GaussianExpectations.steinRoute(acts[0], acts[1])
        case .quartic: return GaussianExpectations.quarticRoute(acts[0], acts[1], acts[2])
        }
    }

    func library(_ E: GaussianExpectations, _ C: [[Double]]) -> Double {
        let fc = fieldCovariance(C)
        switch shape {
        case .pair: return E.pair(acts[0], acts[1], fc)
        case .slopePair: return E.slopePair(acts[0], acts[1], fc)
        case .stein: return E.stein(acts[0], acts[1], fc)
        case .quartic: return E.quartic(acts[0], acts[1], acts[2], fc)
        }
    }

    /// The independent deterministic reference (level 1).
    func reference(_ C: [[Double]]) -> (value: Double, failures: [String]) {
        if shape == .quartic && acts[0] == .erf { return erfSlopeTiltedExpectation(C, acts[1], acts[2]) }
        return NestedQuadrature.expectation(C, factors)
    }

    /// Sub-covariance of a 4×4 test covariance on this shape's fields.
    func localCovariance(_ C4: [[Double]]) -> [[Double]] {
        shape.fields.map { i in shape.fields.map { j in C4[i][j] } }
    }
}

private func fieldCovariance(_ C: [[Double]]) -> FieldCovariance {
    var upper: [Double] = []
    for i in C.indices { for j in i..<C.count { upper.append(C[i][j]) } }
    return FieldCovariance(C.count, upper: upper)
}

// MARK: - Seeded randomness and test covariances

/// A named 4×4 covariance of the fields (u₀, u₁, u₂, u₃).
private struct CovarianceCase: Sendable, Equatable, CustomTestStringConvertible {
    var name: String
    var C: [[Double]]
    var testDescription: String { name }

    /// C = A Aᵀ with A (4 × columns) of seeded N(0, scale²) entries.
    static func random(_ name: String, seed: UInt64, columns: Int, scale: Double) -> CovarianceCase {
        var rng = SplitMix64(seed: seed)
        let A = (0..<4).map { _ in (0..<columns).map { _ in scale * rng.normal() } }
        return CovarianceCase(name: name, C: gram(A))
    }

    static func gram(_ A: [[Double]]) -> [[Double]] {
        A.map { a in A.map { b in zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } } }
    }

    static let all: [CovarianceCase] = [
        random("random A·Aᵀ, 4×4, O(1) variances", seed: 0x5EED_0001, columns: 4, scale: 0.6),
        random("random A·Aᵀ, 4×8, variances ≈ 2", seed: 0x5EED_0002, columns: 8, scale: 0.5),
        random("random A·Aᵀ, 4×3 (rank 3), small variances", seed: 0x5EED_0003, columns: 3, scale: 0.25),
        CovarianceCase(name: "identical fields (rank 1)", C: [[Double]](repeating: [Double](repeating: 0.8, count: 4), count: 4)),
        CovarianceCase(name: "zero overlap", C: [[0.5, 0, 0, 0], [0, 1.5, 0, 0], [0, 0, 0.9, 0], [0, 0, 0, 2.0]]),
        // u₁ = u₀ + 10⁻⁴ z (ρ₀₁ = 1 − 5·10⁻⁹) and u₃ = −1.1 u₂ exactly (ρ₂₃ = −1).
        CovarianceCase(name: "correlations → ±1", C: gram([[1, 0, 0], [1, 1e-4, 0], [0.4, 0, 0.8], [-0.44, 0, -0.88]])),
    ]
}

/// Seeded Monte Carlo of every combination on one 4×4 covariance, all from the same samples.
/// Returns, per combination, the mean of h − centre and its sample standard error (centring on
/// the value under test keeps the running sums free of cancellation).
private func monteCarlo(_ C4: [[Double]], combos: [Combo], centres: [Double], samples: Int, seed: UInt64)
    -> [(deviation: Double, standardError: Double)]
{
    let L = choleskyLower(C4)
    let (l00, l10, l11, l20, l21, l22) = (L[0][0], L[1][0], L[1][1], L[2][0], L[2][1], L[2][2])
    let (l30, l31, l32, l33) = (L[3][0], L[3][1], L[3][2], L[3][3])
    let acts = Activation.closedForm
    // Table of σ(uᵢ), σ'(uᵢ) per field and activation; slot 24 holds the constant 1.
    func slot(_ field: Int, _ a: Activation, _ part: FactorPart) -> Int {
        field * 6 + acts.firstIndex(of: a)! * 2 + (part == .value ? 0 : 1)
    }
    var index = [Int]()
    for c in combos {
        var own = c.factors.map { slot(c.shape.fields[$0.field], $0.activation, $0.part) }
        while own.count < 4 { own.append(24) }
        index += own
    }
    let m = combos.count
    let t = UnsafeMutablePointer<Double>.allocate(capacity: 25)
    let s = UnsafeMutablePointer<Double>.allocate(capacity: m), q = UnsafeMutablePointer<Double>.allocate(capacity: m)
    let ix = UnsafeMutablePointer<Int>.allocate(capacity: 4 * m), centre = UnsafeMutablePointer<Double>.allocate(capacity: m)
    defer { [t, s, q, centre].forEach { $0.deallocate() }; ix.deallocate() }
    t.initialize(repeating: 1, count: 25)
    s.initialize(repeating: 0, count: m)
    q.initialize(repeating: 0, count: m)
    for c in 0..<m { centre[c] = centres[c] }
    for i in 0..<(4 * m) { ix[i] = index[i] }
    let (erf, linear, relu) = (Activation.erf, Activation.linear, Activation.relu)
    var rng = SplitMix64(seed: seed)
    for _ in 0..<samples {
        let (z0, z1) = rng.normalPair(), (z2, z3) = rng.normalPair()
        let u = (l00 * z0, l10 * z0 + l11 * z1, l20 * z0 + l21 * z1 + l22 * z2, l30 * z0 + l31 * z1 + l32 * z2 + l33 * z3)
        func fill(_ i: Int, _ v: Double) {
            t[i] = erf.value(v); t[i + 1] = erf.derivative(v)
            t[i + 2] = linear.value(v); t[i + 3] = linear.derivative(v)
            t[i + 4] = relu.value(v); t[i + 5] = relu.derivative(v)
        }
        fill(0, u.0); fill(6, u.1); fill(12, u.2); fill(18, u.3)
        var c = 0
        while c < m {
            let d = t[ix[4 * c]] * t[ix[4 * c + 1]] * t[ix[4 * c + 2]] * t[ix[4 * c + 3]] - centre[c]
            s[c] += d
            q[c] += d * d
            c += 1
        }
    }
    let n = Double(samples)
    return (0..<m).map { c in
        let mean = s[c] / n
        let variance = max(0, (q[c] - n * mean * mean) / (n - 1))
        return (mean, (variance / n).squareRoot())
    }
}

/// A value per test covariance, computed once on first use and shared by the tests that need it
/// (they run in parallel; each entry has its own lock).
private final class PerCovariance<Value>: @unchecked Sendable {
    private final class Entry {
        let lock = NSLock()
        var value: Value?
    }
    private let entries = CovarianceCase.all.map { _ in Entry() }
    private let compute: @Sendable (Int) -> Value

    init(_ compute: @escaping @Sendable (Int) -> Value) { self.compute = compute }

    func callAsFunction(_ caseIndex: Int) -> Value {
        let entry = entries[caseIndex]
        entry.lock.lock()
        defer { entry.lock.unlock() }
        if let value = entry.value { return value }
        let value = compute(caseIndex)
        entry.value = value
        return value
    }
}

/// The library's value of every combination on a test covariance (the quadrature route costs
/// ~40 ms per four-field call in a debug build, so levels 1 and 2 share them).
private let libraryValues = PerCovariance<[Double]> { caseIndex in
    let C = CovarianceCase.all[caseIndex].C
    return Combo.all.map { $0.library(GaussianExpectationsTests.library, $0.localCovariance(C)) }
}

/// Seeded Monte Carlo of every combination on a test covariance, centred on the library's values.
private let monteCarloEstimates = PerCovariance<[(deviation: Double, standardError: Double)]> { caseIndex in
    monteCarlo(CovarianceCase.all[caseIndex].C, combos: Combo.all, centres: libraryValues(caseIndex),
               samples: GaussianExpectationsTests.samples, seed: 0xC0FFEE + UInt64(caseIndex))
}

// MARK: - Tests

@Suite("Gaussian expectations: closed forms, quadrature and Monte Carlo")
struct GaussianExpectationsTests {
    static let library = GaussianExpectations()

    /// Closed-form and Stein routes against the nested quadrature. The reference asks qag for
    /// 10⁻¹¹ per level, and gets better (its error estimate |K31 − G15| is pessimistic: the
    /// references move by ≤ 4·10⁻¹³ when 10⁻¹⁴ is asked instead), with every piece analytic
    /// thanks to the cuts, kinks included. 10⁻⁹ (absolute, plus relative for large values) thus
    /// leaves two to three orders of margin, near-singular covariances included, while catching
    /// any wrong constant, sign or argument.
    static let exactTolerance = 1e-9

    /// The Gauss–Hermite route has no exactness to offer, only a requirement: a right-hand side
    /// accurate well below anything the ODE/simulation comparison resolves (risk standard errors
    /// of 10⁻³–10⁻⁴ at finite d) and below the level where an ODE integrated at rtol 10⁻⁸ stops
    /// being limited by its integrator: 10⁻⁶ relative.
    static let quadratureTolerance = 1e-6

    // MARK: Level 1: against independent deterministic quadrature

    @Test("level 1: every route against independent nested adaptive quadrature", arguments: Combo.all)
    private func againstNestedQuadrature(_ combo: Combo) {
        let comboIndex = Combo.all.firstIndex(of: combo)!
        // References first: the library's values are computed once per covariance, meanwhile.
        let references = CovarianceCase.all.map { combo.reference(combo.localCovariance($0.C)) }
        var worst = 0.0, worstCase = "", worstZ = 0.0
        for (caseIndex, cov) in CovarianceCase.all.enumerated() {
            let value = libraryValues(caseIndex)[comboIndex]
            let (reference, failures) = references[caseIndex]
            #expect(failures.isEmpty, "\(combo.testDescription) on \(cov.name): GSL \(failures)")
            let error = abs(value - reference)
            if error > worst { (worst, worstCase) = (error, cov.name) }
            let message: Comment = "\(combo.testDescription) [\(combo.route.rawValue)] on \(cov.name): library \(value), reference \(reference), |Δ| = \(error)"
            if combo.route == .quadrature {
                #expect(error <= Self.quadratureTolerance * (1 + abs(reference)), message)
            } else {
                #expect(error <= Self.exactTolerance * (1 + abs(reference)), message)
            }
            // The reference itself against the level-2 Monte Carlo (same acceptance rule), so that
            // a disagreement above is the library's, not the reference's.
            let (deviation, se) = monteCarloEstimates(caseIndex)[comboIndex]
            let sampled = value + deviation
            if se > 0 { worstZ = max(worstZ, abs(sampled - reference) / se) }
            #expect(abs(sampled - reference) <= Self.monteCarloAllowance(se, reference),
                    "reference \(reference) vs Monte Carlo \(sampled) ± \(se) for \(combo.testDescription) on \(cov.name)")
        }
        print("[level 1] \(combo.testDescription) [\(combo.route.rawValue)]: max |library − reference| = \(worst) (\(worstCase)); max |MC − reference|/SE = \(worstZ)")
    }

    /// The reductions inside the references against direct integration: Φ₂ against a
    /// one-dimensional integral, and the Gaussian tilt of the s = erf quartic against the plain
    /// nested quadrature on a rank-2 covariance (two adaptive levels, no tilt, no closed-form
    /// step). The bivariate-orthant step is cross-checked in level 1 itself, where the s = ReLU
    /// references meet the library's exact E[θθ relu relu].
    @Test("level 1: the references' reductions (Φ₂, Gaussian tilt) against direct integration")
    func referenceReductions() {
        let bvn = BivariateNormal()
        var worstOrthant = 0.0, worstTilt = 0.0
        let workspace = gsl_integration_workspace_alloc(400)!
        defer { gsl_integration_workspace_free(workspace) }
        for (h, k, rho) in [(0.3, -0.7, 0.2), (-1.2, 0.4, -0.6), (0.5, 0.5, 0.93), (1.1, -0.2, -0.97), (0.0, 0.0, 0.999), (2.0, 1.5, 0.9999), (-0.4, 0.9, 0.8)] {
            // Φ₂ = ∫_{−∞}^{h} φ(x) Φ((k − ρx)/√(1 − ρ²)) dx.
            let s = (1 - rho * rho).squareRoot()
            let direct = adaptiveIntegral(-NestedQuadrature.span, h, epsabs: 1e-15, epsrel: 1e-13, workspace: workspace, limit: 400) {
                normalPDF($0) * normalCDF((k - rho * $0) / s)
            }
            let error = abs(bvn.cdf(h, k, rho) - direct.value)
            worstOrthant = max(worstOrthant, error)
            #expect(direct.status == GSL_SUCCESS && error <= 1e-13, "Φ₂(\(h), \(k); \(rho)) = \(bvn.cdf(h, k, rho)), direct \(direct.value)")
        }
        var rng = SplitMix64(seed: 0x7117)
        let rankTwo = CovarianceCase.gram((0..<4).map { _ in [0.8 * rng.normal(), 0.8 * rng.normal()] })
        for f in Activation.closedForm {
            for g in Activation.closedForm {
                let tilted = erfSlopeTiltedExpectation(rankTwo, f, g)
                let direct = NestedQuadrature.expectation(rankTwo, Combo(shape: .quartic, acts: [.erf, f, g]).factors)
                worstTilt = max(worstTilt, abs(tilted.value - direct.value))
                #expect(tilted.failures.isEmpty && direct.failures.isEmpty)
                #expect(abs(tilted.value - direct.value) <= 1e-10, "tilt \(tilted.value) vs direct \(direct.value) for (erf, \(f), \(g))")
            }
        }
        print("[level 1] reference reductions: max |Δ| Φ₂ = \(worstOrthant), tilt = \(worstTilt)")
        #expect(bvn.failures.isEmpty)
    }

    /// The erf closed forms against a Gauss–Hermite product rule assembled here. The integrands are
    /// entire, but σ'(u) = √(2/π)e^{−u²/2} is narrower than the rule's unit-variance weight, so the
    /// convergence is geometric yet not instant (E[σ'(u)²σ(u)u], variance 0.8: 24 nodes 2·10⁻⁷
    /// off, 32 nodes 2·10⁻⁹, 40 nodes 10⁻¹¹, 64 round-off). The accepted deviation is therefore
    /// the rule's own error estimate |GH_n − GH_n'| (n' < n) plus round-off: it bounds the error
    /// of GH_n whenever going from n' to n nodes at least halves the error (here ≈ ×100), and it
    /// demands round-off agreement exactly where the rule has converged.
    @Test("level 1: erf closed forms against a Gauss–Hermite product rule")
    func erfAgainstHermiteProduct() {
        var worst: [String: Double] = [:]
        for combo in Combo.all where combo.acts.allSatisfy({ $0 == .erf }) {
            let (fine, coarse) = combo.shape == .quartic ? (24, 20) : combo.shape == .stein ? (40, 32) : (96, 64)
            for (caseIndex, cov) in CovarianceCase.all.enumerated() {
                let C = combo.localCovariance(cov.C)
                // Four active fields cost 24⁴ + 20⁴ points: only the O(1)-variance case runs them (the
                // quartic closed form is pinned to round-off by the tilt reference anyway).
                let L = choleskyLower(C)
                if combo.shape == .quartic && L.indices.allSatisfy({ L[$0][$0] > 0 }) && caseIndex != 0 { continue }
                let value = combo.library(Self.library, C)
                let hermite = gaussHermiteProduct(C, combo.factors, nodes: fine)
                let estimate = abs(hermite - gaussHermiteProduct(C, combo.factors, nodes: coarse))
                let error = abs(value - hermite)
                worst[combo.testDescription] = max(worst[combo.testDescription] ?? 0, error)
                #expect(error <= estimate + 1e-13, "\(combo.testDescription) on \(cov.name): closed form \(value), Gauss–Hermite \(hermite) (n = \(fine)), |GH_n − GH_n'| = \(estimate)")
            }
        }
        print("[level 1] erf closed forms vs Gauss–Hermite product rule: \(worst.sorted { $0.key < $1.key })")
    }

    // MARK: Level 2: against seeded Monte Carlo

    /// 2·10⁵ samples per covariance, shared by all 54 combinations. Acceptance at 5 standard
    /// errors is a Bonferroni bound, not a tuned constant: two-sided P(|Z| > 5) = 5.7·10⁻⁷, so over
    /// the 2 × 54 × 6 = 648 comparisons (library and reference) a correct value fails with
    /// probability ≈ 4·10⁻⁴. An integrand that is constant on the samples (SE = 0) must match to
    /// summation round-off, N·ε.
    static let samples = 200_000
    static let zScore = 5.0

    static func monteCarloAllowance(_ standardError: Double, _ value: Double) -> Double {
        zScore * standardError + Double(samples) * Double.ulpOfOne * (1 + abs(value))
    }

    @Test("level 2: every route against seeded Monte Carlo", arguments: CovarianceCase.all)
    private func againstMonteCarlo(_ cov: CovarianceCase) {
        let caseIndex = CovarianceCase.all.firstIndex(of: cov)!
        let combos = Combo.all
        let values = libraryValues(caseIndex)
        let estimates = monteCarloEstimates(caseIndex)
        var worstZ = 0.0, worstDeviation = 0.0
        for (c, combo) in combos.enumerated() {
            let (deviation, se) = estimates[c]
            let allowance = Self.monteCarloAllowance(se, values[c])
            let message: Comment = "\(combo.testDescription) [\(combo.route.rawValue)] on \(cov.name): library \(values[c]), MC \(values[c] + deviation) ± \(se)"
            worstDeviation = max(worstDeviation, abs(deviation))
            if se > 0 { worstZ = max(worstZ, abs(deviation) / se) }
            #expect(abs(deviation) <= allowance, message)
        }
        print("[level 2] \(cov.name): max |MC − library| = \(worstDeviation), max |MC − library|/SE = \(worstZ)")
    }

    // MARK: Level 3: special values

    @Test("level 3: Q = I, M = 0 — E[σσ] = 0 and 1/3, E[σ'σ'] = 1/π, risk 2/3 (erf); ReLU moments")
    func identityValues() {
        let E = Self.library
        let identity = FieldCovariance(2, upper: [1, 0, 1]), same = FieldCovariance(2, upper: [1, 1, 1])
        #expect(E.pair(.erf, .erf, identity) == 0)
        // (2/π) asin(1/2) = 1/3.
        #expect(abs(E.pair(.erf, .erf, same) - 1.0 / 3.0) <= 2 * Double.ulpOfOne)
        // (2/π) / √((1 + 1)(1 + 1) − 0) = 1/π; identical fields: (2/π)/√3.
        #expect(abs(E.slopePair(.erf, .erf, identity) - 1 / Double.pi) <= 2 * Double.ulpOfOne)
        #expect(abs(E.slopePair(.erf, .erf, same) - 2 / (Double.pi * 3.0.squareRoot())) <= 2 * Double.ulpOfOne)
        // Risk of a k = p = 2 committee with a = 1 at Q = P = I, M = 0:
        // ½[Σ E σ(ν)σ(ν') + Σ E σ(λ)σ(λ') − 2 Σ E σ(λ)σ(ν)] = ½[2·⅓ + 2·⅓ − 0] = 2/3.
        let selfOverlap = 2 * E.pair(.erf, .erf, same) + 2 * E.pair(.erf, .erf, identity)
        let risk = 0.5 * (selfOverlap + selfOverlap - 2 * 4 * E.pair(.erf, .erf, identity))
        #expect(abs(risk - 2.0 / 3.0) <= 4 * Double.ulpOfOne)
        // Stein and quartic at the identity vanish (odd in an independent field).
        #expect(E.stein(.erf, .erf, FieldCovariance(3, upper: [1, 0, 0, 1, 0, 1])) == 0)
        #expect(E.quartic(.erf, .erf, .erf, FieldCovariance(4, upper: [1, 0, 0, 0, 1, 0, 0, 1, 0, 1])) == 0)
        // All four fields identical at unit variance: Λ₄ = 3, Λ₀ = 1, Λ₁ = Λ₂ = 4.
        let allSame = FieldCovariance(4, upper: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1])
        let expected = 4 / (Double.pi * Double.pi) / 3.0.squareRoot() * Foundation.asin(0.25)
        #expect(abs(E.quartic(.erf, .erf, .erf, allSame) - expected) <= 4 * Double.ulpOfOne)
        // ReLU: E[relu(u)²] = c/2, E[θ(u)θ(u)] = ½, independent: E[relu]² = √(c₁c₂)/(2π).
        #expect(abs(E.pair(.relu, .relu, FieldCovariance(2, upper: [0.7, 0.7, 0.7])) - 0.35) <= 4 * Double.ulpOfOne)
        #expect(abs(E.slopePair(.relu, .relu, FieldCovariance(2, upper: [0.7, 0.7, 0.7])) - 0.5) <= 4 * Double.ulpOfOne)
        #expect(abs(E.pair(.relu, .relu, FieldCovariance(2, upper: [0.5, 0, 2])) - 1 / (2 * Double.pi)) <= 4 * Double.ulpOfOne)
    }

    /// Arcsine arguments at ±1: erf's x = C₁₂/√((1+C₁₁)(1+C₂₂)) → ±1 only as the variances grow
    /// (identical fields of variance c: asin(c/(1+c)) = atan(c/√(2c+1)) exactly), where asin is
    /// ill-conditioned: an argument correct to ε gives an angle correct to ε/√(1 − x²), the bound
    /// applied below. ReLU's C₁₂/√(C₁₁C₂₂) is ±1 at identical fields and can round past it; the
    /// quartic's Λ₀/√(Λ₁Λ₂) is the erf-pair argument of the tilted (u₃, u₄) and tends to ±1 for
    /// u₄ = ±u₃ at large variance.
    @Test("level 3: arcsine arguments at ±1 stay finite and accurate")
    func arcsineArgumentsAtOne() {
        let E = Self.library
        var worst = 0.0
        for c in [1e2, 1e8, 1e12, 1e16] {
            for sign in [1.0, -1.0] {
                let value = E.pair(.erf, .erf, FieldCovariance(2, upper: [c, sign * c, c]))
                let expected = sign * (2 / Double.pi) * Foundation.atan(c / (2 * c + 1).squareRoot())
                let x = c / (1 + c), conditioning = 4 * Double.ulpOfOne / max((1 - x * x).squareRoot(), Double.ulpOfOne.squareRoot())
                worst = max(worst, abs(value - expected))
                #expect(value.isFinite && abs(value - expected) <= conditioning, "E[σσ] at c = \(c), sign \(sign): \(value) vs \(expected)")
            }
        }
        var rng = SplitMix64(seed: 0xA5A5)
        var nonFinite: [String] = []
        for _ in 0..<2000 {
            let a = 0.05 + 3 * rng.uniform(), b = 0.05 + 3 * rng.uniform(), sign = rng.uniform() < 0.5 ? -1.0 : 1.0
            let two = FieldCovariance(2, upper: [a, sign * (a * b).squareRoot(), b])
            for f in Activation.closedForm {
                for g in Activation.closedForm where ![f, g].contains(.relu) || f == g || [f, g].contains(.linear) {
                    let values = [E.pair(f, g, two), E.slopePair(f, g, two)]
                    if !values.allSatisfy(\.isFinite) { nonFinite.append("pair/slopePair(\(f), \(g)) at \(a), \(b), \(sign)") }
                }
            }
            let three = FieldCovariance(3, upper: [a, 0.3 * sign, sign * (a * b).squareRoot(), 1, 0.2, b])
            if !E.stein(.relu, .relu, three).isFinite || !E.stein(.erf, .erf, three).isFinite { nonFinite.append("stein at \(a), \(b), \(sign)") }
            // Quartic with u₄ = ratio·u₃, scaled up to 10¹²: the tilted pair argument → ±1.
            let A = (0..<3).map { _ in (0..<3).map { _ in rng.normal() } }
            let ratio = sign * (0.2 + 2 * rng.uniform()), scale = Foundation.pow(10, 12 * rng.uniform())
            let C4 = CovarianceCase.gram((A + [A[2].map { ratio * $0 }]).map { $0.map { $0 * scale.squareRoot() } })
            let q = E.quartic(.erf, .erf, .erf, fieldCovariance(C4))
            if !q.isFinite { nonFinite.append("quartic(erf, erf, erf) with u₄ = \(ratio)·u₃: \(q), C = \(C4)") }
        }
        print("[level 3] arcsine arguments: max |Δ| of E[σσ] at c → ∞ = \(worst); non-finite results: \(nonFinite.count)")
        #expect(nonFinite.isEmpty, "\(nonFinite.count) non-finite results, e.g. \(nonFinite.prefix(3))")
    }

    /// Zero covariance (a student row at exactly zero): every route finite, and equal to the
    /// integrand at u = 0 wherever that is unambiguous (ReLU slopes excluded: θ(0) is a
    /// convention, checked separately).
    @Test("level 3: zero covariance gives finite results, e.g. E[relu·relu] = 0")
    func zeroCovariance() {
        let zero = [[Double]](repeating: [Double](repeating: 0, count: 4), count: 4)
        for combo in Combo.all {
            let value = combo.library(Self.library, combo.localCovariance(zero))
            #expect(value.isFinite, "\(combo.testDescription): \(value)")
            if !combo.factors.contains(where: \.isStep) {
                let atZero = combo.factors.reduce(1.0) { $0 * $1(0) }
                #expect(value == atZero, "\(combo.testDescription): \(value), integrand at 0: \(atZero)")
            }
        }
        #expect(Self.library.pair(.relu, .relu, FieldCovariance(2, upper: [0, 0, 0])) == 0)
        #expect(Self.library.slopePair(.erf, .erf, FieldCovariance(2, upper: [0, 0, 0])) == 2 / Double.pi)
    }

    /// θ(0) at a zero-variance field: the closed forms and Stein moments use θ(0) = ½ (the ρ = 0
    /// limit: E[θθ] = ¼, E[θ] = ½), `Activation.derivative(0)` — the simulator and the library's
    /// quadrature route — uses θ(0) = 0.
    @Test("level 3: ReLU slope of a zero-variance field — one convention across routes")
    func reluSlopeAtZeroVariance() {
        let E = Self.library
        // u₁ ≡ 0, u₂ of unit variance.
        let C = FieldCovariance(2, upper: [0, 0, 1])
        let closedForm = E.slopePair(.relu, .relu, C) / 0.5  // E[θ(u₁)θ(u₂)] / E[θ(u₂)]
        let stein = E.slopePair(.relu, .linear, C)  // E[θ(u₁)]
        let quadrature = E.slopePair(.relu, .erf, C) / E.slopePair(.linear, .erf, C)
        let simulator = Activation.relu.derivative(0)
        #expect(closedForm == simulator && stein == simulator && quadrature == simulator,
                "θ(0) implied: closed form \(closedForm), Stein \(stein), quadrature \(quadrature), Activation \(simulator)")
    }

    /// Non-finite input must give non-finite output, never a plausible number. Checked on the
    /// covariances between fields the integrand reads (a variance may legitimately drop out, as in
    /// E[relu(u₁) u₂] = C₁₂/2).
    @Test("level 3: a NaN covariance propagates to every route")
    private func nonFiniteInput() {
        var swallowed: [String] = []
        for combo in Combo.all {
            let read = Set(combo.factors.filter { !$0.isConstant }.map(\.field))
            for i in read {
                for j in read where j > i {
                    var C = combo.localCovariance(CovarianceCase.all[0].C)
                    C[i][j] = .nan
                    C[j][i] = .nan
                    let value = combo.library(Self.library, C)
                    if value.isFinite { swallowed.append("\(combo.testDescription) with C[\(i)][\(j)] = NaN → \(value)") }
                }
            }
        }
        #expect(swallowed.isEmpty, "\(swallowed.count) finite results from NaN input: \(swallowed)")
    }

    // MARK: Level 4: the library's own quadrature against its closed forms

    /// erf integrands are entire, so the library's Gauss–Hermite route converges to the closed
    /// forms; how fast depends on the variances (σ' is narrower than the rule's weight): measured
    /// with 40 nodes per dimension, ≤ 2·10⁻¹⁰ at O(1) variances, 2·10⁻⁹ for slopePair at
    /// variances ≈ 2. The accepted deviation is the rule's own error estimate |Q₄₀ − Q₃₂| plus
    /// round-off, as in the product-rule test above: ~10⁻¹³ wherever the rule has converged. Four active fields cost 40⁴ = 2.6·10⁶ points
    /// (seconds in a debug build): there the pair is (20, 16). The default rules (64, 40, 20, 12)
    /// are measured on the same integrands and reported.
    @Test("level 4: library quadrature route against the erf closed forms")
    func libraryQuadratureAgainstClosedForms() {
        var worst: [String: Double] = [:], worstDefault: [String: Double] = [:]
        let s = Activation.erf
        let rules = [40, 32, 20, 16].map { GaussianExpectations(nodesPerDimension: $0) }
        for combo in Combo.all where combo.acts.allSatisfy({ $0 == .erf }) {
            for cov in CovarianceCase.all {
                let C = combo.localCovariance(cov.C)
                let L = choleskyLower(C)
                let fourActive = L.indices.allSatisfy { L[$0][$0] > 0 } && C.count == 4
                let (fine, coarse) = fourActive ? (rules[2], rules[3]) : (rules[0], rules[1])
                let closed = combo.library(Self.library, C)
                let fc = fieldCovariance(C)
                let integrand: (UnsafeBufferPointer<Double>) -> Double
                switch combo.shape {
                case .pair: integrand = { s.value($0[0]) * s.value($0[1]) }
                case .slopePair: integrand = { s.derivative($0[0]) * s.derivative($0[1]) }
                case .stein: integrand = { s.derivative($0[0]) * $0[1] * s.value($0[2]) }
                case .quartic: integrand = { s.derivative($0[0]) * s.derivative($0[1]) * s.value($0[2]) * s.value($0[3]) }
                }
                let q = fine.quadrature(fc, integrand)
                let estimate = abs(q - coarse.quadrature(fc, integrand))
                let error = abs(q - closed)
                let key = "\(combo.testDescription), \(fine.nodesByDimension[0]) nodes"
                worst[key] = max(worst[key] ?? 0, error)
                worstDefault[combo.testDescription] = max(worstDefault[combo.testDescription] ?? 0, abs(Self.library.quadrature(fc, integrand) - closed))
                #expect(error <= estimate + 1e-13, "\(combo.testDescription) on \(cov.name): quadrature \(q) vs closed form \(closed), |Δ| = \(error), estimate \(estimate)")
            }
        }
        print("[level 4] library quadrature vs erf closed forms: \(worst.sorted { $0.key < $1.key })")
        print("[level 4] library quadrature with the default rules (64, 40, 20, 12) vs erf closed forms: \(worstDefault.sorted { $0.key < $1.key })")
    }
}
