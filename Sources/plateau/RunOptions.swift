import ArgumentParser
import Foundation
import PlateauCore
import PlateauSimulation

/// Worker threads and kill-and-resume, shared by `simulate`, `compare`, `gamp` and `reproduce`.
struct RunOptions: ParsableArguments {
    @Option(name: .long, help: "Worker threads (0: one per core). Results are bitwise the same for any number.")
    var threads: Int = 0

    @Flag(name: .long, help: "Continue a run that was stopped: seeds already checkpointed in <out>/checkpoints are read back, not simulated again. Refused if the checkpoints were made by a different run.")
    var resume = false

    func validate() throws {
        guard threads >= 0 else { throw ValidationError("--threads must be an integer ≥ 0 (got \(threads))") }
    }

    /// Options left out of a run's identity (name → takes a value): those that change no result, the
    /// output folder itself, and the spec's path (its resolved contents are part of the identity).
    static let neutralOptions: [String: Bool] = ["--resume": false, "--quiet": false, "--threads": true, "--format": true,
                                                 "--out": true, "--spec": true]

    /// Runs `body` with the thread limit set and per-seed checkpoints kept in `<out>/checkpoints`
    /// (with a manifest naming the run: the command, the resolved spec and the options). Without
    /// --resume, old checkpoints are discarded; with it, a manifest that differs is refused (exit 64).
    /// The checkpoints are removed once `body` has written its results, so a finished folder holds
    /// the same files as a run that was never interrupted.
    func run<T>(out: String, command: String, spec: String, _ body: () throws -> T) throws -> T {
        WorkerThreads.limit = threads
        let folder = URL(fileURLWithPath: out, isDirectory: true).appendingPathComponent("checkpoints", isDirectory: true)
        let manifestURL = folder.appendingPathComponent("run.json")
        var arguments: [String] = []
        var skipNext = false
        for a in CommandLine.arguments.dropFirst(2) {
            if skipNext { skipNext = false; continue }
            let name = String(a.split(separator: "=", maxSplits: 1).first ?? "")
            if let takesValue = Self.neutralOptions[name] { skipNext = takesValue && !a.contains("="); continue }
            arguments.append(a)
        }
        let manifest: [String: Any] = ["command": command, "spec": spec, "arguments": arguments]
        let manifestText = String(decoding: try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self)
        let fm = FileManager.default
        if resume, let old = try? String(contentsOf: manifestURL, encoding: .utf8) {
            if old != manifestText {
                let previous = (try? JSONSerialization.jsonObject(with: Data(old.utf8))) as? [String: Any] ?? [:]
                let differing = ["command", "spec", "arguments"].filter { key in
                    let a = previous[key].map { "\($0)" }, b = manifest[key].map { "\($0)" }
                    return a != b
                }
                throw ValidationError("--resume: the checkpoints in \(folder.path) belong to a different run (\(differing.isEmpty ? "manifest" : differing.joined(separator: ", ")) differ\(differing.count == 1 ? "s" : "")); previous arguments: \(previous["arguments"] ?? "?"), now: \(arguments). Run without --resume to start afresh.")
            }
        } else {
            if fm.fileExists(atPath: folder.path) { try? fm.removeItem(at: folder) }
        }
        let checkpoints: SeedCheckpoints
        do { checkpoints = try SeedCheckpoints(folder: folder) } catch let error as SpecError { throw CLIError("\(error)") }
        do {
            try Data(manifestText.utf8).write(to: manifestURL, options: .atomic)
        } catch {
            throw CLIError("cannot write \(manifestURL.path): \(error.localizedDescription)")
        }
        if resume { note("resuming: \(checkpoints.files.count) seed checkpoint(s) in \(folder.path)") }
        SeedCheckpoints.current = checkpoints
        defer { SeedCheckpoints.current = nil }
        let result = try body()
        if resume { note("resumed: \(checkpoints.loaded) seed(s) read back from checkpoints") }
        try? fm.removeItem(at: folder)
        return result
    }
}
