import Dispatch
import Foundation
import PlateauCore

/// Finite-d online SGD for an `Experiment` (EQUATIONS.md §1 and §4): sampled curves of the
/// overlaps measured exactly from the weights, on the shared time axis t = steps/d.
public enum OnlineSGDSimulator {
    /// One seed. Deterministic given (experiment, options, seed).
    ///
    /// - Throws: `SpecError` naming the field and value when the experiment or the options are
    ///   invalid (`SimulationOptions.validate(for:)`).
    /// - Returns: rows at `OnlineTime.realisedTimes(options.times, dimension:)`; a run whose weights
    ///   become non-finite stops with status `.diverged`, keeping the rows recorded before.
    public static func run(_ experiment: Experiment, options: SimulationOptions, seed: UInt64,
                           progress: (@Sendable (Double) -> Void)? = nil) throws -> SeedResult {
        try options.validate(for: experiment)
        return try simulate(experiment, options: options, seed: seed, progress: progress)
    }

    /// Many seeds in parallel (`WorkerThreads`). Seed i uses
    /// `SeedSequence.seed(master: masterSeed, index: i)`; results are in index order and do not
    /// depend on the number of threads. `progress` receives the mean fraction done over seeds.
    public static func run(_ experiment: Experiment, options: SimulationOptions, masterSeed: UInt64, count: Int,
                           progress: (@Sendable (Double) -> Void)? = nil) throws -> [SeedResult] {
        try run(experiment, options: options, masterSeed: masterSeed, count: count, parallel: true, progress: progress)
    }

    /// As above; `parallel: false` runs the seeds one after another on the calling thread.
    public static func run(_ experiment: Experiment, options: SimulationOptions, masterSeed: UInt64, count: Int,
                           parallel: Bool, progress: (@Sendable (Double) -> Void)? = nil) throws -> [SeedResult] {
        try options.validate(for: experiment)
        let identity = "online SGD\nspec \(experiment.specJSON)\ndimension \(options.dimension)\ntest set \(options.testSetSize)\n"
            + "times \(options.times.map { String($0.bitPattern, radix: 16) }.joined(separator: ","))"
        return try SeedRuns.run(count: count, masterSeed: masterSeed, parallel: parallel, identity: identity, progress: progress) { seed, report in
            try simulate(experiment, options: options, seed: seed, progress: report)
        }
    }

    /// The run itself, after validation.
    static func simulate(_ experiment: Experiment, options: SimulationOptions, seed: UInt64,
                         progress: (@Sendable (Double) -> Void)?) throws -> SeedResult {
        let d = options.dimension
        let network = try OnlineSGDNetwork(experiment, dimension: d, seed: seed)
        let testSet = options.testSetSize > 0
            ? TestSet(count: options.testSetSize, network: network, experiment: experiment, seed: seed) : nil
        let times = OnlineTime.realisedTimes(options.times, dimension: d)
        let recordSteps = times.map { OnlineTime.step(at: $0, dimension: d) }
        let lastStep = recordSteps.last ?? 0
        let reportEvery = max(1, lastStep / 200)

        var result = SeedResult(seed: seed, times: [], overlaps: [], testRisk: testSet == nil ? nil : [],
                                status: .completed, message: "")
        var next = 0
        while next < recordSteps.count {
            if network.stepCount == recordSteps[next] {
                let o = network.overlaps()
                guard o.M.allFinite, o.Q.allFinite, o.a.allSatisfy(\.isFinite) else {
                    result.status = .diverged
                    result.message = "weights non-finite at t = \(network.time) (step \(network.stepCount), d = \(d))"
                    break
                }
                result.times.append(times[next])
                result.overlaps.append(o)
                if let testSet { result.testRisk!.append(testSet.risk(of: network)) }
                next += 1
                continue
            }
            guard network.step() else {
                result.status = .diverged
                result.message = "weights non-finite at t = \(network.time) (step \(network.stepCount), d = \(d))"
                break
            }
            if let progress, network.stepCount % reportEvery == 0 { progress(Double(network.stepCount) / Double(max(lastStep, 1))) }
        }
        progress?(1)
        return result
    }
}
