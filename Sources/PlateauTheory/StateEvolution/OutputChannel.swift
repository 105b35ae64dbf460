import Foundation
import PlateauCore
internal import CGSL

/// The output channel of a multi-index model, y = g(z) + √Δ ξ with z ∈ ℝᵏ (EQUATIONS.md §2), as one
/// facility for the state evolution, the weak-recovery threshold, finite-d GAMP and the spectral
/// estimators: the posterior of z given y under a Gaussian prior z ~ N(ω, V).
///
/// **How the integrals are done (deterministic, no Monte Carlo).** The output is reduced to a finite
/// alphabet of labels ℓ:
/// - a *discrete* g (finitely many values: sign, parities, committees of signs …) has one label per
///   value, exactly;
/// - a *continuous* g is resolved into output bins of width h (`StateEvolutionSettings.outputResolution`,
///   and h ≤ √Δ/20 when Δ > 0); the limit h → 0 is the noiseless channel and the width used is reported.
///
/// For a label ℓ the region {z : label(g(z)) = ℓ} is described, once per target, along lines parallel to
/// the z_k axis: for each node of a grid in (z₁, …, z_{k−1}) the breakpoints t_j where the label
/// changes along z_k and the labels between them: a scan, then each change bracketed to 1e-11 by
/// bisection of the label (discrete g) or by a root finder on g − (bin edge) (binned g, 5–35× less
/// time per crossing than bisection; `LineStructureBuilder.line`). The lines of different outer cells
/// are found in parallel. Under z ~ N(ω, V), z_k given the other coordinates is Gaussian, so each line
/// integral of 1, z and zzᵀ over a segment is a closed form in Φ and φ at the breakpoints: exact. The
/// outer (k − 1)-dimensional integral is a composite Gauss–Legendre rule (GSL's glfixed tables) on cells
/// that are split where the line structure changes (a jump of a discrete g), down to a width of 1e-11
/// for k = 2. That finest rule (cells of 0.25 for k = 2) is needed only for narrow priors; for k = 2 coarser rules (cells of
/// 0.5, 1, 2, split at the same jumps) serve priors whose outer scale is at least width/2.5 (or /2),
/// each kept only if it reproduces the finest rule to 1e-11 at build (`agrees`): line structures with
/// unbounded breakpoint slopes (z₁z₂ binned, circles) keep the finest rule alone. Only outer nodes
/// within 8.5 standard deviations of ω are visited.
/// Label noise Δ > 0 is a mixture over the labels, integrated over y on a Gauss–Legendre grid.
///
/// Convention: Δ is a variance; g is the noiseless link (a committee written out as one expression).
public final class OutputChannel: @unchecked Sendable {
    public enum Alphabet: Sendable, Hashable {
        /// g takes exactly these values (sorted).
        case discrete([Double])
        /// g is continuous, resolved into bins of this width (edges `binOrigin + j·width`).
        case binned(width: Double)
    }

    public let k: Int
    public let target: Formula
    public let noise: Double
    public let alphabet: Alphabet
    /// Representative output value of each label (the discrete values, or the bin centres).
    public let labelValues: [Double]
    /// E[g(z)²] under z ~ N(0, I) (without the noise).
    public let outputSecondMoment: Double
    /// The largest violation of the sum rules Σ_ℓ P(ℓ) = 1, Σ_ℓ E[z 1_ℓ] = 0 and Σ_ℓ E[zzᵀ 1_ℓ] = I under
    /// the prior: the accuracy of the channel's integrals.
    public let sumRuleError: Double
    /// E[g(z)] under z ~ N(0, I).
    public let outputMean: Double
    /// The region moments of every label, second moments included, under the prior z ~ N(0, I_k): what
    /// `regionMoments(omega: 0, V: I, secondMoments: true)` returns, kept from the build (the sum rules
    /// and the output moments come from it; the weak-recovery analysis reuses it).
    public let priorMoments: RegionMoments

    let outerDimension: Int
    /// The coordinate of z (0-based) along which the lines run. The last one, unless the output is binned
    /// and changes label far more often along another axis (z₁² + sign(z₁z₂z₃): along z₁): lines across
    /// the continuous variation resolve every bin edge exactly, while an outer rule would alias them.
    public let lineCoordinate: Int
    /// The coordinates in the line structure's order: internal coordinate i is z[order[i]], the last is
    /// `lineCoordinate`. Priors and moments are permuted on the way in and out (`linePrior`,
    /// `regionMoments`, the GAMP workspace); the identity leaves every computation as it was.
    let order: [Int]
    var isPermuted: Bool { lineCoordinate != k - 1 }
    /// The outer rules, coarsest first; the last is the finest (for k ≠ 2 the only one). See
    /// `outerRule(for:)`.
    let outerRules: [OuterRule]
    let binOrigin: Double

    /// Half-width of the z range the line structure covers (|z_i| ≤ range).
    public static let range = 11.0

    public var labelCount: Int { labelValues.count }
    /// The bin width of a binned output (nil for a discrete one).
    public var binWidth: Double? { if case let .binned(h) = alphabet { return h } else { return nil } }
    /// Noise variance of the label mixture: Δ less the variance h²/12 that binning a continuous output
    /// already adds (Sheppard's correction), so the binned channel has the requested total noise.
    public var mixtureNoise: Double {
        if case let .binned(h) = alphabet, noise > 0 { return noise - h * h / 12 }
        return noise
    }
    /// Number of outer nodes of the finest outer rule.
    public var nodeCount: Int { outerRules[outerRules.count - 1].w.count }
    public var isDiscrete: Bool { if case .discrete = alphabet { return true } else { return false } }

    /// Builds the channel of `problem` (its target, k and Δ), with `resolution` the bin width for a
    /// continuous output (default: the problem's setting).
    public convenience init(problem: EstimationProblem, resolution: Double? = nil, refinement: Int = 0) throws {
        try self.init(problem: problem, resolution: resolution, refinement: refinement, bisectionOnly: false)
    }

