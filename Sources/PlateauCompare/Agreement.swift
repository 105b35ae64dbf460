import Foundation
import PlateauCore

/// How strict "agrees" is.
public struct AgreementCriterion: Sendable, Hashable {
    /// Family-wise false-alarm probability over all (time, observable) comparisons (Bonferroni).
    public var familywiseAlpha: Double
    /// b of the finite-size allowance b/d on |mean deviation| (in the observable's units).
    /// The systematic part of simulation − theory at finite d is O(1/d) (the ODE drops O(η²/d)
    /// per-step terms, and averages of nonlinear functions of O(1/√d) fluctuations shift by O(1/d)),
    /// while the random part shrinks with √R.
    ///
    /// Calibration (2026-11-22, `plateau compare --seeds 64 --seed 777 --allowance 0` on the default
    /// experiment, t ≤ 300, d = 250, 500, 1000, 2000; 410 comparisons each): with b = 0 no comparison
    /// exceeded z·SE (z = 4.56; largest |deviation|/SE = 2.8, 2.6, 3.4, 2.8), so the O(1/d) bias is
    /// below that run's resolution; the largest d·|deviation| seen was 1.3, 13, 14, 25 (noise-dominated).
    /// b = 0.5 is kept as a margin for the bias at R ≫ 64, a fraction of what a 64-seed run resolves.
    public var finiteSizeAllowance: Double
    /// An absolute floor added to the threshold, for the integrator's tolerance.
    public var integratorTolerance: Double

    public init(familywiseAlpha: Double = 0.01, finiteSizeAllowance: Double = 0.5, integratorTolerance: Double = 1e-6) {
        self.familywiseAlpha = familywiseAlpha
        self.finiteSizeAllowance = finiteSizeAllowance
        self.integratorTolerance = integratorTolerance
    }
}

/// One (time, observable) comparison.
public struct ObservableComparison: Sendable, Hashable {
    public var time: Double
    public var observable: String
    public var theory: Double
    public var simulationMean: Double
    public var simulationStandardError: Double
    /// Mean over seeds of (simulation − theory), each seed against the theory started from its own
    /// realised initial overlaps.
    public var meanDeviation: Double
    public var deviationStandardError: Double
    /// z·SE + b/d + integrator tolerance.
    public var threshold: Double
    public var agrees: Bool
    /// |mean deviation| in units of its standard error.
    public var zScore: Double { abs(meanDeviation) / deviationStandardError }
}

/// The answer to "where do theory and simulation agree", at one dimension.
public struct AgreementReport: Sendable {
    public var dimension: Int
    public var seeds: Int
    public var criticalValue: Double
    public var criterion: AgreementCriterion
    public var comparisons: [ObservableComparison]
    /// Root-mean-square deviation over seeds, times and observables.
    public var rmsDeviation: Double

    public var agreesEverywhere: Bool { comparisons.allSatisfy(\.agrees) }
    public var firstDisagreement: ObservableComparison? {
        comparisons.filter { !$0.agrees }.min { ($0.time, $0.observable) < ($1.time, $1.observable) }
    }
    /// The comparison with the largest |deviation| / threshold.
    public var worst: ObservableComparison? {
        comparisons.max { abs($0.meanDeviation) / $0.threshold < abs($1.meanDeviation) / $1.threshold }
    }
    /// Times at which every observable agrees.
    public var agreeingTimes: [Double] {
        let byTime = Dictionary(grouping: comparisons, by: \.time)
        return byTime.filter { $0.value.allSatisfy(\.agrees) }.keys.sorted()
    }

    /// A short human summary.
    public var summary: String {
        var s = "d = \(dimension), \(seeds) seeds, \(comparisons.count) comparisons, z = \(String(format: "%.3f", criticalValue)), allowance b/d = \(String(format: "%.3g", criterion.finiteSizeAllowance / Double(dimension)))\n"
        if agreesEverywhere {
            s += "agrees at every time and observable"
        } else if let f = firstDisagreement, let w = worst {
            s += "first disagreement at t = \(Trajectory.format(f.time)) (\(f.observable): deviation \(Trajectory.format(f.meanDeviation)) vs threshold \(Trajectory.format(f.threshold)))\n"
            s += "worst: \(w.observable) at t = \(Trajectory.format(w.time)), |deviation| = \(String(format: "%.2f", abs(w.meanDeviation) / w.threshold))× threshold\n"
            s += "\(comparisons.filter(\.agrees).count) of \(comparisons.count) comparisons agree"
        }
        s += String(format: "\nRMS deviation %.4g", rmsDeviation)
        return s
    }
}

public enum Agreement {
    /// Observables compared by default: the risk and the independent order parameters (the cosines
    /// are functions of these and would only inflate the Bonferroni count).
    public static func defaultObservables(_ names: [String]) -> [String] {
        names.filter { $0 == "risk" || $0.hasPrefix("M_") || $0.hasPrefix("Q_") || $0.hasPrefix("a_") }
    }

