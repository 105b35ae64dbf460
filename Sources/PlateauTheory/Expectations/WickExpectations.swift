import Foundation
import PlateauCore

/// Exact Gaussian expectations of polynomials (Wick/Isserlis), for problems whose student activation
/// and target are both polynomials (Heₙ, linear, polynomial expressions, polynomial links).
///
/// Every term of the online-SGD equations is then E[poly(u)] over the joint fields u = (λ₁…λ_p,
/// ν₁…ν_k) with covariance Ω = [[Q, M], [Mᵀ, P]]. The polynomials do not depend on the overlaps, so
/// they are expanded once into monomials u^α, and each needed moment E[u^α] is computed at run time
/// by Isserlis' recursion E[u_i u^β] = Σ_j Ω_ij β_j E[u^{β − e_j}] (i the first index with α_i > 0,
/// β = α − e_i). The recursion's graph is fixed too, so `MomentPlan` stores it in evaluation order:
/// one right-hand side costs a pass over flat arrays, with no hashing and no allocation of its own.
struct MomentPlan: Sendable {
    typealias Exponents = SIMD16<UInt8>

    /// The number of joint fields (at most 16).
    let fieldCount: Int
    /// One term Ω_{first, j} β_j E[u^{β − e_j}] of a moment's recursion: `scaled` indexes the table
    /// of the products β_j Ω_{first, j} (`evaluate`), at (β_j − 1)·fieldCount² + first·fieldCount + j.
    struct Child {
        var scaled: Int32
        var moment: Int32
    }

    /// Per moment: the range of its children in `children` (stored together, read in one stream).
    private(set) var childStart: [Int32] = [0]
    private(set) var children: [Child] = []
    private var index: [Exponents: Int32] = [:]
    /// The largest β_j of any child (the number of multiples of Ω `evaluate` tabulates).
    private(set) var largestFactor = 1

    /// The most moments a plan may hold (the expansion of E[σ'σ'D²] grows fast with the degree).
    static let maximumMoments = 3_000_000

    init(fieldCount: Int) {
        precondition((1...16).contains(fieldCount))
        self.fieldCount = fieldCount
        index[Exponents()] = 0   // E[1] = 1
    }

    var count: Int { childStart.count }

    /// A fixed total order on exponent vectors (lexicographic).
    static func precedes(_ a: Exponents, _ b: Exponents) -> Bool {
        for i in 0..<16 where a[i] != b[i] { return a[i] < b[i] }
        return false
    }

    /// The index of E[u^α] (registering it and its recursion), or nil for an odd total degree (zero).
    mutating func moment(_ alpha: Exponents) throws -> Int32? {
        var degree = 0
        for i in 0..<fieldCount { degree += Int(alpha[i]) }
        if degree % 2 == 1 { return nil }
        return try register(alpha)
    }

    private mutating func register(_ alpha: Exponents) throws -> Int32 {
        if let i = index[alpha] { return i }
        var first = 0
        while alpha[first] == 0 { first += 1 }
        var beta = alpha
        beta[first] -= 1
        var children: [Child] = []
        for j in 0..<fieldCount where beta[j] > 0 {
            var child = beta
            child[j] -= 1
            let factor = Int(beta[j])
            largestFactor = max(largestFactor, factor)
            children.append(Child(scaled: Int32((factor - 1) * fieldCount * fieldCount + first * fieldCount + j),
                                  moment: try register(child)))
        }
        guard childStart.count < Self.maximumMoments else { throw WickError.tooLarge }
        self.children += children
        childStart.append(Int32(self.children.count))
        let i = Int32(childStart.count - 1)
        index[alpha] = i
        return i
    }

    /// The size of the scratch `evaluate` needs: the multiples f·Ω, f = 1…`largestFactor`.
    var scaledCount: Int { largestFactor * fieldCount * fieldCount }

    /// All registered moments at the row-major covariance `omega` (fieldCount²), with `scaled`
    /// (`scaledCount` entries) as scratch for the multiples of Ω (each child's Ω_{first, j}·β_j is
    /// then one load: the same product, so the same bits, as multiplying in the loop).
    func evaluate(_ omega: UnsafeBufferPointer<Double>, scaled: UnsafeMutablePointer<Double>,
                  into moments: UnsafeMutableBufferPointer<Double>) {
        let entries = fieldCount * fieldCount
        for f in 0..<largestFactor {
            let factor = Double(f + 1), row = scaled + f * entries
            for i in 0..<entries { row[i] = omega[i] * factor }
        }
        moments[0] = 1
        children.withUnsafeBufferPointer { ch in
        childStart.withUnsafeBufferPointer { st in
            for m in 1..<st.count {
                var sum = 0.0
                for c in Int(st[m - 1])..<Int(st[m]) { sum += scaled[Int(ch[c].scaled)] * moments[Int(ch[c].moment)] }
                moments[m] = sum
            }
        } }
    }
}

