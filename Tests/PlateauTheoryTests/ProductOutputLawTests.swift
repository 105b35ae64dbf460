import Foundation
import Testing
import PlateauCore
import CGSL
@testable import PlateauTheory

/// The exact law of product outputs y = c·z_{a₁}⋯z_{a_m} (`ProductOutputLaw`) against independent routes:
/// the one-dimensional Bessel reduction of `../shared/reference/state-evolution.md` by GSL's adaptive
/// quadrature on y (m = 2), the same law conditioned on a different factor (m = 3), and seeded Monte
/// Carlo of the bin probabilities and conditional second moments (m = 2, 3, 4).
@Suite("Product outputs: exact law")
struct ProductOutputLawTests {
    static func problem(_ target: String, k: Int, noise: Double = 0) -> EstimationProblem {
        EstimationProblem(teacher: TeacherSpec(link: try! Formula(parsing: target, variables: .target(k: k)), noiseVariance: noise))
    }

    @Test("recognised: noiseless c·z_a z_b (z_c z_d) of distinct coordinates; not powers, sums, noise or other links")
    func recognition() {
        #expect(ProductOutputLaw.applies(to: Self.problem("z1*z2", k: 2)))
        #expect(ProductOutputLaw.applies(to: Self.problem("-2*z3*z1", k: 3)))
        #expect(ProductOutputLaw.applies(to: Self.problem("z1*z2*z3", k: 3)))
        #expect(ProductOutputLaw.applies(to: Self.problem("z1*z2*z3*z4", k: 4)))
        for (target, k, noise) in [("z1^2", 1, 0.0), ("z1^2*z2", 2, 0), ("z1*z2 + z1", 2, 0), ("z1*z2", 2, 0.01),
                                   ("sign(z1*z2)", 2, 0), ("z1", 1, 0), ("tanh(z1)*z2", 2, 0)] {
            #expect(!ProductOutputLaw.applies(to: Self.problem(target, k: k, noise: noise)), "\(target), Δ = \(noise)")
        }
    }

    @Test("sum rules ∫p = 1, E[z_a²] = 1, E[x²] = 1 hold to 1e-12 for m = 2, 3, 4")
    func sumRules() {
        for (target, k) in [("z1*z2", 2), ("z1*z2*z3", 3), ("z1*z2*z3*z4", 4)] {
            let law = ProductOutputLaw(problem: Self.problem(target, k: k))!
            print("\(target): \(law.atoms.count) atoms, sum-rule error \(law.sumRuleError)")
            #expect(law.sumRuleError < 1e-12)
        }
    }

    @Test("z₁z₂: α_c equals 1/(1 + E[(|y|K₁/K₀ − 1)²]) by adaptive quadrature on y (reference file's identity) to 1e-10")
    func besselReduction() throws {
        let reference = StateEvolutionTests.productThresholdByBesselReduction()
        let a = WeakRecoveryAnalysis(law: ProductOutputLaw(problem: Self.problem("z1*z2", k: 2))!)
        // y = c z₁z₂ with c = −3: the same threshold (G depends on y/c, whose law is even).
        let scaled = WeakRecoveryAnalysis(law: ProductOutputLaw(problem: Self.problem("-3*z1*z2", k: 2))!)
        print("z1 z2: α_c = \(a.alphaC) (exact law), \(reference) (adaptive reduction); c = −3: \(scaled.alphaC)")
        #expect(a.trivialSubspace.isEmpty)
        #expect(abs(a.alphaC - reference) < 1e-10)
        #expect(abs(scaled.alphaC - a.alphaC) < 1e-13)
        #expect(a.easySubspace.count == 2, "the top eigenspace span{I, X} holds I: both directions")
    }

