import Foundation
import Testing

/// `plateau reproduce batch-size`: the quick run writes its folder (specs, CSVs with their declared
/// columns, notebook, README); the exact map and the simulator agree on the recovery time at d = 1024;
/// below the transition T ∝ 1/n_b (slope checked against the fit's own standard error); the
/// transitions scale like d^{ℓ/2} = d; and the edge of the square loss's recovery is the one derived
/// by hand at small overlap (not by the package), for the He₂ target and spherical He₂ neuron:
///
///     ΔM = (η/d)Ψ,  ΔQ = (2η/d)Φ + (η²/(n_b d))Ξ + (η²/d²)(1 − 1/n_b)[Ψ² + Φ⊥²/Q⊥]
///     square loss at m → 0: Ψ = 4m − 4m = 0, Φ = 4m² − 4 → −4, Ξ = 4E[λ²(He₂(ν) − He₂(λ))²] = 48,
///     Φ⊥ = Φ − Ψm = −4, Q⊥ = 1 − m² → 1, so m'² = m²/((1 − 4γ)² + 48γ²d/n_b),  γ = η/d.
///
/// With η = γ₀n_b the gain exceeds 1 iff n_b/d < (1 − 6γ₀)/(2γ₀) (= 7 for γ₀ = 0.05), up to the
/// (1 − 1/n_b) factor, i.e. a relative 1/n_b.
@Suite("plateau reproduce batch-size")
struct BatchSizeTests {
    static let quickRun: (folder: URL, result: CLITests.Run) = {
        let folder = CLITests.temporaryFolder().appendingPathComponent("batch-size")
        let r = try! CLITests.run(["reproduce", "batch-size", "--quick", "--quiet", "--out", folder.path])
        return (folder, r)
    }()

    static let expectedColumns: [String: [String]] = [
        "recovery_times.csv": ["d", "loss", "protocol", "n_b", "n_b_over_d_half_l", "learning_rate", "T_map", "samples_map", "T_sim_mean",
                               "T_sim_se", "T_sim_sd", "seeds", "recovered_seeds", "horizon_steps", "deviation_se", "critical_value", "agrees"],
        "seed_times.csv": ["d", "protocol", "n_b", "seed", "T_sim", "T_map"],
        "transitions.csv": ["d", "n_b_star", "n_b_star_over_d_half_l", "T_min_square", "n_b_cap", "n_b_edge", "n_b_edge_over_d_half_l",
                            "n_b_double_square", "n_b_double_correlation", "T_min_correlation"],
        "fits.csv": ["l", "fit", "source", "protocol", "d", "x", "y", "slope", "slope_se", "intercept", "expected_slope", "points"],
        "recovery_times_l3.csv": ["d", "loss", "protocol", "n_b", "n_b_over_d_half_l", "learning_rate", "m0", "T_map", "samples_map"],
        "transitions_l3.csv": ["d", "n_b_star", "n_b_star_over_d_half_l", "T_min_square", "n_b_edge", "n_b_edge_over_d_half_l",
                               "n_b_double_square", "n_b_double_correlation", "n_b_double_correlation_over_d_l_minus_1", "T_min_correlation"],
        "curves.csv": ["source", "d", "protocol", "n_b", "step", "m", "m_se"],
    ]

    static func rows(_ name: String) throws -> [[String: String]] {
        try ReproduceTests.readCSV(quickRun.folder.appendingPathComponent(name)).rows
    }

    static func number(_ row: [String: String], _ column: String) -> Double {
        switch row[column] {
        case "inf": return .infinity
        case "nan", nil: return .nan
        case let s?: return Double(s) ?? .nan
        }
    }

