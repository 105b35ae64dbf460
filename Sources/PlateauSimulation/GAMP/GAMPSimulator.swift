import Dispatch
import Foundation
import PlateauCore

/// What finite-d GAMP needs besides the `EstimationProblem`: the input dimension, the number of
/// iterations recorded, the seeds and the start. Damping and ε come from `problem.settings`.
public struct GAMPOptions: Sendable, Hashable {
    /// The input dimension d (n = round(αd) samples).
    public var dimension: Int
    /// Iterations T after the start: overlaps are recorded at t = 0, 1, …, T.
    public var iterations: Int
    /// Number of independent seeds (teacher, data and start redrawn for each).
    public var seeds: Int
    /// Seed s uses `SeedSequence.seed(master: masterSeed, index: s)`.
    public var masterSeed: UInt64
    /// Start from the informed overlap (1 − ε)I instead of the uninformed εI.
    public var informed: Bool
    /// Worker threads for the seeds; 0 = `WorkerThreads.count` (all cores unless `--threads` says otherwise). Results do not depend on it.
    public var threads: Int
    /// How the prior-side precision A is formed (see `GAMPPrecision`).
    public var precision: GAMPPrecision

    public init(dimension: Int, iterations: Int, seeds: Int = 1, masterSeed: UInt64 = 1, informed: Bool = false, threads: Int = 0,
                precision: GAMPPrecision = .nishimori) {
        self.precision = precision
        self.dimension = dimension
        self.iterations = iterations
        self.seeds = seeds
        self.masterSeed = masterSeed
        self.informed = informed
        self.threads = threads
    }

    /// The number of samples n = round(αd).
    public func sampleCount(alpha: Double) -> Int { Int((alpha * Double(dimension)).rounded()) }

    /// Checks the options against the problem and α; throws a `SpecError` naming the field and value.
    public func validate(problem: EstimationProblem, alpha: Double) throws {
        try problem.validate()
        try EstimationProblem.validateAlpha(alpha, field: "alpha")
        let k = problem.k
        guard dimension >= k + 1 else {
            throw SpecError(field: "gamp.dimension", value: "\(dimension)", reason: "must be an integer ≥ k + 1 = \(k + 1)")
        }
        let n = sampleCount(alpha: alpha)
        guard n >= 1 else {
            throw SpecError(field: "alpha", value: Experiment.format(alpha), reason: "gives n = round(αd) = 0 samples at d = \(dimension)")
        }
        let entries = n.multipliedReportingOverflow(by: dimension)
        guard !entries.overflow, entries.partialValue <= 1 << 31 else {
            throw SpecError(field: "gamp.dimension", value: "\(dimension)",
                            reason: "n·d = round(αd)·d must be ≤ 2^31 (X is held in memory, BLAS uses 32-bit sizes)")
        }
        guard (0...100_000).contains(iterations) else {
            throw SpecError(field: "gamp.iterations", value: "\(iterations)", reason: "must be an integer in 0...100000")
        }
        guard seeds >= 1 else {
            throw SpecError(field: "gamp.seeds", value: "\(seeds)", reason: "must be an integer ≥ 1")
        }
        guard threads >= 0 else {
            throw SpecError(field: "gamp.threads", value: "\(threads)", reason: "must be an integer ≥ 0 (0: all cores)")
        }
    }
}

/// The prior-side precision A of GAMP, two forms with the same large-d limit on the Nishimori line
/// (E[−∂_ω g_out] = E[g_out g_outᵀ] when y is drawn from the model).
public enum GAMPPrecision: String, Sendable, Hashable, CaseIterable {
    /// A = (1/d) Σ_μ g_out,μ g_out,μᵀ: positive semi-definite by construction. The default.
    case nishimori
    /// A = (1/d) Σ_μ (−∂_ω g_out,μ) = (1/d) Σ_μ (V⁻¹ − V⁻¹C_μV⁻¹). For sign(z₁z₂) it is unstable: 𝓕 has the
    /// eigenvalue −(2/π)² on diag(1, −1) in the (z₁ ± z₂)/√2 basis, α·(2/π)² > 1 above α_c, and the
    /// finite-d fluctuations along it grow as a period-2 oscillation of A₁₂ (measured at α = 3,
    /// d = 1000 and 2000: the run diverges near t = 17, while the state evolution, which keeps M ⪰ 0,
    /// converges to q = 0.2427).
    case derivative
}

