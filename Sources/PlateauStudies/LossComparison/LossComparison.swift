import Foundation
import PlateauCompare
import PlateauCore
import PlateauSimulation
import PlateauTheory

/// Correlation loss against square loss for online SGD on a spherical two-layer student, at d = ∞
/// (the exact ODE of EQUATIONS.md §1.1 with the spherical projection of §1.3) and at finite d.
///
/// Two problems:
/// - *He₃ single index* (information exponent ℓ = 3): target He₃(z₁), student f = He₃(λ), p = k = 1,
///   spherical (Q = 1), from a prescribed overlap m₀ = M(0). With Q = 1 every Gaussian moment is a
///   polynomial in m, and the overlap ODE is exactly (Hermite products, E[Heₐ(λ)He_b(ν)] = δ_ab a! mᵃ):
///
///       dm/dt = 18η m²(1 − m²) − (η²/2) m Ξ(m),
///       Ξ_corr(m) = 9E[He₂(λ)² He₃(ν)²]            = 1944m⁴ + 1296m² + 108,
///       Ξ_sq(m)   = 9E[He₂(λ)² (He₃(ν) − He₃(λ))²] = 1944m⁴ − 6696m³ + 1296m² + 3456.
///
///   The drift is the same for both losses (on the sphere E[He₃(λ)²] = 6 does not depend on w, so the
///   student–student part of the square loss's gradient is radial and is projected out); the losses
///   differ only in the SGD noise Ξ. The square loss's noise is 32× larger at m = 0 (the student's
///   own output is noise until it aligns) and vanishes at m = 1; the correlation loss's never does, so
///   it stops at the root m* < 1 of 36(1 − m²) = η Ξ_corr(m)/m, with 1 − m*² ≈ 93η.
/// - *Staircase* y = z₁ + z₁z₂ + … + z₁⋯z_k, k = 1…4, p = k units with σ = He₁ + He₂/2 + He₃/6 + He₄/24
///   (every Hermite degree up to 4, so each leap of the staircase is a first-order step: the drift of
///   M_j,r+1 contains E[σ'(λ_j) z₁⋯z_r] ∝ the He_r coefficient of σ'), a_j = 1/p, η = 0.01·p (so that
///   the per-unit step η a_j = 0.01 is the same for every k), random initial weights (M = O(1/√d)).
///
/// Every experiment takes the Wick route (polynomial activation and target): its expectations are exact.
public struct LossComparison: Reproduction {
    public let name = "loss-comparison"
    public let title = "Correlation loss vs square loss: He₃ single index and the staircase z₁ + z₁z₂ + … (k = 1…4), theory against simulation"
    public let reproduces = """
        The comparison of the correlation loss ℓ = −y f (correlational queries: D = y) with the square loss \
        ℓ = ½(y − f)² (D = y − f) in online SGD: for a single-index target of information exponent 3 \
        (He₃; cf. Ben Arous, Gheissari & Jagannath, JMLR 22 (2021), whose spherical online SGD uses the \
        correlation loss) and for the leap-1 staircase z₁ + z₁z₂ + … + z₁⋯z_k (Abbe, Boix-Adserà & \
        Misiakiewicz, COLT 2022/2023), with the exact d = ∞ overlap ODE (spherical student, Wick route) \
        overlaid on finite-d simulations at several d: cosine similarity and population risk against t = steps/d.
        """

    public init() {}

    // MARK: - Settings

    /// He₃: learning rate, initial overlap, horizon.
    public static let he3LearningRate = 0.001
    public static let he3InitialOverlap = 0.3
    public static let he3Horizon = 600.0
    /// Staircase: the student activation (the Hermite series of e^{x − 1/2} − 1 truncated at degree 4).
    public static let staircaseActivationText = "He1(x) + He2(x)/2 + He3(x)/6 + He4(x)/24"
    /// Staircase: η·a_j (a_j = 1/p, η = perUnitStep·p).
    public static let staircasePerUnitStep = 0.01
    public static let staircaseHorizon = 400.0
    /// Record points of every curve (linear grid: count + 1 times).
    public static let recordIntervals = 100
    /// Cosine levels whose first-passage times are reported.
    public static let cosineLevels = [0.5, 0.9]
    public static let odeOptions = ODEOptions(relativeTolerance: 1e-9, absoluteTolerance: 1e-11)

    /// One problem of the study.
    public enum Problem: Sendable, Hashable {
        case he3
        case staircase(k: Int)

        public var id: String {
            switch self {
            case .he3: return "he3"
            case let .staircase(k): return "staircase-k\(k)"
            }
        }

        public var k: Int {
            switch self {
            case .he3: return 1
            case let .staircase(k): return k
            }
        }

        public var p: Int { k }
    }

