import Foundation
import PlateauCore

/// Writes results so that nothing already computed is lost: each file is written to a temporary
/// name in the same folder and renamed into place (atomic on POSIX file systems).
struct ResultWriter {
    let folder: URL

    init(path: String) throws {
        folder = URL(fileURLWithPath: path, isDirectory: true)
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw CLIError("--out: cannot create the folder \(path): \(error.localizedDescription)")
        }
    }

    func write(_ name: String, _ text: String) throws {
        let url = folder.appendingPathComponent(name)
        do {
            try Data(text.utf8).write(to: url, options: .atomic)
        } catch {
            throw CLIError("cannot write \(url.path): \(error.localizedDescription)")
        }
    }

    func path(_ name: String) -> String { folder.appendingPathComponent(name).path }
}

struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// JSON with explicit encodings of non-finite numbers ("nan", "inf", "-inf"), which plain JSON lacks.
enum JSON {
    static func sanitize(_ value: Any) -> Any {
        switch value {
        case let d as Double: return d.isFinite ? d : Trajectory.format(d)
        case let a as [Double]: return a.map { sanitize($0) }
        case let a as [Any]: return a.map(sanitize)
        case let m as [String: Any]: return m.mapValues(sanitize)
        default: return value
        }
    }

    static func string(_ value: [String: Any]) -> String {
        let data = try! JSONSerialization.data(withJSONObject: sanitize(value), options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    static func trajectory(_ t: Trajectory) -> [String: Any] {
        var columns: [String: Any] = ["t": t.times]
        for (c, name) in t.observables.enumerated() { columns[name] = t.values.map { $0[c] } }
        return ["status": t.status.rawValue, "message": t.message, "columns": columns]
    }
}

/// Progress on stderr, throttled to about one line a second; silent for short runs.
final class Progress: @unchecked Sendable {
    private let label: String
    private let lock = NSLock()
    private let start = Date()
    private var last = Date()
    private var fractions: [Double]
    private let enabled: Bool

    init(_ label: String, parts: Int, enabled: Bool) {
        self.label = label
        self.fractions = Array(repeating: 0, count: max(parts, 1))
        self.enabled = enabled
    }

    func update(part: Int, fraction: Double) {
        guard enabled else { return }
        lock.lock()
        defer { lock.unlock() }
        fractions[part] = fraction
        let now = Date()
        guard now.timeIntervalSince(last) >= 1, now.timeIntervalSince(start) >= 2 else { return }
        last = now
        let total = fractions.reduce(0, +) / Double(fractions.count)
        let elapsed = now.timeIntervalSince(start)
        let eta = total > 0 ? elapsed * (1 - total) / total : .nan
        FileHandle.standardError.write(Data(String(format: "%@: %5.1f%%, %.0f s elapsed, ~%.0f s left\n", label, 100 * total, elapsed, eta).utf8))
    }

    func done() {
        guard enabled, Date().timeIntervalSince(start) >= 2 else { return }
        FileHandle.standardError.write(Data(String(format: "%@: done in %.1f s\n", label, Date().timeIntervalSince(start)).utf8))
    }
}

func note(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}
