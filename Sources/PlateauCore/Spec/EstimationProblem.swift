import Foundation

/// Bayes-optimal estimation of a multi-index model (EQUATIONS.md §2): x ~ N(0, I_d), a teacher W* with
/// i.i.d. N(0, 1) entries (so W*W*ᵀ/d → I_k), z = W*x/√d, y = g(z) + √Δ ξ, n = αd samples. The
/// state evolution, the weak-recovery threshold and finite-d GAMP all read this one value; the input
/// dimension d is an argument of GAMP only. Time is the AMP iteration index.
///
/// Spec file: the same `teacher` section as the other protocols (its `target`, `preset` or committee,
/// `k` and `noise`), `training: {protocol: amp, alpha: …}` and an optional `amp` section of numerical
/// settings. There is no student (the estimator is the posterior mean): a `student` section is refused.
public struct EstimationProblem: Sendable, Hashable {
    /// The teacher. `covariance` must be the identity (i.i.d. Gaussian rows); `link` or the committee
    /// defines g through `targetFormula`.
    public var teacher: TeacherSpec
    /// Sample ratio α = n/d; nil when the α grid comes from the command line.
    public var alpha: Double?
    public var settings: StateEvolutionSettings

    public init(teacher: TeacherSpec, alpha: Double? = nil, settings: StateEvolutionSettings = StateEvolutionSettings()) {
        self.teacher = teacher
        self.alpha = alpha
        self.settings = settings
    }

    public var k: Int { teacher.k }
    /// The noiseless link g(z₁, …, z_k) as one expression (a committee written out).
    public var target: Formula { teacher.targetFormula }
    /// Label-noise variance Δ.
    public var noise: Double { teacher.noiseVariance }

    /// The largest k accepted (the channel integrals are (k − 1)-dimensional grids with an exact line
    /// integral along z_k; k = 4 is allowed with its cost stated in the README).
    public static let maximumK = 4

    /// The built-in default: sign(z₁z₂) at α = 3 (weak-recovery threshold α_c = π²/4).
    public static let signProduct = EstimationProblem(
        teacher: TeacherSpec(link: try! Formula(parsing: "sign(z1*z2)", variables: .target(k: 2))), alpha: 3)

    /// Checks every field; throws one `SpecError` carrying every problem (each naming the field and the value).
    public func validate() throws {
        let problems = SpecProblems()
        check(into: problems)
        try problems.throwIfAny()
    }

    /// Records every problem of this problem in `problems`.
    func check(into problems: SpecProblems) {
        let k = teacher.k
        problems.check {
            guard (1...Self.maximumK).contains(k) else {
                throw SpecError(field: "teacher.k", value: "\(k)", reason: "must be an integer in 1...\(Self.maximumK) for the amp protocol")
            }
        }
        problems.check {
            guard teacher.covariance == .identity(k) else {
                throw SpecError(field: "teacher.P", value: teacher.covariance.description,
                                reason: "must be the identity for the amp protocol (W* has i.i.d. N(0, 1) entries)")
            }
        }
        for (i, w) in teacher.weights.enumerated() where !w.isFinite {
            problems.record(SpecError(field: "teacher.weights[\(i)]", value: Experiment.format(w), reason: "must be a finite number"))
        }
        problems.check {
            guard teacher.noiseVariance.isFinite else {
                throw SpecError(field: "teacher.noise", value: Experiment.format(teacher.noiseVariance), reason: "must be a finite number")
            }
            guard teacher.noiseVariance >= 0 else {
                throw SpecError(field: "teacher.noise", value: Experiment.format(teacher.noiseVariance), reason: "is a variance Δ and must be ≥ 0")
            }
        }
        if let alpha { problems.check { try Self.validateAlpha(alpha, field: "training.alpha") } }
        settings.check(into: problems)
    }

    /// α must be a finite number > 0.
    public static func validateAlpha(_ alpha: Double, field: String) throws {
        guard alpha.isFinite, alpha > 0 else {
            throw SpecError(field: field, value: Experiment.format(alpha), reason: "the sample ratio α = n/d must be a finite number > 0")
        }
    }
}

