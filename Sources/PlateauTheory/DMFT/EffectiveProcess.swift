import Foundation
import PlateauCore
internal import CGSL

/// The DMFT effective single-sample process of multi-pass GD (EQUATIONS.md §3), solved forward in
/// time on a population of rows, each row a training sample of the effective problem:
///
///   h* = L_P u*,  h(0) = v(0) = L⊥ u₀ (L⊥ L⊥ᵀ = Q − m P⁻¹ mᵀ),  y = g(h*) + √Δ ξ,  z = (z₀, …, z_{T−1}),
///
/// where w = (u*, u₀, ξ, z) is a vector of k + p + 1 + T·p standard normals per row, drawn once. At
/// step t: ĥ = h(t) + m(t) P⁻¹ h*, g(t) = ∇_ĥ ℓ(ĥ, y) (`SampleLoss`); C(t, s) = α⟨g(t) g(s)ᵀ⟩ (s ≤ t)
/// extends a block factor L of C by one block row and ω(t) = Σ_{s≤t} L_{t,s} z_s; the Stein regression
/// Γ(t, ·) Q_v = α⟨g(t) v_{[0..t]}ᵀ⟩ (pseudo-inverse of Q_v = ⟨v vᵀ⟩) gives Λ(t) = λI + Γ(t, t) and
/// R(t, s) = −Γ(t, s); then
///
///   m(t+1) = (1 − ηλ) m(t) − ηα⟨g(t) h*ᵀ⟩,
///   h(t+1) = (1 − ηλ) h(t) − η g(t) − η Σ_{s≤t} Γ(t, s) h(s) + η ω(t),   v(t+1): the same without g.
///
/// ⟨·⟩ is `weight` × the sum over rows. With S random rows and weight 1/S this is the Monte-Carlo
/// scheme. With the k + p + 1 + T·p unit vectors as rows and weight 1 it is exact whenever g is
/// linear in (ĥ, y) and y linear in (h*, ξ) (linear student, square loss, linear target): every
/// quantity is then a linear form in w, a row holds its coefficients, and ⟨x yᵀ⟩ = Σ_rows x yᵀ is the
/// exact Gaussian second moment (the deterministic fast path).
///
/// Storage: row-major per row, histories h, v ((T + 1)·p), g, z (T·p): O(T·p·S) memory. Rows are
/// processed in blocks; the averages are BLAS products of a block's history with its newest column.
final class EffectiveProcess {
    let p: Int, k: Int, T: Int
    let rows: Int
    let weight: Double
    let blockSize: Int
    let alpha: Double, eta: Double, ridge: Double
    let loss: SampleLoss
    let P: Matrix
    let PInverse: Matrix
    let causalNoise: Bool
    let cutoff: Double
    /// Factor C and solve the Stein regression from the rows themselves (Householder QR and Jacobi SVD
    /// of the data, condition number not squared) instead of from the Gram matrices: for the exact
    /// Gaussian path, whose few rows carry exact coefficients (the normal equations lose ~cond²·ε as
    /// the dynamics converge and v(t) ≈ v(t − 1)).
    var fromData = false

    // Per-row storage (row-major, leading dimensions in comments).
    let hStar: UnsafeMutablePointer<Double>    // k
    let labels: UnsafeMutablePointer<Double>   // 1
    let z: UnsafeMutablePointer<Double>        // T p
    let h: UnsafeMutablePointer<Double>        // (T+1) p
    let v: UnsafeMutablePointer<Double>        // (T+1) p
    let g: UnsafeMutablePointer<Double>        // T p (the last step's g in `gLast`)
    let gLast: UnsafeMutablePointer<Double>    // p
    let scratch: UnsafeMutablePointer<Double>  // block × p

    /// The recorded order parameters and kernels.
    var m: [Matrix] = []
    var Q: [Matrix] = []
    var trainLoss: [Double] = []
    /// ½⟨(y − f(v(t) + m P⁻¹ h*))²⟩: the population risk of (m, Q) estimated on the rows (v(t) is
    /// independent of h*, so v(t) + m P⁻¹ h* is a fresh sample's field).
    var testRisk: [Double] = []
    /// Λ(t) = λI + Γ(t, t).
    var effectiveRegularisation: [Matrix] = []
    var status: TrajectoryStatus = .completed
    var message = ""

