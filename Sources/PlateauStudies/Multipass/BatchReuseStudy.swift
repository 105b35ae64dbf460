import Foundation
import PlateauCompare
import PlateauCore
import PlateauSimulation
import PlateauTheory

/// `plateau reproduce batch-reuse`: reusing the same batch for several GD steps against fresh samples
/// (Dandi, Troiani, Arnaboldi, Pesce, Zdeborová, Krzakala 2024, "The benefits of reusing batches for
/// gradient descent in two-layer networks"; `../shared/reference/dmft.md` §2). ReLU student with fixed
/// a = (1, −1)/√2 on y = tanh(z₁ + z₂³ − 3z₂), η = 0.2, λ = 0, from m(0) = 0, Q(0) = I: the overlap
/// of each student row with the target's first-order direction u = c/|c| (c_r = E[y z_r]) and with the
/// orthogonal direction u⊥ (the He₃-like one), for multi-pass GD on n = αd reused samples (DMFT lines,
/// simulation error bars, the PlateauCompare verdict), for fresh samples at every GD step (the same
/// per-step batch, no reuse), and for online SGD at the same sample budget: one pass over n = αd fresh
/// samples (t = α in the online time steps/d), batch 1, at several learning rates, with its d = ∞ ODE
/// (explicit Euler on the quadrature route) over its simulations.
public struct BatchReuseStudy: Reproduction {
    public init() {}
    public var name: String { "batch-reuse" }
    public var title: String { "Multi-pass GD with sample reuse vs fresh samples: DMFT and simulations along both target directions" }
    public var reproduces: String {
        "Dandi et al. 2024 (the benefits of reusing batches for gradient descent in two-layer networks), the ReLU / tanh(z1 + z2^3 − 3 z2) setting of shared/reference/dmft.md §2"
    }

    /// The target's first-order direction u = c/|c| (dmft.md §2: c = (0.357675, −0.298421)).
    static let firstOrder = { () -> [Double] in
        let c = [0.357675, -0.298421]
        let n = (c[0] * c[0] + c[1] * c[1]).squareRoot()
        return [c[0] / n, c[1] / n]
    }()

    /// The projections (row j, direction) of one curve's M at each time: (t, j, linear, he3).
    static func projections(_ curve: Trajectory) -> [[Double]] {
        let u = firstOrder, v = [-firstOrder[1], firstOrder[0]]
        return curve.times.indices.map { i in
            (1...2).flatMap { j -> [Double] in
                let m = (1...2).map { r in curve.values[i][curve.observables.firstIndex(of: "M_\(j)_\(r)")!] }
                return [m[0] * u[0] + m[1] * u[1], m[0] * v[0] + m[1] * v[1]]
            }
        }
    }

    /// The online-SGD experiment with the multi-pass one's teacher, student and start: batch 1, the
    /// square loss, `learningRate`, horizon t = α (one pass over n = αd samples), `intervals` + 1 record times.
    static func onlineExperiment(_ multipass: Experiment, alpha: Double, learningRate: Double, intervals: Int) -> Experiment {
        Experiment(teacher: multipass.teacher, student: multipass.student,
                   training: TrainingSpec(loss: multipass.training.loss, learningRate: learningRate, batchSize: 1, time: alpha),
                   initialization: multipass.initialization, output: OutputSpec(times: .linear(count: intervals)))
    }

