import Foundation
import Testing

/// Runs the built `plateau` binary (it sits next to the test bundle in the build folder) and pins
/// help text, exit codes and error messages.
@Suite("plateau command line")
struct CLITests {
    static var binary: URL {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        // Swift Testing may run from inside the .xctest bundle path on some platforms.
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("plateau").path), dir.path != "/" {
            dir = dir.deletingLastPathComponent()
        }
        return dir.appendingPathComponent("plateau")
    }

    struct Run { var status: Int32; var stdout: String; var stderr: String }

    /// Runs `executable` (default: the built `plateau`) with `args`, in `folder` when given.
    static func run(_ args: [String], executable: URL? = nil, in folder: URL? = nil) throws -> Run {
        let process = Process()
        process.executableURL = executable ?? binary
        process.arguments = args
        if let folder { process.currentDirectoryURL = folder }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                   stderr: String(decoding: e, as: UTF8.self))
    }

    static func temporaryFolder() -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("plateau-cli-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func writeSpec(_ text: String, in folder: URL, name: String = "spec.yaml") throws -> String {
        let url = folder.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    static let validSpec = """
    teacher: {k: 2, activation: erf}
    student: {p: 2, activation: erf}
    training: {learningRate: 0.5, time: 2}
    init: {random: {scale: 1}}
    output: {times: {linear: 4}}
    """

    @Test("--help lists the subcommands and shows a sample spec")
    func help() throws {
        let r = try Self.run(["--help"])
        #expect(r.status == 0)
        for word in ["ode", "simulate", "compare", "describe", "teacher:", "student:", "training:", "learningRate"] {
            #expect(r.stdout.contains(word), "help lacks \(word)")
        }
        for sub in ["ode", "simulate", "compare"] {
            let s = try Self.run([sub, "--help"])
            #expect(s.status == 0)
            #expect(s.stdout.contains("--spec") && s.stdout.contains("--out") && s.stdout.contains("--format"))
        }
        #expect(try Self.run(["compare", "--help"]).stdout.contains("--dimensions"))
        #expect(try Self.run(["ode", "--help"]).stdout.contains("--population-flow"))
    }

    @Test("ode writes trajectory.csv and report.json; --format json prints the record")
    func ode() throws {
        let dir = Self.temporaryFolder()
        let spec = try Self.writeSpec(Self.validSpec, in: dir)
        let out = dir.appendingPathComponent("out")
        let r = try Self.run(["ode", "--spec", spec, "--out", out.path, "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let csv = try String(contentsOf: out.appendingPathComponent("trajectory.csv"), encoding: .utf8)
        #expect(csv.hasPrefix("t,risk,M_1_1,M_1_2,M_2_1,M_2_2,Q_1_1,Q_1_2,Q_2_2,a_1,a_2,cos_1_1"))
        #expect(csv.split(separator: "\n").count == 6)  // header + t = 0, 0.5, 1, 1.5, 2
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect(json?["command"] as? String == "ode")
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("report.json").path))
    }

    @Test("command-line overrides count before the file is checked; ode, se and threshold files are the same bytes on a rerun")
    func overridesAndRerun() throws {
        let dir = Self.temporaryFolder()
        // A file without training.learningRate: refused alone, accepted with --learning-rate.
        let partial = try Self.writeSpec(Self.validSpec.replacingOccurrences(of: "learningRate: 0.5, ", with: ""), in: dir, name: "partial.yaml")
        let refused = try Self.run(["ode", "--spec", partial, "--out", dir.appendingPathComponent("r").path])
        #expect(refused.status == 64 && refused.stderr.contains("training.learningRate"), "\(refused.stderr)")
        let given = try Self.run(["ode", "--spec", partial, "--learning-rate", "0.5", "--out", dir.appendingPathComponent("g").path])
        #expect(given.status == 0, "\(given.stderr)")
        // An out-of-range amp.damping in the file, corrected on the command line.
        let amp = try Self.writeSpec("teacher: {k: 1, target: \"z1\"}\ntraining: {protocol: amp, alpha: 1}\namp: {damping: 1.5}\n", in: dir,
                                     name: "damping.yaml")
        let damped = try Self.run(["se", "--spec", amp, "--damping", "0.5", "--out", dir.appendingPathComponent("a").path, "--quiet"])
        #expect(damped.status == 0, "\(damped.stderr)")
        // Wall times go to stdout only.
        let full = try Self.writeSpec(Self.validSpec, in: dir, name: "online.yaml")
        let ampSpec = try Self.writeSpec("teacher: {k: 2, target: \"sign(z1*z2)\"}\ntraining: {protocol: amp, alpha: 3}\n", in: dir,
                                         name: "amp.yaml")
        for (command, spec, file) in [("ode", full, "report.json"), ("se", ampSpec, "report.json"), ("threshold", ampSpec, "threshold.json")] {
            var bytes: [Data] = []
            for run in 0..<2 {
                let out = dir.appendingPathComponent("\(command)\(run)")
                let r = try Self.run([command, "--spec", spec, "--out", out.path, "--quiet"])
                #expect(r.status == 0, "\(command): \(r.stderr)")
                bytes.append(try Data(contentsOf: out.appendingPathComponent(file)))
            }
            #expect(bytes[0] == bytes[1], "\(command): \(file) differs between two runs")
        }
    }

    @Test("simulate and compare write their files")
    func simulateCompare() throws {
        let dir = Self.temporaryFolder()
        let spec = try Self.writeSpec(Self.validSpec, in: dir)
        let s = try Self.run(["simulate", "--spec", spec, "--dimension", "100", "--seeds", "3", "--out", dir.appendingPathComponent("s").path])
        #expect(s.status == 0, "\(s.stderr)")
        let seeds = try String(contentsOf: dir.appendingPathComponent("s/seeds.csv"), encoding: .utf8)
        #expect(seeds.hasPrefix("seed,t,risk,"))
        #expect(seeds.split(separator: "\n").count == 1 + 3 * 5)
        let c = try Self.run(["compare", "--spec", spec, "--dimensions", "100,200", "--seeds", "3", "--out", dir.appendingPathComponent("c").path])
        #expect(c.status == 0, "\(c.stderr)")
        #expect(c.stdout.contains("finite-size scaling"))
        for f in ["c/report.json", "c/scaling.csv", "c/d100/agreement.csv", "c/d200/theory.csv"] {
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent(f).path), "missing \(f)")
        }
    }

    @Test("describe: information exponent and leap; parse errors point at the column")
    func describe() throws {
        let he3 = try Self.run(["describe", "--activation", "He3(x)"])
        #expect(he3.status == 0 && he3.stdout.contains("information exponent: 3"), "\(he3.stdout)\(he3.stderr)")
        let parity = try Self.run(["describe", "--target", "sign(z1*z2*z3)", "--format", "json"])
        #expect(parity.status == 0)
        let json = try JSONSerialization.jsonObject(with: Data(parity.stdout.utf8)) as? [String: Any]
        let item = (json?["items"] as? [[String: Any]])?.first
        #expect(item?["leap"] as? Int == 3)
        let bad = try Self.run(["describe", "--target", "tanh(z1 + z2^3 - 3*z2"])
        #expect(bad.status == 64 && bad.stderr.contains("column"), "\(bad.stderr)")
        let none = try Self.run(["describe"])
        #expect(none.status == 64)
        // Derivatives are printed with the coefficients; a spec's link target is described.
        let tanh = try Self.run(["describe", "--activation", "tanh"])
        #expect(tanh.stdout.contains("σ'(x) = 1 - tanh(x)^2"), "\(tanh.stdout)")
        let folder = Self.temporaryFolder()
        let spec = try Self.writeSpec("""
            teacher: {k: 2, preset: staircase}
            student: {p: 2, activation: "x + 0.5*x^2"}
            training: {learningRate: 0.1, time: 1}
            """, in: folder)
        let stair = try Self.run(["describe", "--spec", spec])
        #expect(stair.status == 0 && stair.stdout.contains("g(z) = z1 + z1*z2") && stair.stdout.contains("∂g/∂z2 = z1")
                && stair.stdout.contains("leap: 1"), "\(stair.stdout)\(stair.stderr)")
    }

    @Test("routes: reported, forced with --route, an impossible route refused naming the available ones")
    func routes() throws {
        let folder = Self.temporaryFolder()
        let spec = try Self.writeSpec("""
            teacher: {k: 1, target: "He3(z1)"}
            student: {p: 1, activation: He3, spherical: true}
            training: {learningRate: 0.01, time: 0.5}
            init: {M: [[0.3]], Q: [[1]]}
            """, in: folder)
        let wick = try Self.run(["ode", "--spec", spec, "--out", folder.appendingPathComponent("w").path, "--format", "json"])
        let report = try JSONSerialization.jsonObject(with: Data(wick.stdout.utf8)) as? [String: Any]
        #expect(wick.status == 0 && report?["expectation_route"] as? String == "wick", "\(wick.stderr)")
        let quad = try Self.run(["ode", "--spec", spec, "--route", "quadrature", "--out", folder.appendingPathComponent("q").path])
        #expect(quad.status == 0 && quad.stdout.contains("expectations: quadrature"), "\(quad.stdout)\(quad.stderr)")
        let refused = try Self.run(["ode", "--spec", spec, "--route", "closed-form", "--out", folder.appendingPathComponent("c").path])
        #expect(refused.status == 64 && refused.stderr.contains("available: wick, quadrature"), "\(refused.stderr)")
        // A budget too small for the tolerance is said on stderr, with the accuracy reached.
        let starved = try Self.run(["ode", "--spec", spec, "--route", "quadrature", "--quadrature-tolerance", "1e-14",
                                    "--quadrature-points", "200", "--out", folder.appendingPathComponent("s").path])
        #expect(starved.status == 0 && starved.stderr.contains("did not reach --quadrature-tolerance"), "\(starved.stderr)")
    }

    @Test("bad input: exit code 64, the field and the value named, nothing written",
          arguments: [
            ("training: {learningRate: -0.5, time: 2}", "training.learningRate", "-0.5"),
            ("training: {learningRate: 0.5, batchSize: -3, time: 2}", "training.batchSize", "-3"),
            ("training: {learningRate: .nan, time: 2}", "training.learningRate", "nan"),
            ("training: {learningRate: 0.5, time: 2, colour: red}", "training.colour", "red"),
          ])
    func badSpec(training: String, field: String, value: String) throws {
        let dir = Self.temporaryFolder()
        let text = Self.validSpec.replacingOccurrences(of: "training: {learningRate: 0.5, time: 2}", with: training)
        let spec = try Self.writeSpec(text, in: dir)
        let out = dir.appendingPathComponent("out")
        let r = try Self.run(["ode", "--spec", spec, "--out", out.path])
        #expect(r.status == 64)
        #expect(r.stderr.contains(field) && r.stderr.contains(value), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out.path))
    }

    @Test("bad input: unknown activation, non-PSD P, unreadable file, bad options")
    func badInputs() throws {
        let dir = Self.temporaryFolder()
        let act = try Self.writeSpec(Self.validSpec.replacingOccurrences(of: "student: {p: 2, activation: erf}", with: "student: {p: 2, activation: softsign}"), in: dir, name: "a.yaml")
        var r = try Self.run(["ode", "--spec", act])
        #expect(r.status == 64 && r.stderr.contains("student.activation") && r.stderr.contains("softsign"))
        let psd = try Self.writeSpec(Self.validSpec.replacingOccurrences(of: "teacher: {k: 2, activation: erf}", with: "teacher: {k: 2, P: [[1, 2], [2, 1]]}"), in: dir, name: "p.yaml")
        r = try Self.run(["ode", "--spec", psd])
        #expect(r.status == 64 && r.stderr.contains("teacher.P") && r.stderr.contains("positive semi-definite"))
        r = try Self.run(["ode", "--spec", dir.appendingPathComponent("missing.yaml").path])
        #expect(r.status == 64 && r.stderr.contains("missing.yaml"))
        r = try Self.run(["simulate", "--dimension", "0"])
        #expect(r.status == 64 && r.stderr.contains("--dimension") && r.stderr.contains("0"))
        r = try Self.run(["compare", "--dimensions", "100,abc"])
        #expect(r.status == 64 && r.stderr.contains("abc"))
        r = try Self.run(["ode", "--rtol", "-1"])
        #expect(r.status == 64 && r.stderr.contains("--rtol"))
        r = try Self.run(["ode", "--method", "leapfrog"])
        #expect(r.status == 64 && r.stderr.contains("leapfrog"))
    }
}
