import ArgumentParser
import Foundation
import PlateauCore
import PlateauTheory

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    /// Files in --out plus a short table on stdout.
    case table
    /// Files in --out plus the result as JSON on stdout.
    case json
}

extension ODEMethod: ExpressibleByArgument {}
extension Loss: ExpressibleByArgument {}

/// The options every subcommand shares: the spec, command-line overrides, seed, output.
struct SpecOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Experiment specification, YAML or JSON (see `plateau --help` for a sample). Default: the built-in Saad–Solla committee.", valueName: "file"))
    var spec: String?

    @Option(name: .long, help: "Master random seed; each simulated seed is derived from it deterministically.")
    var seed: UInt64 = 1

    @Option(name: .long, help: ArgumentHelp("Folder for the results (created if missing; files are replaced atomically).", valueName: "dir"))
    var out: String?

    @Option(name: .long, help: "table: a short table on stdout; json: the result as JSON on stdout. Files are written either way.")
    var format: OutputFormat = .table

    @Flag(name: .long, help: "No progress on stderr.")
    var quiet = false

    @Option(name: .long, help: "Override training.time (the horizon).")
    var time: Double?

    @Option(name: .customLong("learning-rate"), help: "Override training.learningRate.")
    var learningRate: Double?

    @Option(name: .customLong("batch-size"), help: "Override training.batchSize.")
    var batchSize: Int?

    @Option(name: .long, help: "Override training.loss (square | correlation).")
    var loss: Loss?

    /// The resolved experiment: command line overrides the file, which overrides the defaults.
    func experiment() throws -> Experiment {
        var e: Experiment
        if let spec {
            guard FileManager.default.isReadableFile(atPath: spec) else {
                throw ValidationError("--spec: cannot read the file \(spec)")
            }
            // The overrides go into the file's tree before it is checked: a file may leave out what the
            // command line gives.
            var overrides: [SpecOverride] = []
            if let time { overrides.append(SpecOverride("training.time", time)) }
            if let learningRate { overrides.append(SpecOverride("training.learningRate", learningRate)) }
            if let batchSize { overrides.append(SpecOverride("training.batchSize", batchSize)) }
            if let loss { overrides.append(SpecOverride("training.loss", loss.rawValue)) }
            do { e = try Experiment(contentsOf: URL(fileURLWithPath: spec), overrides: overrides) } catch let error as SpecError {
                throw ValidationError("invalid specification \(spec): \(error)")
            }
        } else {
            e = .saadSolla
        }
        if let time { e.training.time = time }
        if let learningRate {
            e.training.learningRate = learningRate
        }
        if let batchSize { e.training.batchSize = batchSize }
        if let loss { e.training.loss = loss }
        do { try e.validate() } catch let error as SpecError {
            throw ValidationError("invalid specification: \(error)")
        }
        return e
    }

    func writer(default name: String) throws -> ResultWriter {
        try ResultWriter(path: out ?? "results/\(name)")
    }
}

/// Options of the d = ∞ integrator.
struct IntegratorOptions: ParsableArguments {
    @Option(name: .long, help: "Integration method: rk8pd (default, adaptive), rkck, rkf45, rk4, or euler (fixed step, as the public Euler codes).")
    var method: ODEMethod = .rk8pd

    @Option(name: .long, help: "Relative tolerance of the adaptive methods (local error < atol + rtol·|y|).")
    var rtol: Double = 1e-8

    @Option(name: .long, help: "Absolute tolerance of the adaptive methods.")
    var atol: Double = 1e-10

    @Option(name: .customLong("euler-step"), help: "Fixed step dt of --method euler (time units of steps/d).")
    var eulerStep: Double = 0.01

    @Flag(name: .customLong("population-flow"), help: "Gradient flow on the population risk: drop the (η²/n_b)Ξ term.")
    var populationFlow = false

    @Option(name: .long, help: "Expectation route: closed-form (erf/linear/ReLU committees), wick (polynomial activation and target, exact) or quadrature (anything; a deterministic cubature rule). Default: the best available, reported in the output.")
    var route: TheoryRoute?

    @Option(name: .customLong("quadrature-tolerance"), help: "Accuracy asked of every Ψ, Φ, Ξ entry on the quadrature route (the rule is refined until two successive rules agree to it, up to --quadrature-points).")
    var quadratureTolerance: Double = QuadratureSettings().tolerance

    @Option(name: .customLong("quadrature-points"), help: "The most points of the quadrature rule.")
    var quadraturePoints: Int = QuadratureSettings().maximumPoints

    /// The theory of `experiment` on the requested (or best available) route.
    func theory(_ experiment: Experiment) throws -> OnlineSGDTheory {
        let available = TheoryRoute.available(for: experiment)
        if let route, !available.contains(route) {
            throw ValidationError("--route \(route.rawValue) cannot compute this problem (student \(experiment.student.activation.name), \(experiment.teacher.targetDescription)); available: \(available.map(\.rawValue).joined(separator: ", "))")
        }
        var settings = QuadratureSettings()
        settings.tolerance = quadratureTolerance
        settings.maximumPoints = quadraturePoints
        let theory = OnlineSGDTheory(experiment, populationFlow: populationFlow, route: route, quadrature: settings)
        if !theory.quadratureMetTolerance {
            note("warning: the quadrature rule did not reach --quadrature-tolerance \(quadratureTolerance) within --quadrature-points \(quadraturePoints): \(theory.routeDescription)")
        }
        return theory
    }

    func validate() throws {
        guard quadraturePoints >= 100 else { throw ValidationError("--quadrature-points must be an integer ≥ 100 (got \(quadraturePoints))") }
        for (name, v) in [("--rtol", rtol), ("--atol", atol), ("--euler-step", eulerStep), ("--quadrature-tolerance", quadratureTolerance)] {
            guard v.isFinite, v > 0 else { throw ValidationError("\(name) must be a finite number > 0 (got \(v))") }
        }
    }

    var options: ODEOptions {
        ODEOptions(method: method, relativeTolerance: rtol, absoluteTolerance: atol, eulerStep: eulerStep)
    }
}

extension TheoryRoute: ExpressibleByArgument {}

/// Options of the finite-d simulator.
struct SimulationArguments: ParsableArguments {
    @Option(name: .long, help: "Input dimension d.")
    var dimension: Int = 1000

    @Option(name: .long, help: "Number of independent seeds (run in parallel on all cores).")
    var seeds: Int = 16

    @Option(name: .customLong("test-set"), help: "Size of a held-out test set for a Monte-Carlo risk estimate (column risk_test); 0 for none.")
    var testSet: Int = 0

    func validate() throws {
        guard dimension >= 2 else { throw ValidationError("--dimension must be an integer ≥ 2 (got \(dimension))") }
        guard seeds >= 1 else { throw ValidationError("--seeds must be an integer ≥ 1 (got \(seeds))") }
        guard testSet >= 0 else { throw ValidationError("--test-set must be an integer ≥ 0 (got \(testSet))") }
    }
}
