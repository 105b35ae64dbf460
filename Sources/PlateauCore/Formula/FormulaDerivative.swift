import Foundation

extension Formula {
    /// The symbolic partial derivative ∂/∂(variable), with `variable` 1-based (1…`variables.count`;
    /// for an activation, 1 is x). Constants 0 and 1 are simplified away (0·u = 0, 1·u = u, u + 0 = u,
    /// u^1 = u, …) and arithmetic between two numbers is folded; nothing else is rewritten.
    ///
    /// Rules: d Heₙ(u) = n He_{n−1}(u) du; d erf(u) = (2/√π) e^{−u²} du; d erfc(u) = −(2/√π) e^{−u²} du;
    /// d tanh(u) = (1 − tanh(u)²) du; d sigmoid(u) = sigmoid(u)(1 − sigmoid(u)) du; d exp(u) = exp(u) du;
    /// d log(u) = du/u; d sqrt(u) = du/(2 sqrt(u)); d sin(u) = cos(u) du; d cos(u) = −sin(u) du;
    /// d abs(u) = sign(u) du; d relu(u) = step(u) du; d u^c = c u^(c−1) du for a variable-free c, and
    /// d u^v = u^v (dv log(u) + v du/u) otherwise; d min(u, v) = du + step(u − v)(dv − du) and
    /// d max(u, v) = du + step(v − u)(dv − du) (du at a tie).
    ///
    /// Only the pointwise (almost-everywhere) derivative is represented: d sign(u) = d step(u) = 0, and
    /// the Dirac masses of sign′, step′ (and the jumps of relu′, abs′, min′, max′ at their kinks) are not.
    /// So the derivative of `sign(z1*z2)` is 0, and of `relu(x)` is `step(x)` (0 at x = 0).
    public func derivative(withRespectTo variable: Int) -> Formula {
        precondition((1...variables.count).contains(variable),
            "variable \(variable) is not one of 1…\(variables.count) of this \(variables)")
        return Formula(root: root.derivative(variable), variables: variables)
    }

    /// σ′ of a one-variable expression (an activation, or a k = 1 target).
    public func derivative() -> Formula {
        precondition(variables.count == 1, "derivative() needs a one-variable expression; use derivative(withRespectTo:)")
        return derivative(withRespectTo: 1)
    }

    /// The partial derivatives with respect to variables 1…`variables.count`.
    public var gradient: [Formula] {
        (1...variables.count).map { derivative(withRespectTo: $0) }
    }
}

extension Formula.Node {
    var constantValue: Double? {
        if case let .constant(c) = self { return c }
        return nil
    }

    var isZero: Bool { constantValue == 0 }
    var isOne: Bool { constantValue == 1 }

    /// A folded constant, or nil when the result would not be finite (then the operation is kept).
    static func folded(_ value: Double) -> Formula.Node? {
        value.isFinite ? .constant(value + 0) : nil  // + 0 turns −0 into +0
    }

    // Simplifying constructors (0/1 rules and number-number folding only).

    static func neg(_ u: Formula.Node) -> Formula.Node {
        switch u {
        case let .constant(c): return .constant(0 - c)
        case let .negate(v): return v
        default: return .negate(u)
        }
    }

    static func sum(_ a: Formula.Node, _ b: Formula.Node) -> Formula.Node {
        if a.isZero { return b }
        if b.isZero { return a }
        if let x = a.constantValue, let y = b.constantValue, let c = folded(x + y) { return c }
        if case let .negate(v) = b { return difference(a, v) }
        if case let .negate(v) = a { return difference(b, v) }
        return .add(a, b)
    }

    static func difference(_ a: Formula.Node, _ b: Formula.Node) -> Formula.Node {
        if b.isZero { return a }
        if a.isZero { return neg(b) }
        if let x = a.constantValue, let y = b.constantValue, let c = folded(x - y) { return c }
        if case let .negate(v) = b { return sum(a, v) }
        return .subtract(a, b)
    }

    static func product(_ a: Formula.Node, _ b: Formula.Node) -> Formula.Node {
        if a.isZero || b.isZero { return .constant(0) }
        if a.isOne { return b }
        if b.isOne { return a }
        if let x = a.constantValue, let y = b.constantValue, let c = folded(x * y) { return c }
        if a.constantValue == -1 { return neg(b) }
        if b.constantValue == -1 { return neg(a) }
        // Numbers to the front: (c·u)·d = (c·d)·u and u·c = c·u keep derivatives readable.
        if let y = b.constantValue, a.constantValue == nil {
            if case let .multiply(c, u) = a, let x = c.constantValue, let f = folded(x * y) { return product(f, u) }
            return product(b, a)
        }
        if let x = a.constantValue, case let .multiply(c, u) = b, let y = c.constantValue, let f = folded(x * y) {
            return product(f, u)
        }
        if case let .negate(u) = a { return neg(product(u, b)) }
        if case let .negate(v) = b { return neg(product(a, v)) }
        return .multiply(a, b)
    }

