import Foundation
import PlateauCore
internal import CGSL

/// Why an iteration of the state evolution stopped.
public enum ConvergenceStatus: String, Sendable, Hashable, Codable {
    /// max |M_{t+1} − M_t| fell below the tolerance.
    case converged
    /// The iteration budget ran out first (typically close to a continuous transition).
    case maxIterations
    /// The overlap left {0 ≼ M ≺ I} or became non-finite (a numerical failure, reported as data).
    case failed
}

/// One run of the state evolution at one α.
public struct StateEvolutionRun: Sendable, Hashable {
    public var alpha: Double
    /// Which start: "uninformed" (M₀ = εI) or "informed" (M₀ = (1 − ε)I).
    public var start: String
    /// The overlap after the last iteration (the fixed point when `status == .converged`).
    public var M: Matrix
    public var iterations: Int
    public var status: ConvergenceStatus
    /// The Bayes-optimal test error E[(y − E[y | ω, V])²] at M (includes the noise Δ).
    public var mse: Double
    /// q = tr M / k.
    public var q: Double { (0..<M.rows).reduce(0) { $0 + M[$1, $1] } / Double(M.rows) }
    /// M_t for t = 0, 1, … (the iterates, including M₀), when recorded.
    public var history: [Matrix]
}

/// Bayes-optimal state evolution of GAMP for a multi-index model (EQUATIONS.md §2):
///
///     ω ~ N(0, M), V = I − M,   M̂ = α E_{ω,y}[g_out g_outᵀ],  g_out = V⁻¹(E[z | y, ω, V] − ω),
///     M_{t+1} = M̂ (I + M̂)⁻¹,   with damping M ← (1 − β)M_{t+1} + βM_t.
///
/// The expectation over ω is a Gauss–Hermite product rule (n nodes per dimension on ω = M^{1/2}ξ);
/// the expectation over y and the posterior moments come from `OutputChannel` (exact sums over the
/// labels, closed-form line integrals). Deterministic; the accuracy of the outer rule is
/// `omegaAccuracy(M:)`.
public final class StateEvolution: @unchecked Sendable {
    public let problem: EstimationProblem
    public let channel: OutputChannel
    /// The exact law of a noiseless product output (`ProductOutputLaw`), which the weak-recovery analysis
    /// and the spectral theory use instead of the channel's bins; nil for any other output.
    public let productLaw: ProductOutputLaw?
    /// Gauss–Hermite nodes per dimension of the ω rule at small overlaps (see `omegaNodes(for:)`).
    public let omegaNodes: Int
    let omegaNodeCap: Int
    /// The y-grid and label weights of the noise mixture (nil without noise).
    let noiseMixture: NoiseMixture?
    /// The noise variance of the label mixture (`OutputChannel.mixtureNoise`).
    public var mixtureNoise: Double { channel.mixtureNoise }

    public init(problem: EstimationProblem, channel: OutputChannel? = nil) throws {
        try problem.validate()
        self.problem = problem
        self.channel = try channel ?? OutputChannel(problem: problem)
        productLaw = ProductOutputLaw(problem: problem)
        let k = problem.k
        omegaNodes = problem.settings.omegaNodes > 0 ? problem.settings.omegaNodes : [0, 40, 24, 8, 6][k]
        omegaNodeCap = problem.settings.omegaNodes > 0 ? problem.settings.omegaNodes : [0, 400, 64, 16, 8][k]
        let delta = self.channel.mixtureNoise
        if delta > 0 {
            noiseMixture = NoiseMixture(labelValues: self.channel.labelValues, variance: delta, binWidth: self.channel.binWidth)
        } else {
            noiseMixture = nil
        }
    }

    // MARK: Channel averages

    /// For the labels' moments under one prior N(ω, V): adds weight·E_y[μ(y)μ(y)ᵀ/Z(y)] to `T` (k×k,
    /// row-major) and returns E[g | ω, V].
    func addOuterProducts(_ rm: RegionMoments, weight: Double, into T: inout [Double]) -> Double {
        let k = channel.k, L = channel.labelCount, values = channel.labelValues
        var mean = 0.0
        for l in 0..<L { mean += values[l] * rm.probability(l) }
        guard let mixture = noiseMixture else {
            for l in 0..<L {
                let Z = rm.probability(l)
                guard Z > 1e-300 else { continue }
                let base = l * rm.stride + 1
                for i in 0..<k { for j in 0..<k { T[i * k + j] += weight * rm.values[base + i] * rm.values[base + j] / Z } }
            }
            return mean
        }
        var mu = [Double](repeating: 0, count: k)
        for node in mixture.nodes {
            var Z = 0.0
            for i in 0..<k { mu[i] = 0 }
            for c in 0..<node.count {
                let l = node.firstLabel + c, a = mixture.weights[node.offset + c]
                Z += a * rm.probability(l)
                let base = l * rm.stride + 1
                for i in 0..<k { mu[i] += a * rm.values[base + i] }
            }
            guard Z > 1e-300 else { continue }
            for i in 0..<k { for j in 0..<k { T[i * k + j] += weight * node.weight * mu[i] * mu[j] / Z } }
        }
        return mean
    }