    /// The channel with its line structure found by bisection of the label alone when `bisectionOnly`
    /// (see `LineStructureBuilder.line`): the independent route of the tests.
    init(problem: EstimationProblem, resolution: Double?, refinement: Int, bisectionOnly: Bool) throws {
        try problem.validate()
        _ = GSL.ready
        k = problem.k
        target = problem.target
        noise = problem.noise
        let k = self.k
        (alphabet, labelValues, binOrigin) = try Self.outputAlphabet(problem: problem, resolution: resolution)
        // Line structure.
        outerDimension = k - 1
        let (alphabet, origin, count, g) = (self.alphabet, binOrigin, labelValues.count, target)
        let discrete: Bool
        if case .discrete = alphabet { discrete = true } else { discrete = false }
        let line = discrete ? k - 1 : Self.lineCoordinate(k: k) { zz in
            Self.label(ofOutput: g.value(zz), alphabet: alphabet, binOrigin: origin, labelCount: count)
        }
        lineCoordinate = line
        order = (0..<k).filter { $0 != line } + [line]
        let builder = LineStructureBuilder(k: k, target: target, alphabet: alphabet, binOrigin: binOrigin,
                                           labelCount: labelValues.count, bisectionOnly: bisectionOnly, refinement: refinement,
                                           order: line == k - 1 ? nil : order)
        let finest = builder.build()
        // k = 2: coarser rules for wide priors, cells of twice the finest width, then 4×, … up to 2, each
        // kept only if it reproduces the finest rule (`agrees`); the first that does not ends the ladder.
        var rules = [finest]
        let labelTotal = labelValues.count
        if k == 2 {
            var width = 2 * finest.width
            while width <= 2 {
                // The cells the check visits first, the rest only for a rule that passes.
                let (lo, hi) = Self.agreementRange(width: width)
                let middle = builder.buildCoarse(width: width, jumps: finest.jumps, from: lo, to: hi)
                guard let ratio = Self.cellsPerScaleCandidates.first(where: {
                    Self.agrees(middle, finest, cellsPerScale: $0, labels: labelTotal)
                }) else { break }
                var coarse = builder.buildCoarse(width: width, jumps: finest.jumps, from: -Self.range, to: lo)
                coarse.append(middle)
                coarse.append(builder.buildCoarse(width: width, jumps: finest.jumps, from: hi, to: Self.range))
                coarse.cellsPerScale = ratio
                rules.insert(coarse, at: 0)
                width *= 2
            }
        }
        outerRules = rules
        // Output moments under the prior, from the labels (exact for a discrete output; for a binned one the
        // grouped second moment exceeds E[g²] by the within-bin variance h²/12: Sheppard's correction).
        var mean = 0.0, second = 0.0
        let prior = LinePrior(V: .identity(k))!
        let stride = 1 + k + k * k
        var moments = RegionMoments(k: k, labels: labelValues.count, secondMoments: true)
        let zero = [Double](repeating: 0, count: k)
        let rule = Self.outerRule(in: rules, outerDimension: k - 1, for: prior)
        moments.values.withUnsafeMutableBufferPointer { buffer in
            Self.accumulate(rule, prior: prior, omega: zero, secondMoments: true, onlyLabel: -1, into: buffer.baseAddress!)
        }
        if line != k - 1 {
            let order = self.order, labels = self.labelValues.count
            moments.values.withUnsafeMutableBufferPointer { v in
                for l in 0..<labels { Self.unpermute(v.baseAddress! + l * stride, order: order, secondMoments: true) }
            }
        }
        priorMoments = moments
        let acc = moments.values
        let labelValues = self.labelValues
        var sums = [Double](repeating: 0, count: stride)
        for (l, v) in labelValues.enumerated() {
            mean += v * acc[l * stride]; second += v * v * acc[l * stride]
            for i in 0..<stride { sums[i] += acc[l * stride + i] }
        }
        var violation = abs(sums[0] - 1)
        for i in 0..<k { violation = max(violation, abs(sums[1 + i])) }
        for i in 0..<k { for j in 0..<k { violation = max(violation, abs(sums[1 + k + i * k + j] - (i == j ? 1 : 0))) } }
        sumRuleError = violation
        if case let .binned(h) = self.alphabet { second -= h * h / 12 }
        outputMean = mean
        outputSecondMoment = second
    }

    /// The line coordinate of a binned output (see `lineCoordinate`): the axis along which the label changes
    /// most often on a deterministic probe (lines through a 4^{k−1} grid of the other coordinates, 400 steps
    /// on [−4, 4]); the last axis unless another has more than twice its changes.
    static func lineCoordinate(k: Int, label: (UnsafeBufferPointer<Double>) -> Int) -> Int {
        guard k >= 2 else { return 0 }
        let levels = [-2.1, -0.7, 0.4, 1.3]
        var changes = [Int](repeating: 0, count: k)
        var z = [Double](repeating: 0, count: k)
        for axis in 0..<k {
            let others = (0..<k).filter { $0 != axis }
            var idx = [Int](repeating: 0, count: k - 1)
            while true {
                for (j, c) in others.enumerated() { z[c] = levels[idx[j]] }
                var previous = -1
                for step in 0...400 {
                    z[axis] = -4 + 8 * Double(step) / 400
                    let l = z.withUnsafeBufferPointer { label($0) }
                    if previous >= 0 && l != previous { changes[axis] += 1 }
                    previous = l
                }
                var r = 0
                while r < k - 1 { idx[r] += 1; if idx[r] < levels.count { break }; idx[r] = 0; r += 1 }
                if r == k - 1 { break }
            }
        }
        let best = (0..<k).max { changes[$0] < changes[$1] || changes[$0] == changes[$1] && $0 < $1 }!
        return changes[best] > 2 * changes[k - 1] ? best : k - 1
    }

    /// The output's alphabet, the representative value of each label and the origin of the bins (0 for
    /// a discrete output), from the values of g on `probePoints` (see `init`).
    static func outputAlphabet(problem: EstimationProblem, resolution: Double?) throws
        -> (alphabet: Alphabet, labelValues: [Double], binOrigin: Double) {
        let g = problem.target, k = problem.k
        // Probe the output on a deterministic point set to classify it.
        let probe = Self.probePoints(k: k)
        var values = Set<Double>()
        var lo = Double.infinity, hi = -Double.infinity
        var z = [Double](repeating: 0, count: k)
        // A link that is not finite on a set of measure zero (z₁/|z| at the origin) is a valid channel: its
        // probes there are skipped. More than 1% of the probes non-finite is a set of positive mass: refused.
        var nonFinite: [Double]? = nil, nonFiniteCount = 0
        let probes = probe.count / k
        for i in 0..<probes {
            for r in 0..<k { z[r] = probe[i * k + r] }
            let y = g.value(z)
            guard y.isFinite else {
                nonFiniteCount += 1
                if nonFinite == nil { nonFinite = z }
                continue
            }
            if values.count <= 64 { values.insert(y) }
            lo = min(lo, y); hi = max(hi, y)
        }
        if let z = nonFinite, nonFiniteCount * 100 > probes || !lo.isFinite {
            throw SpecError(field: "teacher.target", value: "\"\(g)\"",
                            reason: "is not finite at z = \(z.map { Experiment.format($0) }) and at \(nonFiniteCount) of \(probes) probe points "
                                + "(the channel needs an output that is finite almost everywhere)")
        }
        if values.count <= 32 {
            let v = values.sorted()
            return (.discrete(v), v, 0)
        } else {
            var h = resolution ?? problem.settings.outputResolution
            if problem.noise > 0 { h = min(h, problem.noise.squareRoot() / 20) }
            let origin = (lo / h).rounded(.down) * h - h
            let count = Int(((hi - origin) / h).rounded(.up)) + 2
            // Labels 0 … count − 1 are the bins [origin + (ℓ − 1)h, origin + ℓh); label 0 is (−∞, origin),
            // the last one [origin + (count − 2)h, ∞). Centres of the outer bins are their inner edges ∓ h/2.
            return (.binned(width: h), (0..<count).map { origin + (Double($0) - 0.5) * h }, origin)
        }
    }