    @Test("the quick run writes the folder: specs, CSVs with their declared columns, README, notebook")
    func quickFiles() throws {
        let (folder, r) = Self.quickRun
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("Fitted exponents") && r.stdout.contains("wrote"), "\(r.stdout)")
        try ReproduceTests.checkFolder(folder, columns: Self.expectedColumns,
                                       readme: ["What is reproduced", "Settings", "Why ℓ = 2", "m₀ = 0.1", "Fitted exponents", "Map against simulator", "2406.02157"],
                                       specs: ["simulation-square-d1024-nb64.yaml", "simulation-correlation-d1024-nb64.yaml",
                                               "map-square-d4294967296-nb67108864.yaml"])
        // A spec is read back by the package's own reader and iterated by the map.
        let out = CLITests.temporaryFolder()
        let ode = try CLITests.run(["ode", "--spec", folder.appendingPathComponent("specs/simulation-square-d1024-nb64.yaml").path,
                                    "--map-dimension", "1024", "--quiet", "--out", out.path])
        #expect(ode.status == 0, "\(ode.stderr)")

        try ReproduceTests.checkNotebook(folder, reads: Self.expectedColumns.keys)
    }

    /// The simulator's mean T over seeds against the map's T at the same d, every simulated row: within
    /// z·SE, z the Bonferroni Student-t quantile at family-wise α = 0.01 that the run reports (checked to
    /// be that quantile's size: between t(0.999) ≈ 3.7 and 4.5 for 2–8 comparisons and 16 seeds).
    @Test("map and simulator agree on the recovery time at d = 1024 within the seed standard error")
    func mapAgreesWithSimulator() throws {
        let simulated = try Self.rows("recovery_times.csv").filter { $0["d"] == "1024" && Self.number($0, "seeds") > 0 }
        #expect(simulated.count >= 4)
        for row in simulated {
            let (map, mean, se, z) = (Self.number(row, "T_map"), Self.number(row, "T_sim_mean"), Self.number(row, "T_sim_se"),
                                      Self.number(row, "critical_value"))
            #expect(z > 3.5 && z < 4.5, "critical value \(z)")
            #expect(map.isFinite && mean.isFinite && se > 0, "\(row)")
            #expect(abs(mean - map) <= z * se, "\(row["protocol"]!) n_b = \(row["n_b"]!): simulator \(mean) ± \(se), map \(map)")
            #expect(Self.number(row, "recovered_seeds") == Self.number(row, "seeds"))
        }
    }

    /// Below the transition T ∝ 1/n_b. The simulator's slope (weighted by the seed standard error of
    /// ln T̄) must lie within 3 of its standard errors of −1 (two-sided 0.3 % per fit); the map's slope,
    /// deterministic, within 0.01 of −1 (the curvature of ln T over the fitted range, ≤ 0.8 % for these
    /// sizes); the transitions against d, exactly d^{ℓ/2} = d for a fixed m₀, within 10⁻³.
    @Test("fitted exponents: T ∝ n_b^{-1} below the transition, transitions ∝ d")
    func exponents() throws {
        let fits = try Self.rows("fits.csv")
        let sim = fits.filter { $0["source"] == "simulation" && $0["fit"]!.hasPrefix("ln T") }
        #expect(sim.count == 2)
        for f in sim {
            let (slope, se) = (Self.number(f, "slope"), Self.number(f, "slope_se"))
            #expect(se > 0 && se < 0.1, "slope SE \(se)")
            #expect(abs(slope + 1) <= 3 * se, "\(f["protocol"]!): simulator slope \(slope) ± \(se)")
        }
        for f in fits where f["l"] == "2" && f["source"] == "map" && f["fit"]!.hasPrefix("ln T") {
            #expect(abs(Self.number(f, "slope") + 1) < 0.01, "\(f)")
        }
        let transitions = fits.filter { $0["fit"] == "transition vs d" && $0["l"] == "2" }
        #expect(transitions.count == 4)
        for f in transitions { #expect(abs(Self.number(f, "slope") - 1) < 1e-3, "\(f)") }
    }

    @Test("the square loss stops recovering above the hand-derived edge 7·d; the correlation loss never does")
    func recoveryEdge() throws {
        for t in try Self.rows("transitions.csv") {
            let (d, edge) = (Self.number(t, "d"), Self.number(t, "n_b_edge"))
            #expect(abs(edge / d - 7) <= 7 / d + 2 / d, "d = \(d): edge \(edge)")
            // The least T sits below the edge, near the leading-order optimum 3.5·d (m-dependent corrections).
            let best = Self.number(t, "n_b_star_over_d_half_l")
            #expect(best > 3 && best < 3.6, "d = \(d): n_b*/d = \(best)")
        }
        for row in try Self.rows("recovery_times.csv") {
            let (nb, d, T) = (Self.number(row, "n_b"), Self.number(row, "d"), Self.number(row, "T_map"))
            switch row["protocol"] {
            case "correlation": #expect(T.isFinite, "correlation n_b = \(nb), d = \(d)")
            case "square": #expect(T.isFinite == (nb < 7 * d), "square n_b = \(nb), d = \(d): T = \(T)")
            default: #expect(T.isFinite)
            }
        }
    }

    /// ℓ = 3 (He₃ target and spherical He₃ neuron, m₀ = d^{−1/2}, η = γ₀n_b/√d), derived by hand as
    /// above: Ψ = 18m² − 18m, Φ = 18m³ − 18, Ξ(m = 0) = 18·6 + 9E[(λ² − 1)²(λ³ − 3λ)²] = 108 + 3348 = 3456, so
    /// with γ = η/d = γ₀x (x = n_b/d^{3/2}) and d/n_b = 1/(x√d), one step multiplies m by
    ///     m'/m = (1 − 18γ + 18γm)/√((1 − 18γ)² + 3456γ²d/n_b + O(γ²/n_b)),
    /// and at m = m₀ = d^{−1/2} the O(d^{−1/2}) part of m'/m − 1 vanishes at
    ///     18(1 − 18γ₀x) = 1728γ₀,  x_edge = (1 − 96γ₀)/(18γ₀) = 5.78 for γ₀ = 0.005:
    /// the square loss's edge sits at n_b ≈ 5.78·d^{3/2}, approached from above like d^{−1/2} (the O(m²)
    /// terms are O(1/d), i.e. a relative O(d^{−1/2}) shift of the root). The correlation loss has no
    /// radial term (Ψ = 18m², Φ = 18m³) and recovers at every n_b.
    @Test("ℓ = 3: the square loss's edge tends to the hand-derived (1 − 96γ₀)/(18γ₀)·d^{3/2} like d^{−1/2}; the correlation loss always recovers; T ∝ 1/n_b below")
    func cubicEdge() throws {
        let gamma0 = 0.005
        let limit = (1 - 96 * gamma0) / (18 * gamma0)
        var scaled: [Double] = []
        for t in try Self.rows("transitions_l3.csv") {
            let (d, edge) = (Self.number(t, "d"), Self.number(t, "n_b_edge_over_d_half_l"))
            let deviation = edge - limit
            // Positive and O(d^{-1/2}) with an O(1) coefficient (one batch of bisection is below 10⁻³ here).
            #expect(deviation > 0 && deviation < 5 / d.squareRoot(), "d = \(d): edge/d^{3/2} = \(edge) against \(limit)")
            scaled.append(deviation * d.squareRoot())
        }
        #expect(scaled.count == 3)
        // The d^{−1/2} law: deviation·√d is the same at every d up to the next order, O(d^{−1/2}) relative.
        if let lo = scaled.min(), let hi = scaled.max() { #expect(hi / lo < 1.3, "deviation·√d: \(scaled)") }
        for row in try Self.rows("recovery_times_l3.csv") {
            let (nb, d, T) = (Self.number(row, "n_b"), Self.number(row, "d"), Self.number(row, "T_map"))
            switch row["protocol"] {
            case "correlation": #expect(T.isFinite, "correlation n_b = \(nb), d = \(d)")
            case "square": #expect(!T.isFinite || nb < limit * 1.1 * pow(d, 1.5), "square n_b = \(nb), d = \(d): T = \(T)")
            default: break
            }
        }
        let speedUp = try Self.rows("fits.csv").filter { $0["l"] == "3" && $0["fit"]!.hasPrefix("ln T") }
        #expect(speedUp.count == 6)
        for f in speedUp { #expect(abs(Self.number(f, "slope") + 1) < 0.01, "\(f)") }
    }
}