    /// Product weights of the ω rule below this fraction of the largest are dropped. For k = 2 this keeps
    /// 324 of the 576 nodes of the 24-point rule (392 with the former absolute cut at 1e-14), dropping a
    /// mass of 5e-11 (1.1e-10 at 48 points); M̂ changes by < 1e-10 (`StateEvolutionTests.omegaPruning`).
    static let omegaWeightCutoff = 1e-10

    /// The Gauss–Hermite rule for ω ~ N(0, M): points (k each) and weights, pruned of product weights
    /// below `cutoff` times the largest, then renormalised.
    func omegaRule(_ M: Matrix, nodes n: Int, cutoff: Double = StateEvolution.omegaWeightCutoff) -> (points: [[Double]], weights: [Double]) {
        let k = M.rows
        let (values, vectors) = GSL.symmetricEigen(M)
        let scale = values.map { max($0, 0).squareRoot() }
        let active = (0..<k).filter { scale[$0] > 1e-14 }
        if active.isEmpty { return ([[Double](repeating: 0, count: k)], [1]) }
        let (x, w) = GSL.gaussHermite(n)
        let threshold = cutoff * pow(w.max()!, Double(active.count))
        var points: [[Double]] = [], weights: [Double] = []
        var idx = [Int](repeating: 0, count: active.count)
        while true {
            var weight = 1.0
            for a in 0..<active.count { weight *= w[idx[a]] }
            if weight >= threshold {
                var p = [Double](repeating: 0, count: k)
                for (a, e) in active.enumerated() {
                    let c = scale[e] * x[idx[a]]
                    for i in 0..<k { p[i] += vectors[i, e] * c }
                }
                points.append(p); weights.append(weight)
            }
            var r = 0
            while r < active.count { idx[r] += 1; if idx[r] < n { break }; idx[r] = 0; r += 1 }
            if r == active.count { break }
        }
        let total = weights.reduce(0, +)
        return (points, weights.map { $0 / total })
    }

    /// T = E_{ω,y}[μμᵀ/Z] (so that M̂ = α V⁻¹TV⁻¹) and E_ω[E[g | ω, V]²], at overlap M, with an ω rule of
    /// `nodes` points per dimension. Nil when V = I − M is not positive definite.
    func averages(_ M: Matrix, nodes: Int, cutoff: Double = StateEvolution.omegaWeightCutoff) -> (T: Matrix, meanSquare: Double)? {
        let k = M.rows
        let V = Matrix.identity(k) - M
        guard let prior = channel.linePrior(V: V) else { return nil }
        let outer = channel.outerRule(for: prior)
        let rule = omegaRule(M, nodes: nodes, cutoff: cutoff)
        var T = [Double](repeating: 0, count: k * k)
        var meanSquare = 0.0
        for (omega, w) in zip(rule.points, rule.weights) {
            let rm = channel.regionMoments(omega: omega, prior: prior, rule: outer)
            let m = addOuterProducts(rm, weight: w, into: &T)
            meanSquare += w * m * m
        }
        var out = Matrix(rows: k, cols: k, values: T)
        for i in 0..<k { for j in 0..<i { let s = 0.5 * (out[i, j] + out[j, i]); out[i, j] = s; out[j, i] = s } }
        return (out, meanSquare)
    }

    /// Nodes per dimension of the ω rule at overlap M: the posterior moments vary on the scale √V while
    /// ω spreads over √M, and the central spacing of an n-point Gauss–Hermite rule is ≈ π√(M/(2n)); it is
    /// kept below √V/2 (n ≥ 2π²λ_max(M)/λ_min(I − M)), between `omegaNodes` and a cap per k (400, 64,
    /// 16, 8 for k = 1…4). A fixed `amp.omegaNodes` overrides both.
    public func omegaNodes(for M: Matrix) -> Int {
        let values = GSL.symmetricEigen(M).values
        let top = max(values.first ?? 0, 0), gap = max(1 - top, 1e-12)
        let need = 2 * Double.pi * Double.pi * top / gap
        return min(omegaNodeCap, max(omegaNodes, Int(min(need, 1e6).rounded(.up))))
    }

