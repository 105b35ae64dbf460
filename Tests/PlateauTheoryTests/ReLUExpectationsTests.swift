import CGSL
import Foundation
import PlateauCore
@testable import PlateauTheory
import Testing

// E[θ(u₁) θ(u₂) relu(u₃) relu(u₄)] and the four-field orthant probability (ReLUExpectations):
//
// (a) the orthant probability against exact values (identity 1/16, equicorrelation ½ → 1/5,
//     factorising block structures, a field independent of the rest), against an independent
//     one-dimensional quadrature for one-factor correlations Rᵢⱼ = λᵢλⱼ, and against seeded
//     Monte Carlo (10⁶ samples, 5 binomial standard errors);
// (b) the quartic against seeded Monte Carlo (2·10⁶ samples, 5 sample standard errors) on random
//     and degenerate covariances, and against independent deterministic routes: the one-factor
//     integral, u₁ ≡ … ≡ u₄ (c/2), independent fields, independent (θ, relu) pairs, and for
//     rank ≤ 3 an integral over the sphere in spherical coordinates;
// (c) continuity across the merging of coincident fields (ρ → 1) and on the approach to rank 3
//     and rank 2, where the library switches evaluation (extrapolation from R + εI, polar form).

// MARK: - Helpers (prefixed: the test module is shared with other files)

/// C = A Aᵀ.
private func reluGram(_ A: [[Double]]) -> [[Double]] {
    A.map { a in A.map { b in zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } } }
}

private func reluFieldCovariance(_ C: [[Double]]) -> FieldCovariance {
    var upper: [Double] = []
    for i in C.indices { for j in i..<C.count { upper.append(C[i][j]) } }
    return FieldCovariance(C.count, upper: upper)
}

private func reluPhi(_ x: Double) -> Double { 0.5 * Foundation.erfc(-x / 2.0.squareRoot()) }
private func reluDensity(_ x: Double) -> Double { Foundation.exp(-0.5 * x * x) / (2 * Double.pi).squareRoot() }

private enum ReLUTestGSL {
    static let handlerOff: Bool = {
        _ = gsl_set_error_handler_off()
        return true
    }()
}

/// xoshiro256** (Blackman & Vigna 2018) seeded by SplitMix64, with Box–Muller normals: a small,
/// explicit-seed generator kept in this file (the test module is shared with other files).
private struct ReLUTestRandom {
    var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    init(seed: UInt64) {
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitMix(); s1 = splitMix(); s2 = splitMix(); s3 = splitMix()
    }

    mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = s3 << 45 | s3 >> 19
        return result
    }

    /// Uniform on (0, 1).
    mutating func uniform() -> Double { (Double(next() >> 11) + 0.5) * 0x1p-53 }

    mutating func normalPair() -> (Double, Double) {
        let r = (-2 * Foundation.log(uniform())).squareRoot(), t = 2 * Double.pi * uniform()
        return (r * Foundation.cos(t), r * Foundation.sin(t))
    }
}

private final class ReLUClosureBox {
    let f: (Double) -> Double
    init(_ f: @escaping (Double) -> Double) { self.f = f }
}

/// ∫ₐᵇ f by GSL qag (61-point rule), independent of the library's integration.
private func reluIntegral(_ a: Double, _ b: Double, _ f: @escaping (Double) -> Double) -> (value: Double, status: Int32) {
    _ = ReLUTestGSL.handlerOff
    let workspace = gsl_integration_workspace_alloc(500)!
    defer { gsl_integration_workspace_free(workspace) }
    let box = ReLUClosureBox(f)
    return withExtendedLifetime(box) {
        var function = gsl_function(
            function: { x, p in Unmanaged<ReLUClosureBox>.fromOpaque(p!).takeUnretainedValue().f(x) },
            params: Unmanaged.passUnretained(box).toOpaque())
        var result = 0.0, error = 0.0
        let status = gsl_integration_qag(&function, a, b, 1e-15, 1e-13, 500, Int32(GSL_INTEG_GAUSS61), workspace, &result, &error)
        return (result, status)
    }
}

