import ArgumentParser
import Foundation
import PlateauStudies

struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Run a grid of points (spec fields × run options) locally or as a Slurm job array; collect one tidy CSV.",
        discussion: """
        plateau sweep --spec base.yaml --grid grid.yaml --out DIR [--jobs N]
        plateau sweep ... --backend slurm [--dry-run] [--partition P --time T]
        plateau sweep collect DIR

        Grid file (YAML):
          command: ode          # ode simulate compare se threshold gamp dmft
                                # spectral
          combine: product      # product (first axis slowest) | zip
          arguments: ["--rtol", "1e-10"]   # extra arguments of every point
          axes:
            training.learningRate: [0.5, 1.0, 2.0]  # dotted: a spec field
            teacher.noise: "0:0.1:0.05"     # from:to:step, {from, to, step}
            dimension: [500, 1000]          # no dot: the option --dimension
            "teacher.k, student.p": [[2, 2], [3, 3]]   # varied together

        Every point is validated (its spec by the spec reader, its command
        line by the parser) before anything runs. A point runs in
        DIR/points/NNNNN/ (spec.yaml, the subcommand's files, done.json
        written last). Re-running skips done points; --retry-failed reruns
        failed ones. Seeds come from the point (a seed axis, or the
        subcommand's default), never from the worker or the order: the point
        files are bitwise identical for any backend and --jobs.
        """,
        subcommands: [SweepRunCommand.self, SweepCollectCommand.self, SweepRunPointCommand.self, SweepRunTaskCommand.self],
        defaultSubcommand: SweepRunCommand.self)

    /// The running executable (children and Slurm tasks run the same binary).
    static var executable: URL {
        let proc = URL(fileURLWithPath: "/proc/self/exe")
        if let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: proc.path) {
            return URL(fileURLWithPath: resolved)
        }
        return Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
    }
}

enum SweepBackend: String, ExpressibleByArgument, CaseIterable { case local, slurm }

