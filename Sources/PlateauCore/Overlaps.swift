/// The order parameters of a two-layer student against a multi-index teacher
/// (EQUATIONS.md notation): M = WW*ᵀ/d (p×k), Q = WWᵀ/d (p×p), P = W*W*ᵀ/d (k×k), second layer a.
public struct Overlaps: Sendable, Hashable {
    public var M: Matrix
    public var Q: Matrix
    public var P: Matrix
    public var a: [Double]

    public init(M: Matrix, Q: Matrix, P: Matrix, a: [Double]) {
        self.M = M
        self.Q = Q
        self.P = P
        self.a = a
    }

    public var p: Int { Q.rows }
    public var k: Int { P.rows }

    /// Ω = [[Q, M], [Mᵀ, P]], the covariance of the local fields (λ, ν).
    public var jointCovariance: Matrix { Self.jointCovariance(M: M, Q: Q, P: P) }

    public static func jointCovariance(M: Matrix, Q: Matrix, P: Matrix) -> Matrix {
        let p = Q.rows, k = P.rows
        var omega = Matrix(rows: p + k, cols: p + k)
        for i in 0..<p { for j in 0..<p { omega[i, j] = Q[i, j] } }
        for i in 0..<p { for r in 0..<k { omega[i, p + r] = M[i, r]; omega[p + r, i] = M[i, r] } }
        for r in 0..<k { for s in 0..<k { omega[p + r, p + s] = P[r, s] } }
        return omega
    }

    /// Cosine similarity M_jr / √(Q_jj P_rr).
    public func cosine(_ j: Int, _ r: Int) -> Double {
        M[j, r] / (Q[j, j] * P[r, r]).squareRoot()
    }

    /// Observable names in the order of `observableValues`: M_j_r, Q_j_l (j ≤ l), a_j, cos_j_r (1-based).
    public static func observableNames(p: Int, k: Int) -> [String] {
        var names: [String] = []
        for j in 1...p { for r in 1...k { names.append("M_\(j)_\(r)") } }
        for j in 1...p { for l in j...p { names.append("Q_\(j)_\(l)") } }
        for j in 1...p { names.append("a_\(j)") }
        for j in 1...p { for r in 1...k { names.append("cos_\(j)_\(r)") } }
        return names
    }

    public var observableValues: [Double] {
        var v: [Double] = []
        for j in 0..<p { for r in 0..<k { v.append(M[j, r]) } }
        for j in 0..<p { for l in j..<p { v.append(Q[j, l]) } }
        v.append(contentsOf: a)
        for j in 0..<p { for r in 0..<k { v.append(cosine(j, r)) } }
        return v
    }
}

extension Trajectory {
    /// The observable columns shared by theory and simulation: `risk` first, then the overlap
    /// observables of `Overlaps.observableNames`.
    public static func overlapObservables(p: Int, k: Int) -> [String] {
        ["risk"] + Overlaps.observableNames(p: p, k: k)
    }

    /// Builds a curve from overlaps at each time, with the population risk computed by `risk`
    /// (the theory's function, so both sides use one definition).
    public static func fromOverlaps(times: [Double], overlaps: [Overlaps], risk: (Overlaps) -> Double) -> Trajectory {
        precondition(times.count == overlaps.count)
        let p = overlaps.first?.p ?? 1, k = overlaps.first?.k ?? 1
        var trajectory = Trajectory(observables: overlapObservables(p: p, k: k))
        for (t, o) in zip(times, overlaps) { trajectory.append(time: t, values: [risk(o)] + o.observableValues) }
        return trajectory
    }
}
