import Foundation

/// A sparse multivariate polynomial: exponent vector (one entry per variable) → coefficient.
/// Exactly-zero coefficients are never stored.
struct SparsePolynomial {
    var variableCount: Int
    var terms: [[Int]: Double] = [:]

    init(variableCount: Int, terms: [[Int]: Double] = [:]) {
        self.variableCount = variableCount
        self.terms = terms.filter { $0.value != 0 }
    }

    static func constant(_ c: Double, variableCount: Int) -> SparsePolynomial {
        SparsePolynomial(variableCount: variableCount, terms: [Array(repeating: 0, count: variableCount): c])
    }

    /// Variable `index` (1-based).
    static func variable(_ index: Int, variableCount: Int) -> SparsePolynomial {
        var exponents = Array(repeating: 0, count: variableCount)
        exponents[index - 1] = 1
        return SparsePolynomial(variableCount: variableCount, terms: [exponents: 1])
    }

    static func + (a: SparsePolynomial, b: SparsePolynomial) -> SparsePolynomial {
        var terms = a.terms
        for (e, c) in b.terms { terms[e, default: 0] += c }
        return SparsePolynomial(variableCount: a.variableCount, terms: terms)
    }

    func scaled(by s: Double) -> SparsePolynomial {
        SparsePolynomial(variableCount: variableCount, terms: terms.mapValues { $0 * s })
    }

    func divided(by d: Double) -> SparsePolynomial {
        SparsePolynomial(variableCount: variableCount, terms: terms.mapValues { $0 / d })
    }

    static func - (a: SparsePolynomial, b: SparsePolynomial) -> SparsePolynomial { a + b.scaled(by: -1) }

    static func * (a: SparsePolynomial, b: SparsePolynomial) -> SparsePolynomial {
        var terms: [[Int]: Double] = [:]
        for (ea, ca) in a.terms {
            for (eb, cb) in b.terms {
                var e = ea
                for i in e.indices { e[i] += eb[i] }
                terms[e, default: 0] += ca * cb
            }
        }
        return SparsePolynomial(variableCount: a.variableCount, terms: terms)
    }

    /// selfⁿ by repeated squaring, n ≥ 0.
    func raised(to n: Int) -> SparsePolynomial {
        var result = SparsePolynomial.constant(1, variableCount: variableCount)
        var base = self, e = n
        while e > 0 {
            if e & 1 == 1 { result = result * base }
            e >>= 1
            if e > 0 { base = base * base }
        }
        return result
    }

    /// Heₙ(self) by the recurrence He_{k+1} = u He_k − k He_{k−1}.
    func hermite(_ n: Int) -> SparsePolynomial {
        var previous = SparsePolynomial.constant(1, variableCount: variableCount)
        if n == 0 { return previous }
        var current = self
        var k = 1
        while k < n {
            let next = self * current - previous.scaled(by: Double(k))
            previous = current
            current = next
            k += 1
        }
        return current
    }
}

extension Formula.Node {
    /// The value of a variable-free exponent if it is a non-negative integer (≤ Int32.max).
    var naturalExponent: Int? {
        guard !hasVariables else { return nil }
        let v = evaluate([])
        guard v >= 0, v <= Double(Int32.max), v == v.rounded(.towardZero) else { return nil }
        return Int(v)
    }

    var isPolynomial: Bool {
        if !hasVariables { return evaluate([]).isFinite }
        switch self {
        case .constant, .variable:
            return true
        case let .negate(u), let .hermite(_, u):
            return u.isPolynomial
        case let .add(a, b), let .subtract(a, b), let .multiply(a, b):
            return a.isPolynomial && b.isPolynomial
        case let .divide(a, b):
            guard !b.hasVariables else { return false }
            let d = b.evaluate([])
            return d.isFinite && d != 0 && a.isPolynomial
        case let .power(a, b):
            return b.naturalExponent != nil && a.isPolynomial
        case .call, .minimum, .maximum:
            return false
        }
    }

    /// Upper bounds on the total degree and the number of monomials of the expansion of a polynomial
    /// node, computed without expanding; both saturate at 2³⁰ (anything that large is refused anyway).
    func expansionBound(variableCount n: Int) -> (degree: Int, terms: Int) {
        let cap = 1 << 30
        func add(_ a: Int, _ b: Int) -> Int { min(cap, a + b) }
        func mul(_ a: Int, _ b: Int) -> Int { a == 0 || b == 0 ? 0 : (a > cap / b ? cap : min(cap, a * b)) }
        func pow(_ a: Int, _ e: Int) -> Int {
            var r = 1
            for _ in 0..<min(e, 64) { r = mul(r, a); if r == cap || a <= 1 { break } }
            return a <= 1 ? (e == 0 ? 1 : a) : r
        }
        /// C(d + n, n): the monomials of total degree ≤ d in n variables.
        func monomials(_ d: Int) -> Int {
            var c = 1
            for i in 1...max(n, 1) { c = mul(c, d + i) / i; if c >= cap { return cap } }
            return c
        }
        func bounded(_ d: Int, _ t: Int) -> (degree: Int, terms: Int) { (d, min(t, monomials(d))) }
        if !hasVariables { return (0, 1) }
        switch self {
        case .constant: return (0, 1)
        case .variable: return (1, 1)
        case let .negate(u), let .divide(u, _): return u.expansionBound(variableCount: n)
        case let .add(a, b), let .subtract(a, b):
            let (x, y) = (a.expansionBound(variableCount: n), b.expansionBound(variableCount: n))
            return bounded(max(x.degree, y.degree), add(x.terms, y.terms))
        case let .multiply(a, b):
            let (x, y) = (a.expansionBound(variableCount: n), b.expansionBound(variableCount: n))
            return bounded(add(x.degree, y.degree), mul(x.terms, y.terms))
        case let .power(a, b):
            let x = a.expansionBound(variableCount: n), e = b.naturalExponent ?? 0
            return bounded(mul(x.degree, e), pow(x.terms, e))
        case let .hermite(k, u):
            let x = u.expansionBound(variableCount: n)
            return bounded(mul(x.degree, k), pow(add(x.terms, 1), k))
        case .call, .minimum, .maximum: return (cap, cap)
        }
    }

    /// The expansion; requires `isPolynomial`.
    func polynomial(variableCount n: Int) -> SparsePolynomial {
        if !hasVariables { return .constant(evaluate([]), variableCount: n) }
        switch self {
        case let .constant(c): return .constant(c, variableCount: n)
        case let .variable(i): return .variable(i, variableCount: n)
        case let .negate(u): return u.polynomial(variableCount: n).scaled(by: -1)
        case let .add(a, b): return a.polynomial(variableCount: n) + b.polynomial(variableCount: n)
        case let .subtract(a, b): return a.polynomial(variableCount: n) - b.polynomial(variableCount: n)
        case let .multiply(a, b): return a.polynomial(variableCount: n) * b.polynomial(variableCount: n)
        case let .divide(a, b): return a.polynomial(variableCount: n).divided(by: b.evaluate([]))
        case let .power(a, b): return a.polynomial(variableCount: n).raised(to: b.naturalExponent!)
        case let .hermite(k, u): return u.polynomial(variableCount: n).hermite(k)
        case .call, .minimum, .maximum: preconditionFailure("not a polynomial")
        }
    }
}
