/// A small dense real matrix, row-major. Used for overlaps (p×k, p×p, k×k), never for d-sized data.
public struct Matrix: Sendable, Hashable, Codable, CustomStringConvertible {
    public let rows: Int
    public let cols: Int
    public var values: [Double]

    public init(rows: Int, cols: Int, values: [Double]) {
        precondition(values.count == rows * cols, "Matrix: \(values.count) values for \(rows)×\(cols)")
        self.rows = rows
        self.cols = cols
        self.values = values
    }

    public init(rows: Int, cols: Int, repeating value: Double = 0) {
        self.init(rows: rows, cols: cols, values: Array(repeating: value, count: rows * cols))
    }

    /// From nested rows; all rows must have the same length.
    public init(_ nested: [[Double]]) {
        let r = nested.count
        let c = nested.first?.count ?? 0
        precondition(nested.allSatisfy { $0.count == c }, "Matrix: ragged rows")
        self.init(rows: r, cols: c, values: nested.flatMap { $0 })
    }

    public static func identity(_ n: Int) -> Matrix {
        var m = Matrix(rows: n, cols: n)
        for i in 0..<n { m[i, i] = 1 }
        return m
    }

    public static func diagonal(_ d: [Double]) -> Matrix {
        var m = Matrix(rows: d.count, cols: d.count)
        for i in 0..<d.count { m[i, i] = d[i] }
        return m
    }

    @inlinable public subscript(i: Int, j: Int) -> Double {
        get { values[i * cols + j] }
        set { values[i * cols + j] = newValue }
    }

    public var nested: [[Double]] { (0..<rows).map { i in Array(values[(i * cols)..<((i + 1) * cols)]) } }

    public var transposed: Matrix {
        var t = Matrix(rows: cols, cols: rows)
        for i in 0..<rows { for j in 0..<cols { t[j, i] = self[i, j] } }
        return t
    }

    public static func * (lhs: Matrix, rhs: Matrix) -> Matrix {
        precondition(lhs.cols == rhs.rows, "Matrix product: \(lhs.rows)×\(lhs.cols) · \(rhs.rows)×\(rhs.cols)")
        var out = Matrix(rows: lhs.rows, cols: rhs.cols)
        for i in 0..<lhs.rows {
            for l in 0..<lhs.cols {
                let a = lhs[i, l]
                if a == 0 { continue }
                for j in 0..<rhs.cols { out[i, j] += a * rhs[l, j] }
            }
        }
        return out
    }

    public static func + (lhs: Matrix, rhs: Matrix) -> Matrix {
        precondition(lhs.rows == rhs.rows && lhs.cols == rhs.cols)
        return Matrix(rows: lhs.rows, cols: lhs.cols, values: zip(lhs.values, rhs.values).map { $0 + $1 })
    }

    public static func - (lhs: Matrix, rhs: Matrix) -> Matrix {
        precondition(lhs.rows == rhs.rows && lhs.cols == rhs.cols)
        return Matrix(rows: lhs.rows, cols: lhs.cols, values: zip(lhs.values, rhs.values).map { $0 - $1 })
    }

    public static func * (lhs: Double, rhs: Matrix) -> Matrix {
        Matrix(rows: rhs.rows, cols: rhs.cols, values: rhs.values.map { lhs * $0 })
    }

    public var isSquare: Bool { rows == cols }
    public var allFinite: Bool { values.allSatisfy { $0.isFinite } }

    public func isSymmetric(tolerance: Double = 1e-12) -> Bool {
        guard isSquare else { return false }
        for i in 0..<rows { for j in (i + 1)..<max(i + 1, cols) {
            let scale = max(1, abs(self[i, j]), abs(self[j, i]))
            if abs(self[i, j] - self[j, i]) > tolerance * scale { return false }
        } }
        return true
    }

    /// Lower-triangular Cholesky factor L with L Lᵀ = self, for a symmetric positive semi-definite
    /// matrix. Pivots smaller than `tolerance`·scale are treated as zero (their column of L is set
    /// to zero), so PSD matrices of deficient rank factor too. `scale` defaults to the largest
    /// diagonal entry; pass the scale of the quantities a matrix was computed from when it is a
    /// difference that may vanish up to rounding (a Schur complement Q − M P⁻¹ Mᵀ, say). Returns
    /// nil when the matrix has a clearly negative direction (a pivot below −tolerance·scale) or is
    /// not square/finite.
    public func choleskyPSD(tolerance: Double = 1e-10, scale explicitScale: Double? = nil) -> Matrix? {
        guard isSquare, allFinite else { return nil }
        var L = self
        let factored = L.values.withUnsafeMutableBufferPointer {
            Self.choleskyPSDInPlace($0.baseAddress!, rows, tolerance: tolerance, scale: explicitScale)
        }
        guard factored else { return nil }
        for i in 0..<rows { for j in (i + 1)..<max(i + 1, rows) { L[i, j] = 0 } }
        return L
    }

