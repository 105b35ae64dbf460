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
    /// Free scratch of n entries (`writeRates` and the map's spherical step keep per-unit factors here).
    let norm: UnsafeMutablePointer<Double>
    /// Per-term route: every Stein term E[σ'(λ_j) u₂ σ(u₃)] ([j][u₂][u₃], p·n·n) and every quartic
    /// E[σ'(λ_j)σ'(λ_l)σ(u₃)σ(u₄)] ([pair j ≤ l][field pair u₃ ≤ u₄, packed], p(p+1)/2 · n(n+1)/2).
    /// The shared erf route keeps the quartics' arcsine arguments in `quarticTable`.
    let steinTable: UnsafeMutablePointer<Double>
    let quarticTable: UnsafeMutablePointer<Double>
    /// The number of field pairs n(n+1)/2 (the stride of `quarticTable`).
    let fieldPairs: Int
    /// The weight of each field in D (b_q for teacher q; a_m for student m under the square loss, else 0).
    let fieldWeight: UnsafeMutablePointer<Double>
    /// Running sums of Ψ and Φ ([j][u₂], p·n) and of Ξ (per pair j ≤ l).
    let steinSums: UnsafeMutablePointer<Double>
    let pairSums: UnsafeMutablePointer<Double>
    /// Shared erf route (`SharedErfTerms`): 1/(1 + Ω_jj) per unit (p); the arguments of every
    /// square root one evaluation needs, replaced in place by their reciprocal square roots
    /// (`SharedErfTerms.Roots` gives the layout); the vectors α, β of each pair (pair·n each);
    /// the coefficient of each field pair in D² (n(n+1)/2); ±weight per field, two n-vectors, and
    /// 1 + Ω_mm per field.
    let inverseVariance: UnsafeMutablePointer<Double>
    let roots: UnsafeMutablePointer<Double>
    let alpha: UnsafeMutablePointer<Double>
    let beta: UnsafeMutablePointer<Double>
    let squareCoefficient: UnsafeMutablePointer<Double>
    let signedWeight: UnsafeMutablePointer<Double>
    let steinWeight: UnsafeMutablePointer<Double>
    let steinProduct: UnsafeMutablePointer<Double>
    let shiftedDiagonal: UnsafeMutablePointer<Double>
    /// Wick moments, functional values, the multiples of Ω the moment recursion reads; Ω's factor
    /// for the cone check.
    let moments: UnsafeMutablePointer<Double>
    let functionals: UnsafeMutablePointer<Double>
    let scaledOmega: UnsafeMutablePointer<Double>
    let factor: UnsafeMutablePointer<Double>
    private let storage: UnsafeMutablePointer<Double>

    init(p: Int, k: Int, moments momentCount: Int = 0, functionals functionalCount: Int = 0, scaledOmega scaledCount: Int = 0) {
        self.p = p
        self.k = k
        n = p + k
        fieldPairs = n * (n + 1) / 2
        let pairs = p * (p + 1) / 2
        let sizes = [n * n, p, p * k, p * p, p * p, p, n, p * n * n, pairs * fieldPairs, n, p * n, pairs,
                     p, SharedErfTerms.Roots(p: p, n: n).count, pairs * n, pairs * n, fieldPairs, n, n, n,
                     momentCount, functionalCount, n * n, scaledCount, n]
        let total = sizes.reduce(0, +)
        storage = .allocate(capacity: total)
        storage.initialize(repeating: 0, count: total)
        var next = storage
        func take(_ i: Int) -> UnsafeMutablePointer<Double> { defer { next += sizes[i] }; return next }
        (omega, a, psi, phi, xi, drift, norm) = (take(0), take(1), take(2), take(3), take(4), take(5), take(6))
        (steinTable, quarticTable, fieldWeight, steinSums, pairSums) = (take(7), take(8), take(9), take(10), take(11))
        (inverseVariance, roots, alpha, beta, squareCoefficient) = (take(12), take(13), take(14), take(15), take(16))
        (signedWeight, steinWeight, steinProduct) = (take(17), take(18), take(19))
        (moments, functionals, factor, scaledOmega, shiftedDiagonal) = (take(20), take(21), take(22), take(23), take(24))
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

    /// Whether Ω is finite and positive semi-definite to `tolerance` (`Matrix.isPSDInPlace`), without allocating.
    func omegaIsPSD(tolerance: Double) -> Bool {
        for i in 0..<(n * n) {
            guard omega[i].isFinite else { return false }
            factor[i] = omega[i]
        }
        return Matrix.isPSDInPlace(factor, n, tolerance: tolerance)
    }
}

