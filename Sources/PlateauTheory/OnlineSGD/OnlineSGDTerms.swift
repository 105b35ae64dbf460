import Foundation
import PlateauCore
internal import CGSL

/// Scratch for evaluating the online-SGD terms without allocating: Ω, a, Ψ, Φ, Ξ, E[σD] and the
/// pieces the erf closed forms share between entries, in one block allocated once per integration
/// (or map run). One evaluation at a time: each integration owns its workspace.
final class OnlineSGDWorkspace {
    let p: Int, k: Int, n: Int
    /// Ω = [[Q, M], [Mᵀ, P]], row-major n×n (n = p + k), and the second layer a.
    let omega: UnsafeMutablePointer<Double>
    let a: UnsafeMutablePointer<Double>
    /// Ψ (p×k), Φ (p×p), Ξ (p×p), E[σ(λ_j) D] (p), row-major.
    let psi: UnsafeMutablePointer<Double>
    let phi: UnsafeMutablePointer<Double>
    let xi: UnsafeMutablePointer<Double>
    let drift: UnsafeMutablePointer<Double>
    /// erf: E[σ'(λ_j)] per j, and E'[σ'(u_m)] after the tilt by σ'(λ_j) per (j, m) (Stein terms).
    let slope: UnsafeMutablePointer<Double>
    let tiltedSlope: UnsafeMutablePointer<Double>
    /// erf quartic at one pair (j, l), per field m: Λ₁ and C_jl·C_jm.
    let norm: UnsafeMutablePointer<Double>
    let product: UnsafeMutablePointer<Double>
    /// erf: every Stein term E[σ'(λ_j) u₂ σ(u₃)] ([j][u₂][u₃], p·n·n) and every quartic
    /// E[σ'(λ_j)σ'(λ_l)σ(u₃)σ(u₄)] ([pair j ≤ l][field pair u₃ ≤ u₄, packed], p(p+1)/2 · n(n+1)/2).
    let steinTable: UnsafeMutablePointer<Double>
    let quarticTable: UnsafeMutablePointer<Double>
    /// The number of field pairs n(n+1)/2 (the stride of `quarticTable`).
    let fieldPairs: Int
    /// The weight of each field in D (b_q for teacher q; a_m for student m under the square loss, else 0).
    let fieldWeight: UnsafeMutablePointer<Double>
    /// Running sums of Ψ and Φ ([j][u₂], p·n) and of Ξ (per pair j ≤ l).
    let steinSums: UnsafeMutablePointer<Double>
    let pairSums: UnsafeMutablePointer<Double>
    /// erf: Ω's diagonal (n), and Λ₁Λ₂ of every quartic (laid out as `quarticTable`).
    let diagonal: UnsafeMutablePointer<Double>
    let quarticNorms: UnsafeMutablePointer<Double>
    /// Wick moments, functional values; Ω's Cholesky factor for the cone check.
    let moments: UnsafeMutablePointer<Double>
    let functionals: UnsafeMutablePointer<Double>
    let factor: UnsafeMutablePointer<Double>
    private let storage: UnsafeMutablePointer<Double>

    init(p: Int, k: Int, moments momentCount: Int = 0, functionals functionalCount: Int = 0) {
        self.p = p
        self.k = k
        n = p + k
        fieldPairs = n * (n + 1) / 2
        let sizes = [n * n, p, p * k, p * p, p * p, p, p, p * n, n, n, momentCount, functionalCount, n * n,
                     p * n * n, p * (p + 1) / 2 * fieldPairs, n, p * n, p * (p + 1) / 2, n, p * (p + 1) / 2 * fieldPairs]
        storage = .allocate(capacity: sizes.reduce(0, +))
        storage.initialize(repeating: 0, count: sizes.reduce(0, +))
        var offsets: [UnsafeMutablePointer<Double>] = []
        var next = storage
        for s in sizes { offsets.append(next); next += s }
        (omega, a, psi, phi, xi, drift, slope, tiltedSlope) = (offsets[0], offsets[1], offsets[2], offsets[3], offsets[4], offsets[5], offsets[6], offsets[7])
        (norm, product, moments, functionals, factor) = (offsets[8], offsets[9], offsets[10], offsets[11], offsets[12])
        (steinTable, quarticTable, fieldWeight, steinSums, pairSums) = (offsets[13], offsets[14], offsets[15], offsets[16], offsets[17])
        (diagonal, quarticNorms) = (offsets[18], offsets[19])
    }

    deinit { storage.deallocate() }