    /// Online SGD at the same sample budget: the d = ∞ ODE (Euler, `eulerStep`) and the simulator at d.
    /// Returns the README rows (last time) and the `online.csv` rows.
    static func onlineControl(_ multipass: Experiment, alpha: Double, learningRate: Double, intervals: Int, eulerStep: Double,
                              dimension d: Int, seeds: Int, masterSeed: UInt64,
                              progress: @escaping @Sendable (Double) -> Void) throws -> ([[String]], [[any CSVCell]]) {
        let experiment = onlineExperiment(multipass, alpha: alpha, learningRate: learningRate, intervals: intervals)
        try experiment.validate()
        let times = (0...intervals).map { alpha * Double($0) / Double(intervals) }
        let theory = OnlineSGDTheory(experiment)
        let ode = theory.trajectory(from: theory.initialOverlaps, times: times,
                                    options: ODEOptions(method: .euler, eulerStep: eulerStep)).trajectory
        let runs = try OnlineSGDSimulator.run(experiment, options: SimulationOptions(dimension: d, times: times),
                                              masterSeed: masterSeed, count: seeds, progress: progress)
        let simulation = runs.map { $0.trajectory(risk: theory.risk) }
        var csv: [[any CSVCell]] = []
        var rows: [[String]] = []
        for (method, set) in [("online-ode", [ode]), ("online-simulation", simulation)] {
            let projected = set.map(projections)
            let ri = set[0].observables.firstIndex(of: "risk")!
            // Times every member reached (a diverged seed or a stopped ODE ends early).
            let reached = set.map(\.times.count).min()!
            for (i, t) in set[0].times.prefix(reached).enumerated() {
                let (risk, riskSE) = SampleStatistics.meanAndStandardError(set.map { $0.values[i][ri] })
                for (c, (j, direction)) in [(1, "linear"), (1, "he3"), (2, "linear"), (2, "he3")].enumerated() {
                    let (mean, se) = SampleStatistics.meanAndStandardError(projected.map { $0[i][c] })
                    csv.append([alpha, learningRate, method, t, t / alpha, j, direction, mean, set.count > 1 ? se : 0,
                                risk, set.count > 1 ? riskSE : 0])
                }
            }
            let last = reached - 1
            func cell(_ values: [Double]) -> String {
                let (mean, se) = SampleStatistics.meanAndStandardError(values)
                return set.count > 1 ? MarkdownTable.number(mean, 4) + " ± " + MarkdownTable.number(se, 2) : MarkdownTable.number(mean, 4)
            }
            // An ODE that stopped early (status, e.g. left the PSD cone at a divergent rate) is shown as such.
            let label = method == "online-ode" && ode.status != .completed
                ? "\(method) (stopped at t = \(MarkdownTable.number(set[0].times[last], 3)): \(ode.message))" : method
            rows.append([MarkdownTable.number(alpha, 3), MarkdownTable.number(learningRate, 3), label,
                         cell(set.map { $0.values[last][ri] }),
                         cell(projected.map { 0.5 * ($0[last][0] - $0[last][2]) }),
                         cell(projected.map { 0.5 * ($0[last][1] - $0[last][3]) })])
        }
        return (rows, csv)
    }

