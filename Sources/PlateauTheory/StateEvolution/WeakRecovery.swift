import Foundation
import PlateauCore
internal import CGSL

/// The output's conditional law under the prior z ~ N(0, I_k), as a finite list of atoms: for a
/// noiseless output one atom per label (weight P(y = v_ℓ)), with label noise one atom per node of
/// the y-grid (weight p(y)·dy). Each carries E[z | y] and G(y) = E[zzᵀ | y] − I_k (EQUATIONS.md §2),
/// the quantities the weak-recovery threshold and the spectral estimators are built from.
public struct PriorConditional: Sendable, Hashable {
    public var weight: Double
    public var y: Double
    public var mean: [Double]
    public var G: Matrix
}

/// The weak-recovery analysis at the uninformative fixed point M = 0 (EQUATIONS.md §2,
/// `../shared/reference/state-evolution.md`).
public struct WeakRecoveryAnalysis: Sendable, Hashable {
    /// α_c: 0 when the trivial subspace is non-empty, 1/λ_max(𝓕) otherwise (∞ when 𝓕 = 0).
    public var alphaC: Double
    /// E_y[E[z | y] E[z | y]ᵀ] (M̂/α after one step from M = 0).
    public var trivialMatrix: Matrix
    /// An orthonormal basis of the trivial subspace (directions learned at any α > 0): the eigenvectors
    /// of `trivialMatrix` with eigenvalue above `trivialResolution`.
    public var trivialSubspace: [[Double]]
    /// λ_max of 𝓕(A) = E_y[G(y) A G(y)] on symmetric k×k matrices, and all its eigenvalues (descending).
    public var operatorEigenvalues: [Double]
    /// The top eigenvector of 𝓕 as a k×k symmetric matrix (unit Frobenius norm, sign chosen PSD-like).
    public var topEigenvector: Matrix
    /// 1/λ_max(𝓕): the threshold of the easy subspace (equal to α_c when the trivial subspace is empty).
    public var easyThreshold: Double
    /// An orthonormal basis of the easy subspace: the range of the top eigenvector (eigen-directions
    /// with eigenvalue above 10⁻⁸ of the largest).
    public var easySubspace: [[Double]]
    /// The accuracy of 𝓕's eigenvalues implied by the channel's sum-rule error; λ_max below it means
    /// 𝓕 = 0 within accuracy (α_c = ∞).
    public var operatorResolution: Double
    /// The accuracy of `trivialMatrix`'s eigenvalues (see `weakRecovery()`).
    public var trivialResolution: Double = 1e-10
    public var operatorTopEigenvalue: Double { operatorEigenvalues.first ?? 0 }
}

extension StateEvolution {
    /// The atoms of the output's conditional law under the prior (see `PriorConditional`): exact for a
    /// noiseless product of coordinates (`ProductOutputLaw`, unless `exactProduct` is false), otherwise from
    /// the channel's labels.
    public func priorConditionals(exactProduct: Bool = true) -> [PriorConditional] {
        if exactProduct, let law = productLaw { return law.atoms }
        let k = problem.k
        let rm = channel.priorMoments
        let L = channel.labelCount, values = channel.labelValues
        var atoms: [PriorConditional] = []
        func atom(weight: Double, y: Double, Z: Double, mu: [Double], S: [Double]) {
            guard Z > 1e-300, weight > 0 else { return }
            var G = Matrix(rows: k, cols: k, values: S.map { $0 / Z })
            for i in 0..<k { G[i, i] -= 1 }
            atoms.append(PriorConditional(weight: weight, y: y, mean: mu.map { $0 / Z }, G: G))
        }
        guard let mixture = noiseMixture else {
            for l in 0..<L {
                let Z = rm.probability(l)
                atom(weight: Z, y: values[l], Z: Z, mu: rm.firstMoment(l), S: rm.secondMoment(l).values)
            }
            return atoms
        }
        for node in mixture.nodes {
            var Z = 0.0, mu = [Double](repeating: 0, count: k), S = [Double](repeating: 0, count: k * k)
            for c in 0..<node.count {
                let l = node.firstLabel + c, a = mixture.weights[node.offset + c]
                Z += a * rm.probability(l)
                let base = l * rm.stride
                for i in 0..<k { mu[i] += a * rm.values[base + 1 + i] }
                for i in 0..<(k * k) { S[i] += a * rm.values[base + 1 + k + i] }
            }
            atom(weight: node.weight * Z, y: node.y, Z: Z, mu: mu, S: S)
        }
        return atoms
    }

