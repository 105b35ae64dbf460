import Dispatch
import Foundation
import PlateauCore
internal import CGSL

/// How the DMFT noise ω(t) is built.
public enum DMFTNoise: String, Sendable, Hashable, CaseIterable {
    /// The causal block-Cholesky factor of C(t, s) with fixed per-particle normals (EQUATIONS.md §3).
    case causal
    /// Negative control: the same marginal variance C(t, t) at each step, the time correlations
    /// dropped (as if z were redrawn every step). Wrong; kept to show that a comparison rejects it.
    case redrawnEachStep = "redrawn"
}

/// Numerical settings of the Monte-Carlo DMFT.
public struct DMFTOptions: Sendable, Hashable {
    /// Total particles S (default: the spec's `training.particles`).
    public var particles: Int?
    /// Independent replicas the particles are split into: each runs the whole scheme on S/replicas
    /// particles; the result is their mean and its standard error their spread / √replicas (so every
    /// output carries an honest Monte-Carlo error, including the propagation of the kernels' noise).
    public var replicas: Int
    /// Master seed; replica i draws its particles from `SeedSequence.seed(master: seed, index: i)`.
    public var seed: UInt64
    /// Particles per block of the BLAS products.
    public var blockSize: Int
    public var noise: DMFTNoise
    /// Relative eigenvalue cutoff of the pseudo-inverse of Q_v in the Stein regression.
    public var pseudoInverseCutoff: Double

    public init(particles: Int? = nil, replicas: Int = 16, seed: UInt64 = 1, blockSize: Int = 2048,
                noise: DMFTNoise = .causal, pseudoInverseCutoff: Double = 1e-10) {
        self.particles = particles
        self.replicas = replicas
        self.seed = seed
        self.blockSize = blockSize
        self.noise = noise
        self.pseudoInverseCutoff = pseudoInverseCutoff
    }
}

/// What a DMFT run returns: the mean curve and its Monte-Carlo standard error, on the GD step axis,
/// with the observables of the simulator (`risk`, `M_j_r`, `Q_j_l`, `a_j`, `cos_j_r`, `train_loss`).
public struct DMFTResult: Sendable {
    public var mean: Trajectory
    /// Monte-Carlo standard error of every entry of `mean` (zeros on the exact Gaussian path).
    public var standardError: Trajectory
    /// Λ(t) = λI + Γ(t, t) for t = 0…T−1 (mean over replicas) and its standard error.
    public var effectiveRegularisation: [Matrix]
    public var effectiveRegularisationError: [Matrix]
    /// Particles per replica × replicas (the Gaussian path: its basis size × 1).
    public var particles: Int
    public var replicas: Int
    /// "monte-carlo" or "gaussian" (the exact linear-Gaussian fast path).
    public var method: String
    /// Each replica's curve (for standard errors of derived quantities); the Gaussian path's one curve.
    public var replicaCurves: [Trajectory]
}

/// Dynamical mean-field theory of multi-pass full-batch GD with sample reuse (EQUATIONS.md §3): the
/// effective process `EffectiveProcess` by Monte Carlo over particles, or exactly for a linear student
/// with square loss and linear target (`gaussianPath()`). Reads the same `Experiment` as the
/// multi-pass simulator; the test risk is `OnlineSGDTheory`'s population risk of (m, Q).
public struct MultipassDMFT: Sendable {
    public let experiment: Experiment
    /// The population risk of (m, Q), shared with the simulator's curves.
    public let scorer: OnlineSGDTheory

    /// The largest p and k accepted, and the longest horizon.
    public static let maximumWidth = 8
    public static let maximumSteps = 200

