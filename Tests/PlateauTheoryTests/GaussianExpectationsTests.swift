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
//    adaptive Gauss–Kronrod (GSL qag) over u = L z, each level cut at the ReLU kinks it completes
//    and the innermost coordinate done in closed form; and, for the smooth all-erf quartic, a
//    Gauss–Hermite product rule assembled here from GSL's fixed Hermite nodes.
// 2. Against seeded Monte Carlo, accepted at 5 sample standard errors.
// 3. Special values: zero covariance, Q = I with M = 0, arcsine arguments at ±1, identical fields.
// 4. The library's own Gauss–Hermite route against its erf closed forms.

// MARK: - Integrands

/// Which function of a field a factor is: the activation's value σ(u) or its slope σ'(u).
enum FactorPart: Sendable { case value, slope }

/// One factor of a product integrand, read from `Activation` (the definitions the simulator uses).
struct Factor: Sendable {
    var field: Int
    var activation: Activation
    var part: FactorPart

    func callAsFunction(_ u: Double) -> Double {
        part == .value ? activation.value(u) : activation.derivative(u)
    }

    /// ReLU's value has a kink and its slope a jump at u = 0.
    var isKinked: Bool { activation == .relu }

    /// E[F(m + s z)], z ~ N(0, 1), in closed form (one-dimensional Gaussian integrals; these are
    /// elementary and used only for the innermost coordinate of the nested quadrature).
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
        }
    }
}

func normalPDF(_ x: Double) -> Double { Foundation.exp(-0.5 * x * x) / (2 * Double.pi).squareRoot() }
func normalCDF(_ x: Double) -> Double { 0.5 * Foundation.erfc(-x / 2.0.squareRoot()) }

/// C = L Lᵀ for a positive semidefinite C. A pivot below 1e-12 × the largest variance marks a
/// direction the fields do not span: its column of L stays zero and no integral runs over it.
func choleskyLower(_ C: [[Double]]) -> [[Double]] {
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
struct FieldLevels {
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

    /// All factors (at this level or deeper) whose field has a non-zero coefficient on `column`.
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

/// Reorders the fields so the last one carries a single factor, ReLU preferred: its coordinate is
/// then integrated in closed form (`Factor.gaussianMean`) and its kink costs no adaptive cut.
func innermostLastOrder(_ C: [[Double]], _ factors: [Factor]) -> ([[Double]], [Factor]) {
    let n = C.count
    func score(_ i: Int) -> Int {
        let own = factors.filter { $0.field == i }
        guard own.count == 1 else { return 0 }
        return own[0].isKinked ? 3 : (own[0].activation == .linear ? 2 : 1)
    }
    guard let last = (0..<n).max(by: { score($0) < score($1) }), score(last) > 0 else { return (C, factors) }
    let order = (0..<n).filter { $0 != last } + [last]
    let position = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($1, $0) })
    let permuted = order.map { i in order.map { j in C[i][j] } }
    return (permuted, factors.map { Factor(field: position[$0.field]!, activation: $0.activation, part: $0.part) })
}

// MARK: - Reference 1: nested adaptive quadrature (GSL qag)

enum GSLSetup {
    /// GSL aborts on error by default; every status is checked here instead.
    static let handlerOff: Bool = {
        _ = gsl_set_error_handler_off()
        return true
    }()
}

/// E[Π factors(u)] for u ~ N(0, C), by nested one-dimensional adaptive Gauss–Kronrod integration
/// over the standard-normal coordinates z of u = L z. Each level integrates φ(z) × (the factors its
/// coordinate completes) × (the inner integral) over [−12, 12] (the mass outside is 2·10⁻³³),
/// split at the kinks of those factors: every piece is then analytic, the inner integral being a
/// smooth function of the outer coordinates, so ReLU costs no accuracy. The innermost coordinate,
/// when it completes a single factor, is integrated in closed form.
final class NestedQuadrature {
    static let span = 12.0
    let epsabs: Double
    let epsrel: Double
    static let limit = 400

