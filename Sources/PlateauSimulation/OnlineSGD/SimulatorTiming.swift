internal import COpenBLAS
import PlateauCore

/// Timing of the simulator's hot path against its irreducible cost, so the CLI can print the ratio
/// without the benchmark package (Benchmarks/ measures the same operations).
public enum SimulatorTiming {
    public struct Measurement: Sendable, Hashable {
        /// Seconds per SGD step (p = k = 2, erf, square loss).
        public var stepSeconds: Double
        /// Seconds per "baseline step": drawing the step's n_b(d + 1) Gaussians plus its two
        /// matrix products (fields and update), nothing else.
        public var baselineSeconds: Double
        /// Seconds per standard normal variate from `Xoshiro256PlusPlus.fillStandardNormal`.
        public var gaussianSeconds: Double
        public var ratio: Double { stepSeconds / baselineSeconds }
        public var stepsPerSecond: Double { 1 / stepSeconds }
    }

    /// Measures on the calling thread, best of five repetitions of `steps` steps each.
    public static func measure(dimension d: Int, batchSize nb: Int, steps: Int) -> Measurement {
        let network = try! OnlineSGDNetwork(timingExperiment(batchSize: nb), dimension: d, seed: 1)
        let baseline = BaselineStep(dimension: d, batchSize: nb, p: 2, k: 2, seed: 2)
        let steps = max(1, steps)
        for _ in 0..<min(steps, 100) { network.step(); baseline.step() }
        var stepBest = Double.infinity, baseBest = Double.infinity, gaussBest = Double.infinity
        let gaussianCount = 1 << 20
        let gaussians = UnsafeMutablePointer<Double>.allocate(capacity: gaussianCount)
        defer { gaussians.deallocate() }
        var rng = Xoshiro256PlusPlus(seed: 3)
        for _ in 0..<5 {
            stepBest = min(stepBest, seconds { for _ in 0..<steps { network.step() } } / Double(steps))
            baseBest = min(baseBest, seconds { for _ in 0..<steps { baseline.step() } } / Double(steps))
            gaussBest = min(gaussBest, seconds { rng.fillStandardNormal(gaussians, count: gaussianCount) } / Double(gaussianCount))
        }
        return Measurement(stepSeconds: stepBest, baselineSeconds: baseBest, gaussianSeconds: gaussBest)
    }

    /// The experiment timed: Saad & Solla's committee, p = k = 2, erf, η = 0.5, square loss.
    public static func timingExperiment(batchSize nb: Int) -> Experiment {
        var e = Experiment.saadSolla
        e.training.batchSize = nb
        e.training.time = 1e9
        return e
    }

    static func seconds(_ body: () -> Void) -> Double {
        let clock = ContinuousClock()
        let elapsed = clock.measure(body)
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    }
}

/// The irreducible work of one SGD step, for comparison: draw n_b(d + 1) Gaussians, compute the
/// (p + k) local fields of each sample with one BLAS call, and apply a rank-n_b update to the p
/// student rows with another. No activations, labels or bookkeeping.
public final class BaselineStep {
    let d: Int, nb: Int, p: Int, k: Int
    let weights: UnsafeMutablePointer<Double>
    let batch: UnsafeMutablePointer<Double>
    let fields: UnsafeMutablePointer<Double>
    let coefficients: UnsafeMutablePointer<Double>
    var rng: Xoshiro256PlusPlus

    public init(dimension d: Int, batchSize nb: Int, p: Int, k: Int, seed: UInt64) {
        _ = BLASSetup.singleThreaded
        self.d = d
        self.nb = nb
        self.p = p
        self.k = k
        rng = Xoshiro256PlusPlus(seed: seed)
        weights = .allocate(capacity: (p + k) * d)
        rng.fillStandardNormal(weights, count: (p + k) * d)
        batch = .allocate(capacity: nb * d + nb)
        batch.initialize(repeating: 0, count: nb * d + nb)
        fields = .allocate(capacity: nb * (p + k))
        fields.initialize(repeating: 0, count: nb * (p + k))
        coefficients = .allocate(capacity: nb * p)
        coefficients.initialize(repeating: 1e-9, count: nb * p)
    }

    deinit {
        weights.deallocate()
        batch.deallocate()
        fields.deallocate()
        coefficients.deallocate()
    }

    public func step() {
        let d32 = Int32(d), width = Int32(p + k)
        rng.fillStandardNormal(batch, count: nb * d + nb)
        if nb == 1 {
            cblas_dgemv(CblasRowMajor, CblasNoTrans, width, d32, 1, weights, d32, batch, 1, 0, fields, 1)
            cblas_dger(CblasRowMajor, Int32(p), d32, 1, coefficients, 1, batch, 1, weights, d32)
        } else {
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(nb), width, d32, 1, batch, d32, weights, d32, 0, fields, width)
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(p), d32, Int32(nb), 1,
                        coefficients, Int32(p), batch, d32, 1, weights, d32)
        }
    }
}
