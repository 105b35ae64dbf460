import Foundation
import Testing

/// `plateau sweep`: planning and validation, the local pool (bitwise independent of --jobs, resume,
/// failures recorded), collect, the Slurm script (dry run, MaxArraySize chunking) and, with
/// PLATEAU_SLURM_TESTS=1 and a running Slurm (`scripts/slurm-local.sh start`, SLURM_CONF exported), a
/// real job array: a cancelled task, resubmission of only the missing point, and point files equal
/// bit for bit to the local backend's.
@Suite("plateau sweep")
struct SweepTests {
    static let baseSpec = """
    teacher: {k: 2, activation: erf}
    student: {p: 2, activation: erf}
    training: {learningRate: 0.5, time: 5}
    init: {M: [[0.01, 0], [0, 0.01]], Q: [[1, 0], [0, 1]]}
    output: {times: {linear: 5}}
    """

    /// 2 × 3 = 6 ODE points (η × Δ), each a fraction of a second.
    static let grid = """
    command: ode
    combine: product
    axes:
      training.learningRate: [0.5, 1.0]
      teacher.noise: "0:0.02:0.01"
    """

    static func setUp(grid: String = grid, spec: String = baseSpec) throws -> (folder: URL, spec: String, grid: String) {
        let folder = CLITests.temporaryFolder()
        return (folder, try CLITests.writeSpec(spec, in: folder, name: "base.yaml"), try CLITests.writeSpec(grid, in: folder, name: "grid.yaml"))
    }