    private let fields: FieldLevels
    private var numeric: [FieldLevels.Level]
    private var innermost: (factor: Factor, column: Int)?
    private var z: [Double]
    private var features: [[(factor: Factor, coefficient: Double, width: Double)]] = []
    private var workspaces: [UnsafeMutablePointer<gsl_integration_workspace>] = []
    private var thunks: [Thunk] = []
    /// GSL statuses other than success (must stay empty).
    private(set) var failures: [String] = []
    private(set) var evaluations = 0

    /// The integrand of one level, reachable from a C callback through an opaque pointer.
    private final class Thunk {
        unowned let owner: NestedQuadrature
        let level: Int
        init(_ owner: NestedQuadrature, _ level: Int) { self.owner = owner; self.level = level }
    }

    init(_ covariance: [[Double]], _ factors: [Factor], epsabs: Double = 1e-13, epsrel: Double = 1e-12) {
        self.epsabs = epsabs
        self.epsrel = epsrel
        _ = GSLSetup.handlerOff
        // Constant factors (a linear slope) are dropped and the fields nothing else reads are
        // marginalised away (a sub-covariance), so no level integrates φ(z) × 1.
        let live = factors.filter { !($0.activation == .linear && $0.part == .slope) }
        let used = Array(Set(live.map(\.field))).sorted()
        let local = Dictionary(uniqueKeysWithValues: used.enumerated().map { ($1, $0) })
        let marginal = used.map { i in used.map { j in covariance[i][j] } }
        let (C, f) = innermostLastOrder(
            marginal, live.map { Factor(field: local[$0.field]!, activation: $0.activation, part: $0.part) })
        fields = FieldLevels(C, f)
        numeric = fields.levels
        if let last = numeric.last, last.factors.count == 1 {
            innermost = (last.factors[0], last.column)
            numeric.removeLast()
        }
        z = [Double](repeating: 0, count: C.count)
        // Every non-linear factor whose field involves a level's coordinate changes fastest around
        // the point b where its field's outer part vanishes, over a width w: the conditional spread
        // of the deeper coordinates plus the activation's own scale (0 for ReLU, 1 for erf), in
        // units of this coordinate's coefficient. w = 0 (a ReLU completed at this level) is a
        // kink: cut at b. A steep but smooth step (w ≪ 1: a nearly singular covariance or a large
        // variance) gets a geometric mesh b ± w·4ʲ, so that no Kronrod rule sees it only from a
        // distance and misses it.
        features = numeric.map { level in
            fields.factors(involving: level.column).filter { $0.activation != .linear }.map { f in
                let L = fields.L[f.field]
                var spread = f.activation == .erf ? 1.0 : 0.0
                for k in (level.column + 1)..<L.count { spread += L[k] * L[k] }
                return (f, L[level.column], spread.squareRoot() / abs(L[level.column]))
            }
        }
        for level in numeric.indices {
            workspaces.append(gsl_integration_workspace_alloc(Self.limit)!)
            thunks.append(Thunk(self, level))
        }
    }

    deinit { workspaces.forEach { gsl_integration_workspace_free($0) } }

    static func expectation(_ C: [[Double]], _ factors: [Factor]) -> (value: Double, failures: [String]) {
        let q = NestedQuadrature(C, factors)
        let v = q.run()
        return (v, q.failures)
    }

    func run() -> Double {
        fields.constant * (numeric.isEmpty ? innermostMean() : integrate(0))
    }

    private func innermostMean() -> Double {
        guard let (f, column) = innermost else { return 1 }
        return f.gaussianMean(fields.partialField(f.field, before: column, z), fields.L[f.field][column])
    }

