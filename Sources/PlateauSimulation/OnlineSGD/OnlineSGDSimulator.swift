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

    /// Many seeds in parallel on all cores (`DispatchQueue.concurrentPerform`). Seed i uses
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
        guard count >= 0 else { throw SpecError(field: "simulation.seeds", value: "\(count)", reason: "must be an integer ≥ 0") }
        let slots = JobResults<Result<SeedResult, any Error>>(count: count)
        let tracker = progress.map { ProgressTracker(count: count, report: $0) }
        let body: @Sendable (Int) -> Void = { i in
            let seed = SeedSequence.seed(master: masterSeed, index: i)
            var report: (@Sendable (Double) -> Void)? = nil
            if let tracker { report = { fraction in tracker.update(i, fraction) } }
            slots.set(i, Result { try simulate(experiment, options: options, seed: seed, progress: report) })
        }
        if parallel {
            DispatchQueue.concurrentPerform(iterations: count, execute: body)
        } else {
            for i in 0..<count { body(i) }
        }
        return try slots.values.map { try $0.get() }
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

/// Mean progress over concurrently running seeds.
private final class ProgressTracker: @unchecked Sendable {
    private let lock = NSLock()
    private var fractions: [Double]
    private let report: @Sendable (Double) -> Void

    init(count: Int, report: @escaping @Sendable (Double) -> Void) {
        fractions = Array(repeating: 0, count: count)
        self.report = report
    }

    func update(_ i: Int, _ fraction: Double) {
        lock.lock()
        fractions[i] = min(max(fraction, 0), 1)
        let mean = fractions.reduce(0, +) / Double(fractions.count)
        lock.unlock()
        report(mean)
    }
}
