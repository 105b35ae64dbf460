import ArgumentParser
import Foundation
import PlateauCompare
import PlateauCore
import PlateauStudies
import PlateauSimulation
import PlateauTheory

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Theory against simulation on one time axis, with a measured verdict on where they agree.",
        discussion: """
        A multipass spec compares the DMFT with multi-pass GD at --dimension per GD step (the DMFT's
        Monte-Carlo error added in quadrature to the seeds' standard error; observables also train_loss).
        Each seed's theory curve is integrated from that seed's realised initial overlaps; deviations are
        taken per seed and averaged. At every (time, observable) the verdict is "agrees" when
        |mean deviation| ≤ z·SE + b/d + atol, with z the Bonferroni-corrected Student-t quantile over all
        comparisons (family-wise --alpha) and b the finite-size allowance (--allowance).
        With --dimensions 250,500,1000,2000 the RMS deviation is fitted against d on a log-log scale
        (expected slope about −½).
        Writes agreement.csv (t, observable, theory, simulation mean and SE, deviation and its SE,
        threshold, agrees), theory.csv and seeds.csv (one row per seed per time), summary.csv and
        report.json to --out (default results/compare; one sub-folder d<d> per dimension when several).
        Example: plateau compare --spec spec.yaml --dimension 1000 --seeds 16
        """)

    @OptionGroup var common: SpecOptions
    @OptionGroup var simulation: SimulationArguments
    @OptionGroup var integrator: IntegratorOptions

    @Option(name: .long, help: ArgumentHelp("Several dimensions, comma-separated, for the finite-size scaling fit (overrides --dimension).", valueName: "d1,d2,..."))
    var dimensions: String?

    @Option(name: .long, help: "The theory to compare with: ode (d = ∞ ODE) or map (the exact one-step map at the simulated d, EQUATIONS.md §1.2: right for any batch size, including n_b ∝ d).")
    var model: TheoryModelChoice = .ode

    @Option(name: .long, help: "Family-wise false-alarm probability of the agreement verdicts.")
    var alpha: Double = 0.01

    @Option(name: .long, help: "Finite-size allowance b: deviations up to b/d are accepted on top of z·SE.")
    var allowance: Double = AgreementCriterion().finiteSizeAllowance

    @Option(name: .long, help: "amp protocol: the sample ratio α = n/d, one value (per-iteration comparison) or a grid start:stop:step or list (GAMP after --iterations against the state evolution, per α). Default: training.alpha.")
    var alphas: String?

    @OptionGroup(title: "amp protocol") var gamp: GAMPArguments

    @OptionGroup(title: "multipass protocol (DMFT)") var dmft: DMFTArguments

    @OptionGroup var control: RunOptions

    func parsedDimensions() throws -> [Int] {
        guard let dimensions else { return [simulation.dimension] }
        var out: [Int] = []
        for part in dimensions.split(separator: ",") {
            guard let d = Int(part.trimmingCharacters(in: .whitespaces)), d >= 2 else {
                throw ValidationError("--dimensions: each entry must be an integer ≥ 2 (got \"\(part)\" in \"\(dimensions)\")")
            }
            out.append(d)
        }
        guard !out.isEmpty else { throw ValidationError("--dimensions: no dimension given (got \"\(dimensions)\")") }
        return out
    }

    func validate() throws {
        _ = try parsedDimensions()
        guard alpha.isFinite, alpha > 0, alpha < 1 else { throw ValidationError("--alpha must lie in (0, 1) (got \(alpha))") }
        guard allowance.isFinite, allowance >= 0 else { throw ValidationError("--allowance must be a finite number ≥ 0 (got \(allowance))") }
        guard simulation.seeds >= 2 else { throw ValidationError("--seeds must be ≥ 2 for a standard error (got \(simulation.seeds))") }
    }

    func run() throws {
        WorkerThreads.limit = control.threads
        if let spec = common.spec, let text = try? String(contentsOfFile: spec, encoding: .utf8),
           (try? EstimationProblem.declaredProtocol(specText: text)) == .amp {
            return try runAMP(spec: spec)
        }
        let experiment = try common.experiment()
        let writer = try common.writer(default: "compare")
        try control.run(out: writer.folder.path, command: "compare", spec: experiment.specJSON) {
            if experiment.multipass != nil { return try runMultipass(experiment) }
            try runOnline(experiment, writer: writer)
        }
    }

    func runOnline(_ experiment: Experiment, writer: ResultWriter) throws {
        let dims = try parsedDimensions()
        let theory = try integrator.theory(experiment)
        let criterion = AgreementCriterion(familywiseAlpha: alpha, finiteSizeAllowance: allowance,
                                           integratorTolerance: integrator.atol + integrator.rtol)
        var perDimension: [[String: Any]] = []
        var reports: [AgreementReport] = []
        for d in dims {
            let folder = dims.count == 1 ? writer : try ResultWriter(path: writer.path("d\(d)"))
            let (report, record) = try compare(experiment, theory: theory, dimension: d, criterion: criterion, writer: folder)
            reports.append(report)
            perDimension.append(record)
            if common.format == .table {
                print(report.summary)
                print("")
            }
        }
        var record: [String: Any] = [
            "plateau_version": PlateauVersion.string,
            "command": "compare",
            "spec": experiment.specTree,
            "master_seed": common.seed,
            "risk_definition": "½E[(g − f)²] + Δ/2 (population risk including label noise)",
            "time_axis": "t = SGD steps / d",
            "theory_model": model.rawValue,
            "expectation_route": theory.route.rawValue,
            "expectation_route_description": theory.routeDescription,
            "criterion": ["familywise_alpha": alpha, "finite_size_allowance_b": allowance,
                          "integrator_tolerance": criterion.integratorTolerance] as [String: Any],
            "dimensions": perDimension,
        ]
        if dims.count >= 2 {
            let scaling = FiniteSizeScaling(dimensions: dims, rmsDeviations: reports.map(\.rmsDeviation))
            record["finite_size_scaling"] = [
                "dimensions": dims, "rms_deviation": scaling.rmsDeviations, "slope": scaling.slope,
                "slope_standard_error": scaling.slopeStandardError,
                "consistent_with_inverse_sqrt_d": scaling.consistentWithSquareRootScaling,
            ] as [String: Any]
            var csv = "dimension,rms_deviation\n"
            for (d, r) in zip(dims, scaling.rmsDeviations) { csv += "\(d),\(Trajectory.format(r))\n" }
            try writer.write("scaling.csv", csv)
            if common.format == .table {
                print(Table.render(header: ["d", "RMS deviation"], rows: zip(dims, scaling.rmsDeviations).map { ["\($0)", Table.fmt($1)] }))
                print(String(format: "finite-size scaling: RMS deviation ∝ d^%.3f ± %.3f (expected about −0.5) — %@",
                             scaling.slope, scaling.slopeStandardError,
                             scaling.consistentWithSquareRootScaling ? "consistent" : "NOT consistent"))
            }
        }
        try writer.write("report.json", JSON.string(record))
        if common.format == .json { print(JSON.string(record), terminator: "") } else { print("wrote \(writer.folder.path)") }
    }

    func compare(_ experiment: Experiment, theory: OnlineSGDTheory, dimension d: Int, criterion: AgreementCriterion,
                 writer: ResultWriter) throws -> (AgreementReport, [String: Any]) {
        let progress = Progress("simulate d = \(d)", parts: 1, enabled: !common.quiet)
        let run: ComparisonRun
        do {
            run = try ComparisonRun.run(experiment, dimension: d, seeds: simulation.seeds, masterSeed: common.seed,
                                        testSetSize: simulation.testSet,
                                        theoryModel: model == .ode ? theory : OnlineSGDMap(theory, dimension: Double(d)),
                                        odeOptions: integrator.options, criterion: criterion) {
                progress.update(part: 0, fraction: $0)
            }
        } catch let error as SpecError {
            throw ValidationError("invalid simulation settings: \(error)")
        }
        progress.done()
        let (results, simCurves, theoryCurves, report) = (run.seeds, run.simulation, run.theory, run.report)
        let summary = SeedStatistics.summary(simCurves)

        try writer.write("agreement.csv", Self.agreementCSV(report))
        try writer.write("seeds.csv", SimulationRun.seedsCSV(results, simCurves))
        try writer.write("theory.csv", SimulationRun.seedsCSV(results, theoryCurves))
        try writer.write("summary.csv", SimulationRun.summaryCSV(summary.mean, summary.standardError))

        if common.format == .table {
            print("d = \(d): theory vs simulation (\(results.count) seeds), risk")
            let byTime = Dictionary(grouping: report.comparisons, by: \.time)
            let times = byTime.keys.sorted()
            let shown = Set((0..<14).map { times[Int((Double($0) / 13 * Double(times.count - 1)).rounded())] })
            var rows: [[String]] = []
            for t in times where shown.contains(t) {
                let cs = byTime[t]!
                guard let risk = cs.first(where: { $0.observable == "risk" }) else { continue }
                let bad = cs.filter { !$0.agrees }.map(\.observable)
                rows.append([Table.fmt(t), Table.fmt(risk.theory),
                             Table.fmt(risk.simulationMean) + " ± " + Table.fmt(risk.simulationStandardError),
                             bad.isEmpty ? "agrees" : "differs: " + bad.prefix(3).joined(separator: ",") + (bad.count > 3 ? ",…" : "")])
            }
            print(Table.render(header: ["t", "theory risk", "simulation risk (mean ± SE)", "verdict (all observables)"], rows: rows))
        }
        var record: [String: Any] = [
            "dimension": d, "seeds": results.map { Int(bitPattern: UInt($0.seed)) },
            "critical_value_z": report.criticalValue, "comparisons": report.comparisons.count,
            "agreeing": report.comparisons.filter(\.agrees).count,
            "agrees_everywhere": report.agreesEverywhere, "rms_deviation": report.rmsDeviation,
            "agreeing_times": report.agreeingTimes,
            "simulation_statuses": results.map { $0.status.rawValue },
            "theory_statuses": theoryCurves.map { $0.status.rawValue },
        ]
        if let f = report.firstDisagreement {
            record["first_disagreement"] = ["t": f.time, "observable": f.observable, "deviation": f.meanDeviation,
                                            "threshold": f.threshold] as [String: Any]
        }
        if let w = report.worst {
            record["worst"] = ["t": w.time, "observable": w.observable, "deviation": w.meanDeviation,
                               "threshold": w.threshold, "ratio": abs(w.meanDeviation) / w.threshold] as [String: Any]
        }
        return (report, record)
    }
}

