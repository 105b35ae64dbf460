internal import COpenBLAS
import PlateauCore

/// OpenBLAS runs single-threaded: the simulator parallelises over seeds instead.
enum BLASSetup {
    static let singleThreaded: Void = { openblas_set_num_threads(1) }()
}

/// A teacher–student pair at finite dimension d, trained by online SGD (EQUATIONS.md §1).
///
/// Convention: x ~ N(0, I_d), ν = W*x/√d, λ = Wx/√d, y = Σ_r c_r σ*(ν_r) + √Δ ξ,
/// f = Σ_j a_j σ(λ_j), D = y − f (square loss) or D = y (correlation loss). One `step()` draws a
/// fresh batch of n_b samples and applies, with the old W and a throughout,
///   w_j ← (1 − ηκ/d) w_j + (η/n_b) Σ_μ a_j σ'(λ_j^μ) D^μ x^μ/√d,
///   a_j ← a_j + (η_a/(n_b d)) Σ_μ σ(λ_j^μ) D^μ     (if the second layer is trained).
/// Time is t = steps/d.
///
/// Storage: W and W* are stacked in one (p + k)×d row-major block (student rows first), so one
/// matrix–vector product (n_b = 1) or matrix product (n_b > 1) gives all local fields. A step
/// allocates nothing. Not thread-safe: one network per thread.
public final class OnlineSGDNetwork {
    public let dimension: Int
    public let p: Int
    public let k: Int
    public let batchSize: Int
    /// Number of SGD steps taken.
    public private(set) var stepCount: Int = 0

    /// [W; W*], (p + k)×d row-major.
    let weights: UnsafeMutablePointer<Double>
    /// The second layer a (length p).
    let secondLayer: UnsafeMutablePointer<Double>
    /// The teacher's second layer (length k).
    /// The last batch: n_b×d inputs followed by n_b label-noise variates.
    let batch: UnsafeMutablePointer<Double>
    /// n_b×(p + k) local fields (λ, ν) of the last batch.
    let fields: UnsafeMutablePointer<Double>
    /// n_b×p first-layer coefficients (η/n_b) a_j σ'(λ_j) D / √d.
    let coefficients: UnsafeMutablePointer<Double>
    /// Σ_μ σ(λ_j^μ) D^μ (length p) and σ(λ_j) of one sample (length p).
    let secondLayerGradient: UnsafeMutablePointer<Double>
    let studentValues: UnsafeMutablePointer<Double>

    var rng: Xoshiro256PlusPlus

    let studentActivation: Activation
    /// The target g (a committee or a link): theory and simulation read the same definition.
    let target: TeacherSpec
    let loss: Loss
    let trainSecondLayer: Bool
    let noiseStandardDeviation: Double
    let inverseSqrtD: Double
    /// η/(n_b √d): scales a_j σ'(λ_j) D into the first-layer coefficient.
    let firstLayerScale: Double
    /// η_a/(n_b d).
    let secondLayerScale: Double
    /// 1 − ηκ/d.
    let decay: Double
    /// Rows renormalised to |w_j|² = d after every step (and at the start).
    let spherical: Bool

    /// Builds the teacher and the initial student from `seed` (validation is the caller's job; see
    /// `SimulationOptions.validate(for:)`). Streams: `SeedSequence.seed(master: seed, index: 0)` builds
    /// the weights (from the spec's `init.random.seed` instead, when given: every replica then starts
    /// from the same weights), index 1 draws the training batches.
    public init(_ experiment: Experiment, dimension d: Int, seed: UInt64) throws {
        _ = BLASSetup.singleThreaded
        let p = experiment.student.p, k = experiment.teacher.k, nb = experiment.training.batchSize
        precondition(d >= SimulationOptions.minimumDimension(p: p, k: k), "dimension \(d) too small")
        dimension = d
        self.p = p
        self.k = k
        batchSize = nb

        var weightSeed = seed
        if case let .random(_, shared?) = experiment.initialization { weightSeed = shared }
        var constructionRNG = Xoshiro256PlusPlus(seed: SeedSequence.seed(master: weightSeed, index: 0))
        let stacked = try WeightConstruction.stackedWeights(experiment, dimension: d, rng: &constructionRNG)
        rng = Xoshiro256PlusPlus(seed: SeedSequence.seed(master: seed, index: 1))

        weights = .allocate(capacity: (p + k) * d)
        weights.initialize(from: stacked, count: stacked.count)
        secondLayer = .allocate(capacity: p)
        secondLayer.initialize(from: experiment.student.secondLayer, count: p)
        batch = .allocate(capacity: nb * d + nb)
        batch.initialize(repeating: 0, count: nb * d + nb)
        fields = .allocate(capacity: nb * (p + k))
        fields.initialize(repeating: 0, count: nb * (p + k))
        coefficients = .allocate(capacity: nb * p)
        coefficients.initialize(repeating: 0, count: nb * p)
        secondLayerGradient = .allocate(capacity: p)
        secondLayerGradient.initialize(repeating: 0, count: p)
        studentValues = .allocate(capacity: p)
        studentValues.initialize(repeating: 0, count: p)

        studentActivation = experiment.student.activation
        target = experiment.teacher
        loss = experiment.training.loss
        trainSecondLayer = experiment.student.trainSecondLayer
        noiseStandardDeviation = experiment.teacher.noiseVariance.squareRoot()
        let eta = experiment.training.learningRate
        inverseSqrtD = 1 / Double(d).squareRoot()
        firstLayerScale = eta / (Double(nb) * Double(d).squareRoot())
        secondLayerScale = experiment.student.secondLayerLearningRate / (Double(nb) * Double(d))
        decay = 1 - eta * experiment.training.weightDecay / Double(d)
        spherical = experiment.student.spherical
        if spherical { normaliseRows() }
    }

