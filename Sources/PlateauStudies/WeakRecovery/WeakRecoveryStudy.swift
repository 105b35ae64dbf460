import Foundation
import PlateauCompare
import PlateauCore
import PlateauSimulation
import PlateauTheory

/// `plateau reproduce weak-recovery`: the weak-recovery thresholds of the classic multi-index targets
/// (Troiani, Dandi, Defilippis, Zdeborová, Loureiro, Krzakala 2024; `../shared/reference/state-evolution.md`)
/// and the overlap-versus-α diagram of the state evolution with finite-d GAMP over it.
public struct WeakRecoveryStudy: Reproduction {
    public init() {}
    public var name: String { "weak-recovery" }
    public var title: String { "Weak-recovery thresholds α_c of multi-index targets; state-evolution overlap against α with GAMP points" }
    public var reproduces: String {
        "Troiani et al. 2024 (fundamental limits of weak learnability in multi-index models): α_c = 1/λ_max(𝓕), trivial and easy subspaces; shared/reference/state-evolution.md"
    }

    /// One row of the threshold table: a target, its resolution, and the reference value where one is known.
    struct Case: Sendable {
        var label: String
        var target: String
        var k: Int
        var noise: Double = 0
        var resolution: Double? = nil
        var reference: Double? = nil
        var referenceNote: String = ""
        /// false: a product output through the channel's bins (the general route) instead of its exact law.
        var exactProduct = true
    }

    static let cases: [Case] = [
        Case(label: "phase retrieval", target: "z1^2", k: 1, reference: 0.5, referenceNote: "1/2"),
        Case(label: "phase retrieval, h = 0.04", target: "z1^2", k: 1, resolution: 0.04, reference: 0.5, referenceNote: "1/2"),
        Case(label: "noisy phase retrieval", target: "z1^2", k: 1, noise: 0.01, reference: 0.5020947, referenceNote: "quadrature (reference file)"),
        Case(label: "linear", target: "z1", k: 1, reference: 0, referenceNote: "trivial"),
        Case(label: "product z1 z2", target: "z1*z2", k: 2, reference: nil, referenceNote: "exact law (Bessel K₀, K₁)"),
        Case(label: "product z1 z2, binned h = 0.02", target: "z1*z2", k: 2, referenceNote: "general route: O(h²) from the exact law",
             exactProduct: false),
        Case(label: "product z1 z2 z3", target: "z1*z2*z3", k: 3, reference: nil, referenceNote: "exact law (1-D Bessel integrals)"),
        Case(label: "sign(z1 z2)", target: "sign(z1*z2)", k: 2, reference: Double.pi * Double.pi / 4, referenceNote: "π²/4"),
        Case(label: "parity k = 3", target: "sign(z1*z2*z3)", k: 3, reference: .infinity, referenceNote: "G = 0"),
        Case(label: "sign committee k = 3", target: "sign(z1) + sign(z2) + sign(z3)", k: 3, reference: 0, referenceNote: "trivial span(1,1,1)"),
        Case(label: "erf committee k = 2", target: "erf(z1/sqrt(2)) + erf(z2/sqrt(2))", k: 2, resolution: 0.05, reference: 0, referenceNote: "trivial"),
        // G(y) = diag(E[z₁² | y] − 1, 0, 0): the λ of z₁² + sign(z₂)'s easy direction, whose 1-D reduction
        // StateEvolutionTests.lineAlongContinuousAxis integrates (1/λ = 0.5751664).
        Case(label: "z1^2 + sign(z1 z2 z3), h = 0.1", target: "z1^2 + sign(z1*z2*z3)", k: 3, resolution: 0.1,
             referenceNote: "1-D reduction 0.5751664 (test)"),
        Case(label: "z1^2 + sign(z1 z2 z3), h = 0.05", target: "z1^2 + sign(z1*z2*z3)", k: 3, resolution: 0.05,
             referenceNote: "1-D reduction 0.5751664 (test)"),
    ]

    static func problem(_ c: Case, epsilon: Double = 1e-3) -> EstimationProblem {
        var p = EstimationProblem(teacher: TeacherSpec(link: try! Formula(parsing: c.target, variables: .target(k: c.k)), noiseVariance: c.noise))
        if let h = c.resolution { p.settings.outputResolution = h }
        p.settings.epsilon = epsilon
        return p
    }