/// One-factor structure zᵢ = λᵢ w + σᵢ eᵢ (σᵢ = √(1 − λᵢ²), |λᵢ| < 1), u = scaleᵢ zᵢ: given w the
/// fields are independent, so
///   P(z > 0) = ∫ φ(w) Πᵢ Φ(λᵢw/σᵢ) dw,
///   E[θθ relu relu] = s₃s₄ ∫ φ(w) Φ(λ₁w/σ₁) Φ(λ₂w/σ₂) m₃(w) m₄(w) dw, m(w) = μΦ(μ/σ) + σφ(μ/σ), μ = λw.
private enum OneFactor {
    static func covariance(_ lambda: [Double], _ scale: [Double]) -> [[Double]] {
        (0..<4).map { (i: Int) -> [Double] in
            (0..<4).map { (j: Int) -> Double in
                let correlation: Double = i == j ? 1 : lambda[i] * lambda[j]
                return scale[i] * scale[j] * correlation
            }
        }
    }

    static func orthant(_ lambda: [Double]) -> Double {
        let sigma = lambda.map { (1 - $0 * $0).squareRoot() }
        let r = reluIntegral(-12, 12) { w in
            var p = reluDensity(w)
            for i in 0..<lambda.count { p *= reluPhi(lambda[i] * w / sigma[i]) }
            return p
        }
        #expect(r.status == GSL_SUCCESS)
        return r.value
    }

    static func quartic(_ lambda: [Double], _ scale: [Double]) -> Double {
        let sigma = lambda.map { (1 - $0 * $0).squareRoot() }
        func m(_ i: Int, _ w: Double) -> Double {
            let mu = lambda[i] * w
            return mu * reluPhi(mu / sigma[i]) + sigma[i] * reluDensity(mu / sigma[i])
        }
        let r = reluIntegral(-12, 12) { w in
            reluDensity(w) * reluPhi(lambda[0] * w / sigma[0]) * reluPhi(lambda[1] * w / sigma[1]) * m(2, w) * m(3, w)
        }
        #expect(r.status == GSL_SUCCESS)
        return scale[2] * scale[3] * r.value
    }
}

/// Fields of rank ≤ 3, u = A w with A 4 × 3 (or 4 × 2, padded) and w ~ N(0, I₃): in spherical
/// coordinates w = r·n the radial integral is ∫₀^∞ r⁴ e^{−r²/2} dr / (2π)^{3/2} = 3/(4π), so
///   E[θθ relu relu] = (3/4π) ∫_{S²} 1{aᵢ·n > 0 ∀i} (a₃·n)(a₄·n) dΩ.
/// For each azimuth φ the constraints aᵢ·n = sin ϑ (pᵢ + qᵢ cot ϑ) > 0 (pᵢ = a_x cos φ + a_y sin φ,
/// qᵢ = a_z) cut an interval of cot ϑ, over which the polar integral is elementary; the azimuth is
/// integrated by GSL qag (the integrand has kinks where the active constraint changes, which the
/// adaptive bisection resolves). Independent of the Stein/Plackett reduction.
private enum SphericalReference {
    static func quartic(_ A: [[Double]]) -> Double {
        precondition(A.allSatisfy { $0.count <= 3 })
        let a = A.map { $0.count == 3 ? $0 : $0 + [Double](repeating: 0, count: 3 - $0.count) }
        let polar: (Double) -> Double = { phi in
            let c = Foundation.cos(phi), s = Foundation.sin(phi)
            let p = a.map { $0[0] * c + $0[1] * s }, q = a.map { $0[2] }
            var lo = -Double.infinity, hi = Double.infinity
            for i in 0..<4 {
                if q[i] > 0 { lo = max(lo, -p[i] / q[i]) }
                else if q[i] < 0 { hi = min(hi, -p[i] / q[i]) }
                else if p[i] <= 0 { return 0 }
            }
            if lo >= hi { return 0 }
            // cot ϑ ∈ (lo, hi) ⇔ ϑ ∈ (atan2(1, hi), atan2(1, lo)).
            let t1 = Foundation.atan2(1, hi), t2 = Foundation.atan2(1, lo)
            // ∫ (p₃ sin + q₃ cos)(p₄ sin + q₄ cos) sin dϑ.
            func antiderivative(_ t: Double) -> Double {
                let st = Foundation.sin(t), ct = Foundation.cos(t)
                return p[2] * p[3] * (-ct + ct * ct * ct / 3) + (p[2] * q[3] + q[2] * p[3]) * st * st * st / 3 - q[2] * q[3] * ct * ct * ct / 3
            }
            return antiderivative(t2) - antiderivative(t1)
        }
        // Cut the azimuth where the integrand has kinks or jumps: where a constraint's pᵢ
        // vanishes (qᵢ = 0: a jump) and where two bounds −pᵢ/qᵢ, −pⱼ/qⱼ cross (pᵢqⱼ = pⱼqᵢ), plus
        // a uniform grid of 16; each piece is smooth and integrated adaptively.
        var cuts = (0...16).map { 2 * Double.pi * Double($0) / 16 }
        func addZeros(_ x: Double, _ y: Double) {  // x cos φ + y sin φ = 0
            guard x != 0 || y != 0 else { return }
            var phi = Foundation.atan2(-x, y)
            if phi < 0 { phi += Double.pi }
            cuts += [phi, phi + Double.pi]
        }
        for i in 0..<4 {
            addZeros(a[i][0], a[i][1])
            for j in (i + 1)..<4 { addZeros(a[i][0] * a[j][2] - a[j][0] * a[i][2], a[i][1] * a[j][2] - a[j][1] * a[i][2]) }
        }
        cuts.sort()
        var total = 0.0
        for k in 1..<cuts.count where cuts[k] > cuts[k - 1] {
            let r = reluIntegral(cuts[k - 1], cuts[k], polar)
            #expect(r.status == GSL_SUCCESS)
            total += r.value
        }
        return 3 / (4 * Double.pi) * total
    }
}

