/// Multi-pass gradient descent with sample reuse (EQUATIONS.md §3): n = αd samples drawn once and
/// reused at every step of full-batch GD on the summed loss with ridge λ,
///
///     W(t+1) = W(t) − η [ λ W(t) + Σ_μ g_μ(t) x_μᵀ / √d ],   g_μ,j = ∂ℓ/∂ĥ_j at sample μ,
///
/// the second layer fixed. Time is the GD step index t = 0, 1, …, `steps`; the DMFT step is the
/// simulator's learning rate η (one step moves M by O(ηα)).
///
/// Spec file: `training: {protocol: multipass, alpha, steps, learningRate, ridge, loss, particles,
/// batchFraction, samples}` with the usual `teacher`, `student` (fixed second layer) and `init`
/// sections; every step is recorded (no `output` section).
public struct MultipassSettings: Sendable, Hashable {
    /// Sample ratio α = n/d.
    public var alpha: Double
    /// Number of GD steps T (records at t = 0…T).
    public var steps: Int
    /// Ridge λ ≥ 0: the summed loss plus λ|W|²/2 (per step W ← (1 − ηλ)W − η Σ_μ …).
    public var ridge: Double
    /// Monte-Carlo particles S of the DMFT effective process.
    public var particles: Int
    /// Simulator only: each step uses a mini-batch of round(fraction·n) samples drawn without
    /// replacement from the fixed dataset (1 = full batch; the DMFT needs 1).
    public var batchFraction: Double
    /// Simulator only: the online control, fresh samples at every step instead of reusing the dataset
    /// (the DMFT needs reuse).
    public var freshSamples: Bool

    /// The largest number of steps accepted.
    public static let maximumSteps = 10_000

    public init(alpha: Double, steps: Int, ridge: Double = 0, particles: Int = 1_000_000,
                batchFraction: Double = 1, freshSamples: Bool = false) {
        self.alpha = alpha
        self.steps = steps
        self.ridge = ridge
        self.particles = particles
        self.batchFraction = batchFraction
        self.freshSamples = freshSamples
    }

    /// Full-batch GD on one reused dataset: the setting the DMFT describes.
    public var isFullBatchReuse: Bool { batchFraction == 1 && !freshSamples }

    /// The number of samples n = round(αd) at dimension d (at least 1).
    public func sampleCount(dimension d: Int) -> Int { max(1, Int((alpha * Double(d)).rounded())) }

    /// The samples used per step at dimension d.
    public func batchCount(dimension d: Int) -> Int {
        max(1, Int((batchFraction * Double(sampleCount(dimension: d))).rounded()))
    }

    /// Checks every field; throws one `SpecError` carrying every problem (each naming the field and the value).
    public func validate() throws {
        let problems = SpecProblems()
        check(into: problems)
        try problems.throwIfAny()
    }

    /// Records every problem of these settings in `problems`.
    func check(into problems: SpecProblems) {
        problems.check { try EstimationProblem.validateAlpha(alpha, field: "training.alpha") }
        problems.check {
            guard (1...Self.maximumSteps).contains(steps) else {
                throw SpecError(field: "training.steps", value: "\(steps)", reason: "must be an integer in 1...\(Self.maximumSteps)")
            }
        }
        problems.check {
            guard ridge.isFinite, ridge >= 0 else {
                throw SpecError(field: "training.ridge", value: Experiment.format(ridge), reason: "the ridge λ must be a finite number ≥ 0")
            }
        }
        problems.check {
            guard (2...1_000_000_000).contains(particles) else {
                throw SpecError(field: "training.particles", value: "\(particles)", reason: "must be an integer in 2...1000000000")
            }
        }
        problems.check {
            guard batchFraction.isFinite, batchFraction > 0, batchFraction <= 1 else {
                throw SpecError(field: "training.batchFraction", value: Experiment.format(batchFraction),
                                reason: "the fraction of the n samples used per step must lie in (0, 1]")
            }
        }
    }

    /// The recorded times: every step 0…T.
    public var recordTimes: [Double] { (0...steps).map(Double.init) }
}

extension Experiment {
    /// The multi-pass settings of a `training.protocol: multipass` experiment (nil otherwise).
    public var multipass: MultipassSettings? {
        training.trainingProtocol == .multipass ? training.multipass : nil
    }

