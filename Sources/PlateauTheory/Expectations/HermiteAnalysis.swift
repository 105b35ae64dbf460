internal import CGSL
import Foundation
import PlateauCore

/// The Hermite structure of a link g(z₁, …, z_k) (or of an activation, k = 1), z ~ N(0, I_k):
/// coefficients c_α = E[g(z) He_α(z)] / α! in the probabilists' Hermite basis He_α = Π_r He_{α_r}(z_r),
/// the information exponent (k = 1: the smallest n ≥ 1 with c_n ≠ 0), the directions with a
/// first-order component (E[g z_r] ≠ 0: learned at once, the trivial subspace), and the leap
/// structure (Abbe, Boix-Adserà & Misiakiewicz 2023): the greedy order in which coordinates become
/// reachable when a coefficient c_α ≠ 0 adds supp(α) to the learned set, and the leap, the largest
/// number of new coordinates one such step needs.
///
/// Numerics: k = 1 uses GSL's adaptive integration on (−∞, ∞) (`qagi`, relative error 1e-11),
/// which copes with kinks and jumps; k ≥ 2 uses Gauss–Hermite product rules at two node counts, and
/// the difference of the two is each coefficient's error estimate. A coefficient counts as non-zero
/// when it exceeds both 10× its error estimate and `relativeThreshold`·‖g‖.
public struct HermiteStructure: Sendable {
    public var k: Int
    public var maxDegree: Int
    /// c_α for every multi-index with 1 ≤ |α| ≤ maxDegree (and α = 0: the mean).
    public var coefficients: [[Int]: Double]
    public var errors: [[Int]: Double]
    /// ‖g‖² = E[g²] = Σ_α α! c_α² (all degrees).
    public var normSquared: Double
    public var nonZero: Set<[Int]>
    /// k = 1: the smallest n ≥ 1 with c_n ≠ 0 (nil when none up to maxDegree).
    public var informationExponent: Int?
    /// Coordinates r (1-based) with c_{e_r} = E[g z_r] ≠ 0.
    public var firstOrderDirections: [Int]
    /// Greedy learning order: the coordinates (1-based) each step adds.
    public var learningSteps: [[Int]]
    /// The largest step; nil when g has no non-constant component up to maxDegree.
    public var leap: Int? { learningSteps.map(\.count).max() }

    /// A text summary for `plateau describe`.
    public var summary: String {
        var s = ""
        if k == 1 {
            s += "information exponent: " + (informationExponent.map(String.init) ?? "none up to degree \(maxDegree)") + "\n"
            s += "Hermite coefficients c_n = E[g He_n]/n!:\n"
            for n in 0...maxDegree {
                let c = coefficients[[n]] ?? 0
                let label = n == 0 ? "  (the mean)" : nonZero.contains([n]) ? "" : "  (zero)"
                s += String(format: "  n = %d: % .10f%@\n", n, c, label)
            }
        } else {
            s += "first-order directions (E[g z_r] ≠ 0): " + (firstOrderDirections.isEmpty ? "none" : firstOrderDirections.map { "z\($0)" }.joined(separator: ", ")) + "\n"
            s += "learning order (greedy): " + (learningSteps.isEmpty ? "nothing to learn up to degree \(maxDegree)" : learningSteps.map { "{" + $0.map { "z\($0)" }.joined(separator: ", ") + "}" }.joined(separator: " → ")) + "\n"
            s += "leap: " + (leap.map(String.init) ?? "none") + "\n"
            s += "non-zero Hermite coefficients (|α| ≤ \(maxDegree)):\n"
            for alpha in nonZero.sorted(by: { ($0.reduce(0, +), $0.lexicographicallyPrecedes($1) ? 0 : 1) < ($1.reduce(0, +), 0) }) {
                s += "  He" + alpha.map(String.init).joined(separator: ",") + String(format: ": % .8f\n", coefficients[alpha] ?? 0)
            }
        }
        s += String(format: "E[g²] = %.10g, explained by |α| ≤ %d: %.10g\n", normSquared, maxDegree,
                    coefficients.reduce(0.0) { acc, e in acc + e.key.reduce(1.0) { $0 * factorial($1) } * e.value * e.value })
        return s
    }
}

func factorial(_ n: Int) -> Double { n <= 1 ? 1 : (2...n).reduce(1.0) { $0 * Double($1) } }

/// Probabilists' Hermite polynomials He_0…He_n at x (three-term recurrence).
func hermiteValues(_ x: Double, upTo n: Int) -> [Double] {
    var h = [Double](repeating: 0, count: n + 1)
    h[0] = 1
    if n >= 1 { h[1] = x }
    if n >= 2 { for m in 1..<n { h[m + 1] = x * h[m] - Double(m) * h[m - 1] } }
    return h
}