    /// A deterministic point set of N(0, I_k) (a Gauss–Hermite product rule, resampled equally) used
    /// only to classify the output and bound its range.
    static func probePoints(k: Int) -> [Double] {
        let n = [0, 4001, 151, 31, 13][k]
        // Quantiles of N(0, 1) on a regular grid in probability, out to 1e-9 in the tails.
        let q = (0..<n).map { GSL.normalQuantile(1e-9 + (1 - 2e-9) * Double($0) / Double(n - 1)) }
        var out: [Double] = []
        out.reserveCapacity(Int(pow(Double(n), Double(k))) * k)
        var idx = [Int](repeating: 0, count: k)
        while true {
            for r in 0..<k { out.append(q[idx[r]]) }
            var r = 0
            while r < k { idx[r] += 1; if idx[r] < n { break }; idx[r] = 0; r += 1 }
            if r == k { break }
        }
        return out
    }
}

// MARK: - Region moments

/// Per label ℓ: Z_ℓ = P(label ℓ), μ_ℓ = E[(z − ω) 1_ℓ] (k entries) and, when asked, S_ℓ = E[(z − ω)(z − ω)ᵀ 1_ℓ]
/// (k×k, row-major), all under z ~ N(ω, V). Layout: `stride` = 1 + k (+ k² with second moments).
public struct RegionMoments: Sendable {
    public let k: Int
    public let labels: Int
    public let secondMoments: Bool
    public var values: [Double]
    public var stride: Int { 1 + k + (secondMoments ? k * k : 0) }

    init(k: Int, labels: Int, secondMoments: Bool) {
        self.k = k
        self.labels = labels
        self.secondMoments = secondMoments
        values = [Double](repeating: 0, count: labels * (1 + k + (secondMoments ? k * k : 0)))
    }

    public func probability(_ l: Int) -> Double { values[l * stride] }
    public func firstMoment(_ l: Int) -> [Double] { Array(values[(l * stride + 1)..<(l * stride + 1 + k)]) }
    public func secondMoment(_ l: Int) -> Matrix {
        precondition(secondMoments)
        return Matrix(rows: k, cols: k, values: Array(values[(l * stride + 1 + k)..<(l * stride + 1 + k + k * k)]))
    }
}

/// The covariance part of a Gaussian prior N(ω, V) on z, prepared for the line integrals: the outer
/// marginal of (z₁, …, z_{k−1}) and the conditional of z_k. The mean ω is passed per call, so one
/// `LinePrior` serves every ω of a state-evolution step or every sample of a GAMP iteration.
struct LinePrior {
    let k: Int
    /// V_oo⁻¹ (outer block inverse), the outer log-normaliser, the regression β = V_ko V_oo⁻¹ and
    /// the conditional standard deviation s of z_k.
    let outerInverse: [Double]
    let outerLogNorm: Double
    let beta: [Double]
    let s: Double
    /// k = 2 only: the standard deviation √V₁₁ of the outer marginal (the window ω₁ ± 8.5√V₁₁ of outer
    /// nodes visited) and the length scale min(√V₁₁, s/|β|) on which the outer integrand varies (the
    /// conditional mean of z₂ moves by s over s/|β|); it selects the outer rule. 0 for k ≠ 2.
    let outerDeviation: Double
    let outerScale: Double
    /// √V_ii of the outer coordinates (k ≥ 3: the box of base cells visited).
    let outerDeviations: [Double]

    init?(V: Matrix) {
        let k = V.rows
        self.k = k
        let o = k - 1
        if o == 0 {
            outerInverse = []; outerLogNorm = 0; beta = []; outerDeviation = 0; outerScale = 0; outerDeviations = []
            guard V[0, 0] > 0 else { return nil }
            s = V[0, 0].squareRoot()
            return
        }
        var Voo = Matrix(rows: o, cols: o)
        for i in 0..<o { for j in 0..<o { Voo[i, j] = V[i, j] } }
        guard let inv = Voo.inverseSPD(tolerance: 1e-15), let L = Voo.choleskyPSD(tolerance: 1e-15) else { return nil }
        var logDet = 0.0
        for i in 0..<o { logDet += 2 * log(L[i, i]) }
        outerInverse = inv.values
        outerLogNorm = -0.5 * (Double(o) * log(2 * Double.pi) + logDet)
        var b = [Double](repeating: 0, count: o)
        for j in 0..<o { for i in 0..<o { b[j] += V[k - 1, i] * inv[i, j] } }
        beta = b
        var s2 = V[k - 1, k - 1]
        for i in 0..<o { s2 -= b[i] * V[i, k - 1] }
        guard s2 > 0 else { return nil }
        s = s2.squareRoot()
        outerDeviations = (0..<o).map { V[$0, $0].squareRoot() }
        if o == 1 {
            outerDeviation = V[0, 0].squareRoot()
            outerScale = min(outerDeviation, s / max(abs(b[0]), 1e-300))
        } else {
            outerDeviation = 0; outerScale = 0
        }
    }
}

extension OutputChannel {
    /// Region moments of every label under z ~ N(ω, V) (see `RegionMoments`). V must be positive
    /// definite; returns nil otherwise.
    public func regionMoments(omega: [Double], V: Matrix, secondMoments: Bool = false) -> RegionMoments? {
        guard let prior = linePrior(V: V) else { return nil }
        return regionMoments(omega: omega, prior: prior, secondMoments: secondMoments)
    }

    /// The prior covariance V (in z's coordinates) prepared for the line integrals, in the line
    /// structure's coordinate order (`order`); nil unless V is positive definite.
    func linePrior(V: Matrix) -> LinePrior? {
        guard isPermuted else { return LinePrior(V: V) }
        var P = Matrix(rows: k, cols: k)
        for i in 0..<k { for j in 0..<k { P[i, j] = V[order[i], order[j]] } }
        return LinePrior(V: P)
    }

    /// Region moments under N(ω, V) with V prepared once (`linePrior(V:)`), on the outer rule `rule`
    /// (default: the coarsest one accurate for this V, see `outerRule(for:)`). ω and the moments are in z's
    /// coordinates.
    func regionMoments(omega: [Double], prior: LinePrior, secondMoments: Bool = false, rule: OuterRule? = nil) -> RegionMoments {
        var out = RegionMoments(k: k, labels: labelCount, secondMoments: secondMoments)
        let inner = isPermuted ? order.map { omega[$0] } : omega
        out.values.withUnsafeMutableBufferPointer { acc in
            inner.withUnsafeBufferPointer { w in
                Self.accumulate(rule ?? outerRule(for: prior), prior: prior, omega: w.baseAddress!, secondMoments: secondMoments,
                                onlyLabel: -1, into: acc.baseAddress!)
            }
        }
        if isPermuted {
            let stride = out.stride
            out.values.withUnsafeMutableBufferPointer { v in
                for l in 0..<labelCount { unpermute(v.baseAddress! + l * stride, secondMoments: secondMoments) }
            }
        }
        return out
    }

