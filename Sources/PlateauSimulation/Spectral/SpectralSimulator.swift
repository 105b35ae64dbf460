internal import COpenBLAS
import Dispatch
import Foundation
import PlateauCore

/// How the teacher's rows are drawn for a spectral run.
public enum SpectralTeacher: String, Sendable, Hashable, CaseIterable {
    /// i.i.d. N(0, 1) entries (W*W*ᵀ/d = I_k + O(d^{-1/2})).
    case gaussian
    /// Orthonormalised rows scaled to norm √d: W*W*ᵀ/d = I_k exactly (eigenvalue locations depend on it).
    case orthonormal
}

/// Finite-d options of the spectral estimators.
public struct SpectralOptions: Sendable, Hashable {
    public var dimension: Int
    public var seeds: Int
    public var masterSeed: UInt64
    public var teacher: SpectralTeacher
    /// Worker threads for the seeds; 0 = `WorkerThreads.count` (all cores unless `--threads` says otherwise). Results do not depend on it.
    public var threads: Int
    /// Number of informative outliers expected (the multiplicity of λ_max(𝓕)): the overlap and the
    /// outlier of the top group are averaged over this many eigenvectors.
    public var groupSize: Int
    /// Vectors in L's block subspace iteration; 0 = max(k² + 2, groupSize + 2).
    public var blockSize: Int
    /// Subspace iterations on L at most, and the relative change of the top group's Ritz values and
    /// residual that counts as converged.
    public var maxIterations: Int
    public var tolerance: Double
    /// Build and diagonalise T (dk×dk, dense) as well.
    public var symmetric: Bool
    /// A scalar preprocessing p(y): the plain matrix (1/n)Σ p(y_μ) x_μx_μᵀ is diagonalised too.
    public var preprocessing: Formula?

    public init(dimension: Int, seeds: Int = 1, masterSeed: UInt64 = 1, teacher: SpectralTeacher = .gaussian,
                threads: Int = 0, groupSize: Int = 1, blockSize: Int = 0, maxIterations: Int = 2000,
                tolerance: Double = 1e-9, symmetric: Bool = true, preprocessing: Formula? = nil) {
        self.dimension = dimension
        self.seeds = seeds
        self.masterSeed = masterSeed
        self.teacher = teacher
        self.threads = threads
        self.groupSize = groupSize
        self.blockSize = blockSize
        self.maxIterations = maxIterations
        self.tolerance = tolerance
        self.symmetric = symmetric
        self.preprocessing = preprocessing
    }

    public func sampleCount(alpha: Double) -> Int { Int((alpha * Double(dimension)).rounded()) }

    /// Checks the options; throws a `SpecError` naming the field and value.
    public func validate(problem: EstimationProblem, alpha: Double) throws {
        try problem.validate()
        try EstimationProblem.validateAlpha(alpha, field: "alpha")
        let k = problem.k
        guard dimension >= 2 * k + 2 else {
            throw SpecError(field: "spectral.dimension", value: "\(dimension)", reason: "must be an integer ≥ 2k + 2 = \(2 * k + 2)")
        }
        let n = sampleCount(alpha: alpha)
        guard n >= k + 1 else {
            throw SpecError(field: "alpha", value: Experiment.format(alpha), reason: "gives n = round(αd) = \(n) samples at d = \(dimension); need n > k")
        }
        let entries = n.multipliedReportingOverflow(by: dimension)
        guard !entries.overflow, entries.partialValue <= 1 << 31 else {
            throw SpecError(field: "spectral.dimension", value: "\(dimension)", reason: "n·d must be ≤ 2^31 (X is held in memory)")
        }
        if symmetric || preprocessing != nil {
            guard dimension * k <= 16_000 else {
                throw SpecError(field: "spectral.dimension", value: "\(dimension)",
                                reason: "T is a dense dk×dk matrix: dk = \(dimension * k) must be ≤ 16000")
            }
        }
        guard seeds >= 1 else { throw SpecError(field: "spectral.seeds", value: "\(seeds)", reason: "must be an integer ≥ 1") }
        guard threads >= 0 else { throw SpecError(field: "spectral.threads", value: "\(threads)", reason: "must be ≥ 0 (0: all cores)") }
        guard (1...(k * k)).contains(groupSize) else {
            throw SpecError(field: "spectral.groupSize", value: "\(groupSize)", reason: "must lie in 1…k² = \(k * k)")
        }
        guard blockSize == 0 || blockSize > groupSize else {
            throw SpecError(field: "spectral.blockSize", value: "\(blockSize)", reason: "must exceed the group size \(groupSize) (0: automatic)")
        }
        guard (1...1_000_000).contains(maxIterations) else {
            throw SpecError(field: "spectral.maxIterations", value: "\(maxIterations)", reason: "must lie in 1…10⁶")
        }
        guard tolerance.isFinite, tolerance > 0, tolerance < 1 else {
            throw SpecError(field: "spectral.tolerance", value: Experiment.format(tolerance), reason: "must lie in (0, 1)")
        }
    }
}

