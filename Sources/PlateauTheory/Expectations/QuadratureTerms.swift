import Foundation
internal import CGSL
import PlateauCore

/// The deterministic cubature rule of the general route (any activation, any link), over the joint
/// fields u = (λ₁…λ_p, ν₁…ν_k) ~ N(0, Ω): u = L z with Ω = L Lᵀ (PSD-tolerant Cholesky, smooth in
/// the overlaps while Ω is positive definite) and z standard normal in n = p + k dimensions.
///
/// - Smooth problems (activation and target analytic, `isSmooth`) with n ≤ `productMaximumDimension`:
///   the product Gauss–Hermite rule in z (GSL's fixed Hermite nodes, m per coordinate), pruned of the
///   points whose product weight is below `pruneFactor` × `tolerance` (10⁻¹⁵ at the default tolerance;
///   their total mass is then below 10⁻¹¹ for m ≤ 40 in four dimensions, and a polynomial integrand,
///   which the full rule integrates exactly, keeps its far points as the tolerance tightens). For integrands analytic in z its error decays geometrically in m; on the erf
///   problem at p = k = 2 it needs about half the points of the trapezoid rule on h·ℤⁿ for the same
///   accuracy.
/// - Otherwise (a kink or a jump in σ or g, or more fields): a Sobol' sequence (GSL) mapped by the
///   inverse normal CDF, in `shifts` copies with fixed Cranley–Patterson shifts; the spread of the
///   copies is a standard error.
///
/// **Nodes chosen for a stated accuracy.** When a theory is built, the rule is refined (m → ⌈1.25 m⌉
/// nodes per coordinate per stage; QMC points × 2) until the error of every entry of Ψ, Φ, Ξ and E[σD]
/// is estimated below `tolerance`: for the product rule from the differences δ between successive
/// rules (δ estimates the coarser rule's error; the error of an m-node rule falls like ρᵐ, ρ measured
/// from the last two differences while they shrink, which extrapolates δ to the finer rule; else δ),
/// for QMC as the standard error of the shifted copies, at two calibration points (the
/// experiment's start and a half-learned state), or until `maximumPoints`. The rule is then fixed: the
/// right-hand side is a deterministic (and, for smooth problems, smooth) function of the overlaps, and
/// `errorEstimate` restates the accuracy at any overlaps.
public struct QuadratureSettings: Sendable, Hashable {
    /// The absolute accuracy asked of every entry of Ψ, Φ, Ξ and E[σD].
    public var tolerance: Double
    /// The most points a rule may have (the calibration stops there and reports what it reached).
    public var maximumPoints: Int
    /// The first Gauss–Hermite node count per coordinate for n = 1, 2, 3, 4, … joint fields (the last
    /// entry serves larger n).
    public var initialNodes: [Int]
    /// Product rules are used up to this many joint fields; quasi-Monte Carlo beyond.
    public var productMaximumDimension: Int
    /// Product-rule points whose weight (the product of the one-dimensional weights, which sum to 1)
    /// is below `pruneFactor` × `tolerance` are skipped.
    public var pruneFactor: Double
    /// The pruning threshold on product weights.
    public var pruneWeight: Double { pruneFactor * tolerance }
    /// The first number of points per shifted QMC copy, and the number of copies.
    public var qmcInitialPoints: Int
    public var shifts: Int

    public init(tolerance: Double = 1e-5, maximumPoints: Int = 400_000, initialNodes: [Int] = [16, 12, 10, 8],
                productMaximumDimension: Int = 4, pruneFactor: Double = 1e-10, qmcInitialPoints: Int = 1 << 12, shifts: Int = 4)
    {
        self.tolerance = tolerance
        self.maximumPoints = maximumPoints
        self.initialNodes = initialNodes
        self.productMaximumDimension = productMaximumDimension
        self.pruneFactor = pruneFactor
        self.qmcInitialPoints = qmcInitialPoints
        self.shifts = shifts
    }
}

/// The shape of one cubature rule: Gauss–Hermite nodes per coordinate, or QMC points per copy.
enum RuleShape: Sendable, Hashable {
    case product(nodes: Int)
    case qmc(points: Int)
}