    /// - Parameters:
    ///   - fill: writes the k + p + 1 + T·p standard-normal coordinates of row `i` (random, or a unit vector).
    init(_ experiment: Experiment, rows: Int, weight: Double, blockSize: Int, causalNoise: Bool, cutoff: Double,
         fill: (Int, UnsafeMutablePointer<Double>) -> Void) {
        let settings = experiment.multipass!
        p = experiment.student.p
        k = experiment.teacher.k
        T = settings.steps
        self.rows = rows
        self.weight = weight
        self.blockSize = max(1, min(blockSize, rows))
        alpha = settings.alpha
        eta = experiment.training.learningRate
        ridge = settings.ridge
        loss = SampleLoss(experiment)
        P = experiment.teacher.covariance
        PInverse = P.inverseSPD()!
        self.causalNoise = causalNoise
        self.cutoff = cutoff

        hStar = .allocate(capacity: rows * k)
        labels = .allocate(capacity: rows)
        z = .allocate(capacity: rows * T * p)
        h = .allocate(capacity: rows * (T + 1) * p)
        v = .allocate(capacity: rows * (T + 1) * p)
        g = .allocate(capacity: rows * T * p)
        gLast = .allocate(capacity: rows * p)
        scratch = .allocate(capacity: self.blockSize * p)
        h.initialize(repeating: 0, count: rows * (T + 1) * p)
        v.initialize(repeating: 0, count: rows * (T + 1) * p)
        g.initialize(repeating: 0, count: rows * T * p)

        // Initial state from the prescribed overlaps.
        let start = OnlineSGDTheory.startOverlaps(experiment)   // random weights: their d = ∞ limit
        let (m0, Q0) = (start.M, start.Q)
        let LP = P.choleskyPSD()!
        let schur = Q0 - m0 * PInverse * m0.transposed
        let LPerp = Self.symmetrised(schur).choleskyPSD(tolerance: 1e-10, scale: max(1, (0..<p).map { Q0[$0, $0] }.max()!))
            ?? Matrix(rows: p, cols: p)
        let width = k + p + 1 + T * p
        let w = UnsafeMutablePointer<Double>.allocate(capacity: width)
        defer { w.deallocate() }
        let noiseSD = experiment.teacher.noiseVariance.squareRoot()
        for i in 0..<rows {
            fill(i, w)
            let hs = hStar + i * k
            for r in 0..<k {
                var x = 0.0
                for s in 0...r { x += LP[r, s] * w[s] }
                hs[r] = x
            }
            labels[i] = experiment.teacher.output(hs) + noiseSD * w[k + p]
            let row = (T + 1) * p
            for j in 0..<p {
                var x = 0.0
                for l in 0...j { x += LPerp[j, l] * w[k + l] }
                h[i * row + j] = x
                v[i * row + j] = x
            }
            (z + i * T * p).update(from: w + k + p + 1, count: T * p)
        }
        m = [m0]
    }

    deinit {
        for buffer in [hStar, labels, z, h, v, g, gLast, scratch] { buffer.deallocate() }
    }

    static func symmetrised(_ S: Matrix) -> Matrix {
        var out = S
        for i in 0..<S.rows { for j in 0..<i { let x = 0.5 * (S[i, j] + S[j, i]); out[i, j] = x; out[j, i] = x } }
        return out
    }