extension OnlineSGDWorkspace {
    /// The index in `quarticTable` of field pair x ≤ y within pair `pair`.
    @inline(__always) func quarticIndex(pair: Int, _ x: Int, _ y: Int) -> Int {
        pair * fieldPairs + x * n - x * (x - 1) / 2 + (y - x)
    }

    /// The orientation (u₃, u₄) of field pair x ≤ y in the quartic table.
    @inline(__always) func oriented(_ x: Int, _ y: Int) -> (Int, Int) { x < p && y >= p ? (y, x) : (x, y) }
}

/// The terms of the closed-form route one `GaussianExpectations` call each (any closed-form
/// activations; with erf student and teacher the theory takes `SharedErfTerms` instead, and this is
/// its reference in the tests): every distinct Stein term and quartic once per evaluation, into the
/// workspace's tables.
struct PerTermExpectations {
    let expectations: GaussianExpectations
    let student: Activation, teacher: Activation

    /// Fills `steinTable` with E[σ'(λ_j) u₂ f(u₃)] ([j][u₂][u₃]; f the teacher's activation when
    /// u₃ ≥ p) and, when `quartics`, `quarticTable` with E[σ'(λ_j)σ'(λ_l) f(u₃) g(u₄)] ([pair j ≤ l]
    /// [field pair x ≤ y, packed], oriented (u₃, u₄) = (teacher, student) for mixed pairs, else (x, y)),
    /// where the field weights (`fieldWeight`) and a_j a_l are non-zero.
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

/// Student and teacher both erf (EQUATIONS.md §1.4): Ψ, Φ and the sums of Ξ from pieces shared
/// between entries, with no square root or division per term. The closed forms need the square roots of
///
///     1 + Ω_jj (per unit j),   1 + Ω_mm − Ω_jm²/(1 + Ω_jj) (per unit j and field m: the variance of
///     field m after the tilt by σ'(λ_j)),   Λ₄ (per pair j ≤ l),   Λ₁ (per pair and field),
///
/// exactly the square roots of the benchmark's floor; they are taken at once, as reciprocals, in one
/// vectorised pass (`plateau_reciprocal_square_root`). What is left per Stein term and per quartic
/// is products and sums, and per quartic its arcsine.
///
/// Stein terms: E[σ'(λ_j) u₂ σ(u₃)] = s_j (Ω₂₃ − Ω_j₂Ω_j₃/(1 + Ω_jj)) t_j₃ with s_j = E[σ'(λ_j)] =
/// √(2/π)(1 + Ω_jj)^{−1/2} and t_j₃ = √(2/π)(1 + tilted variance of u₃)^{−1/2}. Ψ and Φ sum them
/// over u₃ with the signed weights ω₃ of D (+b_q for teachers, −a_m for students under the square
/// loss, 0 under the correlation loss), so per unit j they are one matrix–vector product:
/// Σ₃ ω₃ t_j₃ (Ω₂₃ − Ω_j₂Ω_j₃/(1 + Ω_jj)) = g₂ − Ω_j₂ g_j/(1 + Ω_jj), g = Ω v, v₃ = ω₃ t_j₃.
///
/// Quartics, pair (j, l): with c₁ₓ = Ω_jx, c₂ₓ = Ω_lx, c₁₂ = Ω_jl and per field
/// α_x = (1 + Ω_jj) c₂ₓ − c₁₂ c₁ₓ, β_x = (1 + Ω_ll) c₁ₓ − c₁₂ c₂ₓ, the closed form's
///
///     Λ₀(x, y) = Λ₄ Ω_xy − c₂ₓ α_y − c₁ₓ β_y,   Λ₁(x) = Λ₀(x, x) + Λ₄,
///     E[σ'(λ_j)σ'(λ_l)σ(u_x)σ(u_y)] = (4/π²) Λ₄^{−1/2} asin(Λ₀(x, y) Λ₁(x)^{−1/2} Λ₁(y)^{−1/2}),
///
/// (the same polynomials as `GaussianExpectations.erfQuarticCross`/`erfQuarticNorm`, factored), and
/// Σ_{x ≤ y} κ_xy E[…] with κ the coefficients of D² (ω_x ω_y, doubled off the diagonal) is the
/// pair's Ξ before the label noise. Field pairs of zero weight and pairs with a_j a_l = 0 are skipped.
///
/// The arithmetic differs from `PerTermExpectations` in the last bits (rounding only: the tests
/// compare the two at 10⁻¹² relative, and README, Performance, measures the effect on trajectories).
enum SharedErfTerms {
    /// Where each group of square roots sits in `OnlineSGDWorkspace.roots`: per unit (p), per unit
    /// and field (p·n, row j), per pair (p(p+1)/2), per pair and field (row `pair`).
    struct Roots {
        let tilted: Int, pair: Int, field: Int, count: Int
        init(p: Int, n: Int) {
            tilted = p
            pair = tilted + p * n
            field = pair + p * (p + 1) / 2
            count = field + p * (p + 1) / 2 * n
        }
    }