/// A fixed set of points z (n-dimensional, row-major) with weights summing to 1, in `groups` equal
/// consecutive groups (one per QMC shift; a product rule is a single group).
struct CubatureRule: Sendable {
    let dimension: Int
    /// QMC: the points (row-major) and weights; empty for a product rule.
    let points: [Double]
    let weights: [Double]
    let groups: Int
    /// Product rule: the one-dimensional Gauss–Hermite nodes and weights (for N(0, 1)), the largest
    /// weight, and the pruning threshold on product weights.
    let nodes: [Double]
    let nodeWeights: [Double]
    let largestNodeWeight: Double
    let pruneWeight: Double
    /// The number of points (product points kept after pruning, or QMC points).
    let count: Int
    var isProduct: Bool { !nodes.isEmpty }

    init(dimension n: Int, shape: RuleShape, settings: QuadratureSettings) {
        dimension = n
        switch shape {
        case let .product(m):
            (nodes, nodeWeights) = GSL.gaussHermite(m)
            largestNodeWeight = nodeWeights.max() ?? 1
            pruneWeight = settings.pruneWeight
            points = []
            weights = []
            groups = 1
            count = CubatureRule.prunedCount(dimension: n, weights: nodeWeights, threshold: settings.pruneWeight)
        case let .qmc(qmcPoints):
            _ = GSL.ready
            precondition(n <= 40, "the Sobol' generator supports at most 40 dimensions")
            let q = gsl_qrng_alloc(plateau_qrng_sobol(), UInt32(n))!
            defer { gsl_qrng_free(q) }
            var base = [Double](repeating: 0, count: qmcPoints * n)
            var x = [Double](repeating: 0, count: n)
            _ = gsl_qrng_get(q, &x)   // skip the origin
            for i in 0..<qmcPoints {
                _ = gsl_qrng_get(q, &x)
                for c in 0..<n { base[i * n + c] = x[c] }
            }
            // Fixed shifts from a fixed linear congruential sequence: reproducible everywhere.
            var state: UInt64 = 0x9E37_79B9_7F4A_7C15
            func uniform() -> Double {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return Double(state >> 11) / Double(1 << 53)
            }
            var pts = [Double](), ws = [Double]()
            pts.reserveCapacity(settings.shifts * qmcPoints * n)
            for _ in 0..<settings.shifts {
                let shift = (0..<n).map { _ in uniform() }
                for i in 0..<qmcPoints {
                    for c in 0..<n {
                        var v = base[i * n + c] + shift[c]
                        if v >= 1 { v -= 1 }
                        v = min(max(v, 1e-16), 1 - 1e-16)
                        pts.append(gsl_cdf_ugaussian_Pinv(v))
                    }
                    ws.append(1 / Double(settings.shifts * qmcPoints))
                }
            }
            points = pts
            weights = ws
            groups = settings.shifts
            nodes = []
            nodeWeights = []
            largestNodeWeight = 0
            pruneWeight = 0
            count = ws.count
        }
    }

    /// The product points whose weight is at least `threshold`, counted level by level (a partial
    /// product is abandoned once even the largest weights cannot lift it to the threshold).
    static func prunedCount(dimension n: Int, weights w: [Double], threshold: Double) -> Int {
        let top = w.max() ?? 1
        let sorted = w.sorted(by: >)
        func count(_ level: Int, _ weight: Double) -> Int {
            if level == n { return 1 }
            let rest = pow(top, Double(n - level - 1))
            var total = 0
            for x in sorted {
                if weight * x * rest < threshold { break }
                total += count(level + 1, weight * x)
            }
            return total
        }
        return count(0, 1)
    }
}

/// The online-SGD terms by the cubature rule of `QuadratureSettings`, all in one pass over the rule:
/// at every point the error signal D is formed once and Ψ, Φ, Ξ, E[σD] accumulate together.
final class QuadratureTerms: Sendable {
    let experiment: Experiment
    let rule: CubatureRule
    let shape: RuleShape
    /// The next coarser rule (product rules only), for `errorEstimate`.
    let coarserRule: CubatureRule?
    let settings: QuadratureSettings
    /// The accuracy the calibration reached (largest entry difference or standard error), and whether
    /// it met the tolerance within the point budget.
    let calibratedError: Double
    let metTolerance: Bool