    /// Compares per-seed simulations with per-seed theory curves (same times, same observables;
    /// `theory[i]` is the theory started from `simulation[i]`'s realised initial overlaps).
    /// Rows missing in either (a curve that ended early) are left out.
    ///
    /// `theoryStandardError`: the standard error of a Monte-Carlo theory (e.g. the DMFT's), per time and
    /// observable; it is added in quadrature to the deviation's standard error in the threshold.
    public static func compare(theory: [Trajectory], simulation: [Trajectory], dimension: Int,
                               observables: [String]? = nil,
                               criterion: AgreementCriterion = AgreementCriterion(),
                               theoryStandardError: Trajectory? = nil) -> AgreementReport {
        precondition(theory.count == simulation.count && !theory.isEmpty)
        let names = observables ?? defaultObservables(simulation[0].observables)
        let R = simulation.count
        let rows = zip(theory, simulation).map { min($0.times.count, $1.times.count) }.min()!
        let columns = names.map { n in (simulation[0].observables.firstIndex(of: n)!, theory[0].observables.firstIndex(of: n)!) }
        // Comparisons where every seed's simulation equals its theory exactly (the start, which the
        // theory takes from the simulation; a fixed second layer; Q_jj of a spherical student) test
        // nothing: they are reported but not counted in the Bonferroni family.
        func identical(_ i: Int, _ c: (Int, Int)) -> Bool {
            (0..<R).allSatisfy { r in
                let a = simulation[r].values[i][c.0], b = theory[r].values[i][c.1]
                return abs(a - b) <= 1e-12 * max(1, abs(a))
            }
        }
        var N = 0
        for i in 0..<rows { for c in columns where !identical(i, c) { N += 1 } }
        N = max(N, 1)
        let z = SeedStatistics.criticalValue(alpha: criterion.familywiseAlpha, comparisons: N, seeds: R)
        let allowance = criterion.finiteSizeAllowance / Double(dimension) + criterion.integratorTolerance
        var out: [ObservableComparison] = []
        var sumSq = 0.0, count = 0
        for i in 0..<rows {
            for (ni, name) in names.enumerated() {
                let (cs, ct) = columns[ni]
                let devs = (0..<R).map { simulation[$0].values[i][cs] - theory[$0].values[i][ct] }
                let sims = (0..<R).map { simulation[$0].values[i][cs] }
                let ths = (0..<R).map { theory[$0].values[i][ct] }
                let (md, sd) = SeedStatistics.meanAndStandardError(devs)
                let (ms, ss) = SeedStatistics.meanAndStandardError(sims)
                var theoryError = 0.0
                if let e = theoryStandardError, let c = e.observables.firstIndex(of: name), i < e.values.count, e.values[i][c].isFinite {
                    theoryError = e.values[i][c]
                }
                let threshold = z * ((sd.isFinite ? sd * sd : 0) + theoryError * theoryError).squareRoot() + allowance
                for d in devs { sumSq += d * d; count += 1 }
                out.append(ObservableComparison(
                    time: simulation[0].times[i], observable: name, theory: ths.reduce(0, +) / Double(R),
                    simulationMean: ms, simulationStandardError: ss, meanDeviation: md,
                    deviationStandardError: sd, threshold: threshold, agrees: md.isFinite && abs(md) <= threshold))
            }
        }
        return AgreementReport(dimension: dimension, seeds: R, criticalValue: z, criterion: criterion,
                               comparisons: out, rmsDeviation: (sumSq / Double(max(count, 1))).squareRoot())
    }
}

/// Finite-size scaling of the deviation between simulation and theory: fit log RMS = c + s·log d.
/// A correct simulation and theory give s ≈ −½ (fluctuations O(1/√d)); a wrong time or
/// learning-rate convention leaves an O(1) deviation and s ≈ 0.
public struct FiniteSizeScaling: Sendable {
    public var dimensions: [Int]
    public var rmsDeviations: [Double]
    public var slope: Double
    public var slopeStandardError: Double
    public var intercept: Double

    public init(dimensions: [Int], rmsDeviations: [Double]) {
        self.dimensions = dimensions
        self.rmsDeviations = rmsDeviations
        let fit = SeedStatistics.linearFit(x: dimensions.map { log(Double($0)) }, y: rmsDeviations.map { log($0) })
        slope = fit.slope
        slopeStandardError = fit.slopeStandardError
        intercept = fit.intercept
    }

    /// The slope lies in the range expected of O(d^{-1/2}) fluctuations.
    public var consistentWithSquareRootScaling: Bool { slope >= -0.75 && slope <= -0.25 }
}