enum WickError: Error { case notPolynomial, tooManyFields, degreeTooHigh, tooLarge }

/// A sparse multivariate polynomial in the joint fields: exponents → coefficient.
struct JointPolynomial {
    var terms: [MomentPlan.Exponents: Double] = [:]

    static func constant(_ c: Double) -> JointPolynomial { JointPolynomial(terms: c == 0 ? [:] : [MomentPlan.Exponents(): c]) }

    /// Σ_i c_i u_field^i.
    static func univariate(_ coefficients: [Double], field: Int) throws -> JointPolynomial {
        guard coefficients.count <= 256 else { throw WickError.degreeTooHigh }
        var p = JointPolynomial()
        for (i, c) in coefficients.enumerated() where c != 0 {
            var e = MomentPlan.Exponents()
            e[field] = UInt8(i)
            p.terms[e] = c
        }
        return p
    }

    static func * (a: JointPolynomial, b: JointPolynomial) throws -> JointPolynomial {
        var out: [MomentPlan.Exponents: Double] = [:]
        out.reserveCapacity(a.terms.count * b.terms.count)
        // Sorted iteration: the sums' rounding must not depend on the process's hash seed.
        let sa = a.sortedTerms, sb = b.sortedTerms
        for (ea, ca) in sa {
            for (eb, cb) in sb {
                let (sum, overflow) = ea.addingReportingOverflow(eb)
                guard !overflow.containsAny else { throw WickError.degreeTooHigh }
                out[sum, default: 0] += ca * cb
            }
        }
        return JointPolynomial(terms: out)
    }

    /// The terms in a fixed order (lexicographic in the exponents).
    var sortedTerms: [(MomentPlan.Exponents, Double)] {
        terms.map { ($0.key, $0.value) }.sorted { MomentPlan.precedes($0.0, $1.0) }
    }
}

private extension SIMD16<UInt8> {
    func addingReportingOverflow(_ other: Self) -> (Self, SIMDMask<SIMD16<Int8>>) {
        let sum = self &+ other
        return (sum, sum .< self)
    }
}

private extension SIMDMask<SIMD16<Int8>> {
    var containsAny: Bool { any(self) }
}

/// A linear functional Σ c·E[u^α] over a plan's moments.
struct MomentFunctional: Sendable {
    var indices: [Int32] = []
    var coefficients: [Double] = []

    @inline(__always) func value(_ m: UnsafeMutableBufferPointer<Double>) -> Double {
        var s = 0.0
        for i in 0..<indices.count { s += coefficients[i] * m[Int(indices[i])] }
        return s
    }
}

/// Many moment functionals stored flat (one range of `indices`/`coefficients` each), so that one
/// pass evaluates them all.
struct FlatFunctionals: Sendable {
    private(set) var starts: [Int32] = [0]
    private(set) var indices: [Int32] = []
    private(set) var coefficients: [Double] = []

    var count: Int { starts.count - 1 }

    /// Appends `list` and returns the index of its first functional.
    mutating func append(_ list: [MomentFunctional]) -> Int {
        let first = count
        for f in list {
            indices += f.indices
            coefficients += f.coefficients
            starts.append(Int32(indices.count))
        }
        return first
    }

    /// Functionals 0..<`end` at the moments `m`, into `values` (each summed in its stored order, as
    /// `MomentFunctional.value`).
    func evaluate(_ m: UnsafeMutablePointer<Double>, into values: UnsafeMutablePointer<Double>, upTo end: Int) {
        starts.withUnsafeBufferPointer { st in
        indices.withUnsafeBufferPointer { ix in
        coefficients.withUnsafeBufferPointer { co in
            for f in 0..<end {
                var s = 0.0
                for i in Int(st[f])..<Int(st[f + 1]) { s += co[i] * m[Int(ix[i])] }
                values[f] = s
            }
        } } }
    }
}