/// One seed's measurements. Overlaps are m² = ‖Π_{W*}Ŵ‖²_F/‖Ŵ‖²_F (Π the projector on the row span of
/// W*); "group" quantities average over the top `groupSize` eigenvectors.
public struct SpectralSeedResult: Sendable, Hashable {
    public var seed: UInt64
    /// L: the eigenvalue of largest real part (its real part), the mean real part of the top group,
    /// the modulus of the first Ritz value after the group (a lower bound on the bulk radius), the
    /// overlaps, the iterations used and whether the top group converged to the tolerance.
    public var outlierL: Double
    public var outlierLGroup: Double
    public var bulkRadiusL: Double
    public var m2L: Double
    public var m2LGroup: Double
    /// Per member of the top group (descending real part): Re λ and m².
    public var outlierLMembers: [Double] = []
    public var m2LMembers: [Double] = []
    public var iterationsL: Int
    public var convergedL: Bool
    /// T (nil when not computed): top eigenvalue, mean of the top group, the next eigenvalue (bulk
    /// edge), overlaps, and the smallest eigenvalue of 𝒯(y_μ) over the sample (very negative when 𝒯 is
    /// unbounded below: it is not clipped).
    public var outlierT: Double?
    public var outlierTGroup: Double?
    public var bulkEdgeT: Double?
    public var m2T: Double?
    public var m2TGroup: Double?
    public var preprocessingMinimum: Double?
    /// The plain matrix (1/n)Σ p(y)xxᵀ (nil without a preprocessing): top eigenvalue, next eigenvalue, m².
    public var outlierP: Double?
    public var bulkEdgeP: Double?
    public var m2P: Double?
}

/// What the finite-d spectral estimators need of the output channel: G(y) = E[zzᵀ | y] − I_k under the
/// prior, and 𝒯(y) = I − E[zzᵀ | y]⁻¹ (nil where undefined). `OutputDenoiser` at ω = 0, V = I gives both.
public enum SpectralSimulator {
    /// Runs all seeds at α.
    public static func run(problem: EstimationProblem, alpha: Double, denoiser: any OutputDenoiser,
                           options: SpectralOptions) throws -> [SpectralSeedResult] {
        try options.validate(problem: problem, alpha: alpha)
        guard denoiser.k == problem.k else {
            throw SpecError(field: "denoiser.k", value: "\(denoiser.k)", reason: "must equal teacher.k = \(problem.k)")
        }
        let count = options.seeds
        let workers = min(count, options.threads > 0 ? options.threads : WorkerThreads.count)
        let slots = JobResults<Result<SpectralSeedResult, any Error>>(count: count)
        let checkpoints = SeedCheckpoints.current
        let identity = checkpointIdentity(problem: problem, alpha: alpha, denoiser: denoiser, options: options)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            var s = worker
            while s < count {
                let seed = SeedSequence.seed(master: options.masterSeed, index: s)
                let key = identity + "\nseed \(seed)"
                if let stored = checkpoints?.load(identity: key, SpectralSeedResult.init(checkpoint:)) {
                    slots.set(s, .success(stored))
                } else {
                    let state = SpectralState(problem: problem, alpha: alpha, denoiser: denoiser, options: options, seed: seed)
                    slots.set(s, Result {
                        let result = try state.measure()
                        try checkpoints?.save(tree: result.checkpointTree, identity: key)
                        return result
                    })
                }
                s += workers
            }
        }
        return try slots.values.map { try $0.get() }
    }

    /// What a seed's checkpoint (`SeedCheckpoints.current`) must match besides its seed: the problem,
    /// α to the bit, the denoiser's type and every option but the seed count and the threads.
    static func checkpointIdentity(problem: EstimationProblem, alpha: Double, denoiser: any OutputDenoiser,
                                   options o: SpectralOptions) -> String {
        "spectral\nproblem \(problem.specJSON)\nalpha \(String(alpha.bitPattern, radix: 16))\ndenoiser \(type(of: denoiser)) k \(denoiser.k)"
            + "\ndimension \(o.dimension)\nteacher \(o.teacher.rawValue)\ngroup \(o.groupSize)\nblock \(o.blockSize)"
            + "\niterations \(o.maxIterations)\ntolerance \(String(o.tolerance.bitPattern, radix: 16))\nsymmetric \(o.symmetric)"
            + "\npreprocessing \(o.preprocessing.map { "\($0)" } ?? "none")"
    }
}