    static func quotient(_ a: Formula.Node, _ b: Formula.Node) -> Formula.Node {
        if a.isZero { return .constant(0) }
        if b.isOne { return a }
        if let x = a.constantValue, let y = b.constantValue, let c = folded(x / y) { return c }
        if case let .negate(u) = a { return neg(quotient(u, b)) }
        return .divide(a, b)
    }

    static func raised(_ a: Formula.Node, _ b: Formula.Node) -> Formula.Node {
        if b.isZero { return .constant(1) }
        if b.isOne { return a }
        if let x = a.constantValue, let y = b.constantValue, let c = folded(Scalar.power(x, y)) { return c }
        return .power(a, b)
    }

    static func hermiteOf(_ n: Int, _ u: Formula.Node) -> Formula.Node {
        switch n {
        case 0: return .constant(1)
        case 1: return u
        default: return .hermite(n, u)
        }
    }

    /// 2/√π, kept symbolic so that it prints as such.
    static let twoOverRootPi: Formula.Node = .divide(.constant(2), .call(.sqrt, .constant(Double.pi)))

    /// ∂/∂(variable) of the subtree.
    func derivative(_ j: Int) -> Formula.Node {
        guard depends(on: j) else { return .constant(0) }
        switch self {
        case .constant:
            return .constant(0)
        case let .variable(i):
            return .constant(i == j ? 1 : 0)
        case let .negate(u):
            return Formula.Node.neg(u.derivative(j))
        case let .add(a, b):
            return Formula.Node.sum(a.derivative(j), b.derivative(j))
        case let .subtract(a, b):
            return Formula.Node.difference(a.derivative(j), b.derivative(j))
        case let .multiply(a, b):
            return Formula.Node.sum(Formula.Node.product(a.derivative(j), b), Formula.Node.product(a, b.derivative(j)))
        case let .divide(a, b):
            let da = a.derivative(j), db = b.derivative(j)
            if db.isZero { return Formula.Node.quotient(da, b) }
            let numerator = Formula.Node.difference(Formula.Node.product(da, b), Formula.Node.product(a, db))
            return Formula.Node.quotient(numerator, Formula.Node.raised(b, .constant(2)))
        case let .power(a, b):
            if !b.hasVariables {
                // c·u^(c−1)·du
                let exponent = Formula.Node.difference(b, .constant(1))
                return Formula.Node.product(Formula.Node.product(b, Formula.Node.raised(a, exponent)), a.derivative(j))
            }
            if !a.hasVariables {
                // u^v·log(u)·dv
                return Formula.Node.product(Formula.Node.product(self, .call(.log, a)), b.derivative(j))
            }
            let da = a.derivative(j), db = b.derivative(j)
            let inner = Formula.Node.sum(Formula.Node.product(db, .call(.log, a)), Formula.Node.quotient(Formula.Node.product(b, da), a))
            return Formula.Node.product(self, inner)
        case let .hermite(n, u):
            return Formula.Node.product(Formula.Node.product(.constant(Double(n)), Formula.Node.hermiteOf(n - 1, u)), u.derivative(j))
        case let .call(f, u):
            return Formula.Node.product(f.derivativeNode(at: u), u.derivative(j))
        case let .minimum(a, b):
            let da = a.derivative(j), db = b.derivative(j)
            return Formula.Node.sum(da, Formula.Node.product(.call(.step, Formula.Node.difference(a, b)), Formula.Node.difference(db, da)))
        case let .maximum(a, b):
            let da = a.derivative(j), db = b.derivative(j)
            return Formula.Node.sum(da, Formula.Node.product(.call(.step, Formula.Node.difference(b, a)), Formula.Node.difference(db, da)))
        }
    }
}

extension Formula.Function {
    /// f′(u) as a tree.
    func derivativeNode(at u: Formula.Node) -> Formula.Node {
        typealias Node = Formula.Node
        switch self {
        case .erf:
            return Node.product(Node.twoOverRootPi, .call(.exp, Node.neg(Node.raised(u, .constant(2)))))
        case .erfc:
            return Node.neg(Node.product(Node.twoOverRootPi, .call(.exp, Node.neg(Node.raised(u, .constant(2))))))
        case .tanh:
            return Node.difference(.constant(1), Node.raised(.call(.tanh, u), .constant(2)))
        case .relu:
            return .call(.step, u)
        case .sign, .step:
            return .constant(0)
        case .abs:
            return .call(.sign, u)
        case .exp:
            return .call(.exp, u)
        case .log:
            return Node.quotient(.constant(1), u)
        case .sqrt:
            return Node.quotient(.constant(1), Node.product(.constant(2), .call(.sqrt, u)))
        case .sin:
            return .call(.cos, u)
        case .cos:
            return Node.neg(.call(.sin, u))
        case .sigmoid:
            return Node.product(.call(.sigmoid, u), Node.difference(.constant(1), .call(.sigmoid, u)))
        }
    }
}