/// The online-SGD terms of a polynomial problem, exactly. Second-layer weights may change during
/// training, so every term is kept split by the student units it involves (EQUATIONS.md §1.1):
///
///     Ψ_jr = E[σ'_j ν_r g] − Σ_m a_m E[σ'_j ν_r σ_m]        Φ_jl likewise with λ_l for ν_r
///     Ξ_jl = E[σ'_j σ'_l g²] − 2Σ_m a_m E[σ'_j σ'_l g σ_m] + Σ_mn a_m a_n E[σ'_j σ'_l σ_m σ_n] + Δ E[σ'_j σ'_l]
///
/// (the correlation loss keeps only the g pieces and Δ).
final class WickTerms: Sendable {
    let p: Int, k: Int
    let plan: MomentPlan
    let square: Bool
    let noise: Double
    /// Every functional of Ψ, Φ, E[σD] and Ξ in one flat list (`functionals`), in groups that start at
    /// these offsets: psiG [j][r], psiS [j][r][m], phiG [j][l], phiS [j][l][m], driftG [j], driftS [j][m];
    /// then Ξ's, per upper-triangle pair (j ≤ l) in order: slopes, xiGG, xiGS [pair][m], xiSS [pair][m ≤ n].
    let psiG: Int, psiS: Int, phiG: Int, phiS: Int, driftG: Int, driftS: Int
    let slopes: Int, xiGG: Int, xiGS: Int, xiSS: Int
    let functionals: FlatFunctionals
    let riskGG: MomentFunctional, riskGS: [MomentFunctional], riskSS: [MomentFunctional]
    /// With a fixed second layer: Ψ, Φ, E[σD] and Ξ (with Δ) as one functional per entry, the
    /// combinations with a folded into the coefficients (`FixedSecondLayer`).
    let fixed: FixedSecondLayer?

    /// The functionals of a problem whose second layer does not train, combined once with its a:
    /// Ψ_jr [j][r], Φ_jl [j][l], E[σ_j D] [j], then Ξ per pair j ≤ l. One evaluation then sums each
    /// entry once instead of its p or p(p+1)/2 pieces (the same value up to rounding).
    struct FixedSecondLayer: Sendable {
        let a: [Double]
        let functionals: FlatFunctionals
        /// The number of functionals before Ξ's.
        let withoutXi: Int
    }

