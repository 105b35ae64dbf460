import ArgumentParser
import Foundation
import PlateauCore
import PlateauTheory

/// `plateau threshold`: the weak-recovery threshold α_c and the subspaces learned first.
struct ThresholdCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "threshold",
        abstract: "Weak-recovery threshold α_c = 1/λ_max(𝓕), the trivial and the easy subspace of a multi-index model.",
        discussion: """
        At the uninformative point M = 0 (EQUATIONS.md §2): directions with E[z | y] ≠ 0 form the trivial
        subspace (learned at any α > 0, so α_c = 0); otherwise M = 0 is a fixed point whose stability is
        governed by 𝓕(A) = E_y[G(y) A G(y)], G(y) = E[zzᵀ | y] − I, on symmetric k×k matrices, and
        α_c = 1/λ_max(𝓕) (∞ when 𝓕 vanishes within the channel's accuracy). The top eigenvector names
        the easy subspace. With --format json: a record with alpha_c (a number, "inf" or 0).
        """)

    @OptionGroup var common: EstimationOptions

    @Flag(name: .long, help: "Also the learning hierarchy: the rank of the uninformed state-evolution fixed point over α (log grid, bisection), i.e. which directions are learned from which α on (hierarchical thresholds). Costs many state-evolution runs.")
    var hierarchy = false

    @Option(name: .customLong("alpha-max"), help: "Upper end of the α range of --hierarchy.")
    var alphaMax: Double = 20

    @Flag(name: .long, help: "Resolve a noiseless product output (z1*z2, z1*z2*z3, …) in the channel's bins like any continuous output, instead of its exact law (the general route, to check one against the other).")
    var binned = false

    func run() throws {
        let problem = try common.problem()
        let started = Date()
        guard alphaMax.isFinite, alphaMax > 0.02 else { throw ValidationError("--alpha-max must be a finite number > 0.02 (got \(alphaMax))") }
        // A noiseless product of coordinates has an exact law (no channel needed unless the hierarchy runs
        // the state evolution).
        let law = binned ? nil : ProductOutputLaw(problem: problem)
        let se = law == nil || hierarchy ? try StateEvolution(problem: problem) : nil
        let a = law.map { WeakRecoveryAnalysis(law: $0) } ?? se!.weakRecovery(exactProduct: false)
        let stages = hierarchy ? se!.hierarchy(alphaMax: alphaMax) : []
        var record: [String: Any] = [
            "alpha_c": a.alphaC == .infinity ? "inf" : a.alphaC as Any,
            "easy_threshold": a.easyThreshold == .infinity ? "inf" : a.easyThreshold as Any,
            "trivial_subspace": a.trivialSubspace,
            "trivial_matrix": a.trivialMatrix.nested,
            "easy_subspace": a.easySubspace,
            "top_eigenvector": a.topEigenvector.nested,
            "operator_eigenvalues": a.operatorEigenvalues,
            "operator_resolution": a.operatorResolution,
            "target": problem.target.description, "k": problem.k, "noise": problem.noise,
            "channel": law.map(productRecord) ?? channelRecord(se!),
        ]
        // A binned (continuous, noiseless) output: the limit h → 0 checked on bins of twice the width.
        let check = law == nil ? se!.binningCheck(analysis: a) : nil
        if let check {
            record["binning_check"] = ["width": check.width, "easy_threshold_at_double_width": check.easyThresholdAtDoubleWidth,
                                       "error_estimate": check.errorEstimate]
        }
        if hierarchy {
            record["hierarchy"] = stages.map { ["alpha": $0.alpha, "rank": $0.rank, "directions": $0.directions] as [String: Any] }
        }
        let writer = try common.writer(default: "threshold")
        var report = record
        report["spec"] = problem.specTree
        report["version"] = PlateauVersion.string
        // The wall time goes to stdout only: the files are the same bytes on a rerun.
        try writer.write("threshold.json", JSON.string(report))
        let seconds = Date().timeIntervalSince(started)
        switch common.format {
        case .json:
            record["wall_seconds"] = seconds
            print(JSON.string(record), terminator: "")
        case .table:
            func vec(_ v: [Double]) -> String { "(" + v.map { String(format: "%.4f", $0) }.joined(separator: ", ") + ")" }
            print("weak recovery: \(problem.target) (k = \(problem.k), Δ = \(problem.noise)); \(law.map(productDescription) ?? channelDescription(se!))")
            print("alpha_c = \(a.alphaC == .infinity ? "inf" : String(format: "%.10g", a.alphaC))")
            print("trivial subspace: \(a.trivialSubspace.isEmpty ? "none" : a.trivialSubspace.map(vec).joined(separator: ", "))")
            print("λ_max(𝓕) = \(String(format: "%.10g", a.operatorTopEigenvalue)) (resolution \(String(format: "%.2g", a.operatorResolution))), easy threshold 1/λ_max = \(a.easyThreshold == .infinity ? "inf" : String(format: "%.10g", a.easyThreshold))")
            print("easy subspace: \(a.easySubspace.isEmpty ? "none" : a.easySubspace.map(vec).joined(separator: ", "))")
            if let check {
                print("binning: 1/λ_max = \(String(format: "%.10g", check.easyThresholdAtDoubleWidth)) on bins of \(Trajectory.format(2 * check.width)); "
                      + "estimated binning error at h = \(Trajectory.format(check.width)): \(String(format: "%.2g", check.errorEstimate)) (h² term)")
            }
            if hierarchy {
                print(stages.isEmpty ? "hierarchy: nothing learned up to α = \(alphaMax)" : "hierarchy (rank of the uninformed fixed point):")
                for s in stages { print("  from α = \(String(format: "%.4g", s.alpha)): \(s.rank) direction(s) \(s.directions.map(vec).joined(separator: ", "))") }
            }
            print("wrote \(writer.path("threshold.json")) (\(String(format: "%.2f", seconds)) s)")
        }
    }
}

/// The record of the exact product law (`plateau threshold`'s "channel" entry for a product output).
func productRecord(_ law: ProductOutputLaw) -> [String: Any] {
    ["output": "continuous, product of \(law.factors.count) coordinates (exact law)", "atoms": law.atoms.count,
     "sum_rule_error": law.sumRuleError]
}

func productDescription(_ law: ProductOutputLaw) -> String {
    "noiseless product of \(law.factors.count) coordinates: exact law "
        + (law.factors.count == 2 ? "(Bessel K₀, K₁)" : "(one-dimensional integrals of Bessel K₀, K₁)")
        + ", sum rules to \(String(format: "%.1e", law.sumRuleError))"
}