/// Seeded Monte Carlo with u = A z (A is 4 × k, z ~ N(0, I_k) from `ReLUTestRandom`):
/// mean deviations of θθ·relu·relu and of 1{u > 0} from the centres, with standard errors (the
/// quartic's from the sample variance, the orthant's binomial from the centre).
private func reluMonteCarlo(_ A: [[Double]], samples: Int, seed: UInt64, quarticCentre: Double, orthantCentre: Double)
    -> (quartic: (deviation: Double, se: Double), orthant: (deviation: Double, se: Double))
{
    var rng = ReLUTestRandom(seed: seed)
    let k = A[0].count
    let flat = A.flatMap { $0 }
    var sum = 0.0, squares = 0.0, hits = 0
    var z = [Double](repeating: 0, count: k)
    flat.withUnsafeBufferPointer { a in
        z.withUnsafeMutableBufferPointer { z in
            for _ in 0..<samples {
                var c = 0
                while c < k {
                    let (x, y) = rng.normalPair()
                    z[c] = x
                    if c + 1 < k { z[c + 1] = y }
                    c += 2
                }
                var u0 = 0.0, u1 = 0.0, u2 = 0.0, u3 = 0.0
                for c in 0..<k {
                    let x = z[c]
                    u0 += a[c] * x
                    u1 += a[k + c] * x
                    u2 += a[2 * k + c] * x
                    u3 += a[3 * k + c] * x
                }
                var h = 0.0
                if u0 > 0 && u1 > 0 && u2 > 0 && u3 > 0 {
                    h = u2 * u3
                    hits += 1
                }
                let d = h - quarticCentre
                sum += d
                squares += d * d
            }
        }
    }
    let n = Double(samples)
    let mean = sum / n
    let variance = max(0, (squares - n * mean * mean) / (n - 1))
    let p = max(0, min(1, orthantCentre))
    return ((mean, (variance / n).squareRoot()), (Double(hits) / n - orthantCentre, (p * (1 - p) / n).squareRoot()))
}

/// A seeded 4 × k factor with N(0, scale²) entries (SplitMix64 + Box–Muller).
private func reluRandomFactor(seed: UInt64, columns: Int, scale: Double) -> [[Double]] {
    var state = seed
    func next() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var x = state
        x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
        x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
        return (Double((x ^ (x >> 31)) >> 11) + 0.5) * 0x1p-53
    }
    func normal() -> Double { (-2 * Foundation.log(next())).squareRoot() * Foundation.cos(2 * Double.pi * next()) }
    return (0..<4).map { _ in (0..<columns).map { _ in scale * normal() } }
}

/// A named factor A (u = A z) for the Monte Carlo cases.
private struct ReLUCase: Sendable, CustomTestStringConvertible {
    var name: String
    var A: [[Double]]
    var testDescription: String { name }

    static let random4 = ReLUCase(name: "random A·Aᵀ 4×4", A: reluRandomFactor(seed: 0x12E1_0001, columns: 4, scale: 0.7))
    static let random8 = ReLUCase(name: "random A·Aᵀ 4×8", A: reluRandomFactor(seed: 0x12E1_0002, columns: 8, scale: 0.5))