struct SweepRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Plan, validate and run (or submit) the sweep; the default subcommand of sweep.")

    @Option(name: .long, help: ArgumentHelp("The base specification (YAML or JSON); the grid sets fields of it.", valueName: "file"))
    var spec: String

    @Option(name: .long, help: ArgumentHelp("The grid file (see `plateau sweep --help`).", valueName: "file"))
    var grid: String

    @Option(name: .long, help: ArgumentHelp("The sweep's folder (created; re-running resumes it).", valueName: "dir"))
    var out: String

    @Option(name: .long, help: "local: a pool of worker processes on this machine; slurm: an sbatch job array.")
    var backend: SweepBackend = .local

    @Option(name: .long, help: "Local backend: points run at once (default: the core count).")
    var jobs: Int = ProcessInfo.processInfo.activeProcessorCount

    @Flag(name: .customLong("retry-failed"), help: "Run failed points again (by default they are reported and left).")
    var retryFailed = false

    @Flag(name: .customLong("dry-run"), help: "Slurm: write the sbatch script without submitting it.")
    var dryRun = false

    @Option(name: .long, help: "Slurm: the partition.")
    var partition: String?

    @Option(name: .long, help: "Slurm: the time limit of one array task (e.g. 00:30:00).")
    var time: String?

    @Option(name: .long, help: "Slurm: the memory of one array task (e.g. 2G).")
    var mem: String?

    @Option(name: .customLong("cpus-per-task"), help: "Slurm: CPUs of one array task.")
    var cpusPerTask: Int = 1

    @Option(name: .customLong("sbatch-line"), help: ArgumentHelp("Slurm: an extra `#SBATCH …` line for the script header (repeatable).", valueName: "line"))
    var sbatchLines: [String] = []

    @Option(name: .customLong("points-per-task"), help: "Slurm: points run one after another by one array task (default: 1, or more when the points exceed --max-array-size).")
    var pointsPerTask: Int?

    @Option(name: .customLong("max-array-size"), help: "Slurm: the cluster's MaxArraySize (array indices 0 … N − 1).")
    var maxArraySize: Int = 1001

    @Flag(name: .customLong("in-process"), help: "Local backend: run the points one after another in this process (no child processes; the same point runner, for measuring the pool's overhead and for debugging).")
    var inProcess = false

    @Flag(name: .long, help: "No progress on stderr.")
    var quiet = false

    func validate() throws {
        if inProcess, backend == .slurm { throw ValidationError("--in-process is a local-backend option") }
        guard jobs >= 1 else { throw ValidationError("--jobs must be an integer ≥ 1 (got \(jobs))") }
        guard cpusPerTask >= 1 else { throw ValidationError("--cpus-per-task must be an integer ≥ 1 (got \(cpusPerTask))") }
        guard maxArraySize >= 1 else { throw ValidationError("--max-array-size must be an integer ≥ 1 (got \(maxArraySize))") }
        if let pointsPerTask, pointsPerTask < 1 { throw ValidationError("--points-per-task must be an integer ≥ 1 (got \(pointsPerTask))") }
        for line in sbatchLines where !line.hasPrefix("#SBATCH ") {
            throw ValidationError("--sbatch-line must start with \"#SBATCH \" (got \"\(line)\")")
        }
        if backend == .local, dryRun { throw ValidationError("--dry-run writes a Slurm script: use it with --backend slurm") }
    }

    static func read(_ path: String, _ option: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("\(option): cannot read the file \(path)") }
        return String(decoding: data, as: UTF8.self)
    }

    func run() throws {
        let started = Date()
        let folder = SweepFolder(out)
        let (baseText, gridText) = (try Self.read(spec, "--spec"), try Self.read(grid, "--grid"))
        // Resuming the same sweep: only the points about to run are built and validated again.
        let resuming = (try? folder.readPlan())?.map { $0.baseSpec == baseText && $0.grid == gridText } ?? false
        let retry = retryFailed
        let only: ((Int) -> Bool)? = resuming ? { i in
            let s = folder.status(i)
            return s == .missing || (retry && s == .failed)
        } : nil
        let planned: SweepPlanner.Result
        do {
            planned = try SweepPlanner.plan(baseSpec: baseText, gridText: gridText, only: only) { arguments in
                do { _ = try PlateauCommand.parseAsRoot(arguments) } catch {
                    throw SweepError(PlateauCommand.message(for: error))
                }
            }
        } catch let error as SweepError {
            throw ValidationError("invalid sweep: \(error)")
        }
        let prepared: (resumed: Bool, written: Int)
        do { prepared = try folder.prepare(planned.plan, points: planned.points, specs: planned.specs) } catch let error as SweepError {
            throw ValidationError("\(error)")
        }
        let statuses = (0..<planned.plan.pointCount).map(folder.status)
        let done = statuses.filter { $0 == .done }.count
        let failed = statuses.indices.filter { statuses[$0] == .failed }
        let todo = statuses.indices.filter { statuses[$0] == .missing || (retryFailed && statuses[$0] == .failed) }
        let planSeconds = Date().timeIntervalSince(started)
        print("sweep \(folder.root.path): \(planned.plan.pointCount) points (\(planned.plan.axes.joined(separator: " × "))), "
              + (prepared.resumed ? "resumed: " : "planned: ") + "\(done) done, \(failed.count) failed, \(todo.count) to run"
              + String(format: " (%.2f s)", planSeconds))
        if !retryFailed, !failed.isEmpty {
            note("\(failed.count) failed point(s) left as they are (rerun them with --retry-failed): \(failed.prefix(10).map(String.init).joined(separator: ", "))\(failed.count > 10 ? ", …" : "")")
        }
        switch backend {
        case .local: try runLocally(folder, todo)
        case .slurm: try submit(folder, todo)
        }
    }

    func runLocally(_ folder: SweepFolder, _ todo: [Int]) throws {
        guard !todo.isEmpty else { print("nothing to do"); return }
        let executable = SweepCommand.executable
        let progress = SweepProgress(total: todo.count, enabled: !quiet)
        let outcomes = inProcess ? Self.runInProcess(folder, todo, report: progress.update) : LocalPool.run(todo, jobs: jobs, body: { index in
            PointProcess.run(executable: executable, folder: folder, index: index, backend: "local")
        }, report: progress.update)
        progress.finish()
        let failures = outcomes.filter { !$0.succeeded }
        print("ran \(outcomes.count) points with \(inProcess ? 1 : min(jobs, todo.count)) \(inProcess ? "process" : "workers") in \(String(format: "%.1f", progress.elapsed)) s: "
              + "\(outcomes.count - failures.count) done, \(failures.count) failed")
        for f in failures.prefix(10) {
            note("point \(f.index) failed (\(f.signalled ? "signal" : "exit code") \(f.exitCode)): \(SweepFolder.tail(folder.failed(f.index), lines: 1)) — see \(folder.failed(f.index).path)")
        }
        if !failures.isEmpty { throw ExitCode(1) }
    }

    /// The points one after another through the same runner as `run-point`, without child processes.
    static func runInProcess(_ folder: SweepFolder, _ todo: [Int], report: (PointOutcome) -> Void) -> [PointOutcome] {
        let cwd = FileManager.default.currentDirectoryPath
        // Back to the caller's folder (each point enters its own, checked, in run-point); the sweep's files are
        // addressed by absolute paths (`SweepFolder`), so a failure here changes nothing it writes.
        defer { _ = FileManager.default.changeCurrentDirectoryPath(cwd) }
        return todo.map { index in
            let start = Date()
            try? FileManager.default.removeItem(at: folder.failed(index))
            var outcome = PointOutcome(index: index, succeeded: true, exitCode: 0, signalled: false, seconds: 0)
            do { try SweepRunPointCommand.run(folder, index: index, backend: "in-process") } catch {
                outcome.succeeded = false
                outcome.exitCode = PlateauCommand.exitCode(for: error).rawValue
                let record: [String: Any] = ["index": index, "backend": "in-process", "exit_code": Int(outcome.exitCode), "signal": 0,
                                             "stderr_tail": PlateauCommand.message(for: error), "host": ProcessInfo.processInfo.hostName]
                try? SweepFolder.write(SweepFolder.json(record), to: folder.failed(index))
            }
            outcome.seconds = Date().timeIntervalSince(start)
            report(outcome)
            return outcome
        }
    }

    func submit(_ folder: SweepFolder, _ todo: [Int]) throws {
        guard !todo.isEmpty else { print("nothing to submit"); return }
        if !dryRun {
            let queued = SlurmArray.queued(jobs: SlurmArray.submittedJobs(folder: folder))
            guard queued.isEmpty else {
                throw ValidationError("an earlier submission of this sweep is still in the queue (\(queued.prefix(4).joined(separator: "; "))): wait for it or scancel it, then resubmit")
            }
        }
        var options = SlurmArray.Options()
        options.partition = partition
        options.time = time
        options.memory = mem
        options.cpusPerTask = cpusPerTask
        options.extraLines = sbatchLines
        options.pointsPerTask = pointsPerTask
        options.maxArraySize = maxArraySize
        let submission = try SlurmArray.write(folder: folder, indices: todo, executable: SweepCommand.executable, options: options)
        if dryRun {
            print("wrote \(submission.script.path) (\(todo.count) points in \(submission.tasks.count) array tasks); not submitted (--dry-run)")
            return
        }
        let job = try SlurmArray.submit(submission, folder: folder)
        print("submitted job \(job): \(todo.count) points in \(submission.tasks.count) array tasks (\(submission.script.path))")
        print("then: squeue -j \(job); plateau sweep collect \(folder.root.path)")
    }
}