/// One seed of GAMP: the overlaps at t = 0, 1, … up to the last iteration reached.
public struct GAMPSeedRun: Sendable, Hashable {
    /// The seed actually used (`SeedSequence.seed(master:index:)`).
    public var seed: UInt64
    /// M_t = ŴᵀW*ᵀ/d (k×k: student index rows, teacher index columns).
    public var M: [Matrix]
    /// Q_t = ŴᵀŴ/d, the estimator's self-overlap: invariant under the symmetries of g (on the
    /// Nishimori line it equals the state evolution's M_t).
    public var Q: [Matrix]
    /// `.completed`, or `.diverged` when an overlap became non-finite or I + A was not positive
    /// definite (the rows before are kept).
    public var status: TrajectoryStatus
    public var message: String

    /// q_t = tr Q_t / k.
    public var q: [Double] { Q.map { GAMPSimulator.trace($0) / Double($0.rows) } }
}

/// All seeds of one GAMP run, in seed-index order.
public struct GAMPResult: Sendable, Hashable {
    public var alpha: Double
    public var options: GAMPOptions
    public var seeds: [GAMPSeedRun]

    /// Mean and standard error over the seeds at each iteration t (seeds that stopped early contribute
    /// the rows they have; a row is kept while at least one seed has it).
    public func summary() -> [GAMPIterationSummary] {
        let rows = seeds.map(\.Q.count).max() ?? 0
        return (0..<rows).map { t in
            let present = seeds.filter { $0.Q.count > t }
            let (mQ, sQ) = GAMPSimulator.meanAndStandardError(present.map { $0.Q[t] })
            let (mM, sM) = GAMPSimulator.meanAndStandardError(present.map { $0.M[t] })
            let (mq, sq) = SampleStatistics.meanAndStandardError(present.map { $0.q[t] })
            return GAMPIterationSummary(iteration: t, count: present.count, meanQ: mQ, standardErrorQ: sQ,
                                        meanM: mM, standardErrorM: sM, meanq: mq, standardErrorq: sq)
        }
    }
}

/// Seed statistics of one iteration: entry-wise means and standard errors (sample standard
/// deviation/√R, NaN for R < 2 — the convention of PlateauCompare's `SeedStatistics`).
public struct GAMPIterationSummary: Sendable, Hashable {
    public var iteration: Int
    /// Number of seeds that reached this iteration.
    public var count: Int
    public var meanQ: Matrix, standardErrorQ: Matrix
    public var meanM: Matrix, standardErrorM: Matrix
    public var meanq: Double, standardErrorq: Double
}