    var p: Int { experiment.student.p }
    var k: Int { experiment.teacher.k }
    var student: Activation { experiment.student.activation }
    var teacher: TeacherSpec { experiment.teacher }
    var square: Bool { experiment.training.loss == .square }
    var noise: Double { experiment.teacher.noiseVariance }

    init(_ experiment: Experiment, settings: QuadratureSettings, calibrationPoints: [Overlaps]) {
        self.experiment = experiment
        self.settings = settings
        let n = experiment.student.p + experiment.teacher.k
        let smooth = experiment.student.activation.isSmooth && experiment.teacher.isSmooth
        var error = Double.infinity
        if smooth && n <= settings.productMaximumDimension {
            var m = settings.initialNodes[min(n, settings.initialNodes.count) - 1]
            var coarse = CubatureRule(dimension: n, shape: .product(nodes: m), settings: settings)
            var previous = calibrationPoints.map { Self.evaluate(coarse, experiment, $0).flattened }
            var fine = coarse
            var fineShape = RuleShape.product(nodes: m)
            var lastDifference = Double.infinity
            var lastCoarseNodes = m
            while error > settings.tolerance {
                let coarseNodes = m
                let nextNodes = max(m + 2, Int((1.25 * Double(m)).rounded(.up)))
                let next = RuleShape.product(nodes: nextNodes)
                // Building a product rule costs only its nodes and its pruned count.
                let candidate = CubatureRule(dimension: n, shape: next, settings: settings)
                if candidate.count > settings.maximumPoints { break }
                m = nextNodes
                coarse = fine
                fine = candidate
                fineShape = next
                let current = calibrationPoints.map { Self.evaluate(fine, experiment, $0).flattened }
                let difference = zip(previous, current).map { a, b in zip(a, b).map { abs($0 - $1) }.max() ?? 0 }.max() ?? 0
                // The difference measures the coarser rule's error e(m_c). The Gauss–Hermite rule's
                // error falls geometrically in the node count on analytic integrands, e(m) ≈ Cρᵐ, with
                // ρ^{m_c − m_cc} ≈ difference / previous difference (m_cc the rule before), so the finer
                // rule's error is about difference × ρ^{m_f − m_c} once the differences shrink.
                if lastDifference.isFinite && difference < lastDifference && coarseNodes > lastCoarseNodes {
                    let perNode = Foundation.log(difference / lastDifference) / Double(coarseNodes - lastCoarseNodes)
                    error = difference * Foundation.exp(perNode * Double(nextNodes - coarseNodes))
                } else {
                    error = difference
                }
                lastDifference = difference
                lastCoarseNodes = coarseNodes
                previous = current
            }
            rule = fine
            shape = fineShape
            coarserRule = fine.count == coarse.count ? nil : coarse
        } else {
            var points = settings.qmcInitialPoints
            var current = CubatureRule(dimension: n, shape: .qmc(points: points), settings: settings)
            while true {
                error = calibrationPoints.map { Self.spread(current, experiment, $0) }.max() ?? 0
                if error <= settings.tolerance || 2 * points * settings.shifts > settings.maximumPoints { break }
                points *= 2
                current = CubatureRule(dimension: n, shape: .qmc(points: points), settings: settings)
            }
            rule = current
            shape = .qmc(points: points)
            coarserRule = nil
        }
        calibratedError = error
        metTolerance = error <= settings.tolerance
    }

    /// The terms of `experiment` at `o` with `rule` (used while calibrating).
    static func evaluate(_ rule: CubatureRule, _ experiment: Experiment, _ o: Overlaps) -> PopulationTerms {
        QuadratureTerms(rule: rule, experiment).terms(o, includeXi: true)
    }

    /// The largest standard error across a QMC rule's shifted copies at `o`.
    static func spread(_ rule: CubatureRule, _ experiment: Experiment, _ o: Overlaps) -> Double {
        QuadratureTerms(rule: rule, experiment).groupSpread(o)
    }