    /// The sizes of one run.
    public struct Configuration: Sendable, Hashable {
        public var problems: [Problem]
        public var dimensions: [Int]
        public var seeds: Int
        public var masterSeed: UInt64
        public var quick: Bool

        public init(_ s: ReproductionSettings) {
            quick = s.quick
            masterSeed = s.masterSeed
            if s.quick {
                problems = [.he3, .staircase(k: 1), .staircase(k: 2)]
                dimensions = [200]
                seeds = 4
            } else {
                problems = [.he3] + (1...4).map { .staircase(k: $0) }
                dimensions = [250, 500, 1000]
                seeds = 8
            }
            if let d = s.dimensions { dimensions = d }
            if let n = s.seeds { seeds = n }
        }
    }

    // MARK: - The experiments

    public static var staircaseActivation: Activation { try! Activation.parse(staircaseActivationText) }

    /// The experiment of `problem` with `loss` (every setting of the study; d is the simulator's).
    public static func experiment(_ problem: Problem, loss: Loss) -> Experiment {
        switch problem {
        case .he3:
            let link = try! Formula(parsing: "He3(z1)", variables: .target(k: 1))
            let m0 = he3InitialOverlap
            return Experiment(
                teacher: TeacherSpec(link: link),
                student: StudentSpec(p: 1, activation: .hermite(3), secondLayer: [1], spherical: true),
                training: TrainingSpec(loss: loss, learningRate: he3LearningRate, batchSize: 1, time: he3Horizon),
                initialization: .overlaps(M: Matrix(rows: 1, cols: 1, repeating: m0), Q: .identity(1)),
                output: OutputSpec(times: .linear(count: recordIntervals)))
        case let .staircase(k):
            return Experiment(
                teacher: TeacherSpec(link: Formula.preset("staircase", k: k)!),
                student: StudentSpec(p: k, activation: staircaseActivation, secondLayer: Array(repeating: 1 / Double(k), count: k),
                                     spherical: true),
                training: TrainingSpec(loss: loss, learningRate: staircasePerUnitStep * Double(k), batchSize: 1, time: staircaseHorizon),
                initialization: .random(scale: 1),
                output: OutputSpec(times: .linear(count: recordIntervals)))
        }
    }

    /// The exact He₃ overlap ODE (spherical student, Q = 1, a = 1, n_b = 1): dm/dt at overlap m.
    /// Derived in the type's documentation; the study checks the Wick route against it.
    public static func he3OverlapRate(m: Double, learningRate eta: Double, loss: Loss) -> Double {
        let xi: Double
        switch loss {
        case .correlation: xi = 1944 * pow(m, 4) + 1296 * m * m + 108
        case .square: xi = 1944 * pow(m, 4) - 6696 * pow(m, 3) + 1296 * m * m + 3456
        }
        return 18 * eta * m * m * (1 - m * m) - 0.5 * eta * eta * m * xi
    }

    /// The correlation loss's stationary overlap m* of the He₃ ODE (the root in (0, 1) of
    /// 36(1 − m²) = η Ξ_corr(m)/m, by bisection).
    public static func he3CorrelationFixedPoint(learningRate eta: Double) -> Double {
        var lo = 0.5, hi = 1.0
        for _ in 0..<200 {
            let mid = 0.5 * (lo + hi)
            if he3OverlapRate(m: mid, learningRate: eta, loss: .correlation) > 0 { lo = mid } else { hi = mid }
        }
        return 0.5 * (lo + hi)
    }

    // MARK: - Observables

    /// The observables written for a p-unit student and k-index target: the risk, every cos_j_r,
    /// best_cos_r = max_j |cos_j_r| (how well direction r is found by its best unit) and, for p > 1,
    /// student_cos = mean_{j<l} |Q_jl|/√(Q_jj Q_ll) (1: every unit points the same way).
    public static func observableNames(p: Int, k: Int) -> [String] {
        var names = ["risk"]
        for j in 1...p { for r in 1...k { names.append("cos_\(j)_\(r)") } }
        for r in 1...k { names.append("best_cos_\(r)") }
        if p > 1 { names.append("student_cos") }
        return names
    }

    /// The curve `t` (with the package's standard observables) restricted and extended to `observableNames`.
    static func derived(_ t: Trajectory, p: Int, k: Int) -> Trajectory {
        var out = Trajectory(observables: observableNames(p: p, k: k), status: t.status, message: t.message)
        let risk = t.observables.firstIndex(of: "risk")!
        let cos = (0..<p).map { j in (0..<k).map { r in t.observables.firstIndex(of: "cos_\(j + 1)_\(r + 1)")! } }
        let q = (0..<p).map { j in (0..<p).map { l in t.observables.firstIndex(of: "Q_\(min(j, l) + 1)_\(max(j, l) + 1)")! } }
        for (i, time) in t.times.enumerated() {
            let v = t.values[i]
            var row = [v[risk]]
            for j in 0..<p { for r in 0..<k { row.append(v[cos[j][r]]) } }
            for r in 0..<k { row.append((0..<p).map { abs(v[cos[$0][r]]) }.max()!) }
            if p > 1 {
                var sum = 0.0, pairs = 0
                for j in 0..<p { for l in (j + 1)..<p {
                    sum += abs(v[q[j][l]]) / (v[q[j][j]] * v[q[l][l]]).squareRoot()
                    pairs += 1
                } }
                row.append(sum / Double(pairs))
            }
            out.append(time: time, values: row)
        }
        return out
    }