    /// Ω and a from overlaps.
    func load(_ o: Overlaps) {
        let q = o.jointCovariance
        for i in 0..<(n * n) { omega[i] = q.values[i] }
        for j in 0..<p { a[j] = o.a[j] }
    }

    /// The overlaps held (M, Q, P from Ω; a).
    var overlaps: Overlaps {
        var M = Matrix(rows: p, cols: k), Q = Matrix(rows: p, cols: p), P = Matrix(rows: k, cols: k)
        for j in 0..<p {
            for r in 0..<k { M[j, r] = omega[j * n + p + r] }
            for l in 0..<p { Q[j, l] = omega[j * n + l] }
        }
        for r in 0..<k { for s in 0..<k { P[r, s] = omega[(p + r) * n + p + s] } }
        return Overlaps(M: M, Q: Q, P: P, a: (0..<p).map { a[$0] })
    }

    var terms: PopulationTerms {
        var t = PopulationTerms(p: p, k: k)
        for i in 0..<(p * k) { t.psi.values[i] = psi[i] }
        for i in 0..<(p * p) { t.phi.values[i] = phi[i]; t.xi.values[i] = xi[i] }
        for j in 0..<p { t.aDrift[j] = drift[j] }
        return t
    }

    /// Whether Ω is finite and positive semi-definite to `tolerance` (`Matrix.choleskyPSD`), without allocating.
    func omegaIsPSD(tolerance: Double) -> Bool {
        for i in 0..<(n * n) {
            guard omega[i].isFinite else { return false }
            factor[i] = omega[i]
        }
        return Matrix.choleskyPSDInPlace(factor, n, tolerance: tolerance)
    }
}

/// How the terms of the closed-form route are computed: every distinct Stein term and quartic once
/// per evaluation, into the workspace's tables. `PerTermExpectations` calls `GaussianExpectations`
/// once per term (any closed-form activations; the reference), `SharedErfTerms` computes the erf
/// closed forms from pieces shared between terms (the same arithmetic, so the same bits).
protocol ClosedFormTermSource {
    /// Fills `steinTable` with E[σ'(λ_j) u₂ f(u₃)] ([j][u₂][u₃]; f the teacher's activation when
    /// u₃ ≥ p) and, when `quartics`, `quarticTable` with E[σ'(λ_j)σ'(λ_l) f(u₃) g(u₄)] ([pair j ≤ l]
    /// [field pair x ≤ y, packed], oriented (u₃, u₄) = (teacher, student) for mixed pairs, else (x, y)),
    /// at least where the field weights (`fieldWeight`) and a_j a_l are non-zero.
    func fill(_ w: OnlineSGDWorkspace, quartics: Bool)
}

extension OnlineSGDWorkspace {
    /// The index in `quarticTable` of field pair x ≤ y within pair `pair`.
    @inline(__always) func quarticIndex(pair: Int, _ x: Int, _ y: Int) -> Int {
        pair * fieldPairs + x * n - x * (x - 1) / 2 + (y - x)
    }

    /// The orientation (u₃, u₄) of field pair x ≤ y in the quartic table.
    @inline(__always) func oriented(_ x: Int, _ y: Int) -> (Int, Int) { x < p && y >= p ? (y, x) : (x, y) }
}

struct PerTermExpectations: ClosedFormTermSource {
    let expectations: GaussianExpectations
    let student: Activation, teacher: Activation

    func fill(_ w: OnlineSGDWorkspace, quartics: Bool) {
        let p = w.p, n = w.n, weight = w.fieldWeight
        let omega = UnsafeBufferPointer(start: w.omega, count: n * n)
        func activation(_ u: Int) -> Activation { u < p ? student : teacher }
        for j in 0..<p { for u2 in 0..<n { for u3 in 0..<n where weight[u3] != 0 {
            w.steinTable[(j * n + u2) * n + u3] = expectations.stein(student, activation(u3), FieldCovariance(omega, n, j, u2, u3))
        } } }
        guard quartics else { return }
        var pair = 0
        for j in 0..<p { for l in j..<p {
            defer { pair += 1 }
            guard w.a[j] != 0 && w.a[l] != 0 else { continue }
            for x in 0..<n { for y in x..<n where weight[x] != 0 && weight[y] != 0 {
                let (u3, u4) = w.oriented(x, y)
                w.quarticTable[w.quarticIndex(pair: pair, x, y)] =
                    expectations.quartic(student, activation(u3), activation(u4), FieldCovariance(omega, n, j, l, u3, u4))
            } }
        } }
    }
}

