import Foundation
import Testing
import PlateauCompare
import PlateauCore
import PlateauSimulation
import PlateauStudies
import PlateauTheory

/// Finite-d overlaps of the spectral estimators against the d = ∞ theory through PlateauCompare: z·SE
/// (Bonferroni over α and observables) plus the stated allowance b/d (`SpectralScan.finiteSizeAllowance`)
/// and the theory's own accuracy. Sizes and α from `../shared/reference/spectral.md` (d = 1000–2000 there;
/// smaller here to fit the default run, which the b/d allowance accounts for).
@Suite("Spectral estimators: finite d against theory")
struct SpectralAgreementTests {
    static func problem(_ target: String, k: Int) -> EstimationProblem {
        EstimationProblem(teacher: TeacherSpec(link: try! Formula(parsing: target, variables: .target(k: k))))
    }

    /// Closer to α_c (α = 3, 4 = 1.2, 1.6 α_c) the group mean of the two near-degenerate outliers is still far
    /// below the theory at d = 600–1500 (0.24 against 0.38 at α = 4, d = 1500, while the top eigenvector's
    /// m² is 0.379): a finite-size effect of the split pair that b/d does not cover, left out here.
    @Test("sign(z1 z2) at α = 6, 8 (α_c = π²/4 ≈ 2.47; a doubly degenerate outlier, compared as the group mean) and 2 (below: compatible with 0)")
    func signProduct() throws {
        let scan = try SpectralScan.run(problem: Self.problem("sign(z1*z2)", k: 2), alphas: [2, 6, 8],
                                        options: SpectralOptions(dimension: 800, seeds: 6, masterSeed: 11))
        let r = scan.report!
        for c in r.comparisons {
            print("α = \(c.time) \(c.observable): theory \(c.theory), measured \(c.simulationMean) ± \(c.simulationStandardError), |dev| \(abs(c.meanDeviation)) ≤ \(c.threshold)? \(c.agrees)")
        }
        #expect(r.agreesEverywhere, "\(r.summary)")
        // Below α_c the theory is 0: the comparison above is the test that the overlap is compatible with 0.
        #expect(scan.theory[0].m2L == 0 && scan.theory[0].m2T == 0)
    }

    @Test("phase retrieval at α = 2, 4 (reference sizes: d = 2000; here 800) and 0.3 (below α_c = ½)")
    func phaseRetrieval() throws {
        let scan = try SpectralScan.run(problem: Self.problem("z1^2", k: 1), alphas: [0.3, 2, 4],
                                        options: SpectralOptions(dimension: 800, seeds: 6, masterSeed: 5))
        let r = scan.report!
        for c in r.comparisons {
            print("α = \(c.time) \(c.observable): theory \(c.theory), measured \(c.simulationMean) ± \(c.simulationStandardError), |dev| \(abs(c.meanDeviation)) ≤ \(c.threshold)? \(c.agrees)")
        }
        #expect(r.agreesEverywhere, "\(r.summary)")
    }

    /// The reference file's sizes (`../shared/reference/spectral.md`: phase retrieval at d = 2000, z₁z₂ at
    /// d = 1000), α on both sides of α_c (½ and 0.5938), as `plateau reproduce spectral-transition` runs them; 8 seeds,
    /// so that the Bonferroni Student-t z (7 degrees of freedom, 18 comparisons) is about 5, not 12 as with 4.
    @Test("at the reference sizes (PLATEAU_LONG_TESTS): phase retrieval d = 2000 and z1 z2 d = 1000, both sides of α_c",
          .enabled(if: ProcessInfo.processInfo.environment["PLATEAU_LONG_TESTS"] != nil),
          arguments: [("z1^2", 1, [0.25, 1, 2, 4, 8], 2000), ("z1*z2", 2, [0.4, 1, 2, 4], 1000), ("sign(z1*z2)", 2, [8], 1000)])
    func referenceSizes(_ target: String, _ k: Int, _ alphas: [Double], _ d: Int) throws {
        let scan = try SpectralScan.run(problem: Self.problem(target, k: k), alphas: alphas,
                                        options: SpectralOptions(dimension: d, seeds: 8, masterSeed: 3))
        let r = scan.report!
        for c in r.comparisons {
            print("\(target), d = \(d), α = \(c.time) \(c.observable): theory \(c.theory), measured \(c.simulationMean) ± \(c.simulationStandardError), |dev| \(abs(c.meanDeviation)) ≤ \(c.threshold)? \(c.agrees)")
        }
        #expect(r.agreesEverywhere, "\(r.summary)")
    }

    /// z₁/z₂ at d = 1000, α = 2, 4 (`../shared/reference/spectral.md`: m²_L = 0.495, 0.759 measured, 1 − 1/α in
    /// theory), L alone (𝒯 is undefined), through the bounded bijection z₁ sign(z₂)/|z| (the same G up to a
    /// relabelling of y, so the same L), whose theory takes 0.4 s instead of 80 s.
    @Test("z1/z2 at d = 1000 (PLATEAU_LONG_TESTS): L alone, mirrored spectrum, m²_L against 1 − 1/α",
          .enabled(if: ProcessInfo.processInfo.environment["PLATEAU_LONG_TESTS"] != nil))
    func ratioReferenceSize() throws {
        let scan = try SpectralScan.run(problem: Self.problem("z1*sign(z2)/sqrt(z1^2 + z2^2)", k: 2), alphas: [2, 4],
                                        options: SpectralOptions(dimension: 1000, seeds: 8, masterSeed: 4), symmetric: false)
        let r = scan.report!
        for c in r.comparisons {
            print("z1/z2, d = 1000, α = \(c.time) \(c.observable): theory \(c.theory), measured \(c.simulationMean) ± \(c.simulationStandardError), |dev| \(abs(c.meanDeviation)) ≤ \(c.threshold)? \(c.agrees)")
        }
        #expect(r.comparisons.count == 2 && r.agreesEverywhere, "\(r.summary)")
    }
}