    /// The largest |mean deviation|/SE over the comparisons whose SE is resolvable (> 1e-8): Q_jj on
    /// the sphere, a fixed second layer and t = 0 agree to rounding, and their z-scores (rounding over
    /// rounding) carry no information.
    static func resolvedStandardErrors(_ report: AgreementReport) -> Double {
        report.comparisons.filter { $0.deviationStandardError > 1e-8 }.map(\.zScore).max() ?? .nan
    }

    /// The first time a sampled curve reaches `level` from below (linear interpolation); NaN if never.
    static func firstPassage(_ times: [Double], _ values: [Double], level: Double) -> Double {
        guard let i = values.firstIndex(where: { $0 >= level }) else { return .nan }
        if i == 0 { return times[0] }
        return times[i - 1] + (times[i] - times[i - 1]) * (level - values[i - 1]) / (values[i] - values[i - 1])
    }

    // MARK: - Results

    /// A d = ∞ curve from the nominal start (SGD, or the population gradient flow without the η² term).
    public struct TheoryCurve: Sendable {
        public var problem: Problem
        public var loss: Loss
        public var populationFlow: Bool
        public var route: TheoryRoute
        public var curve: Trajectory
    }

    /// One simulated (problem, loss, d): the comparison run and its curves in the study's observables.
    public struct Simulated: Sendable {
        public var problem: Problem
        public var loss: Loss
        public var run: ComparisonRun
        public var simulation: [Trajectory]
        public var theory: [Trajectory]
    }

    // MARK: - The study

    public func run(_ settings: ReproductionSettings, progress: @escaping ReproductionProgress) throws -> ReproductionResult {
        try settings.validate()
        let started = Date()
        let config = Configuration(settings)
        let largest = config.problems.map(\.k).max() ?? 1
        for d in config.dimensions where d < SimulationOptions.minimumDimension(p: largest, k: largest) {
            throw SpecError(field: "--dimensions", value: "\(d)",
                            reason: "must be ≥ \(SimulationOptions.minimumDimension(p: largest, k: largest)) for p = k = \(largest)")
        }
        let losses: [Loss] = [.correlation, .square]

        // 1. d = ∞ curves from the nominal start: SGD and the population flow, every (problem, loss).
        let jobs = config.problems.flatMap { problem in losses.flatMap { loss in [false, true].map { (problem, loss, $0) } } }
        let curves = Reproductions.parallel(jobs, stage: "theory: d = ∞ curves", progress) { job -> TheoryCurve in
            let e = Self.experiment(job.0, loss: job.1)
            let theory = OnlineSGDTheory(e, populationFlow: job.2)
            let t = theory.trajectory(from: theory.initialOverlaps, times: e.recordTimes, options: Self.odeOptions).trajectory
            return TheoryCurve(problem: job.0, loss: job.1, populationFlow: job.2, route: theory.route,
                               curve: Self.derived(t, p: job.0.p, k: job.0.k))
        }

        // 2. Finite d: each seed's theory from its realised start (ComparisonRun).
        var simulated: [Simulated] = []
        for (pi, problem) in config.problems.enumerated() {
            for loss in losses {
                let e = Self.experiment(problem, loss: loss)
                for (di, d) in config.dimensions.enumerated() {
                    let stage = "simulate \(problem.id), \(loss.rawValue) loss, d = \(d), \(config.seeds) seeds"
                    progress(stage, 0)
                    // Both losses of one (problem, d) share the master seed: the same teachers and starts.
                    let run = try ComparisonRun.run(e, dimension: d, seeds: config.seeds,
                                                    masterSeed: SeedSequence.seed(master: config.masterSeed, index: 100 * pi + di),
                                                    odeOptions: Self.odeOptions) { progress(stage, $0) }
                    progress(stage, 1)
                    simulated.append(Simulated(problem: problem, loss: loss, run: run,
                                               simulation: run.simulation.map { Self.derived($0, p: problem.p, k: problem.k) },
                                               theory: run.theory.map { Self.derived($0, p: problem.p, k: problem.k) }))
                }
            }
        }

        let seconds = Date().timeIntervalSince(started)
        return Self.files(config: config, curves: curves, simulated: simulated, seconds: seconds)
    }
}