/// Student and teacher both erf: E[σ'(λ_j)] and the tilted slopes per (j, m) serve every Stein term,
/// (4/π²)Λ₄^{-1/2} per pair (j, l) and Λ₁, C_jl C_jm per (j, l, m) serve every quartic. The rest runs
/// in flat passes over all entries: the polynomial parts, then the square roots and divisions (which
/// the compiler vectorises), then the arcsines. Same arithmetic as `GaussianExpectations`, so the same
/// bits. Entries of zero weight are computed too (and not used).
struct SharedErfTerms: ClosedFormTermSource {
    func fill(_ w: OnlineSGDWorkspace, quartics: Bool) {
        let p = w.p, n = w.n, omega = w.omega, diagonal = w.diagonal
        for m in 0..<n { diagonal[m] = omega[m * n + m] }
        for j in 0..<p {
            let cjj = diagonal[j], row = omega + j * n, tilted = w.tiltedSlope + j * n
            w.slope[j] = GaussianExpectations.meanSlope(.erf, cjj)
            for m in 0..<n {
                tilted[m] = GaussianExpectations.meanSlope(.erf, GaussianExpectations.erfTilted(diagonal[m], row[m], row[m], cjj))
            }
        }
        for j in 0..<p {
            let cjj = diagonal[j], sj = w.slope[j], row = omega + j * n, tilted = w.tiltedSlope + j * n
            for u2 in 0..<n {
                let out = w.steinTable + (j * n + u2) * n, cju2 = row[u2], row2 = omega + u2 * n
                for u3 in 0..<n { out[u3] = sj * GaussianExpectations.erfTilted(row2[u3], cju2, row[u3], cjj) * tilted[u3] }
            }
        }
        guard quartics else { return }
        // Λ₀ and Λ₁Λ₂ of every field pair, in the table's orientation.
        let pairs = p * (p + 1) / 2, norm = w.norm, product = w.product
        var pair = 0
        for j in 0..<p { for l in j..<p {
            let c11 = diagonal[j], c22 = diagonal[l], c12 = omega[j * n + l]
            let l4 = GaussianExpectations.erfQuarticDeterminant(c11, c12, c22)
            let rowJ = omega + j * n, rowL = omega + l * n
            for m in 0..<n {
                norm[m] = GaussianExpectations.erfQuarticNorm(l4, c11, c12, c22, rowJ[m], rowL[m], diagonal[m])
                product[m] = c12 * rowJ[m]
            }
            // Contiguous in y (Ω_xy = Ω_yx in the mixed block, which is M), so the compiler vectorises.
            let cross = w.quarticTable + pair * w.fieldPairs, norms = w.quarticNorms + pair * w.fieldPairs
            var idx = 0
            for x in 0..<n {
                let c = cross + idx - x, d = norms + idx - x, rowX = omega + x * n
                let (jx, lx, px, nx) = (rowJ[x], rowL[x], product[x], norm[x])
                if x < p {
                    for y in x..<p {
                        c[y] = GaussianExpectations.erfQuarticCross(l4, c11, c22, jx, lx, rowJ[y], rowL[y], rowX[y], px, product[y])
                        d[y] = nx * norm[y]
                    }
                    for y in p..<n {
                        c[y] = GaussianExpectations.erfQuarticCross(l4, c11, c22, rowJ[y], rowL[y], jx, lx, rowX[y], product[y], px)
                        d[y] = norm[y] * nx
                    }
                } else {
                    for y in x..<n {
                        c[y] = GaussianExpectations.erfQuarticCross(l4, c11, c22, jx, lx, rowJ[y], rowL[y], rowX[y], px, product[y])
                        d[y] = nx * norm[y]
                    }
                }
                idx += n - x
            }
            pair += 1
        } }
        // The arcsines' arguments Λ₀/√(Λ₁Λ₂), then (4/π²)Λ₄^{-1/2} asin(…).
        let table = w.quarticTable, norms = w.quarticNorms
        plateau_divide_by_square_root(table, norms, pairs * w.fieldPairs)
        pair = 0
        for j in 0..<p { for l in j..<p {
            let weight = GaussianExpectations.erfQuarticWeight(GaussianExpectations.erfQuarticDeterminant(diagonal[j], omega[j * n + l], diagonal[l]))
            let row = table + pair * w.fieldPairs
            for i in 0..<w.fieldPairs { row[i] = weight * asin(row[i]) }
            pair += 1
        } }
    }
}

extension OnlineSGDTheory {
    /// A workspace sized for this theory.
    func makeWorkspace() -> OnlineSGDWorkspace {
        let w = OnlineSGDWorkspace(p: p, k: k, moments: wick?.momentCount ?? 0, functionals: wick?.functionalCount ?? 0)
        let P = experiment.teacher.covariance, n = p + k
        for r in 0..<k { for s in 0..<k { w.omega[(p + r) * n + p + s] = P[r, s] } }
        for j in 0..<p { w.a[j] = experiment.student.secondLayer[j] }
        return w
    }

