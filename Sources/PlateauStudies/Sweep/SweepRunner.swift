import Foundation

/// How one point ended.
public struct PointOutcome: Sendable {
    public var index: Int
    public var succeeded: Bool
    /// The exit code, or the signal number when `signalled`.
    public var exitCode: Int32
    public var signalled: Bool
    public var seconds: Double

    public init(index: Int, succeeded: Bool, exitCode: Int32, signalled: Bool, seconds: Double) {
        (self.index, self.succeeded, self.exitCode, self.signalled, self.seconds) = (index, succeeded, exitCode, signalled, seconds)
    }
}

/// Runs one point in a child process: `plateau sweep run-point DIR --index I`. The local pool and a
/// Slurm array task both call this, so a point is computed by the same code path whatever the
/// backend. stdout and stderr go to DIR/logs/NNNNN.out/.err; a failure (non-zero exit, a signal, or
/// no done marker) is recorded in the point's failed.json with the end of stderr.
public enum PointProcess {
    public static func run(executable: URL, folder: SweepFolder, index: Int, backend: String) -> PointOutcome {
        let fm = FileManager.default
        try? fm.removeItem(at: folder.failed(index))
        try? fm.removeItem(at: folder.done(index))
        try? fm.createDirectory(at: folder.logs, withIntermediateDirectories: true)
        let start = Date()
        var outcome = PointOutcome(index: index, succeeded: false, exitCode: -1, signalled: false, seconds: 0)
        var launchError = ""
        do {
            // Empty log files; a failure to create one surfaces as FileHandle's error just below.
            _ = fm.createFile(atPath: folder.log(index, "out").path, contents: nil)
            _ = fm.createFile(atPath: folder.log(index, "err").path, contents: nil)
            let out = try FileHandle(forWritingTo: folder.log(index, "out"))
            let err = try FileHandle(forWritingTo: folder.log(index, "err"))
            defer { try? out.close(); try? err.close() }
            let process = Process()
            process.executableURL = executable
            process.arguments = ["sweep", "run-point", folder.root.path, "--index", "\(index)", "--backend", backend]
            process.standardOutput = out
            process.standardError = err
            process.standardInput = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            outcome.signalled = process.terminationReason == .uncaughtSignal
            outcome.exitCode = process.terminationStatus
        } catch {
            launchError = "cannot start \(executable.path): \(error.localizedDescription)"
        }
        outcome.seconds = Date().timeIntervalSince(start)
        outcome.succeeded = !outcome.signalled && outcome.exitCode == 0 && fm.fileExists(atPath: folder.done(index).path)
        if !outcome.succeeded {
            var tail = SweepFolder.tail(folder.log(index, "err"))
            if !launchError.isEmpty { tail += (tail.isEmpty ? "" : "\n") + launchError }
            if !outcome.signalled && outcome.exitCode == 0 { tail += (tail.isEmpty ? "" : "\n") + "exited 0 without writing done.json" }
            let record: [String: Any] = [
                "index": index, "backend": backend, "exit_code": Int(outcome.exitCode),
                "signal": outcome.signalled ? Int(outcome.exitCode) : 0, "seconds": outcome.seconds,
                "stderr_tail": tail, "host": ProcessInfo.processInfo.hostName,
            ]
            try? SweepFolder.write(SweepFolder.json(record), to: folder.failed(index))
        }
        return outcome
    }
}

/// A bounded pool of worker threads, each running one point at a time (in a child process).
public enum LocalPool {
    /// Runs `body` on every index with at most `jobs` at once; `report` is called after each point
    /// (serialised). Returns the outcomes in index order.
    public static func run(_ indices: [Int], jobs: Int, body: @escaping @Sendable (Int) -> PointOutcome,
                           report: @escaping @Sendable (PointOutcome) -> Void) -> [PointOutcome] {
        let state = PoolState(indices)
        let group = DispatchGroup()
        for _ in 0..<max(1, min(jobs, indices.count)) {
            group.enter()
            let thread = Thread {
                while let i = state.next() {
                    let outcome = body(i)
                    state.finish(outcome, report)
                }
                group.leave()
            }
            thread.start()
        }
        group.wait()
        return state.outcomes.sorted { $0.index < $1.index }
    }
}

final class PoolState: @unchecked Sendable {
    private let lock = NSLock()
    private var queue: [Int]
    private var position = 0
    private(set) var outcomes: [PointOutcome] = []

    init(_ indices: [Int]) { queue = indices }

    func next() -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard position < queue.count else { return nil }
        position += 1
        return queue[position - 1]
    }

    func finish(_ outcome: PointOutcome, _ report: (PointOutcome) -> Void) {
        lock.lock()
        defer { lock.unlock() }
        outcomes.append(outcome)
        report(outcome)
    }
}
