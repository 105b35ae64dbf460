import Foundation
import PlateauCore

/// What `ConeGuard.enforce` did to a state.
public enum ConeCheck: Sendable, Hashable {
    /// Ω = [[Q, M], [Mᵀ, P]] was PSD to 10⁻¹² of its largest diagonal entry: left as it was.
    case inside
    /// Ω was outside the cone by `depth` (minus the smallest eigenvalue of the Schur complement
    /// Q − M P⁺ Mᵀ), within the allowance: Q was projected back (see `ConeGuard`).
    case projected(depth: Double)
    /// Ω was outside by more than the allowance, or not finite: a real departure.
    case outside(depth: Double)
}

/// Keeps the overlaps of a d = ∞ curve on the cone of valid covariances.
///
/// A rank-deficient Ω = [[Q, M], [Mᵀ, P]] is a valid state: the student rows and the teacher rows
/// span fewer than p + k dimensions (a start realised at small d, a student inside the teacher
/// span). The exact ODE and the exact map keep that rank (the gradient of every row lies in the
/// span of the rows), so the curve stays on the boundary of the cone for ever; an integrator's
/// error has a component across the boundary, of the size of its local error, and without
/// correction the curve would leave the cone after a while. After every step the guard:
///
/// 1. accepts Ω when the PSD-tolerant factorisation succeeds at 10⁻¹² of the largest diagonal entry
///    (`Matrix.isPSDInPlace`, root-free, with P's block factored once: the only work done for an
///    interior curve, whose numbers are therefore unchanged);
/// 2. else takes the Schur complement S = Q − M P⁺ Mᵀ (the Gram matrix of the student rows'
///    components orthogonal to the teacher span; P is fixed) and its smallest eigenvalue λ_min.
///    The depth −λ_min is compared with the allowance the caller derives from its integrator's
///    own error (`OnlineSGDTheory.coneAllowance`): within it, the negative eigenvalues of S are set
///    to zero and Q = M P⁺ Mᵀ + S₊ (the nearest valid Q in Frobenius norm with M and P held), and
///    the projection is counted; beyond it (or when Ω is not finite, or still not PSD after the
///    projection, as when M leaves the range of a singular P) the departure is real and the curve
///    ends with the status `leftPSDCone`.
///
/// Allocation-free after construction (GSL's symmetric eigen-solver is reused).
final class ConeGuard {
    let p: Int, k: Int, n: Int
    private let pInverse: UnsafeMutablePointer<Double>    // k×k, P⁺
    private let mp: UnsafeMutablePointer<Double>          // p×k, M P⁺
    private let schur: UnsafeMutablePointer<Double>       // p×p
    private let factor: UnsafeMutablePointer<Double>      // n×n
    /// Ω with the teacher fields first, [[P, Mᵀ], [M, Q]], whose leading block holds P's root-free
    /// factor (P does not move: it is factored once), so a check factors only the student rows.
    private let permuted: UnsafeMutablePointer<Double>    // n×n
    private let largestP: Double
    private let eigen: SymmetricEigenWorkspace
    private let storage: UnsafeMutablePointer<Double>

    init(p: Int, P: Matrix) {
        self.p = p
        k = P.rows
        n = p + k
        let sizes = [k * k, p * k, p * p, n * n, n * n]
        let total = sizes.reduce(0, +)
        storage = .allocate(capacity: total)
        storage.initialize(repeating: 0, count: total)
        pInverse = storage
        mp = pInverse + sizes[0]
        schur = mp + sizes[1]
        factor = schur + sizes[2]
        permuted = factor + sizes[3]
        eigen = SymmetricEigenWorkspace(p)
        let pinv = GSL.symmetricPseudoInverse(P)
        for i in 0..<(k * k) { pInverse[i] = pinv.values[i] }
        var block = P.values, largest = 0.0
        for r in 0..<k { largest = max(largest, abs(P[r, r])) }
        largestP = largest
        let factored = block.withUnsafeMutableBufferPointer { Matrix.isPSDInPlace($0.baseAddress!, k, tolerance: 1e-12) }
        // A P that is not PD leaves zero pivots, which the fast check refuses (it then factors all of Ω).
        for r in 0..<k { for s in 0..<k { permuted[r * n + s] = factored || r != s ? block[r * k + s] : 0 } }
    }

