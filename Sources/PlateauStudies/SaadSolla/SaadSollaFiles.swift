import Foundation
import PlateauCompare
import PlateauCore
import PlateauSimulation

/// The files of the `saad-solla` reproduction: CSVs, specs, notebook, README and the stdout summary.
extension SaadSollaPlateaus {
    /// The reference numbers of `shared/reference/online-sgd.md` §1.
    public enum Reference {
        /// K = M = 2, η = 0.5: least risk over t ∈ [100, 500] from an ε = 1e-9 start.
        public static let plateauRisk = 0.014652
        /// K = M = 4, η = 0.5: risk at t = 1000 (still on the plateau).
        public static let committee4RiskAt1000 = 0.0573
    }

    static func label(_ x: Double) -> String { String(format: "%g", x) }
    static func set(_ xs: [Double]) -> String { "{" + xs.map(label).joined(separator: ", ") + "}" }
    static func set(_ xs: [Int]) -> String { "{" + xs.map(String.init).joined(separator: ", ") + "}" }

    static func files(config: Configuration, curves: [PlateauCurve], sweep: [PlateauCurve], fits: [ScalingFit],
                      comparisons: [SimulationComparison], seconds: Double) -> ReproductionResult {
        var result = ReproductionResult()
        let fmt = { (x: Double) in MarkdownTable.number(x) }

        // plateaus.csv: one row per (K, η).
        var plateaus = CSVTable(columns: [
            "K", "eta", "epsilon", "plateau_risk", "plateau_R", "plateau_Q", "plateau_C", "fixed_point_residual",
            "flattest_risk", "flattest_time", "unstable_rate", "escape_time", "eta_times_escape_time",
            "time_risk_below_1e-3", "window_min_risk", "window_R", "window_Q", "window_C", "horizon", "status", "message",
        ])
        for c in curves {
            let p = c.plateau
            plateaus.append([c.K, c.learningRate, c.epsilon, p?.risk ?? .nan, p?.R ?? .nan, p?.Q ?? .nan, p?.C ?? .nan,
                             p?.residual ?? .nan, c.flattestRisk, c.flattestTime, p?.unstableRate ?? .nan, c.escapeTime,
                             c.learningRate * c.escapeTime, c.lowRiskTime, c.windowRisk, c.windowOverlaps[0], c.windowOverlaps[1],
                             c.windowOverlaps[2], c.times.last ?? 0, c.status.rawValue, c.message])
        }
        result.add("plateaus.csv", plateaus)

        // theory_curves.csv: the risk curves (at most ~400 rows each).
        var curveTable = CSVTable(columns: ["K", "eta", "t", "risk", "asymmetry"])
        for c in curves {
            let stride = max(1, c.times.count / 400)
            for i in Swift.stride(from: 0, to: c.times.count, by: stride) {
                curveTable.append([c.K, c.learningRate, c.times[i], c.risks[i], c.asymmetry[i]])
            }
        }
        result.add("theory_curves.csv", curveTable)

        var sweepTable = CSVTable(columns: ["K", "eta", "epsilon", "log_inverse_epsilon", "escape_time", "time_risk_below_1e-3"])
        for c in sweep { sweepTable.append([c.K, c.learningRate, c.epsilon, -Foundation.log(c.epsilon), c.escapeTime, c.lowRiskTime]) }
        result.add("epsilon_sweep.csv", sweepTable)

        var fitTable = CSVTable(columns: ["K", "fit", "x", "y", "slope", "slope_se", "intercept", "expected_slope", "expectation", "points"])
        for f in fits {
            fitTable.append([f.K, f.name, f.x, f.y, f.slope, f.slopeStandardError, f.intercept, f.expectedSlope, f.expectation, f.points])
        }
        result.add("scaling_fits.csv", fitTable)

        // Finite d.
        var riskTable = CSVTable(columns: ["K", "d", "t", "theory_mean", "simulation_mean", "simulation_se"])
        var seedTable = CSVTable(columns: ["K", "d", "seed", "t", "risk_simulation", "risk_theory"])
        var escapeTable = CSVTable(columns: ["K", "d", "seed", "escape_simulation", "escape_theory"])
        var agreementTable = CSVTable(columns: [
            "K", "d", "eta", "seeds", "horizon", "comparisons", "agreeing", "agrees_everywhere", "max_standard_errors",
            "worst_threshold_ratio", "rms_deviation", "escape_difference_mean", "escape_difference_se", "escape_difference_sd",
            "escaped_seeds", "verdict",
        ])
        for c in comparisons {
            let run = c.run, d = run.dimension
            let sim = SeedStatistics.summary(run.simulation), th = SeedStatistics.summary(run.theory)
            let col = sim.mean.observables.firstIndex(of: "risk")!
            for i in sim.mean.times.indices where i < th.mean.times.count {
                riskTable.append([c.K, d, sim.mean.times[i], th.mean.values[i][col], sim.mean.values[i][col], sim.standardError.values[i][col]])
            }
            for (s, (simCurve, thCurve)) in zip(run.seeds, zip(run.simulation, run.theory)) {
                let rs = simCurve.column("risk")!, rt = thCurve.column("risk")!
                for i in simCurve.times.indices where i < rt.count { seedTable.append([c.K, d, s.seed, simCurve.times[i], rs[i], rt[i]]) }
            }
            for (i, s) in run.seeds.enumerated() { escapeTable.append([c.K, d, s.seed, c.simulationEscape[i], c.theoryEscape[i]]) }
            let r = run.report, e = c.escapeDifference
            agreementTable.append([c.K, d, run.experiment.training.learningRate, r.seeds, run.experiment.training.time,
                                   r.comparisons.count, r.comparisons.filter(\.agrees).count, r.agreesEverywhere,
                                   r.maximumStandardErrors, r.worstThresholdRatio, r.rmsDeviation, e.mean, e.standardError,
                                   e.standardDeviation, e.seeds, r.verdict])
        }
        result.add("simulation_risk.csv", riskTable)
        result.add("simulation_seeds.csv", seedTable)
        result.add("escape_times.csv", escapeTable)
        result.add("agreement.csv", agreementTable)

        // Specs of every experiment used.
        for c in curves {
            result.addSpec("theory-K\(c.K)-eta\(label(c.learningRate))", c.experiment, comment: """
                saad-solla: d = ∞ ODE (rk8pd, rtol 1e-10, atol 1e-12) from the tiny-overlap start, K = M = \(c.K), η = \(label(c.learningRate)), ε = \(label(c.epsilon)).
                Horizon and grid as integrated (chunks until t ≥ 1.5 × the escape time). Reproduce the curve: plateau ode --spec THIS_FILE --rtol 1e-10 --atol 1e-12
                """)
        }
        for c in sweep {
            result.addSpec("epsilon-K\(c.K)-eta\(label(c.learningRate))-eps\(label(c.epsilon))", c.experiment, comment: """
                saad-solla: ε sweep of the escape time, K = M = \(c.K), η = \(label(c.learningRate)), ε = \(label(c.epsilon)) (the same normal draws as every ε).
                """)
        }
        var simulated = Set<Int>()
        for c in comparisons where simulated.insert(c.K).inserted {
            result.addSpec("simulation-K\(c.K)-eta\(label(c.run.experiment.training.learningRate))", c.run.experiment, comment: """
                saad-solla: finite-d online SGD from random weights (each seed its own teacher and student), K = M = \(c.K).
                Run at d ∈ \(set(config.dimensions)) with \(config.seeds) seeds: plateau compare --spec THIS_FILE --dimension D --seeds \(config.seeds)
                (the reproduction derives each (K, d) master seed from --seed \(config.masterSeed); compare's agreement verdict uses the default ODE tolerances).
                """)
        }

        // Tables shared by README and stdout.
        let plateauRows = curves.map { c -> [String] in
            let p = c.plateau
            return ["\(c.K)", label(c.learningRate), p.map { String(format: "%.6f", $0.risk) } ?? "—",
                    c.flattestRisk.isFinite ? String(format: "%.6f", c.flattestRisk) : "—",
                    p.map { String(format: "%.4f / %.4f / %.4f", $0.R, $0.Q, $0.C) } ?? "—",
                    fmt(p?.unstableRate ?? .nan), c.escapeTime.isFinite ? String(format: "%.1f", c.escapeTime) : "not escaped",
                    fmt(c.learningRate * c.escapeTime), c.lowRiskTime.isFinite ? String(format: "%.1f", c.lowRiskTime) : "—"]
        }
        let plateauTable = MarkdownTable.render(
            ["K", "η", "plateau risk (fixed point)", "flattest-point risk", "R / Q / C", "λ", "t_esc", "η·t_esc", "t(risk < 1e-3)"], plateauRows)
        let fitRows = fits.map { f in
            [f.name, "\(f.K)", f.y + " vs " + f.x, String(format: "%.4g", f.slope) + (f.slopeStandardError.isFinite ? String(format: " ± %.2g", f.slopeStandardError) : " (2 points)"),
             fmt(f.intercept), fmt(f.expectedSlope) + " (" + f.expectation + ")", "\(f.points)"]
        }
        let fitTableText = MarkdownTable.render(["fit", "K", "line", "slope ± SE", "intercept", "expected slope", "points"], fitRows)
        let rateText = config.simulatedCommittees.compactMap { K in
            curves.first { $0.K == K && $0.learningRate == referenceLearningRate }?.plateau.map { String(format: "%.0f for K = %d", 1 / $0.unstableRate, K) }
        }.joined(separator: ", ")
        let simRows = comparisons.map { c -> [String] in
            let r = c.run.report, e = c.escapeDifference
            let escapeSim = SeedStatistics.meanAndStandardError(c.simulationEscape.filter(\.isFinite))
            let escapeTheory = SeedStatistics.meanAndStandardError(c.theoryEscape.filter(\.isFinite))
            return ["\(c.K)", "\(c.run.dimension)", "\(r.seeds)", label(c.run.experiment.training.time), r.verdict,
                    String(format: "%.2f", r.maximumStandardErrors), String(format: "%.2f", r.worstThresholdRatio),
                    String(format: "%.1f ± %.1f", escapeSim.mean, escapeSim.standardError),
                    String(format: "%.1f ± %.1f", escapeTheory.mean, escapeTheory.standardError),
                    String(format: "%+.1f ± %.1f", e.mean, e.standardError), String(format: "%.1f (%d seeds)", e.standardDeviation, e.seeds)]
        }
        let simTable = MarkdownTable.render(
            ["K", "d", "seeds", "horizon", "verdict (risk, M, Q, a at every time)", "max |dev|/SE", "max |dev|/threshold",
             "t_esc simulation", "t_esc theory", "simulation − theory", "per-seed SD"], simRows)

        // Reference checks.
        var checks: [String] = []
        if let c = curves.first(where: { $0.K == 2 && $0.learningRate == referenceLearningRate }), let p = c.plateau {
            let w = c.windowOverlaps
            checks.append(String(format: "K = M = 2, η = 0.5, the reference's measure (least risk over t ∈ [100, 500] of the ε = %@ curve): %.7f against 0.014652 (difference %+.1e), with R = %.4f, Q = %.4f, C = %.4f there against ≈ 0.416, 0.375, 0.321.",
                                 label(c.epsilon), c.windowRisk, c.windowRisk - Reference.plateauRisk, w[0], w[1], w[2]))
            checks.append(String(format: "K = M = 2, η = 0.5, plateau height (symmetric fixed point): %.7f, %.1e below the reference; R = %.4f, Q = %.4f, C = %.4f. The curve is still relaxing towards the fixed point along a slow stable direction at t = 500 (it falls by %.1e between t = 400 and 500, and reaches its flattest point, risk %.7f, at t = %.0f before the escape takes over), so the reference's trajectory value lies above the fixed point.",
                                 p.risk, Reference.plateauRisk - p.risk, p.R, p.Q, p.C, c.risk(at: 400) - c.risk(at: 500), c.flattestRisk, c.flattestTime))
            checks.append(String(format: "K = M = 2, η = 0.5: risk < 1e-3 first at t = %.1f from our ε = %@ start (reference: 758–759 from nn2pp's seed-0 draws, which also perturb the second layer by ε; the time depends on the draw through the log of its symmetry-breaking part, with slope 1/λ = %.1f per e-fold).",
                                 c.lowRiskTime, label(c.epsilon), 1 / p.unstableRate))
        }
        if let c = curves.first(where: { $0.K == 4 && $0.learningRate == referenceLearningRate }) {
            checks.append(String(format: "K = M = 4, η = 0.5: risk %.4f at t = 1000 (reference: still on the plateau at t = 1000 with risk %.4f); escape at t = %.1f.",
                                 c.risk(at: 1000), Reference.committee4RiskAt1000, c.escapeTime))
        }

        var fastest: [String] = [], interior = false
        for K in config.committees {
            let escaped = curves.filter { $0.K == K && $0.escapeTime.isFinite }
            guard let best = escaped.min(by: { $0.escapeTime < $1.escapeTime }) else { continue }
            let atEdge = best.learningRate == escaped.map(\.learningRate).max()
            interior = interior || !atEdge
            fastest.append(String(format: "K = %d: %.1f at η = %@", K, best.escapeTime, label(best.learningRate))
                           + (atEdge ? " (the largest η run)" : " (slower again above)"))
        }
        var fastestText = "Shortest escape over the η run: " + fastest.joined(separator: "; ") + "."
        if interior {
            fastestText += " Above the fastest η the η² term of dQ/dt raises the plateau (Q grows) and weakens the instability (λ falls), so the escape slows down again."
        }

        let settingsText = """
            - Problem: student f = Σ_j erf(λ_j/√2), teacher g = Σ_r erf(ν_r/√2), K = M, a = 1 (fixed), P = I, noiseless, \
            square loss, online SGD with n_b = 1; time t = steps/d; risk ½E[(g − f)²] (EQUATIONS.md §1).
            - K = M ∈ \(set(config.committees)), η ∈ \(set(config.learningRates)).
            - Theory: the d = ∞ ODE, GSL rk8pd with rtol 1e-10, atol 1e-12, from the tiny-overlap start of \
            shared/reference/online-sgd.md §1: M = ε·N, Q = I + ε·(G + Gᵀ)/2 with N, G standard normal K×K \
            matrices (xoshiro256++ seeded by SeedSequence(master \(config.masterSeed), index K); the same draws for every ε and η), \
            ε = \(label(config.epsilon)).
            - Plateau height: the risk at the symmetric fixed point (all M_jr = R, Q_jj = Q, Q_jl = C), solved by \
            Newton's method in (R, Q, C) to |residual| < 1e-13 from the flattest symmetric point of the curve \
            (least |dR/dt| while every overlap group is symmetric to 1e-3); that point's own risk is listed as a check.
            - Escape time t_esc: the first t with risk < \(label(escapeFraction)) × plateau height, located by \
            re-integrating the bracketing grid interval on 100 sub-steps. λ: the largest real part of the \
            eigenvalues of the full ODE's Jacobian at the fixed point (power iteration on exp(Jτ)).
            - ε sweep (η = \(label(referenceLearningRate))): ε ∈ \(set(config.epsilonSweep)); fit t_esc = A + B ln(1/ε) \
            (expected B = 1/λ). Small-η fit: ln t_esc and ln λ against ln η over η ≤ \(label(smallLearningRates)).
            - Finite d: K = M ∈ \(set(config.simulatedCommittees)), η = \(label(referenceLearningRate)), random initial weights \
            (i.i.d. N(0, 1), each seed its own teacher), d ∈ \(set(config.dimensions)), \(config.seeds) seeds, master seed \(config.masterSeed); \
            horizon twice the escape time predicted for an initial asymmetry 1/√d (A + B ln √d), 201 equally spaced \
            record times; each seed's theory starts from its realised overlaps (ComparisonRun, same ODE tolerances). \
            Verdict: |mean deviation| ≤ z·SE + b/d + atol at every time for risk, M, Q and a (z: Bonferroni Student-t, \
            family-wise α = 0.01; b = 0.5).
            \(config.quick ? "- QUICK RUN (--quick): tiny sizes for tests; the numbers are not the study's.\n" : "")
            """

        var summary = "\(SaadSollaPlateaus().title)\n\n"
        summary += "Plateau height and escape time (d = ∞, ε = \(label(config.epsilon)) start; t_esc: risk < \(label(escapeFraction)) × plateau)\n"
        summary += plateauTable + "\n" + fastestText + "\n\nEscape-time scaling fits\n" + fitTableText + "\n\n"
        summary += "Reference checks (shared/reference/online-sgd.md §1)\n" + checks.map { "- " + $0 }.joined(separator: "\n") + "\n"
        if !comparisons.isEmpty {
            summary += "\nFinite d against theory (each seed's theory from its realised start)\n" + simTable + "\n"
        }
        summary += String(format: "\nwall time %.1f s\n", seconds)
        result.summary = summary

        let readme = """
            # Saad & Solla plateaus of the soft committee machine

            Written by `plateau reproduce saad-solla\(config.quick ? " --quick" : "")` (Plateau \(PlateauVersion.string)); the wall time goes to stdout only, so that a rerun (or a resumed run) writes the same bytes. Plot with `plot.ipynb` \
            (Python, pandas, matplotlib; run it from this folder).

            ## What is reproduced

            \(SaadSollaPlateaus().reproduces)

            ## Settings

            \(settingsText)
            ## Plateau height and escape time (d = ∞)

            \(plateauTable)

            R / Q / C are the plateau overlaps (every M_jr, Q_jj, Q_jl with j ≠ l); "not escaped" means the \
            curve was still on the plateau when the integration stopped (see `plateaus.csv`, columns status and message).

            \(fastestText)

            ## Escape-time scaling

            \(fitTableText)

            The escape time grows like ln(1/ε)/λ: the slope B of t_esc against ln(1/ε) is compared with 1/λ from the \
            linearisation at the fixed point; B approaches 1/λ only as ε → 0 (compare the fit over all ε with the \
            fit over the smaller half). λ ∝ η at small η, so t_esc ∝ 1/η there: the log–log fits over η ≤ \
            \(label(smallLearningRates)) give the exponents (at finite η the η² term of dQ/dt bends both). The points \
            are deterministic, so the slopes' standard errors measure the curvature of the data, not noise.

            ## Reference checks

            \(checks.map { "- " + $0 }.joined(separator: "\n"))

            ## Finite d against theory

            \(comparisons.isEmpty ? "(no simulations in this run)" : simTable)

            "max |dev|/SE" is the largest |mean deviation| over seeds in units of its standard error over all \
            (time, observable) comparisons; "max |dev|/threshold" ≤ 1 means every comparison agrees. Escape \
            times are read from the 201-point record grid (linear interpolation) at risk < \(label(escapeFraction)) × plateau height \
            (mean ± SE over seeds; "per-seed SD" is the spread of each seed's simulation − theory difference).

            The verdict is on means over seeds. A single seed's escape is not predicted exactly by the theory \
            started from that seed's overlaps: random initial weights break the symmetry by O(1/√d), and the SGD \
            noise on the way into and along the plateau adds a symmetry-breaking part of the same order \
            (η√(t/d) in M), so each seed's escape time differs from its theory's by an amount of order \
            1/λ = \(rateText) (column per-seed SD); the means are compared in the column simulation − theory.

            ## Files

            | file | what |
            |---|---|
            | `plateaus.csv` | per (K, η): plateau risk and overlaps, residual, flattest-point risk, λ, escape time, η·t_esc, t(risk < 1e-3), the reference's window measure (least risk over t ∈ [100, 500] and R, Q, C there), horizon, status |
            | `theory_curves.csv` | the d = ∞ risk curves (K, eta, t, risk, asymmetry = largest spread of the symmetric overlap groups) |
            | `epsilon_sweep.csv` | escape time against ε at η = \(label(referenceLearningRate)) |
            | `scaling_fits.csv` | the least-squares lines above |
            | `simulation_risk.csv` | per (K, d, t): theory mean, simulation mean and standard error of the risk |
            | `simulation_seeds.csv` | per seed: simulated risk and the risk of that seed's theory curve |
            | `escape_times.csv` | per seed: escape time of the simulation and of its theory |
            | `agreement.csv` | per (K, d): the agreement verdict and the numbers above |
            | `specs/*.yaml` | the specification of every experiment used (readable by `plateau ode/compare --spec`) |
            | `plot.ipynb` | the figures |

            ## Figures

            Written by `plot.ipynb` beside the CSVs (`make figures` runs every study's notebook):

            ![figure 1](saad-solla-1.png) ![figure 2](saad-solla-2.png) ![figure 3](saad-solla-3.png)

            """
        result.add("README.md", readme)
        result.add("plot.ipynb", notebook.json)
        return result
    }