    /// Ω (and a, when trained) from the state vector (layout of `state(of:)`); P and a fixed second
    /// layer stay as `makeWorkspace` set them.
    func load(state y: UnsafeBufferPointer<Double>, into w: OnlineSGDWorkspace) {
        let p = self.p, k = self.k, n = p + k, omega = w.omega
        for j in 0..<p { for r in 0..<k {
            let v = y[j * k + r]
            omega[j * n + p + r] = v
            omega[(p + r) * n + j] = v
        } }
        var idx = p * k
        for j in 0..<p { for l in j..<p {
            omega[j * n + l] = y[idx]
            omega[l * n + j] = y[idx]
            idx += 1
        } }
        if trainsA { for j in 0..<p { w.a[j] = y[idx + j] } }
    }

    /// Ψ, Φ, Ξ (zero on the population flow) and E[σ(λ_j) D] at the Ω and a held by `w`, into `w`.
    func evaluateTerms(_ w: OnlineSGDWorkspace) {
        if let wick {
            wick.evaluate(w, includeXi: !populationFlow)
        } else if let cubature {
            let t = cubature.terms(w.overlaps, includeXi: !populationFlow)
            for i in 0..<(p * k) { w.psi[i] = t.psi.values[i] }
            for i in 0..<(p * p) { w.phi[i] = t.phi.values[i]; w.xi[i] = t.xi.values[i] }
            for j in 0..<p { w.drift[j] = t.aDrift[j] }
        } else if sharesErfTerms {
            closedFormTerms(w, SharedErfTerms())
        } else {
            closedFormTerms(w, PerTermExpectations(expectations: expectations, student: sigma, teacher: teacherActivation))
        }
    }

    /// The closed-form route (EQUATIONS.md §1.1, square or correlation loss):
    ///     Ψ_jr = Σ_q b_q E[σ'(λ_j) ν_r σ*(ν_q)] − Σ_m a_m E[σ'(λ_j) ν_r σ(λ_m)],  Φ_jl likewise with λ_l,
    ///     Ξ_jl = E[σ'σ' g²] − 2E[σ'σ' g f] + E[σ'σ' f²] + Δ E[σ'σ'] (square), E[σ'σ' g²] + Δ E[σ'σ'] (correlation),
    /// symmetric pairs of Ξ summed once; terms whose weight is zero are skipped. The source fills
    /// the tables of distinct terms; the sums then run over all entries at once (each entry's terms
    /// in the order above, so every entry is one chain of additions and the entries overlap).
    func closedFormTerms<Source: ClosedFormTermSource>(_ w: OnlineSGDWorkspace, _ source: Source) {
        let p = self.p, k = self.k, n = p + k
        let square = experiment.training.loss == .square
        let delta = experiment.teacher.noiseVariance
        let a = w.a, weight = w.fieldWeight
        experiment.teacher.weights.withUnsafeBufferPointer { b in
            for m in 0..<p { weight[m] = square ? a[m] : 0 }
            for q in 0..<k { weight[p + q] = b[q] }
            source.fill(w, quartics: !populationFlow)
            // Ψ_jr at [j][p + r], Φ_jl at [j][l]: + b_q (teachers), then − a_m (students).
            let entries = p * n, sums = w.steinSums, table = w.steinTable
            for e in 0..<entries { sums[e] = 0 }
            for q in 0..<k where b[q] != 0 {
                let c = b[q]
                for e in 0..<entries { sums[e] += c * table[e * n + p + q] }
            }
            if square {
                for m in 0..<p where a[m] != 0 {
                    let c = a[m]
                    for e in 0..<entries { sums[e] -= c * table[e * n + m] }
                }
            }
            for j in 0..<p {
                for r in 0..<k { w.psi[j * k + r] = sums[j * n + p + r] }
                for l in 0..<p { w.phi[j * p + l] = sums[j * n + l] }
            }
            if trainsA { driftPerTerm(w, b, square: square) }
            for i in 0..<(p * p) { w.xi[i] = 0 }
            guard !populationFlow else { return }
            let pairs = p * (p + 1) / 2, xi = w.pairSums, quartic = w.quarticTable, stride = w.fieldPairs
            for i in 0..<pairs { xi[i] = 0 }
            @inline(__always) func add(_ c: Double, _ x: Int, _ y: Int) {
                let offset = w.quarticIndex(pair: 0, x, y)
                for i in 0..<pairs { xi[i] += c * quartic[i * stride + offset] }
            }
            @inline(__always) func subtract(_ c: Double, _ x: Int, _ y: Int) {
                let offset = w.quarticIndex(pair: 0, x, y)
                for i in 0..<pairs { xi[i] -= c * quartic[i * stride + offset] }
            }
            for q in 0..<k where b[q] != 0 {
                for r in q..<k where b[r] != 0 { add((q == r ? 1 : 2) * b[q] * b[r], p + q, p + r) }
            }
            if square {
                for q in 0..<k where b[q] != 0 {
                    for m in 0..<p where a[m] != 0 { subtract(2 * b[q] * a[m], m, p + q) }
                }
                for m in 0..<p where a[m] != 0 {
                    for s in m..<p where a[s] != 0 { add((m == s ? 1 : 2) * a[m] * a[s], m, s) }
                }
            }
            let omega = UnsafeBufferPointer(start: w.omega, count: n * n)
            var pair = 0
            for j in 0..<p { for l in j..<p {
                defer { pair += 1 }
                guard a[j] != 0 && a[l] != 0 else { continue }
                var v = xi[pair]
                if delta != 0 { v += delta * expectations.slopePair(sigma, sigma, FieldCovariance(omega, n, j, l)) }
                w.xi[j * p + l] = v
                w.xi[l * p + j] = v
            } }
        }
    }