    /// One label's moments [P, μ (k), S (k×k)] from the line structure's coordinate order back to z's, in place.
    func unpermute(_ m: UnsafeMutablePointer<Double>, secondMoments: Bool) {
        Self.unpermute(m, order: order, secondMoments: secondMoments)
    }

    static func unpermute(_ m: UnsafeMutablePointer<Double>, order: [Int], secondMoments: Bool) {
        let k = order.count
        withUnsafeTemporaryAllocation(of: Double.self, capacity: k + k * k) { t in
            for i in 0..<k { t[order[i]] = m[1 + i] }
            if secondMoments { for i in 0..<k { for j in 0..<k { t[k + order[i] * k + order[j]] = m[1 + k + i * k + j] } } }
            for i in 0..<(secondMoments ? k + k * k : k) { m[1 + i] = t[i] }
        }
    }

    /// The ratios (cell width)/(outer length scale `LinePrior.outerScale`) up to which a coarser k = 2
    /// rule may be used, tried in this order: a rule keeps the first at which it passes `agrees`. With
    /// 10 Gauss–Legendre nodes per cell the coarser rules differ from the finest, at h/scale ≤ 2, 2.5
    /// and 4, by 3e-15, 3e-13 and 9e-10 for sign(z₁z₂) and by 1.4e-12, 3.7e-12 and 8e-8 for the kinked
    /// sign(z₂ − |z₁|) (`StateEvolutionTests.outerRuleLevels`).
    static let cellsPerScaleCandidates = [2.5, 2.0]

    /// Accuracy a coarser k = 2 outer rule must show against the finest one to be used (all region
    /// moments, second moments included, at the priors of `agrees`).
    static let outerRuleTolerance = 1e-11

    /// The means ω at which `agrees` compares the rules.
    static let agreementMeans: [[Double]] = [[0.0, 0.0], [0.37, -0.61], [-1.3, 2.2]]

    /// The range of z₁, in whole cells of `width`, that `agrees` visits (ω₁ ± 8.5σ for its means and the
    /// widest σ = width/min(`cellsPerScaleCandidates`)): a coarser rule restricted to it gives the same
    /// comparison, so the rest of the rule is built only when it passes.
    static func agreementRange(width: Double) -> (Double, Double) {
        let sigma = width / cellsPerScaleCandidates.min()!, means = agreementMeans.map { $0[0] }
        let lo = ((means.min()! - 8.5 * sigma) / width).rounded(.down) * width
        let hi = ((means.max()! + 8.5 * sigma) / width).rounded(.up) * width
        return (max(lo, -range), min(hi, range))
    }

    /// Whether the coarser rule `coarse` reproduces `finest` to `outerRuleTolerance` at the narrowest
    /// priors it would be chosen for with `cellsPerScale` (V = σ²I and a correlated V of outer scale σ,
    /// σ = width/cellsPerScale, at three means). A line structure that is not smooth between the cell
    /// boundaries (breakpoints with unbounded slope, as t = b/z₁ of z₁z₂ or t = ±√(1 − z₁²) of a circle)
    /// fails this by orders of magnitude (1e-5 … 1e-3); such channels keep the finest rule alone.
    static func agrees(_ coarse: OuterRule, _ finest: OuterRule, cellsPerScale: Double, labels: Int) -> Bool {
        let sigma = coarse.width / cellsPerScale, v = sigma * sigma
        let priors = [Matrix([[v, 0], [0, v]]), Matrix([[v, 0.5 * v], [0.5 * v, v]])].compactMap { LinePrior(V: $0) }
        let stride = 1 + 2 + 4
        var a = [Double](repeating: 0, count: labels * stride), b = a
        for prior in priors {
            for omega in agreementMeans {
                a.withUnsafeMutableBufferPointer { acc in
                    acc.update(repeating: 0)
                    accumulate(coarse, prior: prior, omega: omega, secondMoments: true, onlyLabel: -1, into: acc.baseAddress!)
                }
                b.withUnsafeMutableBufferPointer { acc in
                    acc.update(repeating: 0)
                    accumulate(finest, prior: prior, omega: omega, secondMoments: true, onlyLabel: -1, into: acc.baseAddress!)
                }
                for (x, y) in zip(a, b) where !(abs(x - y) <= outerRuleTolerance) { return false }
            }
        }
        return true
    }

    /// The outer rule for a prior: for k = 2 the coarsest rule whose cell width is at most its
    /// `cellsPerScale` times the prior's outer length scale (the finest when none is), for k ≠ 2 the
    /// single rule.
    func outerRule(for prior: LinePrior) -> OuterRule {
        Self.outerRule(in: outerRules, outerDimension: outerDimension, for: prior)
    }

    static func outerRule(in rules: [OuterRule], outerDimension: Int, for prior: LinePrior) -> OuterRule {
        if outerDimension == 1 {
            for rule in rules where rule.width <= rule.cellsPerScale * prior.outerScale { return rule }
        }
        return rules[rules.count - 1]
    }

