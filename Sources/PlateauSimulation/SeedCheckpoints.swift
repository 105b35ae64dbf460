import Foundation
import PlateauCore

/// Per-seed checkpoints of multi-seed simulations: every finished seed of `OnlineSGDSimulator`,
/// `MultipassGDSimulator`, `GAMPSimulator` and `SpectralSimulator` is written to `folder` (atomically: temporary file, then rename), and a
/// seed whose checkpoint exists is read back instead of being simulated again. A run killed part
/// way and restarted with the same inputs therefore redoes only the seeds that had not finished,
/// and — numbers being stored as their exact bit patterns — produces the same bits as a run that
/// was never interrupted.
///
/// Each checkpoint carries the identity of its run (simulator, spec, dimension, record times, test
/// set, seed) and is used only when that identity matches exactly. `current` is process-wide: the
/// command line sets it (`--out`, `--resume`) before work starts; nil (the default) keeps none.
public final class SeedCheckpoints: @unchecked Sendable {
    public let folder: URL
    private let lock = NSLock()
    private var loadedCount = 0

    public init(folder: URL) throws {
        self.folder = folder
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw SpecError(field: "--out", value: folder.path, reason: "cannot create the checkpoint folder: \(error.localizedDescription)")
        }
    }

    nonisolated(unsafe) private static var stored: SeedCheckpoints?
    private static let storedLock = NSLock()

    /// The checkpoints used by the simulators in this process (nil: none).
    public static var current: SeedCheckpoints? {
        get { storedLock.lock(); defer { storedLock.unlock() }; return stored }
        set { storedLock.lock(); defer { storedLock.unlock() }; stored = newValue }
    }

    /// How many seeds were read back from checkpoints so far.
    public var loaded: Int { lock.lock(); defer { lock.unlock() }; return loadedCount }

    /// The checkpoint files present.
    public var files: [URL] {
        ((try? FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)) ?? [])
            .filter { $0.lastPathComponent.hasPrefix("seed-") && $0.pathExtension == "json" }
    }

    func url(identity: String) -> URL {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a, 64 bits
        for b in identity.utf8 { hash = (hash ^ UInt64(b)) &* 0x100_0000_01b3 }
        return folder.appendingPathComponent(String(format: "seed-%016llx.json", hash))
    }

    /// The stored result of the run `identity`, if its checkpoint exists and matches.
    func load(identity: String) -> SeedResult? { load(identity: identity, SeedResult.init(checkpoint:)) }

    /// Stores `result` for the run `identity` (temporary file, then rename).
    func save(_ result: SeedResult, identity: String) throws { try save(tree: result.checkpointTree, identity: identity) }

    /// The stored checkpoint of the run `identity` decoded by `decode`, if it exists, matches and decodes.
    func load<T>(identity: String, _ decode: ([String: Any]) -> T?) -> T? {
        guard let data = try? Data(contentsOf: url(identity: identity)),
              let tree = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              tree["identity"] as? String == identity,
              let result = decode(tree) else { return nil }
        lock.lock()
        loadedCount += 1
        lock.unlock()
        return result
    }

    /// Stores the checkpoint `tree` for the run `identity` (temporary file, then rename).
    func save(tree: [String: Any], identity: String) throws {
        var tree = tree
        tree["identity"] = identity
        let data = try JSONSerialization.data(withJSONObject: tree, options: [.sortedKeys])
        try data.write(to: url(identity: identity), options: .atomic)
    }
}

extension SeedResult {
    /// Numbers as the hexadecimal bit patterns of their doubles (exact, NaN and ±∞ included).
    static func bits(_ xs: [Double]) -> [String] { xs.map { String($0.bitPattern, radix: 16) } }
    static func doubles(_ any: Any?) -> [Double]? {
        guard let strings = any as? [String] else { return nil }
        var out: [Double] = []
        for s in strings {
            guard let b = UInt64(s, radix: 16) else { return nil }
            out.append(Double(bitPattern: b))
        }
        return out
    }

    var checkpointTree: [String: Any] {
        func matrix(_ m: Matrix) -> [String: Any] { ["rows": m.rows, "cols": m.cols, "values": Self.bits(m.values)] }
        var tree: [String: Any] = [
            "seed": String(seed, radix: 16), "times": Self.bits(times), "status": status.rawValue, "message": message,
            "overlaps": overlaps.map { ["M": matrix($0.M), "Q": matrix($0.Q), "P": matrix($0.P), "a": Self.bits($0.a)] as [String: Any] },
        ]
        if let testRisk { tree["testRisk"] = Self.bits(testRisk) }
        if let trainLoss { tree["trainLoss"] = Self.bits(trainLoss) }
        return tree
    }

