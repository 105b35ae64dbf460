import Foundation

/// `plateau sweep collect DIR`: one tidy CSV of every done point (the point index and the grid's
/// columns first, then the columns of the point's main file, one row per row of that file) and an
/// index of which points are done, failed or missing.
public enum SweepCollect {
    /// The file a subcommand's point contributes (another can be named with `--file`).
    public static let mainFile: [String: String] = [
        "ode": "trajectory.csv", "simulate": "summary.csv", "compare": "agreement.csv", "gamp": "summary.csv",
        "se": "se.csv", "threshold": "threshold.json", "dmft": "dmft.csv", "spectral": "spectral.csv",
    ]

    public struct Result: Sendable {
        public var csv: String
        public var rows: Int
        public var done: [Int]
        public var failed: [Int]
        public var missing: [Int]
        public var index: Data
    }

    /// `columns`: keep only these columns of the points' files (the point and grid columns are always kept).
    public static func collect(_ folder: SweepFolder, file: String? = nil, columns keep: [String]? = nil) throws -> Result {
        guard let plan = try folder.readPlan() else { throw SweepError("\(folder.root.path): no sweep.json (not a sweep folder)") }
        var done: [Int] = [], failed: [Int] = [], missing: [Int] = []
        var failures: [[String: Any]] = []
        var columns: [String] = []
        var columnIndex: [String: Int] = [:]
        var rows: [(point: SweepPoint, cells: [Int: String])] = []
        var files = Set<String>()
        for index in 0..<plan.pointCount {
            switch folder.status(index) {
            case .missing: missing.append(index); continue
            case .failed:
                failed.append(index)
                let record = (FileManager.default.contents(atPath: folder.failed(index).path))
                    .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] } ?? [:]
                failures.append(["index": index, "exit_code": record["exit_code"] ?? -1, "signal": record["signal"] ?? 0,
                                 "stderr_tail": record["stderr_tail"] ?? "", "backend": record["backend"] ?? ""])
                continue
            case .done: done.append(index)
            }
            let point = try folder.readPoint(index)
            let name = file ?? mainFile[point.arguments.first ?? ""] ?? "report.json"
            files.insert(name)
            let url = folder.point(index).appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: url.path) else {
                throw SweepError("point \(index): done, but \(url.path) is missing (--file names a file every point writes)")
            }
            var table = name.hasSuffix(".json") ? try flatJSON(data, url: url) : CSV.parse(String(decoding: data, as: UTF8.self))
            if let keep {
                for column in keep where !table.header.contains(column) {
                    throw SweepError("--columns: point \(index)'s \(name) has no column \(column) (it has \(table.header.joined(separator: ", ")))")
                }
                let picked = keep.compactMap { table.header.firstIndex(of: $0) }
                table = (keep, table.rows.map { row in picked.map { $0 < row.count ? row[$0] : "" } })
            }
            let ids = table.header.map { column -> Int in
                if let i = columnIndex[column] { return i }
                columnIndex[column] = columns.count
                columns.append(column)
                return columns.count - 1
            }
            for row in table.rows {
                var cells: [Int: String] = [:]
                for (i, cell) in zip(ids, row) { cells[i] = cell }
                rows.append((point, cells))
            }
        }
        let reserved = Set(["point"] + plan.axes)
        let header = ["point"] + plan.axes + columns.map { reserved.contains($0) ? "file_\($0)" : $0 }
        var csv = header.map(CSV.escape).joined(separator: ",") + "\n"
        for (point, cells) in rows {
            let line = [String(point.index)] + point.values + columns.indices.map { cells[$0] ?? "" }
            csv += line.map(CSV.escape).joined(separator: ",") + "\n"
        }
        let index: [String: Any] = [
            "points": plan.pointCount, "axes": plan.axes, "files": files.sorted(),
            "counts": ["done": done.count, "failed": failed.count, "missing": missing.count],
            "done": done, "failed": failures, "missing": missing, "rows": rows.count,
            "complete": failed.isEmpty && missing.isEmpty,
        ]
        return Result(csv: csv, rows: rows.count, done: done, failed: failed, missing: missing, index: SweepFolder.json(index))
    }

    /// A JSON record's top-level scalars as one row (sorted keys).
    static func flatJSON(_ data: Data, url: URL) throws -> (header: [String], rows: [[String]]) {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw SweepError("\(url.path): not a JSON object")
        }
        var header: [String] = [], row: [String] = []
        for key in object.keys.sorted() {
            switch object[key] {
            case let s as String: header.append(key); row.append(s)
            case let n as NSNumber: header.append(key); row.append(n.stringValue)
            default: continue
            }
        }
        return (header, [row])
    }
}

/// The CSV dialect of the package's files: comma-separated, a header line, fields quoted only when
/// they hold a comma, a quote or a line break.
public enum CSV {
    public static func escape(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    public static func parse(_ text: String) -> (header: [String], rows: [[String]]) {
        var records: [[String]] = []
        var field = "", record: [String] = []
        var quoted = false, afterQuote = false
        for ch in text {
            if quoted {
                if ch == "\"" { quoted = false; afterQuote = true } else { field.append(ch) }
                continue
            }
            switch ch {
            case "\"": if afterQuote { field.append("\"") }; quoted = true
            case ",": record.append(field); field = ""
            case "\n", "\r\n":
                record.append(field); field = ""
                records.append(record); record = []
            default: field.append(ch)
            }
            afterQuote = false
        }
        if !field.isEmpty || !record.isEmpty { record.append(field); records.append(record) }
        guard let header = records.first else { return ([], []) }
        return (header, Array(records.dropFirst()))
    }
}
