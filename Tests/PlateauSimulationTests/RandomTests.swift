import Foundation
import Testing
@testable import PlateauCore

/// Statistics of the random streams. Every bound is 5 standard errors of the estimator (or a
/// binomial 5σ), so a correct generator fails with probability ~1e-6 per check; all seeds are fixed.
@Suite struct RandomTests {
    static let n = 1_000_000

    static func normals(seed: UInt64, count: Int = n) -> [Double] {
        var rng = Xoshiro256PlusPlus(seed: seed)
        var z = [Double](repeating: .nan, count: count)
        z.withUnsafeMutableBufferPointer { rng.fillStandardNormal($0) }
        return z
    }

    @Test func xoshiroMatchesReferenceVector() {
        // Output of the authors' xoshiro256plusplus.c from state {1, 2, 3, 4}.
        var rng = Xoshiro256PlusPlus(state: 1, 2, 3, 4)
        let expected: [UInt64] = [41943041, 58720359, 3588806011781223, 3591011842654386, 9228616714210784205,
                                  9973669472204895162, 14011001112246962877, 12406186145184390807,
                                  15849039046786891736, 10450023813501588000]
        #expect((0..<10).map { _ in rng.next() } == expected)
    }

    @Test func zigguratTablesClose() {
        let t = ZigguratTables.shared
        #expect(t.x[1] == ZigguratTables.r)
        #expect(t.x[256] == 0 && t.f[256] == 1)
        for i in 1..<256 { #expect(t.x[i] > t.x[i + 1]) }
    }

    @Test func normalMoments() {
        let z = Self.normals(seed: 20_240_601)
        let n = Double(z.count)
        var m1 = 0.0, m2 = 0.0, m3 = 0.0, m4 = 0.0
        for x in z { let x2 = x * x; m1 += x; m2 += x2; m3 += x2 * x; m4 += x2 * x2 }
        m1 /= n; m2 /= n; m3 /= n; m4 /= n
        // Standard errors of the raw moments of N(0,1): Var z = 1, Var z² = 2, Var z³ = 15, Var z⁴ = 96.
        #expect(abs(m1) < 5 * (1 / n).squareRoot(), "mean \(m1)")
        #expect(abs(m2 - 1) < 5 * (2 / n).squareRoot(), "E z² = \(m2)")
        #expect(abs(m3) < 5 * (15 / n).squareRoot(), "E z³ = \(m3)")
        #expect(abs(m4 - 3) < 5 * (96 / n).squareRoot(), "E z⁴ = \(m4)")
    }

    @Test func normalDistributionAndTails() {
        let z = Self.normals(seed: 77)
        let n = Double(z.count)
        func checkCount(_ observed: Int, probability q: Double, _ label: String) {
            let expected = n * q, sd = (n * q * (1 - q)).squareRoot()
            #expect(abs(Double(observed) - expected) < 5 * sd, "\(label): \(observed) vs \(expected) ± \(sd)")
        }
        // Two-sided tails, including beyond the ziggurat's tail boundary r ≈ 3.654.
        for c in [1.0, 2.0, 3.0, ZigguratTables.r, 4.0] {
            checkCount(z.filter { abs($0) > c }.count, probability: erfc(c / 2.0.squareRoot()), "P(|z| > \(c))")
        }
        // The CDF at a few points (catches an asymmetric or mis-scaled layer).
        for c in [-2.5, -1.3, -0.4, 0.0, 0.25, 0.9, 1.7] {
            checkCount(z.filter { $0 < c }.count, probability: 0.5 * erfc(-c / 2.0.squareRoot()), "P(z < \(c))")
        }
    }

    @Test func streamsAreUncorrelated() {
        let a = Self.normals(seed: 1), b = Self.normals(seed: 2)
        let n = Double(a.count)
        var cross = 0.0, lag = 0.0
        for i in 0..<a.count { cross += a[i] * b[i] }
        for i in 1..<a.count { lag += a[i] * a[i - 1] }
        #expect(abs(cross / n) < 5 / n.squareRoot(), "corr(seed 1, seed 2) = \(cross / n)")
        #expect(abs(lag / (n - 1)) < 5 / (n - 1).squareRoot(), "lag-1 autocorrelation = \(lag / (n - 1))")
    }

    @Test func uniformIsInRangeAndCentred() {
        var rng = Xoshiro256PlusPlus(seed: 9)
        var sum = 0.0
        let n = 200_000
        for _ in 0..<n {
            let u = rng.nextUniform()
            #expect(u >= 0 && u < 1)
            sum += u
        }
        #expect(abs(sum / Double(n) - 0.5) < 5 * (1.0 / 12 / Double(n)).squareRoot())
    }

    @Test func seedSequenceIsDeterministicAndDistinct() {
        let seeds = (0..<10_000).map { SeedSequence.seed(master: 42, index: $0) }
        #expect(Set(seeds).count == seeds.count)
        #expect(seeds == (0..<10_000).map { SeedSequence.seed(master: 42, index: $0) })
        let other = (0..<10_000).map { SeedSequence.seed(master: 43, index: $0) }
        #expect(Set(seeds).isDisjoint(with: other))
        #expect(SeedSequence.seed(master: 0, index: 0) != 0)
        // Same seed, same stream; different seeds, different streams.
        #expect(Self.normals(seed: seeds[0], count: 64) == Self.normals(seed: seeds[0], count: 64))
        #expect(Self.normals(seed: seeds[0], count: 64) != Self.normals(seed: seeds[1], count: 64))
    }
}