    static let rank3 = ReLUCase(name: "rank 3 (4×3)", A: reluRandomFactor(seed: 0x12E1_0004, columns: 3, scale: 0.8))
    static let rank3Sum: ReLUCase = {
        let r = random4.A
        return ReLUCase(name: "rank 3, u₄ = u₁ + u₂", A: [r[0], r[1], r[2], zip(r[0], r[1]).map { $0 + $1 }])
    }()
    /// Four random directions in a plane: here the orthant is empty (MC: no hit), value 0.
    static let rank2Empty = ReLUCase(name: "rank 2 (4×2), empty orthant", A: reluRandomFactor(seed: 0x12E1_0005, columns: 2, scale: 1))
    static let rank2Wedges = ReLUCase(name: "rank 2, two positive wedges", A: [[1, 0.1], [1, -0.3], [0.9, 0.5], [1.2, -0.1]])

    /// The Monte Carlo cases (the other degenerate structures — u₃ ≡ u₄, u₂ ≡ u₄, u₄ = u₁ + u₂, an
    /// empty rank-2 orthant — are checked against deterministic references).
    static var all: [ReLUCase] {
        let r = random4.A
        return [
            random4,
            random8,
            ReLUCase(name: "random A·Aᵀ 4×4, large variances", A: reluRandomFactor(seed: 0x12E1_0003, columns: 4, scale: 3)),
            // Degenerate structures built from the rows of a random factor.
            ReLUCase(name: "u₁ ≡ u₂", A: [r[0], r[0], r[2], r[3]]),
            ReLUCase(name: "u₁ ≡ u₃", A: [r[0], r[1], r[0], r[3]]),
            ReLUCase(name: "ρ₁₂ = 1 − 10⁻⁹ (u₂ = u₁ + small)", A: [[1, 0, 0, 0], [1, 4.47e-5, 0, 0], r[2], r[3]]),
            rank3,
            rank3Sum,
            rank2Wedges,
        ]
    }
}

// MARK: - Tests

@Suite("ReLU quartic E[θθ relu relu] and the four-field orthant probability")
struct ReLUExpectationsTests {
    static let E = GaussianExpectations()

    static func orthant(_ C: [[Double]]) -> Double { ReLUExpectations.orthantProbability(reluFieldCovariance(C)) }
    static func quartic(_ C: [[Double]]) -> Double { E.quartic(.relu, .relu, .relu, reluFieldCovariance(C)) }

    static func equicorrelated(_ rho: Double) -> [[Double]] {
        (0..<4).map { i in (0..<4).map { j in i == j ? 1 : rho } }
    }

    // MARK: (a) orthant probability

    @Test("(a) orthant: identity 1/16, equicorrelation ½ → 1/5, factorising blocks, an independent field")
    func orthantExactValues() {
        var worst = 0.0
        func check(_ value: Double, _ expected: Double, _ what: String, tolerance: Double = 1e-13) {
            worst = max(worst, abs(value - expected))
            #expect(abs(value - expected) <= tolerance, "\(what): \(value) vs \(expected), |Δ| = \(abs(value - expected))")
        }
        check(Self.orthant(Self.equicorrelated(0)), 1.0 / 16, "identity")
        // zᵢ = (eᵢ − e₀)/√2: P(e₀ is the smallest of five) = 1/5.
        check(Self.orthant(Self.equicorrelated(0.5)), 0.2, "equicorrelation ½")
        // Direct Plackett integral (no merging, no reduction) on the same matrix.
        check(ReLUExpectations.plackettOrthant4(.init(4, upper: [1, 0.5, 0.5, 0.5, 1, 0.5, 0.5, 1, 0.5, 1])), 0.2, "Plackett, equicorrelation ½")
        // Two independent correlated pairs.
        let sheppard = { (r: Double) in 0.25 + Foundation.asin(r) / (2 * Double.pi) }
        for (a, b) in [(0.3, -0.6), (0.9, 0.95), (-0.99, 0.2), (0.999999, -0.5)] {
            let blocks = [[1, a, 0, 0], [a, 1, 0, 0], [0, 0, 1, b], [0, 0, b, 1]]
            check(Self.orthant(blocks), sheppard(a) * sheppard(b), "blocks (\(a), \(b)) as (12)(34)")
            // The same blocks as (13)(24): fields permuted.
            let permuted = [[1, 0, a, 0], [0, 1, 0, b], [a, 0, 1, 0], [0, b, 0, 1]]
            check(Self.orthant(permuted), sheppard(a) * sheppard(b), "blocks (\(a), \(b)) as (13)(24)")
        }
        // A field independent of a correlated triple: ½ P₃ (Sheppard's trivariate form).
        let (x, y, z) = (0.4, -0.3, 0.55)
        let triple = 0.125 + (Foundation.asin(x) + Foundation.asin(y) + Foundation.asin(z)) / (4 * Double.pi)
        check(Self.orthant([[1, x, y, 0], [x, 1, z, 0], [y, z, 1, 0], [0, 0, 0, 2.5]]), 0.5 * triple, "independent fourth field")
        // Coincident and anti-coincident fields: u₁ ≡ u₂ → P₃; u₂ = −u₁ → 0.
        check(Self.orthant([[1, 1, x, y], [1, 1, x, y], [x, x, 1, z], [y, y, z, 1]]), triple, "u₁ ≡ u₂")
        check(Self.orthant([[1, -1, x, y], [-1, 1, -x, -y], [x, -x, 1, z], [y, -y, z, 1]]), 0, "u₂ = −u₁")
        print("[orthant exact] max |Δ| = \(worst)")
    }

