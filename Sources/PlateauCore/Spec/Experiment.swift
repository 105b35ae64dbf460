/// The loss whose per-sample gradient drives training (EQUATIONS.md §1).
public enum Loss: String, Sendable, Hashable, CaseIterable, Codable {
    /// ℓ = ½(y − f)²: the error signal is D = y − f.
    case square
    /// ℓ = −y f: the error signal is D = y, independent of the student's output.
    case correlation
}

/// How the data are used.
public enum TrainingProtocol: String, Sendable, Hashable, CaseIterable, Codable {
    /// Online SGD: a fresh batch every step; time t = steps / d.
    case online
    /// Multi-pass full-batch GD on n = αd reused samples (DMFT, `MultipassSettings`); time = GD steps.
    case multipass
    /// Bayes-optimal AMP (state evolution; not yet implemented).
    case amp
}

/// The teacher: y = g(ν) + √Δ ξ with ν = W*x/√d, W*W*ᵀ/d = P, where g is either a committee
/// Σ_r weights_r σ*(ν_r) or any link g(z1, …, z_k) written as an expression (`link`).
public struct TeacherSpec: Sendable, Hashable {
    /// Number of hidden directions k.
    public var k: Int
    /// The per-direction activation σ* of the committee teacher (unused when `link` is set).
    public var activation: Activation
    /// Second-layer weights of the committee teacher (length k; unused when `link` is set).
    public var weights: [Double]
    /// Teacher–teacher overlap P = W*W*ᵀ/d (k×k, symmetric PSD).
    public var covariance: Matrix
    /// Label-noise variance Δ (a variance, not a standard deviation).
    public var noiseVariance: Double
    /// A multi-index link g(z1, …, z_k) (an expression over `.target(k:)`); nil for a committee.
    public var link: Formula?

    public init(k: Int, activation: Activation = .erf, weights: [Double]? = nil, covariance: Matrix? = nil,
                noiseVariance: Double = 0, link: Formula? = nil) {
        self.k = k
        self.activation = activation
        self.weights = weights ?? Array(repeating: 1, count: k)
        self.covariance = covariance ?? .identity(k)
        self.noiseVariance = noiseVariance
        self.link = link
    }

    /// A teacher with the link `g` over k indices (`g.variables` must be `.target(k:)`).
    public init(link g: Formula, covariance: Matrix? = nil, noiseVariance: Double = 0) {
        guard case let .target(k) = g.variables else { preconditionFailure("a link is an expression in z1…zk") }
        self.init(k: k, covariance: covariance, noiseVariance: noiseVariance, link: g)
    }

    /// Whether the target is a committee Σ_r weights_r σ*(ν_r) (so that its expectations decompose
    /// into one- and two-index pieces).
    public var isCommittee: Bool { link == nil }

    /// The noiseless target g(ν) at teacher fields ν (length k). Allocation-free.
    @inlinable public func output(_ nu: UnsafePointer<Double>) -> Double {
        if let link { return link.value(UnsafeBufferPointer(start: nu, count: k)) }
        var y = 0.0
        for r in 0..<k { y += weights[r] * activation.value(nu[r]) }
        return y
    }

    /// The target as one expression in z1…zk (a committee is written out as Σ_r b_r σ*(z_r)).
    public var targetFormula: Formula {
        if let link { return link }
        let sigma = activation.expression
        var root: Formula.Node?
        for r in 0..<k where weights[r] != 0 {
            let term = Formula.Node.multiply(.constant(weights[r]), sigma.root.substituting(variable: 1, with: .variable(r + 1)))
            root = root.map { .add($0, term) } ?? term
        }
        return Formula(root: root ?? .constant(0), variables: .target(k: k))
    }

    /// The target's description: the link, or the committee with its activation and weights.
    public var targetDescription: String {
        if let link { return "g(z) = \(link)" }
        return "g(z) = Σ_r b_r σ*(z_r), σ* = \(activation.formula), b = \(weights)"
    }

    /// Whether the target is analytic in ν (no kinks or jumps; see `Formula.isSmooth`).
    public var isSmooth: Bool {
        if let link { return link.isSmooth }
        return activation.isSmooth
    }

    /// Whether the target is a polynomial in ν.
    public var isPolynomial: Bool {
        if let link { return link.isPolynomial }
        return activation.isPolynomial
    }
}

/// The student: f(x) = Σ_j a_j σ(λ_j), λ = Wx/√d.
public struct StudentSpec: Sendable, Hashable {
    /// Number of hidden units p.
    public var p: Int
    public var activation: Activation
    /// Second layer a (length p).
    public var secondLayer: [Double]
    public var trainSecondLayer: Bool
    /// η_a: the learning rate of the second layer, in the same time units (EQUATIONS.md §1).
    public var secondLayerLearningRate: Double
    /// Spherical (normalised) student: after every step each row is rescaled to |w_j|² = d, so
    /// Q_jj = 1 throughout (EQUATIONS.md §1.3).
    public var spherical: Bool

    public init(p: Int, activation: Activation = .erf, secondLayer: [Double]? = nil,
                trainSecondLayer: Bool = false, secondLayerLearningRate: Double = 0, spherical: Bool = false) {
        self.p = p
        self.activation = activation
        self.secondLayer = secondLayer ?? Array(repeating: 1, count: p)
        self.trainSecondLayer = trainSecondLayer
        self.secondLayerLearningRate = secondLayerLearningRate
        self.spherical = spherical
    }
}

