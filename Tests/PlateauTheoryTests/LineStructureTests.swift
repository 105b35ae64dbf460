import Foundation
import Testing
import PlateauCore
@testable import PlateauTheory

/// The crossing finder of the binned (continuous-output) channel against the independent route it
/// replaced: bisection of the label alone (`LineStructureBuilder.bisectionOnly`).
@Suite("Channel line structure: root finder against label bisection")
struct LineStructureTests {
    /// Error model: both routes bracket the same label change to a width below the tolerance 1e-11 and
    /// report the bracket's midpoint, so each is within 5e-12 of the change point and they differ by at
    /// most 1e-11; the bound 1e-10 leaves a factor 10 for a label that flickers within rounding of a bin
    /// edge (the change point itself is then defined only to |∂g/∂t|⁻¹·ulp(g)).
    static let agreement = 1e-10

    /// Targets (k, bin width) and outer points z_{<k} of the lines compared: g linear along the line
    /// (z₁z₂, tanh(z₁)z₂, z₁z₂z₃), quadratic (z₁², k = 1), non-monotone and curved (sin(2z₂) + z₁z₂², circles), and with jumps of
    /// one or many bins (z₁z₂ + 0.03·sign(z₂ − z₁) at h = 0.05, z₁² + sign(z₁z₂z₃)).
    static let cases: [(target: String, k: Int, h: Double, prefixes: [[Double]])] = [
        ("z1^2", 1, 0.02, [[]]),
        ("z1*z2", 2, 0.02, [[-2.7], [0.05], [1.3], [4.9]]),
        ("tanh(z1)*z2", 2, 0.02, [[-1.9], [0.31], [3.2]]),
        ("sin(2*z2) + z1*z2^2", 2, 0.05, [[-0.4], [0.013], [0.7]]),
        ("z1^2 + z2^2", 2, 0.02, [[0], [0.999], [2.3]]),
        ("z1*z2 + 0.03*sign(z2 - z1)", 2, 0.05, [[-0.8], [0.45], [2.1]]),
        ("z1^2 + sign(z1*z2*z3)", 3, 0.05, [[0.3, -1.1], [1.7, 0.4]]),
        ("z1*z2*z3", 3, 0.1, [[-1.2, 0.8], [2.5, 1.9]]),
    ]

    @Test("breakpoints and labels along lines agree with label bisection to 1e-10")
    func rootFinderMatchesBisection() throws {
        var worst = 0.0, total = 0
        for c in Self.cases {
            let g = try Formula(parsing: c.target, variables: .target(k: c.k))
            let problem = EstimationProblem(teacher: TeacherSpec(link: g, noiseVariance: 0), alpha: nil,
                                            settings: StateEvolutionSettings())
            // The channel's alphabet and builders, without building the channel itself.
            let (alphabet, labels, origin) = try OutputChannel.outputAlphabet(problem: problem, resolution: c.h)
            #expect(alphabet == .binned(width: c.h), "\(c.target) is binned")
            func builder(bisectionOnly: Bool) -> LineStructureBuilder {
                LineStructureBuilder(k: c.k, target: g, alphabet: alphabet, binOrigin: origin, labelCount: labels.count,
                                     bisectionOnly: bisectionOnly, refinement: 0)
            }
            let fast = builder(bisectionOnly: false), reference = builder(bisectionOnly: true)
            for prefix in c.prefixes {
                let a = fast.line(prefix), b = reference.line(prefix)
                #expect(a.labels == b.labels, "\(c.target) at \(prefix): labels along the line")
                #expect(a.breaks.count == b.breaks.count, "\(c.target) at \(prefix): \(a.breaks.count) against \(b.breaks.count) breakpoints")
                guard a.breaks.count == b.breaks.count else { continue }
                let deviation = zip(a.breaks, b.breaks).map { abs($0 - $1) }.max() ?? 0
                #expect(deviation <= Self.agreement, "\(c.target) at \(prefix): breakpoints differ by \(deviation)")
                worst = max(worst, deviation); total += a.breaks.count
            }
        }
        print("line structure: \(total) breakpoints on \(Self.cases.reduce(0) { $0 + $1.prefixes.count }) lines, largest difference from bisection \(worst)")
        #expect(total > 10_000, "the lines cross many bin edges")
    }

    /// The whole channel built both ways: α_c and the sum-rule error. Error model: every breakpoint moves
    /// by < 1e-11, so each region moment moves by < 1e-11 × (number of its breakpoints) × φ ≤ 1e-11 per
    /// unit of its mass; α_c = 1/λ_max(𝓕) is smooth in the moments of the atoms that carry 𝓕, so it moves
    /// by ~1e-11 relative (1e-14 measured for z₁z₂, tanh(z₁)z₂, z₁² + sign(z₁z₂z₃)); bound 1e-10 relative.
    /// The sum rules telescope over the labels of each line, so they do not see the breakpoints: both
    /// channels keep the outer rule's ~1e-15.
    @Test("the channel built with the root finder gives the α_c and sum-rule error of the bisection channel")
    func channelMatchesBisection() throws {
        let problem = StateEvolutionTests.problem("tanh(z1)*z2", k: 2)
        var results: [(alphaC: Double, sumRule: Double, breaks: Int)] = []
        for bisectionOnly in [false, true] {
            let channel = try OutputChannel(problem: problem, resolution: 0.04, refinement: 0, bisectionOnly: bisectionOnly)
            let analysis = try StateEvolution(problem: problem, channel: channel).weakRecovery()
            results.append((analysis.alphaC, channel.sumRuleError, channel.outerRules.last!.breaks.count))
        }
        print("tanh(z1) z2, h = 0.04: α_c \(results[0].alphaC) (root finder) against \(results[1].alphaC) (bisection), "
              + "sum-rule errors \(results[0].sumRule), \(results[1].sumRule); \(results[0].breaks) breakpoints")
        #expect(results[0].breaks == results[1].breaks)
        #expect(abs(results[0].alphaC - results[1].alphaC) <= 1e-10 * results[1].alphaC)
        #expect(abs(results[0].sumRule - results[1].sumRule) <= 1e-12)
        #expect(results[0].sumRule < 1e-12)
    }
}