    @Test("z₁z₂z₃: λ_max(𝓕) = E[b²] equals the law conditioned on w = z₁z₂ instead of z₃ (Bessel-weighted factor) to 1e-9")
    func tripleProductOtherConditioning() throws {
        // x = w·z₃ with w = z₁z₂ ~ K₀(|w|)/π: p(x) = 2∫₀^∞ K₀(w)/π φ(x/w)/w dw, and for the factor z₁ inside w,
        // E[z₁² 1(x)] = 2∫₀^∞ (wK₁(w)/π) φ(x/w)/w dw.
        func phi(_ u: Double) -> Double { exp(-0.5 * u * u) / (2 * Double.pi).squareRoot() }
        func p(_ x: Double) -> Double {
            2 * StateEvolutionTests.integrateHalfLine { w in w > 0 && w < 600 ? gsl_sf_bessel_K0(w) / Double.pi * phi(x / w) / w : 0 }
        }
        func s(_ x: Double) -> Double {
            2 * StateEvolutionTests.integrateHalfLine { w in w > 0 && w < 600 ? gsl_sf_bessel_K1(w) / Double.pi * phi(x / w) : 0 }
        }
        let law = ProductOutputLaw(problem: Self.problem("z1*z2*z3", k: 3))!
        for x in [1e-6, 0.03, 0.7, 2.5, 9.0] {
            let (pe, se) = ProductOutputLaw.density(x, m: 3)
            print("z1 z2 z3 at x = \(x): p = \(pe) vs \(p(x)), s = \(se) vs \(s(x))")
            #expect(abs(pe - p(x)) < 1e-10 * max(pe, 1e-3))
            #expect(abs(se - s(x)) < 1e-10 * max(se, 1e-3))
        }
        // λ = E[b²] = 2∫₀^∞ (s − p)²/p dx on the other conditioning, x = e^σ below 1.
        let lower = StateEvolutionTests.integrateLine { sigma in
            guard sigma < 0, sigma > -60 else { return 0 }
            let x = exp(sigma), px = p(x), d = s(x) - px
            return px > 0 ? 2 * d * d / px * x : 0
        }
        let upper = StateEvolutionTests.integrateHalfLine { t in
            let x = 1 + t, px = p(x), d = s(x) - px
            return px > 1e-300 ? 2 * d * d / px : 0
        }
        let a = WeakRecoveryAnalysis(law: law)
        print("z1 z2 z3: λ_max = \(a.operatorTopEigenvalue) (exact law) vs \(lower + upper) (other conditioning); α_c = \(a.alphaC)")
        #expect(abs(a.operatorTopEigenvalue - (lower + upper)) < 1e-9 * a.operatorTopEigenvalue)
        // 𝓕 = E[b²]·identity on Sym(3): all six eigenvalues equal, the easy subspace is everything.
        #expect(a.operatorEigenvalues.allSatisfy { abs($0 - a.operatorTopEigenvalue) < 1e-12 })
        #expect(a.easySubspace.count == 3)
    }

    @Test("m = 2, 3, 4: bin probabilities and E[z_a² 1_bin] against seeded Monte Carlo (10⁶ samples, z < 4.5)")
    func monteCarlo() throws {
        var rng = Xoshiro256PlusPlus(seed: 20261203)
        let edges = [0.0, 0.05, 0.3, 1.0, 2.5, 8.0]
        let n = 1_000_000
        for m in 2...4 {
            var count = [Double](repeating: 0, count: edges.count - 1)
            var moment = [[Double]](repeating: [Double](repeating: 0, count: edges.count - 1), count: m)
            var momentSq = moment
            var z = [Double](repeating: 0, count: m)
            for _ in 0..<n {
                var x = 1.0
                for a in 0..<m { z[a] = rng.nextStandardNormal(); x *= z[a] }
                let ax = abs(x)
                guard let b = (0..<(edges.count - 1)).first(where: { ax >= edges[$0] && ax < edges[$0 + 1] }) else { continue }
                count[b] += 1
                for a in 0..<m { moment[a][b] += z[a] * z[a]; momentSq[a][b] += pow(z[a], 4) }
            }
            for b in 0..<(edges.count - 1) {
                // Exact: 2∫ p and 2∫ s over the bin.
                let pExact = 2 * ProductOutputLaw.integrate(edges[b], edges[b + 1]) { ProductOutputLaw.density($0, m: m).p }
                let sExact = 2 * ProductOutputLaw.integrate(edges[b], edges[b + 1]) { ProductOutputLaw.density($0, m: m).s }
                let pHat = count[b] / Double(n), pSE = (pHat * (1 - pHat) / Double(n)).squareRoot()
                #expect(abs(pHat - pExact) < 4.5 * pSE, "m = \(m), bin \(b): P = \(pHat) ± \(pSE) vs \(pExact)")
                for a in 0..<m {
                    let mean = moment[a][b] / Double(n), second = momentSq[a][b] / Double(n)
                    let se = ((second - mean * mean) / Double(n)).squareRoot()
                    #expect(abs(mean - sExact) < 4.5 * se, "m = \(m), factor \(a), bin \(b): E[z² 1] = \(mean) ± \(se) vs \(sExact)")
                }
                print("m = \(m), |x| in [\(edges[b]), \(edges[b + 1])): P \(pHat) vs \(pExact), E[z₁² 1] \(moment[0][b] / Double(n)) vs \(sExact)")
            }
        }
    }

    @Test("weakRecovery() takes the exact law for a product by default, the channel's labels with exactProduct: false")
    func dispatch() throws {
        // A coarse channel (h = 0.5) keeps this cheap; the binned route's convergence to the Bessel value is
        // StateEvolutionTests.product.
        let p = Self.problem("z1*z2", k: 2)
        let se = try StateEvolution(problem: p, channel: OutputChannel(problem: p, resolution: 0.5))
        let exact = WeakRecoveryAnalysis(law: ProductOutputLaw(problem: p)!)
        #expect(se.weakRecovery() == exact)
        #expect(se.priorConditionals() == ProductOutputLaw(problem: p)!.atoms)
        let binned = se.weakRecovery(exactProduct: false)
        print("z1 z2: α_c exact \(exact.alphaC), binned h = 0.5: \(binned.alphaC)")
        #expect(abs(binned.alphaC - exact.alphaC) > 1e-6)
    }
}
