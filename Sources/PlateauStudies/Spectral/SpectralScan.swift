import Foundation
import PlateauCompare
import PlateauCore
import PlateauSimulation
import PlateauTheory

/// The spectral estimators over an α grid: the d = ∞ curves (`SpectralTheory`) and, optionally, the
/// finite-d measurements over seeds, compared through PlateauCompare with α as the "time" axis.
///
/// The compared observables are the overlaps of the top group (the mean over the `outlierMultiplicity`
/// leading eigenvectors, which is what the theory gives for a degenerate outlier): `m2_L`, `m2_T` when
/// 𝒯 is defined, `m2_P` with a preprocessing. Eigenvalue locations are reported beside them but not
/// judged (they converge more slowly in d and depend on the teacher's norms).
public struct SpectralScan: Sendable {
    public var problem: EstimationProblem
    public var alphas: [Double]
    public var theory: [SpectralPoint]
    /// Per α, per seed (empty without a dimension).
    public var seeds: [[SpectralSeedResult]]
    public var options: SpectralOptions?
    public var report: AgreementReport?
    public var alphaC: Double
    public var outlierMultiplicity: Int
    /// Why T was left out (𝒯 undefined), when it was.
    public var symmetricNote: String?
    /// min over the sample of the smallest eigenvalue of 𝒯(y) (the first seed at the largest α), when
    /// T was built: very negative values mean 𝒯 is unbounded below (it is not clipped).
    public var preprocessingMinimum: Double?

    /// The compared observables for this run.
    public var observables: [String] {
        var names = ["m2_L"]
        if symmetricNote == nil { names.append("m2_T") }
        if options?.preprocessing != nil { names.append("m2_P") }
        return names
    }

    /// Finite-size allowance of the overlap comparison: b/d with b = 10. Eigenvector overlaps of a
    /// spiked matrix carry a finite-d bias that grows near the transition. Scaling study (2026-12-03,
    /// `plateau spectral --alpha 2,4 --dimension d --seeds 16`, d·(mean deviation) ± d·SE, pooled over d by
    /// inverse variance): phase retrieval m²_L at α = 2: 8.0 ± 4.2, 16.7 ± 6.7, 14.6 ± 8.3, 14.5 ± 13.5 for
    /// d = 250, 500, 1000, 2000 (pooled 11 ± 3); at α = 4: 7.8 ± 2.3, 5.3 ± 4.4, 5.3 ± 4.5, 5.5 ± 8.2 (pooled
    /// 7 ± 2); m²_T at both α between −2.6 and +3.7 (pooled −1.2 ± 1). The largest pooled bias sets b.
    /// sign(z₁z₂) at α = 6, 8: d = 800 within ±2.6; d = 200, 400 at α = 6: −24 and −28 (SE 7 and 14), the
    /// split degenerate pair near α_c, which does not scale as 1/d (README, "Spectral estimators").
    public static let finiteSizeAllowance = 10.0

    /// - Parameter symmetric: whether T is asked for. When it is and 𝒯 is undefined for the target
    ///   (E[zzᵀ | y] singular on a set of positive mass), the run is refused naming the target; when it
    ///   is not, T is left out of theory, measurement and comparison.
    public static func run(problem: EstimationProblem, alphas: [Double], options: SpectralOptions?,
                           preprocessing: Formula? = nil, criterion: AgreementCriterion? = nil, symmetric: Bool = true,
                           progress: (@Sendable (Double) -> Void)? = nil) throws -> SpectralScan {
        for a in alphas { try EstimationProblem.validateAlpha(a, field: "alpha") }
        let se = try StateEvolution(problem: problem)
        let theory: SpectralTheory
        do { theory = try SpectralTheory(stateEvolution: se) } catch let e as SpectralTheoryError {
            throw SpecError(field: e.field, value: e.value, reason: e.reason)
        }
        if symmetric, let reason = theory.optimalUndefinedReason {
            throw SpecError(field: "teacher.target", value: "\"\(problem.target.description)\"",
                            reason: "T cannot be built: \(reason); ask for L alone (plateau spectral --estimators L)")
        }
        var curve = theory.curve(alphas: alphas, preprocessing: preprocessing)
        if !symmetric {
            for i in curve.indices { curve[i].m2T = nil; curve[i].outlierT = nil; curve[i].bulkEdgeT = nil }
        }
        var scan = SpectralScan(problem: problem, alphas: alphas, theory: curve, seeds: [], options: nil, report: nil,
                                alphaC: theory.alphaC, outlierMultiplicity: theory.outlierMultiplicity,
                                symmetricNote: symmetric ? nil : "not requested (--estimators L)",
                                preprocessingMinimum: theory.optimalMinimum)
        guard var options else { return scan }
        options.groupSize = theory.outlierMultiplicity
        options.symmetric = symmetric
        options.preprocessing = preprocessing
        scan.options = options
        for (i, alpha) in alphas.enumerated() {
            scan.seeds.append(try SpectralSimulator.run(problem: problem, alpha: alpha, denoiser: se.channel, options: options))
            progress?(Double(i + 1) / Double(alphas.count))
        }
        if let m = scan.seeds.last?.first?.preprocessingMinimum { scan.preprocessingMinimum = m }
        let names = scan.observables
        func theoryValues(_ p: SpectralPoint) -> [Double] {
            names.map { n in
                switch n {
                case "m2_L": return p.m2L
                case "m2_T": return p.m2T ?? .nan
                default: return p.m2P ?? .nan
                }
            }
        }
        func measured(_ r: SpectralSeedResult) -> [Double] {
            names.map { n in
                switch n {
                case "m2_L": return r.m2LGroup
                case "m2_T": return r.m2TGroup ?? .nan
                default: return r.m2P ?? .nan
                }
            }
        }
        var th = Trajectory(observables: names)
        for p in curve { th.append(time: p.alpha, values: theoryValues(p)) }
        let simulation = (0..<options.seeds).map { s in
            var t = Trajectory(observables: names)
            for (alpha, runs) in zip(alphas, scan.seeds) { t.append(time: alpha, values: measured(runs[s])) }
            return t
        }
        // The theory's own accuracy: exact for a discrete output; for a binned continuous one the bias of m²
        // against the continuous limit, measured ≤ 1.6·10⁻³ at h = 0.02 (SpectralTheoryTests), scaled as h².
        let h = se.channel.binWidth ?? 0
        let floor = h > 0 ? 2e-3 * (h / 0.02) * (h / 0.02) : 1e-6
        let c = criterion ?? AgreementCriterion(finiteSizeAllowance: finiteSizeAllowance, integratorTolerance: floor)
        scan.report = Agreement.compare(theory: Array(repeating: th, count: options.seeds), simulation: simulation,
                                        dimension: options.dimension, observables: names, criterion: c)
        return scan
    }

