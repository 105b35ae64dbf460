import Foundation
import Testing
import PlateauCore
@testable import PlateauTheory

/// Hermite coefficients and exponents against closed forms.
@Suite("Hermite structure of links and activations")
struct HermiteAnalysisTests {
    static func formula(_ text: String, k: Int) -> ([Double]) -> Double {
        let f = try! Formula(parsing: text, variables: .target(k: k))
        return { f.value($0) }
    }

    @Test("information exponents: He3 → 3, z² → 2, erf → 1, relu → 1, He4 + He2 → 2, |z| → 2")
    func exponents() {
        let cases: [(String, Int)] = [("He3(z1)", 3), ("z1^2", 2), ("erf(z1/sqrt(2))", 1), ("relu(z1)", 1),
                                      ("He4(z1) + 0.1*He2(z1)", 2), ("abs(z1)", 2), ("He5(z1)", 5)]
        for (text, exponent) in cases {
            let h = HermiteAnalysis.analyse(k: 1, Self.formula(text, k: 1))
            #expect(h.informationExponent == exponent, "\(text): \(String(describing: h.informationExponent))")
        }
        #expect(HermiteAnalysis.analyse(k: 1, Self.formula("cos(0)", k: 1)).informationExponent == nil)
    }

    @Test("coefficients against closed forms: erf(x/√2) c₁ = √(2/π)/√2 = 1/√π, relu c₀ = 1/√(2π), c₁ = ½, c₂ = 1/(2√(2π))")
    func closedForms() {
        let erf = HermiteAnalysis.analyse(k: 1, Self.formula("erf(z1/sqrt(2))", k: 1))
        // c₁ = E[erf(z/√2) z] = E[σ'(z)] = √(2/π)/√2.
        #expect(abs(erf.coefficients[[1]]! - (2 / Double.pi).squareRoot() / 2.0.squareRoot()) < 1e-10)
        #expect(abs(erf.coefficients[[2]]!) < 1e-12)
        // c₃ = E[σ''' ]/3! = −√(2/π)/2^{3/2}/6.
        #expect(abs(erf.coefficients[[3]]! + (2 / Double.pi).squareRoot() / pow(2, 1.5) / 6) < 1e-10)
        let relu = HermiteAnalysis.analyse(k: 1, Self.formula("relu(z1)", k: 1))
        #expect(abs(relu.coefficients[[0]]! - 1 / (2 * Double.pi).squareRoot()) < 1e-10)
        #expect(abs(relu.coefficients[[1]]! - 0.5) < 1e-10)
        #expect(abs(relu.coefficients[[2]]! - 1 / (2 * (2 * Double.pi).squareRoot())) < 1e-10)
        #expect(abs(relu.coefficients[[3]]!) < 1e-10)
        // E[relu²] = ½.
        #expect(abs(relu.normSquared - 0.5) < 1e-10)
    }

    @Test("leap structure: staircase leap 1, parity of 3 leap 3, z1 + z1*z2 first order {z1}")
    func leaps() {
        let stair = HermiteAnalysis.analyse(k: 3, Self.formula("z1 + z1*z2 + z1*z2*z3", k: 3))
        #expect(stair.leap == 1 && stair.learningSteps == [[1], [2], [3]] && stair.firstOrderDirections == [1])
        let parity = HermiteAnalysis.analyse(k: 3, Self.formula("sign(z1*z2*z3)", k: 3))
        #expect(parity.leap == 3 && parity.firstOrderDirections.isEmpty, "\(parity.learningSteps)")
        // E[sign(z1 z2 z3) z1 z2 z3] = (2/π)^{3/2}.
        // A jump: the product rule converges like 1/n, so the check uses the analysis's own error
        // estimate (the difference of two node counts), with a factor for that slow convergence.
        let error = abs(parity.coefficients[[1, 1, 1]]! - pow(2 / Double.pi, 1.5))
        #expect(error <= 5 * parity.errors[[1, 1, 1]]! && error < 2e-2, "error \(error), estimate \(parity.errors[[1, 1, 1]]!)")
        let two = HermiteAnalysis.analyse(k: 2, Self.formula("z1 + z1*z2", k: 2))
        #expect(two.firstOrderDirections == [1] && two.leap == 1)
        let product = HermiteAnalysis.analyse(k: 2, Self.formula("z1*z2", k: 2))
        #expect(product.leap == 2 && product.firstOrderDirections.isEmpty)
        let committee = HermiteAnalysis.analyse(k: 3, Self.formula("sign(z1) + sign(z2) + sign(z3)", k: 3))
        #expect(committee.firstOrderDirections == [1, 2, 3] && committee.leap == 1)
    }
}
