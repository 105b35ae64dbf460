import PlateauCore

/// Timing of one GAMP iteration against its matrix products, measured on one state in one run.
public enum GAMPTiming {
    public struct Measurement: Sendable, Hashable {
        /// Seconds per full GAMP iteration.
        public var iterationSeconds: Double
        /// Seconds of the iteration's two matrix products alone (XŴ/√d, n×d·d×k, and Xᵀg_out/√d,
        /// d×n·n×k, with cblas_dgemm). The third product at that size, XW*ᵀ/√d for the labels, is done
        /// once per seed and is not part of an iteration.
        public var matrixProductSeconds: Double
        /// Seconds of the channel step alone (n calls of the denoiser's posterior plus the g_out and
        /// A bookkeeping).
        public var channelSeconds: Double
        /// iteration / matrix products (the target of the issue is ≤ 2 at d = 2000, α = 2, k = 2).
        public var ratio: Double { iterationSeconds / matrixProductSeconds }
    }

    /// Best of `repetitions` timings of each part on the calling thread, on one seed's state (one
    /// untimed warm-up iteration first; the iterations timed are successive GAMP iterations).
    public static func measure(problem: EstimationProblem, alpha: Double, denoiser: any OutputDenoiser,
                               dimension: Int, repetitions: Int = 3, seed: UInt64 = 1) throws -> Measurement {
        let options = GAMPOptions(dimension: dimension, iterations: 1)
        try options.validate(problem: problem, alpha: alpha)
        let state = GAMPState(problem: problem, alpha: alpha, denoiser: denoiser, dimension: dimension, informed: false, seed: seed)
        state.iterate()
        var iterationBest = Double.infinity, productBest = Double.infinity, channelBest = Double.infinity
        for _ in 0..<max(1, repetitions) {
            iterationBest = min(iterationBest, SimulatorTiming.seconds { state.iterate() })
            productBest = min(productBest, SimulatorTiming.seconds { state.projectEstimate(); state.backProject() })
            // projectEstimate leaves the projections of the current Ŵ, as an iteration starts.
            channelBest = min(channelBest, SimulatorTiming.seconds { _ = state.channelStep() })
        }
        return Measurement(iterationSeconds: iterationBest, matrixProductSeconds: productBest, channelSeconds: channelBest)
    }
}