    /// A fixed rule, uncalibrated (the calibration's candidates and the coarser rule of the estimate).
    private init(rule: CubatureRule, _ experiment: Experiment) {
        self.experiment = experiment
        settings = QuadratureSettings()
        self.rule = rule
        shape = .product(nodes: 0)
        coarserRule = nil
        calibratedError = .nan
        metTolerance = false
    }

    var pointCount: Int { rule.count }

    var ruleDescription: String {
        let n = p + k
        let accuracy = "calibrated accuracy \(String(format: "%.1e", calibratedError))" + (metTolerance ? "" : " (tolerance \(String(format: "%.0e", settings.tolerance)) not met within \(settings.maximumPoints) points)")
        switch shape {
        case let .product(m):
            return "product Gauss–Hermite rule over the \(n) joint fields, \(m) nodes per field, \(rule.count) points (weights below \(String(format: "%.0e", settings.pruneWeight)) pruned), \(accuracy)"
        case let .qmc(points):
            let why = n > settings.productMaximumDimension ? "more than \(settings.productMaximumDimension) joint fields" : "a kink or jump in σ or g"
            return "Sobol' quasi-Monte Carlo over the \(n) joint fields (\(why)), \(settings.shifts) × \(points) points, \(accuracy)"
        }
    }

    /// The PSD-tolerant Cholesky factor of Ω (zero pivots to 10⁻¹² of the largest diagonal entry).
    /// Outside the cone — the stages of an adaptive step from a rank-deficient Ω land there by
    /// O(h²), far more than the step's own error — pivots at or below that threshold are clamped
    /// to zero and their columns dropped: L Lᵀ is then a PSD matrix that differs from Ω by the
    /// depth of the departure, and the terms are those of that nearby valid covariance (the rule
    /// stays defined and continuous across the boundary; whether the accepted state is admissible
    /// is `ConeGuard`'s decision). Nil only for non-finite Ω.
    static func factor(_ omega: Matrix) -> Matrix? {
        if let L = omega.choleskyPSD(tolerance: 1e-12) { return L }
        guard omega.isSquare, omega.allFinite else { return nil }
        let n = omega.rows
        var largest = 0.0
        for i in 0..<n { largest = max(largest, abs(omega[i, i])) }
        let threshold = 1e-12 * largest
        var L = Matrix(rows: n, cols: n)
        for j in 0..<n {
            var s = omega[j, j]
            for c in 0..<j { s -= L[j, c] * L[j, c] }
            guard s > threshold else { continue }
            let d = s.squareRoot()
            L[j, j] = d
            for i in (j + 1)..<max(j + 1, n) {
                var t = omega[i, j]
                for c in 0..<j { t -= L[i, c] * L[j, c] }
                L[i, j] = t / d
            }
        }
        return L
    }

    /// Sums over the rule of `accumulate(group, weight, u, σ, σ', g)`; nil if Ω is not PSD.
    private func sweep(_ o: Overlaps, _ accumulate: (Int, Double, UnsafeMutablePointer<Double>, UnsafeMutablePointer<Double>,
                                                    UnsafeMutablePointer<Double>, Double) -> Void) -> Bool
    {
        rule.isProduct ? productSweep(o, accumulate) : pointSweep(o, accumulate)
    }

    /// The QMC rule: point by point.
    private func pointSweep(_ o: Overlaps, _ accumulate: (Int, Double, UnsafeMutablePointer<Double>, UnsafeMutablePointer<Double>,
                                                         UnsafeMutablePointer<Double>, Double) -> Void) -> Bool
    {
        let n = p + k, p = self.p, student = self.student, teacher = self.teacher
        guard let L = Self.factor(o.jointCovariance) else { return false }
        let perGroup = rule.count / rule.groups
        let u = UnsafeMutablePointer<Double>.allocate(capacity: n)
        let s = UnsafeMutablePointer<Double>.allocate(capacity: p)
        let ds = UnsafeMutablePointer<Double>.allocate(capacity: p)
        defer { u.deallocate(); s.deallocate(); ds.deallocate() }
        L.values.withUnsafeBufferPointer { l in
        rule.points.withUnsafeBufferPointer { z in
        rule.weights.withUnsafeBufferPointer { w in
            for i in 0..<rule.count {
                let zi = z.baseAddress! + i * n
                for a in 0..<n {
                    var v = 0.0
                    for c in 0...a { v += l[a * n + c] * zi[c] }
                    u[a] = v
                }
                for j in 0..<p { (s[j], ds[j]) = student.valueAndDerivative(u[j]) }
                let g = teacher.output(u + p)
                accumulate(i / perGroup, w[i], u, s, ds, g)
            }
        } } }
        return true
    }