    /// The multipass-specific checks (called by `validate()`).
    func checkMultipass(into problems: SpecProblems) {
        guard let settings = training.multipass else {
            problems.record(SpecError(field: "training", value: "protocol multipass", reason: "needs alpha and steps"))
            return
        }
        settings.check(into: problems)
        if training.time != Double(settings.steps) {
            problems.record(SpecError(field: "training.time", value: Experiment.format(training.time),
                                      reason: "the multipass horizon is training.steps = \(settings.steps) (time is the GD step index)"))
        }
        if student.trainSecondLayer {
            problems.record(SpecError(field: "student.trainSecondLayer", value: "true", reason: "the multipass protocol keeps the second layer fixed"))
        }
        if student.spherical {
            problems.record(SpecError(field: "student.spherical", value: "true", reason: "the multipass protocol has no spherical student"))
        }
        if training.batchSize != 1 {
            problems.record(SpecError(field: "training.batchSize", value: "\(training.batchSize)",
                                      reason: "is an online-SGD setting: use training.batchFraction for multipass"))
        }
        if training.weightDecay != 0 {
            problems.record(SpecError(field: "training.weightDecay", value: Experiment.format(training.weightDecay),
                                      reason: "is an online-SGD setting: use training.ridge for multipass"))
        }
    }
}

extension SpecReader {
    /// The multipass keys of the `training` section.
    static let multipassKeys = ["protocol", "loss", "learningRate", "alpha", "steps", "ridge", "particles", "batchFraction", "samples"]

    func multipassSettings() -> MultipassSettings {
        let samples = read("reuse") {
            let samples = try string("samples", default: "reuse")
            guard samples == "reuse" || samples == "fresh" else {
                throw SpecError(field: field("samples"), value: "\"\(samples)\"", reason: "must be reuse (one dataset) or fresh (the online control)")
            }
            return samples
        }
        return MultipassSettings(
            alpha: read(1) { try double("alpha") }, steps: read(1) { try int("steps") }, ridge: read(0) { try double("ridge", default: 0) },
            particles: read(1_000_000) { try int("particles", default: 1_000_000) },
            batchFraction: read(1) { try double("batchFraction", default: 1) },
            freshSamples: samples == "fresh")
    }
}

extension MultipassSettings {
    /// The multipass keys of the `training` section of the file schema.
    var specTree: [String: Any] {
        ["alpha": alpha, "steps": steps, "ridge": ridge, "particles": particles, "batchFraction": batchFraction,
         "samples": freshSamples ? "fresh" : "reuse"]
    }

    /// A commented sample specification of the multipass protocol (the two-layer ReLU case of
    /// `../shared/reference/dmft.md` §2).
    public static let sampleYAML = """
    teacher:
      k: 2
      target: "tanh(z1 + z2^3 - 3*z2)"
    student:
      p: 2
      activation: relu
      secondLayer: [0.70710678118654752, -0.70710678118654752]
    training:
      protocol: multipass
      loss: square             # square | correlation
      learningRate: 0.2        # η of W ← W − η[λW + Σ_μ g_μ x_μᵀ/√d] (summed loss)
      alpha: 3.0               # n = αd samples, drawn once
      steps: 6                 # GD steps; every step is recorded
      ridge: 0.0               # λ
      particles: 1000000       # DMFT Monte-Carlo particles S
      batchFraction: 1.0       # simulator: mini-batches of this fraction of the n samples
      samples: reuse           # simulator: reuse (one dataset) | fresh (online control)
    init: orthogonal           # M(0) = 0, Q(0) = I exactly; or {M: .., Q: ..}
    """
}

/// The per-sample loss ℓ of a student f = Σ_j a_j σ(ĥ_j) with fixed second layer, and its gradient in
/// the local fields, g_j = ∂ℓ/∂ĥ_j = −a_j σ'(ĥ_j) D (D = y − f for the square loss ℓ = ½(y − f)²,
/// D = y for the correlation loss ℓ = −y f). The multi-pass simulator and the DMFT read this one
/// definition (EQUATIONS.md §1 and §3).
public struct SampleLoss: Sendable {
    public let activation: Activation
    public let secondLayer: [Double]
    public let loss: Loss

    public init(_ experiment: Experiment) {
        activation = experiment.student.activation
        secondLayer = experiment.student.secondLayer
        loss = experiment.training.loss
    }

    /// The student output f = Σ_j a_j σ(ĥ_j) at fields `h` (length p).
    @inlinable public func output(fields h: UnsafePointer<Double>) -> Double {
        var f = 0.0
        for j in 0..<secondLayer.count { f += secondLayer[j] * activation.value(h[j]) }
        return f
    }

    /// ℓ at fields `h` (length p) and label `y`; writes g (length p) to `gradient`. Allocation-free.
    @inlinable public func evaluate(fields h: UnsafePointer<Double>, label y: Double,
                                    gradient g: UnsafeMutablePointer<Double>) -> Double {
        let p = secondLayer.count
        var f = 0.0
        for j in 0..<p {
            let (s, ds) = activation.valueAndDerivative(h[j])
            f += secondLayer[j] * s
            g[j] = secondLayer[j] * ds
        }
        let D = loss == .square ? y - f : y
        for j in 0..<p { g[j] *= -D }
        return loss == .square ? 0.5 * D * D : -y * f
    }
}