    /// Whether the row-major n×n Ω (student fields first) is finite and PSD to 10⁻¹² of its scale,
    /// by the root-free factorisation of [[P, Mᵀ], [M, Q]] with P's block factored once; nil when
    /// P's pivots are not clear of zero at this scale (the caller then factors Ω whole).
    private func insideWithFactoredP(_ omega: UnsafePointer<Double>) -> Bool? {
        let n = self.n, p = self.p, k = self.k
        var largest = largestP
        for j in 0..<p {
            let row = permuted + (k + j) * n, source = omega + j * n
            for r in 0..<k {
                guard source[p + r].isFinite else { return false }
                row[r] = source[p + r]
            }
            for l in 0...j {
                guard source[l].isFinite else { return false }
                row[k + l] = source[l]
            }
            largest = max(largest, abs(source[j]))
        }
        return Matrix.isPSDInPlace(permuted, n, tolerance: 1e-12, scale: max(largest, 1e-300), factored: k)
    }

    deinit { storage.deallocate() }

    /// The largest |diagonal entry| of Ω (the scale of the cone tests).
    static func scale(_ omega: UnsafePointer<Double>, _ n: Int) -> Double {
        var largest = 0.0
        for i in 0..<n { largest = max(largest, abs(omega[i * n + i])) }
        return largest
    }

    /// Checks the row-major n×n Ω at `omega` and projects it back when it is outside the cone by at
    /// most `allowance` (an absolute depth; at least 10⁻¹² of Ω's scale is always allowed).
    func enforce(_ omega: UnsafeMutablePointer<Double>, allowance: Double) -> ConeCheck {
        let n = self.n, p = self.p, k = self.k
        if insideWithFactoredP(omega) == true { return .inside }
        for i in 0..<(n * n) {
            guard omega[i].isFinite else { return .outside(depth: .infinity) }
            factor[i] = omega[i]
        }
        if Matrix.isPSDInPlace(factor, n, tolerance: 1e-12) { return .inside }
        let scale = max(Self.scale(omega, n), 1e-300)
        // S = Q − (M P⁺) Mᵀ.
        for j in 0..<p { for r in 0..<k {
            var v = 0.0
            for s in 0..<k { v += omega[j * n + p + s] * pInverse[s * k + r] }
            mp[j * k + r] = v
        } }
        for j in 0..<p { for l in 0..<p {
            var v = 0.0
            for r in 0..<k { v += mp[j * k + r] * omega[l * n + p + r] }
            schur[j * p + l] = omega[j * n + l] - v
        } }
        eigen.decompose(schur, sorted: false)
        var smallest = Double.infinity
        for e in 0..<p { smallest = min(smallest, eigen.value(e)) }
        let depth = max(0, -smallest)
        guard depth <= max(allowance, 1e-12 * scale) else { return .outside(depth: depth) }
        // Q = M P⁺ Mᵀ + S₊ with S₊ = Σ max(λ, 0) v vᵀ (the symmetric part of S, as decomposed).
        for j in 0..<p { for l in j..<p {
            var v = 0.0
            for r in 0..<k { v += mp[j * k + r] * omega[l * n + p + r] }
            var plus = 0.0
            for e in 0..<p where eigen.value(e) > 0 { plus += eigen.value(e) * eigen.vector(j, e) * eigen.vector(l, e) }
            omega[j * n + l] = v + plus
            omega[l * n + j] = v + plus
        } }
        for i in 0..<(n * n) { factor[i] = omega[i] }
        guard Matrix.isPSDInPlace(factor, n, tolerance: 1e-12) else { return .outside(depth: depth) }
        return .projected(depth: depth)
    }
}