extension SpectralSimulator {
    /// Every eigenvalue of L = (X̃X̃ᵀ ⊗ I − I)Ĝ for one seed, formed densely (nk ≤ 4000: for figures of
    /// the spectrum in the complex plane), by LAPACK dgeev; sorted by descending real part.
    public static func spectrumL(problem: EstimationProblem, alpha: Double, denoiser: any OutputDenoiser, dimension: Int,
                                 seed: UInt64, teacher: SpectralTeacher = .orthonormal) throws -> [(re: Double, im: Double)] {
        let options = SpectralOptions(dimension: dimension, teacher: teacher, symmetric: false)
        try options.validate(problem: problem, alpha: alpha)
        let state = SpectralState(problem: problem, alpha: alpha, denoiser: denoiser, options: options, seed: seed)
        let n = state.n, k = state.k, d = state.d, N = n * k
        guard N <= 4000 else {
            throw SpecError(field: "spectral.dimension", value: "\(dimension)", reason: "the dense spectrum of L needs nk ≤ 4000 (got \(N))")
        }
        var gram = [Double](repeating: 0, count: n * n)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(n), Int32(d), 1, state.X, Int32(d), state.X, Int32(d), 0, &gram, Int32(n))
        for mu in 0..<n { gram[mu * n + mu] -= 1 }
        // Column-major L: entry ((μ, a), (ν, b)) = (X̃X̃ᵀ − I)_μν G_ν[a, b].
        var L = [Double](repeating: 0, count: N * N)
        for nu in 0..<n { for b in 0..<k { for mu in 0..<n { for a in 0..<k {
            L[(nu * k + b) * N + mu * k + a] = gram[mu * n + nu] * state.G[nu * k * k + a * k + b]
        } } } }
        var n32 = Int32(N), info: Int32 = 0, one: Int32 = 1
        var wr = [Double](repeating: 0, count: N), wi = wr, vl = [0.0], vr = [0.0]
        var lwork = Int32(-1), query = 0.0
        dgeev_("N", "N", &n32, &L, &n32, &wr, &wi, &vl, &one, &vr, &one, &query, &lwork, &info, 1, 1)
        lwork = Int32(query)
        var work = [Double](repeating: 0, count: Int(lwork))
        dgeev_("N", "N", &n32, &L, &n32, &wr, &wi, &vl, &one, &vr, &one, &work, &lwork, &info, 1, 1)
        guard info == 0 else { throw SpecError(field: "spectral", value: "dgeev", reason: "did not converge (info = \(info))") }
        return zip(wr, wi).map { (re: $0, im: $1) }.sorted { $0.re > $1.re }
    }
}

/// One seed: the data, G(y_μ), and the three matrices. Row-major buffers; not thread-safe.
final class SpectralState {
    let d: Int, n: Int, k: Int
    let options: SpectralOptions
    let problem: EstimationProblem
    let seed: UInt64
    /// X̃ = X/√d (n×d), W* (k×d), y (n), G_μ (n×k×k), an orthonormal basis of W*'s row span (k×d).
    let X: UnsafeMutablePointer<Double>
    let teacher: UnsafeMutablePointer<Double>
    let labels: UnsafeMutablePointer<Double>
    let G: UnsafeMutablePointer<Double>
    let span: UnsafeMutablePointer<Double>
    /// 𝒯_μ = I − (I + G_μ)⁻¹ (n×k×k) when defined for every sample.
    var optimal: UnsafeMutablePointer<Double>?
    var undefinedOptimal = 0

