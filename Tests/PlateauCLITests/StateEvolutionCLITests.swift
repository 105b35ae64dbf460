import Foundation
import Testing

/// `plateau threshold` and `plateau se`: the JSON record, the CSV columns and refused input.
@Suite("plateau threshold and se")
struct StateEvolutionCLITests {
    typealias CLI = CLITests

    @Test("threshold --format json: alpha_c of sign(z1*z2) is π²/4, of z1 is 0, of the parity is \"inf\", of z1*z2 the Bessel value")
    func threshold() throws {
        let folder = CLI.temporaryFolder()
        // z1*z2: 1/(1 + E[(|y|K₁/K₀ − 1)²]) (ProductOutputLawTests.besselReduction computes it by adaptive quadrature).
        let cases: [(String, Int, Any)] = [("sign(z1*z2)", 2, Double.pi * Double.pi / 4), ("z1", 1, 0.0), ("sign(z1*z2*z3)", 3, "inf"),
                                           ("z1*z2", 2, 0.5937510982222742)]
        for (target, k, expected) in cases {
            let spec = try CLI.writeSpec("teacher: {k: \(k), target: \"\(target)\"}\ntraining: {protocol: amp}\n", in: folder)
            let r = try CLI.run(["threshold", "--spec", spec, "--format", "json", "--out", folder.path])
            #expect(r.status == 0, "\(r.stderr)")
            let record = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
            if let value = expected as? Double {
                let got = record["alpha_c"] as? Double
                #expect(got != nil && abs(got! - value) < 1e-8, "\(target): \(String(describing: record["alpha_c"]))")
            } else {
                #expect(record["alpha_c"] as? String == expected as? String, "\(target): \(String(describing: record["alpha_c"]))")
            }
        }
    }

    @Test("se writes alpha, start, M_r_s…, q, mse, iterations, status; below α_c the overlap vanishes")
    func se() throws {
        let folder = CLI.temporaryFolder()
        let spec = try CLI.writeSpec("teacher: {k: 1, target: \"sign(z1*abs(z1) - 0.3)\"}\ntraining: {protocol: amp, alpha: 1}\n", in: folder)
        let r = try CLI.run(["se", "--spec", spec, "--alpha", "0.5:1:0.5", "--out", folder.path, "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let csv = try String(contentsOf: folder.appendingPathComponent("se.csv"), encoding: .utf8)
        let lines = csv.split(separator: "\n")
        #expect(lines.first == "alpha,start,M_1_1,q,mse,iterations,status")
        #expect(lines.count == 3)
        #expect(lines.dropFirst().allSatisfy { $0.hasSuffix(",converged") })
    }

    @Test("bad input is refused with the field and the value, exit code 64")
    func refusals() throws {
        let folder = CLI.temporaryFolder()
        let cases: [(String, [String], String)] = [
            ("teacher: {k: 5, target: \"z1\"}\ntraining: {protocol: amp, alpha: 1}\n", [], "teacher.k"),
            ("teacher: {k: 1, target: \"z1\", noise: -0.1}\ntraining: {protocol: amp, alpha: 1}\n", [], "teacher.noise"),
            ("teacher: {k: 1, target: \"z1\"}\ntraining: {protocol: amp, alpha: 0}\n", [], "training.alpha"),
            ("teacher: {k: 2, target: \"z1*z3\"}\ntraining: {protocol: amp, alpha: 1}\n", [], "teacher.target"),
            ("teacher: {k: 1, target: \"z1\"}\nstudent: {p: 1}\ntraining: {protocol: amp, alpha: 1}\n", [], "student"),
            ("teacher: {k: 1, target: \"z1\"}\ntraining: {protocol: amp, alpha: 1}\n", ["--alpha", "-1"], "--alpha"),
            ("teacher: {k: 1, target: \"z1\"}\ntraining: {protocol: amp, alpha: 1}\namp: {damping: 1.5}\n", [], "amp.damping"),
        ]
        for (text, extra, field) in cases {
            let spec = try CLI.writeSpec(text, in: folder)
            let r = try CLI.run(["se", "--spec", spec, "--out", folder.path, "--quiet"] + extra)
            #expect(r.status == 64, "\(field): exit \(r.status)")
            #expect(r.stderr.contains(field), "\(field): \(r.stderr)")
        }
        // An online spec given to se, and an amp spec given to ode, name the protocol.
        let online = try CLI.writeSpec(CLI.validSpec, in: folder)
        let r1 = try CLI.run(["se", "--spec", online, "--out", folder.path])
        #expect(r1.status == 64 && r1.stderr.contains("training"))
        let amp = try CLI.writeSpec("teacher: {k: 1, target: \"z1\"}\ntraining: {protocol: amp, alpha: 1}\n", in: folder)
        let r2 = try CLI.run(["ode", "--spec", amp, "--out", folder.path])
        #expect(r2.status == 64 && r2.stderr.contains("training.protocol"))
    }
}

/// `plateau gamp` and `plateau compare` on an amp spec.
@Suite("plateau gamp and compare (amp)")
struct GAMPCLITests {
    typealias CLI = CLITests

    @Test("gamp writes seeds.csv and summary.csv; compare on an amp spec writes agreement.csv with verdicts")
    func gampAndCompare() throws {
        let folder = CLI.temporaryFolder()
        let spec = try CLI.writeSpec("teacher: {k: 1, target: \"sign(z1)\"}\ntraining: {protocol: amp, alpha: 2}\namp: {epsilon: 0.1}\n", in: folder)
        let g = try CLI.run(["gamp", "--spec", spec, "--dimension", "300", "--seeds", "3", "--iterations", "4", "--out", folder.path, "--quiet"])
        #expect(g.status == 0, "\(g.stderr)")
        let seeds = try String(contentsOf: folder.appendingPathComponent("seeds.csv"), encoding: .utf8).split(separator: "\n")
        #expect(seeds.first == "seed,t,M_1_1,Q_1_1,q")
        #expect(seeds.count == 1 + 3 * 5)
        let c = try CLI.run(["compare", "--spec", spec, "--dimension", "300", "--seeds", "4", "--iterations", "4", "--format", "json",
                             "--out", folder.path, "--quiet"])
        #expect(c.status == 0, "\(c.stderr)")
        let record = try JSONSerialization.jsonObject(with: Data(c.stdout.utf8)) as! [String: Any]
        #expect(record["protocol"] as? String == "amp")
        #expect((record["comparisons"] as? Int ?? 0) > 0)
        let agreement = try String(contentsOf: folder.appendingPathComponent("agreement.csv"), encoding: .utf8)
        #expect(agreement.hasPrefix("t,observable,theory,simulation_mean"))
        let bad = try CLI.run(["gamp", "--spec", spec, "--dimension", "1", "--out", folder.path])
        #expect(bad.status == 64 && bad.stderr.contains("gamp.dimension"), "\(bad.stderr)")
    }
}