    @Test("(a) orthant: one-factor correlations Rᵢⱼ = λᵢλⱼ against an independent 1D quadrature")
    func orthantOneFactor() {
        var worst = 0.0
        for lambda in [[0.5, 0.5, 0.5, 0.5].map { $0.squareRoot() }, [0.9, 0.3, -0.6, 0.7], [0.99, -0.95, 0.2, 0.999], [-0.1, 0.05, 0.8, -0.85],
                       [0.999999, 0.999999, 0.3, -0.2]] {
            let value = Self.orthant(OneFactor.covariance(lambda, [1, 1, 1, 1]))
            let reference = OneFactor.orthant(lambda)
            worst = max(worst, abs(value - reference))
            #expect(abs(value - reference) <= 1e-12, "λ = \(lambda): \(value) vs \(reference)")
        }
        print("[orthant one-factor] max |Δ| = \(worst)")
    }

    @Test("(a) orthant: against seeded Monte Carlo (10⁶ samples, 5 binomial SE)")
    func orthantMonteCarlo() {
        var worstZ = 0.0
        for (index, c) in [ReLUCase.random4, ReLUCase.random8, ReLUCase.rank3, ReLUCase.rank2Empty].enumerated() {
            let C = reluGram(c.A)
            let p = Self.orthant(C)
            let mc = reluMonteCarlo(c.A, samples: 1_000_000, seed: 0xAB00 + UInt64(index), quarticCentre: 0, orthantCentre: p).orthant
            worstZ = max(worstZ, abs(mc.deviation) / mc.se)
            // (SE = 0 for an empty orthant: then P must be 0 to round-off.)
            #expect(abs(mc.deviation) <= 5 * mc.se + 1e-14, "\(c.name): P = \(p), MC \(p + mc.deviation) ± \(mc.se)")
        }
        print("[orthant MC] max |z| = \(worstZ)")
    }

    // MARK: (b) quartic

    @Test("(b) quartic against seeded Monte Carlo (2·10⁶ samples, 5 SE)", arguments: ReLUCase.all)
    fileprivate func quarticMonteCarlo(_ c: ReLUCase) {
        let C = reluGram(c.A)
        let value = Self.quartic(C)
        #expect(GaussianExpectations.quarticRoute(.relu, .relu, .relu) == .closedForm)
        let mc = reluMonteCarlo(c.A, samples: 2_000_000, seed: c.name.utf8.reduce(7) { $0 &* 31 &+ UInt64($1) },
                                quarticCentre: value, orthantCentre: Self.orthant(C))
        #expect(value.isFinite && value >= 0, "\(c.name): \(value)")
        #expect(abs(mc.quartic.deviation) <= 5 * mc.quartic.se + 1e-14, "\(c.name): library \(value), MC \(value + mc.quartic.deviation) ± \(mc.quartic.se)")
        #expect(abs(mc.orthant.deviation) <= 5 * mc.orthant.se + 1e-14, "\(c.name): orthant MC off by \(mc.orthant.deviation) ± \(mc.orthant.se)")
        print("[quartic MC] \(c.name): value \(value), MC − value = \(mc.quartic.deviation) ± \(mc.quartic.se) (z = \(mc.quartic.deviation / mc.quartic.se))")
    }