    /// Mean and standard error over the seeds at α index `i` of a measured quantity.
    public func statistics(_ i: Int, _ value: (SpectralSeedResult) -> Double?) -> (mean: Double, se: Double) {
        let xs = seeds[i].compactMap(value)
        guard !xs.isEmpty else { return (.nan, .nan) }
        let (m, s) = SampleStatistics.meanAndStandardError(xs)
        return (m, s)
    }

    /// One record per α: the theory (keys of the issue: alpha, m2_L, m2_T, outlier_L, bulk_radius_L,
    /// bulk_edge_T, …) and, at finite d, the measured means with `_sim` and their standard errors `_sim_se`.
    public func records() -> [[String: Any]] {
        theory.enumerated().map { i, p in
            var r: [String: Any] = ["alpha": p.alpha, "m2_L": p.m2L, "outlier_L": p.outlierL, "bulk_radius_L": p.bulkRadiusL]
            if p.m2LSpread > 1e-9 { r["m2_L_spread"] = p.m2LSpread }
            if let v = p.m2T { r["m2_T"] = v }
            if let v = p.outlierT { r["outlier_T"] = v }
            if let v = p.bulkEdgeT { r["bulk_edge_T"] = v }
            if symmetricNote == nil { r["self_check_T"] = p.selfCheckT }
            if let v = p.m2P { r["m2_P"] = v }
            if let v = p.outlierP { r["outlier_P"] = v }
            if let v = p.bulkEdgeP { r["bulk_edge_P"] = v }
            guard i < seeds.count else { return r }
            let measured: [(String, (SpectralSeedResult) -> Double?)] = [
                ("m2_L", { $0.m2LGroup }), ("m2_L_top", { $0.m2L }), ("outlier_L", { $0.outlierLGroup }),
                ("outlier_L_top", { $0.outlierL }), ("bulk_radius_L", { $0.bulkRadiusL }),
                ("m2_T", { $0.m2TGroup }), ("m2_T_top", { $0.m2T }), ("outlier_T", { $0.outlierTGroup }),
                ("bulk_edge_T", { $0.bulkEdgeT }), ("m2_P", { $0.m2P }), ("outlier_P", { $0.outlierP }),
                ("bulk_edge_P", { $0.bulkEdgeP }),
            ]
            for (name, f) in measured {
                let (m, s) = statistics(i, f)
                if m.isFinite { r[name + "_sim"] = m; r[name + "_sim_se"] = s.isFinite ? s : nil }
            }
            r["L_converged_seeds"] = seeds[i].filter(\.convergedL).count
            // Each member of a degenerate group separately (index 1 = the second largest real part): near α_c a
            // non-informative real eigenvalue can take the second place at finite d.
            if let g = options?.groupSize, g > 1 {
                for j in 1..<g {
                    let (m, s) = statistics(i) { $0.m2LMembers.count > j ? $0.m2LMembers[j] : nil }
                    if m.isFinite { r["m2_L_member\(j + 1)_sim"] = m; r["m2_L_member\(j + 1)_sim_se"] = s.isFinite ? s : nil }
                }
            }
            return r
        }
    }

    /// The CSV of `records()`, with a fixed column order.
    public func csv() -> String {
        let records = self.records()
        let preferred = ["alpha", "m2_L", "m2_L_spread", "outlier_L", "bulk_radius_L", "m2_T", "outlier_T", "bulk_edge_T", "self_check_T",
                         "m2_P", "outlier_P", "bulk_edge_P"]
        var columns = preferred.filter { c in records.contains { $0[c] != nil } }
        let extra = Set(records.flatMap(\.keys)).subtracting(columns).sorted()
        columns += extra
        var out = columns.joined(separator: ",") + "\n"
        for r in records {
            out += columns.map { c in
                if let v = r[c] as? Double { return Trajectory.format(v) }
                if let v = r[c] as? Int { return "\(v)" }
                return ""
            }.joined(separator: ",") + "\n"
        }
        return out
    }
}
