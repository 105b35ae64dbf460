import Foundation
import PlateauCompare
import PlateauCore
import PlateauTheory

/// The files of the `loss-comparison` reproduction: CSVs, specs, notebook, README and the stdout summary.
extension LossComparison {
    static func label(_ x: Double) -> String { String(format: "%g", x) }

    /// A finding read off one curve family: first-passage times of best_cos_1 and the final values.
    struct Finding {
        var problem: Problem
        var loss: Loss
        /// Quantity name and (d = ∞ theory, simulation mean, simulation SE, seeds that contribute).
        var rows: [(String, Double, Double, Double, Int)]
    }

    static func quantities(_ problem: Problem) -> [String] {
        var q = cosineLevels.map { "t(best_cos_1 ≥ \(label($0)))" }
        q.append("risk at t = \(label(problem == .he3 ? he3Horizon : staircaseHorizon))")
        for r in 1...problem.k { q.append("best_cos_\(r) at the end") }
        if problem.p > 1 { q.append("student_cos at the end") }
        return q
    }

    /// The quantities of `quantities(_:)` on one curve (in the study's observables).
    static func measure(_ t: Trajectory, _ problem: Problem) -> [Double] {
        let c1 = t.column("best_cos_1")!
        var v = cosineLevels.map { firstPassage(t.times, c1, level: $0) }
        v.append(t.column("risk")!.last!)
        for r in 1...problem.k { v.append(t.column("best_cos_\(r)")!.last!) }
        if problem.p > 1 { v.append(t.column("student_cos")!.last!) }
        return v
    }