    init?(checkpoint tree: [String: Any]) {
        func matrix(_ any: Any?) -> Matrix? {
            guard let m = any as? [String: Any], let rows = m["rows"] as? Int, let cols = m["cols"] as? Int,
                  let values = Self.doubles(m["values"]), values.count == rows * cols else { return nil }
            return Matrix(rows: rows, cols: cols, values: values)
        }
        guard let seedText = tree["seed"] as? String, let seed = UInt64(seedText, radix: 16),
              let times = Self.doubles(tree["times"]), let statusName = tree["status"] as? String,
              let status = TrajectoryStatus(rawValue: statusName), let message = tree["message"] as? String,
              let rows = tree["overlaps"] as? [[String: Any]] else { return nil }
        var overlaps: [Overlaps] = []
        for row in rows {
            guard let M = matrix(row["M"]), let Q = matrix(row["Q"]), let P = matrix(row["P"]), let a = Self.doubles(row["a"]) else { return nil }
            overlaps.append(Overlaps(M: M, Q: Q, P: P, a: a))
        }
        self.init(seed: seed, times: times, overlaps: overlaps,
                  testRisk: tree["testRisk"] == nil ? nil : Self.doubles(tree["testRisk"]),
                  status: status, message: message,
                  trainLoss: tree["trainLoss"] == nil ? nil : Self.doubles(tree["trainLoss"]))
    }
}

extension GAMPSeedRun {
    /// The checkpoint of a GAMP seed: M_t and Q_t as bit patterns (exact), status and message.
    var checkpointTree: [String: Any] {
        func matrices(_ ms: [Matrix]) -> [[String: Any]] { ms.map { ["rows": $0.rows, "cols": $0.cols, "values": SeedResult.bits($0.values)] } }
        return ["seed": String(seed, radix: 16), "status": status.rawValue, "message": message, "M": matrices(M), "Q": matrices(Q)]
    }

    init?(checkpoint tree: [String: Any]) {
        func matrices(_ any: Any?) -> [Matrix]? {
            guard let list = any as? [[String: Any]] else { return nil }
            var out: [Matrix] = []
            for m in list {
                guard let rows = m["rows"] as? Int, let cols = m["cols"] as? Int,
                      let values = SeedResult.doubles(m["values"]), values.count == rows * cols else { return nil }
                out.append(Matrix(rows: rows, cols: cols, values: values))
            }
            return out
        }
        guard let seedText = tree["seed"] as? String, let seed = UInt64(seedText, radix: 16),
              let statusName = tree["status"] as? String, let status = TrajectoryStatus(rawValue: statusName),
              let message = tree["message"] as? String, let M = matrices(tree["M"]), let Q = matrices(tree["Q"]),
              M.count == Q.count else { return nil }
        self.init(seed: seed, M: M, Q: Q, status: status, message: message)
    }
}

extension SpectralSeedResult {
    /// The checkpoint of a spectral seed: every number as its bit pattern (exact); nil fields left out.
    var checkpointTree: [String: Any] {
        var tree: [String: Any] = [
            "seed": String(seed, radix: 16), "iterationsL": iterationsL, "convergedL": convergedL,
            "L": SeedResult.bits([outlierL, outlierLGroup, bulkRadiusL, m2L, m2LGroup]),
            "outlierLMembers": SeedResult.bits(outlierLMembers), "m2LMembers": SeedResult.bits(m2LMembers),
        ]
        let optionals: [(String, Double?)] = [("outlierT", outlierT), ("outlierTGroup", outlierTGroup), ("bulkEdgeT", bulkEdgeT),
                                              ("m2T", m2T), ("m2TGroup", m2TGroup), ("preprocessingMinimum", preprocessingMinimum),
                                              ("outlierP", outlierP), ("bulkEdgeP", bulkEdgeP), ("m2P", m2P)]
        for (name, value) in optionals { if let value { tree[name] = SeedResult.bits([value]) } }
        return tree
    }

    init?(checkpoint tree: [String: Any]) {
        guard let seedText = tree["seed"] as? String, let seed = UInt64(seedText, radix: 16),
              let iterationsL = tree["iterationsL"] as? Int, let convergedL = tree["convergedL"] as? Bool,
              let L = SeedResult.doubles(tree["L"]), L.count == 5,
              let outlierLMembers = SeedResult.doubles(tree["outlierLMembers"]),
              let m2LMembers = SeedResult.doubles(tree["m2LMembers"]) else { return nil }
        func optional(_ name: String) -> Double? { SeedResult.doubles(tree[name])?.first }
        self.init(seed: seed, outlierL: L[0], outlierLGroup: L[1], bulkRadiusL: L[2], m2L: L[3], m2LGroup: L[4],
                  outlierLMembers: outlierLMembers, m2LMembers: m2LMembers, iterationsL: iterationsL, convergedL: convergedL,
                  outlierT: optional("outlierT"), outlierTGroup: optional("outlierTGroup"), bulkEdgeT: optional("bulkEdgeT"),
                  m2T: optional("m2T"), m2TGroup: optional("m2TGroup"), preprocessingMinimum: optional("preprocessingMinimum"),
                  outlierP: optional("outlierP"), bulkEdgeP: optional("bulkEdgeP"), m2P: optional("m2P"))
    }
}
