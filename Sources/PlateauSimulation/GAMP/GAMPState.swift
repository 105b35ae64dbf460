internal import COpenBLAS
import Foundation
import PlateauCore

/// One seed of finite-d GAMP (the algorithm is documented on `GAMPSimulator`): the data, the teacher
/// and the iterate. Matrices are row-major in buffers allocated once; the per-sample channel step
/// allocates nothing (it goes through the denoiser's workspace). Not thread-safe: one state per thread.
final class GAMPState {
    let d: Int, n: Int, k: Int
    let damping: Double
    let precision: GAMPPrecision
    let denoiser: any OutputDenoiser
    /// The denoiser's per-thread scratch space.
    let workspace: any OutputDenoiserWorkspace
    /// X, n×d.
    let X: UnsafeMutablePointer<Double>
    /// W*, k×d.
    let teacher: UnsafeMutablePointer<Double>
    /// Ŵ, d×k.
    let estimate: UnsafeMutablePointer<Double>
    /// B (then Ŵ_new), d×k.
    let field: UnsafeMutablePointer<Double>
    /// XŴ/√d, n×k.
    let projections: UnsafeMutablePointer<Double>
    /// g_out at t − 1 and at t, n×k each.
    var previousG: UnsafeMutablePointer<Double>
    var currentG: UnsafeMutablePointer<Double>
    /// y, n.
    let labels: UnsafeMutablePointer<Double>
    /// Per-sample scratch: ω, the posterior mean and covariance, C V⁻¹ (k, k, k×k, k×k).
    let omega: UnsafeMutablePointer<Double>
    let posteriorMean: UnsafeMutablePointer<Double>
    let posteriorCovariance: UnsafeMutablePointer<Double>
    let product: UnsafeMutablePointer<Double>
    /// Ĉ, k×k.
    var covariance: Matrix
    /// Number of iterations done.
    private(set) var iteration = 0