    /// Rescales every student row to |w_j|² = d (EQUATIONS.md §1.3).
    func normaliseRows() {
        let d32 = Int32(dimension)
        for j in 0..<p {
            let row = weights + j * dimension
            let norm2 = cblas_ddot(d32, row, 1, row, 1)
            if norm2 > 0 { cblas_dscal(d32, (Double(dimension) / norm2).squareRoot(), row, 1) }
        }
    }

    deinit {
        weights.deallocate()
        secondLayer.deallocate()
        batch.deallocate()
        fields.deallocate()
        coefficients.deallocate()
        secondLayerGradient.deallocate()
        studentValues.deallocate()
    }

    /// One SGD step on a fresh batch. Returns false, leaving the weights untouched, when the
    /// current weights are non-finite (a local field, the output or the error signal is NaN/±∞).
    @discardableResult
    public func step() -> Bool {
        let d = dimension, p = self.p, k = self.k, nb = batchSize, width = p + k
        let d32 = Int32(d)
        rng.fillStandardNormal(batch, count: nb * d + nb)
        if nb == 1 {
            cblas_dgemv(CblasRowMajor, CblasNoTrans, Int32(width), d32, inverseSqrtD, weights, d32, batch, 1, 0, fields, 1)
        } else {
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(nb), Int32(width), d32, inverseSqrtD,
                        batch, d32, weights, d32, 0, fields, Int32(width))
        }

        let a = secondLayer, sv = studentValues, grad = secondLayerGradient
        let sigma = studentActivation
        let square = loss == .square, trainA = trainSecondLayer
        let noise = batch + nb * d
        var check = 0.0
        for j in 0..<p { grad[j] = 0 }
        for mu in 0..<nb {
            let h = fields + mu * width
            let y = teacherOutput(h + p) + noiseStandardDeviation * noise[mu]
            var f = 0.0
            for j in 0..<p {
                let s = sigma.value(h[j])
                sv[j] = s
                f += a[j] * s
            }
            let D = square ? y - f : y
            check += D + f
            for i in 0..<p { check += h[i] }   // erf saturates: an infinite field can give a finite f
            let coef = coefficients + mu * p
            for j in 0..<p {
                coef[j] = firstLayerScale * a[j] * sigma.derivative(h[j]) * D
                if trainA { grad[j] += sv[j] * D }
            }
        }
        guard check.isFinite else { return false }