/// Numerical settings of the state evolution (the `amp` section of a spec file).
public struct StateEvolutionSettings: Sendable, Hashable {
    /// Damping β ∈ [0, 1): M ← (1 − β)·M_new + β·M.
    public var damping: Double
    /// Convergence: max |M_new − M| below this (and the iteration count at most `maxIterations`).
    public var tolerance: Double
    public var maxIterations: Int
    /// Size of the symmetry-breaking start M₀ = ε·I of the "uninformed" branch.
    public var epsilon: Double
    /// Also iterate from the informed start M₀ = (1 − ε)·I (the second branch of a first-order transition).
    public var informed: Bool
    /// Gauss–Hermite nodes per dimension of the outer expectation over ω ~ N(0, M).
    public var omegaNodes: Int
    /// For a noiseless continuous output, the width of the output bins the channel resolves (the
    /// limit width → 0 is the noiseless channel; the result is reported with the width used).
    public var outputResolution: Double

    public init(damping: Double = 0, tolerance: Double = 1e-9, maxIterations: Int = 500, epsilon: Double = 1e-3,
                informed: Bool = false, omegaNodes: Int = 0, outputResolution: Double = 0.02) {
        self.damping = damping
        self.tolerance = tolerance
        self.maxIterations = maxIterations
        self.epsilon = epsilon
        self.informed = informed
        self.omegaNodes = omegaNodes
        self.outputResolution = outputResolution
    }

    /// Checks every field; throws one `SpecError` carrying every problem.
    public func validate() throws {
        let problems = SpecProblems()
        check(into: problems)
        try problems.throwIfAny()
    }

    /// Records every problem of these settings in `problems`.
    func check(into problems: SpecProblems) {
        if !(damping.isFinite && damping >= 0 && damping < 1) {
            problems.record(SpecError(field: "amp.damping", value: Experiment.format(damping), reason: "must lie in [0, 1)"))
        }
        if !(tolerance.isFinite && tolerance > 0) {
            problems.record(SpecError(field: "amp.tolerance", value: Experiment.format(tolerance), reason: "must be a finite number > 0"))
        }
        if !(maxIterations >= 1 && maxIterations <= 1_000_000) {
            problems.record(SpecError(field: "amp.iterations", value: "\(maxIterations)", reason: "must be an integer in 1...1000000"))
        }
        if !(epsilon.isFinite && epsilon > 0 && epsilon < 1) {
            problems.record(SpecError(field: "amp.epsilon", value: Experiment.format(epsilon), reason: "must lie in (0, 1)"))
        }
        if !(omegaNodes == 0 || (2...64).contains(omegaNodes)) {
            problems.record(SpecError(field: "amp.omegaNodes", value: "\(omegaNodes)", reason: "must be 0 (automatic) or an integer in 2...64"))
        }
        if !(outputResolution.isFinite && outputResolution > 0 && outputResolution <= 1) {
            problems.record(SpecError(field: "amp.outputResolution", value: Experiment.format(outputResolution), reason: "must lie in (0, 1]"))
        }
    }
}

extension EstimationProblem {
    /// Parses a YAML or JSON specification of the amp protocol and validates it.
    public init(specText: String, overrides: [SpecOverride] = []) throws {
        let problems = SpecProblems()
        let tree = SpecOverride.apply(overrides, to: try SpecReader.topLevel(specText))
        let problem = try SpecReader(tree, path: "", problems: problems).estimationProblem()
        problem.check(into: problems)
        try problems.throwIfAny()
        self = problem
    }

    /// Parses the bytes of a specification (UTF-8 YAML or JSON) of the amp protocol.
    public init(specData: Data) throws {
        try self.init(specText: try SpecReader.text(of: specData))
    }

    /// Reads a specification file (YAML or JSON) of the amp protocol, with `overrides` set before it is checked.
    public init(contentsOf url: URL, overrides: [SpecOverride] = []) throws {
        try self.init(specText: try SpecReader.read(url), overrides: overrides)
    }

