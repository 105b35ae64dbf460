import ArgumentParser
import Foundation
import PlateauCompare
import PlateauCore
import PlateauSimulation
import PlateauStudies
import PlateauTheory

/// The finite-d GAMP options shared by `plateau gamp` and `plateau compare` on an amp spec.
struct GAMPArguments: ParsableArguments {
    @Option(name: .long, help: "GAMP iterations T (iterations 0…T are recorded).")
    var iterations: Int = 20

    @Flag(name: .long, help: "Start GAMP and the state evolution from the informed overlap (1 − ε)I instead of εI.")
    var informed = false

    @Option(name: .long, help: "Override amp.epsilon (the start's overlap ε).")
    var epsilon: Double?

    @Option(name: .long, help: "GAMP's prior-side precision: nishimori (A = Σ g gᵀ/d, default, stable) or derivative (A = −Σ ∂g/d; unstable for sign(z1*z2) above α_c).")
    var precision: GAMPPrecision = .nishimori

    func options(dimension: Int, seeds: Int, masterSeed: UInt64) -> GAMPOptions {
        GAMPOptions(dimension: dimension, iterations: iterations, seeds: seeds, masterSeed: masterSeed, informed: informed,
                    precision: precision)
    }

    func apply(to problem: inout EstimationProblem) throws {
        guard iterations >= 1, iterations <= 100_000 else { throw ValidationError("--iterations must be an integer in 1...100000 (got \(iterations))") }
        if let epsilon {
            problem.settings.epsilon = epsilon
            do { try problem.settings.validate() } catch let e as SpecError { throw ValidationError("--epsilon: \(e)") }
        }
    }
}

extension GAMPPrecision: ExpressibleByArgument {}

