import Foundation
import PlateauCore
internal import CGSL

/// GSL set-up done once: the abort-on-error handler is switched off, so every GSL status is
/// checked by the caller instead of terminating the process.
enum GSL {
    static let ready: Bool = {
        gsl_set_error_handler_off()
        return true
    }()

    static func message(_ status: Int32) -> String {
        String(cString: gsl_strerror(status))
    }

    /// Nodes and weights of the n-point Gauss–Hermite rule for the standard normal density:
    /// Σᵢ wᵢ f(xᵢ) ≈ E[f(z)], z ~ N(0, 1) (GSL's fixed Hermite rule with weight e^{−x²/2},
    /// renormalised by √(2π)).
    static func gaussHermite(_ n: Int) -> (nodes: [Double], weights: [Double]) {
        _ = ready
        guard let w = gsl_integration_fixed_alloc(plateau_fixed_hermite(), n, 0, 0.5, 0, 0) else {
            fatalError("gsl_integration_fixed_alloc failed for n = \(n)")
        }
        defer { gsl_integration_fixed_free(w) }
        let x = gsl_integration_fixed_nodes(w)!, wt = gsl_integration_fixed_weights(w)!
        let norm = (2 * Double.pi).squareRoot()
        return ((0..<n).map { x[$0] }, (0..<n).map { wt[$0] / norm })
    }

    /// Inverse CDF of the standard normal.
    static func normalQuantile(_ p: Double) -> Double { gsl_cdf_ugaussian_Pinv(p) }
    /// Inverse CDF of Student's t with ν degrees of freedom.
    static func studentQuantile(_ p: Double, dof: Double) -> Double { gsl_cdf_tdist_Pinv(p, dof) }
}

/// Where a CBLAS symbol used by GSL resolves at run time (for the check that it is OpenBLAS,
/// not libgslcblas).
public func cblasProviderForGSL(symbol: String = "cblas_dgemm") -> String? {
    _ = gsl_blas_dgemm  // make sure libgsl is linked into the image being inspected
    guard let address = dlsym(UnsafeMutableRawPointer(bitPattern: 0), symbol) else { return nil }
    // Find the mapped file containing the address (Linux: /proc/self/maps).
    let target = UInt(bitPattern: address)
    // /proc files report size 0: read to the end rather than by size.
    guard let data = FileHandle(forReadingAtPath: "/proc/self/maps")?.readDataToEndOfFile() else { return nil }
    let maps = String(decoding: data, as: UTF8.self)
    for line in maps.split(separator: "\n") {
        let parts = line.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count >= 6 else { continue }
        let range = parts[0].split(separator: "-")
        guard range.count == 2, let lo = UInt(range[0], radix: 16), let hi = UInt(range[1], radix: 16) else { continue }
        if target >= lo && target < hi { return String(parts[5]) }
    }
    return nil
}

extension GSL {
    /// Moore–Penrose pseudo-inverse of a symmetric matrix by GSL's symmetric eigen-solver:
    /// eigenvalues below `relativeCutoff`·max|eigenvalue| are treated as zero.
    static func symmetricPseudoInverse(_ m: PlateauCore.Matrix, relativeCutoff: Double = 1e-10) -> PlateauCore.Matrix {
        let n = m.rows
        guard n > 0 else { return m }
        var out = PlateauCore.Matrix(rows: n, cols: n)
        m.values.withUnsafeBufferPointer { mp in
            out.values.withUnsafeMutableBufferPointer { op in
                SymmetricEigenWorkspace(n).pseudoInverse(mp.baseAddress!, into: op.baseAddress!, relativeCutoff: relativeCutoff)
            }
        }
        return out
    }