    /// The figures, drawn from the CSVs.
    static var notebook: Notebook {
        Notebook([
            .markdown("""
                # Saad & Solla plateaus of the soft committee machine

                Figures from the CSV files written by `plateau reproduce saad-solla` (see `README.md` for the \
                settings and definitions). Run from this folder.
                """),
            .code("""
                import numpy as np
                import pandas as pd
                import matplotlib.pyplot as plt

                plateaus = pd.read_csv("plateaus.csv")
                curves = pd.read_csv("theory_curves.csv")
                sweep = pd.read_csv("epsilon_sweep.csv")
                fits = pd.read_csv("scaling_fits.csv")
                sim = pd.read_csv("simulation_risk.csv")
                escapes = pd.read_csv("escape_times.csv")
                agreement = pd.read_csv("agreement.csv")
                Ks = sorted(plateaus.K.unique())
                plateaus
                """),
            .markdown("## Risk curves through the plateau (d = ∞, tiny-overlap start)\n\nDotted: the plateau height (symmetric fixed point) of each η."),
            .code("""
                fig, axes = plt.subplots(1, len(Ks), figsize=(5 * len(Ks), 4), squeeze=False, sharey=True)
                for ax, K in zip(axes[0], Ks):
                    for eta, g in curves[curves.K == K].groupby("eta"):
                        line, = ax.plot(g.t[g.t > 0], g.risk[g.t > 0], label=f"η = {eta:g}")
                        row = plateaus[(plateaus.K == K) & (plateaus.eta == eta)]
                        if len(row) and np.isfinite(row.plateau_risk.iloc[0]):
                            ax.axhline(row.plateau_risk.iloc[0], color=line.get_color(), ls=":", lw=0.8)
                    ax.set_xscale("log"); ax.set_yscale("log"); ax.set_ylim(1e-4, 1)
                    ax.set_xlabel("t = steps / d"); ax.set_title(f"K = M = {K}")
                axes[0][0].set_ylabel("risk ½E[(g − f)²]")
                axes[0][-1].legend(fontsize=8)
                plt.tight_layout(); plt.savefig("saad-solla-1.png", dpi=120); plt.show()
                """),
            .markdown("## Plateau height and escape time against η and K"),
            .code("""
                fig, (a, b, c) = plt.subplots(1, 3, figsize=(15, 4))
                for K in Ks:
                    p = plateaus[plateaus.K == K].sort_values("eta")
                    line, = a.plot(p.eta, p.plateau_risk, "o-", label=f"K = {K}: fixed point")
                    a.plot(p.eta, p.flattest_risk, "x", color=line.get_color(), label=f"K = {K}: flattest point")
                    b.loglog(p.eta, p.escape_time, "o-", color=line.get_color(), label=f"K = {K}")
                    s = sweep[sweep.K == K]
                    c.plot(s.log_inverse_epsilon, s.escape_time, "o", color=line.get_color(), label=f"K = {K}")
                    f = fits[(fits.K == K) & (fits.fit == "escape vs ln(1/ε)")]
                    if len(f):
                        x = np.linspace(0, s.log_inverse_epsilon.max() * 1.05, 50)
                        c.plot(x, f.intercept.iloc[0] + f.slope.iloc[0] * x, "-", color=line.get_color(), lw=0.8)
                        c.plot(x, f.intercept.iloc[0] + f.expected_slope.iloc[0] * x, ":", color=line.get_color(), lw=0.8)
                a.plot([0.5], [0.014652], "k*", ms=12, label="reference K = 2, η = 0.5")
                a.set_xlabel("η"); a.set_ylabel("plateau risk"); a.legend(fontsize=7)
                eta = np.array(sorted(plateaus.eta.unique()))
                ref = plateaus[(plateaus.K == Ks[0]) & (plateaus.eta == eta[0])].escape_time.iloc[0]
                b.loglog(eta, ref * eta[0] / eta, "k:", label="∝ 1/η")
                b.set_xlabel("η"); b.set_ylabel("escape time"); b.legend(fontsize=7)
                c.set_xlabel("ln(1/ε)"); c.set_ylabel("escape time (η = 0.5)")
                c.set_title("solid: fit, dotted: slope 1/λ", fontsize=9); c.legend(fontsize=7)
                plt.tight_layout(); plt.savefig("saad-solla-2.png", dpi=120); plt.show()
                fits
                """),
            .markdown("## Finite d: simulation (mean ± SE over seeds) against theory from each seed's realised start"),
            .code("""
                groups = list(sim.groupby(["K", "d"]))
                if groups:
                    fig, axes = plt.subplots(2, len(groups), figsize=(5 * len(groups), 8), squeeze=False)
                    for i, ((K, d), g) in enumerate(groups):
                        ax = axes[0][i]
                        ax.errorbar(g.t, g.simulation_mean, yerr=g.simulation_se, fmt="o", ms=2, alpha=0.5, label="simulation (mean ± SE)")
                        ax.plot(g.t, g.theory_mean, "r-", lw=1, zorder=3, label="theory (mean over seeds)")
                        height = plateaus[(plateaus.K == K) & (plateaus.eta == 0.5)].plateau_risk
                        if len(height):
                            ax.axhline(height.iloc[0], ls=":", color="gray", label="plateau height")
                        ax.set_yscale("log"); ax.set_xlabel("t"); ax.set_ylabel("risk")
                        row = agreement[(agreement.K == K) & (agreement.d == d)].iloc[0]
                        ax.set_title(f"K = {K}, d = {d}: {row.verdict}", fontsize=8); ax.legend(fontsize=7)
                        e = escapes[(escapes.K == K) & (escapes.d == d)]
                        ax = axes[1][i]
                        ax.plot(e.escape_theory, e.escape_simulation, "o")
                        lo, hi = np.nanmin(e[["escape_theory", "escape_simulation"]].values), np.nanmax(e[["escape_theory", "escape_simulation"]].values)
                        ax.plot([lo, hi], [lo, hi], "k:")
                        ax.set_xlabel("escape time, theory from the seed's start"); ax.set_ylabel("escape time, simulation")
                    plt.tight_layout(); plt.savefig("saad-solla-3.png", dpi=120); plt.show()
                agreement
                """),
        ])
    }
}
