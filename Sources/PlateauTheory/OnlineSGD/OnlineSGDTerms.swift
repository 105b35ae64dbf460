import Foundation
import PlateauCore

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
    /// Wick moments, functional values; Ω's Cholesky factor for the cone check.
    let moments: UnsafeMutablePointer<Double>
    let functionals: UnsafeMutablePointer<Double>
    let factor: UnsafeMutablePointer<Double>
    private let storage: UnsafeMutablePointer<Double>

    init(p: Int, k: Int, moments momentCount: Int = 0, functionals functionalCount: Int = 0) {
        self.p = p
        self.k = k
        n = p + k
        let sizes = [n * n, p, p * k, p * p, p * p, p, p, p * n, n, n, momentCount, functionalCount, n * n]
        storage = .allocate(capacity: sizes.reduce(0, +))
        storage.initialize(repeating: 0, count: sizes.reduce(0, +))
        var offsets: [UnsafeMutablePointer<Double>] = []
        var next = storage
        for s in sizes { offsets.append(next); next += s }
        (omega, a, psi, phi, xi, drift, slope, tiltedSlope) = (offsets[0], offsets[1], offsets[2], offsets[3], offsets[4], offsets[5], offsets[6], offsets[7])
        (norm, product, moments, functionals, factor) = (offsets[8], offsets[9], offsets[10], offsets[11], offsets[12])
    }

    deinit { storage.deallocate() }

    /// Ω and a from overlaps.
    func load(_ o: Overlaps) {
        let q = o.jointCovariance
        for i in 0..<(n * n) { omega[i] = q.values[i] }
        for j in 0..<p { a[j] = o.a[j] }
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

/// How one term of the closed-form route is computed: `PerTermExpectations` calls
/// `GaussianExpectations` once per term (any closed-form activations; the reference), `SharedErfTerms`
/// computes the erf closed forms from pieces shared between terms (the same arithmetic, once).
protocol ClosedFormTermSource {
    /// Called once per evaluation, after Ω is loaded.
    mutating func prepare(_ w: OnlineSGDWorkspace)
    /// E[σ'(λ_j) u₂ f(u₃)] with f the teacher's activation when u₃ is a teacher field (u₃ ≥ p).
    func stein(_ w: OnlineSGDWorkspace, _ j: Int, _ u2: Int, _ u3: Int) -> Double
    /// Called before the quartics of the pair (j, l).
    mutating func preparePair(_ w: OnlineSGDWorkspace, _ j: Int, _ l: Int)
    /// E[σ'(λ_j)σ'(λ_l) f(u₃) g(u₄)] at the pair of the last `preparePair`.
    func quartic(_ w: OnlineSGDWorkspace, _ u3: Int, _ u4: Int) -> Double
}

struct PerTermExpectations: ClosedFormTermSource {
    let expectations: GaussianExpectations
    let student: Activation, teacher: Activation
    var pair = (0, 0)

    func activation(_ w: OnlineSGDWorkspace, _ u: Int) -> Activation { u < w.p ? student : teacher }

    mutating func prepare(_ w: OnlineSGDWorkspace) {}

    func stein(_ w: OnlineSGDWorkspace, _ j: Int, _ u2: Int, _ u3: Int) -> Double {
        expectations.stein(student, activation(w, u3), FieldCovariance(UnsafeBufferPointer(start: w.omega, count: w.n * w.n), w.n, j, u2, u3))
    }

    mutating func preparePair(_ w: OnlineSGDWorkspace, _ j: Int, _ l: Int) { pair = (j, l) }

    func quartic(_ w: OnlineSGDWorkspace, _ u3: Int, _ u4: Int) -> Double {
        expectations.quartic(student, activation(w, u3), activation(w, u4),
                             FieldCovariance(UnsafeBufferPointer(start: w.omega, count: w.n * w.n), w.n, pair.0, pair.1, u3, u4))
    }
}

/// Student and teacher both erf: E[σ'(λ_j)] and the tilted slopes per (j, m) serve every Stein term,
/// (4/π²)Λ₄^{-1/2} per pair (j, l) and Λ₁, C_jl C_jm per (j, l, m) serve every quartic; what is left
/// per quartic is Λ₀, one square root and the arcsine. Same arithmetic as `GaussianExpectations`.
struct SharedErfTerms: ClosedFormTermSource {
    var pair = (0, 0)
    var weight = 0.0, l4 = 0.0, c11 = 0.0, c22 = 0.0

    func prepare(_ w: OnlineSGDWorkspace) {
        let n = w.n, omega = w.omega
        for j in 0..<w.p {
            let cjj = omega[j * n + j]
            w.slope[j] = GaussianExpectations.meanSlope(.erf, cjj)
            for m in 0..<n {
                let cjm = omega[j * n + m]
                w.tiltedSlope[j * n + m] = GaussianExpectations.meanSlope(.erf, GaussianExpectations.erfTilted(omega[m * n + m], cjm, cjm, cjj))
            }
        }
    }

    @inline(__always) func stein(_ w: OnlineSGDWorkspace, _ j: Int, _ u2: Int, _ u3: Int) -> Double {
        let n = w.n, omega = w.omega
        let tilted23 = GaussianExpectations.erfTilted(omega[u2 * n + u3], omega[j * n + u2], omega[j * n + u3], omega[j * n + j])
        return w.slope[j] * tilted23 * w.tiltedSlope[j * n + u3]
    }

    mutating func preparePair(_ w: OnlineSGDWorkspace, _ j: Int, _ l: Int) {
        let n = w.n, omega = w.omega
        pair = (j, l)
        c11 = omega[j * n + j]
        c22 = omega[l * n + l]
        let c12 = omega[j * n + l]
        l4 = GaussianExpectations.erfQuarticDeterminant(c11, c12, c22)
        weight = GaussianExpectations.erfQuarticWeight(l4)
        for m in 0..<n {
            let c1m = omega[j * n + m]
            w.norm[m] = GaussianExpectations.erfQuarticNorm(l4, c11, c12, c22, c1m, omega[l * n + m], omega[m * n + m])
            w.product[m] = c12 * c1m
        }
    }

    @inline(__always) func quartic(_ w: OnlineSGDWorkspace, _ u3: Int, _ u4: Int) -> Double {
        let n = w.n, omega = w.omega, (j, l) = pair
        let l0 = GaussianExpectations.erfQuarticCross(l4, c11, c22, omega[j * n + u3], omega[l * n + u3], omega[j * n + u4],
                                                      omega[l * n + u4], omega[u3 * n + u4], w.product[u3], w.product[u4])
        return weight * asin(l0 / (w.norm[u3] * w.norm[u4]).squareRoot())
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
            let n = p + k
            var M = Matrix(rows: p, cols: k), Q = Matrix(rows: p, cols: p), P = Matrix(rows: k, cols: k)
            for j in 0..<p {
                for r in 0..<k { M[j, r] = w.omega[j * n + p + r] }
                for l in 0..<p { Q[j, l] = w.omega[j * n + l] }
            }
            for r in 0..<k { for s in 0..<k { P[r, s] = w.omega[(p + r) * n + p + s] } }
            let o = Overlaps(M: M, Q: Q, P: P, a: (0..<p).map { w.a[$0] })
            let t = cubature.terms(o, includeXi: !populationFlow)
            for i in 0..<(p * k) { w.psi[i] = t.psi.values[i] }
            for i in 0..<(p * p) { w.phi[i] = t.phi.values[i]; w.xi[i] = t.xi.values[i] }
            for j in 0..<p { w.drift[j] = t.aDrift[j] }
        } else if sharesErfTerms {
            var source = SharedErfTerms()
            closedFormTerms(w, &source)
        } else {
            var source = PerTermExpectations(expectations: expectations, student: sigma, teacher: teacherActivation)
            closedFormTerms(w, &source)
        }
    }

    /// The closed-form route (EQUATIONS.md §1.1, square or correlation loss):
    ///     Ψ_jr = Σ_q b_q E[σ'(λ_j) ν_r σ*(ν_q)] − Σ_m a_m E[σ'(λ_j) ν_r σ(λ_m)],  Φ_jl likewise with λ_l,
    ///     Ξ_jl = E[σ'σ' g²] − 2E[σ'σ' g f] + E[σ'σ' f²] + Δ E[σ'σ'] (square), E[σ'σ' g²] + Δ E[σ'σ'] (correlation),
    /// symmetric pairs of Ξ summed once; terms whose weight is zero are skipped.
    func closedFormTerms<Source: ClosedFormTermSource>(_ w: OnlineSGDWorkspace, _ source: inout Source) {
        let p = self.p, k = self.k, n = p + k
        let square = experiment.training.loss == .square
        let delta = experiment.teacher.noiseVariance
        let a = w.a
        experiment.teacher.weights.withUnsafeBufferPointer { b in
            source.prepare(w)
            for j in 0..<p {
                for r in 0..<k {
                    var v = 0.0
                    for q in 0..<k where b[q] != 0 { v += b[q] * source.stein(w, j, p + r, p + q) }
                    if square { for m in 0..<p where a[m] != 0 { v -= a[m] * source.stein(w, j, p + r, m) } }
                    w.psi[j * k + r] = v
                }
                for l in 0..<p {
                    var v = 0.0
                    for q in 0..<k where b[q] != 0 { v += b[q] * source.stein(w, j, l, p + q) }
                    if square { for m in 0..<p where a[m] != 0 { v -= a[m] * source.stein(w, j, l, m) } }
                    w.phi[j * p + l] = v
                }
            }
            if trainsA { driftPerTerm(w, b, square: square) }
            for i in 0..<(p * p) { w.xi[i] = 0 }
            guard !populationFlow else { return }
            let omega = UnsafeBufferPointer(start: w.omega, count: n * n)
            for j in 0..<p { for l in j..<p where a[j] != 0 && a[l] != 0 {
                source.preparePair(w, j, l)
                var v = 0.0
                for q in 0..<k where b[q] != 0 {
                    for r in q..<k where b[r] != 0 {
                        v += (q == r ? 1 : 2) * b[q] * b[r] * source.quartic(w, p + q, p + r)
                    }
                }
                if square {
                    for q in 0..<k where b[q] != 0 {
                        for m in 0..<p where a[m] != 0 { v -= 2 * b[q] * a[m] * source.quartic(w, p + q, m) }
                    }
                    for m in 0..<p where a[m] != 0 {
                        for s in m..<p where a[s] != 0 { v += (m == s ? 1 : 2) * a[m] * a[s] * source.quartic(w, m, s) }
                    }
                }
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