    /// Eigenvalues (descending when `sorted`, else in GSL's order) and orthonormal eigenvectors
    /// (columns, in the same order) of the symmetric part of `m`, by GSL's symmetric eigen-solver.
    static func symmetricEigen(_ m: PlateauCore.Matrix, sorted: Bool = true) -> (values: [Double], vectors: PlateauCore.Matrix) {
        let n = m.rows
        guard n > 0 else { return ([], m) }
        let solver = SymmetricEigenWorkspace(n)
        m.values.withUnsafeBufferPointer { solver.decompose($0.baseAddress!, sorted: sorted) }
        var vectors = PlateauCore.Matrix(rows: n, cols: n)
        for i in 0..<n { for j in 0..<n { vectors[i, j] = solver.vector(i, j) } }
        return ((0..<n).map { solver.value($0) }, vectors)
    }
}

/// GSL's symmetric eigen-solver for n×n matrices with its storage allocated once, so that a loop
/// (the exact map's pseudo-inverse of Q⊥ every step) allocates nothing.
final class SymmetricEigenWorkspace {
    let n: Int
    private let a: UnsafeMutablePointer<gsl_matrix>, evec: UnsafeMutablePointer<gsl_matrix>
    private let eval: UnsafeMutablePointer<gsl_vector>, work: UnsafeMutablePointer<gsl_eigen_symmv_workspace>

    init(_ n: Int) {
        precondition(n > 0)
        _ = GSL.ready
        // GSL's eigen-solver calls the CBLAS behind it (OpenBLAS): on matrices this small its
        // threads cost far more than they save (a 10×10 decomposition took ~50 ms of wall time on
        // the shared 2-core machine, against ~10 µs single-threaded).
        openblas_set_num_threads(1)
        self.n = n
        a = gsl_matrix_alloc(n, n)!
        evec = gsl_matrix_alloc(n, n)!
        eval = gsl_vector_alloc(n)!
        work = gsl_eigen_symmv_alloc(n)!
    }

    deinit {
        gsl_matrix_free(a)
        gsl_matrix_free(evec)
        gsl_vector_free(eval)
        gsl_eigen_symmv_free(work)
    }

    /// Decomposes the symmetric part of the row-major n×n matrix at `m`.
    func decompose(_ m: UnsafePointer<Double>, sorted: Bool) {
        for i in 0..<n { for j in 0..<n { gsl_matrix_set(a, i, j, 0.5 * (m[i * n + j] + m[j * n + i])) } }
        gsl_eigen_symmv(a, eval, evec, work)
        if sorted { gsl_eigen_symmv_sort(eval, evec, GSL_EIGEN_SORT_VAL_DESC) }
    }

    /// Eigenvalue e and component i of its eigenvector, of the last decomposition.
    func value(_ e: Int) -> Double { gsl_vector_get(eval, e) }
    func vector(_ i: Int, _ e: Int) -> Double { gsl_matrix_get(evec, i, e) }

    /// The pseudo-inverse of the symmetric part of the row-major n×n matrix at `m`, into `out`
    /// (`GSL.symmetricPseudoInverse`).
    func pseudoInverse(_ m: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>, relativeCutoff: Double) {
        decompose(m, sorted: false)
        var largest = 0.0
        for e in 0..<n { largest = max(largest, abs(value(e))) }
        let cutoff = relativeCutoff * largest
        for i in 0..<(n * n) { out[i] = 0 }
        for e in 0..<n where abs(value(e)) > cutoff && value(e) != 0 {
            let inv = 1 / value(e)
            for i in 0..<n { for j in 0..<n { out[i * n + j] += vector(i, e) * inv * vector(j, e) } }
        }
    }
}

extension GSL {
    /// Nodes and weights of the n-point Gauss–Legendre rule on [0, 1] (GSL's glfixed tables).
    static func gaussLegendreUnit(_ n: Int) -> (nodes: [Double], weights: [Double]) {
        _ = ready
        let table = gsl_integration_glfixed_table_alloc(n)!
        defer { gsl_integration_glfixed_table_free(table) }
        var x = [Double](repeating: 0, count: n), w = x
        for i in 0..<n { _ = gsl_integration_glfixed_point(0, 1, i, &x[i], &w[i], table) }
        return (x, w)
    }
}

/// A Swift closure behind a `gsl_function` (one trampoline for every GSL integration).
final class GSLIntegrand {
    let f: (Double) -> Double
    init(_ f: @escaping (Double) -> Double) { self.f = f }