    /// The product rule, nested: with the teacher fields ordered first, Ω' = L'L'ᵀ lower-triangular
    /// makes field c depend on z₁…z_c only, so g is evaluated once per teacher node and σ(λ_j), σ'(λ_j)
    /// once per node of the first j + k coordinates; the innermost loop evaluates one student field.
    private func productSweep(_ o: Overlaps, _ accumulate: (Int, Double, UnsafeMutablePointer<Double>, UnsafeMutablePointer<Double>,
                                                           UnsafeMutablePointer<Double>, Double) -> Void) -> Bool
    {
        let n = p + k, p = self.p, k = self.k, student = self.student, teacher = self.teacher
        // Permuted order: ν₁…ν_k, λ₁…λ_p; original index of permuted field c.
        let original = (0..<k).map { p + $0 } + (0..<p).map { $0 }
        let omega = o.jointCovariance
        var permuted = Matrix(rows: n, cols: n)
        for i in 0..<n { for j in 0..<n { permuted[i, j] = omega[original[i], original[j]] } }
        guard let L = Self.factor(permuted) else { return false }
        let u = UnsafeMutablePointer<Double>.allocate(capacity: n)          // original order
        let s = UnsafeMutablePointer<Double>.allocate(capacity: p)
        let ds = UnsafeMutablePointer<Double>.allocate(capacity: p)
        let partial = UnsafeMutablePointer<Double>.allocate(capacity: (n + 1) * n)   // partial[c·n + i] = Σ_{c'<c} L_ic' z_c'
        let rest = UnsafeMutablePointer<Double>.allocate(capacity: n)   // rest[c] = (largest weight)^{n−c−1}
        let weight = UnsafeMutablePointer<Double>.allocate(capacity: n + 1)
        let index = UnsafeMutablePointer<Int>.allocate(capacity: n)
        defer { u.deallocate(); s.deallocate(); ds.deallocate(); partial.deallocate(); rest.deallocate(); weight.deallocate(); index.deallocate() }
        partial.initialize(repeating: 0, count: (n + 1) * n)
        let nodes = rule.nodes, w1 = rule.nodeWeights, threshold = rule.pruneWeight, m = nodes.count
        for c in 0..<n { rest[c] = pow(rule.largestNodeWeight, Double(n - c - 1)) }
        var g = 0.0, total = 0.0
        weight[0] = 1
        L.values.withUnsafeBufferPointer { l in
            var level = 0
            index[0] = -1
            while level >= 0 {
                index[level] += 1
                if index[level] >= m { level -= 1; continue }
                let z = nodes[index[level]]
                let w = weight[level] * w1[index[level]]
                // Pruned: no completion of this partial point can reach the threshold.
                if w * rest[level] < threshold { continue }
                let c = level
                let uc = partial[c * n + c] + l[c * n + c] * z
                u[original[c]] = uc
                for i in (c + 1)..<max(c + 1, n) { partial[(c + 1) * n + i] = partial[c * n + i] + l[i * n + c] * z }
                weight[c + 1] = w
                if c == k - 1 { g = teacher.output(u + p) }
                if c >= k { (s[c - k], ds[c - k]) = student.valueAndDerivative(uc) }
                if c == n - 1 {
                    total += weight[n]
                    accumulate(0, weight[n], u, s, ds, g)
                } else {
                    level += 1
                    index[level] = -1
                }
            }
        }
        // The Gauss–Hermite weights sum to 1; the pruned mass is below 10⁻¹¹: no renormalisation.
        _ = total
        return true
    }

    /// Ψ, Φ, Ξ and E[σD]; with `groups`, one set per QMC copy (for the error estimate).
    func terms(_ o: Overlaps, includeXi: Bool) -> PopulationTerms {
        termsByGroup(o, includeXi: includeXi).combined
    }