    /// Adds the region moments under N(ω, V) (V in `prior`) to `acc`: every label at `l·stride` when
    /// `onlyLabel < 0`, otherwise only label `onlyLabel`, at `acc[0 ..< stride]` (its segments alone
    /// are integrated). stride = 1 + k (+ k² with second moments). Allocates nothing.
    ///
    /// Outer nodes farther than 8.5 standard deviations of the outer marginal from ω (relative
    /// density e^{−36}) and breakpoints farther than 8.5 s from the conditional mean are skipped.
    static func accumulate(_ rule: OuterRule, prior: LinePrior, omega: UnsafePointer<Double>, secondMoments: Bool,
                           onlyLabel: Int, into acc: UnsafeMutablePointer<Double>) {
        let k = prior.k, o = k - 1
        let stride = 1 + k + (secondMoments ? k * k : 0)
        let s = prior.s, window = 8.5
        let invSqrt2 = 1 / 2.0.squareRoot(), invSqrt2Pi = 1 / (2 * Double.pi).squareRoot()
        withUnsafeTemporaryAllocation(of: Double.self, capacity: k) { dz in  // (z − ω) of the outer part
        rule.w.withUnsafeBufferPointer { w in
        rule.x.withUnsafeBufferPointer { x in
        rule.breakStart.withUnsafeBufferPointer { breakStart in
        rule.labelStart.withUnsafeBufferPointer { labelStart in
        rule.breaks.withUnsafeBufferPointer { br in
        rule.labels.withUnsafeBufferPointer { lb in
        prior.outerInverse.withUnsafeBufferPointer { inverse in
        prior.beta.withUnsafeBufferPointer { beta in
            // Outer nodes to visit: for k = 2 (nodes sorted) those within ω₁ ± 8.5√V₁₁; for k ≥ 3 those of
            // the base cells that meet the box ω_i ± 10√V_ii around the ellipse quad ≤ 100.
            var first = 0, last = w.count
            if o == 1 {
                let lo = omega[0] - window * prior.outerDeviation, hi = omega[0] + window * prior.outerDeviation
                var a = 0, b = w.count
                while a < b { let m = (a + b) / 2; if x[m] < lo { a = m + 1 } else { b = m } }
                first = a
                b = w.count
                while a < b { let m = (a + b) / 2; if x[m] <= hi { a = m + 1 } else { b = m } }
                last = a
            }
            let cellCount = o >= 2 ? rule.cellSize.count : 1
            var cell = 0
            while cell < cellCount {
            defer { cell += 1 }
            if o >= 2 {
                var meets = true
                for i in 0..<o {
                    let lower = rule.cellLower[cell * o + i], reach = 10 * prior.outerDeviations[i]
                    if lower > omega[i] + reach || lower + rule.cellSize[cell] < omega[i] - reach { meets = false; break }
                }
                guard meets else { continue }
                first = rule.cellNodeStart[cell]; last = rule.cellNodeStart[cell + 1]
            }
            var n = first
            while n < last {
                defer { n += 1 }
                // Outer density and conditional mean of z_k.
                var weight = w[n]
                var c = omega[k - 1]
                if o > 0 {
                    var quad = 0.0
                    for i in 0..<o { dz[i] = x[n * o + i] - omega[i] }
                    for i in 0..<o {
                        var t = 0.0
                        for j in 0..<o { t += inverse[i * o + j] * dz[j] }
                        quad += dz[i] * t
                        c += beta[i] * dz[i]
                    }
                    if quad > 100 { continue }  // k ≥ 3: relative density < e^{−50}
                    weight *= exp(prior.outerLogNorm - 0.5 * quad)
                }
                let e = c - omega[k - 1]
                // Breakpoints inside the window c ± 8.5s.
                let b0 = breakStart[n], b1 = breakStart[n + 1], l0 = labelStart[n]
                var j0 = b0, hi = b1
                let tLo = c - window * s, tHi = c + window * s
                while j0 < hi { let m = (j0 + hi) / 2; if br[m] <= tLo { j0 = m + 1 } else { hi = m } }
                var j1 = j0
                while j1 < b1 && br[j1] < tHi { j1 += 1 }
                // Segments: label lb[l0 + (j − b0)] lies left of breakpoint j. With `onlyLabel`, Φ and φ are
                // evaluated only at the ends of that label's segments.
                var prevPhi = 0.0, prevPdf = 0.0, prevA = 0.0  // at −∞
                var j = j0
                while true {
                    let label = Int(lb[l0 + (j - b0)])
                    let wanted = onlyLabel < 0 || label == onlyLabel
                    var Phi = 1.0, pdf = 0.0, a = 0.0
                    if j < j1 && (wanted || Int(lb[l0 + (j - b0) + 1]) == onlyLabel) {
                        a = (br[j] - c) / s
                        Phi = 0.5 * erfc(-a * invSqrt2)
                        pdf = invSqrt2Pi * exp(-0.5 * a * a)
                    }
                    let P = Phi - prevPhi
                    if wanted && (P > 0 || prevPdf != pdf) {
                        let m1 = prevPdf - pdf                    // E[(t − c)/s 1_seg]
                        let m2 = P + prevA * prevPdf - a * pdf    // E[((t − c)/s)² 1_seg]
                        let base = onlyLabel < 0 ? acc + label * stride : acc
                        let wP = weight * P
                        base[0] += wP
                        for i in 0..<o { base[1 + i] += wP * dz[i] }
                        base[k] += weight * (e * P + s * m1)
                        if secondMoments {
                            let S = base + 1 + k
                            for i in 0..<o { for l in 0..<o { S[i * k + l] += wP * dz[i] * dz[l] } }
                            for i in 0..<o {
                                let v = weight * dz[i] * (e * P + s * m1)
                                S[i * k + (k - 1)] += v; S[(k - 1) * k + i] += v
                            }
                            S[(k - 1) * k + (k - 1)] += weight * (e * e * P + 2 * e * s * m1 + s * s * m2)
                        }
                    }
                    if j >= j1 { break }
                    prevPhi = Phi; prevPdf = pdf; prevA = a
                    j += 1
                }
            }
            }
        }}}}}}}}}
    }
}

// MARK: - Building the line structure

/// A composite Gauss–Legendre rule over the outer coordinates (z₁, …, z_{k−1}) with the line structure
/// at its nodes: Lebesgue weights, and per node a slice of breakpoints (sorted) and labels (one more
/// than breakpoints). For k = 2 the nodes are sorted by coordinate.
struct OuterRule: Sendable {
    /// Base cell width (cells are further split where the line structure jumps).
    var width: Double
    /// A coarser rule is used for priors whose outer length scale is at least width/cellsPerScale (set
    /// when the rule passes `OutputChannel.agrees`); 0 for the finest, which serves every prior.
    var cellsPerScale = 0.0
    var x: [Double] = []
    var w: [Double] = []
    var breakStart: [Int] = [0]
    var breaks: [Double] = []
    var labelStart: [Int] = []
    var labels: [Int32] = []
    /// k ≥ 3: the base cells (lower corners, k − 1 each, and sizes) and the range of nodes each holds
    /// (`cellNodeStart[c] ..< cellNodeStart[c + 1]`, its refinements included).
    var cellLower: [Double] = []
    var cellSize: [Double] = []
    var cellNodeStart: [Int] = [0]
    /// k = 2: the locations where the line structure jumps (cells refined down to the bisection
    /// tolerance without becoming smooth); coarser rules put cell boundaries there.
    var jumps: [Double] = []

    /// Appends the nodes (and k ≥ 3 cells) of `other` (which must lie to the right of these, keeping k = 2
    /// rules sorted).
    mutating func append(_ other: OuterRule) {
        cellLower += other.cellLower
        cellSize += other.cellSize
        cellNodeStart += other.cellNodeStart.dropFirst().map { $0 + w.count }
        x += other.x
        w += other.w
        labelStart += other.labelStart.map { $0 + labels.count }
        breakStart += other.breakStart.dropFirst().map { $0 + breaks.count }
        breaks += other.breaks
        labels += other.labels
        jumps += other.jumps
    }
}

/// Finds the breakpoints of the label along z_k-lines and the outer Gauss–Legendre nodes.
struct LineStructureBuilder: Sendable {
    let k: Int
    let target: Formula
    /// The channel's alphabet, bin origin and label count (`OutputChannel.label(ofOutput:…)`).
    let alphabet: OutputChannel.Alphabet
    let binOrigin: Double
    let labelCount: Int
    /// Locate every breakpoint by bisection of the label, also for a binned output (the independent
    /// route of the tests); otherwise a binned output's crossings are found by a root finder on g − edge.
    var bisectionOnly = false
    let refinement: Int
    /// The channel's coordinate order when its lines run along another axis than the last (`OutputChannel.order`):
    /// coordinate i of a line point is z[order[i]] of the target. nil: the identity.
    var order: [Int]? = nil
    /// Cells are halved where the line structure jumps (discrete outputs).
    var refineJumps: Bool { if case .discrete = alphabet { return true } else { return false } }