    /// √(2/π) = E[σ'(0)] for σ(x) = erf(x/√2), and 4/π², the quartic's prefactor.
    static let slopeScale = 0.79788456080286535588
    static let quarticScale = 4 / (Double.pi * Double.pi)

    /// Ψ, Φ into `w.psi`, `w.phi`, and (when `quartics`) Ξ's sums per pair j ≤ l into `w.pairSums`
    /// (0 where a_j a_l = 0), at the Ω, a and `fieldWeight` held by `w`.
    static func evaluate(_ w: OnlineSGDWorkspace, quartics: Bool) {
        switch (w.p, w.k) {
        case (2, 2): evaluate(w, quartics: quartics, Sizes<Two, Two>())
        case (4, 4): evaluate(w, quartics: quartics, Sizes<Four, Four>())
        default: evaluate(w, quartics: quartics, Sizes<Dynamic, Dynamic>(w.p, w.k))
        }
    }

    /// The sizes p, k of a problem: compile-time constants for the committees the benchmarks and
    /// the reproductions run most (K = M = 2 and 4: the compiler then unrolls the short loops of
    /// `evaluate`), read at run time otherwise. One body serves all.
    protocol Size { var value: Int { get } }
    struct Two: Size { var value: Int { 2 } }
    struct Four: Size { var value: Int { 4 } }
    struct Dynamic: Size { let value: Int }
    struct Sizes<P: Size, K: Size> {
        let p: P, k: K
        init() where P == Two, K == Two { (p, k) = (Two(), Two()) }
        init() where P == Four, K == Four { (p, k) = (Four(), Four()) }
        init(_ p: Int, _ k: Int) where P == Dynamic, K == Dynamic { (self.p, self.k) = (Dynamic(value: p), Dynamic(value: k)) }
    }

