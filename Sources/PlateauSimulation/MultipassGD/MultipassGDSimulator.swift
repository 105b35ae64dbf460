internal import COpenBLAS
import Foundation
import PlateauCore

/// Finite-d multi-pass gradient descent with sample reuse (EQUATIONS.md §3 and §4): n = αd samples
/// x_μ ~ N(0, I_d) drawn once, labels y_μ = g(W*x_μ/√d) + √Δ ξ_μ, and T steps of
///
///     W ← (1 − ηλ) W − η Σ_{μ ∈ batch} g_μ x_μᵀ / √d,   g_μ,j = ∂ℓ/∂ĥ_j (`SampleLoss`),
///
/// on the summed loss (full batch by default; a mini-batch of round(fraction·n) samples drawn without
/// replacement from the fixed dataset each step; or, as the online control, n fresh samples each
/// step). Records at every step t = 0…T: M, Q measured exactly from the weights, the training loss
/// (mean ℓ over the training samples, or over the step's fresh samples) at the current weights.
///
/// Streams: `SeedSequence.seed(master: seed, index: 0)` builds the weights (prescribed overlaps exact
/// at finite d, `WeightConstruction`), index 1 draws the data, index 2 the mini-batches.
public enum MultipassGDSimulator {
    /// Checks the experiment and the dimension; throws a `SpecError` naming the field and the value.
    public static func validate(_ experiment: Experiment, dimension d: Int) throws {
        try experiment.validate()
        guard let settings = experiment.multipass else {
            throw SpecError(field: "training.protocol", value: "\"\(experiment.training.trainingProtocol.rawValue)\"",
                            reason: "must be multipass for the multi-pass GD simulator")
        }
        let p = experiment.student.p, k = experiment.teacher.k
        let dMin = SimulationOptions.minimumDimension(p: p, k: k)
        guard d >= dMin else {
            throw SpecError(field: "simulation.dimension", value: "\(d)", reason: "must be an integer ≥ p + k + 1 = \(dMin)")
        }
        let entries = settings.sampleCount(dimension: d).multipliedReportingOverflow(by: d)
        guard !entries.overflow, entries.partialValue <= 1 << 31 - 1 else {
            throw SpecError(field: "training.alpha", value: Experiment.format(settings.alpha),
                            reason: "n·d = αd² must be < 2^31 at d = \(d) (the dataset is held in memory, BLAS uses 32-bit sizes)")
        }
    }

    /// One seed. Deterministic given (experiment, dimension, seed).
    public static func run(_ experiment: Experiment, dimension d: Int, seed: UInt64) throws -> SeedResult {
        try validate(experiment, dimension: d)
        return try simulate(experiment, dimension: d, seed: seed, progress: nil)
    }

    /// Many seeds (seed i = `SeedSequence.seed(master:index: i)`), in parallel on all cores.
    public static func run(_ experiment: Experiment, dimension d: Int, masterSeed: UInt64, count: Int,
                           parallel: Bool = true, progress: (@Sendable (Double) -> Void)? = nil) throws -> [SeedResult] {
        try validate(experiment, dimension: d)
        let identity = "multipass GD\nspec \(experiment.specJSON)\ndimension \(d)"
        return try SeedRuns.run(count: count, masterSeed: masterSeed, parallel: parallel, identity: identity, progress: progress) { seed, report in
            try simulate(experiment, dimension: d, seed: seed, progress: report)
        }
    }

