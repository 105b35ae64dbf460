import Foundation
import PlateauCore

/// One point of a sweep: its axis values and the command line that runs it inside its own folder.
public struct SweepPoint: Codable, Sendable, Equatable {
    public var index: Int
    /// The value of each axis (in the grid's order), as YAML text.
    public var values: [String]
    /// The subcommand and its arguments, run with the point's folder as the working directory
    /// (`ode --spec spec.yaml --out . --dimension 500 …`): paths are relative, so the files do not
    /// depend on where the sweep lives.
    public var arguments: [String]
}

/// What identifies a sweep: the base spec and the grid (a folder holds one sweep; re-running the
/// same command resumes it).
public struct SweepPlan: Codable, Sendable, Equatable {
    public var plateauVersion: String
    public var baseSpec: String
    public var grid: String
    public var axes: [String]
    public var pointCount: Int

    public func sameSweep(as other: SweepPlan) -> Bool {
        baseSpec == other.baseSpec && grid == other.grid
    }
}

public enum PointStatus: String, Sendable { case done, failed, missing }

/// The folder of a sweep:
///
///     DIR/sweep.json                 the plan (base spec, grid, axes), written once
///     DIR/points/00042/spec.yaml     the point's spec (the base with its fields set)
///     DIR/points/00042/point.json    its axis values and command line
///     DIR/points/00042/…             the subcommand's own files (trajectory.csv, report.json, …)
///     DIR/points/00042/done.json     written last, atomically: the point is complete
///     DIR/points/00042/failed.json   exit code and the end of stderr, when the run failed
///     DIR/logs/00042.out, .err, .json   stdout, stderr, and wall-clock times (not part of the point)
///     DIR/slurm/                     sbatch scripts, task lists, submissions.json (Slurm backend)
///
/// Everything inside a point's folder is a function of the point alone, so the files are bitwise
/// identical whatever the backend, the worker count or the order.
public struct SweepFolder: Sendable {
    public let root: URL

    public init(_ path: String) {
        root = URL(fileURLWithPath: path, isDirectory: true).standardizedFileURL
    }

    public var planURL: URL { root.appendingPathComponent("sweep.json") }
    public var logs: URL { root.appendingPathComponent("logs", isDirectory: true) }
    public var slurm: URL { root.appendingPathComponent("slurm", isDirectory: true) }

    public static func name(_ index: Int) -> String { String(format: "%05d", index) }

    public func point(_ index: Int) -> URL {
        root.appendingPathComponent("points", isDirectory: true).appendingPathComponent(Self.name(index), isDirectory: true)
    }

    public func done(_ index: Int) -> URL { point(index).appendingPathComponent("done.json") }
    public func failed(_ index: Int) -> URL { point(index).appendingPathComponent("failed.json") }
    public func log(_ index: Int, _ ext: String) -> URL { logs.appendingPathComponent("\(Self.name(index)).\(ext)") }

    public func status(_ index: Int) -> PointStatus {
        let fm = FileManager.default
        if fm.fileExists(atPath: done(index).path) { return .done }
        if fm.fileExists(atPath: failed(index).path) { return .failed }
        return .missing
    }

    public func readPlan() throws -> SweepPlan? {
        guard FileManager.default.fileExists(atPath: planURL.path) else { return nil }
        do { return try JSONDecoder().decode(SweepPlan.self, from: Data(contentsOf: planURL)) } catch {
            throw SweepError("\(planURL.path): not a sweep plan (\(error.localizedDescription))")
        }
    }

    public func readPoint(_ index: Int) throws -> SweepPoint {
        let url = point(index).appendingPathComponent("point.json")
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw SweepError("--index: point \(index) does not exist in \(root.path) (no \(url.path))")
        }
        return try JSONDecoder().decode(SweepPoint.self, from: data)
    }

    /// Writes the plan and every point's spec and command line. A folder that already holds the same
    /// sweep is left as it is (resume); one holding a different sweep is refused.
    public func prepare(_ plan: SweepPlan, points: [SweepPoint], specs: [String]) throws -> (resumed: Bool, written: Int) {
        if let existing = try readPlan() {
            guard existing.sameSweep(as: plan) else {
                throw SweepError("--out: \(root.path) holds a different sweep (its sweep.json has another spec or grid); use a new folder")
            }
        }
        let resumed = FileManager.default.fileExists(atPath: planURL.path)
        try create(logs)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        var written = 0
        for (p, spec) in zip(points, specs) {
            let folder = point(p.index)
            let pointFile = folder.appendingPathComponent("point.json")
            if resumed && FileManager.default.fileExists(atPath: pointFile.path) { continue }
            try create(folder)
            try Self.write(Data(spec.utf8), to: folder.appendingPathComponent("spec.yaml"))
            try Self.write(encoder.encode(p), to: pointFile)
            written += 1
        }
        if !resumed { try Self.write(encoder.encode(plan), to: planURL) }
        return (resumed, written)
    }

    func create(_ url: URL) throws {
        do { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) } catch {
            throw SweepError("--out: cannot create \(url.path): \(error.localizedDescription)")
        }
    }

    /// Atomic write: a temporary file in the same folder, then rename.
    public static func write(_ data: Data, to url: URL) throws {
        do { try data.write(to: url, options: .atomic) } catch {
            throw SweepError("cannot write \(url.path): \(error.localizedDescription)")
        }
    }

    public static func json(_ object: Any) -> Data {
        (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])) ?? Data("{}".utf8)
    }

    /// The last `lines` lines of a text file (empty if unreadable).
    public static func tail(_ url: URL, lines: Int = 20) -> String {
        guard let data = FileManager.default.contents(atPath: url.path) else { return "" }
        let text = String(decoding: data.suffix(16_384), as: UTF8.self)
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines + 1).joined(separator: "\n")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Wall-clock measurements in a command's JSON record (`"seconds"`, `"wall_seconds"`) are the only
/// part of a point's files that a rerun changes; the point runner moves them to the point's log so
/// that the folder is a function of the point alone. The records are pretty-printed with one scalar
/// per line, so a line filter removes them and keeps the JSON valid.
public enum WallClock {
    public static let keys: Set<String> = ["seconds", "wall_seconds"]

    /// The text without the wall-clock lines, and the removed values by key path-less name.
    public static func strip(_ text: String) -> (text: String, removed: [String]) {
        var kept: [String] = []
        var removed: [String] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if let key = Self.key(of: trimmed), keys.contains(key),
               !trimmed.hasSuffix("{"), !trimmed.hasSuffix("[") {
                removed.append(trimmed.hasSuffix(",") ? String(trimmed.dropLast()) : trimmed)
                if !trimmed.hasSuffix(","), let last = kept.lastIndex(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty }),
                   kept[last].hasSuffix(",") {
                    kept[last].removeLast()
                }
                continue
            }
            kept.append(String(line))
        }
        return (kept.joined(separator: "\n"), removed)
    }

    static func key(of line: String) -> String? {
        guard line.hasPrefix("\""), let end = line.dropFirst().firstIndex(of: "\"") else { return nil }
        let rest = line[line.index(after: end)...].trimmingCharacters(in: .whitespaces)
        guard rest.hasPrefix(":") else { return nil }
        return String(line[line.index(after: line.startIndex)..<end])
    }
}