    init(problem: EstimationProblem, alpha: Double, denoiser: any OutputDenoiser, options: SpectralOptions, seed: UInt64) {
        _ = BLASSetup.singleThreaded
        self.problem = problem
        self.options = options
        self.seed = seed
        d = options.dimension
        n = options.sampleCount(alpha: alpha)
        k = problem.k
        var rng = Xoshiro256PlusPlus(seed: seed)
        teacher = .allocate(capacity: k * d)
        rng.fillStandardNormal(teacher, count: k * d)
        X = .allocate(capacity: n * d)
        rng.fillStandardNormal(X, count: n * d)
        labels = .allocate(capacity: n)
        rng.fillStandardNormal(labels, count: n)
        span = .allocate(capacity: k * d)
        G = .allocate(capacity: n * k * k)
        // Orthonormal basis of the teacher's rows (Gram–Schmidt, twice); the orthonormal teacher is it, ×√d.
        span.update(from: teacher, count: k * d)
        for a in 0..<k {
            for _ in 0..<2 {
                for b in 0..<a {
                    let dot = cblas_ddot(Int32(d), span + a * d, 1, span + b * d, 1)
                    cblas_daxpy(Int32(d), -dot, span + b * d, 1, span + a * d, 1)
                }
            }
            cblas_dscal(Int32(d), 1 / cblas_dnrm2(Int32(d), span + a * d, 1), span + a * d, 1)
        }
        if options.teacher == .orthonormal {
            teacher.update(from: span, count: k * d)
            cblas_dscal(Int32(k * d), Double(d).squareRoot(), teacher, 1)
        }
        cblas_dscal(Int32(n * d), 1 / Double(d).squareRoot(), X, 1)
        // z = X̃W*ᵀ, y = g(z) + √Δ ξ.
        let z = UnsafeMutablePointer<Double>.allocate(capacity: n * k)
        defer { z.deallocate() }
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(k), Int32(d), 1, X, Int32(d), teacher, Int32(d), 0, z, Int32(k))
        let noise = problem.noise.squareRoot()
        for mu in 0..<n { labels[mu] = problem.target.value(UnsafeBufferPointer(start: z + mu * k, count: k)) + noise * labels[mu] }
        // G(y_μ) from the denoiser at ω = 0, V = I: E[zzᵀ | y] = Cov + mean meanᵀ.
        let workspace = denoiser.makeWorkspace()
        var identity = [Double](repeating: 0, count: k * k)
        for a in 0..<k { identity[a * k + a] = 1 }
        _ = identity.withUnsafeBufferPointer { workspace.setCovariance($0.baseAddress!) }
        var zero = [Double](repeating: 0, count: k), mean = zero, cov = identity
        var cache: [Int: [Double]] = [:]
        for mu in 0..<n {
            let g = G + mu * k * k
            let key = denoiser.outputClass(y: labels[mu])
            if let key, let cached = cache[key] { g.update(from: cached, count: k * k); continue }
            if workspace.posterior(y: labels[mu], omega: &zero, mean: &mean, covariance: &cov) {
                for a in 0..<k { for b in 0..<k { g[a * k + b] = cov[a * k + b] + mean[a] * mean[b] - (a == b ? 1 : 0) } }
            } else {
                g.initialize(repeating: 0, count: k * k)
            }
            if let key { cache[key] = Array(UnsafeBufferPointer(start: g, count: k * k)) }
        }
        if options.symmetric {
            let t = UnsafeMutablePointer<Double>.allocate(capacity: n * k * k)
            for mu in 0..<n {
                let second = Matrix(rows: k, cols: k, values: (0..<(k * k)).map { G[mu * k * k + $0] + ($0 % (k + 1) == 0 ? 1 : 0) })
                if let inv = second.inverseSPD(tolerance: 1e-12) {
                    for e in 0..<(k * k) { t[mu * k * k + e] = (e % (k + 1) == 0 ? 1 : 0) - inv.values[e] }
                } else {
                    undefinedOptimal += 1
                    for e in 0..<(k * k) { t[mu * k * k + e] = 0 }
                }
            }
            optimal = t
        }
    }

    deinit {
        for p in [X, teacher, labels, G, span] { p.deallocate() }
        optimal?.deallocate()
    }

    func measure() throws -> SpectralSeedResult {
        let l = asymmetric()
        var result = SpectralSeedResult(seed: seed, outlierL: l.outlier, outlierLGroup: l.groupOutlier, bulkRadiusL: l.bulk,
                                        m2L: l.m2, m2LGroup: l.groupM2, outlierLMembers: l.members, m2LMembers: l.memberM2,
                                        iterationsL: l.iterations, convergedL: l.converged)
        if let optimal {
            guard undefinedOptimal == 0 else {
                throw SpecError(field: "teacher.target", value: "\"\(problem.target)\"",
                                reason: "𝒯(y) = I − E[zzᵀ | y]⁻¹ is undefined: E[zzᵀ | y] is singular for \(undefinedOptimal) of \(n) samples")
            }
            var minimum = Double.infinity
            for mu in 0..<n {
                let m = Matrix(rows: k, cols: k, values: Array(UnsafeBufferPointer(start: optimal + mu * k * k, count: k * k)))
                let sym = 0.5 * (m + m.transposed)
                minimum = min(minimum, Self.smallestEigenvalue(sym))
            }
            let t = symmetric(weights: optimal, blockDiagonal: true, count: options.groupSize + 1)
            result.outlierT = t.values[0]
            result.outlierTGroup = t.values[0..<options.groupSize].reduce(0, +) / Double(options.groupSize)
            result.bulkEdgeT = t.values[options.groupSize]
            result.m2T = t.m2[0]
            result.m2TGroup = t.m2[0..<options.groupSize].reduce(0, +) / Double(options.groupSize)
            result.preprocessingMinimum = minimum
        }
        if let p = options.preprocessing {
            let w = UnsafeMutablePointer<Double>.allocate(capacity: n)
            defer { w.deallocate() }
            let scale = Double(d) / Double(n)
            for mu in 0..<n {
                let v = p.value([labels[mu]])
                guard v.isFinite else {
                    throw SpecError(field: "spectral.preprocessing", value: "\"\(p)\"", reason: "is not finite at y = \(Experiment.format(labels[mu]))")
                }
                w[mu] = scale * v
            }
            let t = symmetric(weights: w, blockDiagonal: false, count: 2)
            result.outlierP = t.values[0]
            result.bulkEdgeP = t.values[1]
            result.m2P = t.m2[0]
        }
        return result
    }

    /// m² = ‖Π_{W*}Ŵ‖²_F/‖Ŵ‖²_F of an estimator Ŵ (d×`columns`) whose entry (i, c) is at
    /// w[i·rowStride + c·columnStride] (Π through the orthonormal basis `span` of W*'s rows).
    func overlap(_ w: UnsafePointer<Double>, columns: Int, rowStride: Int, columnStride: Int) -> Double {
        var total = 0.0, projected = 0.0
        for c in 0..<columns {
            for i in 0..<d { let x = w[i * rowStride + c * columnStride]; total += x * x }
            for r in 0..<k {
                var dot = 0.0
                for i in 0..<d { dot += span[r * d + i] * w[i * rowStride + c * columnStride] }
                projected += dot * dot
            }
        }
        return projected / total
    }

    // MARK: - L: block subspace iteration with Rayleigh–Ritz

    /// Y = LV for a block V of b vectors of ℝ^{nk}, stored as (nk)×b row-major (= n×(kb) with row μ
    /// holding [a, j]): U = ĜV, then Y = X̃(X̃ᵀU) − U. `scratch` holds d×kb.
    func applyL(_ V: UnsafePointer<Double>, into Y: UnsafeMutablePointer<Double>, b: Int,
                u: UnsafeMutablePointer<Double>, scratch: UnsafeMutablePointer<Double>) {
        applyG(V, into: u, b: b)
        let kb = Int32(k * b)
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(d), kb, Int32(n), 1, X, Int32(d), u, kb, 0, scratch, kb)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), kb, Int32(d), 1, X, Int32(d), scratch, kb, 0, Y, kb)
        cblas_daxpy(Int32(n * k * b), -1, u, 1, Y, 1)
    }

    /// U = ĜV (per sample, U_μ[a, j] = Σ_c G_μ[a, c] V_μ[c, j]).
    func applyG(_ V: UnsafePointer<Double>, into U: UnsafeMutablePointer<Double>, b: Int) {
        let kb = k * b
        for mu in 0..<n {
            let g = G + mu * k * k, v = V + mu * kb, u = U + mu * kb
            for a in 0..<k {
                for j in 0..<b {
                    var s = 0.0
                    for c in 0..<k { s += g[a * k + c] * v[c * b + j] }
                    u[a * b + j] = s
                }
            }
        }
    }

    struct AsymmetricResult {
        var outlier: Double, groupOutlier: Double, bulk: Double, m2: Double, groupM2: Double
        var iterations: Int, converged: Bool
        var members: [Double] = [], memberM2: [Double] = []
    }

    func asymmetric() -> AsymmetricResult {
        let g = options.groupSize
        let b = options.blockSize > 0 ? options.blockSize : max(k * k + 2, g + 2)
        let N = n * k
        let V = UnsafeMutablePointer<Double>.allocate(capacity: N * b), Y = UnsafeMutablePointer<Double>.allocate(capacity: N * b)
        let u = UnsafeMutablePointer<Double>.allocate(capacity: N * b), scratch = UnsafeMutablePointer<Double>.allocate(capacity: d * k * b)
        defer { for p in [V, Y, u, scratch] { p.deallocate() } }
        var rng = Xoshiro256PlusPlus(seed: SeedSequence.mix(seed ^ 0x5EC7_0A11))
        rng.fillStandardNormal(V, count: N * b)
        _ = Self.orthonormalize(V, rows: N, cols: b)
        var previous = [Double](repeating: .nan, count: g)
        var iterations = 0, converged = false
        var ritz: (real: [Double], imaginary: [Double], vectors: [Double]) = ([], [], [])
        while iterations < options.maxIterations {
            applyL(V, into: Y, b: b, u: u, scratch: scratch)
            iterations += 1
            // Rayleigh–Ritz on span(V): H = Vᵀ(LV).
            var H = [Double](repeating: 0, count: b * b)
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(b), Int32(b), Int32(N), 1, V, Int32(b), Y, Int32(b), 0, &H, Int32(b))
            guard let e = Self.eigen(H, b) else { break }
            ritz = e
            let top = Array(e.real[0..<g])
            let scale = max(abs(top[0]), 1e-300)
            let change = zip(top, previous).map { abs($0 - $1) }.max()!
            previous = top
            // V ← orth(LV), and the top Ritz vectors' residual decides convergence.
            if change <= options.tolerance * scale && e.imaginary[0..<g].allSatisfy({ $0 == 0 }) {
                converged = residual(V: V, LV: Y, b: b, vectors: e.vectors, count: g, values: top) <= 10 * options.tolerance.squareRoot() * scale
                if converged { break }
            }
            V.update(from: Y, count: N * b)
            if !Self.orthonormalize(V, rows: N, cols: b) { break }
        }
        // Without convergence the loop ended after V ← orth(LV): the Rayleigh–Ritz pairs must be those of this V.
        if !converged {
            applyL(V, into: Y, b: b, u: u, scratch: scratch)
            var H = [Double](repeating: 0, count: b * b)
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(b), Int32(b), Int32(N), 1, V, Int32(b), Y, Int32(b), 0, &H, Int32(b))
            if let e = Self.eigen(H, b) { ritz = e }
        }
        // Ritz vectors ω_j = V s_j (real parts), the estimators Ŵ_j = X̃ᵀ mat(Ĝω_j).
        let omega = UnsafeMutablePointer<Double>.allocate(capacity: N * g), gw = UnsafeMutablePointer<Double>.allocate(capacity: N * g)
        let w = UnsafeMutablePointer<Double>.allocate(capacity: d * k * g)
        defer { omega.deallocate(); gw.deallocate(); w.deallocate() }
        var S = [Double](repeating: 0, count: b * g)
        for i in 0..<b { for j in 0..<g { S[i * g + j] = ritz.vectors.isEmpty ? 0 : ritz.vectors[i * b + j] } }
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(N), Int32(g), Int32(b), 1, V, Int32(b), S, Int32(g), 0, omega, Int32(g))
        applyG(omega, into: gw, b: g)
        let kg = Int32(k * g)
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(d), kg, Int32(n), 1, X, Int32(d), gw, kg, 0, w, kg)
        // Column (a, j) of w: a·g + j; estimator j has columns a·g + j, a = 0…k−1.
        let m2 = (0..<g).map { j in overlap(w + j, columns: k, rowStride: k * g, columnStride: g) }
        let real = ritz.real.isEmpty ? [Double](repeating: .nan, count: b) : ritz.real
        let bulk = ritz.real.isEmpty ? Double.nan : (ritz.real[g] * ritz.real[g] + ritz.imaginary[g] * ritz.imaginary[g]).squareRoot()
        return AsymmetricResult(outlier: real[0], groupOutlier: real[0..<g].reduce(0, +) / Double(g), bulk: bulk,
                                m2: m2[0], groupM2: m2.reduce(0, +) / Double(g), iterations: iterations, converged: converged,
                                members: Array(real[0..<g]), memberM2: m2)
    }

    /// max_j ‖LVs_j − λ_j Vs_j‖ over the first `count` Ritz pairs (real ones).
    func residual(V: UnsafePointer<Double>, LV: UnsafePointer<Double>, b: Int, vectors: [Double], count: Int, values: [Double]) -> Double {
        let N = n * k
        var worst = 0.0
        for j in 0..<count {
            var s = 0.0
            for r in 0..<N {
                var a = 0.0, v = 0.0
                for i in 0..<b { a += LV[r * b + i] * vectors[i * b + j]; v += V[r * b + i] * vectors[i * b + j] }
                let e = a - values[j] * v
                s += e * e
            }
            worst = max(worst, s.squareRoot())
        }
        return worst
    }

    /// Orthonormal columns (Cholesky QR, twice); false when the block lost rank.
    static func orthonormalize(_ V: UnsafeMutablePointer<Double>, rows: Int, cols b: Int) -> Bool {
        for _ in 0..<2 {
            var gram = [Double](repeating: 0, count: b * b)
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(b), Int32(b), Int32(rows), 1, V, Int32(b), V, Int32(b), 0, &gram, Int32(b))
            // dpotrf on the (symmetric) Gram: column-major upper = row-major lower.
            var info: Int32 = 0, nb = Int32(b)
            dpotrf_("U", &nb, &gram, &nb, &info, 1)
            guard info == 0 else { return false }
            // Column-major upper R (RᵀR = Gram) is row-major lower L = Rᵀ; V ← V R⁻¹ = V L⁻ᵀ.
            for i in 0..<b { for j in (i + 1)..<max(b, i + 1) { gram[i * b + j] = 0 } }
            cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, Int32(rows), Int32(b), 1, gram, Int32(b), V, Int32(b))
        }
        return true
    }

    /// Eigenvalues of a general b×b matrix (row-major) by LAPACK dgeev, sorted by descending real part,
    /// with the right eigenvectors' real parts as columns (row-major b×b).
    static func eigen(_ H: [Double], _ b: Int) -> (real: [Double], imaginary: [Double], vectors: [Double])? {
        // Column-major copy.
        var a = [Double](repeating: 0, count: b * b)
        for i in 0..<b { for j in 0..<b { a[j * b + i] = H[i * b + j] } }
        var n = Int32(b), info: Int32 = 0, one: Int32 = 1
        var wr = [Double](repeating: 0, count: b), wi = wr
        var vr = [Double](repeating: 0, count: b * b), vl = [Double](repeating: 0, count: 1)
        var lwork = Int32(-1), query = 0.0
        dgeev_("N", "V", &n, &a, &n, &wr, &wi, &vl, &one, &vr, &n, &query, &lwork, &info, 1, 1)
        lwork = Int32(query)
        var work = [Double](repeating: 0, count: Int(lwork))
        dgeev_("N", "V", &n, &a, &n, &wr, &wi, &vl, &one, &vr, &n, &work, &lwork, &info, 1, 1)
        guard info == 0 else { return nil }
        let order = (0..<b).sorted { wr[$0] > wr[$1] }
        var vectors = [Double](repeating: 0, count: b * b)
        for (c, e) in order.enumerated() {
            // A complex pair occupies columns e (real) and e + 1 (imaginary) when wi[e] > 0.
            let column = wi[e] < 0 ? e - 1 : e
            var norm = 0.0
            for i in 0..<b { norm += vr[column * b + i] * vr[column * b + i] }
            norm = max(norm.squareRoot(), 1e-300)
            for i in 0..<b { vectors[i * b + c] = vr[column * b + i] / norm }
        }
        return (order.map { wr[$0] }, order.map { wi[$0] }, vectors)
    }

    // MARK: - T and the plain preprocessed matrix: dense, dsyevr

    /// The top `count` eigenpairs of Σ_μ x̃_μx̃_μᵀ ⊗ P_μ (dk×dk, index a·d + i) when `blockDiagonal`
    /// (P_μ k×k in `weights`), or of X̃ᵀ diag(w) X̃ (d×d) otherwise; eigenvalues descending and the m² of
    /// each eigenvector.
    func symmetric(weights: UnsafePointer<Double>, blockDiagonal: Bool, count: Int) -> (values: [Double], m2: [Double]) {
        let blocks = blockDiagonal ? k : 1
        let D = d * blocks
        let T = UnsafeMutablePointer<Double>.allocate(capacity: D * D)
        defer { T.deallocate() }
        build(T, weights: weights, blockDiagonal: blockDiagonal)
        return topEigenpairs(T, blocks: blocks, count: count)
    }

    /// Σ_μ x̃_μx̃_μᵀ ⊗ P_μ (or X̃ᵀ diag(w) X̃) into T (D×D): one dgemm per block pair a ≤ c, mirrored.
    func build(_ T: UnsafeMutablePointer<Double>, weights: UnsafePointer<Double>, blockDiagonal: Bool) {
        let blocks = blockDiagonal ? k : 1
        let D = d * blocks
        let scaled = UnsafeMutablePointer<Double>.allocate(capacity: n * d)
        defer { scaled.deallocate() }
        for a in 0..<blocks {
            for c in a..<blocks {
                for mu in 0..<n {
                    let p = blockDiagonal ? weights[mu * k * k + a * k + c] : weights[mu]
                    for i in 0..<d { scaled[mu * d + i] = p * X[mu * d + i] }
                }
                cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(d), Int32(d), Int32(n), 1, X, Int32(d), scaled, Int32(d),
                            0, T + a * d * D + c * d, Int32(D))
                if c != a {
                    for i in 0..<d { for j in 0..<d { T[(c * d + i) * D + a * d + j] = T[(a * d + j) * D + c * d + i] } }
                }
            }
        }
    }

    /// The top `count` eigenpairs of the symmetric T (D×D, destroyed) by dsyevr, eigenvalues descending,
    /// and the m² of each eigenvector (Ŵ[i, a] = v[a·d + i]).
    func topEigenpairs(_ T: UnsafeMutablePointer<Double>, blocks: Int, count: Int) -> (values: [Double], m2: [Double]) {
        let D = d * blocks
        // dsyevr, the top `count` eigenvalues (indices D − count + 1 … D, ascending) and vectors. T is
        // symmetric, so its row-major storage is its column-major storage.
        var jobz = Int8(UInt8(ascii: "V")), range = Int8(UInt8(ascii: "I")), uplo = Int8(UInt8(ascii: "L"))
        var n32 = Int32(D), il = Int32(D - count + 1), iu = Int32(D), found: Int32 = 0, info: Int32 = 0
        var vl = 0.0, vu = 0.0, abstol = 0.0
        var w = [Double](repeating: 0, count: D)
        var z = [Double](repeating: 0, count: D * count)
        var isuppz = [Int32](repeating: 0, count: 2 * count)
        var lwork = Int32(-1), liwork = Int32(-1), workQuery = 0.0, iworkQuery: Int32 = 0
        dsyevr_(&jobz, &range, &uplo, &n32, T, &n32, &vl, &vu, &il, &iu, &abstol, &found, &w, &z, &n32, &isuppz,
                &workQuery, &lwork, &iworkQuery, &liwork, &info, 1, 1, 1)
        lwork = Int32(workQuery); liwork = iworkQuery
        var work = [Double](repeating: 0, count: Int(lwork)), iwork = [Int32](repeating: 0, count: Int(liwork))
        dsyevr_(&jobz, &range, &uplo, &n32, T, &n32, &vl, &vu, &il, &iu, &abstol, &found, &w, &z, &n32, &isuppz,
                &work, &lwork, &iwork, &liwork, &info, 1, 1, 1)
        guard info == 0, Int(found) == count else {
            return ([Double](repeating: .nan, count: count), [Double](repeating: .nan, count: count))
        }
        var values: [Double] = [], m2: [Double] = []
        for e in (0..<count).reversed() {
            values.append(w[e])
            // Eigenvector e: column e of z (column-major, length D); Ŵ[i, a] = v[a·d + i].
            m2.append(z.withUnsafeBufferPointer { overlap($0.baseAddress! + e * D, columns: blocks, rowStride: 1, columnStride: d) })
        }
        return (values, m2)
    }

    /// The smallest eigenvalue of a small symmetric matrix (LAPACK dsyev).
    static func smallestEigenvalue(_ m: Matrix) -> Double {
        var a = m.values, n = Int32(m.rows), info: Int32 = 0
        var w = [Double](repeating: 0, count: m.rows)
        var lwork = Int32(-1), query = 0.0
        dsyev_("N", "L", &n, &a, &n, &w, &query, &lwork, &info, 1, 1)
        lwork = Int32(query)
        var work = [Double](repeating: 0, count: Int(lwork))
        dsyev_("N", "L", &n, &a, &n, &w, &work, &lwork, &info, 1, 1)
        return info == 0 ? w[0] : .nan
    }
}