/// Protocol, loss, learning rates and horizon.
public struct TrainingSpec: Sendable, Hashable {
    public var trainingProtocol: TrainingProtocol
    public var loss: Loss
    /// η of the first layer. One step moves w_j by (η/n_b) Σ_μ a_j σ'(λ_j^μ) D^μ x^μ/√d.
    public var learningRate: Double
    /// n_b, samples per step.
    public var batchSize: Int
    /// κ: each step also applies w ← w − (ηκ/d) w (an L2 penalty κ|w|²/(2d) per sample), which
    /// contributes −ηκM to dM/dt and −2ηκQ to dQ/dt.
    public var weightDecay: Double
    /// Horizon in the protocol's time unit (online: t = steps/d; multipass: GD steps).
    public var time: Double
    /// The multipass settings (α, steps, ridge, particles, …); nil for the other protocols.
    public var multipass: MultipassSettings?

    public init(trainingProtocol: TrainingProtocol = .online, loss: Loss = .square, learningRate: Double,
                batchSize: Int = 1, weightDecay: Double = 0, time: Double) {
        self.trainingProtocol = trainingProtocol
        self.loss = loss
        self.learningRate = learningRate
        self.batchSize = batchSize
        self.weightDecay = weightDecay
        self.time = time
    }

    /// Multi-pass GD with `settings` (the horizon is its number of steps).
    public init(multipass settings: MultipassSettings, loss: Loss = .square, learningRate: Double) {
        self.init(trainingProtocol: .multipass, loss: loss, learningRate: learningRate, time: Double(settings.steps))
        multipass = settings
    }
}

/// How the student starts.
public enum InitialCondition: Sendable, Hashable {
    /// Prescribed overlaps M (p×k) and Q (p×p); at finite d the weights are constructed so that
    /// their overlaps are exactly these.
    case overlaps(M: Matrix, Q: Matrix)
    /// Student rows i.i.d. N(0, scale²·I_d): Q ≈ scale²·I and M = O(scale/√d) at finite d; the
    /// d = ∞ limit is M = 0, Q = scale²·I. With `seed`, every simulated replica starts from the
    /// same teacher and initial student (drawn from this seed) and only the SGD noise differs;
    /// without it each replica draws its own.
    case random(scale: Double, seed: UInt64? = nil)
    /// Student rows orthogonal to the teacher span with self-overlap Q (M = 0 exactly).
    case orthogonal(Q: Matrix)
}

/// Which times to record.
public enum TimeGrid: Sendable, Hashable {
    /// t = 0 plus `count` log-spaced times from `start` to the horizon.
    case log(count: Int, start: Double)
    /// `count` + 1 equally spaced times from 0 to the horizon.
    case linear(count: Int)
    /// Explicit times (sorted, within the horizon).
    case list([Double])

    /// The times for horizon `horizon` (sorted, unique, including 0 for grids).
    public func times(horizon: Double) -> [Double] {
        var out: [Double]
        switch self {
        case let .log(count, start):
            let s = min(start, horizon)
            out = [0]
            if count == 1 { out.append(horizon) } else {
                let ls = Foundation.log(s), lh = Foundation.log(horizon)
                for i in 0..<count { out.append(Foundation.exp(ls + (lh - ls) * Double(i) / Double(count - 1))) }
                out[out.count - 1] = horizon
            }
        case let .linear(count):
            out = (0...count).map { horizon * Double($0) / Double(count) }
        case let .list(ts):
            out = ts
        }
        var unique: [Double] = []
        for t in out.sorted() where unique.last.map({ t - $0 > 1e-12 * max(1, t) }) ?? true { unique.append(t) }
        return unique
    }
}

public struct OutputSpec: Sendable, Hashable {
    public var times: TimeGrid
    public init(times: TimeGrid = .log(count: 60, start: 0.01)) { self.times = times }
}

/// One learning problem: what theory and simulation both read. Nothing about the problem is stated
/// twice; the input dimension d is an argument of the simulator only.
public struct Experiment: Sendable, Hashable {
    public var teacher: TeacherSpec
    public var student: StudentSpec
    public var training: TrainingSpec
    public var initialization: InitialCondition
    public var output: OutputSpec

    public init(teacher: TeacherSpec, student: StudentSpec, training: TrainingSpec,
                initialization: InitialCondition, output: OutputSpec = OutputSpec()) {
        self.teacher = teacher
        self.student = student
        self.training = training
        self.initialization = initialization
        self.output = output
    }

    /// The built-in default experiment: Saad & Solla's soft committee machine, K = M = 2, erf,
    /// η = 0.5, a = 1, P = I, noiseless, random initial weights of unit variance
    /// (`../shared/reference/online-sgd.md` §1 for the tiny-overlap start).
    public static let saadSolla = Experiment(
        teacher: TeacherSpec(k: 2, activation: .erf),
        student: StudentSpec(p: 2, activation: .erf),
        training: TrainingSpec(loss: .square, learningRate: 0.5, batchSize: 1, time: 300),
        initialization: .random(scale: 1),
        output: OutputSpec(times: .log(count: 40, start: 0.1)))

    /// The recorded times (online: in units of steps/d; multipass: every step).
    public var recordTimes: [Double] { multipass?.recordTimes ?? output.times.times(horizon: training.time) }
}

import Foundation