    private func integrate(_ level: Int) -> Double {
        let column = numeric[level].column
        var cuts = [-Self.span, Self.span]
        for (f, coefficient, w) in features[level] {
            let b = -fields.partialField(f.field, before: column, z) / coefficient
            cuts.append(b)
            var step = w
            while step > 0 && step < 0.25 {
                cuts.append(b - step); cuts.append(b + step)
                step *= 4
            }
        }
        cuts = cuts.filter { abs($0) <= Self.span }
        cuts.sort()
        var function = gsl_function(
            function: { x, params in
                let thunk = Unmanaged<Thunk>.fromOpaque(params!).takeUnretainedValue()
                return thunk.owner.integrand(thunk.level, x)
            },
            params: Unmanaged.passUnretained(thunks[level]).toOpaque())
        var total = 0.0
        for (a, b) in zip(cuts, cuts.dropFirst()) where b > a {
            var result = 0.0, abserr = 0.0
            let status = gsl_integration_qag(
                &function, a, b, epsabs, epsrel, Self.limit, Int32(GSL_INTEG_GAUSS21),
                workspaces[level], &result, &abserr)
            if status != GSL_SUCCESS {
                failures.append("level \(level) on [\(a), \(b)]: \(String(cString: gsl_strerror(status))) (abserr \(abserr))")
            }
            total += result
        }
        return total
    }

    private func integrand(_ level: Int, _ x: Double) -> Double {
        evaluations += 1
        let column = numeric[level].column
        z[column] = x
        var p = normalPDF(x)
        for f in numeric[level].factors {
            p *= f(fields.partialField(f.field, before: column, z) + fields.L[f.field][column] * x)
            if p == 0 { return 0 }
        }
        return p * (level + 1 < numeric.count ? integrate(level + 1) : innermostMean())
    }
}

// MARK: - Reference 2: Gauss–Hermite product rule (smooth integrands only)

/// Nodes and weights of the n-point Gauss–Hermite rule for the standard normal density, from GSL's
/// fixed Hermite rule (weight e^{−x²/2}, weights summing to √(2π)).
func standardNormalHermiteRule(_ n: Int) -> (nodes: [Double], weights: [Double]) {
    _ = GSLSetup.handlerOff
    let w = gsl_integration_fixed_alloc(plateau_fixed_hermite(), n, 0, 0.5, 0, 0)!
    defer { gsl_integration_fixed_free(w) }
    let x = gsl_integration_fixed_nodes(w)!, wt = gsl_integration_fixed_weights(w)!
    let norm = (2 * Double.pi).squareRoot()
    return ((0..<n).map { x[$0] }, (0..<n).map { wt[$0] / norm })
}