    @inline(__always) func label(_ y: Double) -> Int32 {
        Int32(OutputChannel.label(ofOutput: y, alphabet: alphabet, binOrigin: binOrigin, labelCount: labelCount))
    }

    /// Scan resolution along a line and the tolerance to which breakpoints are located.
    static let scanPoints = 440
    static let tolerance = 1e-11

    /// The breakpoints and labels along the line z_{<k} = prefix.
    ///
    /// The line t ↦ g(prefix, t), t ∈ [−R, R], is scanned at `scanPoints` + 1 points; a scan interval whose
    /// end labels differ is split until each piece holds a single label step, and that step is then
    /// bracketed to width < `tolerance` (the breakpoint is the bracket's midpoint, as by bisection):
    /// - discrete output (or `bisectionOnly`): bisection of the label;
    /// - binned output: pieces with several steps are split at the interpolated position of a bin centre
    ///   between the end values (the midpoint once such a split fails to separate steps, as at a jump);
    ///   a single step ℓ → ℓ ± 1 by regula falsi on g − edge (Illinois: the end kept twice in a row has
    ///   its value halved), each point kept at least 0.4·tolerance inside the bracket so that a point
    ///   next to the root is followed by one across it, and a bisection step after two steps that did not
    ///   halve the bracket (so never worse than ~3× bisection, at a jump of g too). The bracket is kept by
    ///   labels, so it holds the label change exactly as bisection's does: both agree to the tolerance.
    ///   A third label met inside (g not monotone there) hands both halves back to the splitting.
    ///   For g linear along the line (z₁z₂, tanh(z₁)z₂, z₁z₂z₃) a crossing costs about three evaluations
    ///   of g (a split, a secant step, a step across) against ~32 bisection steps from the scan spacing
    ///   0.05 down to 1e-11. Measured time per crossing, scan included, on the lines of
    ///   `LineStructureTests`: 11× (z₁z₂), 35× (tanh(z₁)z₂), 9.6× (z₁z₂z₃), 5.4× (sin(2z₂) + z₁z₂²) less.
    func line(_ prefix: [Double]) -> (breaks: [Double], labels: [Int32]) {
        withUnsafeTemporaryAllocation(of: Double.self, capacity: 2 * k) { z in line(prefix, z) }
    }

    private func line(_ prefix: [Double], _ buffer: UnsafeMutableBufferPointer<Double>) -> (breaks: [Double], labels: [Int32]) {
        // z: the line point in the line structure's order; original: the same point in z's order (permuted channels).
        let z = UnsafeMutableBufferPointer(rebasing: buffer[0..<k])
        let original = UnsafeMutableBufferPointer(rebasing: buffer[k..<(2 * k)])
        for i in 0..<(k - 1) { z[i] = prefix[i] }
        let R = OutputChannel.range, tol = Self.tolerance, last = k - 1
        let point = UnsafeBufferPointer(z), originalPoint = UnsafeBufferPointer(original), target = self.target, order = self.order
        func g(_ t: Double) -> Double {
            z[last] = t
            guard let order else { return target.value(point) }
            for i in 0..<order.count { original[order[i]] = z[i] }
            return target.value(originalPoint)
        }
        // Label ℓ is the bin [origin + (ℓ − 1)h, origin + ℓh): the edge between ℓ and ℓ + 1 is origin + ℓh.
        var h = 0.0
        if case let .binned(width) = alphabet, !bisectionOnly { h = width }
        let origin = binOrigin
        func edge(_ l: Int32) -> Double { origin + Double(l) * h }
        var breaks: [Double] = [], labels: [Int32] = []
        // One label step ℓa → ℓb = ℓa ± 1 in [a, b] (values ya, yb): regula falsi on g − edge.
        func step(_ a0: Double, _ ya: Double, _ la: Int32, _ b0: Double, _ yb: Double, _ lb: Int32, edge e: Double) {
            var a = a0, b = b0, ya = ya, yb = yb, fa = ya - e, fb = yb - e
            var kept = 0     // +1: a was kept in the last step, −1: b
            var stalled = 0  // steps in a row that did not halve the bracket
            while b - a >= tol {
                let w = b - a
                var x = 0.5 * (a + b)
                if stalled < 2 {
                    let r = a - fa * w / (fb - fa)
                    if r.isFinite { x = min(max(r, a + 0.4 * tol), b - 0.4 * tol) }
                } else {
                    stalled = 0
                }
                let y = g(x), lx = label(y)
                if lx == la {
                    a = x; ya = y; fa = y - e
                    if kept == -1 { fb *= 0.5 }
                    kept = -1
                } else if lx == lb {
                    b = x; yb = y; fb = y - e
                    if kept == 1 { fa *= 0.5 }
                    kept = 1
                } else {
                    refine(a, ya, la, x, y, lx, interpolate: false)
                    refine(x, y, lx, b, yb, lb, interpolate: false)
                    return
                }
                stalled = b - a > 0.5 * w ? stalled + 1 : 0
            }
            breaks.append(0.5 * (a + b)); labels.append(lb)
        }
        func refine(_ a: Double, _ ya: Double, _ la: Int32, _ b: Double, _ yb: Double, _ lb: Int32, interpolate: Bool) {
            if la == lb { return }
            let steps = Int(lb) - Int(la)
            if h > 0 && abs(steps) == 1 {
                step(a, ya, la, b, yb, lb, edge: edge(min(la, lb)))
                return
            }
            if b - a < tol {
                breaks.append(0.5 * (a + b)); labels.append(lb)
                return
            }
            var m = 0.5 * (a + b)
            if h > 0 && interpolate {
                // The centre of the middle bin between the end labels, where g reaches it if g is linear.
                let middle = la + Int32(steps / 2), centre = edge(middle) - 0.5 * h
                let r = a + (centre - ya) / (yb - ya) * (b - a)
                if r.isFinite { m = min(max(r, a + 0.0625 * (b - a)), b - 0.0625 * (b - a)) }
            }
            let ym = g(m), lm = label(ym)
            // A split that separates no steps (a jump of g, or g far from linear) is followed by midpoints.
            let separated = interpolate && lm != la && lm != lb
            refine(a, ya, la, m, ym, lm, interpolate: separated)
            refine(m, ym, lm, b, yb, lb, interpolate: separated)
        }
        let n = Self.scanPoints
        var ta = -R, ya = g(ta), la = label(ya)
        labels.append(la)
        for i in 1...n {
            let tb = -R + 2 * R * Double(i) / Double(n)
            let yb = g(tb), lb = label(yb)
            refine(ta, ya, la, tb, yb, lb, interpolate: true)
            ta = tb; ya = yb; la = lb
        }
        // A label met only on a set narrower than the tolerance (sign(0) = 0 at a crossing) has measure
        // zero: drop the segment, joining its neighbours at the midpoint.
        var j = 0
        while j + 1 < breaks.count {
            if breaks[j + 1] - breaks[j] < 4 * Self.tolerance {
                if labels[j] == labels[j + 2] {
                    breaks.removeSubrange(j...(j + 1)); labels.removeSubrange((j + 1)...(j + 2))
                } else {
                    breaks[j] = 0.5 * (breaks[j] + breaks[j + 1]); breaks.remove(at: j + 1); labels.remove(at: j + 1)
                }
                continue
            }
            j += 1
        }
        return (breaks, labels)
    }