extension CompareCommand {
    /// An amp spec: finite-d GAMP against the state evolution.
    func runAMP(spec: String) throws {
        var problem: EstimationProblem
        do { problem = try EstimationProblem(contentsOf: URL(fileURLWithPath: spec)) } catch let error as SpecError {
            throw ValidationError("invalid specification \(spec): \(error)")
        }
        try gamp.apply(to: &problem)
        let grid: [Double]
        if let alphas { grid = try AlphaGrid.parse(alphas, option: "--alphas") } else if let a = problem.alpha { grid = [a] } else {
            throw ValidationError("no α: give --alphas or training.alpha in the spec")
        }
        let criterion = AgreementCriterion(familywiseAlpha: alpha, finiteSizeAllowance: allowance, integratorTolerance: 0)
        let options = gamp.options(dimension: simulation.dimension, seeds: simulation.seeds, masterSeed: common.seed)
        do { try options.validate(problem: problem, alpha: grid[0]) } catch let error as SpecError {
            throw ValidationError("invalid GAMP settings: \(error)")
        }
        let writer = try common.writer(default: "compare")
        try control.run(out: writer.folder.path, command: "compare", spec: problem.specJSON) {
            try AMPCompare(problem: problem, alphas: grid, options: options, criterion: criterion,
                           writer: writer, format: common.format, quiet: common.quiet).run()
        }
    }
}

