import Foundation
import Testing
import PlateauCore
@testable import PlateauTheory

/// The orthant-moment route against independent formulas: the dedicated ReLU quartic
/// (`ReLUExpectations`, its own derivation) and closed forms of simple cases.
@Suite("Orthant moments")
struct OrthantMomentsTests {
    static func randomCovariance(seed: UInt64) -> FieldCovariance {
        var state = seed
        func next() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53) - 0.5
        }
        let A = (0..<4).map { _ in (0..<5).map { _ in next() * 2 } }
        var upper: [Double] = []
        for i in 0..<4 { for j in i..<4 { upper.append(zip(A[i], A[j]).map(*).reduce(0, +)) } }
        return FieldCovariance(4, upper: upper)
    }

    /// A ReLU factor on the same field as one of the θ factors (E[θ(u₁)θ(u₂) f(u₃) relu(u₁)], the
    /// m = j terms of Ξ): the indicator of u₁ must count once. Against a seeded Monte Carlo.
    @Test("coincident fields: θ(u₁)θ(u₂)·f(u₃)·relu(u₁) against Monte Carlo")
    func coincidentReluField() {
        for f in Activation.closedForm {
            for seed in 1...4 as ClosedRange<UInt64> {
                let R = Self.randomCovariance(seed: seed)
                // u₄ ≡ u₁.
                let C = FieldCovariance(4, upper: [R[0, 0], R[0, 1], R[0, 2], R[0, 0],
                                                   R[1, 1], R[1, 2], R[0, 1],
                                                   R[2, 2], R[0, 2], R[0, 0]])
                let value = OrthantMoments.slopeSlope(f, .relu, C)
                var m = Matrix(rows: 3, cols: 3)
                for i in 0..<3 { for j in 0..<3 { m[i, j] = R[i, j] } }
                let L = m.choleskyPSD(tolerance: 1e-12)!
                var rng = SplitMix64(seed: 77 + seed)
                var sum = 0.0, sum2 = 0.0
                let n = 400_000
                for _ in 0..<n {
                    let z = (rng.normal(), rng.normal(), rng.normal())
                    let u1 = L[0, 0] * z.0, u2 = L[1, 0] * z.0 + L[1, 1] * z.1
                    let u3 = L[2, 0] * z.0 + L[2, 1] * z.1 + L[2, 2] * z.2
                    let x = (u1 > 0 && u2 > 0) ? f.value(u3) * u1 : 0
                    sum += x
                    sum2 += x * x
                }
                let mean = sum / Double(n), se = ((sum2 / Double(n) - mean * mean) / Double(n - 1)).squareRoot()
                #expect(abs(value - mean) < 4.5 * se, "\(f.name), seed \(seed): \(value) vs MC \(mean) ± \(se)")
            }
        }
    }

    @Test("relu·relu through the generic expansion equals the dedicated ReLU quartic")
    func agreesWithDedicated() {
        for seed in 1...20 as ClosedRange<UInt64> {
            let C = Self.randomCovariance(seed: seed)
            let generic = OrthantMoments.slopeSlope(.relu, .relu, C)
            let dedicated = ReLUExpectations.slopeSlopeReluRelu(C)
            #expect(abs(generic - dedicated) < 1e-11, "seed \(seed): \(generic) vs \(dedicated)")
        }
    }

    @Test("independent fields factorise: E[θθ] E[f] E[g]")
    func independent() {
        let C = FieldCovariance(4, upper: [1.3, 0, 0, 0, 0.7, 0, 0, 2.0, 0, 0.5])
        // E[θ(u₁)θ(u₂)] = ¼; E[u] = 0 and E[erf] = 0 by symmetry; E[relu(u)] = √(c/2π).
        #expect(abs(OrthantMoments.slopeSlope(.relu, .relu, C) - 0.25 * (2.0 / (2 * .pi)).squareRoot() * (0.5 / (2 * .pi)).squareRoot()) < 1e-14)
        #expect(abs(OrthantMoments.slopeSlope(.erf, .relu, C)) < 1e-14)
        #expect(abs(OrthantMoments.slopeSlope(.linear, .linear, C)) < 1e-14)
    }

    @Test("identical fields: E[θ(u)² u²] = c/2, E[θ(u)² erf(u/√2)²] = ½E[erf(u/√2)²] = (1/π) asin(c/(1+c))")
    func identical() {
        let c = 1.7
        let C = FieldCovariance(4, upper: [c, c, c, c, c, c, c, c, c, c])
        #expect(abs(OrthantMoments.slopeSlope(.linear, .linear, C) - c / 2) < 1e-12)
        #expect(abs(OrthantMoments.slopeSlope(.relu, .linear, C) - c / 2) < 1e-12)
        #expect(abs(OrthantMoments.slopeSlope(.erf, .erf, C) - asin(c / (1 + c)) / .pi) < 1e-12)
    }
}

@Suite("Smooth four-field orthant probability")
struct SmoothOrthantTests {
    @Test("fixed-rule Plackett integral equals the adaptive one, and known values")
    func values() {
        // Equicorrelation ½: 1/5.
        let half = (0..<4).map { i in (0..<4).map { j in i == j ? 1.0 : 0.5 } }
        #expect(abs(OrthantMoments.smoothOrthant4(half)! - 0.2) < 1e-12)
        #expect(abs(OrthantMoments.smoothOrthant4((0..<4).map { i in (0..<4).map { j in i == j ? 2.0 : 0 } })! - 1.0 / 16) < 1e-15)
        for seed in 1...20 as ClosedRange<UInt64> {
            let C = OrthantMomentsTests.randomCovariance(seed: seed)
            let m = (0..<4).map { i in (0..<4).map { j in C[i, j] } }
            let smooth = OrthantMoments.smoothOrthant4(m)!
            let adaptive = ReLUExpectations.orthantProbability(C)
            #expect(abs(smooth - adaptive) < 1e-9, "seed \(seed): \(smooth) vs \(adaptive)")
        }
    }
}