    /// Validates that the experiment is one the DMFT describes; throws a `SpecError` naming the field.
    public init(_ experiment: Experiment) throws {
        try experiment.validate()
        guard let settings = experiment.multipass else {
            throw SpecError(field: "training.protocol", value: "\"\(experiment.training.trainingProtocol.rawValue)\"",
                            reason: "must be multipass for the DMFT")
        }
        guard settings.batchFraction == 1 else {
            throw SpecError(field: "training.batchFraction", value: Experiment.format(settings.batchFraction),
                            reason: "the DMFT describes full-batch GD: must be 1 (mini-batches are simulator-only)")
        }
        guard !settings.freshSamples else {
            throw SpecError(field: "training.samples", value: "\"fresh\"", reason: "the DMFT describes sample reuse: must be reuse")
        }
        let p = experiment.student.p, k = experiment.teacher.k
        guard p <= Self.maximumWidth else {
            throw SpecError(field: "student.p", value: "\(p)", reason: "must be ≤ \(Self.maximumWidth) for the DMFT")
        }
        guard k <= Self.maximumWidth else {
            throw SpecError(field: "teacher.k", value: "\(k)", reason: "must be ≤ \(Self.maximumWidth) for the DMFT")
        }
        guard settings.steps <= Self.maximumSteps else {
            throw SpecError(field: "training.steps", value: "\(settings.steps)", reason: "must be ≤ \(Self.maximumSteps) for the DMFT")
        }
        guard experiment.teacher.covariance.inverseSPD() != nil else {
            throw SpecError(field: "teacher.P", value: experiment.teacher.covariance.description,
                            reason: "must be positive definite for the DMFT (m P⁻¹ h*)")
        }
        self.experiment = experiment
        scorer = OnlineSGDTheory(experiment)
    }

    public var settings: MultipassSettings { experiment.multipass! }

    /// Whether the exact Gaussian path applies: linear student, square loss, and a target linear in
    /// the teacher fields (a linear committee, or a link of degree 1 without constant).
    public var isGaussian: Bool {
        guard experiment.student.activation == .linear, experiment.training.loss == .square else { return false }
        let teacher = experiment.teacher
        guard let link = teacher.link else { return teacher.activation == .linear }
        guard let terms = link.polynomialCoefficients() else { return false }
        return terms.allSatisfy { exponents, c in c == 0 || exponents.reduce(0, +) == 1 }
    }

    /// The deterministic fast path (EQUATIONS.md §3, "everything is Gaussian"): the effective process
    /// on the k + p + 1 + T·p coordinate vectors with weight 1, exact to rounding.
    public func gaussianPath() throws -> DMFTResult {
        guard isGaussian else {
            throw SpecError(field: "student.activation", value: experiment.student.activation.name,
                            reason: "the Gaussian fast path needs a linear student, square loss and a linear target")
        }
        let p = experiment.student.p, k = experiment.teacher.k
        let width = k + p + 1 + settings.steps * p
        let process = EffectiveProcess(experiment, rows: width, weight: 1, blockSize: width, causalNoise: true,
                                       cutoff: 1e-13) { i, w in
            for c in 0..<width { w[c] = c == i ? 1 : 0 }
        }
        process.fromData = true
        process.run()
        let curve = trajectory(process, scoreRisk: true)
        var zero = curve
        zero.values = curve.values.map { $0.map { _ in 0 } }
        return DMFTResult(mean: curve, standardError: zero, effectiveRegularisation: process.effectiveRegularisation,
                          effectiveRegularisationError: process.effectiveRegularisation.map { Matrix(rows: $0.rows, cols: $0.cols) },
                          particles: width, replicas: 1, method: "gaussian", replicaCurves: [curve])
    }

