import Dispatch
import Foundation
import PlateauCompare
import PlateauCore
import PlateauSimulation
import PlateauTheory

/// Theory against simulation for one experiment at one dimension: the seeds are simulated, each
/// seed's theory curve is integrated from that seed's realised initial overlaps on its realised
/// time axis, and the two are compared (ARCHITECTURE.md, "The one idea").
public struct ComparisonRun: Sendable {
    public var experiment: Experiment
    public var dimension: Int
    public var seeds: [SeedResult]
    public var simulation: [Trajectory]
    public var theory: [Trajectory]
    public var report: AgreementReport

    /// - Parameters:
    ///   - theoryModel: the model the simulation is compared with (defaults to the ODE,
    ///     `OnlineSGDTheory(experiment)`; `OnlineSGDMap` for the exact one-step map); a different
    ///     model (e.g. a deliberately wrong learning rate) is how negative controls are built.
    public static func run(_ experiment: Experiment, dimension: Int, seeds: Int, masterSeed: UInt64,
                           testSetSize: Int = 0, theoryModel: (any OnlineTheoryModel)? = nil,
                           odeOptions: ODEOptions = ODEOptions(),
                           criterion: AgreementCriterion = AgreementCriterion(),
                           progress: (@Sendable (Double) -> Void)? = nil) throws -> ComparisonRun {
        let options = SimulationOptions(dimension: dimension, times: experiment.recordTimes, testSetSize: testSetSize)
        let results = try OnlineSGDSimulator.run(experiment, options: options, masterSeed: masterSeed, count: seeds,
                                                 progress: progress)
        // The risk of the measured overlaps is the theory's own function of the overlaps. Built once:
        // on the quadrature route building a theory calibrates its rule.
        let scorer = (theoryModel as? OnlineSGDTheory) ?? (theoryModel as? OnlineSGDMap)?.theory ?? OnlineSGDTheory(experiment)
        let model: any OnlineTheoryModel = theoryModel ?? scorer
        let simulation = results.map { $0.trajectory(risk: scorer.risk) }
        let slots = JobResults<Trajectory>(count: results.count)
        WorkerThreads.forEach(results.count) { i in
            let r = results[i]
            slots.set(i, r.overlaps.isEmpty ? Trajectory(observables: simulation[i].observables)
                      : model.curve(from: r.overlaps[0], times: r.times, options: odeOptions))
        }
        let theory = slots.values
        let report = Agreement.compare(theory: theory, simulation: simulation, dimension: dimension, criterion: criterion)
        return ComparisonRun(experiment: experiment, dimension: dimension, seeds: results, simulation: simulation,
                             theory: theory, report: report)
    }
}
