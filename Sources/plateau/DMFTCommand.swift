import ArgumentParser
import Foundation
import PlateauCompare
import PlateauCore
import PlateauTheory

extension DMFTNoise: ExpressibleByArgument {}

enum DMFTMethod: String, ExpressibleByArgument, CaseIterable {
    /// The exact Gaussian path when it applies (linear student, square loss, linear target), else Monte Carlo.
    case auto
    case gaussian
    case montecarlo = "monte-carlo"
}

struct DMFTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dmft",
        abstract: "DMFT of multi-pass GD with sample reuse (training.protocol: multipass): m, Q, train loss and test risk per GD step.",
        discussion: """
        Solves the effective single-sample process of EQUATIONS.md §3 forward in time with S Monte-Carlo
        particles (training.particles, or --particles), split into --replicas independent populations run in
        parallel; every output carries its Monte-Carlo standard error (the replicas' spread / √replicas).
        With a linear student, square loss and a linear target the process is Gaussian and is solved exactly
        (--method auto picks that path; standard errors are then 0).
        Writes dmft.csv (t and, per observable, NAME and NAME_se: M_j_r, Q_j_l, risk, train_loss, a_j, cos_j_r),
        kernels.csv (the effective regularisation Λ(t) = λI + Γ(t, t), Lambda_j_l and _se) and report.json
        to --out (default results/dmft). The risk is the population risk ½E[(f − y)²] + Δ/2 of (m, Q).

        Sample specification:

        \(MultipassSettings.sampleYAML)
        """)

    @OptionGroup var common: SpecOptions

    @OptionGroup var dmft: DMFTArguments

    @Option(name: .long, help: "Worker threads for the replicas (0: one per core). Results are bitwise the same for any number.")
    var threads: Int = 0

    func validate() throws {
        guard threads >= 0 else { throw ValidationError("--threads must be an integer ≥ 0 (got \(threads))") }
    }

    func run() throws {
        WorkerThreads.limit = threads
        let experiment = try common.experiment()
        guard experiment.multipass != nil else {
            throw ValidationError("training.protocol: plateau dmft needs a multipass spec (--spec FILE with training.protocol: multipass)")
        }
        let writer = try common.writer(default: "dmft")
        let start = Date()
        let (solved, result) = try dmft.solve(experiment, seed: common.seed, quiet: common.quiet)
        let seconds = Date().timeIntervalSince(start)
        try writer.write("dmft.csv", SimulationRun.summaryCSV(result.mean, result.standardError))
        try writer.write("kernels.csv", Self.kernelsCSV(result))
        let report: [String: Any] = [
            "plateau_version": PlateauVersion.string,
            "command": "dmft",
            "spec": solved.experiment.specTree,
            "method": result.method,
            "particles": result.particles,
            "replicas": result.replicas,
            "noise": dmft.noise.rawValue,
            "master_seed": common.seed,
            "time_axis": "t = GD step (multi-pass, n = αd reused samples)",
            "risk_definition": "½E[(g − f)²] + Δ/2 of the overlaps (m, Q) (population risk including label noise)",
            "mean": JSON.trajectory(result.mean),
            "standard_error": JSON.trajectory(result.standardError),
        ]
        // The wall time goes to stdout only: the files are the same bytes on a rerun.
        try writer.write("report.json", JSON.string(report))
        if common.format == .json {
            var shown = report
            shown["seconds"] = seconds
            print(JSON.string(shown), terminator: "")
            return
        }
        print("DMFT (\(result.method), \(result.particles) particles, \(result.replicas) replicas) in \(String(format: "%.2f", seconds)) s")
        let columns = ["risk", "train_loss"] + result.mean.observables.filter { $0.hasPrefix("M_") }
        let rows = result.mean.times.indices.map { i -> [String] in
            [Table.fmt(result.mean.times[i])] + columns.map { name in
                let c = result.mean.observables.firstIndex(of: name)!
                return Table.fmt(result.mean.values[i][c]) + " ± " + Table.fmt(result.standardError.values[i][c])
            }
        }
        print(Table.render(header: ["t"] + columns, rows: rows))
        if result.mean.status != .completed { note("warning: \(result.mean.status.rawValue): \(result.mean.message)") }
        print("wrote \(writer.path("dmft.csv")), \(writer.path("kernels.csv")), \(writer.path("report.json"))")
    }

    static func kernelsCSV(_ result: DMFTResult) -> String {
        guard let first = result.effectiveRegularisation.first else { return "t\n" }
        let p = first.rows
        var names: [String] = []
        for j in 1...p { for l in 1...p { names += ["Lambda_\(j)_\(l)", "Lambda_\(j)_\(l)_se"] } }
        var out = (["t"] + names).joined(separator: ",") + "\n"
        for (t, (m, s)) in zip(result.effectiveRegularisation, result.effectiveRegularisationError).enumerated() {
            var row = ["\(t)"]
            for j in 0..<p { for l in 0..<p { row += [Trajectory.format(m[j, l]), Trajectory.format(s[j, l])] } }
            out += row.joined(separator: ",") + "\n"
        }
        return out
    }
}

/// The DMFT's options, shared by `dmft` and `compare`.
struct DMFTArguments: ParsableArguments {
    @Option(name: .long, help: "Override training.particles (the total number of Monte-Carlo particles S).")
    var particles: Int?

    @Option(name: .long, help: "Independent particle populations (their spread gives the standard errors).")
    var replicas: Int = DMFTOptions().replicas

    @Option(name: .customLong("block-size"), help: "Particles per block of the BLAS products.")
    var blockSize: Int = DMFTOptions().blockSize

    @Option(name: .long, help: "auto (the exact Gaussian path when it applies), gaussian, or monte-carlo.")
    var method: DMFTMethod = .auto

    @Option(name: .long, help: "causal (the block-Cholesky noise of EQUATIONS.md §3) or redrawn (negative control: time correlations dropped).")
    var noise: DMFTNoise = .causal

    func validate() throws {
        if let particles, particles < 2 { throw ValidationError("--particles must be an integer ≥ 2 (got \(particles))") }
        guard replicas >= 2 else { throw ValidationError("--replicas must be an integer ≥ 2 (got \(replicas))") }
        guard blockSize >= 1 else { throw ValidationError("--block-size must be an integer ≥ 1 (got \(blockSize))") }
    }

    func options(seed: UInt64) -> DMFTOptions {
        DMFTOptions(particles: particles, replicas: replicas, seed: seed, blockSize: blockSize, noise: noise)
    }

    /// The DMFT of a multipass experiment by the chosen method.
    func solve(_ experiment: Experiment, seed: UInt64, quiet: Bool) throws -> (MultipassDMFT, DMFTResult) {
        do {
            let dmft = try MultipassDMFT(experiment)
            let gaussian = method == .gaussian || (method == .auto && dmft.isGaussian && noise == .causal)
            if gaussian { return (dmft, try dmft.gaussianPath()) }
            let progress = Progress("dmft", parts: 1, enabled: !quiet)
            let result = try dmft.run(options(seed: seed)) { progress.update(part: 0, fraction: $0) }
            progress.done()
            return (dmft, result)
        } catch let error as SpecError {
            throw ValidationError("invalid DMFT settings: \(error)")
        }
    }
}