    /// The Monte-Carlo effective process: `options.replicas` independent populations in parallel
    /// on `WorkerThreads.count` threads (replica r has its own seed and slot: the result does not
    /// depend on the thread count), each in blocks with BLAS.
    public func run(_ options: DMFTOptions = DMFTOptions(), progress: (@Sendable (Double) -> Void)? = nil) throws -> DMFTResult {
        let total = options.particles ?? settings.particles
        guard options.replicas >= 2 else {
            throw SpecError(field: "dmft.replicas", value: "\(options.replicas)", reason: "must be ≥ 2 (the standard error is their spread)")
        }
        guard total >= 2 * options.replicas else {
            throw SpecError(field: "training.particles", value: "\(total)", reason: "must be ≥ 2 × replicas = \(2 * options.replicas)")
        }
        guard options.blockSize >= 1 else {
            throw SpecError(field: "dmft.blockSize", value: "\(options.blockSize)", reason: "must be ≥ 1")
        }
        openblas_set_num_threads(1)
        let R = options.replicas
        let perReplica = total / R
        let p = experiment.student.p, k = experiment.teacher.k, T = settings.steps
        let width = k + p + 1 + T * p
        let slots = JobResults<(Trajectory, [Matrix])>(count: R)
        let experiment = self.experiment
        WorkerThreads.forEach(R) { r in
            var rng = Xoshiro256PlusPlus(seed: SeedSequence.seed(master: options.seed, index: r))
            let process = EffectiveProcess(experiment, rows: perReplica, weight: 1 / Double(perReplica),
                                           blockSize: options.blockSize, causalNoise: options.noise == .causal,
                                           cutoff: options.pseudoInverseCutoff) { _, w in
                rng.fillStandardNormal(w, count: width)
            }
            process.run()
            let done = slots.set(r, (trajectory(process), process.effectiveRegularisation))
            progress?(Double(done) / Double(R))
        }
        let results = slots.values
        let summary = SampleStatistics.summary(results.map(\.0))
        var mean = summary.mean, se = summary.standardError
        // The risk: the population-risk function of the mean (m, Q) (the function that scores the
        // simulator), with the replicas' spread of the particle estimate as its standard error (one
        // evaluation per step: on the quadrature route one costs more than the DMFT's particles).
        let riskColumn = mean.observables.firstIndex(of: "risk")!
        for i in mean.times.indices { mean.values[i][riskColumn] = scorer.risk(overlaps(mean, row: i)) }
        if let failed = results.first(where: { $0.0.status != .completed })?.0 {
            mean.status = failed.status
            mean.message = failed.message
            se.status = failed.status
        }
        let steps = results.map(\.1.count).min() ?? 0
        var lambdaMean: [Matrix] = [], lambdaSE: [Matrix] = []
        for t in 0..<steps {
            var mMat = Matrix(rows: p, cols: p), sMat = mMat
            for j in 0..<p { for l in 0..<p {
                (mMat[j, l], sMat[j, l]) = SampleStatistics.meanAndStandardError(results.map { $0.1[t][j, l] })
            } }
            lambdaMean.append(mMat)
            lambdaSE.append(sMat)
        }
        return DMFTResult(mean: mean, standardError: se, effectiveRegularisation: lambdaMean,
                          effectiveRegularisationError: lambdaSE, particles: perReplica * R, replicas: R, method: "monte-carlo",
                          replicaCurves: results.map(\.0))
    }

    /// The overlaps in row `i` of a curve with the simulator's observables.
    func overlaps(_ curve: Trajectory, row i: Int) -> Overlaps {
        let p = experiment.student.p, k = experiment.teacher.k
        func value(_ name: String) -> Double { curve.values[i][curve.observables.firstIndex(of: name)!] }
        var M = Matrix(rows: p, cols: k), Q = Matrix(rows: p, cols: p)
        for j in 0..<p { for r in 0..<k { M[j, r] = value("M_\(j + 1)_\(r + 1)") } }
        for j in 0..<p { for l in j..<p { Q[j, l] = value("Q_\(j + 1)_\(l + 1)"); Q[l, j] = Q[j, l] } }
        return Overlaps(M: M, Q: Q, P: experiment.teacher.covariance, a: experiment.student.secondLayer)
    }

    /// The recorded curve of one process: the simulator's observables plus `train_loss`; the risk is
    /// the population-risk function of (m, Q) with `scoreRisk`, else the particles' estimate `testRisk`.
    func trajectory(_ process: EffectiveProcess, scoreRisk: Bool = false) -> Trajectory {
        let P = experiment.teacher.covariance, a = experiment.student.secondLayer
        let rows = process.Q.count
        let overlaps = (0..<rows).map { Overlaps(M: process.m[$0], Q: process.Q[$0], P: P, a: a) }
        var curve = Trajectory.fromOverlaps(times: (0..<rows).map(Double.init), overlaps: overlaps) { _ in 0 }
        for i in 0..<rows { curve.values[i][0] = scoreRisk ? scorer.risk(overlaps[i]) : process.testRisk[i] }
        curve.observables.append("train_loss")
        for i in 0..<rows { curve.values[i].append(process.trainLoss[i]) }
        curve.status = process.status
        curve.message = process.message
        return curve
    }
}