        if nb == 1 {
            if decay != 1 { cblas_dscal(Int32(p * d), decay, weights, 1) }
            cblas_dger(CblasRowMajor, Int32(p), d32, 1, coefficients, 1, batch, 1, weights, d32)
        } else {
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(p), d32, Int32(nb), 1,
                        coefficients, Int32(p), batch, d32, decay, weights, d32)
        }
        if trainA { for j in 0..<p { a[j] += secondLayerScale * grad[j] } }
        if spherical { normaliseRows() }
        stepCount += 1
        return true
    }

    /// The noiseless teacher output g(ν) for teacher fields ν (length k).
    @inline(__always) func teacherOutput(_ nu: UnsafePointer<Double>) -> Double {
        target.output(nu)
    }

    /// The student output Σ_j a_j σ(λ_j) for student fields λ (length p).
    @inline(__always) func studentOutput(_ lambda: UnsafePointer<Double>) -> Double {
        var f = 0.0
        for j in 0..<p { f += secondLayer[j] * studentActivation.value(lambda[j]) }
        return f
    }

    /// M = WW*ᵀ/d, Q = WWᵀ/d, P = W*W*ᵀ/d and a, measured from the current weights (one dsyrk).
    public func overlaps() -> Overlaps {
        Self.measuredOverlaps(weights, p: p, k: k, dimension: dimension,
                              secondLayer: Array(UnsafeBufferPointer(start: secondLayer, count: p)))
    }

    /// The overlaps of stacked weights [W; W*] ((p + k)×d, row-major, student rows first): one dsyrk.
    static func measuredOverlaps(_ weights: UnsafePointer<Double>, p: Int, k: Int, dimension d: Int,
                                 secondLayer: [Double]) -> Overlaps {
        let width = p + k
        var gram = [Double](repeating: 0, count: width * width)
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, Int32(width), Int32(d), 1 / Double(d),
                    weights, Int32(d), 0, &gram, Int32(width))
        func g(_ i: Int, _ j: Int) -> Double { i <= j ? gram[i * width + j] : gram[j * width + i] }
        var M = Matrix(rows: p, cols: k), Q = Matrix(rows: p, cols: p), P = Matrix(rows: k, cols: k)
        for j in 0..<p {
            for l in 0..<p { Q[j, l] = g(j, l) }
            for r in 0..<k { M[j, r] = g(j, p + r) }
        }
        for r in 0..<k { for s in 0..<k { P[r, s] = g(p + r, p + s) } }
        return Overlaps(M: M, Q: Q, P: P, a: secondLayer)
    }

    /// Current time t = steps/d.
    public var time: Double { OnlineTime.time(ofStep: stepCount, dimension: dimension) }

    /// A copy of the student weights W (p×d, row-major) and the second layer a.
    public var student: (weights: [Double], secondLayer: [Double]) {
        (Array(UnsafeBufferPointer(start: weights, count: p * dimension)),
         Array(UnsafeBufferPointer(start: secondLayer, count: p)))
    }

    /// A copy of the teacher weights W* (k×d, row-major).
    public var teacher: [Double] {
        Array(UnsafeBufferPointer(start: weights + p * dimension, count: k * dimension))
    }

    /// Replaces the student (W as p×d row-major, and a); the teacher and the RNG stream are kept.
    public func setStudent(weights w: [Double], secondLayer a: [Double]) {
        precondition(w.count == p * dimension && a.count == p)
        weights.update(from: w, count: w.count)
        secondLayer.update(from: a, count: p)
    }
}

/// A fixed held-out test set: n inputs and their labels (label noise included), drawn once.
final class TestSet {
    let count: Int
    let dimension: Int
    let inputs: UnsafeMutablePointer<Double>
    let labels: [Double]
    let fields: UnsafeMutablePointer<Double>

    /// Draws n samples from `SeedSequence.seed(master: seed, index: 2)` and labels them with the
    /// network's teacher.
    init(count n: Int, network: OnlineSGDNetwork, experiment: Experiment, seed: UInt64) {
        let d = network.dimension, p = network.p, k = network.k
        count = n
        dimension = d
        var rng = Xoshiro256PlusPlus(seed: SeedSequence.seed(master: seed, index: 2))
        inputs = .allocate(capacity: n * d)
        rng.fillStandardNormal(inputs, count: n * d)
        var noise = [Double](repeating: 0, count: n)
        noise.withUnsafeMutableBufferPointer { rng.fillStandardNormal($0) }
        fields = .allocate(capacity: n * max(p, k))
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(k), Int32(d), 1 / Double(d).squareRoot(),
                    inputs, Int32(d), network.weights + p * d, Int32(d), 0, fields, Int32(k))
        let sd = experiment.teacher.noiseVariance.squareRoot()
        var labels = [Double](repeating: 0, count: n)
        for mu in 0..<n { labels[mu] = network.teacherOutput(fields + mu * k) + sd * noise[mu] }
        self.labels = labels
    }

    deinit {
        inputs.deallocate()
        fields.deallocate()
    }

    /// ½ mean over the test set of (y − f)² for the network's current student.
    func risk(of network: OnlineSGDNetwork) -> Double {
        let d = dimension, p = network.p
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(count), Int32(p), Int32(d), 1 / Double(d).squareRoot(),
                    inputs, Int32(d), network.weights, Int32(d), 0, fields, Int32(p))
        var sum = 0.0
        for mu in 0..<count {
            let e = labels[mu] - network.studentOutput(fields + mu * p)
            sum += e * e
        }
        return 0.5 * sum / Double(count)
    }
}
