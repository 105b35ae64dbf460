import Foundation

/// Results of jobs run concurrently (e.g. by `DispatchQueue.concurrentPerform`), kept in job order so
/// that what a caller reads does not depend on scheduling. Every slot must be set before `values`.
public final class JobResults<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [T?]
    private var filled = 0

    public init(count: Int) { storage = Array(repeating: nil, count: count) }

    /// Stores the result of job `i`; returns how many jobs have stored theirs (for progress).
    @discardableResult
    public func set(_ i: Int, _ value: T) -> Int {
        lock.lock()
        defer { lock.unlock() }
        storage[i] = value
        filled += 1
        return filled
    }

    /// The results in job order.
    public var values: [T] {
        lock.lock()
        defer { lock.unlock() }
        return storage.map { $0! }
    }
}