    init(problem: EstimationProblem, alpha: Double, denoiser: any OutputDenoiser, dimension d: Int, informed: Bool,
         precision: GAMPPrecision = .nishimori, seed: UInt64) {
        self.precision = precision
        _ = BLASSetup.singleThreaded
        self.d = d
        n = Int((alpha * Double(d)).rounded())
        k = problem.k
        damping = problem.settings.damping
        self.denoiser = denoiser
        workspace = denoiser.makeWorkspace()
        omega = .allocate(capacity: k)
        posteriorMean = .allocate(capacity: k)
        posteriorCovariance = .allocate(capacity: k * k)
        product = .allocate(capacity: k * k)
        var rng = Xoshiro256PlusPlus(seed: seed)
        teacher = .allocate(capacity: k * d)
        rng.fillStandardNormal(teacher, count: k * d)
        X = .allocate(capacity: n * d)
        rng.fillStandardNormal(X, count: n * d)
        labels = .allocate(capacity: n)
        rng.fillStandardNormal(labels, count: n)
        estimate = .allocate(capacity: d * k)
        rng.fillStandardNormal(estimate, count: d * k)
        field = .allocate(capacity: d * k)
        field.initialize(repeating: 0, count: d * k)
        projections = .allocate(capacity: n * k)
        previousG = .allocate(capacity: n * k)
        previousG.initialize(repeating: 0, count: n * k)
        currentG = .allocate(capacity: n * k)
        currentG.initialize(repeating: 0, count: n * k)

        // Labels: z = XW*ᵀ/√d, y = g(z) + √Δ ξ (labels held ξ).
        let scale = 1 / Double(d).squareRoot()
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(k), Int32(d), scale,
                    X, Int32(d), teacher, Int32(d), 0, projections, Int32(k))
        let target = problem.target, noise = problem.noise.squareRoot()
        for mu in 0..<n {
            labels[mu] = target.value(UnsafeBufferPointer(start: projections + mu * k, count: k)) + noise * labels[mu]
        }
        // Start: Ŵ₀ = m W*ᵀ + √(m − m²) ξ, Ĉ₀ = (1 − m)I.
        let eps = problem.settings.epsilon
        let m = informed ? 1 - eps : eps
        let spread = (m - m * m).squareRoot()
        for i in 0..<d { for a in 0..<k { estimate[i * k + a] = m * teacher[a * d + i] + spread * estimate[i * k + a] } }
        covariance = (1 - m) * Matrix.identity(k)
    }

    deinit {
        for p in [X, teacher, estimate, field, projections, previousG, currentG, labels, omega, posteriorMean,
                  posteriorCovariance, product] { p.deallocate() }
    }

    /// XŴ/√d into `projections` (n×k).
    func projectEstimate() {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(k), Int32(d), 1 / Double(d).squareRoot(),
                    X, Int32(d), estimate, Int32(k), 0, projections, Int32(k))
    }

    /// Xᵀg_out/√d into `field` (d×k).
    func backProject() {
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(d), Int32(k), Int32(n), 1 / Double(d).squareRoot(),
                    X, Int32(d), currentG, Int32(k), 0, field, Int32(k))
    }

    /// The channel step: g_out,μ into `currentG`, and A = (1/d)Σ_μ(−∂g_μ) (symmetrised). Reads
    /// `projections` and `previousG`. Nil when V = Ĉ is not positive definite.
    func channelStep() -> Matrix? {
        let V = covariance
        guard let Vinv = V.inverseSPD(tolerance: 1e-15),
              V.values.withUnsafeBufferPointer({ workspace.setCovariance($0.baseAddress!) }) else { return nil }
        var sum = [Double](repeating: 0, count: k * k)
        var accepted = 0
        let mean = posteriorMean, cov = posteriorCovariance, tmp = product
        V.values.withUnsafeBufferPointer { V in
        Vinv.values.withUnsafeBufferPointer { Vinv in
        sum.withUnsafeMutableBufferPointer { sum in
            for mu in 0..<n {
                let row = mu * k
                for a in 0..<k {
                    var s = projections[row + a]
                    for b in 0..<k { s -= V[a * k + b] * previousG[row + b] }
                    omega[a] = s
                }
                guard workspace.posterior(y: labels[mu], omega: omega, mean: mean, covariance: cov) else {
                    for a in 0..<k { currentG[row + a] = 0 }
                    continue
                }
                accepted += 1
                // g_out = V⁻¹(m − ω).
                for a in 0..<k {
                    var s = 0.0
                    for b in 0..<k { s += Vinv[a * k + b] * (mean[b] - omega[b]) }
                    currentG[row + a] = s
                }
                // Σ V⁻¹ C V⁻¹ accumulated in `sum` (tmp = C V⁻¹).
                for a in 0..<k { for b in 0..<k {
                    var s = 0.0
                    for c in 0..<k { s += cov[a * k + c] * Vinv[c * k + b] }
                    tmp[a * k + b] = s
                } }
                for a in 0..<k { for b in 0..<k {
                    var s = 0.0
                    for c in 0..<k { s += Vinv[a * k + c] * tmp[c * k + b] }
                    sum[a * k + b] += s
                } }
            }
        }}}
        // A = (1/d) Σ_μ (V⁻¹ − V⁻¹C_μV⁻¹) over the samples with a posterior.
        var A = Matrix(rows: k, cols: k)
        for a in 0..<k { for b in 0..<k {
            A[a, b] = (Double(accepted) * Vinv[a, b] - sum[a * k + b]) / Double(d)
        } }
        if precision == .nishimori {
            for a in 0..<k { for b in 0..<k {
                var s = 0.0
                for mu in 0..<n { s += currentG[mu * k + a] * currentG[mu * k + b] }
                A[a, b] = s / Double(d)
            } }
        }
        for a in 0..<k { for b in 0..<a { let s = 0.5 * (A[a, b] + A[b, a]); A[a, b] = s; A[b, a] = s } }
        return A
    }

    /// One GAMP iteration. False when V or I + A is not positive definite (the state is then unchanged).
    @discardableResult
    func iterate() -> Bool {
        projectEstimate()
        guard let A = channelStep(), let C = (Matrix.identity(k) + A).inverseSPD(tolerance: 1e-15) else { return false }
        backProject()
        // B = Xᵀg/√d + ŴA, then Ŵ_new = B(I + A)⁻¹ (row i: (I + A)⁻¹B_i, both symmetric).
        var b = [Double](repeating: 0, count: k)
        for i in 0..<d {
            let row = i * k
            for a in 0..<k {
                var s = field[row + a]
                for c in 0..<k { s += estimate[row + c] * A.values[c * k + a] }
                b[a] = s
            }
            for a in 0..<k {
                var s = 0.0
                for c in 0..<k { s += b[c] * C.values[c * k + a] }
                estimate[row + a] = (1 - damping) * s + damping * estimate[row + a]
            }
        }
        covariance = (1 - damping) * C + damping * covariance
        swap(&previousG, &currentG)
        iteration += 1
        return true
    }

    /// M = ŴᵀW*ᵀ/d and Q = ŴᵀŴ/d.
    func overlaps() -> (M: Matrix, Q: Matrix) {
        var M = Matrix(rows: k, cols: k), Q = Matrix(rows: k, cols: k)
        for i in 0..<d {
            for a in 0..<k {
                let w = estimate[i * k + a]
                for b in 0..<k {
                    M.values[a * k + b] += w * teacher[b * d + i]
                    Q.values[a * k + b] += w * estimate[i * k + b]
                }
            }
        }
        let s = 1 / Double(d)
        return (s * M, s * Q)
    }
}
