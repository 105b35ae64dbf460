import ArgumentParser
import Foundation
import PlateauCompare
import PlateauCore
import PlateauSimulation
import PlateauStudies
import PlateauTheory

extension SpectralTeacher: ExpressibleByArgument {}

/// `plateau spectral`: the optimal spectral estimators L and T over an α grid, in theory and at finite d.
struct SpectralCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spectral",
        abstract: "Optimal spectral estimators of a multi-index model (asymmetric L, symmetric T): overlaps, outliers, bulk edges.",
        discussion: """
        d = ∞ (EQUATIONS.md §2.1): for each α the squared overlap m² of the top eigenvector's estimator
        with the index subspace for L = (X̃X̃ᵀ ⊗ I − I)Ĝ and T = (1/d)Σ xxᵀ ⊗ 𝒯(y), L's outlier α/α_c and
        bulk radius √(α/α_c), T's bulk edge (T's outlier is 1 above α_c). With --preprocessing p(y) the
        plain matrix (1/n)Σ p(y) xxᵀ is added (its overlap, outlier and bulk edge).
        With --dimension d the same quantities are measured on n = αd samples over --seeds seeds (L by
        block subspace iteration with Rayleigh–Ritz, never formed; T by LAPACK dsyevr) and the overlaps
        are compared with the theory through PlateauCompare (α is the comparison's time axis; a
        degenerate outlier is compared as the mean over its group). Writes spectral.csv and report.json.
        Example: plateau spectral --spec spec.yaml --alpha 0.5:4:0.5 --dimension 1000 --seeds 4
        """)

    @OptionGroup var common: EstimationOptions

    @Option(name: .long, help: "α = n/d: one value, start:stop:step, or a comma-separated list. Default: training.alpha of the spec.")
    var alpha: String?

    @Option(name: .long, help: "Input dimension d of the finite-d measurement (none: theory only).")
    var dimension: Int?

    @Option(name: .long, help: "Seeds of the finite-d measurement.")
    var seeds: Int = 4

    @Option(name: .long, help: "Master seed.")
    var seed: UInt64 = 1

    @Option(name: .long, help: "Teacher rows: gaussian (i.i.d.) or orthonormal (W*W*ᵀ/d = I exactly; use it for eigenvalue locations).")
    var teacher: SpectralTeacher = .gaussian

    @Option(name: .long, help: ArgumentHelp("A scalar preprocessing p(y) (an expression in y, e.g. \"1 - 1/y\" or \"max(y, 0)\") for the plain matrix (1/n)Σ p(y) xxᵀ.", valueName: "expr"))
    var preprocessing: String?

    @Option(name: .long, help: ArgumentHelp("Which optimal estimators: L,T (default) or L (L is always computed). T needs 𝒯 = I − E[zzᵀ | y]⁻¹: a target where it is undefined is refused unless only L is asked for.", valueName: "list"))
    var estimators: String = "L,T"

    @OptionGroup var control: RunOptions

    func run() throws {
        WorkerThreads.limit = control.threads
        let problem = try common.problem()
        let alphas: [Double]
        if let alpha { alphas = try AlphaGrid.parse(alpha) } else if let a = problem.alpha { alphas = [a] } else {
            throw ValidationError("no α: give --alpha or training.alpha in the spec")
        }
        var p: Formula?
        if let preprocessing {
            do { p = try Formula(parsing: preprocessing, variables: .preprocessing) } catch let e as ExpressionError {
                throw ValidationError("--preprocessing: \(e.summary) in \"\(preprocessing)\"")
            }
        }
        let chosen = estimators.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard chosen.contains("L"), chosen.allSatisfy({ $0 == "L" || $0 == "T" }) else {
            throw ValidationError("--estimators: \"\(estimators)\" must be L,T or L (L is always computed)")
        }
        let symmetric = chosen.contains("T")
        var options: SpectralOptions?
        if let dimension {
            guard seeds >= 1 else { throw ValidationError("--seeds must be an integer ≥ 1 (got \(seeds))") }
            let o = SpectralOptions(dimension: dimension, seeds: seeds, masterSeed: seed, teacher: teacher, threads: control.threads)
            for a in alphas {
                do { try o.validate(problem: problem, alpha: a) } catch let e as SpecError { throw ValidationError("\(e)") }
            }
            options = o
        }
        let writer = try common.writer(default: "spectral")
        try control.run(out: writer.folder.path, command: "spectral", spec: problem.specJSON) {
            try run(problem: problem, alphas: alphas, options: options, preprocessing: p, symmetric: symmetric, writer: writer)
        }
    }

    func run(problem: EstimationProblem, alphas: [Double], options: SpectralOptions?, preprocessing p: Formula?, symmetric: Bool,
             writer: ResultWriter) throws {
        let started = Date()
        let progress = Progress("spectral", parts: 1, enabled: !common.quiet && dimension != nil)
        let scan: SpectralScan
        do {
            scan = try SpectralScan.run(problem: problem, alphas: alphas, options: options, preprocessing: p,
                                        symmetric: symmetric) { progress.update(part: 0, fraction: $0) }
        } catch let e as SpecError { throw ValidationError("\(e)") }
        progress.done()
        try writer.write("spectral.csv", scan.csv())
        // The wall time goes to stdout only: the files are the same bytes on a rerun or a resume.
        let seconds = Date().timeIntervalSince(started)
        var report: [String: Any] = [
            "spec": problem.specTree, "version": PlateauVersion.string, "points": scan.records(),
            "alpha_c": scan.alphaC, "outliers": scan.outlierMultiplicity,
        ]
        if let note = scan.symmetricNote { report["T"] = note }
        if let m = scan.preprocessingMinimum { report["T_preprocessing_minimum"] = m }
        if let options {
            report["dimension"] = options.dimension
            report["seeds"] = options.seeds
            report["teacher"] = options.teacher.rawValue
        }
        if let r = scan.report {
            report["agreement"] = ["agrees": r.agreesEverywhere, "critical_value": r.criticalValue, "rms_deviation": r.rmsDeviation,
                                   "summary": r.summary, "finite_size_allowance_b": r.criterion.finiteSizeAllowance,
                                   "theory_tolerance": r.criterion.integratorTolerance]
        }
        try writer.write("report.json", JSON.string(report))
        switch common.format {
        case .json:
            var out: [String: Any] = ["points": scan.records(), "alpha_c": scan.alphaC, "wall_seconds": seconds]
            if let r = scan.report { out["agrees"] = r.agreesEverywhere }
            print(JSON.string(out), terminator: "")
        case .table:
            print("spectral estimators: \(problem.target) (k = \(problem.k), Δ = \(problem.noise)); α_c = \(Trajectory.format(scan.alphaC)), "
                  + "\(scan.outlierMultiplicity) informative outlier\(scan.outlierMultiplicity == 1 ? "" : "s")")
            if let note = scan.symmetricNote { print("T: \(note)") }
            if let m = scan.preprocessingMinimum, m < -10 {
                print("T: 𝒯(y) is unbounded below (smallest eigenvalue \(Trajectory.format(m))); not clipped (dense solver)")
            }
            let sim = !scan.seeds.isEmpty
            print(String(format: "%8@ %9@ %9@ %9@ %9@ %9@", "alpha", "m2_L", "m2_T", "outlier_L", "radius_L", "edge_T")
                  + (sim ? String(format: " %16@ %16@", "m2_L (d)", "m2_T (d)") : ""))
            for (i, pt) in scan.theory.enumerated() {
                var line = String(format: "%8.4g %9.5f %9@ %9.4f %9.4f %9@", pt.alpha, pt.m2L, pt.m2T.map { String(format: "%.5f", $0) } ?? "—",
                                  pt.outlierL, pt.bulkRadiusL, pt.bulkEdgeT.map { String(format: "%.4f", $0) } ?? "—")
                if sim {
                    let l = scan.statistics(i) { $0.m2LGroup }, t = scan.statistics(i) { $0.m2TGroup }
                    line += String(format: " %8.4f ± %5.4f", l.mean, l.se.isFinite ? l.se : 0)
                    line += t.mean.isFinite ? String(format: " %8.4f ± %5.4f", t.mean, t.se.isFinite ? t.se : 0) : "                —"
                }
                print(line)
            }
            if let r = scan.report { print(r.summary) }
            print("wrote \(writer.path("spectral.csv")) and report.json (\(String(format: "%.2f", seconds)) s)")
        }
    }
}