    /// The overlap diagrams: targets, α grid, GAMP α points.
    struct Diagram: Sendable {
        var label: String
        var target: String
        var k: Int
        var alphas: [Double]
        var gampAlphas: [Double]
    }

    public func run(_ settings: ReproductionSettings, progress: @escaping ReproductionProgress) throws -> ReproductionResult {
        try settings.validate()
        let started = Date()
        let quick = settings.quick
        // 1. Thresholds.
        let cases = Self.cases.filter { !(quick && ($0.k == 3 && $0.resolution != nil || !$0.exactProduct)) }
        let thresholds = Reproductions.parallel(cases, stage: "thresholds", progress) { c -> (Case, WeakRecoveryAnalysis?, Double, String) in
            let t0 = Date()
            do {
                let problem = Self.problem(c)
                if c.exactProduct, let law = ProductOutputLaw(problem: problem) {
                    return (c, WeakRecoveryAnalysis(law: law), Date().timeIntervalSince(t0), "exact product law")
                }
                let se = try StateEvolution(problem: problem)
                let analysis = se.weakRecovery(exactProduct: false)
                let output: String
                switch se.channel.alphabet {
                case .discrete: output = "discrete"
                case let .binned(h): output = "binned h = \(h)"
                }
                return (c, analysis, Date().timeIntervalSince(t0), output)
            } catch {
                return (c, nil, Date().timeIntervalSince(t0), "error: \(error)")
            }
        }
        // 2. State-evolution overlap against α, and GAMP after T iterations at a few α.
        let diagrams = [
            Diagram(label: "sign(z1 z2)", target: "sign(z1*z2)", k: 2,
                    alphas: quick ? [1, 3] : stride(from: 0.5, through: 5.0, by: 0.25).map { $0 },
                    gampAlphas: quick ? [3] : [1.5, 3, 4.5]),
            Diagram(label: "sign committee k = 2", target: "sign(z1) + sign(z2)", k: 2,
                    alphas: quick ? [1, 3] : stride(from: 0.25, through: 5.0, by: 0.25).map { $0 },
                    gampAlphas: quick ? [1] : [0.5, 2, 4]),
        ]
        let epsilon = 0.2, iterations = quick ? 6 : 40
        let dimension = settings.dimensions?.first ?? (quick ? 300 : 2000)
        let seeds = settings.seeds ?? (quick ? 3 : 6)
        var seCurves: [(Diagram, [StateEvolutionRun])] = []
        var hierarchies: [(Diagram, [LearningStage])] = []
        var scans: [(Diagram, AMPFixedPointScan)] = []
        for (i, diagram) in diagrams.enumerated() {
            let problem = Self.problem(Case(label: diagram.label, target: diagram.target, k: diagram.k))
            let se = try StateEvolution(problem: problem)
            let runs = se.curve(alphas: diagram.alphas) { progress("state evolution: \(diagram.label)", $0) }
            seCurves.append((diagram, runs.map { $0[0] }))
            progress("hierarchy: \(diagram.label)", 0)
            hierarchies.append((diagram, se.hierarchy(alphaMin: 0.05, alphaMax: 10, gridPoints: quick ? 4 : 10)))
            var gampProblem = problem
            gampProblem.settings.epsilon = epsilon
            let options = GAMPOptions(dimension: dimension, iterations: iterations, seeds: seeds,
                                      masterSeed: SeedSequence.seed(master: settings.masterSeed, index: i))
            let scan = try AMPFixedPointScan.run(problem: gampProblem, alphas: diagram.gampAlphas, options: options) {
                progress("GAMP: \(diagram.label)", $0)
            }
            scans.append((diagram, scan))
        }
        return Self.files(thresholds: thresholds, curves: seCurves, hierarchies: hierarchies, scans: scans, dimension: dimension, seeds: seeds,
                          iterations: iterations, epsilon: epsilon, quick: quick, seconds: Date().timeIntervalSince(started))
    }
}

extension WeakRecoveryStudy {
    /// A file name for a case label: lower case, runs of other characters as one dash.
    static func specName(_ label: String) -> String {
        var out = ""
        for c in label.lowercased() {
            if c.isLetter && c.isASCII || c.isNumber { out.append(c) } else if out.last != "-" { out.append("-") }
        }
        return out.trimmingCharacters(in: CharacterSet(charactersIn: "-"))
    }

