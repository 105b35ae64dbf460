import Dispatch
import Foundation

/// The worker threads of the package's parallel loops (the seeds of a simulation, each seed's
/// theory curve, a study's jobs). Every loop stores job i's result in slot i, and every job draws
/// its random numbers from its own seed, so results are bitwise the same whatever the number of
/// threads and whatever the order in which jobs finish (tested with `--threads 1` against the default).
///
/// `limit` is process-wide: the command line sets it once (`--threads`) before any work starts.
public enum WorkerThreads {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var storedLimit = 0

    /// The most worker threads; 0 (the default) means one per active core.
    public static var limit: Int {
        get { lock.lock(); defer { lock.unlock() }; return storedLimit }
        set { lock.lock(); defer { lock.unlock() }; storedLimit = max(0, newValue) }
    }

    /// The number of threads a loop uses.
    public static var count: Int { limit > 0 ? limit : max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// Runs `body(i)` for i in 0..<n on up to `count` threads (each takes the next undone index);
    /// on one thread, in index order on the calling thread.
    public static func forEach(_ n: Int, _ body: @Sendable (Int) -> Void) {
        let workers = min(n, count)
        guard workers > 1 else {
            for i in 0..<n { body(i) }
            return
        }
        let next = NextIndex()
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while let i = next.take(below: n) { body(i) }
        }
    }
}

private final class NextIndex: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0

    func take(below n: Int) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard value < n else { return nil }
        value += 1
        return value - 1
    }
}
