import Foundation
import Testing
import PlateauCore
import PlateauTheory
@testable import PlateauSimulation

/// The finite-d spectral estimators (EQUATIONS.md §2.1): L's matvec is linearised GAMP, the mirrored
/// spectrum's informative outlier is found, and the dense T is what it should be.
@Suite("Spectral estimators at finite d")
struct SpectralSimulatorTests {
    static func problem(_ target: String, k: Int, noise: Double = 0) -> EstimationProblem {
        EstimationProblem(teacher: TeacherSpec(link: try! Formula(parsing: target, variables: .target(k: k)), noiseVariance: noise))
    }

    @Test("linearised GAMP around M = 0 (g_out = ∂g·ω from the denoiser, both Onsager terms, identity prior) is power iteration on L")
    func linearisedGAMP() throws {
        let p = Self.problem("sign(z1*z2)", k: 2, noise: 0.1)
        let channel = try OutputChannel(problem: p)
        let state = SpectralState(problem: p, alpha: 1.5, denoiser: channel, options: SpectralOptions(dimension: 40, symmetric: false), seed: 7)
        let n = state.n, d = state.d, k = state.k, N = n * k
        // GAMP's channel derivative at ω = 0, V = I: ∂g = V⁻¹C V⁻¹ − V⁻¹ = Cov[z | y] − I (per sample).
        var dg = [Double](repeating: 0, count: n * k * k)
        var mean = [Double](repeating: 0, count: k), cov = [Double](repeating: 0, count: k * k)
        for mu in 0..<n {
            #expect(channel.posterior(y: state.labels[mu], omega: [0, 0], V: .identity(k), mean: &mean, covariance: &cov))
            for a in 0..<k { for b in 0..<k { dg[mu * k * k + a * k + b] = cov[a * k + b] - (a == b ? 1 : 0) } }
        }
        // GAMP's loop, linear: g^t = ∂g·ω^t; ŵ^{t+1} = X̃ᵀg^t + ŵ^t·A (A = 0 at M = 0); ω^{t+1} = X̃ŵ^{t+1} − V g^t (V = I).
        var omega = (0..<N).map { sin(Double($0) * 0.37) }
        var v = omega
        let scratchU = UnsafeMutablePointer<Double>.allocate(capacity: N), scratchD = UnsafeMutablePointer<Double>.allocate(capacity: d * k)
        let out = UnsafeMutablePointer<Double>.allocate(capacity: N)
        defer { scratchU.deallocate(); scratchD.deallocate(); out.deallocate() }
        for _ in 0..<6 {
            var g = [Double](repeating: 0, count: N)
            for mu in 0..<n { for a in 0..<k { for b in 0..<k { g[mu * k + a] += dg[mu * k * k + a * k + b] * omega[mu * k + b] } } }
            var w = [Double](repeating: 0, count: d * k)
            for i in 0..<d { for mu in 0..<n { for a in 0..<k { w[i * k + a] += state.X[mu * d + i] * g[mu * k + a] } } }
            var next = [Double](repeating: 0, count: N)
            for mu in 0..<n { for a in 0..<k {
                var s = 0.0
                for i in 0..<d { s += state.X[mu * d + i] * w[i * k + a] }
                next[mu * k + a] = s - g[mu * k + a]
            } }
            omega = next
            // Power iteration on L with the simulator's matvec (block of one vector).
            v.withUnsafeBufferPointer { state.applyL($0.baseAddress!, into: out, b: 1, u: scratchU, scratch: scratchD) }
            v = Array(UnsafeBufferPointer(start: out, count: N))
        }
        let scale = omega.map(abs).max()!
        let worst = zip(omega, v).map { abs($0 - $1) }.max()!
        print("linearised GAMP vs power iteration on L after 6 steps: max |difference| = \(worst) (scale \(scale))")
        #expect(worst <= 1e-12 * scale)
    }

    @Test("sign(z1 z2): L's spectrum is mirrored (±α/α_c); block subspace iteration with Rayleigh–Ritz returns the positive outlier")
    func mirroredSpectrum() throws {
        let p = Self.problem("sign(z1*z2)", k: 2)
        let channel = try OutputChannel(problem: p)
        let alpha = 8.0, expected = alpha / (Double.pi * Double.pi / 4)
        let runs = try SpectralSimulator.run(problem: p, alpha: alpha, denoiser: channel,
                                             options: SpectralOptions(dimension: 600, seeds: 2, teacher: .orthonormal, groupSize: 2, symmetric: false))
        for r in runs {
            print("sign(z1z2) α = 8, d = 600: top Re λ(L) = \(r.outlierL), group mean \(r.outlierLGroup) (theory \(expected)), m² \(r.m2L), converged \(r.convergedL) in \(r.iterationsL)")
            #expect(r.convergedL)
            #expect(r.outlierL > 0.85 * expected && r.outlierL < 1.2 * expected, "the positive outlier, not −α/α_c")
            #expect(r.m2L > 0.5)
        }
    }

    @Test("T for k = 1 equals the plain matrix with p = 𝒯: same top eigenvalue ×α and overlap; the orthonormal teacher is exact")
    func denseMatrices() throws {
        let p = Self.problem("z1^2", k: 1)
        let channel = try OutputChannel(problem: p)
        let state = SpectralState(problem: p, alpha: 2, denoiser: channel, options: SpectralOptions(dimension: 300, teacher: .orthonormal), seed: 3)
        // W*W*ᵀ/d = 1 exactly.
        var norm = 0.0
        for i in 0..<state.d { norm += state.teacher[i] * state.teacher[i] }
        #expect(abs(norm / Double(state.d) - 1) < 1e-12)
        let t = state.symmetric(weights: state.optimal!, blockDiagonal: true, count: 2)
        let scale = Double(state.d) / Double(state.n)
        let w = (0..<state.n).map { scale * state.optimal![$0] }
        let plain = w.withUnsafeBufferPointer { state.symmetric(weights: $0.baseAddress!, blockDiagonal: false, count: 2) }
        #expect(abs(plain.values[0] * 2 - t.values[0]) < 1e-10 * abs(t.values[0]))
        #expect(abs(plain.m2[0] - t.m2[0]) < 1e-9)
    }
}