/// Finite-d Bayes-optimal GAMP for a multi-index model (EQUATIONS.md §2), matrix-valued, with the
/// Gaussian prior N(0, I_k) on the rows of W*.
///
/// **Model.** x_μ ~ N(0, I_d), X (n×d) with i.i.d. N(0, 1) entries, n = round(αd); W* ∈ ℝ^{k×d} i.i.d.
/// N(0, 1); z_μ = W*x_μ/√d; y_μ = g(z_μ) + √Δ ξ_μ.
///
/// **Iteration** (Ŵ ∈ ℝ^{d×k} the posterior means, Ĉ ∈ ℝ^{k×k} the posterior covariance shared by all i,
/// g_out⁻¹ = 0):
///
///     V = Ĉ,   ω_μ = X_μŴ/√d − V g_out,μ^{t−1}                         (channel Onsager term)
///     (m_μ, C_μ) = E, Cov[z | y_μ, ω_μ, V]  (the `OutputDenoiser`)
///     g_out,μ = V⁻¹(m_μ − ω_μ),   −∂g_μ = V⁻¹ − V⁻¹C_μV⁻¹
///     A = (1/d) Σ_μ g_out,μg_out,μᵀ  (or (1/d) Σ_μ (−∂g_μ), `GAMPPrecision`),   B = Xᵀg_out/√d + ŴA  (prior Onsager term)
///     Ĉ ← (I + A)⁻¹,   Ŵ ← B(I + A)⁻¹                                  (damped by β = settings.damping)
///
/// **Approximation.** The exact GAMP weights the sample sums of the variances by X_μi²/d; here
/// Σ_μ X_μi² ∂g_μ/d is replaced by Σ_μ ∂g_μ/d and Σ_i X_μi² Ĉ/d by Ĉ (the mean of X_μi² is 1): the
/// variances are shared by all i and all μ. The error is O(d^{-1/2}) per entry and averages out.
///
/// **Start.** Ŵ₀ = m W*ᵀ + √(m − m²) ξ with m = ε (uninformed) or 1 − ε (informed), ξ i.i.d. N(0, 1), so
/// M₀ ≈ Q₀ ≈ mI as the state evolution's start; Ĉ₀ = (1 − m)I.
///
/// **Randomness.** One Xoshiro256++ stream per seed, drawn in the order W*, X, label noise, ξ; seeds
/// run in parallel on `options.threads` workers with a fixed seed-to-worker assignment, so results
/// do not depend on the thread count. With `SeedCheckpoints.current` set, each finished seed is
/// checkpointed (bit-exact overlaps) and a checkpointed seed is read back instead of run. A sample whose posterior is undefined (the denoiser returns
/// false) contributes g_out = 0 and ∂g = 0.
public enum GAMPSimulator {
    /// Runs `options.seeds` seeds of GAMP at α.
    ///
    /// - Throws: `SpecError` naming the field and value when the problem, α or the options are invalid,
    ///   or when the denoiser's k differs from the problem's.
    public static func run(problem: EstimationProblem, alpha: Double, denoiser: any OutputDenoiser,
                           options: GAMPOptions) throws -> GAMPResult {
        try options.validate(problem: problem, alpha: alpha)
        guard denoiser.k == problem.k else {
            throw SpecError(field: "denoiser.k", value: "\(denoiser.k)", reason: "must equal teacher.k = \(problem.k)")
        }
        let count = options.seeds
        let workers = min(count, options.threads > 0 ? options.threads : WorkerThreads.count)
        let slots = JobResults<Swift.Result<GAMPSeedRun, any Error>>(count: count)
        let checkpoints = SeedCheckpoints.current
        let identity = checkpointIdentity(problem: problem, alpha: alpha, denoiser: denoiser, options: options)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            var s = worker
            while s < count {
                let seed = SeedSequence.seed(master: options.masterSeed, index: s)
                let key = identity + "\nseed \(seed)"
                if let stored = checkpoints?.load(identity: key, GAMPSeedRun.init(checkpoint:)) {
                    slots.set(s, .success(stored))
                } else {
                    slots.set(s, Swift.Result {
                        let run = simulate(problem: problem, alpha: alpha, denoiser: denoiser, options: options, seed: seed)
                        try checkpoints?.save(tree: run.checkpointTree, identity: key)
                        return run
                    })
                }
                s += workers
            }
        }
        return GAMPResult(alpha: alpha, options: options, seeds: try slots.values.map { try $0.get() })
    }

    /// What a seed's checkpoint must match besides its seed: everything that enters `simulate`
    /// (the problem with its settings, α to the bit, the denoiser's type and the options but the
    /// seed count and the threads).
    static func checkpointIdentity(problem: EstimationProblem, alpha: Double, denoiser: any OutputDenoiser,
                                   options: GAMPOptions) -> String {
        "GAMP\nproblem \(problem.specJSON)\nalpha \(String(alpha.bitPattern, radix: 16))\ndenoiser \(type(of: denoiser)) k \(denoiser.k)"
            + "\ndimension \(options.dimension)\niterations \(options.iterations)\ninformed \(options.informed)"
            + "\nprecision \(options.precision.rawValue)"
    }

    /// One seed after validation.
    static func simulate(problem: EstimationProblem, alpha: Double, denoiser: any OutputDenoiser,
                         options: GAMPOptions, seed: UInt64) -> GAMPSeedRun {
        let state = GAMPState(problem: problem, alpha: alpha, denoiser: denoiser, dimension: options.dimension,
                              informed: options.informed, precision: options.precision, seed: seed)
        var run = GAMPSeedRun(seed: seed, M: [], Q: [], status: .completed, message: "")
        for t in 0...options.iterations {
            if t > 0 {
                guard state.iterate() else {
                    run.status = .diverged
                    run.message = "I + A not positive definite at iteration \(t) (d = \(options.dimension))"
                    break
                }
            }
            let (M, Q) = state.overlaps()
            guard M.allFinite, Q.allFinite else {
                run.status = .diverged
                run.message = "overlaps non-finite at iteration \(t) (d = \(options.dimension))"
                break
            }
            run.M.append(M)
            run.Q.append(Q)
        }
        return run
    }

    static func trace(_ m: Matrix) -> Double { (0..<m.rows).reduce(0) { $0 + m[$1, $1] } }

    /// Entry-wise mean and standard error of equally shaped matrices.
    static func meanAndStandardError(_ ms: [Matrix]) -> (Matrix, Matrix) {
        let r = ms[0].rows, c = ms[0].cols
        var mean = Matrix(rows: r, cols: c), se = Matrix(rows: r, cols: c)
        for e in 0..<(r * c) { (mean.values[e], se.values[e]) = SampleStatistics.meanAndStandardError(ms.map { $0.values[e] }) }
        return (mean, se)
    }
}