    static func simulate(_ experiment: Experiment, dimension d: Int, seed: UInt64,
                         progress: (@Sendable (Double) -> Void)?) throws -> SeedResult {
        _ = BLASSetup.singleThreaded
        let settings = experiment.multipass!
        let p = experiment.student.p, k = experiment.teacher.k, n = settings.sampleCount(dimension: d)
        let batch = settings.batchCount(dimension: d)
        let eta = experiment.training.learningRate
        let sampleLoss = SampleLoss(experiment)
        let noiseSD = experiment.teacher.noiseVariance.squareRoot()
        let inverseSqrtD = 1 / Double(d).squareRoot()

        var constructionRNG = Xoshiro256PlusPlus(seed: SeedSequence.seed(master: seed, index: 0))
        let stacked = try WeightConstruction.stackedWeights(experiment, dimension: d, rng: &constructionRNG)
        var dataRNG = Xoshiro256PlusPlus(seed: SeedSequence.seed(master: seed, index: 1))
        var batchRNG = Xoshiro256PlusPlus(seed: SeedSequence.seed(master: seed, index: 2))

        // [W; W*] (p + k)×d, inputs n×d, fields and gradients of a block, labels n.
        var weights = stacked
        var inputs = [Double](repeating: 0, count: n * d)
        var fields = [Double](repeating: 0, count: n * p)
        var gradients = [Double](repeating: 0, count: n * p)
        var labels = [Double](repeating: 0, count: n)
        var order = Array(0..<n)
        var inBatch = [Bool](repeating: true, count: n)
        var result = SeedResult(seed: seed, times: [], overlaps: [], testRisk: nil, status: .completed, message: "", trainLoss: [])

        var teacherFields = [Double](repeating: 0, count: n * k)
        func drawDataset() {
            inputs.withUnsafeMutableBufferPointer { dataRNG.fillStandardNormal($0) }
            labels.withUnsafeMutableBufferPointer { dataRNG.fillStandardNormal($0) }
            weights.withUnsafeBufferPointer { w in
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(k), Int32(d), inverseSqrtD,
                            inputs, Int32(d), w.baseAddress! + p * d, Int32(d), 0, &teacherFields, Int32(k))
            }
            teacherFields.withUnsafeBufferPointer { nu in
                for mu in 0..<n { labels[mu] = experiment.teacher.output(nu.baseAddress! + mu * k) + noiseSD * labels[mu] }
            }
        }
        drawDataset()
        // One pass over the dataset per step, in row blocks that stay in cache between the two products:
        // fields ĥ = X_B Wᵀ/√d, then ℓ and g per sample, then Σ_μ g_μ x_μᵀ += G_Bᵀ X_B.
        let block = max(1, min(n, 32_768 / max(1, d)))
        var step = [Double](repeating: 0, count: p * d)
        for t in 0...settings.steps {
            let update = t < settings.steps
            if update && batch < n {
                // Partial Fisher–Yates: the first `batch` entries of `order` are this step's samples.
                for i in 0..<batch { order.swapAt(i, i + Int(batchRNG.next() % UInt64(n - i))) }
                for i in 0..<n { inBatch[order[i]] = i < batch }
            }
            var lossSum = 0.0
            var start = 0
            while start < n {
                let count = min(block, n - start)
                inputs.withUnsafeBufferPointer { x in
                    fields.withUnsafeMutableBufferPointer { h in
                        gradients.withUnsafeMutableBufferPointer { g in
                            let xb = x.baseAddress! + start * d, hb = h.baseAddress!, gb = g.baseAddress!
                            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(count), Int32(p), Int32(d), inverseSqrtD,
                                        xb, Int32(d), weights, Int32(d), 0, hb, Int32(p))
                            for i in 0..<count {
                                lossSum += sampleLoss.evaluate(fields: hb + i * p, label: labels[start + i], gradient: gb + i * p)
                                if batch < n, !inBatch[start + i] { for j in 0..<p { gb[i * p + j] = 0 } }
                            }
                            if update {
                                cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(p), Int32(d), Int32(count), 1,
                                            gb, Int32(p), xb, Int32(d), start == 0 ? 0 : 1, &step, Int32(d))
                            }
                        }
                    }
                }
                start += count
            }
            let o = OnlineSGDNetwork.measuredOverlaps(weights, p: p, k: k, dimension: d, secondLayer: experiment.student.secondLayer)
            guard lossSum.isFinite, o.M.allFinite, o.Q.allFinite else {
                result.status = .diverged
                result.message = "weights or loss non-finite at step \(t) (d = \(d))"
                break
            }
            result.times.append(Double(t))
            result.overlaps.append(o)
            result.trainLoss!.append(lossSum / Double(n))
            guard update else { break }
            // W ← (1 − ηλ) W − (η/√d) Σ_μ g_μ x_μᵀ.
            let decay = 1 - eta * settings.ridge, scale = -eta * inverseSqrtD
            for j in 0..<(p * d) { weights[j] = decay * weights[j] + scale * step[j] }
            if settings.freshSamples { drawDataset() }
            progress?(Double(t + 1) / Double(settings.steps))
        }
        progress?(1)
        return result
    }
}