    static func files(config: Configuration, curves: [TheoryCurve], simulated: [Simulated], seconds: Double) -> ReproductionResult {
        var result = ReproductionResult()
        let fmt = { (x: Double) in MarkdownTable.number(x, 4) }
        let losses: [Loss] = [.correlation, .square]
        func sgd(_ problem: Problem, _ loss: Loss) -> TheoryCurve {
            curves.first { $0.problem == problem && $0.loss == loss && !$0.populationFlow }!
        }
        let dMax = config.dimensions.max()!

        // theory_curves.csv: the d = ∞ curves from the nominal start (long format).
        var theoryTable = CSVTable(columns: ["problem", "loss", "dynamics", "t", "observable", "value"])
        for c in curves {
            for (i, t) in c.curve.times.enumerated() {
                for (o, name) in c.curve.observables.enumerated() {
                    theoryTable.append([c.problem.id, c.loss.rawValue, c.populationFlow ? "population-flow" : "sgd", t, name, c.curve.values[i][o]])
                }
            }
        }
        result.add("theory_curves.csv", theoryTable)

        // simulation_summary.csv: per (problem, loss, d, t, observable) theory and simulation mean ± SE over seeds.
        var summaryTable = CSVTable(columns: ["problem", "loss", "d", "t", "observable", "theory_mean", "theory_se",
                                              "simulation_mean", "simulation_se", "seeds"])
        for s in simulated {
            let sim = SeedStatistics.summary(s.simulation), th = SeedStatistics.summary(s.theory)
            for i in sim.mean.times.indices where i < th.mean.times.count {
                for (o, name) in sim.mean.observables.enumerated() {
                    summaryTable.append([s.problem.id, s.loss.rawValue, s.run.dimension, sim.mean.times[i], name,
                                         th.mean.values[i][o], th.standardError.values[i][o], sim.mean.values[i][o],
                                         sim.standardError.values[i][o], sim.count[i]])
                }
            }
        }
        result.add("simulation_summary.csv", summaryTable)

        // agreement.csv: the AgreementReport of every (problem, loss, d).
        var agreementTable = CSVTable(columns: [
            "problem", "loss", "d", "eta", "seeds", "horizon", "comparisons", "agreeing", "agrees_everywhere",
            "max_standard_errors", "worst_threshold_ratio", "rms_deviation", "critical_value", "verdict",
        ])
        for s in simulated {
            let r = s.run.report
            agreementTable.append([s.problem.id, s.loss.rawValue, s.run.dimension, s.run.experiment.training.learningRate, r.seeds,
                                   s.run.experiment.training.time, r.comparisons.count, r.comparisons.filter(\.agrees).count,
                                   r.agreesEverywhere, resolvedStandardErrors(r), r.worstThresholdRatio, r.rmsDeviation,
                                   r.criticalValue, r.verdict])
        }
        result.add("agreement.csv", agreementTable)

        // findings.csv: first-passage times and final values, d = ∞ theory and simulation at the largest d.
        var findings: [Finding] = []
        var findingTable = CSVTable(columns: ["problem", "loss", "quantity", "theory_d_inf", "simulation_mean", "simulation_se",
                                              "simulation_seeds", "d"])
        for problem in config.problems {
            for loss in losses {
                let names = quantities(problem)
                let theory = measure(sgd(problem, loss).curve, problem)
                let perSeed = simulated.first { $0.problem == problem && $0.loss == loss && $0.run.dimension == dMax }
                    .map { $0.simulation.map { measure($0, problem) } } ?? []
                var rows: [(String, Double, Double, Double, Int)] = []
                for (q, name) in names.enumerated() {
                    let xs = perSeed.map { $0[q] }.filter(\.isFinite)
                    let s = xs.isEmpty ? (mean: Double.nan, standardError: Double.nan) : SeedStatistics.meanAndStandardError(xs)
                    rows.append((name, theory[q], s.mean, s.standardError, xs.count))
                    findingTable.append([problem.id, loss.rawValue, name, theory[q], s.mean, s.standardError, xs.count, dMax])
                }
                findings.append(Finding(problem: problem, loss: loss, rows: rows))
            }
        }
        result.add("findings.csv", findingTable)

        // he3_check.csv: the Wick route's dm/dt against the exact closed form, and the correlation fixed point.
        var checkTable = CSVTable(columns: ["loss", "m", "wick_dm_dt", "closed_form_dm_dt", "difference", "wick_dQ_dt"])
        var worstCheck = 0.0
        if config.problems.contains(.he3) {
            for loss in losses {
                let theory = OnlineSGDTheory(experiment(.he3, loss: loss))
                for m in stride(from: 0.0, through: 1.0, by: 0.1) {
                    var o = theory.initialOverlaps
                    o.M[0, 0] = m
                    let d = theory.derivatives(o)
                    let exact = he3OverlapRate(m: m, learningRate: he3LearningRate, loss: loss)
                    worstCheck = max(worstCheck, abs(d.dM[0, 0] - exact))
                    checkTable.append([loss.rawValue, m, d.dM[0, 0], exact, d.dM[0, 0] - exact, d.dQ[0, 0]])
                }
            }
        }
        result.add("he3_check.csv", checkTable)
        let mStar = he3CorrelationFixedPoint(learningRate: he3LearningRate)

        // routes.csv: how each experiment's expectations are computed.
        var routeTable = CSVTable(columns: ["problem", "loss", "route", "description"])
        for problem in config.problems {
            for loss in losses {
                let theory = OnlineSGDTheory(experiment(problem, loss: loss))
                routeTable.append([problem.id, loss.rawValue, theory.route.rawValue, theory.routeDescription])
            }
        }
        result.add("routes.csv", routeTable)

        // Specs.
        for problem in config.problems {
            for loss in losses {
                let e = experiment(problem, loss: loss)
                result.addSpec("\(problem.id)-\(loss.rawValue)", e, comment: """
                    loss-comparison: \(problem.id), \(loss.rawValue) loss (spherical student; Wick route).
                    d = ∞: plateau ode --spec THIS_FILE --rtol 1e-9 --atol 1e-11
                    finite d (the study: d ∈ {\(config.dimensions.map(String.init).joined(separator: ", "))}, \(config.seeds) seeds, \
                    master seeds derived from --seed \(config.masterSeed)): plateau compare --spec THIS_FILE --dimension D --seeds \(config.seeds)
                    """)
            }
        }

        // Tables shared by README and stdout.
        var findingRows: [[String]] = []
        for f in findings {
            for row in f.rows {
                let sim = row.2.isFinite ? String(format: "%.4g ± %.2g", row.2, row.3) + (row.4 < config.seeds ? " (\(row.4) seeds)" : "") : "—"
                findingRows.append([f.problem.id, f.loss.rawValue, row.0, row.1.isFinite ? fmt(row.1) : "not reached", sim])
            }
        }
        let findingText = MarkdownTable.render(["problem", "loss", "quantity", "theory d = ∞", "simulation d = \(dMax) (mean ± SE)"],
                                               findingRows)
        let agreementRows = simulated.map { s -> [String] in
            let r = s.run.report
            return [s.problem.id, s.loss.rawValue, "\(s.run.dimension)", "\(r.seeds)", r.verdict,
                    String(format: "%.2f", resolvedStandardErrors(r)), String(format: "%.2f", r.worstThresholdRatio),
                    String(format: "%.3g", r.rmsDeviation)]
        }
        let agreementText = MarkdownTable.render(["problem", "loss", "d", "seeds", "verdict (risk, M, Q, a at every time)", "max |dev|/SE",
                                                  "max |dev|/threshold", "RMS deviation"], agreementRows)
        let agreeing = simulated.filter { $0.run.report.agreesEverywhere }.count
        let maxZ = simulated.map { resolvedStandardErrors($0.run.report) }.max() ?? .nan

        // The comparison in words, from the numbers.
        func value(_ problem: Problem, _ loss: Loss, _ name: String) -> Double {
            findings.first { $0.problem == problem && $0.loss == loss }?.rows.first { $0.0 == name }?.1 ?? .nan
        }
        var statements: [String] = []
        let level0 = "t(best_cos_1 ≥ \(label(cosineLevels[0])))"
        if config.problems.contains(.he3) {
            let tc = value(.he3, .correlation, level0), ts = value(.he3, .square, level0)
            let riskName = "risk at t = \(label(he3Horizon))"
            statements.append(String(format: """
                He₃ (m₀ = %@, η = %@): the correlation loss reaches cos = 0.5 at t = %.1f, the square loss at t = %.1f \
                (%.2f× later): their drifts are identical on the sphere and the square loss's SGD noise is 32× larger \
                near m = 0 (Ξ_sq(0) = 3456 against Ξ_corr(0) = 108). The correlation loss then stops at m* = %.4f \
                (closed form; the d = ∞ curve ends at %.4f) with risk %.4g at t = %@, while the square loss's noise vanishes \
                as m → 1: cos %.5f and risk %.3g at t = %@.
                """, label(he3InitialOverlap), label(he3LearningRate), tc, ts, ts / tc, mStar,
                value(.he3, .correlation, "best_cos_1 at the end"), value(.he3, .correlation, riskName), label(he3Horizon),
                value(.he3, .square, "best_cos_1 at the end"), value(.he3, .square, riskName), label(he3Horizon)))
        }
        let stairs = config.problems.compactMap { p -> Int? in if case let .staircase(k) = p { return k } else { return nil } }
        if !stairs.isEmpty {
            let riskName = "risk at t = \(label(staircaseHorizon))"
            var parts: [String] = []
            for k in stairs {
                let p = Problem.staircase(k: k)
                let cosC = (1...k).map { fmt(value(p, .correlation, "best_cos_\($0) at the end")) }.joined(separator: ", ")
                let cosS = (1...k).map { fmt(value(p, .square, "best_cos_\($0) at the end")) }.joined(separator: ", ")
                var s = String(format: "k = %d: cos ≥ 0.5 at t = %@ (correlation) vs %@ (square); at t = %@ best cosines (%@) vs (%@), risk %@ vs %@",
                               k, fmt(value(p, .correlation, level0)), fmt(value(p, .square, level0)), label(staircaseHorizon),
                               cosC, cosS, fmt(value(p, .correlation, riskName)), fmt(value(p, .square, riskName)))
                if k > 1 {
                    s += String(format: ", student_cos %@ vs %@", fmt(value(p, .correlation, "student_cos at the end")),
                                fmt(value(p, .square, "student_cos at the end")))
                }
                parts.append(s)
            }
            statements.append("Staircase (σ = \(staircaseActivationText), a_j = 1/p, η a_j = \(label(staircasePerUnitStep)), random start), correlation vs square: "
                              + parts.joined(separator: "; ") + ".")
            let flow = stairs.map { k -> String in
                let p = Problem.staircase(k: k)
                let pf = losses.map { loss -> String in
                    let c = curves.first { $0.problem == p && $0.loss == loss && $0.populationFlow }!.curve
                    return "\(loss.rawValue) " + (1...k).map { fmt(c.column("best_cos_\($0)")!.last!) }.joined(separator: ", ")
                }
                return "k = \(k): " + pf.joined(separator: " / ")
            }
            let lowerSquare = stairs.filter { value(.staircase(k: $0), .square, riskName) < value(.staircase(k: $0), .correlation, riskName) }
            let multi = stairs.filter { $0 > 1 }
            if !multi.isEmpty {
                statements.append("With the correlation loss D = y does not depend on f, so the units do not interact: for p > 1 all units end parallel "
                                  + "(student_cos ≈ 1) and the student uses a single direction, while the square loss's student–student terms keep them apart. "
                                  + "The square loss reaches the lower risk at k ∈ {\(lowerSquare.map(String.init).joined(separator: ", "))}. "
                                  + "The d = ∞ column starts from M = 0, where every unit is the same; at finite d the O(1/√d) start breaks that symmetry, "
                                  + "so for the square loss at k ≥ 3 the simulated best cosines of the later directions exceed the symmetric d = ∞ curve "
                                  + "(each seed's own theory follows them: see the agreement table).")
            }
            statements.append("Without the η² noise term (population gradient flow, same start and horizon) the best cosines at the end are "
                              + flow.joined(separator: "; ") + ": the gap between the losses at finite η is mostly SGD noise, whose size is E[σ'² D²] "
                              + "with D = y for the correlation loss but D = y − f for the square loss, and f (which cannot represent the staircase) "
                              + "acts as label noise.")
        }

        let settingsText = """
            - Time t = steps/d, one sample per step (n_b = 1); risk ½E[(g − f)²] (EQUATIONS.md §1); cos_j_r = M_jr/√(Q_jj P_rr); \
            best_cos_r = max_j |cos_j_r|; student_cos = mean over j < l of |Q_jl|/√(Q_jj Q_ll) (1: all units parallel).
            - Both losses use the same η, the same teachers and the same initial students (the two runs of one (problem, d) share their master seed).
            - Spherical student: rows renormalised to |w_j|² = d after every step (Q_jj = 1), in theory (EQUATIONS.md §1.3) and simulator alike.
            - He₃: target He₃(z₁), student He₃(λ), p = k = 1, a = 1, η = \(label(he3LearningRate)), horizon \(label(he3Horizon)); \
            start M = m₀ = \(label(he3InitialOverlap)) built exactly at finite d. Why not a random start: from m₀ ~ d^{-1/2} the drift 18ηm² must beat \
            the noise (η/2)Ξ(0)m, which needs η ≲ 36m₀/Ξ(0) ~ d^{-1/2}, and the escape then takes t ≈ 1/(18ηm₀) ∝ d (d² samples, \
            information exponent 3), a d-dependent search phase that is the same story for both losses apart from Ξ(0). A small \
            but O(1) overlap isolates the descent, where the losses differ, on a horizon independent of d. η = \(label(he3LearningRate)) \
            keeps both losses stable: the square loss escapes only for m₀ > ηΞ_sq(0)/36 = 96η = \(label(96 * he3LearningRate)) \
            (correlation: 3η = \(label(3 * he3LearningRate))).
            - Staircase: target z₁ + z₁z₂ + … + z₁⋯z_k, k ∈ {\(stairs.map(String.init).joined(separator: ", "))}, p = k units, \
            σ = \(staircaseActivationText) (the degree-4 truncation of the Hermite series of e^{x − 1/2} − 1: every degree that a leap of \
            the staircase needs), a_j = 1/p, η = \(label(staircasePerUnitStep))·p, horizon \(label(staircaseHorizon)), random initial \
            weights (i.i.d. N(0, 1) rows, then normalised; M = O(1/√d)). z₁ has information exponent 1, so a random start escapes in O(1) time.
            - Theory: the exact d = ∞ ODE (Wick route for every experiment: polynomial activation and target; see routes.csv), \
            GSL rk8pd, rtol 1e-9, atol 1e-11; "d = ∞" curves start from the nominal start (staircase: M = 0, Q = I, on which every unit \
            is the same); in the comparison each seed's theory starts from that seed's realised overlaps.
            - Simulation: d ∈ {\(config.dimensions.map(String.init).joined(separator: ", "))}, \(config.seeds) seeds each, \
            master seed \(config.masterSeed), \(recordIntervals + 1) equally spaced record times. Verdict (AgreementReport): \
            |mean deviation| ≤ z·SE + b/d + 1e-6 at every time for risk, M, Q and a; z: Bonferroni Student-t at family-wise α = 0.01, b = 0.5.
            \(config.quick ? "- QUICK RUN (--quick): tiny sizes for tests; the simulation numbers are not the study's.\n" : "")
            """

        let checkText = String(format: """
            The He₃ problem has an exact overlap ODE (derivation in `Sources/PlateauStudies/LossComparison/LossComparison.swift`): \
            dm/dt = 18η m²(1 − m²) − (η²/2) m Ξ(m), Ξ_corr = 1944m⁴ + 1296m² + 108, Ξ_sq = 1944m⁴ − 6696m³ + 1296m² + 3456. \
            The Wick route's dm/dt matches it at m = 0, 0.1, …, 1 for both losses to %.1e (he3_check.csv), and dQ/dt = 0 (spherical). \
            The correlation loss's fixed point from the closed form is m* = %.6f.
            """, worstCheck, mStar)

        var summary = "\(LossComparison().title)\n\n" + statements.map { "- " + $0 }.joined(separator: "\n") + "\n\n"
        summary += findingText + "\n\nFinite d against theory (each seed's theory from its realised start)\n" + agreementText + "\n"
        summary += String(format: "%d of %d configurations agree everywhere; largest |dev|/SE %.2f\n", agreeing, simulated.count, maxZ)
        summary += checkText + "\n"
        summary += String(format: "\nwall time %.1f s\n", seconds)
        result.summary = summary

        let readme = """
            # Correlation loss vs square loss (He₃ and the staircase)

            Written by `plateau reproduce loss-comparison\(config.quick ? " --quick" : "")` (Plateau \(PlateauVersion.string)); the wall time goes to stdout only, so that a rerun (or a resumed run) writes the same bytes. Plot with `plot.ipynb` \
            (Python, pandas, matplotlib; run it from this folder).

            ## What is reproduced

            \(LossComparison().reproduces)

            ## Settings

            \(settingsText)
            ## Finding

            \(statements.map { "- " + $0 }.joined(separator: "\n"))

            \(findingText)

            First-passage times are read from the \(recordIntervals + 1)-point grid (linear interpolation); a simulation entry \
            averages the seeds that reached the level (their number is given when some did not).

            ## Exact check of the theory

            \(checkText)

            ## Finite d against theory

            \(agreementText)

            \(agreeing) of \(simulated.count) configurations agree at every (time, observable); the largest |mean deviation| over \
            all comparisons with a resolvable standard error (> 1e-8; Q_jj on the sphere, the fixed a_j and t = 0 agree to rounding) is \(String(format: "%.2f", maxZ)) standard errors. "max |dev|/threshold" ≤ 1 means every comparison agrees.

            ## Files

            | file | what |
            |---|---|
            | `theory_curves.csv` | d = ∞ curves from the nominal start: problem, loss, dynamics (sgd, population-flow), t, observable, value |
            | `simulation_summary.csv` | per (problem, loss, d, t, observable): mean ± SE over seeds of each seed's theory and of the simulation |
            | `agreement.csv` | per (problem, loss, d): the agreement verdict, max \\|dev\\|/SE, max \\|dev\\|/threshold, RMS deviation |
            | `findings.csv` | first-passage times of best_cos_1 and final values: d = ∞ theory and simulation at d = \(dMax) |
            | `he3_check.csv` | the Wick route's dm/dt for He₃ against the closed form |
            | `routes.csv` | the expectation route of every experiment |
            | `specs/*.yaml` | the specification of every experiment (readable by `plateau ode/compare --spec`) |
            | `plot.ipynb` | the figures |

            ## Figures

            Written by `plot.ipynb` beside the CSVs (`make figures` runs every study's notebook):

            ![figure 1](loss-comparison-1.png) ![figure 2](loss-comparison-2.png) ![figure 3](loss-comparison-3.png)

            """
        result.add("README.md", readme)
        result.add("plot.ipynb", notebook.json)
        return result
    }