    private static func evaluate<P: Size, K: Size>(_ w: OnlineSGDWorkspace, quartics: Bool, _ sizes: Sizes<P, K>) {
        let p = sizes.p.value, k = sizes.k.value, n = p + k, omega = w.omega, roots = w.roots, layout = Roots(p: p, n: n)
        // The signed weights of D; κ (below) only changes with them (a trained second layer).
        let signed = w.signedWeight, shifted = w.shiftedDiagonal
        var weightsChanged = false
        for m in 0..<n {
            let v = m < p ? -w.fieldWeight[m] : w.fieldWeight[m]
            if v != signed[m] { weightsChanged = true }
            signed[m] = v
        }
        // κ_xy, the coefficients of D², packed over x ≤ y as `quarticTable`'s rows (all 0, as the
        // signed weights, in a new workspace).
        if weightsChanged {
            var index = 0
            for x in 0..<n { for y in x..<n {
                w.squareCoefficient[index] = (x == y ? 1 : 2) * signed[x] * signed[y]
                index += 1
            } }
        }
        for m in 0..<n { shifted[m] = 1 + omega[m * n + m] }
        // The arguments of every square root, then their reciprocal square roots in one pass.
        for j in 0..<p {
            let inverse = 1 / shifted[j], row = omega + j * n, tilted = roots + layout.tilted + j * n
            w.inverseVariance[j] = inverse
            roots[j] = shifted[j]
            for m in 0..<n { tilted[m] = shifted[m] - row[m] * row[m] * inverse }
        }
        if quartics {
            var pair = 0
            for j in 0..<p { for l in j..<p {
                let a11 = shifted[j], a22 = shifted[l], c12 = omega[j * n + l]
                let l4 = a11 * a22 - c12 * c12
                let rowJ = omega + j * n, rowL = omega + l * n, alpha = w.alpha + pair * n, beta = w.beta + pair * n
                let norms = roots + layout.field + pair * n
                roots[layout.pair + pair] = l4
                for x in 0..<n {
                    alpha[x] = a11 * rowL[x] - c12 * rowJ[x]
                    beta[x] = a22 * rowJ[x] - c12 * rowL[x]
                    norms[x] = l4 * shifted[x] - rowL[x] * alpha[x] - rowJ[x] * beta[x]
                }
                pair += 1
            } }
        }
        plateau_reciprocal_square_root(roots, quartics ? layout.count : layout.pair)
        // Ψ_jr = s_j (g_{p+r} − Ω_{j,p+r} g_j/(1 + Ω_jj)), Φ_jl likewise, g = Ω v (see above).
        let v = w.steinWeight, g = w.steinProduct
        for j in 0..<p {
            let tilted = roots + layout.tilted + j * n, row = omega + j * n
            for m in 0..<n { v[m] = signed[m] * (slopeScale * tilted[m]) }
            for u in 0..<n {
                let rowU = omega + u * n
                var sum = 0.0
                for m in 0..<n { sum += rowU[m] * v[m] }
                g[u] = sum
            }
            let s = slopeScale * roots[j], gj = g[j] * w.inverseVariance[j]
            for r in 0..<k { w.psi[j * k + r] = s * (g[p + r] - row[p + r] * gj) }
            for l in 0..<p { w.phi[j * p + l] = s * (g[l] - row[l] * gj) }
        }
        guard quartics else { return }
        let kappa = w.squareCoefficient, fieldPairs = n * (n + 1) / 2
        var pair = 0
        for j in 0..<p { for l in j..<p {
            defer { pair += 1 }
            guard w.a[j] != 0 && w.a[l] != 0 else { w.pairSums[pair] = 0; continue }
            let c12 = omega[j * n + l], l4 = shifted[j] * shifted[l] - c12 * c12
            let rowJ = omega + j * n, rowL = omega + l * n, alpha = w.alpha + pair * n, beta = w.beta + pair * n
            let norms = roots + layout.field + pair * n, row = w.quarticTable + pair * fieldPairs
            // The arcsines' arguments, contiguous in y (so the compiler vectorises); then the
            // arcsines in a loop of their own (nothing live across the calls), then Σ κ asin.
            var start = 0
            for x in 0..<n {
                let out = row + start - x, rowX = omega + x * n
                let (c1x, c2x, rx) = (rowJ[x], rowL[x], norms[x])
                for y in x..<n { out[y] = (l4 * rowX[y] - c2x * alpha[y] - c1x * beta[y]) * (rx * norms[y]) }
                start += n - x
            }
            for i in 0..<fieldPairs { row[i] = kappa[i] == 0 ? 0 : asin(row[i]) }
            var sum = 0.0
            for i in 0..<fieldPairs { sum += kappa[i] * row[i] }
            w.pairSums[pair] = quarticScale * roots[layout.pair + pair] * sum
        } }
    }
}

extension OnlineSGDTheory {
    /// A workspace sized for this theory.
    func makeWorkspace() -> OnlineSGDWorkspace {
        let w = OnlineSGDWorkspace(p: p, k: k, moments: wick?.momentCount ?? 0, functionals: wick?.functionalCount ?? 0,
                                   scaledOmega: wick?.scaledCount ?? 0)
        let P = experiment.teacher.covariance, n = p + k
        for r in 0..<k { for s in 0..<k { w.omega[(p + r) * n + p + s] = P[r, s] } }
        for j in 0..<p { w.a[j] = experiment.student.secondLayer[j] }
        for q in 0..<k { w.fieldWeight[p + q] = experiment.teacher.weights[q] }
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
        } else {
            closedFormTerms(w)
        }
    }

