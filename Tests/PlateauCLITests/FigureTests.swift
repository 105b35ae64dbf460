import Foundation
import Testing

/// Every study's notebook runs on freshly computed data and writes its figures: for each folder of
/// notebooks-data/, `plateau reproduce NAME --quick` (or, for a sweep-driven study with a grid.yaml,
/// its quick grid through `plateau sweep` and `sweep collect`) in a temporary folder, then
/// scripts/figures/run_notebooks.py executes the notebook there and fails on any error or on no PNG.
/// Needs the pinned Python environment: `make figures-test` (PLATEAU_FIGURE_TESTS=1, PLATEAU_PYTHON).
@Suite("figures", .serialized)
struct FigureTests {
    static let environment = ProcessInfo.processInfo.environment
    static let enabled = environment["PLATEAU_FIGURE_TESTS"] == "1"
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var studies: [String] {
        let root = repository.appendingPathComponent("notebooks-data")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        return names.filter { FileManager.default.fileExists(atPath: root.appendingPathComponent("\($0)/plot.ipynb").path) }.sorted()
    }

    @Test("each study's notebook runs on quick data and writes PNGs", .enabled(if: enabled), arguments: studies)
    func notebook(_ name: String) throws {
        let python = try #require(Self.environment["PLATEAU_PYTHON"], "PLATEAU_PYTHON: the figures environment's python (make figures-test sets it)")
        let study = Self.repository.appendingPathComponent("notebooks-data/\(name)")
        let folder = CLITests.temporaryFolder().appendingPathComponent(name)
        let grid = study.appendingPathComponent("grid-quick.yaml")
        if FileManager.default.fileExists(atPath: grid.path) {
            // A sweep-driven study: its base spec and quick grid, swept and collected into the folder.
            let sweep = folder.appendingPathComponent("sweep")
            let r = try CLITests.run(["sweep", "--spec", study.appendingPathComponent("base.yaml").path, "--grid", grid.path,
                                      "--out", sweep.path, "--quiet"])
            #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
            for extra in try FileManager.default.contentsOfDirectory(atPath: study.path) where extra.hasPrefix("grid") && extra != "grid-quick.yaml" && extra != "grid.yaml" {
                let more = folder.appendingPathComponent("sweep-\(extra)")
                let m = try CLITests.run(["sweep", "--spec", study.appendingPathComponent("base.yaml").path, "--grid",
                                          study.appendingPathComponent(extra).path, "--out", more.path, "--quiet"])
                #expect(m.status == 0, "\(m.stdout)\n\(m.stderr)")
                _ = try CLITests.run(["sweep", "collect", more.path, "--output", folder.appendingPathComponent(extra.replacingOccurrences(of: ".yaml", with: ".csv")).path])
            }
            let c = try CLITests.run(["sweep", "collect", sweep.path, "--output", folder.appendingPathComponent("sweep.csv").path])
            #expect(c.status == 0 && c.stdout.contains("0 failed, 0 missing"), "\(c.stdout)")
            try FileManager.default.copyItem(at: study.appendingPathComponent("plot.ipynb"), to: folder.appendingPathComponent("plot.ipynb"))
        } else {
            let r = try CLITests.run(["reproduce", name, "--quick", "--quiet", "--out", folder.path])
            #expect(r.status == 0, "\(r.stderr)")
        }
        let nb = try CLITests.run([Self.repository.appendingPathComponent("scripts/figures/run_notebooks.py").path, folder.path],
                                  executable: URL(fileURLWithPath: python))
        #expect(nb.status == 0, "\(name): \(nb.stdout)\n\(nb.stderr)")
        let pngs = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".png") }
        #expect(!pngs.isEmpty, "\(name): no figure written")
    }
}