    /// The weak-recovery threshold, the trivial and the easy subspace (for a noiseless product of
    /// coordinates from its exact law, `ProductOutputLaw`, without the channel's bins, unless `exactProduct`
    /// is false).
    public func weakRecovery(exactProduct: Bool = true) -> WeakRecoveryAnalysis {
        if exactProduct, let law = productLaw { return WeakRecoveryAnalysis(law: law) }
        let k = problem.k
        let atoms = priorConditionals(exactProduct: false)
        // A binned (continuous) output is integrated to a limited accuracy on the outer cells: an eigenvalue
        // of the trivial matrix counts when it exceeds ten times the change of that matrix under one
        // refinement of the outer rule (a discrete output's cells are split at its jumps, and 10⁻¹⁰ serves).
        // With every eigenvalue at or below 10⁻¹⁰ (z₁z₂ and other targets even in z) the refinement could only
        // raise the resolution, so the subspace is empty either way: it is not built, and 10⁻¹⁰ is reported.
        var trivialResolution = 1e-10
        let trivial = WeakRecoveryAnalysis.trivialMatrix(atoms, k: k)
        if case .binned = channel.alphabet, k > 1, (GSL.symmetricEigen(trivial).values.first ?? 0) > trivialResolution,
           let refined = try? StateEvolution(
            problem: problem, channel: OutputChannel(problem: problem, resolution: channel.binWidth, refinement: 1)) {
            let fine = WeakRecoveryAnalysis.trivialMatrix(refined.priorConditionals(exactProduct: false), k: k)
            trivialResolution = max(trivialResolution, 10 * zip(fine.values, trivial.values).map { abs($0 - $1) }.max()!)
        }
        return WeakRecoveryAnalysis(atoms: atoms, k: k, sumRuleError: channel.sumRuleError, trivialResolution: trivialResolution)
    }
}

extension WeakRecoveryAnalysis {
    /// The analysis of a noiseless product output from its exact law (no channel is built).
    public init(law: ProductOutputLaw) {
        self.init(atoms: law.atoms, k: law.k, sumRuleError: law.sumRuleError, trivialResolution: 1e-10)
    }

    /// E_y[E[z|y]E[z|y]ᵀ] over the atoms.
    static func trivialMatrix(_ atoms: [PriorConditional], k: Int) -> Matrix {
        var trivial = Matrix(rows: k, cols: k)
        for a in atoms { for i in 0..<k { for j in 0..<k { trivial[i, j] += a.weight * a.mean[i] * a.mean[j] } } }
        return trivial
    }

