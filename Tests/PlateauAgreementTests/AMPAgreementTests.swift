import Foundation
import Testing
import PlateauCompare
import PlateauCore
import PlateauSimulation
import PlateauStudies
import PlateauTheory

/// Finite-d GAMP against the state evolution through PlateauCompare's verdicts (the criterion of the
/// online comparisons: Bonferroni-corrected Student-t z·SE + b/d, b = 0.5), per iteration and at
/// the fixed point over an α grid, each with a negative control (the state evolution at a wrong α).
@Suite("GAMP vs state evolution (PlateauCompare verdicts)")
struct AMPAgreementTests {
    static func problem(_ target: String, k: Int, noise: Double = 0, epsilon: Double) -> EstimationProblem {
        var p = EstimationProblem(teacher: TeacherSpec(link: try! Formula(parsing: target, variables: .target(k: k)), noiseVariance: noise))
        p.settings.epsilon = epsilon
        return p
    }

    @Test("sign(z₁z₂), α = 3.5, d = 2000: q_t and Q_t agree per iteration; the state evolution at 0.8α is rejected")
    func perIteration() throws {
        let problem = Self.problem("sign(z1*z2)", k: 2, epsilon: 0.2)
        let options = GAMPOptions(dimension: 2000, iterations: 12, seeds: 6, masterSeed: 11)
        let se = try StateEvolution(problem: problem)
        let right = try AMPComparison.run(problem: problem, alpha: 3.5, options: options, stateEvolution: se)
        let wrong = try AMPComparison.run(problem: problem, alpha: 3.5, options: options, stateEvolution: se, theoryAlpha: 2.8)
        print("sign(z1 z2) α = 3.5 per iteration: \(right.report.summary)")
        print("  control (SE at α = 2.8): \(wrong.report.summary)")
        #expect(right.report.agreesEverywhere)
        #expect(!wrong.report.agreesEverywhere)
    }

    @Test("z₁ + √Δξ (Δ = 0.1): GAMP after 10 iterations against the state evolution (its closed form) over α ∈ {0.5, 1, 2}")
    func fixedPointScan() throws {
        let problem = Self.problem("z1", k: 1, noise: 0.1, epsilon: 0.01)
        let options = GAMPOptions(dimension: 2000, iterations: 10, seeds: 6, masterSeed: 5)
        let scan = try AMPFixedPointScan.run(problem: problem, alphas: [0.5, 1, 2], options: options)
        print("z1 + noise, α grid: \(scan.report.summary)")
        for c in scan.report.comparisons where c.observable == "q" {
            print("  α = \(c.time): SE \(c.theory), GAMP \(c.simulationMean) ± \(c.simulationStandardError)")
        }
        #expect(scan.report.agreesEverywhere)
        // The linear channel's state evolution is M ← α/(1 − M + Δ + α) in closed form: the theory column
        // is the mean over seeds of its 10th iterate from each seed's realised M₀.
        for (run, c) in zip(scan.runs, scan.report.comparisons.filter { $0.observable == "q" }) {
            let iterates = run.gamp.seeds.map { seed -> Double in
                var m = seed.M[0][0, 0]
                for _ in 0..<10 { m = c.time / (1 - m + 0.1 + c.time) }
                return m
            }
            let mean = iterates.reduce(0, +) / Double(iterates.count)
            #expect(abs(c.theory - mean) < 1e-6, "α = \(c.time): \(c.theory) against \(mean)")
        }
    }
}
