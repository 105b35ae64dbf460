import Foundation
import Testing
import PlateauCore
@testable import PlateauCompare

@Suite("Seed statistics and agreement verdicts")
struct StatisticsTests {
    @Test("mean and standard error across seeds")
    func summary() {
        let names = ["risk"]
        let curves = [[1.0, 2.0], [3.0, 6.0], [5.0, 7.0]].map { v in
            Trajectory(times: [0, 1], observables: names, values: v.map { [$0] })
        }
        let s = SeedStatistics.summary(curves)
        #expect(s.mean.values.map { $0[0] } == [3, 5])
        // Sample sd of (1, 3, 5) is 2, SE = 2/√3.
        #expect(abs(s.standardError.values[0][0] - 2 / 3.0.squareRoot()) < 1e-15)
        #expect(s.count == [3, 3])
    }

    @Test("critical values: known quantiles of the normal and Student-t")
    func quantiles() {
        // Two-sided 5% with one comparison: 1.959964 (normal), 2.262157 (t, 9 dof).
        #expect(abs(SeedStatistics.criticalValue(alpha: 0.05, comparisons: 1, seeds: nil) - 1.959964) < 1e-6)
        #expect(abs(SeedStatistics.criticalValue(alpha: 0.05, comparisons: 1, seeds: 10) - 2.262157) < 1e-6)
        // Bonferroni over 10 comparisons at 5%: normal quantile at 1 − 0.0025 = 2.807034.
        #expect(abs(SeedStatistics.criticalValue(alpha: 0.05, comparisons: 10, seeds: nil) - 2.807034) < 1e-6)
    }

    @Test("log-log slope fit recovers an exact power law")
    func scaling() {
        let dims = [250, 500, 1000, 2000]
        let rms = dims.map { 3.0 * pow(Double($0), -0.5) }
        let s = FiniteSizeScaling(dimensions: dims, rmsDeviations: rms)
        #expect(abs(s.slope + 0.5) < 1e-12 && s.consistentWithSquareRootScaling)
        #expect(!FiniteSizeScaling(dimensions: dims, rmsDeviations: [0.1, 0.1, 0.1, 0.1]).consistentWithSquareRootScaling)
    }

    /// Synthetic seeds: theory 0, simulation = bias + N(0, 1) noise; the verdict must accept a zero
    /// bias and reject a bias of 10 standard errors.
    @Test("verdicts on synthetic data: no false alarm at zero bias, detection at 10 SE")
    func verdicts() {
        var rng = SplitMix(seed: 42)
        let R = 32, T = 20
        func curves(bias: Double) -> (theory: [Trajectory], sim: [Trajectory]) {
            var th: [Trajectory] = [], sim: [Trajectory] = []
            for _ in 0..<R {
                th.append(Trajectory(times: (0..<T).map(Double.init), observables: ["risk"], values: Array(repeating: [0], count: T)))
                sim.append(Trajectory(times: (0..<T).map(Double.init), observables: ["risk"], values: (0..<T).map { _ in [bias + rng.normal()] }))
            }
            return (th, sim)
        }
        let crit = AgreementCriterion(familywiseAlpha: 0.01, finiteSizeAllowance: 0, integratorTolerance: 0)
        let ok = curves(bias: 0)
        let good = Agreement.compare(theory: ok.theory, simulation: ok.sim, dimension: 100, criterion: crit)
        #expect(good.agreesEverywhere)
        let shifted = curves(bias: 10 / Double(R).squareRoot())
        let bad = Agreement.compare(theory: shifted.theory, simulation: shifted.sim, dimension: 100, criterion: crit)
        #expect(!bad.agreesEverywhere)
        #expect(bad.firstDisagreement != nil && bad.worst != nil)
        // The allowance b/d accepts a bias below it.
        let lenient = Agreement.compare(theory: shifted.theory, simulation: shifted.sim, dimension: 1,
                                        criterion: AgreementCriterion(familywiseAlpha: 0.01, finiteSizeAllowance: 10, integratorTolerance: 0))
        #expect(lenient.agreesEverywhere)
    }
}

/// A tiny seeded generator for synthetic test data.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func uniform() -> Double { (Double(next() >> 11) + 0.5) / 9007199254740992.0 }
    mutating func normal() -> Double { (-2 * log(uniform())).squareRoot() * cos(2 * .pi * uniform()) }
}