/// "sweep: 42/100 points, 40 done, 2 failed, 12 s elapsed, ~20 s left", about once a second.
final class SweepProgress: @unchecked Sendable {
    private let total: Int
    private let enabled: Bool
    private let start = Date()
    private var last = Date.distantPast
    private var done = 0, failed = 0
    var elapsed: Double { Date().timeIntervalSince(start) }

    init(total: Int, enabled: Bool) {
        self.total = total
        self.enabled = enabled
    }

    /// Called serialised by the pool.
    func update(_ outcome: PointOutcome) {
        if outcome.succeeded { done += 1 } else { failed += 1 }
        let now = Date()
        guard enabled, now.timeIntervalSince(last) >= 1 || done + failed == total else { return }
        last = now
        line()
    }

    private func line() {
        let finished = done + failed
        let left = finished > 0 ? elapsed / Double(finished) * Double(total - finished) : .nan
        note(String(format: "sweep: %d/%d points, %d done, %d failed, %.0f s elapsed, ~%.0f s left", finished, total, done, failed, elapsed, left))
    }

    func finish() {}
}

struct SweepCollectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collect",
        abstract: "Gather every done point's main file into one tidy CSV, and index done, failed and missing points.",
        discussion: """
        Writes DIR/sweep.csv: columns point, the grid's axes, then the columns
        of each done point's main file (ode trajectory.csv; simulate and gamp
        summary.csv; compare agreement.csv; se se.csv; threshold the numbers
        of threshold.json; dmft dmft.csv; spectral spectral.csv), one row per
        row of that file; a column a point lacks is left empty. And
        DIR/index.json: counts; done, failed (exit code, end of stderr) and
        missing points.
        """)

    @Argument(help: "The sweep's folder.")
    var folder: String

    @Option(name: .long, help: "Collect this file of every point instead of the main one (e.g. seeds.csv).")
    var file: String?

    @Option(name: .long, help: ArgumentHelp("Keep only these columns of the points' files (comma-separated; the point and grid columns are always kept).", valueName: "names"))
    var columns: String?

    @Option(name: .long, help: ArgumentHelp("Where to write the CSV (default DIR/sweep.csv).", valueName: "file"))
    var output: String?

    func run() throws {
        let started = Date()
        let sweep = SweepFolder(folder)
        let result: SweepCollect.Result
        let keep = columns.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        do { result = try SweepCollect.collect(sweep, file: file, columns: keep) } catch let error as SweepError {
            throw ValidationError("\(error)")
        }
        let csvURL = output.map { URL(fileURLWithPath: $0) } ?? sweep.root.appendingPathComponent("sweep.csv")
        try SweepFolder.write(Data(result.csv.utf8), to: csvURL)
        try SweepFolder.write(result.index, to: sweep.root.appendingPathComponent("index.json"))
        print("collected \(result.done.count) done points (\(result.rows) rows) → \(csvURL.path)"
              + String(format: " in %.2f s", Date().timeIntervalSince(started)))
        print("\(result.failed.count) failed, \(result.missing.count) missing → \(sweep.root.appendingPathComponent("index.json").path)")
        if !result.failed.isEmpty {
            print("failed: \(result.failed.prefix(20).map(String.init).joined(separator: ", "))\(result.failed.count > 20 ? ", …" : "") (plateau sweep … --retry-failed reruns them)")
        }
        if !result.missing.isEmpty {
            let queued = SlurmArray.queued(jobs: SlurmArray.submittedJobs(folder: sweep))
            print("missing: \(result.missing.prefix(20).map(String.init).joined(separator: ", "))\(result.missing.count > 20 ? ", …" : "")"
                  + (queued.isEmpty ? "" : "; still in the Slurm queue: \(queued.prefix(4).joined(separator: "; "))"))
        }
    }
}

