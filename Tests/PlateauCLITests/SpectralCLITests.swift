import Foundation
import Testing

/// `plateau spectral`: the JSON record per α, the finite-d columns and refused input.
@Suite("plateau spectral")
struct SpectralCLITests {
    typealias CLI = CLITests

    @Test("--format json: one record per α with alpha, m2_L, m2_T, outlier_L, bulk_radius_L, bulk_edge_T, and _sim/_sim_se at finite d")
    func json() throws {
        let folder = CLI.temporaryFolder()
        let spec = try CLI.writeSpec("teacher: {k: 2, target: \"sign(z1*z2)\"}\ntraining: {protocol: amp}\n", in: folder)
        let r = try CLI.run(["spectral", "--spec", spec, "--alpha", "2,8", "--dimension", "200", "--seeds", "2", "--format", "json",
                             "--out", folder.path, "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let record = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        let points = record["points"] as! [[String: Any]]
        #expect(points.count == 2)
        for key in ["alpha", "m2_L", "m2_T", "outlier_L", "bulk_radius_L", "bulk_edge_T", "m2_L_sim", "m2_L_sim_se", "m2_T_sim"] {
            #expect(points.allSatisfy { $0[key] is Double }, "\(key)")
        }
        #expect(abs((points[1]["m2_L"] as! Double) - (1 - Double.pi * Double.pi / 32)) < 1e-9)
        #expect(points[0]["m2_L"] as! Double == 0)
        let csv = try String(contentsOf: folder.appendingPathComponent("spectral.csv"), encoding: .utf8)
        #expect(csv.hasPrefix("alpha,m2_L,"))
    }

    @Test("bad input is refused naming the field and the value: a preprocessing in x, a trivial target, a tiny dimension")
    func refused() throws {
        let folder = CLI.temporaryFolder()
        let spec = try CLI.writeSpec("teacher: {k: 1, target: \"z1^2\"}\ntraining: {protocol: amp}\n", in: folder)
        let bad = try CLI.run(["spectral", "--spec", spec, "--alpha", "1", "--preprocessing", "1 - 1/x", "--out", folder.path])
        #expect(bad.status == 64 && bad.stderr.contains("--preprocessing") && bad.stderr.contains("x"), "\(bad.stderr)")
        let trivial = try CLI.writeSpec("teacher: {k: 1, target: \"z1 + z1^2\"}\ntraining: {protocol: amp}\n", in: folder)
        let t = try CLI.run(["spectral", "--spec", trivial, "--alpha", "1", "--out", folder.path])
        #expect(t.status == 64 && t.stderr.contains("teacher.target"), "\(t.stderr)")
        let small = try CLI.run(["spectral", "--spec", spec, "--alpha", "1", "--dimension", "2", "--out", folder.path])
        #expect(small.status == 64 && small.stderr.contains("spectral.dimension") && small.stderr.contains("2"), "\(small.stderr)")
    }

    /// z₁ sign(z₂)/|z| is a bijection of z₁/z₂ (`../shared/reference/spectral.md`: α_c = 1, m²_L = 1 − 1/α,
    /// 𝒯 undefined because E[zzᵀ | y] has rank 1 on every level set).
    @Test("undefined 𝒯 (z1/z2 through a bounded bijection): refused naming the target; --estimators L gives L alone")
    func undefinedT() throws {
        let folder = CLI.temporaryFolder()
        let spec = try CLI.writeSpec("teacher: {k: 2, target: \"z1*sign(z2)/sqrt(z1^2 + z2^2)\"}\ntraining: {protocol: amp}\n", in: folder)
        let refused = try CLI.run(["spectral", "--spec", spec, "--alpha", "2", "--out", folder.path])
        #expect(refused.status == 64 && refused.stderr.contains("teacher.target") && refused.stderr.contains("z1*sign(z2)")
                && refused.stderr.contains("--estimators L"), "\(refused.stderr)")
        let r = try CLI.run(["spectral", "--spec", spec, "--alpha", "2", "--estimators", "L", "--format", "json", "--out", folder.path])
        #expect(r.status == 0, "\(r.stderr)")
        let record = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        let point = (record["points"] as! [[String: Any]])[0]
        #expect(abs((point["m2_L"] as! Double) - 0.5) < 3e-3, "\(point)")  // the binned output's error, as in SpectralTheoryTests.ratio
        #expect(point["m2_T"] == nil && point["bulk_edge_T"] == nil, "\(point)")
        let wrong = try CLI.run(["spectral", "--spec", spec, "--alpha", "2", "--estimators", "T", "--out", folder.path])
        #expect(wrong.status == 64 && wrong.stderr.contains("--estimators"), "\(wrong.stderr)")
    }

    @Test("reproduce spectral-transition --quick writes theory, finite-d and spectrum CSVs, specs, README and notebook; every row agrees")
    func reproduction() throws {
        let folder = CLI.temporaryFolder()
        let r = try CLI.run(["reproduce", "spectral-transition", "--quick", "--quiet", "--out", folder.path])
        #expect(r.status == 0, "\(r.stderr)")
        for file in ["README.md", "plot.ipynb", "theory.csv", "finite_d.csv", "spectrum_L.csv", "specs/phase-retrieval.yaml"] {
            #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent(file).path), "\(file)")
        }
        let finite = try String(contentsOf: folder.appendingPathComponent("finite_d.csv"), encoding: .utf8).split(separator: "\n")
        #expect(finite.first == "case,target,dimension,alpha,observable,theory,mean,se,threshold,agrees")
        #expect(finite.count > 2 && finite.dropFirst().allSatisfy { $0.hasSuffix(",true") })
        let theory = try String(contentsOf: folder.appendingPathComponent("theory.csv"), encoding: .utf8)
        #expect(theory.hasPrefix("case,target,alpha,alpha_c,m2_L,m2_T,outlier_L,bulk_radius_L,bulk_edge_T"))
    }
}
