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

    func run() throws {
        let problem = try common.problem()
        let started = Date()
        let se = try StateEvolution(problem: problem)
        let a = se.weakRecovery()
        let record: [String: Any] = [
            "alpha_c": a.alphaC == .infinity ? "inf" : a.alphaC as Any,
            "easy_threshold": a.easyThreshold == .infinity ? "inf" : a.easyThreshold as Any,
            "trivial_subspace": a.trivialSubspace,
            "trivial_matrix": a.trivialMatrix.nested,
            "easy_subspace": a.easySubspace,
            "top_eigenvector": a.topEigenvector.nested,
            "operator_eigenvalues": a.operatorEigenvalues,
            "operator_resolution": a.operatorResolution,
            "target": problem.target.description, "k": problem.k, "noise": problem.noise,
            "channel": channelRecord(se),
        ]
        let writer = try common.writer(default: "threshold")
        var report = record
        report["spec"] = problem.specTree
        report["version"] = PlateauVersion.string
        report["wall_seconds"] = Date().timeIntervalSince(started)
        try writer.write("threshold.json", JSON.string(report))
        switch common.format {
        case .json:
            print(JSON.string(record), terminator: "")
        case .table:
            func vec(_ v: [Double]) -> String { "(" + v.map { String(format: "%.4f", $0) }.joined(separator: ", ") + ")" }
            print("weak recovery: \(problem.target) (k = \(problem.k), Δ = \(problem.noise)); \(channelDescription(se))")
            print("alpha_c = \(a.alphaC == .infinity ? "inf" : String(format: "%.10g", a.alphaC))")
            print("trivial subspace: \(a.trivialSubspace.isEmpty ? "none" : a.trivialSubspace.map(vec).joined(separator: ", "))")
            print("λ_max(𝓕) = \(String(format: "%.10g", a.operatorTopEigenvalue)) (resolution \(String(format: "%.2g", a.operatorResolution))), easy threshold 1/λ_max = \(a.easyThreshold == .infinity ? "inf" : String(format: "%.10g", a.easyThreshold))")
            print("easy subspace: \(a.easySubspace.isEmpty ? "none" : a.easySubspace.map(vec).joined(separator: ", "))")
            print("wrote \(writer.path("threshold.json"))")
        }
    }
}