    @Test("(b) quartic: the default 12-node Gauss–Hermite route was off by several per cent")
    func quarticAgainstOldQuadrature() {
        let C = reluGram(ReLUCase.random4.A)
        let exact = Self.quartic(C)
        let quadrature = Self.E.quadrature(reluFieldCovariance(C)) { u in
            Activation.relu.derivative(u[0]) * Activation.relu.derivative(u[1]) * Activation.relu.value(u[2]) * Activation.relu.value(u[3])
        }
        print("[quartic vs GH] exact \(exact), 12-node Gauss–Hermite \(quadrature), relative gap \((quadrature - exact) / exact)")
        #expect(abs(quadrature - exact) / exact < 0.2)
    }

    @Test("(b) quartic against independent deterministic routes")
    func quarticDeterministic() {
        var worst = 0.0
        func check(_ value: Double, _ expected: Double, _ what: String, tolerance: Double = 1e-12) {
            worst = max(worst, abs(value - expected))
            #expect(abs(value - expected) <= tolerance * (1 + abs(expected)), "\(what): \(value) vs \(expected), |Δ| = \(abs(value - expected))")
        }
        // u₁ ≡ u₂ ≡ u₃ ≡ u₄ of variance c: E[relu(u)²] = c/2 (also with different scales: s₃s₄/2).
        for c in [0.3, 1, 7.5] {
            check(Self.quartic([[Double]](repeating: [Double](repeating: c, count: 4), count: 4)), c / 2, "all identical, c = \(c)")
        }
        let scales = [0.5, 2.0, 1.5, 0.8]
        check(Self.quartic(OneFactor.covariance([1, 1, 1, 1], scales).map { $0.map { $0 } }), scales[2] * scales[3] / 2, "all proportional")
        // Independent fields: ¼ · (√c₃/√(2π)) · (√c₄/√(2π)) = √(c₃c₄)/(8π).
        check(Self.quartic([[0.5, 0, 0, 0], [0, 1.5, 0, 0], [0, 0, 0.9, 0], [0, 0, 0, 2]]), (0.9 * 2.0).squareRoot() / (8 * Double.pi), "independent")
        // (u₁, u₃) independent of (u₂, u₄): E[θ(x) relu(y)] = √c_y (1 + ρ)/(2√(2π)) per pair.
        for (a, b) in [(0.3, -0.7), (0.95, 0.1), (-0.999, 0.5)] {
            let C = [[1, 0, 2 * a, 0], [0, 1, 0, 3 * b], [2 * a, 0, 4, 0], [0, 3 * b, 0, 9]]
            let expected = (2 * (1 + a) / (2 * (2 * Double.pi).squareRoot())) * (3 * (1 + b) / (2 * (2 * Double.pi).squareRoot()))
            check(Self.quartic(C), expected, "pairs (13)(24), ρ = (\(a), \(b))")
        }
        // One-factor covariances against the 1D quadrature.
        for (lambda, s) in [([0.5, 0.5, 0.5, 0.5].map { $0.squareRoot() }, [1.0, 1, 1, 1]), ([0.9, 0.3, -0.6, 0.7], [0.7, 1.3, 2.0, 0.4]),
                            ([0.99, -0.95, 0.2, 0.999], [1, 1, 3, 1]), ([-0.1, 0.05, 0.8, -0.85], [2, 1, 1, 1]),
                            ([0.999999, 0.999999, 0.3, -0.2], [1, 1, 1, 1]), ([0.3, 0.4, 0.999999, 0.999999], [1, 1, 1, 2])] {
            check(Self.quartic(OneFactor.covariance(lambda, s)), OneFactor.quartic(lambda, s), "one factor λ = \(lambda), scales \(s)")
        }
        print("[quartic deterministic] max |Δ| = \(worst)")
    }