    // MARK: The map

    /// M̂ = α E[g_out g_outᵀ] at overlap M (nil if I − M is not positive definite).
    public func conjugate(_ M: Matrix, alpha: Double) -> Matrix? {
        guard let (T, _) = averages(M, nodes: omegaNodes(for: M)),
              let Vinv = (Matrix.identity(M.rows) - M).inverseSPD(tolerance: 1e-15) else { return nil }
        return alpha * (Vinv * T * Vinv)
    }

    /// One step of the state evolution without damping: M̂(I + M̂)⁻¹.
    public func step(_ M: Matrix, alpha: Double) -> Matrix? {
        guard let hat = conjugate(M, alpha: alpha) else { return nil }
        let k = M.rows
        guard let inv = (Matrix.identity(k) + hat).inverseSPD(tolerance: 1e-15) else { return nil }
        var next = hat * inv
        for i in 0..<k { for j in 0..<i { let s = 0.5 * (next[i, j] + next[j, i]); next[i, j] = s; next[j, i] = s } }
        return next
    }

    /// One step with the settings' damping β: (1 − β)·step(M) + β·M.
    public func dampedStep(_ M: Matrix, alpha: Double) -> Matrix? {
        guard let next = step(M, alpha: alpha) else { return nil }
        let beta = problem.settings.damping
        return (1 - beta) * next + beta * M
    }

    /// The Bayes-optimal test error at overlap M: Δ + E[g²] − E_ω[E[g | ω, V]²].
    public func mse(_ M: Matrix) -> Double {
        guard let (_, meanSquare) = averages(M, nodes: omegaNodes(for: M)) else { return .nan }
        return problem.noise + channel.outputSecondMoment - meanSquare
    }

    /// The uninformed (εI) or informed ((1 − ε)I) start.
    public func start(informed: Bool) -> Matrix {
        let eps = problem.settings.epsilon, k = problem.k
        return (informed ? 1 - eps : eps) * Matrix.identity(k)
    }

    /// Iterates from `start` until max |ΔM| < tolerance or the iteration budget runs out.
    public func iterate(alpha: Double, from start: Matrix, label: String = "custom", recordHistory: Bool = false) -> StateEvolutionRun {
        let s = problem.settings
        var M = start
        var history = recordHistory ? [M] : []
        var status = ConvergenceStatus.maxIterations
        var iterations = 0
        while iterations < s.maxIterations {
            guard let damped = dampedStep(M, alpha: alpha) else { status = .failed; break }
            iterations += 1
            let change = zip(damped.values, M.values).map { abs($0 - $1) }.max() ?? 0
            M = damped
            if recordHistory { history.append(M) }
            guard M.allFinite else { status = .failed; break }
            if change < s.tolerance { status = .converged; break }
        }
        return StateEvolutionRun(alpha: alpha, start: label, M: M, iterations: iterations, status: status,
                                 mse: status == .failed ? .nan : mse(M), history: history)
    }

    /// The fixed point at α from the uninformed start, and from the informed one when the settings ask
    /// for it (both branches of a first-order transition).
    public func fixedPoints(alpha: Double) -> [StateEvolutionRun] {
        var runs = [iterate(alpha: alpha, from: start(informed: false), label: "uninformed")]
        if problem.settings.informed { runs.append(iterate(alpha: alpha, from: start(informed: true), label: "informed")) }
        return runs
    }

    /// The largest change of M̂ when the ω rule is refined from n = `omegaNodes(for: M)` to ⌈1.5n⌉ nodes
    /// per dimension: the accuracy of the outer expectation at M.
    public func omegaAccuracy(_ M: Matrix, alpha: Double = 1) -> Double {
        let n = omegaNodes(for: M), finer = Int((1.5 * Double(n)).rounded(.up))
        guard let a = averages(M, nodes: n), let b = averages(M, nodes: finer) else { return .nan }
        return alpha * zip(a.T.values, b.T.values).map { abs($0 - $1) }.max()!
    }
}

extension StateEvolution {
    /// The fixed points over an α grid, on all cores (each α is independent, so the result does not
    /// depend on scheduling). `progress` is called with the fraction of α points done.
    public func curve(alphas: [Double], progress: @escaping @Sendable (Double) -> Void = { _ in }) -> [[StateEvolutionRun]] {
        let slots = JobResults<[StateEvolutionRun]>(count: alphas.count)
        DispatchQueue.concurrentPerform(iterations: alphas.count) { i in
            let done = slots.set(i, fixedPoints(alpha: alphas[i]))
            progress(Double(done) / Double(alphas.count))
        }
        return slots.values
    }
}
