import Foundation
import PlateauCompare
import PlateauCore
import PlateauSimulation
import PlateauTheory

/// `plateau reproduce spectral-transition`: the BBP-like transition of the optimal spectral estimators
/// at the state-evolution threshold α_c (Defilippis, Dandi, Mergny, Krzakala, Loureiro 2025;
/// `../shared/reference/spectral.md`): m²_L and m²_T against α for phase retrieval and z₁z₂, theory
/// lines over finite-d points, and the spectrum of L in the complex plane below and above α_c.
public struct SpectralTransitionStudy: Reproduction {
    public init() {}

    public var name: String { "spectral-transition" }
    public var title: String { "Optimal spectral estimators L and T: overlap against α (theory and finite d), L's spectrum below and above α_c" }
    public var reproduces: String {
        "Defilippis, Dandi, Mergny, Krzakala, Loureiro 2025 (optimal spectral transitions in multi-index models); shared/reference/spectral.md"
    }

    struct Case: Sendable {
        var label: String
        var target: String
        var k: Int
        var theoryAlphas: [Double]
        var finiteAlphas: [Double]
        var dimension: Int
    }

    static func problem(_ c: Case) -> EstimationProblem {
        EstimationProblem(teacher: TeacherSpec(link: try! Formula(parsing: c.target, variables: .target(k: c.k))))
    }

    public func run(_ settings: ReproductionSettings, progress: @escaping ReproductionProgress) throws -> ReproductionResult {
        try settings.validate()
        let started = Date()
        let quick = settings.quick
        let grid = stride(from: 0.25, through: 8.0, by: 0.25).map { $0 }
        let cases = [
            Case(label: "phase retrieval", target: "z1^2", k: 1, theoryAlphas: quick ? [0.25, 1, 2] : grid,
                 finiteAlphas: quick ? [0.25, 2] : [0.25, 1, 2, 4, 8], dimension: settings.dimensions?.first ?? (quick ? 150 : 2000)),
            // --quick: the discrete sign(z₁z₂) in place of z₁z₂ (whose binned channel alone takes ~15 s).
            quick ? Case(label: "sign(z1 z2)", target: "sign(z1*z2)", k: 2, theoryAlphas: [2, 8], finiteAlphas: [8], dimension: settings.dimensions?.first ?? 100)
                : Case(label: "z1 z2", target: "z1*z2", k: 2, theoryAlphas: grid.filter { $0 <= 6 }, finiteAlphas: [0.4, 1, 2, 4],
                       dimension: settings.dimensions?.first ?? 1000),
        ]
        let seeds = settings.seeds ?? (quick ? 2 : 4)
        var scans: [(Case, SpectralScan, SpectralScan)] = []
        for (i, c) in cases.enumerated() {
            progress("theory: \(c.label)", 0)
            let theory = try SpectralScan.run(problem: Self.problem(c), alphas: c.theoryAlphas, options: nil)
            let options = SpectralOptions(dimension: c.dimension, seeds: seeds, masterSeed: SeedSequence.seed(master: settings.masterSeed, index: i))
            let finite = try SpectralScan.run(problem: Self.problem(c), alphas: c.finiteAlphas, options: options) {
                progress("finite d: \(c.label)", $0)
            }
            scans.append((c, theory, finite))
        }
        // L's spectrum for phase retrieval, below and above α_c = 1/2 (orthonormal teacher, one seed).
        progress("spectrum of L", 0)
        let pr = cases[0], problem = Self.problem(pr)
        let channel = try OutputChannel(problem: problem)
        let spectrumDimension = quick ? 100 : 800
        var spectra: [(Double, [(re: Double, im: Double)])] = []
        for alpha in [0.3, 2.0] {
            spectra.append((alpha, try SpectralSimulator.spectrumL(problem: problem, alpha: alpha, denoiser: channel, dimension: spectrumDimension,
                                                                    seed: SeedSequence.seed(master: settings.masterSeed, index: 99))))
        }
        return Self.files(scans: scans, spectra: spectra, spectrumDimension: spectrumDimension, seeds: seeds, quick: quick,
                          seconds: Date().timeIntervalSince(started))
    }