    /// Builds the expansion for `experiment`; throws `WickError` when a function is not a polynomial,
    /// p + k > 16, or the expansion is too large.
    init(_ experiment: Experiment) throws {
        let p = experiment.student.p, k = experiment.teacher.k, n = p + k
        guard n <= 16 else { throw WickError.tooManyFields }
        guard let sc = experiment.student.activation.polynomialCoefficients,
              let gTerms = experiment.teacher.targetFormula.polynomialCoefficients() else { throw WickError.notPolynomial }
        self.p = p
        self.k = k
        square = experiment.training.loss == .square
        noise = experiment.teacher.noiseVariance
        var dc = [Double](repeating: 0, count: max(1, sc.count - 1))
        for i in 1..<max(1, sc.count) { dc[i - 1] = Double(i) * sc[i] }
        var plan = MomentPlan(fieldCount: n)
        let sigma = try (0..<p).map { try JointPolynomial.univariate(sc, field: $0) }
        let slope = try (0..<p).map { try JointPolynomial.univariate(dc, field: $0) }
        let field = try (0..<n).map { try JointPolynomial.univariate([0, 1], field: $0) }
        var g = JointPolynomial()
        for (e, c) in gTerms where c != 0 {
            var x = MomentPlan.Exponents()
            for r in 0..<k {
                guard e[r] < 256 else { throw WickError.degreeTooHigh }
                x[p + r] = UInt8(e[r])
            }
            g.terms[x, default: 0] += c
        }
        func functional(_ poly: JointPolynomial) throws -> MomentFunctional {
            var f = MomentFunctional()
            for (e, c) in poly.sortedTerms where c != 0 {
                if let i = try plan.moment(e) {
                    f.indices.append(i)
                    f.coefficients.append(c)
                }
            }
            return f
        }
        var psiG: [MomentFunctional] = [], psiS: [MomentFunctional] = []
        var phiG: [MomentFunctional] = [], phiS: [MomentFunctional] = []
        var driftG: [MomentFunctional] = [], driftS: [MomentFunctional] = []
        for j in 0..<p {
            for r in 0..<k {
                let base = try slope[j] * field[p + r]
                psiG.append(try functional(try base * g))
                for m in 0..<p { psiS.append(try functional(try base * sigma[m])) }
            }
            for l in 0..<p {
                let base = try slope[j] * field[l]
                phiG.append(try functional(try base * g))
                for m in 0..<p { phiS.append(try functional(try base * sigma[m])) }
            }
            driftG.append(try functional(try sigma[j] * g))
            for m in 0..<p { driftS.append(try functional(try sigma[j] * sigma[m])) }
        }
        var xiGG: [MomentFunctional] = [], xiGS: [MomentFunctional] = [], xiSS: [MomentFunctional] = []
        var slopes: [MomentFunctional] = []
        let g2 = try g * g
        for j in 0..<p {
            for l in j..<p {
                let base = try slope[j] * slope[l]
                slopes.append(try functional(base))
                xiGG.append(try functional(try base * g2))
                for m in 0..<p { xiGS.append(try functional(try (try base * g) * sigma[m])) }
                for m in 0..<p { for q in m..<p { xiSS.append(try functional(try (try base * sigma[m]) * sigma[q])) } }
            }
        }
        riskGG = try functional(g2)
        riskGS = try (0..<p).map { try functional(try sigma[$0] * g) }
        var riskSS: [MomentFunctional] = []
        for m in 0..<p { for q in m..<p { riskSS.append(try functional(try sigma[m] * sigma[q])) } }
        self.riskSS = riskSS
        self.plan = plan
        if experiment.student.trainSecondLayer {
            fixed = nil
        } else {
            // Σ c·f over functionals, merged per moment (in increasing moment order).
            let a = experiment.student.secondLayer, square = experiment.training.loss == .square
            let noise = experiment.teacher.noiseVariance
            func combine(_ parts: [(Double, MomentFunctional)]) -> MomentFunctional {
                var merged: [Int32: Double] = [:]
                for (c, f) in parts where c != 0 {
                    for (i, x) in zip(f.indices, f.coefficients) { merged[i, default: 0] += c * x }
                }
                var out = MomentFunctional()
                for i in merged.keys.sorted() {
                    out.indices.append(i)
                    out.coefficients.append(merged[i]!)
                }
                return out
            }
            func students(_ list: [MomentFunctional], _ first: Int, _ c: Double) -> [(Double, MomentFunctional)] {
                square ? (0..<p).map { (-c * a[$0], list[first + $0]) } : []
            }
            var entries: [MomentFunctional] = []
            for j in 0..<p { for r in 0..<k {
                entries.append(combine([(1, psiG[j * k + r])] + students(psiS, (j * k + r) * p, 1)))
            } }
            for j in 0..<p { for l in 0..<p {
                entries.append(combine([(1, phiG[j * p + l])] + students(phiS, (j * p + l) * p, 1)))
            } }
            for j in 0..<p { entries.append(combine([(1, driftG[j])] + students(driftS, j * p, 1))) }
            let withoutXi = entries.count
            var ss = 0
            for pair in 0..<(p * (p + 1) / 2) {
                var parts: [(Double, MomentFunctional)] = [(1, xiGG[pair]), (noise, slopes[pair])] + students(xiGS, pair * p, 2)
                if square {
                    for q in 0..<p { for s in q..<p {
                        parts.append(((q == s ? 1 : 2) * a[q] * a[s], xiSS[ss]))
                        ss += 1
                    } }
                }
                entries.append(combine(parts))
            }
            var flat = FlatFunctionals()
            _ = flat.append(entries)
            fixed = FixedSecondLayer(a: a, functionals: flat, withoutXi: withoutXi)
        }
        var flat = FlatFunctionals()
        (self.psiG, self.psiS, self.phiG, self.phiS) = (flat.append(psiG), flat.append(psiS), flat.append(phiG), flat.append(phiS))
        (self.driftG, self.driftS) = (flat.append(driftG), flat.append(driftS))
        (self.slopes, self.xiGG, self.xiGS, self.xiSS) = (flat.append(slopes), flat.append(xiGG), flat.append(xiGS), flat.append(xiSS))
        functionals = flat
    }

    /// The number of distinct moments one evaluation computes.
    var momentCount: Int { plan.count }

    /// The scratch the moment recursion needs (`MomentPlan.scaledCount`).
    var scaledCount: Int { plan.scaledCount }

    private func withMoments<R>(_ o: Overlaps, _ body: (UnsafeMutableBufferPointer<Double>) -> R) -> R {
        let omega = o.jointCovariance.values
        var moments = [Double](repeating: 0, count: plan.count), scaled = [Double](repeating: 0, count: plan.scaledCount)
        return moments.withUnsafeMutableBufferPointer { m in
            scaled.withUnsafeMutableBufferPointer { s in
                omega.withUnsafeBufferPointer { plan.evaluate($0, scaled: s.baseAddress!, into: m) }
            }
            return body(m)
        }
    }