    /// Rank ≤ 3 against the spherical-coordinates reference: exactly singular covariances, where
    /// the four-field Stein terms are evaluated by extrapolation from R + εI (rank 3) or by the
    /// polar formula (rank 2), and merged coincident fields.
    @Test("(b) quartic: rank ≤ 3 against an independent spherical-coordinates quadrature")
    func quarticRankDeficient() {
        let b = reluRandomFactor(seed: 0x12E1_0006, columns: 3, scale: 0.9)
        let plus = zip(b[0], b[1]).map { $0 + $1 }, combination = zip(b[0], b[2]).map { $0 - 0.5 * $1 }
        let cases: [(String, [[Double]])] = [
            (ReLUCase.rank3.name, ReLUCase.rank3.A),
            ("rank 3, another seed", reluRandomFactor(seed: 0x12E1_0007, columns: 3, scale: 1.2)),
            ("rank 3, u₄ = u₁ + u₂", [b[0], b[1], b[2], plus]),
            ("rank 3, u₃ = u₁ − ½u₃'", [b[0], b[1], combination, b[2]]),
            ("rank 3, u₁ ≡ u₂", [b[0], b[0], b[1], b[2]]),
            ("rank 3, u₂ ≡ u₄", [b[0], b[1], b[2], b[1]]),
            ("rank 3, u₃ ≡ u₄", [b[0], b[1], b[2], b[2]]),
            (ReLUCase.rank2Wedges.name, ReLUCase.rank2Wedges.A),
            ("rank 2, u₁ ≡ u₃", [[1, 0.1], [1, -0.3], [1, 0.1], [1.2, -0.1]]),
            (ReLUCase.rank2Empty.name, ReLUCase.rank2Empty.A),
        ]
        var worst = 0.0
        for (name, A) in cases {
            let value = Self.quartic(reluGram(A))
            let reference = SphericalReference.quartic(A)
            worst = max(worst, abs(value - reference))
            #expect(abs(value - reference) <= 1e-11 * (1 + abs(reference)), "\(name): \(value) vs spherical \(reference), |Δ| = \(abs(value - reference))")
            print("[quartic spherical] \(name): \(value), |Δ| = \(abs(value - reference))")
        }
        print("[quartic spherical] max |Δ| = \(worst)")
    }

    @Test("(b) quartic: zero variance, anti-identical fields, NaN")
    func quarticSpecialInputs() {
        let C = reluGram(ReLUCase.random4.A)
        for i in 0..<4 {
            var Z = C
            for j in 0..<4 { Z[i][j] = 0; Z[j][i] = 0 }
            #expect(Self.quartic(Z) == 0, "u\(i + 1) ≡ 0")
            #expect(Self.orthant(Z) == 0, "u\(i + 1) ≡ 0 (orthant)")
        }
        var anti = C
        for j in 0..<4 { anti[1][j] = -C[0][j]; anti[j][1] = -C[j][0] }
        anti[1][1] = C[0][0]
        #expect(Self.quartic(anti) == 0, "u₂ = −u₁")
        var nan = C
        nan[0][3] = .nan
        nan[3][0] = .nan
        #expect(Self.quartic(nan).isNaN)
        #expect(Self.quartic([[Double]](repeating: [0, 0, 0, 0], count: 4)) == 0)
    }

    // MARK: (c) continuity at coincident fields

    @Test("(c) continuity: ρ → 1 approaches the merged (exactly coincident) value")
    func continuityAtCoincidence() {
        let r = ReLUCase.random4.A
        // u_j = u_i + ε w (w orthogonal to everything else in a fifth column): ρ_ij = 1 − O(ε²).
        func factor(_ i: Int, _ j: Int, _ epsilon: Double) -> [[Double]] {
            var A = r.map { $0 + [0] }
            A[j] = A[i]
            A[j][4] = epsilon * (A[i].reduce(0) { $0 + $1 * $1 }).squareRoot()
            return A
        }
        var report: [String] = []
        for (i, j) in [(0, 1), (0, 2), (2, 3), (1, 3)] {
            let exact = Self.quartic(reluGram(factor(i, j, 0)))
            var previous = Double.infinity
            for epsilon in [1e-3, 1e-4, 4.47e-5, 1e-5, 1e-6, 1.5e-6, 1.3e-6] {
                // 1 − ρ ≈ ε²/2: 5·10⁻⁷, 5·10⁻⁹, 10⁻⁹, 5·10⁻¹¹, 5·10⁻¹³ (merged) and either side of 10⁻¹².
                let C = reluGram(factor(i, j, epsilon))
                let value = Self.quartic(C)
                let oneMinusRho = 1 - C[i][j] / (C[i][i] * C[j][j]).squareRoot()
                let gap = abs(value - exact)
                // The gap is O(√(1 − ρ)) (the mass of θ(uᵢ) ≠ θ(u_j)): require it below √(1 − ρ).
                #expect(gap <= oneMinusRho.squareRoot() + 1e-12, "u\(i + 1), u\(j + 1) at 1 − ρ = \(oneMinusRho): \(value) vs \(exact)")
                if epsilon <= 1e-4 { previous = min(previous, gap) }
                report.append("(\(i + 1)\(j + 1)) 1−ρ=\(String(format: "%.1e", oneMinusRho)) gap \(String(format: "%.2e", gap))")
            }
            // At 1 − ρ = 10⁻⁹ the values agree to ~10⁻⁶ (·√2·ρ-dependent constant).
            let C9 = reluGram(factor(i, j, 4.47e-5))
            #expect(abs(Self.quartic(C9) - exact) <= 1e-5, "u\(i + 1), u\(j + 1) at 1 − ρ = 10⁻⁹")
        }
        print("[continuity] " + report.joined(separator: "; "))
    }