    /// The closed-form route (EQUATIONS.md §1.1, square or correlation loss):
    ///     Ψ_jr = Σ_q b_q E[σ'(λ_j) ν_r σ*(ν_q)] − Σ_m a_m E[σ'(λ_j) ν_r σ(λ_m)],  Φ_jl likewise with λ_l,
    ///     Ξ_jl = E[σ'σ' g²] − 2E[σ'σ' g f] + E[σ'σ' f²] + Δ E[σ'σ'] (square), E[σ'σ' g²] + Δ E[σ'σ'] (correlation),
    /// symmetric pairs of Ξ summed once; terms whose weight is zero are skipped. With erf student
    /// and teacher `SharedErfTerms` computes Ψ, Φ and Ξ's sums from shared pieces; otherwise
    /// `PerTermExpectations` fills the tables of distinct terms and the sums run over all entries at
    /// once (each entry's terms in the order above, so every entry is one chain of additions and the
    /// entries overlap).
    func closedFormTerms(_ w: OnlineSGDWorkspace) {
        let p = self.p, k = self.k, n = p + k
        let square = experiment.training.loss == .square
        let delta = experiment.teacher.noiseVariance
        let a = w.a, weight = w.fieldWeight
        // The teachers' weights b_q are in place since `makeWorkspace`.
        for m in 0..<p { weight[m] = square ? a[m] : 0 }
        if sharesErfTerms {
            SharedErfTerms.evaluate(w, quartics: !populationFlow)
        } else {
            experiment.teacher.weights.withUnsafeBufferPointer { perTermSums(w, $0, square: square) }
        }
        if trainsA { experiment.teacher.weights.withUnsafeBufferPointer { driftPerTerm(w, $0, square: square) } }
        for i in 0..<(p * p) { w.xi[i] = 0 }
        guard !populationFlow else { return }
        let omega = UnsafeBufferPointer(start: w.omega, count: n * n)
        var pair = 0
        for j in 0..<p { for l in j..<p {
            defer { pair += 1 }
            guard a[j] != 0 && a[l] != 0 else { continue }
            var v = w.pairSums[pair]
            if delta != 0 { v += delta * expectations.slopePair(sigma, sigma, FieldCovariance(omega, n, j, l)) }
            w.xi[j * p + l] = v
            w.xi[l * p + j] = v
        } }
    }

    /// Ψ, Φ and Ξ's sums per pair (`pairSums`) from one `GaussianExpectations` call per distinct term.
    private func perTermSums(_ w: OnlineSGDWorkspace, _ b: UnsafeBufferPointer<Double>, square: Bool) {
        let p = self.p, k = self.k, n = p + k, a = w.a
        PerTermExpectations(expectations: expectations, student: sigma, teacher: teacherActivation).fill(w, quartics: !populationFlow)
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