    func termsByGroup(_ o: Overlaps, includeXi: Bool) -> (combined: PopulationTerms, groups: [PopulationTerms]) {
        let p = self.p, k = self.k, a = o.a, square = self.square, noise = self.noise
        // Flat accumulators per group: Ψ (p·k), Φ (p·p), Ξ (p·p, upper triangle used), E[σD] (p).
        let stride = p * k + 2 * p * p + p
        let acc = UnsafeMutablePointer<Double>.allocate(capacity: rule.groups * stride)
        acc.initialize(repeating: 0, count: rule.groups * stride)
        defer { acc.deallocate() }
        let ok = sweep(o) { group, w, u, s, ds, g in
            var f = 0.0
            if square { for j in 0..<p { f += a[j] * s[j] } }
            let D = g - f
            let wD = w * D, wD2 = w * (D * D + noise)
            let psi = acc + group * stride, phi = psi + p * k, xi = phi + p * p, drift = xi + p * p
            for j in 0..<p {
                let c = wD * ds[j]
                for r in 0..<k { psi[j * k + r] += c * u[p + r] }
                for l in 0..<p { phi[j * p + l] += c * u[l] }
                if includeXi {
                    let c2 = wD2 * ds[j]
                    for l in j..<p { xi[j * p + l] += c2 * ds[l] }
                }
                drift[j] += wD * s[j]
            }
        }
        if !ok {
            var bad = PopulationTerms(p: p, k: k)
            for i in 0..<bad.psi.values.count { bad.psi.values[i] = .nan }
            return (bad, [bad])
        }
        func unpack(_ base: UnsafeMutablePointer<Double>) -> PopulationTerms {
            var t = PopulationTerms(p: p, k: k)
            for i in 0..<(p * k) { t.psi.values[i] = base[i] }
            for i in 0..<(p * p) { t.phi.values[i] = base[p * k + i] }
            for j in 0..<p { for l in j..<p {
                t.xi[j, l] = base[p * k + p * p + j * p + l]
                t.xi[l, j] = t.xi[j, l]
            } }
            for j in 0..<p { t.aDrift[j] = base[p * k + 2 * p * p + j] }
            return t
        }
        let groups = (0..<rule.groups).map { unpack(acc + $0 * stride) }
        for g in 1..<max(1, rule.groups) { for i in 0..<stride { acc[i] += acc[g * stride + i] } }
        return (unpack(acc), groups)
    }

    func risk(_ o: Overlaps) -> Double {
        let p = self.p, a = o.a
        var sum = 0.0
        let ok = sweep(o) { _, w, _, s, _, g in
            var f = 0.0
            for j in 0..<p { f += a[j] * s[j] }
            sum += w * (g - f) * (g - f)
        }
        return ok ? 0.5 * sum + 0.5 * noise : .nan
    }

    /// The largest standard error of an entry across the shifted copies (QMC rules).
    func groupSpread(_ o: Overlaps) -> Double {
        let byGroup = termsByGroup(o, includeXi: true)
        let g = Double(rule.groups)
        guard rule.groups > 1 else { return 0 }
        let copies = byGroup.groups.map { $0.flattened.map { $0 * g } }
        let mean = byGroup.combined.flattened
        var worst = 0.0
        for i in 0..<mean.count {
            let v = copies.reduce(0.0) { $0 + ($1[i] - mean[i]) * ($1[i] - mean[i]) } / (g - 1)
            worst = max(worst, (v / g).squareRoot())
        }
        return worst
    }

    /// An estimate of the largest absolute error of Ψ, Φ, Ξ, E[σD] at `o`: for a product rule the
    /// difference from the next coarser rule (an overestimate when the rule converges exponentially);
    /// for quasi-Monte Carlo the standard error across the shifted copies.
    func errorEstimate(_ o: Overlaps) -> Double {
        if rule.groups > 1 { return groupSpread(o) }
        guard let coarserRule else { return calibratedError }
        let fine = terms(o, includeXi: true).flattened
        let coarse = QuadratureTerms(rule: coarserRule, experiment).terms(o, includeXi: true).flattened
        return zip(fine, coarse).map { abs($0 - $1) }.max() ?? 0
    }
}
