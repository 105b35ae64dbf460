import Foundation

/// How a computed curve ended. Physics failures (divergence, leaving the PSD cone) are results, not crashes.
public enum TrajectoryStatus: String, Sendable, Hashable, Codable {
    case completed
    /// An observable became NaN or ±∞.
    case diverged
    /// The overlaps left the cone of valid covariances ([[Q, M], [Mᵀ, P]] not PSD).
    case leftPSDCone
    /// The integrator failed (step size underflow, too many steps, ...).
    case integratorFailure
}

/// A curve on one time axis: `times[i]` with `values[i][c]` the value of `observables[c]`.
/// Rows exist only for the times actually reached; `status` and `message` tell why a curve ended early.
public struct Trajectory: Sendable, Hashable {
    public var times: [Double]
    public var observables: [String]
    public var values: [[Double]]
    public var status: TrajectoryStatus
    public var message: String

    public init(times: [Double] = [], observables: [String], values: [[Double]] = [],
                status: TrajectoryStatus = .completed, message: String = "") {
        self.times = times
        self.observables = observables
        self.values = values
        self.status = status
        self.message = message
    }

    public mutating func append(time: Double, values row: [Double]) {
        precondition(row.count == observables.count, "Trajectory row has \(row.count) values for \(observables.count) observables")
        times.append(time)
        values.append(row)
    }

    public func column(_ name: String) -> [Double]? {
        guard let c = observables.firstIndex(of: name) else { return nil }
        return values.map { $0[c] }
    }

    /// Long-format-friendly CSV: a header `t,<observables>` and one row per time. NaN and ±∞ are
    /// written as `nan`, `inf`, `-inf`.
    public func csv(extraColumns: [(String, String)] = []) -> String {
        var out = (extraColumns.map(\.0) + ["t"] + observables).joined(separator: ",") + "\n"
        let prefix = extraColumns.map(\.1)
        for (i, t) in times.enumerated() {
            out += (prefix + [Self.format(t)] + values[i].map(Self.format)).joined(separator: ",") + "\n"
        }
        return out
    }

    public static func format(_ x: Double) -> String {
        if x.isNaN { return "nan" }
        if x.isInfinite { return x > 0 ? "inf" : "-inf" }
        return String(format: "%.10g", x)
    }
}

/// Converts between the online-SGD time axis and counts: t = steps / d, samples = n_b·d·t.
public enum OnlineTime {
    /// The step index nearest to time t at dimension d.
    public static func step(at t: Double, dimension d: Int) -> Int { Int((t * Double(d)).rounded()) }
    public static func time(ofStep step: Int, dimension d: Int) -> Double { Double(step) / Double(d) }
    public static func samples(at t: Double, dimension d: Int, batchSize: Int) -> Double { t * Double(d) * Double(batchSize) }

    /// The recorded times realised at dimension d: each requested time rounded to a whole step,
    /// duplicates removed. Theory evaluated at these times lines up with the simulation exactly.
    public static func realisedTimes(_ times: [Double], dimension d: Int) -> [Double] {
        var steps: [Int] = []
        for t in times { let s = step(at: t, dimension: d); if steps.last != s { steps.append(s) } }
        return steps.map { time(ofStep: $0, dimension: d) }
    }
}
