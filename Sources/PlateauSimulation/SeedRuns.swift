import Dispatch
import Foundation
import PlateauCore

/// Many seeds of one simulator, in parallel on all cores (`DispatchQueue.concurrentPerform`) or one
/// after another. Seed i is `SeedSequence.seed(master: masterSeed, index: i)`; results are in index
/// order and do not depend on the number of threads. `progress` receives the mean fraction done.
enum SeedRuns {
    ///
    /// `identity` names the run (simulator, spec, dimension, times, …): with
    /// `SeedCheckpoints.current` set, each finished seed is checkpointed under identity + seed and a
    /// checkpointed seed is read back instead of simulated.
    static func run(
        count: Int, masterSeed: UInt64, parallel: Bool, identity: String, progress: (@Sendable (Double) -> Void)?,
        _ body: @escaping @Sendable (UInt64, (@Sendable (Double) -> Void)?) throws -> SeedResult
    ) throws -> [SeedResult] {
        guard count >= 0 else { throw SpecError(field: "simulation.seeds", value: "\(count)", reason: "must be an integer ≥ 0") }
        let slots = JobResults<Swift.Result<SeedResult, any Error>>(count: count)
        let tracker = progress.map { ProgressTracker(count: count, report: $0) }
        let checkpoints = SeedCheckpoints.current
        let job: @Sendable (Int) -> Void = { i in
            let seed = SeedSequence.seed(master: masterSeed, index: i)
            var report: (@Sendable (Double) -> Void)? = nil
            if let tracker { report = { fraction in tracker.update(i, fraction) } }
            let key = identity + "\nseed \(seed)"
            if let stored = checkpoints?.load(identity: key) {
                report?(1)
                slots.set(i, .success(stored))
                return
            }
            slots.set(i, Swift.Result {
                let result = try body(seed, report)
                try checkpoints?.save(result, identity: key)
                return result
            })
        }
        if parallel {
            WorkerThreads.forEach(count, job)
        } else {
            for i in 0..<count { job(i) }
        }
        return try slots.values.map { try $0.get() }
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