    /// The signature a smooth cell keeps: the labels of the segments that reach |t| < 9.
    static func signature(_ l: (breaks: [Double], labels: [Int32])) -> [Int32] {
        var out: [Int32] = []
        for (j, lab) in l.labels.enumerated() {
            let left = j == 0 ? -Double.infinity : l.breaks[j - 1]
            let right = j == l.breaks.count ? Double.infinity : l.breaks[j]
            if right > -9 && left < 9 { out.append(lab) }
        }
        return out
    }

    /// Cell width and Gauss–Legendre order of the finest outer rule per outer dimension (before
    /// `refinement` halvings), and the depth to which cells are halved at a jump.
    var finest: (width: Double, order: Int, maxDepth: Int) {
        switch k - 1 {
        case 1: return (0.25, 10, 40)
        case 2: return (0.5, 6, 7)
        default: return (1.0, 4, 3)
        }
    }

    /// The finest outer rule: cells of width `finest.width`/2^refinement tiling [−R, R]^{k−1}, halved
    /// where the line structure changes (a jump of a discrete g).
    func build() -> OuterRule {
        let o = k - 1
        let refinedWidth = finest.width / pow(2, Double(refinement))
        var rule = OuterRule(width: refinedWidth)
        if o == 0 {
            add([], 1, line([]), to: &rule)
            return rule
        }
        let R = OutputChannel.range
        let cellsPerDim = Int((2 * R / refinedWidth).rounded())
        let h = 2 * R / Double(cellsPerDim)
        // The cells are independent: built in contiguous chunks on all cores and joined in cell order (z₁
        // fastest), so the rule does not depend on the scheduling. A chunk is joined as soon as those before
        // it are, so only the chunks finished out of order are held besides the rule.
        let cellCount = Int(pow(Double(cellsPerDim), Double(o)))
        let chunks = min(cellCount, 16 * ProcessInfo.processInfo.activeProcessorCount)
        let joiner = OrderedJoin(rule)
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            var part = OuterRule(width: refinedWidth)
            for c in (chunk * cellCount / chunks)..<((chunk + 1) * cellCount / chunks) {
                var rest = c
                let lower = (0..<o).map { _ in
                    defer { rest /= cellsPerDim }
                    return -R + h * Double(rest % cellsPerDim)
                }
                cell(lower, h, 0, into: &part)
                if o >= 2 {
                    part.cellLower += lower
                    part.cellSize.append(h)
                    part.cellNodeStart.append(part.w.count)
                }
            }
            joiner.add(chunk, part)
        }
        return joiner.rule
    }

    /// Appends parts of a rule, numbered 0, 1, …, in their order as they arrive from any thread.
    private final class OrderedJoin: @unchecked Sendable {
        private let lock = NSLock()
        private var waiting: [Int: OuterRule] = [:]
        private var next = 0
        private(set) var rule: OuterRule

        init(_ rule: OuterRule) { self.rule = rule }

        func add(_ index: Int, _ part: OuterRule) {
            lock.lock()
            defer { lock.unlock() }
            waiting[index] = part
            while let ready = waiting.removeValue(forKey: next) {
                rule.append(ready)
                next += 1
            }
        }
    }

    /// k = 2: a coarser outer rule with cells of width `width` (a power of two times the finest width)
    /// whose boundaries are the multiples of `width` in (−R, R), ±R and the jump locations `jumps` of
    /// the finest rule, so that every cell is smooth; 10 Gauss–Legendre nodes per cell.
    /// Only the cells in [lo, hi] (multiples of `width` or ±R) are built when a range is given.
    func buildCoarse(width: Double, jumps: [Double], from lo: Double = -OutputChannel.range,
                     to hi: Double = OutputChannel.range) -> OuterRule {
        precondition(k == 2)
        var edges = [lo, hi] + jumps.filter { $0 > lo && $0 < hi }
        var m = (lo / width).rounded(.up)
        while m * width < hi { if m * width > lo { edges.append(m * width) }; m += 1 }
        edges.sort()
        var rule = OuterRule(width: width)
        for (a, b) in zip(edges, edges.dropFirst()) where b - a > 4 * Self.tolerance {
            cell([a], b - a, 0, into: &rule)
        }
        return rule
    }

    private func add(_ prefix: [Double], _ weight: Double, _ l: (breaks: [Double], labels: [Int32]), to rule: inout OuterRule) {
        rule.x.append(contentsOf: prefix)
        rule.w.append(weight)
        rule.labelStart.append(rule.labels.count)
        rule.breaks.append(contentsOf: l.breaks)
        rule.labels.append(contentsOf: l.labels)
        rule.breakStart.append(rule.breaks.count)
    }

    /// The tensor Gauss–Legendre rule on the cube [lower, lower + size]^{k−1}, or on its 2^{k−1} halves
    /// when the line signature is not the same at all nodes (down to `finest.maxDepth` halvings).
    private func cell(_ lower: [Double], _ size: Double, _ depth: Int, into rule: inout OuterRule) {
        let o = k - 1
        let (_, order, maxDepth) = finest
        let (gx, gw) = GSL.gaussLegendreUnit(order)
        var nodes: [([Double], Double, (breaks: [Double], labels: [Int32]))] = []
        var idx = [Int](repeating: 0, count: o)
        var signature: [Int32]?
        var smooth = true
        while true {
            var p = [Double](repeating: 0, count: o), w = 1.0
            for i in 0..<o { p[i] = lower[i] + size * gx[idx[i]]; w *= size * gw[idx[i]] }
            let l = line(p)
            if refineJumps && smooth {
                let sig = Self.signature(l)
                if let signature, signature != sig { smooth = false }
                signature = signature ?? sig
            }
            nodes.append((p, w, l))
            var r = 0
            while r < o { idx[r] += 1; if idx[r] < order { break }; idx[r] = 0; r += 1 }
            if r == o { break }
        }
        if smooth || depth >= maxDepth {
            if !smooth && o == 1 { rule.jumps.append(lower[0] + 0.5 * size) }
            for (p, w, l) in nodes { add(p, w, l, to: &rule) }
            return
        }
        var child = [Int](repeating: 0, count: o)
        while true {
            cell((0..<o).map { lower[$0] + 0.5 * size * Double(child[$0]) }, 0.5 * size, depth + 1, into: &rule)
            var r = 0
            while r < o { child[r] += 1; if child[r] < 2 { break }; child[r] = 0; r += 1 }
            if r == o { break }
        }
    }
}

// MARK: - GAMP's channel step

extension OutputChannel: OutputDenoiser {
    /// The label of an observed output: the nearest discrete value, or the bin of y.
    public func label(ofOutput y: Double) -> Int {
        Self.label(ofOutput: y, alphabet: alphabet, binOrigin: binOrigin, labelCount: labelCount)
    }