    static func files(thresholds: [(Case, WeakRecoveryAnalysis?, Double, String)], curves: [(Diagram, [StateEvolutionRun])],
                      hierarchies: [(Diagram, [LearningStage])],
                      scans: [(Diagram, AMPFixedPointScan)], dimension: Int, seeds: Int, iterations: Int, epsilon: Double,
                      quick: Bool, seconds: Double) -> ReproductionResult {
        var result = ReproductionResult()
        let fmt = { (x: Double) in MarkdownTable.number(x, 7) }
        func basis(_ vs: [[Double]]) -> String {
            vs.isEmpty ? "none" : vs.map { "(" + $0.map { String(format: "%.3f", $0 == 0 ? 0 : $0) }.joined(separator: " ") + ")" }.joined(separator: " ")
        }
        var table = CSVTable(columns: ["case", "target", "k", "noise", "output", "alpha_c", "reference", "reference_note",
                                       "lambda_max", "trivial_dimension", "trivial_subspace", "easy_subspace"])
        var rows: [[String]] = []
        var timings: [String] = []   // stdout only, so that a rerun writes the same bytes
        for (c, a, s, output) in thresholds {
            let alphaC = a?.alphaC ?? .nan
            table.append([c.label, c.target, c.k, c.noise, output, alphaC, c.reference ?? .nan, c.referenceNote,
                          a?.operatorTopEigenvalue ?? .nan, a?.trivialSubspace.count ?? 0, basis(a?.trivialSubspace ?? []),
                          basis(a?.easySubspace ?? [])])
            rows.append([c.label, "`\(c.target)`", "\(c.k)", output, fmt(alphaC), c.reference.map(fmt) ?? "—", c.referenceNote,
                         basis(a?.trivialSubspace ?? []), basis(a?.easySubspace ?? [])])
            timings.append("\(c.label): \(String(format: "%.2f", s)) s")
        }
        result.add("thresholds.csv", table)
        for (c, _, _, _) in thresholds {
            result.addSpec(specName(c.label), problem(c),
                           comment: "\(c.label): plateau threshold --spec specs/\(specName(c.label)).yaml\(c.exactProduct ? "" : " --binned")")
        }

        var curveTable = CSVTable(columns: ["case", "target", "alpha", "q", "mse", "iterations", "status"])
        for (d, runs) in curves { for r in runs { curveTable.append([d.label, d.target, r.alpha, r.q, r.mse, r.iterations, r.status.rawValue]) } }
        result.add("se_curves.csv", curveTable)

        var stageTable = CSVTable(columns: ["case", "target", "alpha", "rank", "directions"])
        var stageRows: [[String]] = []
        for (d, stages) in hierarchies {
            for st in stages {
                stageTable.append([d.label, d.target, st.alpha, st.rank, basis(st.directions)])
                stageRows.append([d.label, MarkdownTable.number(st.alpha, 4), "\(st.rank)", basis(st.directions)])
            }
        }
        result.add("hierarchy.csv", stageTable)

        var gampTable = CSVTable(columns: ["case", "target", "alpha", "observable", "state_evolution", "gamp_mean", "gamp_se", "threshold", "agrees"])
        var verdicts: [[String]] = []
        for (d, scan) in scans {
            for c in scan.report.comparisons {
                gampTable.append([d.label, d.target, c.time, c.observable, c.theory, c.simulationMean, c.simulationStandardError, c.threshold, c.agrees])
            }
            verdicts.append([d.label, scan.alphas.map { MarkdownTable.number($0, 3) }.joined(separator: ", "), scan.report.verdict,
                             MarkdownTable.number(scan.report.maximumStandardErrors, 3)])
        }
        result.add("gamp.csv", gampTable)

        let thresholdMarkdown = MarkdownTable.render(["case", "target", "k", "output", "α_c", "reference", "why", "trivial subspace", "easy subspace"], rows)
        let verdictMarkdown = MarkdownTable.render(["target", "α (GAMP)", "verdict (q, m2, Q)", "max |dev|/SE"], verdicts)
        result.summary = thresholdMarkdown + "\n\n" + verdictMarkdown + "\n\nthreshold times: " + timings.joined(separator: "; ")
            + String(format: "\nwall time %.1f s\n", seconds)
        result.add("README.md", """
            # Weak recovery in multi-index models: thresholds and the state evolution

            Reproduces the weak-recovery thresholds α_c = 1/λ_max(𝓕) of Troiani, Dandi, Defilippis, Zdeborová, \
            Loureiro, Krzakala (2024), for the targets of `shared/reference/state-evolution.md`, and draws the \
            Bayes-optimal overlap q = tr M/k of the state evolution against α with finite-d GAMP over it.
            \(quick ? "\n- QUICK RUN (--quick): tiny sizes for tests; the numbers are not the study's.\n" : "")
            ## Thresholds (`thresholds.csv`)

            Computed by `plateau threshold` (EQUATIONS.md §2): the trivial subspace (E[z|y] ≠ 0: α_c = 0), else \
            α_c = 1/λ_max of 𝓕(A) = E_y[G(y)AG(y)], with the easy subspace from its top eigenvector. A noiseless \
            product of coordinates (z₁z₂, z₁z₂z₃) has an exact law (Bessel K₀, K₁; sum rules to 10⁻¹⁵); any other \
            continuous output is resolved in bins of width h (the noiseless limit is h → 0, approached like h²: two \
            widths are listed for z₁² and z₁² + sign(z₁z₂z₃), whose lines run along z₁, the axis of its continuous \
            variation).

            \(thresholdMarkdown)

            ## Learning hierarchy (`hierarchy.csv`)

            The directions of the uninformed fixed point (eigenvalues of M* above 10⁻⁶) from which α on; a \
            stage at α = 0 is trivial. Resolution: up to 1.4% below a continuous threshold (`Hierarchy.swift`).

            \(MarkdownTable.render(["target", "from α", "rank", "directions"], stageRows))

            ## Overlap against α (`se_curves.csv`, `gamp.csv`)

            The state evolution from M₀ = 10⁻³·I to its fixed point at each α; GAMP at d = \(dimension) (n = αd), \
            \(seeds) seeds, started at ε = \(epsilon) and run \(iterations) iterations, against the state evolution \
            after the same iterations from the same start (PlateauCompare verdicts: Bonferroni Student-t z·SE + b/d, \
            observables q = tr Q/k, m2 = tr(MᵀM)/k and Q_r_s).

            \(verdictMarkdown)

            ![thresholds and overlaps](overlap.png)

            Written by `plateau reproduce weak-recovery\(quick ? " --quick" : "")` (Plateau \(PlateauVersion.string)); the \
            wall times go to stdout only, so that a rerun writes the same bytes. `plot.ipynb` draws the figure from the CSVs.
            """ + "\n")
        result.add("plot.ipynb", Notebook([
            .markdown("# Weak recovery: state-evolution overlap against α, GAMP points\nReads `se_curves.csv`, `gamp.csv` and `thresholds.csv` written by `plateau reproduce weak-recovery`."),
            .code("""
                import pandas as pd
                import matplotlib.pyplot as plt
                se = pd.read_csv("se_curves.csv")
                gamp = pd.read_csv("gamp.csv")
                th = pd.read_csv("thresholds.csv")
                hier = pd.read_csv("hierarchy.csv")
                display(hier)
                th[["case", "target", "alpha_c", "reference", "trivial_subspace", "easy_subspace"]]
                """),
            .code("""
                fig, axes = plt.subplots(1, se["case"].nunique(), figsize=(11, 4), squeeze=False)
                for ax, (case, curve) in zip(axes[0], se.groupby("case", sort=False)):
                    ax.plot(curve["alpha"], curve["q"], "-", label="state evolution (fixed point)")
                    points = gamp[(gamp["case"] == case) & (gamp["observable"] == "q")]
                    ax.errorbar(points["alpha"], points["gamp_mean"], yerr=points["gamp_se"], fmt="o", capsize=3,
                                label="GAMP (finite d)")
                    ax.plot(points["alpha"], points["state_evolution"], "x", label="state evolution, same iterations")
                    for _, stage in hier[(hier["case"] == case) & (hier["alpha"] > 0)].iterrows():
                        ax.axvline(stage["alpha"], color="grey", ls=":", label=f"rank {stage['rank']} from α = {stage['alpha']:.3g}")
                    ax.set_xlabel("α = n/d"); ax.set_ylabel("q = tr M / k"); ax.set_title(case); ax.legend(fontsize=8)
                fig.tight_layout()
                fig.savefig("overlap.png", dpi=120)
                """),
        ]).json)
        return result
    }
}