    /// The protocol a spec text names (`training.protocol`, default online), without validating the rest.
    public static func declaredProtocol(specText: String) throws -> TrainingProtocol {
        let map = try SpecReader.topLevel(specText)
        guard let training = map["training"] as? [String: Any], let name = training["protocol"] else { return .online }
        guard let s = name as? String, let p = TrainingProtocol(rawValue: s) else {
            throw SpecError(field: "training.protocol", value: Experiment.show(name), reason: "unknown protocol; known: online, multipass, amp")
        }
        return p
    }

    /// The specification as a JSON-compatible tree (round-trips through `init(specText:)`).
    public var specTree: [String: Any] {
        var teacherTree = teacher.specTree
        teacherTree["P"] = nil  // always the identity here
        var training: [String: Any] = ["protocol": "amp"]
        if let alpha { training["alpha"] = alpha }
        return [
            "teacher": teacherTree,
            "training": training,
            "amp": [
                "damping": settings.damping, "tolerance": settings.tolerance, "iterations": settings.maxIterations,
                "epsilon": settings.epsilon, "informed": settings.informed, "omegaNodes": settings.omegaNodes,
                "outputResolution": settings.outputResolution,
            ] as [String: Any],
        ]
    }

    public var specJSON: String { Experiment.prettyJSON(specTree) }

    /// A commented sample specification of the amp protocol (the built-in default).
    public static let sampleYAML = """
    teacher:
      k: 2
      target: "sign(z1*z2)"    # any expression in z1…zk, a preset, or a committee (activation/weights)
      noise: 0.0               # label-noise variance Δ
    training:
      protocol: amp
      alpha: 3.0               # n/d (or --alpha A | --alpha start:stop:step on the command line)
    amp:                       # optional numerical settings
      damping: 0.0             # M ← (1 − β)M_new + βM
      tolerance: 1.0e-9        # convergence: max |ΔM|
      iterations: 500
      epsilon: 1.0e-3          # uninformed start M₀ = ε·I
      informed: false          # also iterate from M₀ = (1 − ε)·I
      omegaNodes: 0            # Gauss–Hermite nodes per dimension over ω (0: automatic)
      outputResolution: 0.02   # bin width resolving a noiseless continuous output
    """
}

extension SpecReader {
    func estimationProblem() throws -> EstimationProblem {
        let declared = (map["training"] as? [String: Any])?["protocol"]
        guard declared as? String == TrainingProtocol.amp.rawValue else {
            throw SpecError(field: "training.protocol", value: Experiment.show(declared ?? "online"),
                            reason: "must be amp for the state evolution, thresholds and GAMP")
        }
        if let student = map["student"] {
            problems.record(SpecError(field: "student", value: Experiment.show(student),
                                      reason: "the amp protocol has no student (the estimator is Bayes-optimal GAMP): remove the section"))
        }
        rejectUnknown(["teacher", "training", "amp", "student"])
        let teacher = self.teacher()
        let r = section("training")
        r.rejectUnknown(["protocol", "alpha"])
        let alpha: Double? = r.map["alpha"] == nil ? nil : r.read(1) { try r.double("alpha") }
        var settings = StateEvolutionSettings()
        if let a = sub("amp", required: false) {
            a.rejectUnknown(["damping", "tolerance", "iterations", "epsilon", "informed", "omegaNodes", "outputResolution"])
            let d = settings
            settings = StateEvolutionSettings(
                damping: a.read(d.damping) { try a.double("damping", default: d.damping) },
                tolerance: a.read(d.tolerance) { try a.double("tolerance", default: d.tolerance) },
                maxIterations: a.read(d.maxIterations) { try a.int("iterations", default: d.maxIterations) },
                epsilon: a.read(d.epsilon) { try a.double("epsilon", default: d.epsilon) },
                informed: a.read(d.informed) { try a.bool("informed", default: d.informed) },
                omegaNodes: a.read(d.omegaNodes) { try a.int("omegaNodes", default: d.omegaNodes) },
                outputResolution: a.read(d.outputResolution) { try a.double("outputResolution", default: d.outputResolution) })
        }
        return EstimationProblem(teacher: teacher, alpha: alpha, settings: settings)
    }
}