    /// The nearest discrete value (binary search), or the bin of y (the outer bins reach ±∞).
    static func label(ofOutput y: Double, alphabet: Alphabet, binOrigin: Double, labelCount: Int) -> Int {
        switch alphabet {
        case let .discrete(v):
            var lo = 0, hi = v.count - 1
            while lo < hi { let m = (lo + hi) / 2; if v[m] < y { lo = m + 1 } else { hi = m } }
            // the nearest of v[lo − 1] and v[lo]
            return lo > 0 && abs(v[lo - 1] - y) < abs(v[lo] - y) ? lo - 1 : lo
        case let .binned(h):
            // NaN (a link undefined on a set of measure zero) and −∞ go to the lowest bin, +∞ to the highest.
            guard y >= binOrigin else { return 0 }
            let bin = ((y - binOrigin) / h).rounded(.down)
            return bin < Double(labelCount - 2) ? Int(bin) + 1 : labelCount - 1
        }
    }

    /// E[z | y, ω, V] and Cov[z | y, ω, V] (see `OutputChannelWorkspace.posterior`). Convenience form
    /// that prepares V for this one call; GAMP uses the workspace, which allocates nothing per sample.
    public func posterior(y: Double, omega: [Double], V: Matrix, mean: inout [Double], covariance: inout [Double]) -> Bool {
        let workspace = OutputChannelWorkspace(channel: self)
        guard V.rows == k, V.values.withUnsafeBufferPointer({ workspace.setCovariance($0.baseAddress!) }) else { return false }
        return omega.withUnsafeBufferPointer { w in
            mean.withUnsafeMutableBufferPointer { m in
                covariance.withUnsafeMutableBufferPointer { c in
                    workspace.posterior(y: y, omega: w.baseAddress!, mean: m.baseAddress!, covariance: c.baseAddress!)
                }
            }
        }
    }

    public func makeWorkspace() -> any OutputDenoiserWorkspace { OutputChannelWorkspace(channel: self) }

    /// The label of y for a noiseless output (the posterior depends on y only through it); nil with noise.
    public func outputClass(y: Double) -> Int? { noise > 0 ? nil : label(ofOutput: y) }
}

/// Scratch space for the channel step of GAMP on one thread: the prior covariance V prepared once per
/// iteration (`setCovariance`), then `posterior` per sample without allocating.
public final class OutputChannelWorkspace: OutputDenoiserWorkspace {
    public let channel: OutputChannel
    private var prior: LinePrior?
    private var rule: OuterRule?
    /// Region moments (with second moments) of every label (noisy output) or of one (noiseless).
    private let moments: UnsafeMutablePointer<Double>
    private let capacity: Int
    /// `OutputChannel.mixtureNoise`.
    private let mixtureNoise: Double
    /// ω, mean and covariance in the line structure's order (2k + k² doubles) for a permuted channel.
    private let scratch: UnsafeMutablePointer<Double>

    public init(channel: OutputChannel) {
        self.channel = channel
        let k = channel.k
        mixtureNoise = channel.mixtureNoise
        capacity = (mixtureNoise > 0 ? channel.labelCount : 1) * (1 + k + k * k)
        moments = .allocate(capacity: capacity)
        moments.initialize(repeating: 0, count: capacity)
        scratch = .allocate(capacity: 2 * k + k * k)
        scratch.initialize(repeating: 0, count: 2 * k + k * k)
    }

    deinit { moments.deallocate(); scratch.deallocate() }

    /// Prepares the prior covariance V (k×k, row-major, symmetric) for the following `posterior`
    /// calls and picks the outer rule for it. False when V is not positive definite.
    public func setCovariance(_ V: UnsafePointer<Double>) -> Bool {
        let k = channel.k
        prior = channel.linePrior(V: Matrix(rows: k, cols: k, values: Array(UnsafeBufferPointer(start: V, count: k * k))))
        rule = prior.map { channel.outerRule(for: $0) }
        return prior != nil
    }

    /// E[z | y, ω, V] into `mean` (k) and Cov[z | y, ω, V] into `covariance` (k×k, row-major), V from
    /// `setCovariance`. Without noise only the observed label's segments are integrated; with noise the
    /// labels within 9σ of y are mixed with weights N(y; v_ℓ, Δ'). False when y has no likelihood (or
    /// no valid V was set).
    public func posterior(y: Double, omega: UnsafePointer<Double>, mean: UnsafeMutablePointer<Double>,
                          covariance: UnsafeMutablePointer<Double>) -> Bool {
        guard channel.isPermuted else { return posteriorInLineOrder(y: y, omega: omega, mean: mean, covariance: covariance) }
        // ω into the line structure's order, the moments back to z's.
        let k = channel.k, order = channel.order
        for i in 0..<k { scratch[i] = omega[order[i]] }
        guard posteriorInLineOrder(y: y, omega: scratch, mean: scratch + k, covariance: scratch + 2 * k) else { return false }
        for i in 0..<k {
            mean[order[i]] = scratch[k + i]
            for j in 0..<k { covariance[order[i] * k + order[j]] = scratch[2 * k + i * k + j] }
        }
        return true
    }

    private func posteriorInLineOrder(y: Double, omega: UnsafePointer<Double>, mean: UnsafeMutablePointer<Double>,
                                      covariance: UnsafeMutablePointer<Double>) -> Bool {
        guard let prior, let rule else { return false }
        let k = channel.k, stride = 1 + k + k * k
        moments.update(repeating: 0, count: capacity)
        var Z = 0.0
        for i in 0..<k { mean[i] = 0 }
        for i in 0..<(k * k) { covariance[i] = 0 }
        // mean and covariance hold the weighted sums Σ a μ_ℓ and Σ a S_ℓ until the end.
        func add(_ base: UnsafeMutablePointer<Double>, _ a: Double) {
            Z += a * base[0]
            for i in 0..<k { mean[i] += a * base[1 + i] }
            for i in 0..<(k * k) { covariance[i] += a * base[1 + k + i] }
        }
        if mixtureNoise <= 0 {
            OutputChannel.accumulate(rule, prior: prior, omega: omega, secondMoments: true,
                                     onlyLabel: channel.label(ofOutput: y), into: moments)
            add(moments, 1)
        } else {
            OutputChannel.accumulate(rule, prior: prior, omega: omega, secondMoments: true, onlyLabel: -1, into: moments)
            let sigma = mixtureNoise.squareRoot()
            for l in 0..<channel.labelCount where abs(channel.labelValues[l] - y) <= 9 * sigma {
                let d = (y - channel.labelValues[l]) / sigma
                add(moments + l * stride, exp(-0.5 * d * d))
            }
        }
        guard Z > 1e-300 else { return false }
        for i in 0..<k { mean[i] /= Z }
        for i in 0..<k { for j in 0..<k { covariance[i * k + j] = covariance[i * k + j] / Z - mean[i] * mean[j] } }
        for i in 0..<k { mean[i] += omega[i] }
        return true
    }
}