    /// E[σ(λ_j) D] = Σ_q b_q E[σ(λ_j) σ*(ν_q)] − Σ_m a_m E[σ(λ_j) σ(λ_m)] (the latter for the square loss only).
    private func driftPerTerm(_ w: OnlineSGDWorkspace, _ b: UnsafeBufferPointer<Double>, square: Bool) {
        let p = self.p, k = self.k, n = p + k, s = sigma, t = teacherActivation, E = expectations, a = w.a
        let omega = UnsafeBufferPointer(start: w.omega, count: n * n)
        for j in 0..<p {
            var v = 0.0
            for q in 0..<k where b[q] != 0 { v += b[q] * E.pair(s, t, FieldCovariance(omega, n, j, p + q)) }
            if square { for m in 0..<p where a[m] != 0 { v -= a[m] * E.pair(s, s, FieldCovariance(omega, n, j, m)) } }
            w.drift[j] = v
        }
    }

    /// dM/dt, dQ/dt (upper triangle) and da/dt (when trained) in the state layout, from the terms in
    /// `w` and the M, Q of its Ω (EQUATIONS.md §1.1, with weight decay and the spherical constraint §1.3).
    func writeRates(_ w: OnlineSGDWorkspace, into f: UnsafeMutableBufferPointer<Double>) {
        let p = self.p, k = self.k, n = p + k, omega = w.omega, a = w.a
        let eta = experiment.training.learningRate, kappa = experiment.training.weightDecay
        let nb = Double(experiment.training.batchSize)
        for j in 0..<p { for r in 0..<k {
            f[j * k + r] = eta * a[j] * w.psi[j * k + r] - eta * kappa * omega[j * n + p + r]
        } }
        var idx = p * k
        for j in 0..<p { for l in j..<p {
            var v = eta * (a[j] * w.phi[j * p + l] + a[l] * w.phi[l * p + j]) - 2 * eta * kappa * omega[j * n + l]
            if !populationFlow { v += eta * eta / nb * a[j] * a[l] * w.xi[j * p + l] }
            f[idx] = v
            idx += 1
        } }
        if experiment.student.spherical {
            // Renormalising every row to its current norm (EQUATIONS.md §1.3, continuum limit):
            // dM_jr −= M_jr dQ_jj / (2Q_jj), dQ_jl −= Q_jl (dQ_jj/Q_jj + dQ_ll/Q_ll)/2, so dQ_jj = 0.
            // rate_j = dQ_jj/Q_jj is kept in `norm` (free outside the quartics).
            let rate = w.norm
            var diagonal = p * k
            for j in 0..<p {
                rate[j] = f[diagonal] / omega[j * n + j]
                diagonal += p - j
            }
            for j in 0..<p { for r in 0..<k { f[j * k + r] -= 0.5 * omega[j * n + p + r] * rate[j] } }
            idx = p * k
            for j in 0..<p { for l in j..<p {
                f[idx] -= 0.5 * omega[j * n + l] * (rate[j] + rate[l])
                idx += 1
            } }
        }
        if trainsA {
            let etaA = experiment.student.secondLayerLearningRate
            for j in 0..<p { f[idx + j] = etaA * w.drift[j] }
        }
    }
}
