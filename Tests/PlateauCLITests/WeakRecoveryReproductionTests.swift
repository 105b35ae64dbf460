import Foundation
import Testing

/// `plateau reproduce weak-recovery --quick`: the folder (specs, CSVs with their columns, README,
/// notebook), thresholds that match their closed forms, and GAMP against the state evolution.
@Suite("plateau reproduce weak-recovery")
struct WeakRecoveryReproductionTests {
    @Test("the quick run writes thresholds, curves, GAMP points, specs, README and notebook; α_c of sign(z1 z2) is π²/4")
    func quickRun() throws {
        let folder = CLITests.temporaryFolder().appendingPathComponent("weak-recovery")
        let r = try CLITests.run(["reproduce", "weak-recovery", "--quick", "--quiet", "--out", folder.path])
        #expect(r.status == 0, "\(r.stderr)")
        let columns: [String: [String]] = [
            "thresholds.csv": ["case", "target", "k", "noise", "output", "alpha_c", "reference", "reference_note", "lambda_max",
                               "trivial_dimension", "trivial_subspace", "easy_subspace"],
            "se_curves.csv": ["case", "target", "alpha", "q", "mse", "iterations", "status"],
            "hierarchy.csv": ["case", "target", "alpha", "rank", "directions"],
            "gamp.csv": ["case", "target", "alpha", "observable", "state_evolution", "gamp_mean", "gamp_se", "threshold", "agrees"],
        ]
        try ReproduceTests.checkFolder(folder, columns: columns, readme: ["Weak recovery", "α_c", "GAMP"],
                                       specs: ["sign-z1-z2.yaml", "phase-retrieval.yaml", "parity-k-3.yaml"])
        try ReproduceTests.checkNotebook(folder, reads: columns.keys)
        let thresholds = try ReproduceTests.readCSV(folder.appendingPathComponent("thresholds.csv")).rows
        for row in thresholds where row["reference"] != "nan" {
            let got = row["alpha_c"]!, reference = row["reference"]!
            if reference == "inf" || reference == "0" {
                #expect(got == reference, "\(row["case"]!): \(got) against \(reference)")
            } else {
                // Binned outputs converge like h² (phase retrieval at h = 0.04: 3.4e-5); discrete ones are exact.
                #expect(abs(Double(got)! - Double(reference)!) < 5e-5, "\(row["case"]!): \(got) against \(reference)")
            }
        }
        // A spec written by the study is read back by plateau threshold and gives the same α_c.
        let t = try CLITests.run(["threshold", "--spec", folder.appendingPathComponent("specs/sign-z1-z2.yaml").path, "--format", "json",
                                  "--out", folder.appendingPathComponent("check").path])
        let record = try JSONSerialization.jsonObject(with: Data(t.stdout.utf8)) as! [String: Any]
        #expect(abs((record["alpha_c"] as? Double ?? 0) - Double.pi * Double.pi / 4) < 1e-8)
    }
}