    /// `choleskyPSD` without allocation, for checks that run every step: factors the finite
    /// symmetric row-major n×n matrix at `a` in place (its lower triangle becomes L; the upper
    /// triangle is left as it was) and says whether it is PSD to `tolerance`.
    public static func choleskyPSDInPlace(_ a: UnsafeMutablePointer<Double>, _ n: Int, tolerance: Double,
                                          scale explicitScale: Double? = nil) -> Bool {
        var largest = 0.0
        for i in 0..<n { largest = max(largest, abs(a[i * n + i])) }
        let scale = max(1e-300, explicitScale ?? largest)
        for j in 0..<n {
            var s = a[j * n + j]
            for k in 0..<j { s -= a[j * n + k] * a[j * n + k] }
            if s < -tolerance * scale { return false }
            if s <= tolerance * scale {
                // Zero pivot: the rest of column j must vanish too for PSD.
                for i in (j + 1)..<max(j + 1, n) {
                    var t = a[i * n + j]
                    for k in 0..<j { t -= a[i * n + k] * a[j * n + k] }
                    if abs(t) > tolerance.squareRoot() * scale { return false }
                }
                for i in j..<n { a[i * n + j] = 0 }
                continue
            }
            let d = s.squareRoot()
            a[j * n + j] = d
            for i in (j + 1)..<max(j + 1, n) {
                var t = a[i * n + j]
                for k in 0..<j { t -= a[i * n + k] * a[j * n + k] }
                a[i * n + j] = t / d
            }
        }
        return true
    }

    /// `choleskyPSDInPlace`'s verdict without its square roots, for checks that run every step: the
    /// root-free factorisation A = L D Lᵀ (unit lower L) has the pivots d_j and the off-diagonal
    /// remainders of the Cholesky factorisation (d_j = L_jj², and a_ij − Σ_k l_ik d_k l_jk is the same
    /// remainder as a_ij − Σ_k L_ik L_jk), so it takes the same decisions against `tolerance`, up to
    /// rounding, at one division per pivot. Overwrites the finite symmetric row-major n×n matrix at
    /// `a` (l below the diagonal, d on it, l_jk d_k at (k, j) above it).
    public static func isPSDInPlace(_ a: UnsafeMutablePointer<Double>, _ n: Int, tolerance: Double,
                                    scale explicitScale: Double? = nil) -> Bool {
        isPSDInPlace(a, n, tolerance: tolerance, scale: explicitScale, factored: 0)!
    }

    /// `isPSDInPlace` when the leading `factored` × `factored` block is fixed and already factored
    /// in place (l below its diagonal, d on it, l_jk d_k above it: `isPSDInPlace` of the block, copied
    /// into the leading block at stride n) and rows `factored..<n` hold the matrix's lower triangle:
    /// only those rows are factored. Pass `scale` (the block's diagonal now holds pivots). nil when a
    /// pivot of the block is not clear of zero (≤ `tolerance`·scale): then factor the whole matrix.
    public static func isPSDInPlace(_ a: UnsafeMutablePointer<Double>, _ n: Int, tolerance: Double,
                                    scale explicitScale: Double?, factored: Int) -> Bool? {
        var largest = 0.0
        for i in 0..<n { largest = max(largest, abs(a[i * n + i])) }
        let scale = max(1e-300, explicitScale ?? largest)
        for j in 0..<factored {
            // Column j of the fixed block: its pivot and u_k = l_jk d_k are in place; eliminate the rows below it.
            let d = a[j * n + j]
            guard d > tolerance * scale else { return nil }
            let inverse = 1 / d
            for i in factored..<n {
                var t = a[i * n + j]
                for k in 0..<j { t -= a[i * n + k] * a[k * n + j] }
                a[i * n + j] = t * inverse
            }
        }
        for j in factored..<n {
            // u_k = l_jk d_k (k < j), at (k, j) above the diagonal (a_kj = a_jk is not needed any more).
            for k in 0..<j { a[k * n + j] = a[j * n + k] * a[k * n + k] }
            var s = a[j * n + j]
            for k in 0..<j { s -= a[j * n + k] * a[k * n + j] }
            if s < -tolerance * scale { return false }
            if s <= tolerance * scale {
                // Zero pivot: the rest of column j must vanish too for PSD.
                for i in (j + 1)..<max(j + 1, n) {
                    var t = a[i * n + j]
                    for k in 0..<j { t -= a[i * n + k] * a[k * n + j] }
                    if abs(t) > tolerance.squareRoot() * scale { return false }
                }
                for i in j..<n { a[i * n + j] = 0 }
                continue
            }
            a[j * n + j] = s
            let inverse = 1 / s
            for i in (j + 1)..<max(j + 1, n) {
                var t = a[i * n + j]
                for k in 0..<j { t -= a[i * n + k] * a[k * n + j] }
                a[i * n + j] = t * inverse
            }
        }
        return true
    }

    public func isPositiveSemidefinite(tolerance: Double = 1e-10) -> Bool {
        isSymmetric(tolerance: 1e-9) && choleskyPSD(tolerance: tolerance) != nil
    }

    /// Inverse of a symmetric positive-definite matrix (nil if singular to `tolerance`).
    public func inverseSPD(tolerance: Double = 1e-13) -> Matrix? {
        guard let L = choleskyPSD(tolerance: tolerance) else { return nil }
        let n = rows
        for i in 0..<n where L[i, i] == 0 { return nil }
        // Solve L Lᵀ X = I column by column.
        var inv = Matrix(rows: n, cols: n)
        for c in 0..<n {
            var y = [Double](repeating: 0, count: n)
            for i in 0..<n {
                var s = i == c ? 1.0 : 0.0
                for k in 0..<i { s -= L[i, k] * y[k] }
                y[i] = s / L[i, i]
            }
            var x = [Double](repeating: 0, count: n)
            for i in stride(from: n - 1, through: 0, by: -1) {
                var s = y[i]
                for k in (i + 1)..<max(i + 1, n) { s -= L[k, i] * x[k] }
                x[i] = s / L[i, i]
            }
            for r in 0..<n { inv[r, c] = x[r] }
        }
        return inv
    }

    public var description: String {
        "[" + nested.map { "[" + $0.map { "\($0)" }.joined(separator: ", ") + "]" }.joined(separator: ", ") + "]"
    }
}
