internal import COpenBLAS
import Dispatch
import Foundation
import PlateauCore

/// Timing of the finite-d spectral solvers against the work they cannot avoid, measured in the same run
/// (for the benchmark tool; not used by the CLI).
public enum SpectralTiming {
    public struct Measurement: Sendable {
        /// L: the block subspace iteration (with Rayleigh–Ritz, orthonormalisation, convergence checks and
        /// the estimator) against the same number of its two matrix products alone.
        public var lSeconds: Double, lProductSeconds: Double, lIterations: Int
        /// T: build + top eigenpairs + overlaps against its dgemm calls plus LAPACK's dsyevr alone.
        public var tSeconds: Double, tProductSeconds: Double, tLapackSeconds: Double
        public var lRatio: Double { lSeconds / lProductSeconds }
        public var tRatio: Double { tSeconds / (tProductSeconds + tLapackSeconds) }
    }

    static func seconds(_ body: () -> Void) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// One seed at (α, d): L's solve and T's (T only when `symmetric`).
    public static func measure(problem: EstimationProblem, alpha: Double, denoiser: any OutputDenoiser, dimension: Int,
                               groupSize: Int = 1, symmetric: Bool = true) throws -> Measurement {
        let options = SpectralOptions(dimension: dimension, groupSize: groupSize, symmetric: symmetric)
        try options.validate(problem: problem, alpha: alpha)
        let state = SpectralState(problem: problem, alpha: alpha, denoiser: denoiser, options: options, seed: 1)
        var iterations = 0
        let lSeconds = seconds { iterations = state.asymmetric().iterations }
        // The products alone: X̃ᵀU and X̃(·) on the same block shape, as many times.
        let b = max(state.k * state.k + 2, groupSize + 2), kb = Int32(state.k * b)
        let u = UnsafeMutablePointer<Double>.allocate(capacity: state.n * state.k * b)
        let y = UnsafeMutablePointer<Double>.allocate(capacity: state.n * state.k * b)
        let scratch = UnsafeMutablePointer<Double>.allocate(capacity: state.d * state.k * b)
        defer { u.deallocate(); y.deallocate(); scratch.deallocate() }
        u.initialize(repeating: 0.5, count: state.n * state.k * b)
        let lProducts = seconds {
            for _ in 0..<iterations {
                cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(state.d), kb, Int32(state.n), 1, state.X, Int32(state.d), u, kb, 0, scratch, kb)
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(state.n), kb, Int32(state.d), 1, state.X, Int32(state.d), scratch, kb, 0, y, kb)
            }
        }
        var m = Measurement(lSeconds: lSeconds, lProductSeconds: lProducts, lIterations: iterations, tSeconds: .nan, tProductSeconds: .nan, tLapackSeconds: .nan)
        guard symmetric, let optimal = state.optimal else { return m }
        let count = groupSize + 1
        m.tSeconds = seconds { _ = state.symmetric(weights: optimal, blockDiagonal: true, count: count) }
        // Baseline: the k(k+1)/2 dgemm calls alone, then dsyevr alone on the built matrix.
        let D = state.d * state.k
        let T = UnsafeMutablePointer<Double>.allocate(capacity: D * D)
        defer { T.deallocate() }
        let d = Int32(state.d)
        m.tProductSeconds = seconds {
            for a in 0..<state.k { for c in a..<state.k {
                cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d, Int32(state.n), 1, state.X, d, state.X, d, 0, T + a * state.d * D + c * state.d, Int32(D))
            } }
        }
        state.build(T, weights: optimal, blockDiagonal: true)
        m.tLapackSeconds = seconds { _ = state.topEigenpairs(T, blocks: state.k, count: count) }
        return m
    }
}