/// `plateau gamp`: finite-d GAMP over seeds.
struct GAMPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gamp",
        abstract: "Finite-d Bayes-optimal GAMP on n = αd samples of a multi-index model, many seeds.",
        discussion: """
        Per seed and iteration t = 0…T: M_t = ŴᵀW*ᵀ/d (overlap with the teacher), Q_t = ŴᵀŴ/d and
        q_t = tr Q_t/k. On the Nishimori line Q_t follows the state evolution's M_t (plateau se; plateau
        compare overlays them with verdicts). Writes seeds.csv (seed, t, M_r_s, Q_r_s, q) and summary.csv
        (t, means and standard errors over seeds) and report.json. The channel step uses the same
        OutputChannel as the state evolution.
        Example: plateau gamp --spec spec.yaml --alpha 3 --dimension 2000 --seeds 8
        """)

    @OptionGroup var common: EstimationOptions
    @OptionGroup var gamp: GAMPArguments

    @Option(name: .long, help: "α = n/d (default: training.alpha of the spec).")
    var alpha: Double?

    @Option(name: .long, help: "Input dimension d.")
    var dimension: Int = 2000

    @Option(name: .long, help: "Number of independent seeds (run in parallel).")
    var seeds: Int = 8

    @Option(name: .long, help: "Master random seed; each seed is derived from it deterministically.")
    var seed: UInt64 = 1

    @OptionGroup var control: RunOptions

    func run() throws {
        WorkerThreads.limit = control.threads
        var problem = try common.problem()
        try gamp.apply(to: &problem)
        guard let a = alpha ?? problem.alpha else { throw ValidationError("no α: give --alpha or training.alpha in the spec") }
        do { try EstimationProblem.validateAlpha(a, field: "--alpha") } catch let e as SpecError { throw ValidationError("\(e)") }
        let channel = try OutputChannel(problem: problem)
        let options = gamp.options(dimension: dimension, seeds: seeds, masterSeed: seed)
        do { try options.validate(problem: problem, alpha: a) } catch let e as SpecError { throw ValidationError("invalid GAMP settings: \(e)") }
        let writer = try common.writer(default: "gamp")
        try control.run(out: writer.folder.path, command: "gamp", spec: problem.specJSON) {
            try run(problem: problem, alpha: a, channel: channel, options: options, writer: writer)
        }
    }

    func run(problem: EstimationProblem, alpha a: Double, channel: OutputChannel, options: GAMPOptions, writer: ResultWriter) throws {
        let started = Date()
        let result: GAMPResult
        do { result = try GAMPSimulator.run(problem: problem, alpha: a, denoiser: channel, options: options) } catch let e as SpecError {
            throw ValidationError("invalid GAMP settings: \(e)")
        }
        let k = problem.k
        let mNames = Matrix.overlapNames(k: k), qNames = (1...k).flatMap { r in (1...k).map { "Q_\(r)_\($0)" } }
        var seedsCSV = (["seed", "t"] + mNames + qNames + ["q"]).joined(separator: ",") + "\n"
        for run in result.seeds {
            for t in 0..<run.Q.count {
                seedsCSV += (["\(run.seed)", "\(t)"] + (run.M[t].values + run.Q[t].values + [run.q[t]]).map { Trajectory.format($0) })
                    .joined(separator: ",") + "\n"
            }
        }
        let summary = result.summary()
        var summaryCSV = (["t", "seeds"] + mNames + mNames.map { $0 + "_se" } + qNames + qNames.map { $0 + "_se" } + ["q", "q_se"])
            .joined(separator: ",") + "\n"
        for s in summary {
            let numbers = s.meanM.values + s.standardErrorM.values + s.meanQ.values + s.standardErrorQ.values + [s.meanq, s.standardErrorq]
            summaryCSV += (["\(s.iteration)", "\(s.count)"] + numbers.map { Trajectory.format($0) }).joined(separator: ",") + "\n"
        }
        try writer.write("seeds.csv", seedsCSV)
        try writer.write("summary.csv", summaryCSV)
        var record: [String: Any] = [
            "spec": problem.specTree, "version": PlateauVersion.string, "alpha": a, "dimension": dimension,
            "samples": options.sampleCount(alpha: a), "seeds": result.seeds.map { Int(bitPattern: UInt($0.seed)) },
            "statuses": result.seeds.map { $0.status.rawValue }, "iterations": gamp.iterations, "informed": gamp.informed,
            "q_final": summary.last.map { ["mean": $0.meanq, "se": $0.standardErrorq] } ?? [:],
        ]
        // The wall time goes to stdout only: the files are the same bytes on a rerun or a resume.
        try writer.write("report.json", JSON.string(record))
        let seconds = Date().timeIntervalSince(started)
        switch common.format {
        case .json:
            record["wall_seconds"] = seconds
            print(JSON.string(record), terminator: "")
        case .table:
            print("GAMP: \(problem.target), α = \(a), d = \(dimension), n = \(options.sampleCount(alpha: a)), \(seeds) seeds, \(String(format: "%.2f", seconds)) s")
            print(Table.render(header: ["t", "q (mean ± SE)"], rows: summary.map { ["\($0.iteration)", Table.fmt($0.meanq) + " ± " + Table.fmt($0.standardErrorq)] }))
            print("wrote \(writer.folder.path)")
        }
    }
}

/// `plateau compare` on an amp spec: GAMP against the state evolution with verdicts.
struct AMPCompare {
    let problem: EstimationProblem
    let alphas: [Double]
    let options: GAMPOptions
    let criterion: AgreementCriterion
    let writer: ResultWriter
    let format: OutputFormat
    let quiet: Bool