    /// Every file under DIR/points, by relative path.
    static func pointFiles(_ dir: URL) throws -> [String: Data] {
        let root = dir.appendingPathComponent("points")
        var files: [String: Data] = [:]
        let e = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey])!
        for case let url as URL in e where (try url.resourceValues(forKeys: [.isRegularFileKey])).isRegularFile == true {
            files[String(url.path.dropFirst(root.path.count))] = try Data(contentsOf: url)
        }
        return files
    }

    @Test("runs locally: --jobs 1, --jobs 3 and --in-process give bitwise-identical points; the rows equal a direct `plateau ode`; resume does nothing")
    func localRun() throws {
        let (folder, spec, grid) = try Self.setUp()
        let one = folder.appendingPathComponent("one"), three = folder.appendingPathComponent("three")
        let r1 = try CLITests.run(["sweep", "--spec", spec, "--grid", grid, "--out", one.path, "--jobs", "1", "--quiet"])
        #expect(r1.status == 0, "\(r1.stderr)")
        #expect(r1.stdout.contains("6 points") && r1.stdout.contains("6 done, 0 failed"), "\(r1.stdout)")
        let r3 = try CLITests.run(["sweep", "--spec", spec, "--grid", grid, "--out", three.path, "--jobs", "3", "--quiet"])
        #expect(r3.status == 0, "\(r3.stderr)")
        let inProcess = folder.appendingPathComponent("in-process")
        let ri = try CLITests.run(["sweep", "--spec", spec, "--grid", grid, "--out", inProcess.path, "--in-process", "--quiet"])
        #expect(ri.status == 0, "\(ri.stderr)")
        let (a, b, ip) = (try Self.pointFiles(one), try Self.pointFiles(three), try Self.pointFiles(inProcess))
        #expect(a.count == 6 * 5, "files: \(a.keys.sorted())")   // spec.yaml, point.json, trajectory.csv, report.json, done.json
        #expect(a == b, "the point files differ between --jobs 1 and --jobs 3: \(a.keys.filter { a[$0] != b[$0] }.sorted())")
        #expect(a == ip, "the point files differ between child processes and --in-process: \(a.keys.filter { a[$0] != ip[$0] }.sorted())")
        // The wall-clock field is moved to the log: the report stays valid JSON without it.
        let report = try JSONSerialization.jsonObject(with: a["/00004/report.json"]!) as! [String: Any]
        #expect((report["integrator"] as! [String: Any])["seconds"] == nil)
        #expect((report["spec"] as! [String: Any]).description.contains("0.01"))

        // Point 4 is (η = 1.0, Δ = 0.01): the same file as `plateau ode` on that spec.
        let pointSpec = try String(contentsOf: one.appendingPathComponent("points/00004/spec.yaml"), encoding: .utf8)
        #expect(pointSpec.contains("learningRate: 1.0") && pointSpec.contains("noise: 0.01"), "\(pointSpec)")
        let direct = folder.appendingPathComponent("direct")
        let d = try CLITests.run(["ode", "--spec", one.appendingPathComponent("points/00004/spec.yaml").path, "--out", direct.path, "--quiet"])
        #expect(d.status == 0, "\(d.stderr)")
        #expect(try Data(contentsOf: direct.appendingPathComponent("trajectory.csv")) == a["/00004/trajectory.csv"])

        // Resume: all done, nothing runs.
        let again = try CLITests.run(["sweep", "--spec", spec, "--grid", grid, "--out", one.path, "--quiet"])
        #expect(again.status == 0 && again.stdout.contains("resumed: 6 done, 0 failed, 0 to run") && again.stdout.contains("nothing to do"), "\(again.stdout)")

        // Collect: point and grid columns first, one row per point and time.
        let c = try CLITests.run(["sweep", "collect", one.path])
        #expect(c.status == 0, "\(c.stderr)")
        let csv = try ReproduceTests.readCSV(one.appendingPathComponent("sweep.csv"))
        #expect(Array(csv.header.prefix(4)) == ["point", "training.learningRate", "teacher.noise", "t"], "\(csv.header)")
        let trajectoryRows = String(decoding: a["/00004/trajectory.csv"]!, as: UTF8.self).split(separator: "\n").count - 1
        #expect(csv.rows.count == 6 * trajectoryRows)
        #expect(csv.rows.filter { $0["point"] == "4" }.allSatisfy { $0["training.learningRate"] == "1.0" && $0["teacher.noise"] == "0.01" })
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: one.appendingPathComponent("index.json"))) as! [String: Any]
        #expect(index["complete"] as? Bool == true && (index["missing"] as? [Int]) == [])
        let picked = folder.appendingPathComponent("picked.csv")
        let cp = try CLITests.run(["sweep", "collect", one.path, "--columns", "t,risk", "--output", picked.path])
        #expect(cp.status == 0, "\(cp.stderr)")
        #expect(try ReproduceTests.readCSV(picked).header == ["point", "training.learningRate", "teacher.noise", "t", "risk"])
        let badColumn = try CLITests.run(["sweep", "collect", one.path, "--columns", "t,nonsense"])
        #expect(badColumn.status == 64 && badColumn.stderr.contains("nonsense"), "\(badColumn.stderr)")

        // A different grid in the same folder is refused.
        let other = try CLITests.writeSpec(Self.grid.replacingOccurrences(of: "[0.5, 1.0]", with: "[0.5, 2.0]"), in: folder, name: "other.yaml")
        let refused = try CLITests.run(["sweep", "--spec", spec, "--grid", other, "--out", one.path])
        #expect(refused.status == 64 && refused.stderr.contains("holds a different sweep"), "\(refused.stderr)")
    }

    @Test("a bad point is refused before anything runs, naming the point, the field and the value")
    func validation() throws {
        let cases: [(grid: String, phrases: [String])] = [
            ("axes:\n  training.learningRate: [0.5, -1.0]\n", ["point 1", "training.learningRate", "-1"]),
            ("axes:\n  student.p: [2, 3]\n  dimension: [1000, 1]\ncommand: simulate\n", ["point 1", "dimension = 1", "--dimension"]),
            ("combine: zip\naxes:\n  teacher.noise: [0, 0.1]\n  training.learningRate: [1, 2, 3]\n", ["grid.axes.training.learningRate", "equal length"]),
            ("axes:\n  training.learningRate: {from: 1, to: 0, step: 0.1}\n", ["grid.axes.training.learningRate", "below"]),
            ("axes:\n  teacher.activation: [erf, nonsense(x]\n", ["point 1", "teacher.activation"]),
            ("command: integrate\naxes:\n  teacher.noise: [0]\n", ["point 0", "integrate"]),
            ("axes:\n  training.learningRate: [1]\nextra: 1\n", ["grid.extra", "unknown key"]),
            ("axes:\n  \"teacher.k, student.p\": [[2, 2], [3]]\n", ["grid.axes.teacher.k, student.p", "[3]", "2 entries"]),
        ]
        for (grid, phrases) in cases {
            let (folder, spec, gridFile) = try Self.setUp(grid: grid)
            let out = folder.appendingPathComponent("out")
            let r = try CLITests.run(["sweep", "--spec", spec, "--grid", gridFile, "--out", out.path])
            #expect(r.status == 64, "\(grid): exit \(r.status) \(r.stderr)")
            for p in phrases { #expect(r.stderr.contains(p), "\(grid): the message lacks \(p): \(r.stderr)") }
            #expect(!FileManager.default.fileExists(atPath: out.path), "\(grid): something was written")
        }
    }

    @Test("a point that fails at run time is recorded (exit code, stderr) and reported; --retry-failed reruns it")
    func failures() throws {
        // --route wick cannot compute an erf student: refused by `ode` when it runs (exit code 64).
        let (folder, spec, grid) = try Self.setUp(grid: "axes:\n  route: [closed-form, wick]\n")
        let out = folder.appendingPathComponent("out")
        let r = try CLITests.run(["sweep", "--spec", spec, "--grid", grid, "--out", out.path, "--quiet"])
        #expect(r.status == 1, "\(r.stdout) \(r.stderr)")
        #expect(r.stdout.contains("1 done, 1 failed") && r.stderr.contains("point 1 failed (exit code 64)"), "\(r.stdout)\n\(r.stderr)")
        let failed = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("points/00001/failed.json"))) as! [String: Any]
        #expect(failed["exit_code"] as? Int == 64)
        #expect((failed["stderr_tail"] as? String ?? "").contains("--route wick"), "\(failed)")
        let c = try CLITests.run(["sweep", "collect", out.path])
        #expect(c.status == 0 && c.stdout.contains("1 failed, 0 missing"), "\(c.stdout)")
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("index.json"))) as! [String: Any]
        #expect((index["failed"] as? [[String: Any]])?.first?["index"] as? Int == 1)
        // Without --retry-failed the failure is left; with it, it runs again (and fails again).
        let again = try CLITests.run(["sweep", "--spec", spec, "--grid", grid, "--out", out.path, "--quiet"])
        #expect(again.status == 0 && again.stdout.contains("0 to run") && again.stderr.contains("--retry-failed"), "\(again.stdout) \(again.stderr)")
        let retry = try CLITests.run(["sweep", "--spec", spec, "--grid", grid, "--out", out.path, "--quiet", "--retry-failed"])
        #expect(retry.status == 1 && retry.stdout.contains("1 to run") && retry.stdout.contains("ran 1 points"), "\(retry.stdout)")
    }

    @Test("Slurm dry run: the sbatch script and task file; more points than MaxArraySize are chunked")
    func slurmDryRun() throws {
        let (folder, spec, grid) = try Self.setUp(grid: "axes:\n  training.learningRate: \"0.1:1.2:0.1\"\n")
        let out = folder.appendingPathComponent("out")
        let r = try CLITests.run(["sweep", "--spec", spec, "--grid", grid, "--out", out.path, "--backend", "slurm", "--dry-run",
                                  "--partition", "short", "--time", "00:10:00", "--mem", "1G", "--max-array-size", "5",
                                  "--sbatch-line", "#SBATCH --account=theory"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("12 points in 4 array tasks") && r.stdout.contains("not submitted"), "\(r.stdout)")
        let script = try String(contentsOf: out.appendingPathComponent("slurm/submission-001.sbatch"), encoding: .utf8)
        for line in ["#SBATCH --array=0-3", "#SBATCH --partition=short", "#SBATCH --time=00:10:00", "#SBATCH --mem=1G",
                     "#SBATCH --account=theory", "sweep run-task", "--task \"$SLURM_ARRAY_TASK_ID\""] {
            #expect(script.contains(line), "the script lacks \(line):\n\(script)")
        }
        let tasks = try String(contentsOf: out.appendingPathComponent("slurm/submission-001.tasks"), encoding: .utf8)
        #expect(tasks == "0 1 2\n3 4 5\n6 7 8\n9 10 11\n")
        // Nothing ran, so every point is missing; the points' specs are there.
        let c = try CLITests.run(["sweep", "collect", out.path])
        #expect(c.stdout.contains("0 failed, 12 missing"), "\(c.stdout)")
        let s = try String(contentsOf: out.appendingPathComponent("points/00002/spec.yaml"), encoding: .utf8)
        #expect(s.contains("learningRate: 0.3\n"), "\(s)")
        let bad = try CLITests.run(["sweep", "--spec", spec, "--grid", grid, "--out", out.path, "--backend", "slurm", "--dry-run", "--sbatch-line", "--account=x"])
        #expect(bad.status == 64 && bad.stderr.contains("--sbatch-line"), "\(bad.stderr)")
    }

    @Test("a linked axis varies several fields together (K = M with its initial overlaps), crossed with the others")
    func linkedAxis() throws {
        let grid = """
        axes:
          "teacher.k, student.p, init.M, init.Q":
            - [2, 2, [[0.01, 0], [0, 0.01]], [[1, 0], [0, 1]]]
            - [3, 3, [[0.01, 0, 0], [0, 0.01, 0], [0, 0, 0.01]], [[1, 0, 0], [0, 1, 0], [0, 0, 1]]]
          training.learningRate: [0.5, 1.0]
        """
        let (folder, spec, gridFile) = try Self.setUp(grid: grid)
        let out = folder.appendingPathComponent("out")
        let r = try CLITests.run(["sweep", "--spec", spec, "--grid", gridFile, "--out", out.path, "--quiet"])
        #expect(r.status == 0 && r.stdout.contains("4 points (teacher.k × student.p × init.M × init.Q × training.learningRate)"), "\(r.stdout) \(r.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("points/00003/report.json"))) as! [String: Any]
        let specTree = report["spec"] as! [String: Any]
        #expect((specTree["student"] as! [String: Any])["p"] as? Int == 3 && (specTree["training"] as! [String: Any])["learningRate"] as? Double == 1.0)
        let c = try CLITests.run(["sweep", "collect", out.path])
        #expect(c.status == 0)
        let csv = try ReproduceTests.readCSV(out.appendingPathComponent("sweep.csv"))
        #expect(Array(csv.header.prefix(6)) == ["point", "teacher.k", "student.p", "init.M", "init.Q", "training.learningRate"])
        #expect(csv.header.contains("M_3_3") && csv.rows.first { $0["point"] == "3" }?["teacher.k"] == "3")
    }

    static let slurm = ProcessInfo.processInfo.environment["PLATEAU_SLURM_TESTS"] == "1"

    /// Waits until squeue no longer lists the job (polling; sbatch --wait backs off to 32 s).
    static func waitForJob(_ job: String, timeout: Double = 120) throws {
        let start = Date()
        while Date().timeIntervalSince(start) < timeout {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["squeue", "-h", "-j", job]
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            try p.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return }
            Thread.sleep(forTimeInterval: 0.5)
        }
        throw CLIFailure("job \(job) still in the queue after \(timeout) s")
    }

    static func shell(_ args: [String]) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }

    static func jobID(_ stdout: String) -> String? {
        stdout.split(separator: "\n").first { $0.hasPrefix("submitted job ") }?.split(separator: " ")[2].replacingOccurrences(of: ":", with: "")
    }

    @Test("a real Slurm job array: a cancelled task, resubmission of the missing point only, files bitwise equal to the local backend's; a failing point shows as failed",
          .enabled(if: slurm))
    func realSlurm() throws {
        let (folder, spec, grid) = try Self.setUp()
        let local = folder.appendingPathComponent("local"), remote = folder.appendingPathComponent("slurm")
        let l = try CLITests.run(["sweep", "--spec", spec, "--grid", grid, "--out", local.path, "--quiet"])
        #expect(l.status == 0, "\(l.stderr)")
        // Submitted held, so that one array task can be cancelled before it runs; then released.
        let s = try CLITests.run(["sweep", "--spec", spec, "--grid", grid, "--out", remote.path, "--backend", "slurm",
                                  "--sbatch-line", "#SBATCH --hold"])
        #expect(s.status == 0 && s.stdout.contains("6 points in 6 array tasks"), "\(s.stdout) \(s.stderr)")
        let job = try #require(Self.jobID(s.stdout), "\(s.stdout)")
        #expect(try Self.shell(["scancel", "\(job)_2"]) == 0)
        #expect(try Self.shell(["scontrol", "release", job]) == 0)
        try Self.waitForJob(job)
        let c1 = try CLITests.run(["sweep", "collect", remote.path])
        #expect(c1.stdout.contains("0 failed, 1 missing") && c1.stdout.contains("missing: 2"), "\(c1.stdout)")
        // Resubmission: only point 2.
        let again = try CLITests.run(["sweep", "--spec", spec, "--grid", grid, "--out", remote.path, "--backend", "slurm"])
        #expect(again.status == 0 && again.stdout.contains("1 points in 1 array tasks"), "\(again.stdout) \(again.stderr)")
        let tasks = try String(contentsOf: remote.appendingPathComponent("slurm/submission-002.tasks"), encoding: .utf8)
        #expect(tasks == "2\n")
        try Self.waitForJob(try #require(Self.jobID(again.stdout)))
        let c2 = try CLITests.run(["sweep", "collect", remote.path])
        #expect(c2.stdout.contains("0 failed, 0 missing"), "\(c2.stdout)")
        let (a, b) = (try Self.pointFiles(local), try Self.pointFiles(remote))
        #expect(a.count == 30 && a == b, "differ: \(Set(a.keys).union(b.keys).filter { a[$0] != b[$0] }.sorted())")
        let logs = try String(contentsOf: remote.appendingPathComponent("logs/00002.json"), encoding: .utf8)
        #expect(logs.contains("\"backend\" : \"slurm\""), "\(logs)")
        let c3 = try CLITests.run(["sweep", "--spec", spec, "--grid", grid, "--out", remote.path, "--backend", "slurm"])
        #expect(c3.stdout.contains("nothing to submit"), "\(c3.stdout)")
        // A point that fails inside an array task is visible as failed (exit code, stderr) after collect.
        let failing = try CLITests.writeSpec("axes:\n  route: [closed-form, wick]\n", in: folder, name: "failing.yaml")
        let bad = folder.appendingPathComponent("failing")
        let f = try CLITests.run(["sweep", "--spec", spec, "--grid", failing, "--out", bad.path, "--backend", "slurm"])
        try Self.waitForJob(try #require(Self.jobID(f.stdout), "\(f.stdout) \(f.stderr)"))
        let cf = try CLITests.run(["sweep", "collect", bad.path])
        #expect(cf.stdout.contains("1 failed, 0 missing") && cf.stdout.contains("failed: 1"), "\(cf.stdout)")
        let record = try JSONSerialization.jsonObject(with: Data(contentsOf: bad.appendingPathComponent("points/00001/failed.json"))) as! [String: Any]
        #expect(record["backend"] as? String == "slurm" && record["exit_code"] as? Int == 64, "\(record)")
    }
}

struct CLIFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
