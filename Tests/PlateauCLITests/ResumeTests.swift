import Foundation
import Testing

/// Kill and resume, and results independent of the number of threads: real processes of the built
/// `plateau` binary, killed with SIGKILL, compared byte for byte.
@Suite("Kill and resume; thread-independent results", .serialized)
struct ResumeTests {
    static let spec = """
    teacher: {k: 2, activation: erf}
    student: {p: 2, activation: erf}
    training: {learningRate: 0.5, time: 300}
    init: {random: {scale: 1}}
    output: {times: {log: 12, start: 1}}
    """

    /// Every file under `folder` (relative path → bytes).
    static func files(_ folder: URL) -> [String: Data] {
        var out: [String: Data] = [:]
        let base = folder.standardizedFileURL.path
        for case let url as URL in FileManager.default.enumerator(at: folder, includingPropertiesForKeys: nil) ?? .init() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            out[String(url.standardizedFileURL.path.dropFirst(base.count))] = try? Data(contentsOf: url)
        }
        return out
    }

    /// Starts `plateau args`, waits until `folder/checkpoints` holds at least `checkpoints` seed
    /// files, and kills the process with SIGKILL. Returns the number of complete checkpoints left after the kill.
    static func killPartWay(_ args: [String], folder: URL, checkpoints: Int) throws -> Int {
        let process = Process()
        process.executableURL = CLITests.binary
        process.arguments = args
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let dir = folder.appendingPathComponent("checkpoints")
        var found = 0
        let deadline = Date().addingTimeInterval(120)
        while process.isRunning, Date() < deadline {
            found = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasPrefix("seed-") }.count
            if found >= checkpoints { break }
            usleep(20_000)
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        // Counted again once the process is dead: a seed may have finished between the poll and the kill.
        // Only complete checkpoints count (written atomically as seed-….json; a rename never half-happens).
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [])
            .filter { $0.hasPrefix("seed-") && $0.hasSuffix(".json") }.count
    }

    /// Runs `args` (6 seeds) on one thread, kills it with SIGKILL after 2 checkpoints, resumes it, and checks
    /// that every output file equals, byte for byte, those of an uninterrupted run on 2 threads, with the
    /// checkpoints read back and removed. Folders `<command>-killed` and `<command>-whole` under `root`.
    static func checkKillAndResume(_ args: [String], in root: URL) throws {
        let command = args[0]
        let killed = root.appendingPathComponent("\(command)-killed"), whole = root.appendingPathComponent("\(command)-whole")
        let found = try killPartWay(args + ["--out", killed.path, "--threads", "1"], folder: killed, checkpoints: 2)
        #expect(found >= 2 && found < 6, "\(command): \(found) checkpoints when killed")
        #expect(!FileManager.default.fileExists(atPath: killed.appendingPathComponent("report.json").path))
        let resumed = try CLITests.run(args + ["--out", killed.path, "--threads", "1", "--resume"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("resumed: \(found) seed(s) read back"), "\(resumed.stderr)")
        let uninterrupted = try CLITests.run(args + ["--out", whole.path, "--threads", "2"])
        #expect(uninterrupted.status == 0)
        let (a, b) = (files(killed), files(whole))
        #expect(a.keys.sorted() == b.keys.sorted(), "\(a.keys.sorted()) vs \(b.keys.sorted())")
        #expect(b.keys.contains("/report.json") && b.count >= 2, "\(b.keys.sorted())")
        for (name, bytes) in b { #expect(a[name] == bytes, "\(command): \(name) differs after resume") }
        #expect(!a.keys.contains { $0.contains("checkpoints") })
    }

    @Test("simulate and compare: SIGKILL part way, --resume, bitwise the files of an uninterrupted run on 2 threads")
    func killAndResume() throws {
        let root = CLITests.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let spec = try CLITests.writeSpec(Self.spec, in: root)
        for command in ["simulate", "compare"] {
            try Self.checkKillAndResume([command, "--spec", spec, "--dimension", "400", "--seeds", "6", "--quiet"], in: root)
        }
    }

    @Test("a resume whose spec or options differ is refused, naming what differs (exit 64)")
    func mismatchedResume() throws {
        let root = CLITests.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let spec = try CLITests.writeSpec(Self.spec, in: root)
        let out = root.appendingPathComponent("out")
        _ = try Self.killPartWay(["simulate", "--spec", spec, "--dimension", "400", "--seeds", "6", "--quiet", "--out", out.path, "--threads", "1"],
                                 folder: out, checkpoints: 1)
        let r = try CLITests.run(["simulate", "--spec", spec, "--dimension", "500", "--seeds", "6", "--quiet", "--out", out.path, "--resume"])
        #expect(r.status == 64)
        #expect(r.stderr.contains("--resume") && r.stderr.contains("arguments differs") && r.stderr.contains("500"), "\(r.stderr)")
    }

    @Test("multipass simulate: --threads 1 and --threads 2 write the same bytes")
    func multipassThreads() throws {
        let root = CLITests.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let spec = try CLITests.writeSpec(MultipassCLITests.ridge, in: root)
        let one = root.appendingPathComponent("one"), two = root.appendingPathComponent("two")
        let args = ["simulate", "--spec", spec, "--dimension", "200", "--seeds", "5", "--quiet"]
        let a = try CLITests.run(args + ["--threads", "1", "--out", one.path])
        let b = try CLITests.run(args + ["--threads", "2", "--out", two.path])
        #expect(a.status == 0 && b.status == 0, "\(a.stderr) \(b.stderr)")
        let (x, y) = (Self.files(one), Self.files(two))
        #expect(x.count == 3 && x.keys.sorted() == y.keys.sorted())
        for (name, bytes) in x { #expect(y[name] == bytes, "\(name) differs between --threads 1 and 2") }
    }

    @Test("reproduce saad-solla --quick: --threads 1 and the default write the same bytes")
    func reproductionThreads() throws {
        let root = CLITests.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let one = root.appendingPathComponent("one"), all = root.appendingPathComponent("all")
        let a = try CLITests.run(["reproduce", "saad-solla", "--quick", "--quiet", "--threads", "1", "--out", one.path])
        let b = try CLITests.run(["reproduce", "saad-solla", "--quick", "--quiet", "--out", all.path])
        #expect(a.status == 0 && b.status == 0, "\(a.stderr) \(b.stderr)")
        let (x, y) = (Self.files(one), Self.files(all))
        #expect(!x.isEmpty && x.keys.sorted() == y.keys.sorted())
        for (name, bytes) in x { #expect(y[name] == bytes, "\(name) differs between --threads 1 and the default") }
    }

    /// An amp spec for the GAMP kill-and-resume tests: sign(z₁) at α = 2 from the uninformed start.
    static let ampSpec = "teacher: {k: 1, target: \"sign(z1)\"}\ntraining: {protocol: amp, alpha: 2}\namp: {epsilon: 0.1}\n"

    @Test("gamp, compare on an amp spec, spectral --dimension: SIGKILL part way, --resume, bitwise the files of an uninterrupted run on 2 threads")
    func gampKillAndResume() throws {
        let root = CLITests.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let spec = try CLITests.writeSpec(Self.ampSpec, in: root)
        let squared = try CLITests.writeSpec(Self.spectralSpec, in: root, name: "squared.yaml")
        let gampArgs = ["--spec", spec, "--dimension", Self.gampDimension, "--seeds", "6", "--iterations", "10", "--quiet"]
        for (command, options) in [("gamp", gampArgs), ("compare", gampArgs),
                                   ("spectral", ["--spec", squared, "--dimension", Self.spectralDimension, "--seeds", "6", "--quiet"])] {
            try Self.checkKillAndResume([command] + options, in: root)
        }
        // A mismatched resume of gamp is refused, naming what differs.
        let out = root.appendingPathComponent("mismatch")
        let base = ["gamp", "--spec", spec, "--seeds", "6", "--iterations", "10", "--quiet", "--out", out.path]
        _ = try Self.killPartWay(base + ["--dimension", Self.gampDimension, "--threads", "1"], folder: out, checkpoints: 1)
        let r = try CLITests.run(base + ["--dimension", "700", "--resume"])
        #expect(r.status == 64)
        #expect(r.stderr.contains("--resume") && r.stderr.contains("arguments differs") && r.stderr.contains("700"), "\(r.stderr)")
    }

    /// GAMP's dimension in the kill tests: a seed takes ≈ 0.08 s (measured), long enough to be killed between checkpoints (polled every 0.02 s).
    static let gampDimension = "1000"

    /// A spectral spec (phase retrieval y = z₁², α = 2 above α_c = 1/2) and its dimension in the kill test (≈ 0.13 s a seed, measured).
    static let spectralSpec = "teacher: {k: 1, target: \"z1*z1\"}\ntraining: {protocol: amp, alpha: 2}\n"
    static let spectralDimension = "600"

    @Test("dmft (Monte Carlo, 4 replicas): --threads 1 and the default write the same bytes")
    func dmftThreads() throws {
        let root = CLITests.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let spec = try CLITests.writeSpec(MultipassCLITests.ridge, in: root)
        let one = root.appendingPathComponent("one"), all = root.appendingPathComponent("all")
        let args = ["dmft", "--spec", spec, "--method", "monte-carlo", "--replicas", "4", "--quiet"]
        let a = try CLITests.run(args + ["--threads", "1", "--out", one.path])
        let b = try CLITests.run(args + ["--out", all.path])
        #expect(a.status == 0 && b.status == 0, "\(a.stderr) \(b.stderr)")
        let (x, y) = (Self.files(one), Self.files(all))
        #expect(x.count == 3 && x.keys.sorted() == y.keys.sorted(), "\(x.keys.sorted())")
        for (name, bytes) in x { #expect(y[name] == bytes, "\(name) differs between --threads 1 and the default") }
    }

    @Test("a bad spec: every problem printed at once, exit 64")
    func allProblems() throws {
        let root = CLITests.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let spec = try CLITests.writeSpec("teacher: {k: 2, noise: -1}\nstudent: {p: 2, colour: 1}\ntraining: {learningRate: 0, time: -1}\n", in: root)
        let r = try CLITests.run(["simulate", "--spec", spec, "--out", root.path])
        #expect(r.status == 64)
        for fragment in ["4 problems", "teacher.noise", "student.colour", "training.learningRate", "training.time"] {
            #expect(r.stderr.contains(fragment), "\(fragment): \(r.stderr)")
        }
    }
}