/// E[Π factors(u)] by an n-point-per-dimension Gauss–Hermite product rule over the active
/// coordinates of u = L z (no closed-form step: a second, structurally different reference).
/// Exponentially convergent for the entire integrands of erf; not for ReLU kinks.
func gaussHermiteProduct(_ C: [[Double]], _ factors: [Factor], nodes n: Int) -> Double {
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

enum Shape: String, Sendable, CaseIterable {
    case pair, slopePair, stein, quartic

    /// The fields of a 4×4 test covariance each shape reads. Chosen so that the degenerate test
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
struct Combo: Sendable, CustomTestStringConvertible {
    var shape: Shape
    var acts: [Activation]

    static let all: [Combo] = {
        let a = Activation.allCases
        var list: [Combo] = []
        for shape in [Shape.pair, .slopePair, .stein] {
            for x in a { for y in a { list.append(Combo(shape: shape, acts: [x, y])) } }
        }
        for s in a { for f in a { for g in a { list.append(Combo(shape: .quartic, acts: [s, f, g])) } } }
        return list
    }()

    static func of(_ shape: Shape) -> [Combo] { all.filter { $0.shape == shape } }

    var testDescription: String { "\(shape.rawValue)(\(acts.map(\.rawValue).joined(separator: ", ")))" }

    /// The integrand on local field indices 0..<shape.fields.count.
    var factors: [Factor] {
        switch shape {
        case .pair: return [Factor(field: 0, activation: acts[0], part: .value), Factor(field: 1, activation: acts[1], part: .value)]
        case .slopePair: return [Factor(field: 0, activation: acts[0], part: .slope), Factor(field: 1, activation: acts[1], part: .slope)]
        case .stein:
            return [Factor(field: 0, activation: acts[0], part: .slope), Factor(field: 1, activation: .linear, part: .value),
                    Factor(field: 2, activation: acts[1], part: .value)]
        case .quartic:
            return [Factor(field: 0, activation: acts[0], part: .slope), Factor(field: 1, activation: acts[0], part: .slope),
                    Factor(field: 2, activation: acts[1], part: .value), Factor(field: 3, activation: acts[2], part: .value)]
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

    /// Sub-covariance of a 4×4 test covariance on this shape's fields.
    func localCovariance(_ C4: [[Double]]) -> [[Double]] {
        shape.fields.map { i in shape.fields.map { j in C4[i][j] } }
    }
}

func fieldCovariance(_ C: [[Double]]) -> FieldCovariance {
    var upper: [Double] = []
    for i in C.indices { for j in i..<C.count { upper.append(C[i][j]) } }
    return FieldCovariance(C.count, upper: upper)
}

// MARK: - Seeded randomness

/// SplitMix64 (Steele, Lea & Flood 2014): a small, explicit-seed generator for the tests.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var x = state
        x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
        x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
        return x ^ (x >> 31)
    }

    /// Uniform on the open interval (0, 1).
    mutating func uniform() -> Double { (Double(next() >> 11) + 0.5) * 0x1p-53 }

    /// Two independent standard normals (Box–Muller).
    mutating func normalPair() -> (Double, Double) {
        let r = (-2 * Foundation.log(uniform())).squareRoot(), t = 2 * Double.pi * uniform()
        return (r * Foundation.cos(t), r * Foundation.sin(t))
    }

    mutating func normal() -> Double { normalPair().0 }
}

/// A named 4×4 covariance of the fields (u₀, u₁, u₂, u₃).
struct CovarianceCase: Sendable, CustomTestStringConvertible {
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
        CovarianceCase(name: "Q = I, M = 0 (independent unit fields)", C: (0..<4).map { i in (0..<4).map { i == $0 ? 1.0 : 0.0 } }),
    ]
}

// MARK: - Tests

@Suite("Gaussian expectations: closed forms, quadrature and Monte Carlo")
struct GaussianExpectationsTests {
    static let library = GaussianExpectations()

    // MARK: Level 1: against independent deterministic quadrature

    /// Tolerance of a closed-form or Stein route against the nested quadrature: the reference is
    /// converged to ~10⁻¹³ per level (qag's error estimate |K21 − G10| is itself pessimistic) and
    /// every piece is analytic, so 10⁻⁹ (absolute, plus relative for large values) leaves three
    /// orders of margin for the near-singular covariances while catching any wrong constant.
    static let exactTolerance = 1e-9

    @Test("level 1: every route against nested adaptive quadrature", arguments: Combo.all)
    func againstNestedQuadrature(_ combo: Combo) {
        var worst = 0.0
        for cov in CovarianceCase.all {
            let C = combo.localCovariance(cov.C)
            let value = combo.library(Self.library, C)
            let (reference, failures) = NestedQuadrature.expectation(C, combo.factors)
            #expect(failures.isEmpty, "\(combo) on \(cov.name): GSL \(failures)")
            let error = abs(value - reference)
            worst = max(worst, error)
            let tolerance = Self.exactTolerance * (1 + abs(reference))
            #expect(error <= tolerance, "\(combo) [\(combo.route.rawValue)] on \(cov.name): library \(value), reference \(reference), |Δ| = \(error)")
        }
        print("[level 1] \(combo) [\(combo.route.rawValue)]: max |library − nested quadrature| = \(worst)")
    }
}

@Suite struct TmpTiming {
    @Test func timing() {
        for combo in [Combo(shape: .quartic, acts: [.relu, .erf, .erf]), Combo(shape: .quartic, acts: [.relu, .relu, .relu])] {
            for cov in CovarianceCase.all {
              for eps in [1e-8, 1e-10] {
                let C = combo.localCovariance(cov.C)
                let t0 = Date()
                let q = NestedQuadrature(C, combo.factors, epsabs: eps, epsrel: eps)
                let v = q.run()
                print("TIMING \(combo) \(cov.name) eps \(eps): \(Date().timeIntervalSince(t0)) s, evals \(q.evaluations), value \(v), fails \(q.failures.count)")
              }
            }
        }
    }
}