    /// The analysis from the atoms of the output's conditional law, whose G are known to `sumRuleError`
    /// per unit probability; eigenvalues of the trivial matrix count above `trivialResolution`.
    init(atoms: [PriorConditional], k: Int, sumRuleError: Double, trivialResolution: Double) {
        // Trivial subspace: the range of E_y[E[z|y]E[z|y]ᵀ].
        let trivial = Self.trivialMatrix(atoms, k: k)
        let (tv, tvec) = GSL.symmetricEigen(trivial)
        let trivialBasis = (0..<k).filter { tv[$0] > trivialResolution }.map { e in (0..<k).map { tvec[$0, e] } }
        // 𝓕 on an orthonormal basis of Sym(k): E_ii and (E_ij + E_ji)/√2.
        var basis: [Matrix] = []
        for i in 0..<k {
            for j in i..<k {
                var B = Matrix(rows: k, cols: k)
                if i == j { B[i, i] = 1 } else { B[i, j] = 1 / 2.0.squareRoot(); B[j, i] = B[i, j] }
                basis.append(B)
            }
        }
        let n = basis.count
        var F = Matrix(rows: n, cols: n)
        for a in atoms {
            let images = basis.map { a.G * $0 * a.G }
            for x in 0..<n {
                for y in 0..<n {
                    var tr = 0.0
                    for i in 0..<k { for j in 0..<k { tr += basis[x][i, j] * images[y][j, i] } }
                    F[x, y] += a.weight * tr
                }
            }
        }
        let (fv, fvec) = GSL.symmetricEigen(F)
        let top = fv.first ?? 0
        // The top eigenspace may be degenerate (sign(z₁z₂): span{I, X}; symmetric targets): its element
        // closest to the identity (the projection of I) is PSD when the eigenspace holds a PSD matrix of
        // full rank on the directions that grow, and its range is the easy subspace. 𝓕 is completely
        // positive, so otherwise the top eigenvector itself is PSD up to sign.
        func matrix(_ column: Int) -> Matrix {
            var m = Matrix(rows: k, cols: k)
            for b in 0..<n { m = m + fvec[b, column] * basis[b] }
            return m
        }
        let degenerate = (0..<n).filter { fv[$0] >= top - 1e-8 * max(abs(top), 1e-300) }
        var eigenvector = Matrix(rows: k, cols: k)
        for c in degenerate {
            let B = matrix(c)
            let overlap = (0..<k).reduce(0) { $0 + B[$1, $1] }
            eigenvector = eigenvector + overlap * B
        }
        let norm = eigenvector.values.map { $0 * $0 }.reduce(0, +).squareRoot()
        let projected = GSL.symmetricEigen(eigenvector).values
        if norm < 1e-8 || (projected.last ?? 0) < -1e-8 * norm {
            eigenvector = matrix(0)
            if (0..<k).reduce(0, { $0 + eigenvector[$1, $1] }) < 0 { eigenvector = -1 * eigenvector }
        } else {
            eigenvector = (1 / norm) * eigenvector
        }
        let (ev, evec) = GSL.symmetricEigen(eigenvector)
        let easy = (0..<k).filter { ev[$0] > 1e-8 * max(ev[0], 1e-300) && ev[$0] > 0 }.map { e in (0..<k).map { evec[$0, e] } }
        // Resolution of λ_max: each atom's G is known to ε/Z (ε the sum-rule error of the channel, Z the
        // atom's probability), so its term Z·G A G in 𝓕 is known to 2ε‖G‖ + min(ε²/Z, ε); below the sum of
        // these, 𝓕 is zero within accuracy (α_c = ∞).
        let epsilon = max(sumRuleError, 1e-16)
        let resolution = atoms.reduce(0.0) { total, a in
            let norm = a.G.values.map { $0 * $0 }.reduce(0, +).squareRoot()
            return total + 2 * epsilon * norm + min(epsilon * epsilon / a.weight, epsilon)
        }
        let easyThreshold = top > resolution ? 1 / top : .infinity
        self.init(
            alphaC: trivialBasis.isEmpty ? easyThreshold : 0, trivialMatrix: trivial, trivialSubspace: trivialBasis,
            operatorEigenvalues: fv, topEigenvector: eigenvector, easyThreshold: easyThreshold,
            easySubspace: top > resolution ? easy : [], operatorResolution: resolution,
            trivialResolution: trivialResolution)
    }
}

/// The check of a binned output's noiseless limit h → 0 (`StateEvolution.binningCheck()`): the easy threshold
/// at the channel's width h and at 2h, and the error estimate |1/λ(h) − 1/λ(2h)|/3 of the h² expansion.
public struct BinningCheck: Sendable, Hashable {
    public var width: Double
    public var easyThreshold: Double
    public var easyThresholdAtDoubleWidth: Double
    /// |1/λ(h) − 1/λ(2h)|/3: the h² term at h. The expansion also holds h⁴ and, for z₁z₂'s logarithmic
    /// density, slower terms: the true error is 1.00× the estimate for z₁² at h = 0.02 and 1.37× for binned
    /// z₁z₂ at h = 0.04 (`StateEvolutionTests.binningCheck`), so read it as the error's order of magnitude.
    public var errorEstimate: Double { abs(easyThreshold - easyThresholdAtDoubleWidth) / 3 }
}

extension StateEvolution {
    /// For a noiseless binned output: the easy threshold recomputed on bins of twice the width, and the
    /// resulting estimate of the binning error (the noiseless limit checked and reported). nil for a discrete
    /// or noisy output (the latter's bins are set by Δ) or when either threshold is infinite.
    public func binningCheck(analysis: WeakRecoveryAnalysis? = nil) -> BinningCheck? {
        guard problem.noise == 0, let h = channel.binWidth,
              let coarse = try? StateEvolution(problem: problem, channel: OutputChannel(problem: problem, resolution: 2 * h))
        else { return nil }
        let fine = analysis ?? weakRecovery(exactProduct: false)
        let other = coarse.weakRecovery(exactProduct: false)
        guard fine.easyThreshold.isFinite, other.easyThreshold.isFinite else { return nil }
        return BinningCheck(width: h, easyThreshold: fine.easyThreshold, easyThresholdAtDoubleWidth: other.easyThreshold)
    }
}
