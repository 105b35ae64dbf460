import PlateauCore

/// Teacher and student weights at finite d whose overlaps are exactly the prescribed ones (to
/// rounding): EQUATIONS.md §4, "prescribed overlaps constructed exactly at finite d".
///
/// With O (k×d) and U (p×d) orthonormal rows spanning orthogonal subspaces (a random basis drawn
/// from the seed):
///   W* = √d L O,        L Lᵀ = P             ⇒ W*W*ᵀ/d = P;
///   W  = √d (A O + B U), A Lᵀ = M, B Bᵀ = Q − AAᵀ ⇒ WW*ᵀ/d = M, WWᵀ/d = Q.
/// When P is invertible, AAᵀ = M P⁻¹ Mᵀ and Q − AAᵀ is the Schur complement Q⊥ of Ω = [[Q, M],
/// [Mᵀ, P]], PSD exactly when Ω is. A singular P (repeated teacher directions) is handled by the
/// PSD-tolerant factor: the components of M along P's null space vanish when Ω is PSD.
enum WeightConstruction {
    /// `count` orthonormal rows of length d (row-major), from Gaussian vectors by modified
    /// Gram–Schmidt applied twice ("twice is enough": orthonormal to rounding).
    static func orthonormalRows(_ count: Int, dimension d: Int, rng: inout Xoshiro256PlusPlus) -> [Double] {
        precondition(count <= d)
        var rows = [Double](repeating: 0, count: count * d)
        rows.withUnsafeMutableBufferPointer { buf in
            rng.fillStandardNormal(buf)
            let base = buf.baseAddress!
            for i in 0..<count {
                let ri = base + i * d
                for _ in 0..<2 {
                    for j in 0..<i {
                        let rj = base + j * d
                        var dot = 0.0
                        for c in 0..<d { dot += ri[c] * rj[c] }
                        for c in 0..<d { ri[c] -= dot * rj[c] }
                    }
                }
                var norm = 0.0
                for c in 0..<d { norm += ri[c] * ri[c] }
                let scale = 1 / norm.squareRoot()
                for c in 0..<d { ri[c] *= scale }
            }
        }
        return rows
    }

    /// The stacked weights [W; W*] ((p + k)×d, row-major: student rows first) for the experiment's
    /// teacher covariance and initial condition, drawn from `rng`.
    static func stackedWeights(_ experiment: Experiment, dimension d: Int, rng: inout Xoshiro256PlusPlus) throws -> [Double] {
        let p = experiment.student.p, k = experiment.teacher.k
        let P = experiment.teacher.covariance
        guard let L = factorPSD(P, scale: maxDiagonal(P)) else {
            throw SpecError(field: "teacher.P", value: P.description, reason: "must be positive semi-definite")
        }
        let basis = orthonormalRows(k + p, dimension: d, rng: &rng)   // rows 0..<k: O, rows k..<k+p: U
        let sqrtD = Double(d).squareRoot()
        var stacked = [Double](repeating: 0, count: (p + k) * d)

        // Teacher rows p..<p+k: √d L O.
        for r in 0..<k {
            for s in 0...r where L[r, s] != 0 {
                let c = sqrtD * L[r, s]
                for i in 0..<d { stacked[(p + r) * d + i] += c * basis[s * d + i] }
            }
        }

        // Student rows 0..<p.
        var A = Matrix(rows: p, cols: k)   // coefficients on O
        var B = Matrix(rows: p, cols: p)   // coefficients on U
        switch experiment.initialization {
        case let .overlaps(M, Q):
            A = solveRightLowerTransposed(M, L)
            let schur = Q - A * A.transposed
            guard let factor = factorPSD(schur, scale: max(maxDiagonal(Q), maxDiagonal(A * A.transposed))) else {
                throw SpecError(field: "init", value: "M = \(M), Q = \(Q)",
                                reason: "Q − M P⁻¹ Mᵀ must be positive semi-definite")
            }
            B = factor
        case let .orthogonal(Q):
            guard let factor = factorPSD(Q, scale: maxDiagonal(Q)) else {
                throw SpecError(field: "init.orthogonal.Q", value: Q.description, reason: "must be positive semi-definite")
            }
            B = factor
        case let .random(scale, _):
            stacked.withUnsafeMutableBufferPointer { buf in
                let w = UnsafeMutableBufferPointer(rebasing: buf[0..<(p * d)])
                rng.fillStandardNormal(w)
                for i in w.indices { w[i] *= scale }
            }
            return stacked
        }
        for j in 0..<p {
            for s in 0..<k where A[j, s] != 0 {
                let c = sqrtD * A[j, s]
                for i in 0..<d { stacked[j * d + i] += c * basis[s * d + i] }
            }
            for l in 0..<p where B[j, l] != 0 {
                let c = sqrtD * B[j, l]
                for i in 0..<d { stacked[j * d + i] += c * basis[(k + l) * d + i] }
            }
        }
        return stacked
    }

    /// X with X Lᵀ = M for lower-triangular L (forward substitution on each row of M); a zero
    /// pivot of L (a PSD factor of deficient rank) gives a zero column of X.
    static func solveRightLowerTransposed(_ M: Matrix, _ L: Matrix) -> Matrix {
        let n = L.rows
        var X = Matrix(rows: M.rows, cols: n)
        for j in 0..<M.rows {
            for s in 0..<n {
                guard L[s, s] != 0 else { continue }
                var v = M[j, s]
                for t in 0..<s { v -= X[j, t] * L[s, t] }
                X[j, s] = v / L[s, s]
            }
        }
        return X
    }

    /// A lower factor F with F Fᵀ = S (S symmetrised), treating pivots below 1e-10·`scale` as zero:
    /// the tolerance is absolute in the units of `scale` (e.g. Q's diagonal), so a Schur complement
    /// that is zero up to rounding (a student in the teacher span) factors to zero instead of failing.
    /// PSD factor of a symmetrised S whose entries may vanish up to rounding relative to `scale`.
    static func factorPSD(_ S: Matrix, scale: Double) -> Matrix? {
        let n = S.rows
        var sym = S
        for i in 0..<n { for j in 0..<i { let m = 0.5 * (S[i, j] + S[j, i]); sym[i, j] = m; sym[j, i] = m } }
        return sym.choleskyPSD(tolerance: 1e-10, scale: scale)
    }

    static func maxDiagonal(_ S: Matrix) -> Double {
        (0..<S.rows).map { abs(S[$0, $0]) }.max() ?? 0
    }
}