public enum HermiteAnalysis {
    /// Analyses g: ℝᵏ → ℝ (reads z[0..<k]).
    public static func analyse(k: Int, maxDegree: Int? = nil, relativeThreshold: Double = 1e-7,
                               _ g: @escaping ([Double]) -> Double) -> HermiteStructure {
        let degree = maxDegree ?? (k == 1 ? 8 : k <= 3 ? 6 : 4)
        var coefficients: [[Int]: Double] = [:], errors: [[Int]: Double] = [:]
        var normSquared = 0.0
        if k == 1 {
            _ = GSL.ready
            for n in 0...degree {
                let (value, error) = GSL.integrateGaussian { x in g([x]) * hermiteValues(x, upTo: n)[n] }
                coefficients[[n]] = value / factorial(n)
                errors[[n]] = error / factorial(n) + 1e-13
            }
            normSquared = GSL.integrateGaussian { x in let v = g([x]); return v * v }.0
        } else {
            let budget = 400_000.0
            let fine = max(8, min(120, Int(pow(budget, 1 / Double(k)))))
            let coarse = max(6, fine * 3 / 4)
            let a = gaussHermiteCoefficients(k: k, degree: degree, nodes: fine, g)
            let b = gaussHermiteCoefficients(k: k, degree: degree, nodes: coarse, g)
            for (alpha, c) in a.coefficients {
                coefficients[alpha] = c
                errors[alpha] = abs(c - (b.coefficients[alpha] ?? 0)) + 1e-13
            }
            normSquared = a.normSquared
        }
        let threshold = relativeThreshold * normSquared.squareRoot()
        var nonZero = Set<[Int]>()
        for (alpha, c) in coefficients where alpha.reduce(0, +) >= 1 {
            // Compare in the orthonormal basis: √α! |c_α|.
            let scale = alpha.reduce(1.0) { $0 * factorial($1) }.squareRoot()
            if scale * abs(c) > max(threshold, 10 * scale * (errors[alpha] ?? 0)) { nonZero.insert(alpha) }
        }
        var informationExponent: Int?
        if k == 1 { informationExponent = (1...degree).first { nonZero.contains([$0]) } }
        let first = (0..<k).filter { r in nonZero.contains((0..<k).map { $0 == r ? 1 : 0 }) }.map { $0 + 1 }
        // Greedy leap structure.
        var learned = Set<Int>(), steps: [[Int]] = []
        while true {
            var best: Set<Int>?
            for alpha in nonZero {
                let support = Set((0..<k).filter { alpha[$0] > 0 })
                let new = support.subtracting(learned)
                if new.isEmpty { continue }
                if best == nil || new.count < best!.count || (new.count == best!.count && new.sorted().lexicographicallyPrecedes(best!.sorted())) { best = new }
            }
            guard let add = best else { break }
            steps.append(add.sorted().map { $0 + 1 })
            learned.formUnion(add)
        }
        return HermiteStructure(k: k, maxDegree: degree, coefficients: coefficients, errors: errors,
                                normSquared: normSquared, nonZero: nonZero, informationExponent: informationExponent,
                                firstOrderDirections: first, learningSteps: steps)
    }

    /// All c_α with |α| ≤ degree by an n^k Gauss–Hermite product rule.
    static func gaussHermiteCoefficients(k: Int, degree: Int, nodes n: Int, _ g: ([Double]) -> Double)
        -> (coefficients: [[Int]: Double], normSquared: Double)
    {
        let (x, w) = GSL.gaussHermite(n)
        let table = x.map { hermiteValues($0, upTo: degree) }
        var alphas: [[Int]] = []
        func build(_ prefix: [Int], _ left: Int) {
            if prefix.count == k { alphas.append(prefix); return }
            for d in 0...left { build(prefix + [d], left - d) }
        }
        build([], degree)
        var sums = [Double](repeating: 0, count: alphas.count)
        var norm = 0.0
        var index = [Int](repeating: 0, count: k)
        var z = [Double](repeating: 0, count: k)
        let total = (0..<k).reduce(1) { acc, _ in acc * n }
        for _ in 0..<total {
            var weight = 1.0
            for r in 0..<k { z[r] = x[index[r]]; weight *= w[index[r]] }
            let v = g(z) * weight
            norm += v * g(z)
            for (ai, alpha) in alphas.enumerated() {
                var h = v
                for r in 0..<k where alpha[r] > 0 { h *= table[index[r]][alpha[r]] }
                sums[ai] += h
            }
            var r = 0
            while r < k { index[r] += 1; if index[r] < n { break }; index[r] = 0; r += 1 }
        }
        var out: [[Int]: Double] = [:]
        for (ai, alpha) in alphas.enumerated() { out[alpha] = sums[ai] / alpha.reduce(1.0) { $0 * factorial($1) } }
        return (out, norm)
    }
}

extension GSL {
    /// E[f(z)], z ~ N(0, 1), by GSL's adaptive qagi on (−∞, ∞); returns (value, error estimate).
    static func integrateGaussian(_ f: @escaping (Double) -> Double) -> (Double, Double) {
        _ = ready
        let work = gsl_integration_workspace_alloc(1000)!
        defer { gsl_integration_workspace_free(work) }
        var result = 0.0, error = 0.0
        // Split at 0, where kinks and jumps of the usual links sit.
        var left = 0.0, leftError = 0.0
        GSLIntegrand.with({ x in f(x) * exp(-0.5 * x * x) * 0.39894228040143267794 }) { function in
            _ = gsl_integration_qagil(&function, 0, 1e-14, 1e-11, 1000, work, &left, &leftError)
            _ = gsl_integration_qagiu(&function, 0, 1e-14, 1e-11, 1000, work, &result, &error)
        }
        return (left + result, leftError + error)
    }
}