enum TheoryModelChoice: String, ExpressibleByArgument, CaseIterable { case ode, map }

extension CompareCommand {
    /// A multipass spec: the DMFT against finite-d multi-pass GD, per GD step.
    func runMultipass(_ experiment: Experiment) throws {
        let writer = try common.writer(default: "compare")
        let d = simulation.dimension
        let (_, theory) = try dmft.solve(experiment, seed: common.seed, quiet: common.quiet)
        let progress = Progress("simulate d = \(d)", parts: 1, enabled: !common.quiet)
        let criterion = AgreementCriterion(familywiseAlpha: alpha, finiteSizeAllowance: allowance, integratorTolerance: 0)
        let run: MultipassComparison
        do {
            run = try MultipassComparison.run(experiment, dimension: d, seeds: simulation.seeds, masterSeed: common.seed,
                                              theory: theory, criterion: criterion) { progress.update(part: 0, fraction: $0) }
        } catch let error as SpecError {
            throw ValidationError("invalid simulation settings: \(error)")
        }
        progress.done()
        let report = run.report
        let summary = SeedStatistics.summary(run.simulation)
        try writer.write("agreement.csv", Self.agreementCSV(report))
        try writer.write("seeds.csv", SimulationRun.seedsCSV(run.seeds, run.simulation))
        try writer.write("summary.csv", SimulationRun.summaryCSV(summary.mean, summary.standardError))
        try writer.write("dmft.csv", SimulationRun.summaryCSV(theory.mean, theory.standardError))
        var record: [String: Any] = [
            "plateau_version": PlateauVersion.string, "command": "compare", "spec": experiment.specTree,
            "master_seed": common.seed, "dimension": d, "seeds": run.seeds.map { Int(bitPattern: UInt($0.seed)) },
            "time_axis": "t = GD step (multi-pass, n = αd reused samples)",
            "theory": ["method": theory.method, "particles": theory.particles, "replicas": theory.replicas,
                       "noise": dmft.noise.rawValue] as [String: Any],
            "criterion": ["familywise_alpha": alpha, "finite_size_allowance_b": allowance] as [String: Any],
            "critical_value_z": report.criticalValue, "comparisons": report.comparisons.count,
            "agreeing": report.comparisons.filter(\.agrees).count, "agrees_everywhere": report.agreesEverywhere,
            "rms_deviation": report.rmsDeviation,
        ]
        if let w = report.worst {
            record["worst"] = ["t": w.time, "observable": w.observable, "deviation": w.meanDeviation,
                               "threshold": w.threshold, "ratio": abs(w.meanDeviation) / w.threshold] as [String: Any]
        }
        try writer.write("report.json", JSON.string(record))
        if common.format == .json { print(JSON.string(record), terminator: ""); return }
        print(report.summary)
        let rows = report.comparisons.filter { $0.observable == "risk" || $0.observable == "train_loss" }.map {
            [Table.fmt($0.time), $0.observable, Table.fmt($0.theory), Table.fmt($0.simulationMean) + " ± " + Table.fmt($0.simulationStandardError),
             $0.agrees ? "agrees" : "differs"]
        }
        print(Table.render(header: ["t", "observable", "DMFT", "simulation (mean ± SE)", "verdict"], rows: rows))
        print("wrote \(writer.folder.path)")
    }

    static func agreementCSV(_ report: AgreementReport) -> String {
        var csv = "t,observable,theory,simulation_mean,simulation_se,deviation,deviation_se,threshold,agrees\n"
        for c in report.comparisons {
            csv += [c.time, c.theory, c.simulationMean, c.simulationStandardError, c.meanDeviation,
                    c.deviationStandardError, c.threshold].enumerated().map { i, x in
                i == 0 ? Trajectory.format(x) + "," + c.observable : Trajectory.format(x)
            }.joined(separator: ",") + ",\(c.agrees)\n"
        }
        return csv
    }
}
