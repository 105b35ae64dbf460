import Foundation

/// The Slurm backend: one sbatch job array per submission, whose task i runs the points listed on
/// line i of the submission's task file (`plateau sweep run-task DIR --tasks FILE --task i`, which
/// runs each point through `PointProcess`, as the local pool does). Only points not done (and, with
/// retry, failed ones) are submitted, so resubmitting after a cancelled or failed task submits just
/// what is missing. Facts measured on a real single-node Slurm: ../shared/reference/slurm.md.
public enum SlurmArray {
    public struct Options: Sendable {
        public var partition: String?
        public var time: String?
        public var memory: String?
        public var cpusPerTask: Int = 1
        /// Extra lines copied into the script's header (each a `#SBATCH …` line).
        public var extraLines: [String] = []
        /// The most points per array task (nil: as few per task as MaxArraySize allows).
        public var pointsPerTask: Int?
        /// Slurm's MaxArraySize: task ids run from 0 to maxArraySize − 1.
        public var maxArraySize: Int = 1001
        public init() {}
    }

    public struct Submission: Sendable {
        public var number: Int
        public var script: URL
        public var taskFile: URL
        public var tasks: [[Int]]
    }

    /// The points split into at most `maxArraySize` contiguous chunks of at most `pointsPerTask`.
    public static func chunks(_ indices: [Int], options: Options) -> [[Int]] {
        guard !indices.isEmpty else { return [] }
        let needed = (indices.count + options.maxArraySize - 1) / options.maxArraySize
        let size = max(needed, options.pointsPerTask ?? 1)
        return stride(from: 0, to: indices.count, by: size).map { Array(indices[$0..<min($0 + size, indices.count)]) }
    }

    /// Writes submission-NNN.sbatch and its task file into DIR/slurm (numbered after the existing ones).
    public static func write(folder: SweepFolder, indices: [Int], executable: URL, options: Options) throws -> Submission {
        try FileManager.default.createDirectory(at: folder.slurm, withIntermediateDirectories: true)
        var number = 1
        while FileManager.default.fileExists(atPath: folder.slurm.appendingPathComponent(String(format: "submission-%03d.sbatch", number)).path) {
            number += 1
        }
        let name = String(format: "submission-%03d", number)
        let tasks = chunks(indices, options: options)
        let taskFile = folder.slurm.appendingPathComponent("\(name).tasks")
        try SweepFolder.write(Data(tasks.map { $0.map(String.init).joined(separator: " ") + "\n" }.joined().utf8), to: taskFile)
        var lines = [
            "#!/bin/bash",
            "# plateau sweep \(folder.root.path): \(indices.count) points in \(tasks.count) array tasks (line i of \(name).tasks: task i's points)",
            "#SBATCH --job-name=plateau-sweep",
            "#SBATCH --array=0-\(tasks.count - 1)",
            "#SBATCH --output=\(quote(folder.slurm.appendingPathComponent("\(name)-%a.out").path, forDirective: true))",
            "#SBATCH --ntasks=1",
            "#SBATCH --cpus-per-task=\(options.cpusPerTask)",
        ]
        if let p = options.partition { lines.append("#SBATCH --partition=\(p)") }
        if let t = options.time { lines.append("#SBATCH --time=\(t)") }
        if let m = options.memory { lines.append("#SBATCH --mem=\(m)") }
        lines += options.extraLines
        lines += [
            "set -u",
            "exec \(quote(executable.path)) sweep run-task \(quote(folder.root.path)) --tasks \(quote(taskFile.path)) --task \"$SLURM_ARRAY_TASK_ID\"",
        ]
        let script = folder.slurm.appendingPathComponent("\(name).sbatch")
        try SweepFolder.write(Data((lines.joined(separator: "\n") + "\n").utf8), to: script)
        return Submission(number: number, script: script, taskFile: taskFile, tasks: tasks)
    }

    static func quote(_ s: String, forDirective: Bool = false) -> String {
        if forDirective { return s.contains(" ") ? "\"\(s)\"" : s }
        return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// The points of task `task` in a task file.
    public static func points(taskFile: URL, task: Int) throws -> [Int] {
        guard let text = try? String(contentsOf: taskFile, encoding: .utf8) else { throw SweepError("--tasks: cannot read \(taskFile.path)") }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard task >= 0, task < lines.count, !lines[task].isEmpty else {
            throw SweepError("--task: \(task) is not a task of \(taskFile.path) (0…\(max(0, lines.count - 2)))")
        }
        return try lines[task].split(separator: " ").map {
            guard let i = Int($0) else { throw SweepError("\(taskFile.path) line \(task + 1): \($0) is not a point index") }
            return i
        }
    }

    /// Submits with `sbatch --parsable` and returns the job id.
    public static func submit(_ submission: Submission, folder: SweepFolder) throws -> String {
        let (status, out, err) = try Shell.run("sbatch", ["--parsable", submission.script.path])
        guard status == 0 else { throw SweepError("sbatch failed (exit \(status)): \(err.trimmingCharacters(in: .whitespacesAndNewlines))") }
        let job = out.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ";").first.map(String.init) ?? ""
        guard !job.isEmpty else { throw SweepError("sbatch printed no job id: \(out)") }
        try record(folder: folder, ["submission": submission.number, "job_id": job, "tasks": submission.tasks.count,
                                    "points": submission.tasks.reduce(0) { $0 + $1.count },
                                    "script": submission.script.lastPathComponent,
                                    "submitted": ISO8601DateFormatter().string(from: Date())])
        return job
    }

    static func record(folder: SweepFolder, _ entry: [String: Any]) throws {
        let url = folder.slurm.appendingPathComponent("submissions.json")
        var all = (FileManager.default.contents(atPath: url.path)).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [[String: Any]] } ?? []
        all.append(entry)
        try SweepFolder.write(SweepFolder.json(all), to: url)
    }

    /// Job ids of this sweep's earlier submissions.
    public static func submittedJobs(folder: SweepFolder) -> [String] {
        let url = folder.slurm.appendingPathComponent("submissions.json")
        let all = (FileManager.default.contents(atPath: url.path)).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [[String: Any]] } ?? []
        return all.compactMap { $0["job_id"] as? String }
    }

    /// The array tasks of `jobs` still in the queue (pending or running), as squeue prints them
    /// (`12_3 RUNNING`, `12_[4-7] PENDING`); empty when none or squeue is not installed.
    public static func queued(jobs: [String]) -> [String] {
        guard !jobs.isEmpty, let (status, out, _) = try? Shell.run("squeue", ["-h", "-j", jobs.joined(separator: ","), "-o", "%i %T"]),
              status == 0 else { return [] }
        return out.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
    }
}

/// Runs a program found on PATH and returns its exit status, stdout and stderr.
public enum Shell {
    public static func run(_ program: String, _ arguments: [String]) throws -> (Int32, String, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [program] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch { throw SweepError("cannot run \(program): \(error.localizedDescription)") }
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }
}