/// One point, in this process: the same code for the local pool's children and Slurm's tasks.
struct SweepRunPointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run-point", abstract: "Run one point of a planned sweep (used by the backends).", shouldDisplay: false)

    @Argument var folder: String
    @Option var index: Int
    @Option var backend: String = "local"

    func run() throws {
        try Self.run(SweepFolder(folder), index: index, backend: backend)
    }

    /// Runs the point's subcommand in this process with the point's folder as the working
    /// directory, moves wall-clock fields to the log, and writes done.json last.
    static func run(_ sweep: SweepFolder, index: Int, backend: String) throws {
        let started = Date()
        let point: SweepPoint
        do { point = try sweep.readPoint(index) } catch let error as SweepError { throw ValidationError("\(error)") }
        let pointFolder = sweep.point(index)
        try? FileManager.default.removeItem(at: sweep.done(index))
        guard FileManager.default.changeCurrentDirectoryPath(pointFolder.path) else {
            throw ValidationError("cannot enter \(pointFolder.path)")
        }
        var command = try PlateauCommand.parseAsRoot(point.arguments)
        try command.run()
        // Move wall-clock measurements out of the point's JSON records.
        let fm = FileManager.default
        let names = try fm.contentsOfDirectory(atPath: pointFolder.path).filter { !$0.hasPrefix(".") }.sorted()
        var wallClock: [String: [String]] = [:]
        for name in names where name.hasSuffix(".json") && name != "point.json" && name != "done.json" {
            let url = pointFolder.appendingPathComponent(name)
            let text = try String(contentsOf: url, encoding: .utf8)
            let stripped = WallClock.strip(text)
            if !stripped.removed.isEmpty {
                try SweepFolder.write(Data(stripped.text.utf8), to: url)
                wallClock[name] = stripped.removed
            }
        }
        let log: [String: Any] = [
            "index": index, "backend": backend, "seconds": Date().timeIntervalSince(started),
            "host": ProcessInfo.processInfo.hostName, "wall_clock": wallClock,
        ]
        try SweepFolder.write(SweepFolder.json(log), to: sweep.log(index, "json"))
        let marker: [String: Any] = ["index": index, "files": names.filter { $0 != "done.json" && $0 != "failed.json" }]
        try SweepFolder.write(SweepFolder.json(marker), to: sweep.done(index))
    }
}

/// One Slurm array task: its points, one after another, each through `PointProcess`.
struct SweepRunTaskCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run-task", abstract: "Run the points of one Slurm array task (used by the sbatch script).", shouldDisplay: false)

    @Argument var folder: String
    @Option var tasks: String
    @Option var task: Int

    func run() throws {
        let sweep = SweepFolder(folder)
        let indices: [Int]
        do { indices = try SlurmArray.points(taskFile: URL(fileURLWithPath: tasks), task: task) } catch let error as SweepError {
            throw ValidationError("\(error)")
        }
        var failed: [Int] = []
        for index in indices where sweep.status(index) != .done {
            let outcome = PointProcess.run(executable: SweepCommand.executable, folder: sweep, index: index, backend: "slurm")
            print("point \(index): \(outcome.succeeded ? "done" : "failed (exit \(outcome.exitCode))") in \(String(format: "%.2f", outcome.seconds)) s")
            if !outcome.succeeded { failed.append(index) }
        }
        if !failed.isEmpty {
            note("task \(task): points \(failed.map(String.init).joined(separator: ", ")) failed (see their failed.json)")
            throw ExitCode(1)
        }
    }
}