    public func run(_ settings: ReproductionSettings, progress: @escaping ReproductionProgress) throws -> ReproductionResult {
        try settings.validate()
        let start = Date()
        let quick = settings.quick
        let alphas: [Double] = quick ? [3] : [3, 5]
        let steps = quick ? 4 : 10
        let d = settings.dimensions?.first ?? (quick ? 200 : 1000)
        let seeds = settings.seeds ?? (quick ? 3 : 8)
        let particles = quick ? 32_000 : 1_000_000
        var result = ReproductionResult()
        var overlaps = CSVTable(columns: ["alpha", "method", "t", "row", "direction", "overlap", "se"])
        var curves = CSVTable(columns: ["alpha", "method", "t", "risk", "risk_se", "train_loss", "train_loss_se"])
        var online = CSVTable(columns: ["alpha", "learning_rate", "method", "t", "samples_fraction", "row", "direction",
                                        "overlap", "se", "risk", "risk_se"])
        let onlineRates: [Double] = quick ? [1] : [0.2, 0.5, 1, 2]
        let eulerStep = quick ? 0.05 : 0.01
        var verdicts: [[String]] = []
        var he3Rows: [[String]] = []
        var onlineRows: [[String]] = []
        for alpha in alphas {
            let a = 1 / 2.0.squareRoot()
            let target = try Formula(parsing: "tanh(z1 + z2^3 - 3*z2)", variables: .target(k: 2))
            let experiment = Experiment(
                teacher: TeacherSpec(link: target), student: StudentSpec(p: 2, activation: .relu, secondLayer: [a, -a]),
                training: TrainingSpec(multipass: MultipassSettings(alpha: alpha, steps: steps, particles: particles), learningRate: 0.2),
                initialization: .orthogonal(Q: .identity(2)))
            result.addSpec("multipass-alpha\(MarkdownTable.number(alpha, 3))", experiment,
                           comment: "Multi-pass GD on n = αd reused samples (plateau dmft / simulate / compare --spec FILE)")
            progress("DMFT α = \(alpha)", 0)
            let comparison = try MultipassComparison.run(
                experiment, dimension: d, seeds: seeds, masterSeed: settings.masterSeed,
                dmft: DMFTOptions(seed: settings.masterSeed)) { progress("multi-pass GD α = \(alpha), d = \(d)", $0) }
            var fresh = experiment
            fresh.training.multipass!.freshSamples = true
            result.addSpec("fresh-alpha\(MarkdownTable.number(alpha, 3))", fresh,
                           comment: "The online control: n = αd fresh samples at every step (plateau simulate --spec FILE)")
            let freshRuns = try MultipassGDSimulator.run(fresh, dimension: d, masterSeed: settings.masterSeed, count: seeds) {
                progress("fresh samples α = \(alpha), d = \(d)", $0)
            }
            let scorer = OnlineSGDTheory(experiment)
            let freshCurves = freshRuns.map { $0.trajectory(risk: scorer.risk) }
            let sets: [(String, [Trajectory])] = [
                ("dmft", comparison.theory.replicaCurves), ("multipass-simulation", comparison.simulation),
                ("fresh-simulation", freshCurves),
            ]
            for (method, set) in sets {
                let projected = set.map(Self.projections)
                let summary = method == "dmft" ? (mean: comparison.theory.mean, standardError: comparison.theory.standardError)
                    : { let s = SampleStatistics.summary(set); return (mean: s.mean, standardError: s.standardError) }()
                let times = set[0].times
                for (i, t) in times.enumerated() {
                    for (c, (j, direction)) in [(1, "linear"), (1, "he3"), (2, "linear"), (2, "he3")].enumerated() {
                        let (mean, se) = SampleStatistics.meanAndStandardError(projected.map { $0[i][c] })
                        overlaps.append([alpha, method, t, j, direction, mean, se])
                    }
                    let ri = summary.mean.observables.firstIndex(of: "risk")!, li = summary.mean.observables.firstIndex(of: "train_loss")!
                    curves.append([alpha, method, t, summary.mean.values[i][ri], summary.standardError.values[i][ri],
                                   summary.mean.values[i][li], summary.standardError.values[i][li]])
                }
                let last = times.count - 1
                let (he3, he3SE) = SampleStatistics.meanAndStandardError(projected.map { 0.5 * ($0[last][1] - $0[last][3]) })
                he3Rows.append([MarkdownTable.number(alpha, 3), method, "\(Int(times[last]))",
                                MarkdownTable.number(he3, 4) + " ± " + MarkdownTable.number(he3SE, 2)])
            }
            for rate in onlineRates {
                let (rows, csvRows) = try Self.onlineControl(
                    experiment, alpha: alpha, learningRate: rate, intervals: steps, eulerStep: eulerStep, dimension: d,
                    seeds: seeds, masterSeed: settings.masterSeed) { progress("online SGD α = \(alpha), η = \(rate), d = \(d)", $0) }
                onlineRows += rows
                for row in csvRows { online.append(row) }
                if rate == onlineRates[0] {
                    result.addSpec("online-alpha\(MarkdownTable.number(alpha, 3))", Self.onlineExperiment(experiment, alpha: alpha, learningRate: rate, intervals: steps),
                                   comment: "Online SGD at the same sample budget: one pass over n = αd fresh samples, batch 1 (plateau ode / simulate --spec FILE; set training.learningRate)")
                }
            }
            let report = comparison.report
            verdicts.append([MarkdownTable.number(alpha, 3), "\(d)", "\(seeds)", "\(comparison.theory.particles)", report.verdict,
                             MarkdownTable.number(report.worstThresholdRatio, 3)])
        }
        let seconds = Date().timeIntervalSince(start)
        result.add("overlaps.csv", overlaps)
        result.add("curves.csv", curves)
        result.add("online.csv", online)
        let onlineTable = MarkdownTable.render(
            ["α", "η (online)", "method", "risk after n = αd samples", "overlap with u ½(m₁·u − m₂·u)", "He₃-direction overlap"], onlineRows)
        let verdictTable = MarkdownTable.render(["α", "d", "seeds", "DMFT particles", "DMFT vs simulation", "worst |dev|/threshold"], verdicts)
        let he3Table = MarkdownTable.render(["α", "method", "t", "He₃-direction overlap ½(m₁·u⊥ − m₂·u⊥)"], he3Rows)
        result.summary = "batch reuse (η = 0.2, T = \(steps)):\n" + verdictTable + "\n\n" + he3Table + "\n\n" + onlineTable + "\n"
            + String(format: "wall time %.1f s\n", seconds)
        result.add("README.md", """
            # Batch reuse: multi-pass GD vs fresh samples (DMFT and simulations)

            Reproduces \(reproduces).

            Setting: ReLU student f = Σ_j a_j relu(ĥ_j), a = (1, −1)/√2 fixed, target y = tanh(z₁ + z₂³ − 3z₂) \
            (no noise), full-batch GD on the summed square loss, η = 0.2, λ = 0, T = \(steps) steps, student rows \
            orthogonal to the teacher span (m(0) = 0, Q(0) = I exactly at finite d). Directions: u = c/|c| with \
            c = (E[y z₁], E[y z₂]) = (0.357675, −0.298421) (the first-order direction, learned by any method) and \
            u⊥ = (0.6407, 0.7678) (the He₃-like direction that needs sample reuse).

            Methods: `dmft` — the DMFT of EQUATIONS.md §3, \(particles) particles in 16 replicas (standard errors \
            from the replicas); `multipass-simulation` — finite-d GD on n = αd reused samples at d = \(d), \(seeds) \
            seeds; `fresh-simulation` — n = αd fresh samples at every GD step (same per-step batch, no reuse; \
            T times the sample budget). The online control at the same sample budget is in `online.csv`: online \
            SGD (batch 1, the online protocol of EQUATIONS.md §1, square loss) over one pass of n = αd fresh \
            samples, i.e. online time t = α, at η ∈ {\(onlineRates.map { MarkdownTable.number($0, 3) }.joined(separator: ", "))}: \
            `online-ode` is its d = ∞ ODE (explicit Euler, step \(eulerStep), quadrature route), `online-simulation` \
            the simulator at d = \(d), \(seeds) seeds. At small overlaps one pass of online SGD at rate η moves m as \
            far as one GD step at η, so the rates span one to ten GD steps' worth.

            ## DMFT against the simulator (PlateauCompare: z·√(SE²_sim + SE²_DMFT) + b/d, b = 0.5)

            \(verdictTable)

            ## Overlap along the He₃-like direction at the last step (`overlaps.csv`)

            \(he3Table)

            ## Online SGD at the same sample budget (`online.csv`, last point t = α)

            \(onlineTable)

            Written by `plateau reproduce batch-reuse\(quick ? " --quick" : "")` (Plateau \(PlateauVersion.string)); the wall \
            time goes to stdout only, so that a rerun writes the same bytes. `plot.ipynb` draws the overlaps and risks from \
            `overlaps.csv`, `curves.csv` and `online.csv`.

            ![overlaps and risks](overlaps.png)
            """ + "\n")
        result.add("plot.ipynb", Notebook([
            .markdown("# Batch reuse: overlaps along both target directions\nReads `overlaps.csv` and `curves.csv` written by `plateau reproduce batch-reuse`: DMFT lines, simulation error bars."),
            .code("""
                import pandas as pd
                import matplotlib.pyplot as plt
                ov = pd.read_csv("overlaps.csv")
                cu = pd.read_csv("curves.csv")
                on = pd.read_csv("online.csv")
                """),
            .code("""
                alphas = sorted(ov["alpha"].unique())
                fig, axes = plt.subplots(len(alphas), 4, figsize=(17, 3.6 * len(alphas)), squeeze=False)
                for row, alpha in zip(axes, alphas):
                    for ax, direction in zip(row[:2], ["linear", "he3"]):
                        for method, style in [("dmft", "-"), ("multipass-simulation", "o"), ("fresh-simulation", "s")]:
                            for j in [1, 2]:
                                sel = ov[(ov.alpha == alpha) & (ov.method == method) & (ov.direction == direction) & (ov.row == j)]
                                if method == "dmft":
                                    ax.plot(sel.t, sel.overlap, style, label=f"{method}, row {j}")
                                else:
                                    ax.errorbar(sel.t, sel.overlap, yerr=sel.se, fmt=style, ms=4, capsize=2, label=f"{method}, row {j}")
                        ax.set_title(f"α = {alpha}: overlap with {'u (first order)' if direction == 'linear' else 'u⊥ (He3-like)'}")
                        ax.set_xlabel("GD step t"); ax.legend(fontsize=7)
                    ax = row[2]
                    for method, style in [("dmft", "-"), ("multipass-simulation", "o"), ("fresh-simulation", "s")]:
                        sel = cu[(cu.alpha == alpha) & (cu.method == method)]
                        ax.errorbar(sel.t, sel.risk, yerr=sel.risk_se, fmt=style, ms=4, capsize=2, label=f"{method} test risk")
                    ax.set_xlabel("GD step t"); ax.set_title(f"α = {alpha}: test risk"); ax.legend(fontsize=7)
                    ax = row[3]
                    for rate, color in zip(sorted(on.learning_rate.unique()), ["C0", "C1", "C2", "C3", "C4"]):
                        for direction, dash in [("linear", "-"), ("he3", "--")]:
                            for method in ["online-ode", "online-simulation"]:
                                sel = on[(on.alpha == alpha) & (on.learning_rate == rate) & (on.method == method) & (on.direction == direction)]
                                r1, r2 = sel[sel.row == 1], sel[sel.row == 2]
                                y = 0.5 * (r1.overlap.values - r2.overlap.values)
                                if method == "online-ode":
                                    ax.plot(r1.samples_fraction, y, dash, color=color, label=f"η = {rate}, {'u' if direction == 'linear' else 'u⊥'} (ODE)")
                                else:
                                    ax.errorbar(r1.samples_fraction, y, yerr=0.5 * (r1.se.values ** 2 + r2.se.values ** 2) ** 0.5, fmt="o", ms=3, color=color, capsize=2)
                    ax.set_xlabel("fraction of the n = αd samples seen"); ax.set_title(f"α = {alpha}: online SGD, same budget, ½(m₁ − m₂)·u"); ax.legend(fontsize=6)
                fig.tight_layout()
                fig.savefig("overlaps.png", dpi=120)
                """),
        ]).json)
        return result
    }
}
