import Foundation
import Testing

/// `plateau simulate` and `plateau dmft` on multipass specs.
@Suite("plateau dmft and multipass simulate")
struct MultipassCLITests {
    static let ridge = """
    teacher: {k: 1, activation: linear}
    student: {p: 1, activation: linear}
    training: {protocol: multipass, learningRate: 0.3, alpha: 0.5, steps: 5, ridge: 0.1, particles: 20000}
    init: {M: [[0]], Q: [[1]]}
    """

    @Test("dmft writes dmft.csv with the columns and standard errors; the Gaussian path is exact")
    func dmft() throws {
        let folder = CLITests.temporaryFolder()
        let spec = try CLITests.writeSpec(Self.ridge, in: folder)
        let r = try CLITests.run(["dmft", "--spec", spec, "--out", folder.path, "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let csv = try String(contentsOf: folder.appendingPathComponent("dmft.csv"), encoding: .utf8)
        let lines = csv.split(separator: "\n")
        let header = lines[0].split(separator: ",").map(String.init)
        for name in ["t", "M_1_1", "M_1_1_se", "Q_1_1", "Q_1_1_se", "risk", "risk_se", "train_loss", "train_loss_se"] {
            #expect(header.contains(name), "\(header)")
        }
        #expect(lines.count == 7)
        let row1 = lines[2].split(separator: ",").map { Double($0)! }
        #expect(abs(row1[header.firstIndex(of: "M_1_1")!] - 0.15) < 1e-12 && abs(row1[header.firstIndex(of: "Q_1_1")!] - 0.7849) < 1e-12)
        #expect(r.stdout.contains("gaussian"))
        // Monte Carlo on the same spec: standard errors are positive.
        let mc = try CLITests.run(["dmft", "--spec", spec, "--out", folder.path, "--quiet", "--method", "monte-carlo", "--replicas", "4"])
        #expect(mc.status == 0, "\(mc.stderr)")
        let mcRow = try String(contentsOf: folder.appendingPathComponent("dmft.csv"), encoding: .utf8).split(separator: "\n")[2]
            .split(separator: ",").map { Double($0)! }
        #expect(mcRow[header.firstIndex(of: "M_1_1_se")!] > 0)
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("kernels.csv").path))
    }

    @Test("simulate runs a multipass spec (one row per GD step, train_loss); bad values are refused by name")
    func simulate() throws {
        let folder = CLITests.temporaryFolder()
        let spec = try CLITests.writeSpec(Self.ridge, in: folder)
        let r = try CLITests.run(["simulate", "--spec", spec, "--out", folder.path, "--dimension", "200", "--seeds", "4", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try String(contentsOf: folder.appendingPathComponent("summary.csv"), encoding: .utf8)
        #expect(summary.split(separator: "\n").count == 7 && summary.contains("train_loss_se"))
        let bad = try CLITests.writeSpec(Self.ridge.replacingOccurrences(of: "alpha: 0.5", with: "alpha: -2"), in: folder, name: "bad.yaml")
        let b = try CLITests.run(["dmft", "--spec", bad, "--out", folder.path])
        #expect(b.status == 64 && b.stderr.contains("training.alpha") && b.stderr.contains("-2"), "\(b.stderr)")
    }
}

extension MultipassCLITests {
    @Test("reproduce batch-reuse --quick: overlaps and curves for DMFT, reuse and fresh samples; specs; notebook")
    func batchReuse() throws {
        let folder = CLITests.temporaryFolder()
        let r = try CLITests.run(["reproduce", "batch-reuse", "--quick", "--quiet", "--out", folder.path])
        #expect(r.status == 0, "\(r.stderr)")
        try ReproduceTests.checkFolder(folder, columns: [
            "overlaps.csv": ["alpha", "method", "t", "row", "direction", "overlap", "se"],
            "curves.csv": ["alpha", "method", "t", "risk", "risk_se", "train_loss", "train_loss_se"],
        ], readme: ["DMFT against the simulator", "He₃"], specs: ["multipass-alpha3.yaml", "fresh-alpha3.yaml"])
        try ReproduceTests.checkNotebook(folder, reads: ["overlaps.csv", "curves.csv"])
        let overlaps = try ReproduceTests.readCSV(folder.appendingPathComponent("overlaps.csv"))
        for method in ["dmft", "multipass-simulation", "fresh-simulation"] {
            #expect(overlaps.rows.contains { $0["method"] == method }, "no \(method) rows")
        }
        // The spec written is read back by plateau dmft.
        let dmft = try CLITests.run(["dmft", "--spec", folder.appendingPathComponent("specs/multipass-alpha3.yaml").path,
                                     "--particles", "2000", "--replicas", "2", "--quiet", "--out", folder.appendingPathComponent("dmft").path])
        #expect(dmft.status == 0, "\(dmft.stderr)")
    }
}