    /// The number of functionals one evaluation computes (all of Ψ, Φ, E[σD], Ξ).
    var functionalCount: Int { functionals.count }

    /// Ψ, Φ, E[σD] and (when `includeXi`) Ξ at the Ω and a held by `w`, into `w`, without allocating:
    /// the moments, then every functional once, then their combinations with a.
    func evaluate(_ w: OnlineSGDWorkspace, includeXi: Bool) {
        let p = self.p, k = self.k, a = w.a
        plan.evaluate(UnsafeBufferPointer(start: w.omega, count: (p + k) * (p + k)), scaled: w.scaledOmega,
                      into: UnsafeMutableBufferPointer(start: w.moments, count: plan.count))
        let f = w.functionals
        if let fixed, (0..<p).allSatisfy({ a[$0] == fixed.a[$0] }) {
            fixed.functionals.evaluate(w.moments, into: f, upTo: includeXi ? fixed.functionals.count : fixed.withoutXi)
            for i in 0..<(p * k) { w.psi[i] = f[i] }
            for i in 0..<(p * p) { w.phi[i] = f[p * k + i]; w.xi[i] = 0 }
            for j in 0..<p { w.drift[j] = f[p * k + p * p + j] }
            guard includeXi else { return }
            var pair = fixed.withoutXi
            for j in 0..<p { for l in j..<p {
                w.xi[j * p + l] = f[pair]
                w.xi[l * p + j] = f[pair]
                pair += 1
            } }
            return
        }
        functionals.evaluate(w.moments, into: f, upTo: includeXi ? functionals.count : slopes)
        for j in 0..<p {
            for r in 0..<k {
                var v = f[psiG + j * k + r]
                if square { for q in 0..<p where a[q] != 0 { v -= a[q] * f[psiS + (j * k + r) * p + q] } }
                w.psi[j * k + r] = v
            }
            for l in 0..<p {
                var v = f[phiG + j * p + l]
                if square { for q in 0..<p where a[q] != 0 { v -= a[q] * f[phiS + (j * p + l) * p + q] } }
                w.phi[j * p + l] = v
            }
            var v = f[driftG + j]
            if square { for q in 0..<p where a[q] != 0 { v -= a[q] * f[driftS + j * p + q] } }
            w.drift[j] = v
        }
        for i in 0..<(p * p) { w.xi[i] = 0 }
        guard includeXi else { return }
        var pair = 0, ss = 0
        let pairsPerSS = p * (p + 1) / 2
        for j in 0..<p {
            for l in j..<p {
                var v = f[xiGG + pair] + noise * f[slopes + pair]
                if square {
                    for q in 0..<p where a[q] != 0 { v -= 2 * a[q] * f[xiGS + pair * p + q] }
                    var idx = ss
                    for q in 0..<p {
                        for s in q..<p {
                            if a[q] != 0 && a[s] != 0 { v += (q == s ? 1 : 2) * a[q] * a[s] * f[xiSS + idx] }
                            idx += 1
                        }
                    }
                }
                ss += pairsPerSS
                w.xi[j * p + l] = v
                w.xi[l * p + j] = v
                pair += 1
            }
        }
    }

    func risk(_ o: Overlaps) -> Double {
        let p = self.p, a = o.a
        return withMoments(o) { m in
            var r = riskGG.value(m)
            for q in 0..<p { r -= 2 * a[q] * riskGS[q].value(m) }
            var idx = 0
            for q in 0..<p { for s in q..<p { r += (q == s ? 1 : 2) * a[q] * a[s] * riskSS[idx].value(m); idx += 1 } }
            return 0.5 * r + 0.5 * noise
        }
    }
}

/// Ψ (p×k), Φ (p×p), Ξ (p×p, symmetric) and E[σ(λ_j) D] at some overlaps (EQUATIONS.md §1.1).
public struct PopulationTerms: Sendable {
    public var psi: Matrix
    public var phi: Matrix
    public var xi: Matrix
    public var aDrift: [Double]

    /// Ψ, Φ, Ξ and E[σD] in one array (for comparisons of whole sets).
    public var flattened: [Double] { psi.values + phi.values + xi.values + aDrift }

    public init(p: Int, k: Int) {
        psi = Matrix(rows: p, cols: k)
        phi = Matrix(rows: p, cols: p)
        xi = Matrix(rows: p, cols: p)
        aDrift = [Double](repeating: 0, count: p)
    }
}