    /// Runs all T steps, recording m, Q, the training loss and Λ at t = 0…T.
    func run() {
        let p = self.p, Tp = T * p, Hp = (T + 1) * p
        // Global matrices: C = α⟨g gᵀ⟩ (T p)², Q_v = ⟨v vᵀ⟩ ((T+1) p)², L (T p)², pinv(L_ssᵀ) per s.
        var C = Matrix(rows: Tp, cols: Tp)
        var Qv = Matrix(rows: Hp, cols: Hp)
        var L = Matrix(rows: Tp, cols: Tp)
        var diagonalInverse: [Matrix] = []
        var gamma = Matrix(rows: p, cols: Hp)    // Γ(t, ·), row-major p × (t+1)p in its first columns
        var noiseFactor = Matrix(rows: p, cols: Tp)
        // Block accumulators.
        var gg = [Double](repeating: 0, count: p * Tp)
        var gv = [Double](repeating: 0, count: p * Hp)
        var vv = [Double](repeating: 0, count: p * Hp)
        var gh = [Double](repeating: 0, count: p * k)

        for t in 0...T {
            let width = (t + 1) * p
            let mP = m[t] * PInverse
            // Pass A: g(t), the loss, and the averages involving the newest column.
            for i in 0..<gg.count { gg[i] = 0 }
            for i in 0..<gv.count { gv[i] = 0; vv[i] = 0 }
            for i in 0..<gh.count { gh[i] = 0 }
            var lossSum = 0.0, riskSum = 0.0
            var start = 0
            while start < rows {
                let count = min(blockSize, rows - start)
                let gCol = t < T ? g + start * Tp + t * p : gLast + start * p
                let gLd = t < T ? Tp : p
                let field = scratch
                for i in 0..<count {
                    let r = start + i
                    let hs = hStar + r * k, ht = h + r * Hp + t * p, f = field + i * p
                    for j in 0..<p {
                        var x = ht[j]
                        for q in 0..<k { x += mP[j, q] * hs[q] }
                        f[j] = x
                    }
                    lossSum += loss.evaluate(fields: f, label: labels[r], gradient: gCol + i * gLd)
                    let vt = v + r * Hp + t * p
                    for j in 0..<p { f[j] += vt[j] - ht[j] }   // the same field with v(t) in place of h(t)
                    let e = labels[r] - loss.output(fields: f)
                    riskSum += 0.5 * e * e
                }
                let vBlock = v + start * Hp
                // ⟨v(t) v(0..t)ᵀ⟩
                cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(p), Int32(width), Int32(count), 1,
                            vBlock + t * p, Int32(Hp), vBlock, Int32(Hp), 1, &vv, Int32(Hp))
                if t < T {
                    let gBlock = g + start * Tp
                    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(p), Int32(width), Int32(count), 1,
                                gCol, Int32(Tp), gBlock, Int32(Tp), 1, &gg, Int32(Tp))
                    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(p), Int32(width), Int32(count), 1,
                                gCol, Int32(Tp), vBlock, Int32(Hp), 1, &gv, Int32(Hp))
                    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(p), Int32(k), Int32(count), 1,
                                gCol, Int32(Tp), hStar + start * k, Int32(k), 1, &gh, Int32(k))
                }
                start += count
            }
            // Observables at t.
            for j in 0..<p { for c in 0..<width { Qv[t * p + j, c] = weight * vv[j * Hp + c]; Qv[c, t * p + j] = weight * vv[j * Hp + c] } }
            var q = mP * m[t].transposed
            for j in 0..<p { for l in 0..<p { q[j, l] += Qv[t * p + j, t * p + l] } }
            Q.append(q)
            trainLoss.append(weight * lossSum)
            testRisk.append(weight * riskSum)
            guard lossSum.isFinite, q.allFinite else {
                status = .diverged
                message = "the effective process became non-finite at step \(t)"
                return
            }
            if t == T { break }

            // C's newest block row (a Gram matrix: C(s, t) = C(t, s)ᵀ exactly).
            for j in 0..<p { for c in 0..<width { C[t * p + j, c] = alpha * weight * gg[j * Tp + c]; C[c, t * p + j] = C[t * p + j, c] } }
            if fromData {
                // L = Rᵀ with G = Q R (G: rows × width of √(αw)·g): L Lᵀ = C.
                let R = Self.triangularFactor(g, rows: rows, cols: width, ld: Tp, scale: (alpha * weight).squareRoot())
                for j in 0..<p { for c in 0..<width { L[t * p + j, c] = R[c, t * p + j] } }
            } else {
                extendFactor(&L, &diagonalInverse, C: C, t: t)
            }
            for j in 0..<p { for c in 0..<Tp { noiseFactor[j, c] = c < width ? L[t * p + j, c] : 0 } }

            // Stein regression Γ(t, ·) = α⟨g(t) v_{[0..t]}ᵀ⟩ Q_v⁺.
            var Qt = Matrix(rows: width, cols: width)
            for a in 0..<width { for b in 0..<width { Qt[a, b] = Qv[a, b] } }
            var gammaRow: Matrix
            if fromData {
                gammaRow = alpha * Self.leastSquares(v, g + t * p, rows: rows, cols: width, ldA: Hp, ldB: Tp, p: p, cutoff: cutoff).transposed
            } else {
                let QtPlus = GSL.symmetricPseudoInverse(Qt, relativeCutoff: cutoff)
                var rhs = Matrix(rows: p, cols: width)
                for j in 0..<p { for c in 0..<width { rhs[j, c] = alpha * weight * gv[j * Hp + c] } }
                gammaRow = rhs * QtPlus
            }
            gamma = Matrix(rows: p, cols: Hp)
            for j in 0..<p { for c in 0..<width { gamma[j, c] = gammaRow[j, c] } }
            var lambda = ridge * .identity(p)
            for j in 0..<p { for l in 0..<p { lambda[j, l] += gammaRow[j, t * p + l] } }
            effectiveRegularisation.append(lambda)

            // m(t+1) = (1 − ηλ) m(t) − ηα⟨g(t) h*ᵀ⟩.
            var next = (1 - eta * ridge) * m[t]
            for j in 0..<p { for r in 0..<k { next[j, r] -= eta * alpha * weight * gh[j * k + r] } }
            m.append(next)

            // Pass B: h(t+1), v(t+1).
            start = 0
            let decay = 1 - eta * ridge
            while start < rows {
                let count = min(blockSize, rows - start)
                let hBlock = h + start * Hp, vBlock = v + start * Hp, gBlock = g + start * Tp
                let omega = scratch
                // ω = Z_{[0..t]} L_{t,[0..t]}ᵀ
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(count), Int32(p), Int32(width), 1,
                            z + start * Tp, Int32(Tp), noiseFactor.values, Int32(Tp), 0, omega, Int32(p))
                for i in 0..<count {
                    let hr = hBlock + i * Hp, vr = vBlock + i * Hp, gr = gBlock + i * Tp, o = omega + i * p
                    for j in 0..<p {
                        hr[(t + 1) * p + j] = decay * hr[t * p + j] - eta * gr[t * p + j] + eta * o[j]
                        vr[(t + 1) * p + j] = decay * vr[t * p + j] + eta * o[j]
                    }
                }
                // − η Σ_{s≤t} Γ(t, s) h(s), and the same for v.
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(count), Int32(p), Int32(width), -eta,
                            hBlock, Int32(Hp), gamma.values, Int32(Hp), 1, hBlock + (t + 1) * p, Int32(Hp))
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(count), Int32(p), Int32(width), -eta,
                            vBlock, Int32(Hp), gamma.values, Int32(Hp), 1, vBlock + (t + 1) * p, Int32(Hp))
                start += count
            }
        }
    }

    /// Extends the block factor L (L Lᵀ = C on the first t block rows) by block row t. Off-diagonal
    /// blocks: L_{t,s} = (C(t,s) − Σ_{r<s} L_{t,r} L_{s,r}ᵀ)(L_{s,s}ᵀ)⁺; the diagonal block is the
    /// symmetric square root of the Schur complement with eigenvalues clipped at 1e-12·scale. With
    /// `causalNoise` false (the negative control) the off-diagonal blocks are dropped: the noise keeps
    /// its variance at each step but loses its time correlations, as if z were redrawn every step.
    func extendFactor(_ L: inout Matrix, _ diagonalInverse: inout [Matrix], C: Matrix, t: Int) {
        let p = self.p
        var schur = Matrix(rows: p, cols: p)
        for j in 0..<p { for l in 0..<p { schur[j, l] = C[t * p + j, t * p + l] } }
        if causalNoise {
            for s in 0..<t {
                var block = Matrix(rows: p, cols: p)
                for j in 0..<p { for l in 0..<p {
                    var x = C[t * p + j, s * p + l]
                    for c in 0..<(s * p) { x -= L[t * p + j, c] * L[s * p + l, c] }
                    block[j, l] = x
                } }
                let Lts = block * diagonalInverse[s]
                for j in 0..<p { for l in 0..<p { L[t * p + j, s * p + l] = Lts[j, l] } }
            }
            for j in 0..<p { for l in 0..<p {
                for c in 0..<(t * p) { schur[j, l] -= L[t * p + j, c] * L[t * p + l, c] }
            } }
        }
        let (values, vectors) = GSL.symmetricEigen(schur, sorted: false)
        let floor = 1e-12 * max(1, (0..<p).map { abs(C[t * p + $0, t * p + $0]) }.max()!)
        var root = Matrix(rows: p, cols: p), inverse = Matrix(rows: p, cols: p)
        for e in 0..<p where values[e] > floor {
            let s = values[e].squareRoot()
            for i in 0..<p { for j in 0..<p {
                root[i, j] += vectors[i, e] * s * vectors[j, e]
                inverse[i, j] += vectors[i, e] / s * vectors[j, e]
            } }
        }
        for j in 0..<p { for l in 0..<p { L[t * p + j, t * p + l] = root[j, l] } }
        diagonalInverse.append(inverse)   // root is symmetric: (rootᵀ)⁺ = root⁺
    }

    /// The upper-triangular R (cols × cols) of the Householder QR of `scale` × the rows × cols block at
    /// `data` (row-major, leading dimension `ld`); rows ≥ cols.
    static func triangularFactor(_ data: UnsafePointer<Double>, rows: Int, cols: Int, ld: Int, scale: Double) -> Matrix {
        _ = GSL.ready
        let a = gsl_matrix_alloc(rows, cols)!, tau = gsl_vector_alloc(cols)!
        defer { gsl_matrix_free(a); gsl_vector_free(tau) }
        for i in 0..<rows { for c in 0..<cols { gsl_matrix_set(a, i, c, scale * data[i * ld + c]) } }
        gsl_linalg_QR_decomp(a, tau)
        var R = Matrix(rows: cols, cols: cols)
        for i in 0..<cols { for c in i..<cols { R[i, c] = gsl_matrix_get(a, i, c) } }
        return R
    }

    /// X (cols × p) minimising ‖A X − B‖ for the rows × cols block A and rows × p block B (row-major,
    /// leading dimensions ldA, ldB), by GSL's one-sided Jacobi SVD of A: singular values below
    /// `cutoff` × the largest are treated as zero (minimum-norm solution). rows ≥ cols.
    static func leastSquares(_ A: UnsafePointer<Double>, _ B: UnsafePointer<Double>, rows: Int, cols: Int, ldA: Int, ldB: Int,
                             p: Int, cutoff: Double) -> Matrix {
        _ = GSL.ready
        let u = gsl_matrix_alloc(rows, cols)!, vt = gsl_matrix_alloc(cols, cols)!, sv = gsl_vector_alloc(cols)!
        defer { gsl_matrix_free(u); gsl_matrix_free(vt); gsl_vector_free(sv) }
        for i in 0..<rows { for c in 0..<cols { gsl_matrix_set(u, i, c, A[i * ldA + c]) } }
        gsl_linalg_SV_decomp_jacobi(u, vt, sv)
        let largest = (0..<cols).map { gsl_vector_get(sv, $0) }.max() ?? 0
        var X = Matrix(rows: cols, cols: p)
        for e in 0..<cols {
            let sigma = gsl_vector_get(sv, e)
            guard sigma > cutoff * largest, sigma > 0 else { continue }
            for j in 0..<p {
                var coefficient = 0.0   // (uₑᵀ B_j) / σₑ
                for i in 0..<rows { coefficient += gsl_matrix_get(u, i, e) * B[i * ldB + j] }
                coefficient /= sigma
                for c in 0..<cols { X[c, j] += gsl_matrix_get(vt, c, e) * coefficient }
            }
        }
        return X
    }
}