    @Test("(c) continuity: rank 2 (polar route) against nearby rank-4 covariances (Stein route)")
    func continuityAtRankTwo() {
        let base = ReLUCase.rank2Wedges.A
        let exact = Self.quartic(reluGram(base))
        var report: [String] = []
        for epsilon in [1e-2, 1e-3, 1e-4, 1e-5] {
            var A = base.map { $0 + [0, 0] }
            A[1][2] = epsilon
            A[3][3] = epsilon
            let value = Self.quartic(reluGram(A))
            report.append("ε=\(epsilon): |Δ| = \(abs(value - exact))")
            #expect(abs(value - exact) <= 10 * epsilon, "ε = \(epsilon): \(value) vs \(exact)")
        }
        print("[continuity rank 2] exact \(exact); " + report.joined(separator: "; "))
    }

    /// Approaching a rank deficiency along R_ε = (1 − ε)R + εI the expectation is smooth (linear
    /// in ε, no √ε term), so F(ε) − F(0) − εF'(0) (F'(0) from ε = 10⁻⁶) stays at the curvature
    /// (~10⁻¹³) and round-off from ε = 10⁻⁷ down to 10⁻¹⁴, through the thresholds of the
    /// extrapolated (smallest pivot < 10⁻⁶) and polar (third pivot ≤ 10⁻¹²) evaluations. A √ε
    /// term, or the direct Stein terms' round-off near singularity (10⁻⁹), would show here.
    @Test("(c) continuity: smooth approach to rank 3 and rank 2")
    func continuityAtRankDeficiency() {
        var worst = 0.0
        for A in [ReLUCase.rank3.A, ReLUCase.rank3Sum.A, ReLUCase.rank2Wedges.A, reluRandomFactor(seed: 0x12E1_0008, columns: 2, scale: 1)] {
            let C = reluGram(A)
            func at(_ e: Double) -> Double {
                Self.quartic(C.indices.map { i in C.indices.map { j in i == j ? C[i][j] : (1 - e) * C[i][j] } })
            }
            let f0 = at(0)
            let slope = (at(1e-6) - f0) / 1e-6
            for e in [1e-7, 3e-8, 1e-8, 3e-9, 1e-9, 3e-10, 1e-10, 1e-11, 1e-12, 3e-13, 1e-13, 1e-14] {
                let deviation = abs(at(e) - f0 - slope * e)
                worst = max(worst, deviation)
                #expect(deviation <= 1e-10, "ε = \(e): F(ε) − F(0) − εF' = \(deviation)")
            }
        }
        print("[continuity rank deficiency] max |F(ε) − F(0) − εF'(0)| = \(worst)")
    }

    @Test("timing: quartic per call (this build)")
    func timing() {
        let covariances = ReLUCase.all.prefix(3).map { reluFieldCovariance(reluGram($0.A)) }
        let n = 500
        var sink = 0.0
        let start = Date()
        for k in 0..<n { sink += ReLUExpectations.slopeSlopeReluRelu(covariances[k % covariances.count]) }
        let perCall = Date().timeIntervalSince(start) / Double(n)
        print("[timing] quartic(relu, relu, relu): \(perCall * 1e6) µs per call (sink \(sink))")
        #expect(sink.isFinite)
    }
}