    func run() throws {
        let started = Date()
        let report: AgreementReport
        var record: [String: Any] = [
            "plateau_version": PlateauVersion.string, "command": "compare", "protocol": "amp", "spec": problem.specTree,
            "time_axis": alphas.count == 1 ? "AMP iteration" : "α (GAMP and the state evolution after T iterations)",
            "observables": "q = tr Q/k and Q_r_s, Q = ŴᵀŴ/d (the state evolution's M on the Nishimori line)",
            "dimension": options.dimension, "iterations": options.iterations, "informed": options.informed,
            "criterion": ["familywise_alpha": criterion.familywiseAlpha, "finite_size_allowance_b": criterion.finiteSizeAllowance] as [String: Any],
        ]
        let theoryCSV: String, seedsCSV: String
        if alphas.count == 1 {
            let run = try AMPComparison.run(problem: problem, alpha: alphas[0], options: options, criterion: criterion)
            report = run.report
            theoryCSV = run.theory[0].csv()
            seedsCSV = Self.long(run.simulation, run.gamp.seeds.map(\.seed))
            record["alpha"] = alphas[0]
        } else {
            let progress = Progress("compare (α grid)", parts: 1, enabled: !quiet)
            let scan = try AMPFixedPointScan.run(problem: problem, alphas: alphas, options: options, criterion: criterion) {
                progress.update(part: 0, fraction: $0)
            }
            progress.done()
            report = scan.report
            theoryCSV = scan.theory[0].csv()
            seedsCSV = Self.long(scan.simulation, scan.runs[0].gamp.seeds.map(\.seed))
            record["alphas"] = alphas
        }
        var agreementCSV = "\(alphas.count == 1 ? "t" : "alpha"),observable,theory,simulation_mean,simulation_se,deviation,deviation_se,threshold,agrees\n"
        for c in report.comparisons {
            agreementCSV += ([Trajectory.format(c.time), c.observable] + [c.theory, c.simulationMean, c.simulationStandardError,
                             c.meanDeviation, c.deviationStandardError, c.threshold].map { Trajectory.format($0) })
                .joined(separator: ",") + ",\(c.agrees)\n"
        }
        try writer.write("agreement.csv", agreementCSV)
        try writer.write("theory.csv", theoryCSV)
        try writer.write("seeds.csv", seedsCSV)
        record["critical_value_z"] = report.criticalValue
        record["comparisons"] = report.comparisons.count
        record["agreeing"] = report.comparisons.filter(\.agrees).count
        record["agrees_everywhere"] = report.agreesEverywhere
        record["rms_deviation"] = report.rmsDeviation
        if let w = report.worst {
            record["worst"] = ["at": w.time, "observable": w.observable, "deviation": w.meanDeviation, "threshold": w.threshold] as [String: Any]
        }
        // The wall time goes to stdout only: the files are the same bytes on a rerun or a resume.
        try writer.write("report.json", JSON.string(record))
        let seconds = Date().timeIntervalSince(started)
        switch format {
        case .json:
            record["wall_seconds"] = seconds
            print(JSON.string(record), terminator: "")
        case .table:
            print("GAMP (d = \(options.dimension), \(options.seeds) seeds) against the state evolution: \(problem.target), \(String(format: "%.2f", seconds)) s")
            let rows = report.comparisons.filter { $0.observable == "q" }.map { c in
                [Table.fmt(c.time), Table.fmt(c.theory), Table.fmt(c.simulationMean) + " ± " + Table.fmt(c.simulationStandardError),
                 c.agrees ? "agrees" : "differs"]
            }
            print(Table.render(header: [alphas.count == 1 ? "t" : "alpha", "SE q", "GAMP q (mean ± SE)", "verdict"], rows: rows))
            print(report.summary)
            print("wrote \(writer.folder.path)")
        }
    }

    /// One row per seed per row of the trajectories, with a leading seed column.
    static func long(_ curves: [Trajectory], _ seeds: [UInt64]) -> String {
        guard let first = curves.first else { return "" }
        var out = (["seed", "t"] + first.observables).joined(separator: ",") + "\n"
        for (curve, seed) in zip(curves, seeds) {
            for (t, row) in zip(curve.times, curve.values) {
                out += (["\(seed)", Trajectory.format(t)] + row.map { Trajectory.format($0) }).joined(separator: ",") + "\n"
            }
        }
        return out
    }
}