    static let trampoline: @convention(c) (Double, UnsafeMutableRawPointer?) -> Double = { x, context in
        Unmanaged<GSLIntegrand>.fromOpaque(context!).takeUnretainedValue().f(x)
    }

    /// Runs `body` with a `gsl_function` evaluating `f`.
    static func with<R>(_ f: @escaping (Double) -> Double, _ body: (inout gsl_function) -> R) -> R {
        let box = Unmanaged.passRetained(GSLIntegrand(f))
        defer { box.release() }
        var function = gsl_function(function: trampoline, params: box.toOpaque())
        return body(&function)
    }
}

extension GSL {
    /// x solving A x = b by GSL's LU decomposition with partial pivoting; nil when A is singular.
    static func solve(_ A: PlateauCore.Matrix, _ b: [Double]) -> [Double]? {
        let n = A.rows
        precondition(A.cols == n && b.count == n)
        guard n > 0 else { return [] }
        _ = ready
        let a = gsl_matrix_alloc(n, n)!, p = gsl_permutation_alloc(n)!, rhs = gsl_vector_alloc(n)!, x = gsl_vector_alloc(n)!
        defer { gsl_matrix_free(a); gsl_permutation_free(p); gsl_vector_free(rhs); gsl_vector_free(x) }
        for i in 0..<n { for j in 0..<n { gsl_matrix_set(a, i, j, A[i, j]) }; gsl_vector_set(rhs, i, b[i]) }
        var sign: Int32 = 0
        guard gsl_linalg_LU_decomp(a, p, &sign) == GSL_SUCCESS else { return nil }
        if (0..<n).contains(where: { gsl_matrix_get(a, $0, $0) == 0 }) { return nil }
        guard gsl_linalg_LU_solve(a, p, rhs, x) == GSL_SUCCESS else { return nil }
        let out = (0..<n).map { gsl_vector_get(x, $0) }
        return out.allSatisfy(\.isFinite) ? out : nil
    }

    /// Eigenvalues (real and imaginary parts, by descending real part) and the real parts of the
    /// eigenvectors (columns, unit norm, same order) of a general real matrix, by GSL's nonsymmetric
    /// eigen-solver (Francis QR); nil when it does not converge.
    static func nonsymmetricEigen(_ m: PlateauCore.Matrix) -> (real: [Double], imaginary: [Double], vectors: PlateauCore.Matrix)? {
        let n = m.rows
        guard n > 0 else { return ([], [], m) }
        _ = ready
        let a = gsl_matrix_alloc(n, n)!, eval = gsl_vector_complex_alloc(n)!, evec = gsl_matrix_complex_alloc(n, n)!
        let work = gsl_eigen_nonsymmv_alloc(n)!
        defer { gsl_matrix_free(a); gsl_vector_complex_free(eval); gsl_matrix_complex_free(evec); gsl_eigen_nonsymmv_free(work) }
        for i in 0..<n { for j in 0..<n { gsl_matrix_set(a, i, j, m[i, j]) } }
        guard gsl_eigen_nonsymmv(a, eval, evec, work) == GSL_SUCCESS else { return nil }
        gsl_eigen_nonsymmv_sort(eval, evec, GSL_EIGEN_SORT_VAL_DESC)  // by modulus: re-sorted below
        let values = (0..<n).map { gsl_vector_complex_get(eval, $0) }
        let order = (0..<n).sorted { values[$0].dat.0 > values[$1].dat.0 }
        var vectors = PlateauCore.Matrix(rows: n, cols: n)
        for (c, e) in order.enumerated() {
            var norm = 0.0
            for i in 0..<n { let z = gsl_matrix_complex_get(evec, i, e); vectors[i, c] = z.dat.0; norm += z.dat.0 * z.dat.0 }
            if norm > 0 { for i in 0..<n { vectors[i, c] /= norm.squareRoot() } }
        }
        return (order.map { values[$0].dat.0 }, order.map { values[$0].dat.1 }, vectors)
    }
}