    /// The figures, drawn from the CSVs.
    static var notebook: Notebook {
        Notebook([
            .markdown("""
                # Correlation loss vs square loss

                Figures from the CSV files written by `plateau reproduce loss-comparison` (see `README.md` for the \
                settings). Lines: theory (solid: d = ∞ from the nominal start; dashed: mean over seeds of the theory \
                started from each seed's realised overlaps); points: simulation mean ± SE over seeds. Run from this folder.
                """),
            .code("""
                import numpy as np
                import pandas as pd
                import matplotlib.pyplot as plt

                theory = pd.read_csv("theory_curves.csv")
                summary = pd.read_csv("simulation_summary.csv")
                agreement = pd.read_csv("agreement.csv")
                findings = pd.read_csv("findings.csv")
                check = pd.read_csv("he3_check.csv")
                routes = pd.read_csv("routes.csv")
                colors = {"correlation": "C0", "square": "C3"}
                problems = list(dict.fromkeys(theory.problem))
                dims = sorted(summary.d.unique())

                def draw(ax, problem, observable, dynamics="sgd"):
                    for loss, color in colors.items():
                        th = theory[(theory.problem == problem) & (theory.loss == loss) & (theory.dynamics == dynamics) & (theory.observable == observable)]
                        ax.plot(th.t, th.value, "-", color=color, lw=1.5, label=f"{loss}: d = ∞")
                        for i, d in enumerate(dims):
                            s = summary[(summary.problem == problem) & (summary.loss == loss) & (summary.d == d) & (summary.observable == observable)]
                            s = s.iloc[:: max(1, len(s) // 25)]
                            ax.errorbar(s.t, s.simulation_mean, yerr=s.simulation_se, fmt="os^"[i % 3], ms=3, color=color,
                                        alpha=0.35 + 0.65 * (i + 1) / len(dims), lw=0.8, label=f"{loss}: d = {d}")
                        if dims:
                            s = summary[(summary.problem == problem) & (summary.loss == loss) & (summary.d == dims[-1]) & (summary.observable == observable)]
                            ax.plot(s.t, s.theory_mean, "--", color=color, lw=0.8)
                    ax.set_xlabel("t = steps / d"); ax.set_ylabel(observable)
                routes
                """),
            .markdown("## He₃ single index (spherical He₃ student, start m₀ = 0.3)"),
            .code("""
                if "he3" in problems:
                    fig, (a, b, c) = plt.subplots(1, 3, figsize=(16, 4))
                    draw(a, "he3", "cos_1_1"); a.set_title("cosine similarity")
                    draw(b, "he3", "risk"); b.set_yscale("log"); b.set_title("risk")
                    for loss, color in colors.items():
                        g = check[check.loss == loss]
                        c.plot(g.m, g.closed_form_dm_dt, "-", color=color, label=f"{loss}: closed form")
                        c.plot(g.m, g.wick_dm_dt, "o", color=color, ms=4, label=f"{loss}: Wick route")
                    c.axhline(0, color="gray", lw=0.5); c.set_xlabel("m"); c.set_ylabel("dm/dt"); c.set_title("exact overlap ODE")
                    a.legend(fontsize=7); c.legend(fontsize=7)
                    plt.tight_layout(); plt.savefig("loss-comparison-1.png", dpi=120); plt.show()
                findings[findings.problem == "he3"]
                """),
            .markdown("## Staircase z1 + z1 z2 + … (p = k), best cosine per direction and risk"),
            .code("""
                stairs = [p for p in problems if p.startswith("staircase")]
                if stairs:
                    k_max = max(int(p.split("-k")[1]) for p in stairs)
                    fig, axes = plt.subplots(len(stairs), k_max + 1, figsize=(4 * (k_max + 1), 3.2 * len(stairs)), squeeze=False)
                    for row, problem in enumerate(stairs):
                        k = int(problem.split("-k")[1])
                        for r in range(1, k_max + 1):
                            ax = axes[row][r - 1]
                            if r <= k:
                                draw(ax, problem, f"best_cos_{r}"); ax.set_ylim(0, 1)
                                ax.set_title(f"k = {k}: max_j |cos_j_{r}|", fontsize=9)
                            else:
                                ax.axis("off")
                        ax = axes[row][k_max]
                        draw(ax, problem, "risk"); ax.set_title(f"k = {k}: risk", fontsize=9)
                    axes[0][0].legend(fontsize=6)
                    plt.tight_layout(); plt.savefig("loss-comparison-2.png", dpi=120); plt.show()
                """),
            .markdown("### SGD against the population gradient flow (no η² term), d = ∞"),
            .code("""
                if stairs:
                    fig, axes = plt.subplots(1, len(stairs), figsize=(4 * len(stairs), 3.2), squeeze=False)
                    for ax, problem in zip(axes[0], stairs):
                        k = int(problem.split("-k")[1])
                        for loss, color in colors.items():
                            for dynamics, ls in [("sgd", "-"), ("population-flow", ":")]:
                                for r in range(1, k + 1):
                                    th = theory[(theory.problem == problem) & (theory.loss == loss) & (theory.dynamics == dynamics) & (theory.observable == f"best_cos_{r}")]
                                    ax.plot(th.t, th.value, ls, color=color, alpha=1 - 0.2 * (r - 1), label=f"{loss} {dynamics}" if r == 1 else None)
                        ax.set_title(f"{problem}: best_cos_r, r = 1..{k}", fontsize=9); ax.set_xlabel("t"); ax.set_ylim(0, 1)
                    axes[0][0].legend(fontsize=6)
                    plt.tight_layout(); plt.savefig("loss-comparison-3.png", dpi=120); plt.show()
                findings[findings.problem != "he3"]
                """),
            .markdown("## Agreement (each seed's theory from its realised start)"),
            .code("agreement"),
        ])
    }
}
