import ArgumentParser
import Foundation
import PlateauCompare
import PlateauCore
import PlateauSimulation
import PlateauTheory

struct SimulateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Run online SGD (or multi-pass GD, training.protocol: multipass) at finite dimension d over many seeds.",
        discussion: """
        Writes seeds.csv (one row per seed per time: seed, t, risk, M_j_r, Q_j_l, a_j, cos_j_r),
        summary.csv (per time: each observable's mean and standard error over seeds, columns NAME and
        NAME_se) and report.json to --out (default results/simulate). The overlaps are measured exactly
        from the weights; the risk is computed from them by the same function as the theory. A multipass
        spec runs full-batch GD on n = αd reused samples (one row per GD step, plus train_loss).
        Example: plateau simulate --spec spec.yaml --dimension 1000 --seeds 16
        """)

    @OptionGroup var common: SpecOptions
    @OptionGroup var simulation: SimulationArguments
    @OptionGroup var control: RunOptions

    func run() throws {
        let experiment = try common.experiment()
        let writer = try common.writer(default: "simulate")
        try control.run(out: writer.folder.path, command: "simulate", spec: experiment.specJSON) { try simulate(experiment, writer: writer) }
    }

    func simulate(_ experiment: Experiment, writer: ResultWriter) throws {
        let theory = OnlineSGDTheory(experiment)
        let start = Date()
        let results = try SimulationRun.run(experiment, dimension: simulation.dimension, seeds: simulation.seeds,
                                            masterSeed: common.seed, testSet: simulation.testSet, quiet: common.quiet)
        let curves = results.map { $0.trajectory(risk: theory.risk) }
        let seconds = Date().timeIntervalSince(start)
        let summary = SeedStatistics.summary(curves)
        try writer.write("seeds.csv", SimulationRun.seedsCSV(results, curves))
        try writer.write("summary.csv", SimulationRun.summaryCSV(summary.mean, summary.standardError))
        let report: [String: Any] = [
            "plateau_version": PlateauVersion.string,
            "command": "simulate",
            "spec": experiment.specTree,
            "master_seed": common.seed,
            "seeds": results.map { Int(bitPattern: UInt($0.seed)) },
            "dimension": simulation.dimension,
            "risk_definition": "½E[(g − f)²] + Δ/2 from the measured overlaps (population risk including label noise)",
            "time_axis": experiment.multipass == nil ? "t = SGD steps / d" : "t = GD step (multi-pass, n = αd reused samples)",
            "statuses": results.map { $0.status.rawValue },
            "mean": JSON.trajectory(summary.mean),
            "standard_error": JSON.trajectory(summary.standardError),
        ]
        try writer.write("report.json", JSON.string(report))
        if common.format == .json {
            print(JSON.string(report), terminator: "")
        } else {
            print("simulated \(results.count) seeds at d = \(simulation.dimension) in \(String(format: "%.1f", seconds)) s")
            let rows = Table.pick(summary.mean, ["risk"]).enumerated().map { _, row -> [String] in row }
            let seCol = summary.standardError.observables.firstIndex(of: "risk")!
            let withSE = rows.map { row -> [String] in
                let i = summary.mean.times.firstIndex { Table.fmt($0) == row[0] } ?? 0
                return row + [Table.fmt(summary.standardError.values[i][seCol])]
            }
            print(Table.render(header: ["t", "risk (mean)", "SE"], rows: withSE))
            print("wrote \(writer.path("seeds.csv")), \(writer.path("summary.csv")), \(writer.path("report.json"))")
        }
        for r in results where r.status != .completed { note("warning: seed \(r.seed): \(r.status.rawValue): \(r.message)") }
    }
}

/// Shared by `simulate` and `compare`.
enum SimulationRun {
    static func run(_ experiment: Experiment, dimension: Int, seeds: Int, masterSeed: UInt64, testSet: Int,
                    quiet: Bool) throws -> [SeedResult] {
        let options = SimulationOptions(dimension: dimension, times: experiment.recordTimes, testSetSize: testSet)
        let progress = Progress("simulate d = \(dimension)", parts: 1, enabled: !quiet)
        do {
            let report: @Sendable (Double) -> Void = { progress.update(part: 0, fraction: $0) }
            let results = experiment.multipass == nil
                ? try OnlineSGDSimulator.run(experiment, options: options, masterSeed: masterSeed, count: seeds, progress: report)
                : try MultipassGDSimulator.run(experiment, dimension: dimension, masterSeed: masterSeed, count: seeds, progress: report)
            progress.done()
            return results
        } catch let error as SpecError {
            throw ValidationError("invalid simulation settings: \(error)")
        }
    }

    static func seedsCSV(_ results: [SeedResult], _ curves: [Trajectory]) -> String {
        var out = ""
        for (i, (r, c)) in zip(results, curves).enumerated() {
            let text = c.csv(extraColumns: [("seed", "\(r.seed)")])
            out += i == 0 ? text : String(text.drop { $0 != "\n" }.dropFirst())
        }
        return out
    }

    static func summaryCSV(_ mean: Trajectory, _ se: Trajectory) -> String {
        var out = (["t"] + mean.observables.flatMap { [$0, $0 + "_se"] }).joined(separator: ",") + "\n"
        for i in mean.times.indices {
            var row = [Trajectory.format(mean.times[i])]
            for c in mean.observables.indices { row += [Trajectory.format(mean.values[i][c]), Trajectory.format(se.values[i][c])] }
            out += row.joined(separator: ",") + "\n"
        }
        return out
    }
}
