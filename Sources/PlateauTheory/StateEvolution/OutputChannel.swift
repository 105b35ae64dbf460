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
/// changes along z_k (scan plus bisection to 1e-11) and the labels between them. Under z ~ N(ω, V),
/// z_k given the other coordinates is Gaussian, so each line integral of 1, z and zzᵀ over a
/// segment is a closed form in Φ and φ at the breakpoints: exact. The outer (k − 1)-dimensional
/// integral is a composite Gauss–Legendre rule (GSL's glfixed tables) on cells that are split where
/// the line structure changes (a jump of a discrete g), down to a width of 1e-11 for k = 2.
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

    // Line structure: outer nodes (k − 1 coordinates each), Lebesgue weights, and per node a slice of
    // breakpoints (sorted) and labels (one more than breakpoints).
    let outerDimension: Int
    let nodeX: [Double]
    let nodeW: [Double]
    let breakStart: [Int]
    let breaks: [Double]
    let labelStart: [Int]
    let labels: [Int32]
    let binOrigin: Double

    /// Half-width of the z range the line structure covers (|z_i| ≤ range).
    public static let range = 11.0

    public var labelCount: Int { labelValues.count }
    /// The bin width of a binned output (nil for a discrete one).
    public var binWidth: Double? { if case let .binned(h) = alphabet { return h } else { return nil } }
    public var nodeCount: Int { nodeW.count }
    public var isDiscrete: Bool { if case .discrete = alphabet { return true } else { return false } }

    /// Builds the channel of `problem` (its target, k and Δ), with `resolution` the bin width for a
    /// continuous output (default: the problem's setting).
    public init(problem: EstimationProblem, resolution: Double? = nil, refinement: Int = 0) throws {
        try problem.validate()
        _ = GSL.ready
        k = problem.k
        target = problem.target
        noise = problem.noise
        let g = target
        let k = self.k
        // Probe the output on a deterministic point set to classify it.
        let probe = Self.probePoints(k: k)
        var values = Set<Double>()
        var lo = Double.infinity, hi = -Double.infinity
        var z = [Double](repeating: 0, count: k)
        for i in 0..<(probe.count / k) {
            for r in 0..<k { z[r] = probe[i * k + r] }
            let y = g.value(z)
            guard y.isFinite else {
                throw SpecError(field: "teacher.target", value: "\"\(g)\"",
                                reason: "is not finite at z = \(z.map { Experiment.format($0) }) (the channel needs a finite output)")
            }
            if values.count <= 64 { values.insert(y) }
            lo = min(lo, y); hi = max(hi, y)
        }
        let discrete = values.count <= 32
        if discrete {
            let v = values.sorted()
            alphabet = .discrete(v)
            labelValues = v
            binOrigin = 0
        } else {
            var h = resolution ?? problem.settings.outputResolution
            if problem.noise > 0 { h = min(h, problem.noise.squareRoot() / 20) }
            alphabet = .binned(width: h)
            let origin = (lo / h).rounded(.down) * h - h
            let count = Int(((hi - origin) / h).rounded(.up)) + 2
            binOrigin = origin
            // Labels 0 … count − 1 are the bins [origin + (ℓ − 1)h, origin + ℓh); label 0 is (−∞, origin),
            // the last one [origin + (count − 2)h, ∞). Centres of the outer bins are their inner edges ∓ h/2.
            labelValues = (0..<count).map { origin + (Double($0) - 0.5) * h }
        }
        // Line structure.
        outerDimension = k - 1
        let labelOf: (UnsafeBufferPointer<Double>) -> Int32
        switch alphabet {
        case let .discrete(v):
            labelOf = { zz in
                let y = g.value(zz)
                var lo = 0, hi = v.count - 1
                while lo < hi { let m = (lo + hi) / 2; if v[m] < y { lo = m + 1 } else { hi = m } }
                // nearest of v[lo - 1], v[lo]
                if lo > 0 && abs(v[lo - 1] - y) < abs(v[lo] - y) { return Int32(lo - 1) }
                return Int32(lo)
            }
        case let .binned(h):
            let origin = binOrigin, last = labelValues.count - 1
            labelOf = { zz in
                let y = g.value(zz)
                if !(y >= origin) { return 0 }
                let b = Int(((y - origin) / h).rounded(.down)) + 1
                return Int32(min(b, last))
            }
        }
        let builder = LineStructureBuilder(k: k, label: labelOf, refineJumps: discrete, refinement: refinement)
        let built = builder.build()
        nodeX = built.x; nodeW = built.w; breakStart = built.breakStart; breaks = built.breaks
        labelStart = built.labelStart; labels = built.labels
        // Output moments under the prior, from the labels (exact for a discrete output; for a binned one the
        // grouped second moment exceeds E[g²] by the within-bin variance h²/12: Sheppard's correction).
        var mean = 0.0, second = 0.0
        let prior = LinePrior(omega: [Double](repeating: 0, count: k), V: .identity(k))!
        let stride = 1 + k + k * k
        var acc = [Double](repeating: 0, count: labelValues.count * stride)
        acc.withUnsafeMutableBufferPointer { buffer in
            Self.accumulate(prior, k: k, outerDimension: k - 1, nodeX: built.x, nodeW: built.w, breakStart: built.breakStart,
                            breaks: built.breaks, labelStart: built.labelStart, labels: built.labels, secondMoments: true,
                            into: buffer.baseAddress!)
        }
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

/// A Gaussian prior N(ω, V) on z, prepared for the line integrals: the outer marginal of
/// (z₁, …, z_{k−1}) and the conditional of z_k.
struct LinePrior {
    let k: Int
    let omega: [Double]
    /// V_oo⁻¹ (outer block inverse), the outer log-normaliser, the regression β = V_ko V_oo⁻¹ and
    /// the conditional standard deviation s of z_k.
    let outerInverse: [Double]
    let outerLogNorm: Double
    let beta: [Double]
    let s: Double

    init?(omega: [Double], V: Matrix) {
        let k = omega.count
        self.k = k
        self.omega = omega
        let o = k - 1
        if o == 0 {
            outerInverse = []; outerLogNorm = 0; beta = []
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
    }
}

extension OutputChannel {
    /// Region moments of every label under z ~ N(ω, V) (see `RegionMoments`). V must be positive
    /// definite; returns nil otherwise.
    public func regionMoments(omega: [Double], V: Matrix, secondMoments: Bool = false) -> RegionMoments? {
        guard let prior = LinePrior(omega: omega, V: V) else { return nil }
        var out = RegionMoments(k: k, labels: labelCount, secondMoments: secondMoments)
        out.values.withUnsafeMutableBufferPointer { acc in
            Self.accumulate(prior, k: k, outerDimension: outerDimension, nodeX: nodeX, nodeW: nodeW, breakStart: breakStart,
                            breaks: breaks, labelStart: labelStart, labels: labels, secondMoments: secondMoments,
                            into: acc.baseAddress!)
        }
        return out
    }

    static func accumulate(_ prior: LinePrior, k: Int, outerDimension o: Int, nodeX: [Double], nodeW: [Double],
                           breakStart: [Int], breaks: [Double], labelStart: [Int], labels: [Int32], secondMoments: Bool,
                           into acc: UnsafeMutablePointer<Double>) {
        let stride = 1 + k + (secondMoments ? k * k : 0)
        let s = prior.s, window = 8.5
        let invSqrt2 = 1 / 2.0.squareRoot(), invSqrt2Pi = 1 / (2 * Double.pi).squareRoot()
        var delta = [Double](repeating: 0, count: max(o, 1))
        var dz = [Double](repeating: 0, count: k)  // (z − ω) of the outer part and e = c − ω_k
        nodeW.withUnsafeBufferPointer { w in
        nodeX.withUnsafeBufferPointer { x in
        breaks.withUnsafeBufferPointer { br in
        labels.withUnsafeBufferPointer { lb in
            for n in 0..<w.count {
                // Outer density and conditional mean of z_k.
                var weight = w[n]
                var c = prior.omega[k - 1]
                if o > 0 {
                    var quad = 0.0
                    for i in 0..<o { delta[i] = x[n * o + i] - prior.omega[i] }
                    for i in 0..<o {
                        var t = 0.0
                        for j in 0..<o { t += prior.outerInverse[i * o + j] * delta[j] }
                        quad += delta[i] * t
                        c += prior.beta[i] * delta[i]
                    }
                    if quad > 2 * 40 * 40 { continue }
                    weight *= exp(prior.outerLogNorm - 0.5 * quad)
                    if weight < 1e-300 { continue }
                }
                for i in 0..<o { dz[i] = delta[i] }
                let e = c - prior.omega[k - 1]
                // Breakpoints inside the window c ± 9s.
                let b0 = breakStart[n], b1 = breakStart[n + 1], l0 = labelStart[n]
                var j0 = b0, hi = b1
                let tLo = c - window * s, tHi = c + window * s
                while j0 < hi { let m = (j0 + hi) / 2; if br[m] <= tLo { j0 = m + 1 } else { hi = m } }
                var j1 = j0
                while j1 < b1 && br[j1] < tHi { j1 += 1 }
                // Segments: label lb[l0 + (j − b0)] lies left of breakpoint j.
                var prevPhi = 0.0, prevPdf = 0.0, prevA = 0.0  // at −∞
                var j = j0
                while true {
                    let label = Int(lb[l0 + (j - b0)])
                    var Phi = 1.0, pdf = 0.0, a = 0.0
                    if j < j1 {
                        a = (br[j] - c) / s
                        Phi = 0.5 * erfc(-a * invSqrt2)
                        pdf = invSqrt2Pi * exp(-0.5 * a * a)
                    }
                    let P = Phi - prevPhi
                    if P > 0 || prevPdf != pdf {
                        let m1 = prevPdf - pdf                    // E[(t − c)/s 1_seg]
                        let m2 = P + prevA * prevPdf - a * pdf    // E[((t − c)/s)² 1_seg]
                        let base = acc + label * stride
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
        }}}}
    }
}

// MARK: - Building the line structure

/// Finds the breakpoints of the label along z_k-lines and the outer Gauss–Legendre nodes.
struct LineStructureBuilder {
    let k: Int
    let label: (UnsafeBufferPointer<Double>) -> Int32
    let refineJumps: Bool
    let refinement: Int

    struct Built {
        var x: [Double] = []
        var w: [Double] = []
        var breakStart: [Int] = [0]
        var breaks: [Double] = []
        var labelStart: [Int] = []
        var labels: [Int32] = []
    }

    /// Scan resolution along a line and the bisection tolerance.
    static let scanPoints = 440
    static let tolerance = 1e-11

    /// The breakpoints and labels along the line z_{<k} = prefix.
    func line(_ prefix: [Double]) -> (breaks: [Double], labels: [Int32]) {
        var z = prefix + [0]
        let R = OutputChannel.range
        func lab(_ t: Double) -> Int32 {
            z[k - 1] = t
            return z.withUnsafeBufferPointer { label($0) }
        }
        var breaks: [Double] = [], labels: [Int32] = []
        var ta = -R, la = lab(ta)
        labels.append(la)
        func refine(_ a: Double, _ la: Int32, _ b: Double, _ lb: Int32) {
            if la == lb { return }
            if b - a < Self.tolerance {
                breaks.append(0.5 * (a + b)); labels.append(lb)
                return
            }
            let m = 0.5 * (a + b), lm = lab(m)
            refine(a, la, m, lm)
            refine(m, lm, b, lb)
        }
        let n = Self.scanPoints
        for i in 1...n {
            let tb = -R + 2 * R * Double(i) / Double(n)
            let lb = lab(tb)
            refine(ta, la, tb, lb)
            ta = tb; la = lb
        }
        // A label met only on a set narrower than the bisection tolerance (sign(0) = 0 at a crossing) has
        // measure zero: drop the segment, joining its neighbours at the midpoint.
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

    func build() -> Built {
        var built = Built()
        func add(_ prefix: [Double], _ weight: Double, _ l: (breaks: [Double], labels: [Int32])) {
            built.x.append(contentsOf: prefix)
            built.w.append(weight)
            built.labelStart.append(built.labels.count)
            built.breaks.append(contentsOf: l.breaks)
            built.labels.append(contentsOf: l.labels)
            built.breakStart.append(built.breaks.count)
        }
        let o = k - 1
        if o == 0 {
            add([], 1, line([]))
            return built
        }
        // Base cells and Gauss–Legendre order per outer dimension.
        let (width, order, maxDepth): (Double, Int, Int) = {
            switch o {
            case 1: return (0.25, 10, 40)
            case 2: return (0.5, 6, 7)
            default: return (1.0, 4, 3)
            }
        }()
        let refinedWidth = width / pow(2, Double(refinement))
        let (gx, gw) = GSL.gaussLegendreUnit(order)
        let R = OutputChannel.range
        let cellsPerDim = Int((2 * R / refinedWidth).rounded())
        let h = 2 * R / Double(cellsPerDim)
        func cell(_ lower: [Double], _ size: Double, _ depth: Int) {
            // Nodes of the tensor rule on [lower, lower + size]^o.
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
                for (p, w, l) in nodes { add(p, w, l) }
                return
            }
            var child = [Int](repeating: 0, count: o)
            while true {
                cell((0..<o).map { lower[$0] + 0.5 * size * Double(child[$0]) }, 0.5 * size, depth + 1)
                var r = 0
                while r < o { child[r] += 1; if child[r] < 2 { break }; child[r] = 0; r += 1 }
                if r == o { break }
            }
        }
        var idx = [Int](repeating: 0, count: o)
        while true {
            cell((0..<o).map { -R + h * Double(idx[$0]) }, h, 0)
            var r = 0
            while r < o { idx[r] += 1; if idx[r] < cellsPerDim { break }; idx[r] = 0; r += 1 }
            if r == o { break }
        }
        return built
    }
}

// MARK: - GAMP's channel step

extension OutputChannel: OutputDenoiser {
    /// The label of an observed output: the nearest discrete value, or the bin of y.
    public func label(ofOutput y: Double) -> Int {
        switch alphabet {
        case let .discrete(v):
            var best = 0
            for i in 1..<v.count where abs(v[i] - y) < abs(v[best] - y) { best = i }
            return best
        case let .binned(h):
            guard y >= binOrigin else { return 0 }
            return min(Int(((y - binOrigin) / h).rounded(.down)) + 1, labelCount - 1)
        }
    }

    /// E[z | y, ω, V] and Cov[z | y, ω, V]: one label's moments without noise, the mixture over labels
    /// with N(y; v_ℓ, Δ') weights (Δ' = Δ less the binning variance) with noise.
    public func posterior(y: Double, omega: [Double], V: Matrix, mean: inout [Double], covariance: inout [Double]) -> Bool {
        guard let rm = regionMoments(omega: omega, V: V, secondMoments: true) else { return false }
        var Z = 0.0
        var mu = [Double](repeating: 0, count: k), S = [Double](repeating: 0, count: k * k)
        var delta = noise
        if case let .binned(h) = alphabet, delta > 0 { delta -= h * h / 12 }
        func add(_ l: Int, _ a: Double) {
            let base = l * rm.stride
            Z += a * rm.values[base]
            for i in 0..<k { mu[i] += a * rm.values[base + 1 + i] }
            for i in 0..<(k * k) { S[i] += a * rm.values[base + 1 + k + i] }
        }
        if delta <= 0 {
            add(label(ofOutput: y), 1)
        } else {
            let sigma = delta.squareRoot()
            for (l, v) in labelValues.enumerated() where abs(v - y) <= 9 * sigma {
                let d = (y - v) / sigma
                add(l, exp(-0.5 * d * d))
            }
        }
        guard Z > 1e-300 else { return false }
        for i in 0..<k { mean[i] = omega[i] + mu[i] / Z }
        for i in 0..<k { for j in 0..<k { covariance[i * k + j] = S[i * k + j] / Z - (mu[i] / Z) * (mu[j] / Z) } }
        return true
    }
}
