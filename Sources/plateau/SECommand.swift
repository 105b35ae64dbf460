import ArgumentParser
import Foundation
import PlateauCore
import PlateauTheory

/// `plateau se`: fixed points of the Bayes-optimal state evolution over an α grid.
struct SECommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "se",
        abstract: "AMP state evolution of a multi-index model: the fixed point M(α) over an α grid.",
        discussion: """
        For each α the Bayes-optimal state evolution (EQUATIONS.md §2) is iterated from the uninformed
        start M₀ = εI (and, with --informed, from M₀ = (1 − ε)I, so that both branches of a first-order
        transition show) until max|ΔM| < amp.tolerance. Writes se.csv (alpha, start, M_r_s…, q = tr M/k,
        mse = the Bayes-optimal test error E[(y − E[y|ω,V])²] including Δ, iterations, status) and
        report.json. Deterministic: every integral is a quadrature with a stated accuracy.

        Sample specification:

        \(EstimationProblem.sampleYAML)
        """)

    @OptionGroup var common: EstimationOptions

    @Option(name: .long, help: "α = n/d: one value, start:stop:step, or a comma-separated list. Default: training.alpha of the spec.")
    var alpha: String?

    @Flag(name: .long, help: "Also iterate from the informed start M₀ = (1 − ε)I.")
    var informed = false

    @Option(name: .long, help: "Override amp.iterations (the iteration budget per α).")
    var iterations: Int?

    func run() throws {
        var problem = try common.problem()
        if informed { problem.settings.informed = true }
        if let iterations {
            guard iterations >= 1 else { throw ValidationError("--iterations must be an integer ≥ 1 (got \(iterations))") }
            problem.settings.maxIterations = iterations
        }
        let alphas: [Double]
        if let alpha { alphas = try AlphaGrid.parse(alpha) } else if let a = problem.alpha { alphas = [a] } else {
            throw ValidationError("no α: give --alpha or training.alpha in the spec")
        }
        let started = Date()
        let se = try StateEvolution(problem: problem)
        let progress = Progress("se", parts: 1, enabled: !common.quiet)
        let runs = se.curve(alphas: alphas) { progress.update(part: 0, fraction: $0) }
        progress.done()
        let k = problem.k
        let names = Matrix.overlapNames(k: k)
        var csv = (["alpha", "start"] + names + ["q", "mse", "iterations", "status"]).joined(separator: ",") + "\n"
        var records: [[String: Any]] = []
        for run in runs.joined() {
            csv += ([Trajectory.format(run.alpha), run.start] + run.M.values.map { Trajectory.format($0) }
                    + [Trajectory.format(run.q), Trajectory.format(run.mse), "\(run.iterations)", run.status.rawValue])
                .joined(separator: ",") + "\n"
            var record: [String: Any] = ["alpha": run.alpha, "start": run.start, "M": run.M.nested, "q": run.q, "mse": run.mse,
                                         "iterations": run.iterations, "status": run.status.rawValue]
            for (name, v) in zip(names, run.M.values) { record[name] = v }
            records.append(record)
        }
        let writer = try common.writer(default: "se")
        try writer.write("se.csv", csv)
        let report: [String: Any] = [
            "spec": problem.specTree, "version": PlateauVersion.string, "points": records,
            "channel": channelRecord(se),
        ]
        // The wall time goes to stdout only: the files are the same bytes on a rerun.
        try writer.write("report.json", JSON.string(report))
        let seconds = Date().timeIntervalSince(started)
        switch common.format {
        case .json:
            print(JSON.string(["points": records, "channel": channelRecord(se), "wall_seconds": seconds]), terminator: "")
        case .table:
            print("state evolution: \(problem.target) (k = \(k), Δ = \(problem.noise)); \(channelDescription(se))")
            print(String(format: "%10@ %12@ %10@ %12@ %6@  %@", "alpha", "start", "q", "mse", "iter", "status"))
            for run in runs.joined() {
                print(String(format: "%10.4g %12@ %10.6f %12.6g %6d  %@", run.alpha, run.start, run.q, run.mse, run.iterations, run.status.rawValue))
            }
            print("wrote \(writer.path("se.csv")) and report.json (\(String(format: "%.2f", seconds)) s)")
        }
    }
}

/// What the channel integrals are, for reports.
func channelRecord(_ se: StateEvolution) -> [String: Any] {
    var r: [String: Any] = ["labels": se.channel.labelCount, "line_nodes": se.channel.nodeCount,
                            "sum_rule_error": se.channel.sumRuleError, "omega_nodes_min": se.omegaNodes]
    switch se.channel.alphabet {
    case let .discrete(v): r["output"] = "discrete"; r["values"] = v
    case let .binned(h): r["output"] = "continuous, binned"; r["bin_width"] = h
    }
    if se.problem.noise > 0 { r["mixture_noise"] = se.mixtureNoise }
    return r
}

func channelDescription(_ se: StateEvolution) -> String {
    switch se.channel.alphabet {
    case let .discrete(v): return "discrete output \(v.map { Trajectory.format($0) }) (exact sums)"
    case let .binned(h): return "continuous output resolved in bins of width \(h) (noiseless limit h → 0)"
    }
}
