import Foundation
import PlateauCompare
import PlateauCore
import PlateauSimulation
import PlateauTheory

/// The DMFT of multi-pass GD against the finite-d simulator of the same experiment, per GD step, with
/// the verdict machinery of PlateauCompare: the deviation's standard error over seeds and the DMFT's
/// Monte-Carlo standard error are added in quadrature, z is Bonferroni over all (step, observable)
/// comparisons, plus the finite-size allowance b/d. Observables: risk, M_j_r, Q_j_l, train_loss.
///
/// The start is exact at finite d for `init: orthogonal` or prescribed overlaps, so one DMFT curve
/// serves every seed. For random initial weights the DMFT starts from their d = ∞ limit (M = 0,
/// Q = scale²·I) and the O(1/√d) initial overlaps of the seeds are part of the deviation.
public struct MultipassComparison: Sendable {
    public var experiment: Experiment
    public var dimension: Int
    public var seeds: [SeedResult]
    public var simulation: [Trajectory]
    public var theory: DMFTResult
    public var report: AgreementReport

    /// The observables compared.
    public static func observables(_ names: [String]) -> [String] {
        Agreement.defaultObservables(names) + (names.contains("train_loss") ? ["train_loss"] : [])
    }

    /// - Parameter theory: the DMFT result to compare with (computed from the experiment when nil).
    public static func run(_ experiment: Experiment, dimension: Int, seeds: Int, masterSeed: UInt64,
                           dmft options: DMFTOptions = DMFTOptions(), theory precomputed: DMFTResult? = nil,
                           criterion: AgreementCriterion = AgreementCriterion(),
                           progress: (@Sendable (Double) -> Void)? = nil) throws -> MultipassComparison {
        let dmft = try MultipassDMFT(experiment)
        let results = try MultipassGDSimulator.run(experiment, dimension: dimension, masterSeed: masterSeed, count: seeds,
                                                   progress: progress)
        let theory = try precomputed ?? (dmft.isGaussian && options.noise == .causal ? dmft.gaussianPath() : dmft.run(options))
        let simulation = results.map { $0.trajectory(risk: dmft.scorer.risk) }
        let report = Agreement.compare(theory: Array(repeating: theory.mean, count: simulation.count), simulation: simulation,
                                       dimension: dimension, observables: observables(simulation[0].observables),
                                       criterion: criterion, theoryStandardError: theory.standardError)
        return MultipassComparison(experiment: experiment, dimension: dimension, seeds: results, simulation: simulation,
                                   theory: theory, report: report)
    }
}