    static func files(scans: [(Case, SpectralScan, SpectralScan)], spectra: [(Double, [(re: Double, im: Double)])], spectrumDimension: Int,
                      seeds: Int, quick: Bool, seconds: Double) -> ReproductionResult {
        var result = ReproductionResult()
        var theory = CSVTable(columns: ["case", "target", "alpha", "alpha_c", "m2_L", "m2_T", "outlier_L", "bulk_radius_L", "bulk_edge_T"])
        var finite = CSVTable(columns: ["case", "target", "dimension", "alpha", "observable", "theory", "mean", "se", "threshold", "agrees"])
        var rows: [[String]] = []
        for (c, th, fd) in scans {
            for p in th.theory {
                theory.append([c.label, c.target, p.alpha, th.alphaC, p.m2L, p.m2T ?? .nan, p.outlierL, p.bulkRadiusL, p.bulkEdgeT ?? .nan])
            }
            if let report = fd.report {
                for cmp in report.comparisons {
                    finite.append([c.label, c.target, c.dimension, cmp.time, cmp.observable, cmp.theory, cmp.simulationMean,
                                   cmp.simulationStandardError, cmp.threshold, cmp.agrees])
                    rows.append([c.label, "\(c.dimension)", MarkdownTable.number(cmp.time, 3), cmp.observable, MarkdownTable.number(cmp.theory, 4),
                                 MarkdownTable.number(cmp.simulationMean, 4) + " ± " + MarkdownTable.number(cmp.simulationStandardError, 2),
                                 cmp.agrees ? "agrees" : "DISAGREES"])
                }
            }
            result.addSpec(WeakRecoveryStudy.specName(c.label), problem(c),
                           comment: "\(c.label): plateau spectral --spec specs/\(WeakRecoveryStudy.specName(c.label)).yaml --alpha 0.25:8:0.25")
        }
        result.add("theory.csv", theory)
        result.add("finite_d.csv", finite)
        var spectrum = CSVTable(columns: ["alpha", "dimension", "re", "im"])
        for (alpha, values) in spectra { for v in values { spectrum.append([alpha, spectrumDimension, v.re, v.im]) } }
        result.add("spectrum_L.csv", spectrum)
        let table = MarkdownTable.render(["target", "d", "α", "overlap", "theory", "finite d (mean ± SE)", "verdict"], rows)
        let tops = spectra.map { alpha, values in
            "α = \(alpha): top Re λ(L) = \(MarkdownTable.number(values.first?.re ?? .nan, 4)); theory: bulk radius √(α/α_c) = "
                + "\(MarkdownTable.number((alpha / 0.5).squareRoot(), 4))"
                + (alpha > 0.5 ? ", outlier α/α_c = \(MarkdownTable.number(alpha / 0.5, 4))" : ", no outlier (α < α_c = ½)")
        }
        result.summary = table + "\n" + tops.joined(separator: "\n") + "\n" + String(format: "wall time %.1f s\n", seconds)
        result.add("README.md", """
            # The spectral transition of multi-index models at α_c

            Reproduces the optimal spectral estimators of Defilippis, Dandi, Mergny, Krzakala, Loureiro (2025) in \
            the convention of EQUATIONS.md §2.1: the asymmetric L = (X̃X̃ᵀ ⊗ I − I)Ĝ and the symmetric \
            T = (1/d)Σ xxᵀ ⊗ 𝒯(y) both recover the index subspace exactly from the state-evolution threshold α_c on.
            \(quick ? "\n- QUICK RUN (--quick): tiny sizes for tests; the numbers are not the study's.\n" : "")
            ## Overlap against α (`theory.csv`, `finite_d.csv`)

            Theory lines from `plateau spectral`; finite-d points (mean ± SE over \(seeds) seeds, n = αd) with the \
            PlateauCompare verdict (Bonferroni z·SE + b/d, b = \(MarkdownTable.number(SpectralScan.finiteSizeAllowance, 3)); a degenerate \
            outlier, as z₁z₂'s pair, compared as its group mean).

            \(table)

            ## The spectrum of L (`spectrum_L.csv`)

            Phase retrieval at d = \(spectrumDimension), one seed, orthonormal teacher: every eigenvalue of L (formed \
            densely only for this figure). Below α_c the spectrum stays in the disk of radius √(α/α_c); above, the \
            real outlier α/α_c leaves it.

            \(tops.map { "- " + $0 }.joined(separator: "\n"))

            ![overlaps and spectra](spectral.png)

            Written by `plateau reproduce spectral-transition\(quick ? " --quick" : "")` (Plateau \(PlateauVersion.string)); the \
            wall time goes to stdout only, so that a rerun writes the same bytes. `plot.ipynb` draws the figure from the CSVs.
            """ + "\n")
        result.add("plot.ipynb", Notebook([
            .markdown("# Spectral transition: m² of L and T against α, and L's spectrum\nReads `theory.csv`, `finite_d.csv` and `spectrum_L.csv` written by `plateau reproduce spectral-transition`."),
            .code("""
                import numpy as np
                import pandas as pd
                import matplotlib.pyplot as plt
                th = pd.read_csv("theory.csv")
                fd = pd.read_csv("finite_d.csv")
                sp = pd.read_csv("spectrum_L.csv")
                fd
                """),
            .code("""
                cases = list(th["case"].unique())
                fig, axes = plt.subplots(1, len(cases) + 2, figsize=(17, 4))
                for ax, case in zip(axes, cases):
                    t = th[th["case"] == case]
                    for obs, color in [("m2_L", "C0"), ("m2_T", "C1")]:
                        ax.plot(t["alpha"], t[obs], "-", color=color, label=f"{obs} (d = ∞)")
                        p = fd[(fd["case"] == case) & (fd["observable"] == obs)]
                        ax.errorbar(p["alpha"], p["mean"], yerr=p["se"], fmt="o", color=color, capsize=3,
                                    label=f"{obs} (d = {p['dimension'].iloc[0] if len(p) else '?'})")
                    ax.axvline(t["alpha_c"].iloc[0], color="grey", ls=":", label="α_c")
                    ax.set_xlabel("α = n/d"); ax.set_ylabel("m²"); ax.set_title(case); ax.legend(fontsize=7)
                for ax, (alpha, s) in zip(axes[len(cases):], sp.groupby("alpha")):
                    ax.plot(s["re"], s["im"], ".", ms=2)
                    r = np.sqrt(alpha / 0.5)
                    phi = np.linspace(0, 2 * np.pi, 200)
                    ax.plot(r * np.cos(phi), r * np.sin(phi), "k--", lw=0.8, label="√(α/α_c)")
                    if alpha > 0.5:
                        ax.plot([alpha / 0.5], [0], "rx", ms=10, label="α/α_c")
                    ax.set_aspect("equal"); ax.set_title(f"spectrum of L, phase retrieval, α = {alpha}"); ax.legend(fontsize=7)
                fig.tight_layout()
                fig.savefig("spectral.png", dpi=120)
                """),
        ]).json)
        return result
    }
}
