import Foundation
import Testing

/// `plateau reproduce`: the quick Saad–Solla run writes its folder (specs, CSVs with their declared
/// columns, a valid nbformat-4 notebook, README), reproduces the reference plateau, and is
/// deterministic; unknown names and bad options are refused with exit code 64.
@Suite("plateau reproduce")
struct ReproduceTests {
    /// A small CSV reader (quoted cells allowed): header and rows.
    static func readCSV(_ url: URL) throws -> (header: [String], rows: [[String: String]]) {
        let text = try String(contentsOf: url, encoding: .utf8)
        var lines: [[String]] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            var cells: [String] = [], cell = "", quoted = false
            var chars = Array(line)[...]
            while let c = chars.popFirst() {
                if quoted {
                    if c == "\"" {
                        if chars.first == "\"" { cell.append("\""); chars.removeFirst() } else { quoted = false }
                    } else { cell.append(c) }
                } else if c == "\"" { quoted = true } else if c == "," { cells.append(cell); cell = "" } else { cell.append(c) }
            }
            cells.append(cell)
            lines.append(cells)
        }
        let header = lines.first ?? []
        let rows = lines.dropFirst().map { Dictionary(uniqueKeysWithValues: zip(header, $0)) }
        #expect(lines.dropFirst().allSatisfy { $0.count == header.count }, "\(url.lastPathComponent): a row does not match the header")
        return (header, rows)
    }

    /// A quick run's folder: every declared CSV has its header and at least one row, the README has
    /// the phrases, and `specs/` holds the named files.
    static func checkFolder(_ folder: URL, columns: [String: [String]], readme phrases: [String], specs names: [String]) throws {
        for (name, header) in columns {
            let csv = try readCSV(folder.appendingPathComponent(name))
            #expect(csv.header == header, "\(name): header \(csv.header)")
            #expect(!csv.rows.isEmpty, "\(name) has no rows")
        }
        let readme = try String(contentsOf: folder.appendingPathComponent("README.md"), encoding: .utf8)
        for phrase in phrases { #expect(readme.contains(phrase), "README lacks \(phrase)") }
        let specs = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("specs").path)
        for name in names { #expect(specs.contains(name), "missing specs/\(name) in \(specs)") }
    }

    /// `plot.ipynb` is nbformat 4, imports matplotlib, and its code cells read every declared CSV.
    static func checkNotebook(_ folder: URL, reads csvNames: some Sequence<String>) throws {
        let data = try Data(contentsOf: folder.appendingPathComponent("plot.ipynb"))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(json["nbformat"] as? Int == 4)
        let cells = try #require(json["cells"] as? [[String: Any]])
        let code = cells.filter { $0["cell_type"] as? String == "code" }.compactMap { ($0["source"] as? [String])?.joined() }.joined()
        #expect(code.contains("import matplotlib.pyplot as plt"))
        for name in csvNames { #expect(code.contains("\"\(name)\""), "the notebook does not read \(name)") }
    }

    /// One quick run shared by the tests below (about a second in release).
    static let quickRun: (folder: URL, result: CLITests.Run) = {
        let folder = CLITests.temporaryFolder().appendingPathComponent("saad-solla")
        let r = try! CLITests.run(["reproduce", "saad-solla", "--quick", "--quiet", "--out", folder.path])
        return (folder, r)
    }()

    static let expectedColumns: [String: [String]] = [
        "plateaus.csv": ["K", "eta", "epsilon", "plateau_risk", "plateau_R", "plateau_Q", "plateau_C", "fixed_point_residual",
                         "flattest_risk", "flattest_time", "unstable_rate", "escape_time", "eta_times_escape_time",
                         "time_risk_below_1e-3", "window_min_risk", "window_R", "window_Q", "window_C", "horizon", "status", "message"],
        "theory_curves.csv": ["K", "eta", "t", "risk", "asymmetry"],
        "epsilon_sweep.csv": ["K", "eta", "epsilon", "log_inverse_epsilon", "escape_time", "time_risk_below_1e-3"],
        "scaling_fits.csv": ["K", "fit", "x", "y", "slope", "slope_se", "intercept", "expected_slope", "expectation", "points"],
        "simulation_risk.csv": ["K", "d", "t", "theory_mean", "simulation_mean", "simulation_se"],
        "simulation_seeds.csv": ["K", "d", "seed", "t", "risk_simulation", "risk_theory"],
        "escape_times.csv": ["K", "d", "seed", "escape_simulation", "escape_theory"],
        "agreement.csv": ["K", "d", "eta", "seeds", "horizon", "comparisons", "agreeing", "agrees_everywhere", "max_standard_errors",
                          "worst_threshold_ratio", "rms_deviation", "escape_difference_mean", "escape_difference_se", "escape_difference_sd",
                          "escaped_seeds", "verdict"],
    ]

    @Test("the quick run writes the folder: specs, CSVs with their declared columns, README, notebook")
    func quickFiles() throws {
        let (folder, r) = Self.quickRun
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("plateau risk") && r.stdout.contains("wrote"), "\(r.stdout)")
        try Self.checkFolder(folder, columns: Self.expectedColumns,
                             readme: ["What is reproduced", "Settings", "0.014652", "Escape-time scaling", "Finite d against theory", "max |dev|/SE"],
                             specs: ["theory-K2-eta0.5.yaml", "epsilon-K2-eta0.5-eps1e-06.yaml", "simulation-K2-eta0.5.yaml"])
        // Every spec is read back by the package's own reader: the CLI runs it.
        let out = CLITests.temporaryFolder()
        let ode = try CLITests.run(["ode", "--spec", folder.appendingPathComponent("specs/theory-K2-eta0.5.yaml").path,
                                    "--time", "5", "--quiet", "--out", out.path])
        #expect(ode.status == 0, "\(ode.stderr)")
    }

    @Test("plot.ipynb is nbformat-4 JSON whose code reads the CSVs and draws with matplotlib")
    func notebook() throws {
        let (folder, _) = Self.quickRun
        let data = try Data(contentsOf: folder.appendingPathComponent("plot.ipynb"))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(json["nbformat"] as? Int == 4)
        #expect((json["nbformat_minor"] as? Int).map { $0 >= 4 } == true)
        let metadata = json["metadata"] as? [String: Any]
        #expect((metadata?["kernelspec"] as? [String: Any])?["language"] as? String == "python")
        let cells = try #require(json["cells"] as? [[String: Any]])
        var code = ""
        var ids = Set<String>()
        for cell in cells {
            let type = cell["cell_type"] as? String
            #expect(type == "markdown" || type == "code")
            #expect(cell["metadata"] is [String: Any])
            let source = try #require(cell["source"] as? [String])
            if let id = cell["id"] as? String { ids.insert(id) }
            if type == "code" {
                #expect(cell["outputs"] is [Any] && cell.keys.contains("execution_count"))
                code += source.joined()
            }
        }
        #expect(ids.count == cells.count, "cell ids must be present and unique (nbformat 4.5)")
        #expect(code.contains("import matplotlib.pyplot as plt") && code.contains("pd.read_csv"))
        for name in Self.expectedColumns.keys.filter({ $0 != "simulation_seeds.csv" }) {
            #expect(code.contains("\"\(name)\""), "the notebook does not read \(name)")
        }
    }

    /// The reference (`shared/reference/online-sgd.md` §1): K = M = 2, η = 0.5, ε = 1e-9 start,
    /// plateau risk 0.014652 = least risk over t ∈ [100, 500], quoted to 6 decimals and the same at
    /// Euler dt = 0.01 and 0.001.
    ///
    /// Tolerances:
    /// - the same measure on our curve (`window_min_risk`): 1e-6 = the reference's rounding (5e-7)
    ///   plus the Euler bias it rules out at that digit (≤ 5e-7); our integrator is at rtol 1e-10.
    /// - the plateau height proper (the symmetric fixed point, `plateau_risk`) is the t → ∞ limit
    ///   of the symmetric curve, which at t = 500 is still relaxing along a slow stable direction
    ///   (it falls by 7e-6 between t = 400 and 500): it must lie below the window value, by less
    ///   than 1e-5 (0.07 %), and be an exact fixed point (residual < 1e-12).
    @Test("K = M = 2, η = 0.5: the plateau height matches the reference 0.014652")
    func plateauHeight() throws {
        let (folder, _) = Self.quickRun
        let rows = try Self.readCSV(folder.appendingPathComponent("plateaus.csv")).rows
        let row = try #require(rows.first { $0["K"] == "2" && Double($0["eta"] ?? "") == 0.5 })
        let window = try #require(Double(row["window_min_risk"] ?? ""))
        let height = try #require(Double(row["plateau_risk"] ?? ""))
        let residual = try #require(Double(row["fixed_point_residual"] ?? ""))
        #expect(abs(window - 0.014652) <= 1e-6, "least risk over [100, 500]: \(window)")
        #expect(height < window && window - height < 1e-5, "fixed point \(height) vs window \(window)")
        #expect(residual < 1e-12)
        // Overlaps on the reference window (≈ 0.416, 0.375, 0.321, quoted to 3 decimals).
        for (column, value) in [("window_R", 0.416), ("window_Q", 0.375), ("window_C", 0.321)] {
            let x = try #require(Double(row[column] ?? ""))
            #expect(abs(x - value) <= 1.5e-3, "\(column) = \(x), reference ≈ \(value)")
        }
        // The escape-time law: slope of t_esc against ln(1/ε) within 2 % of 1/λ, and t_esc ∝ 1/η at small η.
        let fits = try Self.readCSV(folder.appendingPathComponent("scaling_fits.csv")).rows
        let eps = try #require(fits.first { $0["fit"] == "escape vs ln(1/ε)" && $0["K"] == "2" })
        let (b, expected) = (Double(eps["slope"]!)!, Double(eps["expected_slope"]!)!)
        #expect(abs(b / expected - 1) < 0.02, "slope \(b) vs 1/λ = \(expected)")
        let eta = try #require(fits.first { $0["fit"] == "escape vs η" && $0["K"] == "2" })
        #expect(abs(Double(eta["slope"]!)! + 1) < 0.05, "escape-time exponent \(eta["slope"]!)")
    }

    @Test("deterministic: a second quick run writes the same data")
    func deterministic() throws {
        let (folder, first) = Self.quickRun
        #expect(first.status == 0)
        let again = CLITests.temporaryFolder()
        let r = try CLITests.run(["reproduce", "saad-solla", "--quick", "--quiet", "--out", again.path])
        #expect(r.status == 0, "\(r.stderr)")
        for name in Self.expectedColumns.keys.sorted() + ["plot.ipynb", "specs/simulation-K2-eta0.5.yaml"] {
            let a = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
            let b = try String(contentsOf: again.appendingPathComponent(name), encoding: .utf8)
            #expect(a == b, "\(name) differs between two runs")
        }
    }

    @Test("--list names the reproductions; unknown names and bad options: exit code 64, nothing written")
    func refusals() throws {
        let list = try CLITests.run(["reproduce", "--list"])
        #expect(list.status == 0 && list.stdout.contains("saad-solla"), "\(list.stdout)\(list.stderr)")
        let dir = CLITests.temporaryFolder()
        let out = dir.appendingPathComponent("out")
        let cases: [([String], [String])] = [
            (["reproduce", "saad-sola", "--out", out.path], ["unknown reproduction", "saad-sola", "saad-solla"]),
            (["reproduce", "--out", out.path], ["saad-solla"]),
            (["reproduce", "saad-solla", "--quick", "--dimensions", "100,abc", "--out", out.path], ["--dimensions", "abc"]),
            (["reproduce", "saad-solla", "--quick", "--dimensions", "4", "--out", out.path], ["--dimensions", "4"]),
            (["reproduce", "saad-solla", "--quick", "--seeds", "1", "--out", out.path], ["--seeds", "1"]),
        ]
        for (args, words) in cases {
            let r = try CLITests.run(args)
            #expect(r.status == 64, "\(args): exit \(r.status)")
            for w in words { #expect(r.stderr.contains(w), "\(args): stderr lacks \(w): \(r.stderr)") }
        }
        #expect(!FileManager.default.fileExists(atPath: out.path))
        let help = try CLITests.run(["reproduce", "--help"])
        for w in ["--quick", "--seeds", "--dimensions", "--out", "--list", "notebooks-data"] { #expect(help.stdout.contains(w), "help lacks \(w)") }
    }
}
