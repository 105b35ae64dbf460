import Foundation

/// A scalar activation σ of a student unit or of a committee teacher's hidden unit.
///
/// Conventions (EQUATIONS.md §1.4): `erf` means σ(x) = erf(x/√2), so that σ' is √(2/π)·e^{−x²/2};
/// `linear` is σ(x) = x; `relu` is max(0, x), with σ'(x) = 1 for x > 0 and 0 otherwise; `tanh` is
/// tanh(x); `hermite(n)` is the probabilists' Hermite polynomial Heₙ(x); `expression` is any
/// expression in x of the package's expression language (`Formula`), e.g. `x^3 - 3*x` or
/// `sigmoid(2*x)`, with its symbolic derivative. Theory and simulation both read these definitions:
/// nothing about an activation is written twice.
public enum Activation: Sendable, Hashable {
    case erf
    case linear
    case relu
    case tanh
    /// Heₙ(x), n ≥ 0 (probabilists' Hermite: He₁ = x, He₂ = x² − 1, He₃ = x³ − 3x, …).
    case hermite(Int)
    /// A user expression in x (see `Formula`), compiled with its derivative.
    case expression(ActivationExpression)

    /// The activations whose every Gaussian expectation in the online-SGD equations has a closed form.
    public static let closedForm: [Activation] = [.erf, .linear, .relu]

    /// The named activations, for messages: erf, linear, relu, tanh, HeN.
    public static let knownNames = ["erf", "linear", "relu", "tanh", "HeN (N = 0…99)"]

    /// Parses an activation: a name (erf, linear, relu, tanh, HeN, case-insensitive) or an expression in
    /// x (`x^3 - 3*x`, `tanh(2*x)`, `erf(x/sqrt(2)) + 0.1*x`). Throws `ExpressionError` (column-pointing)
    /// for an expression that does not parse.
    public static func parse(_ text: String) throws -> Activation {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        switch trimmed.lowercased() {
        case "erf": return .erf
        case "linear", "x": return .linear
        case "relu": return .relu
        case "tanh": return .tanh
        default: break
        }
        if let n = ExpressionParser.hermiteDegree(trimmed) {
            guard n <= 99 else {
                throw ExpressionError(text: trimmed, column: 1, token: trimmed, message: "Hermite degree \(trimmed.dropFirst(2)) is out of range 0…99")
            }
            return .hermite(n)
        }
        let formula = try Formula(parsing: trimmed, variables: .activation)
        // "(x)" is the linear activation, as "x" is (so that its printed name reads back to itself).
        if case .variable = formula.root { return .linear }
        return .expression(ActivationExpression(formula))
    }

    /// Parses an activation name or expression; nil when it does not parse (see `parse(_:)`).
    public init?(name: String) {
        guard let a = try? Activation.parse(name) else { return nil }
        self = a
    }

    /// The name that `parse(_:)` reads back to this activation.
    public var name: String {
        switch self {
        case .erf: return "erf"
        case .linear: return "linear"
        case .relu: return "relu"
        case .tanh: return "tanh"
        case let .hermite(n): return "He\(n)"
        case let .expression(e): return e.formula.description
        }
    }

    @inlinable public func value(_ x: Double) -> Double {
        switch self {
        case .erf: return Foundation.erf(x * 0.70710678118654752440)
        case .linear: return x
        case .relu: return x > 0 ? x : 0
        case .tanh: return Foundation.tanh(x)
        case let .hermite(n): return Activation.hermiteValue(n, x)
        case let .expression(e): return e.formula.value(x)
        }
    }

    @inlinable public func derivative(_ x: Double) -> Double {
        switch self {
        case .erf: return 0.79788456080286535588 * Foundation.exp(-0.5 * x * x)
        case .linear: return 1
        case .relu: return x > 0 ? 1 : 0
        case .tanh:
            let t = Foundation.tanh(x)
            return 1 - t * t
        case let .hermite(n): return n == 0 ? 0 : Double(n) * Activation.hermiteValue(n - 1, x)
        case let .expression(e): return e.derivative.value(x)
        }
    }

    /// σ(x) and σ'(x) together (one transcendental evaluation where they share it: tanh, Heₙ).
    @inlinable public func valueAndDerivative(_ x: Double) -> (Double, Double) {
        switch self {
        case .tanh:
            let t = Foundation.tanh(x)
            return (t, 1 - t * t)
        case let .hermite(n):
            if n == 0 { return (1, 0) }
            var previous = 1.0, current = x
            var m = 1
            while m < n {
                (previous, current) = (current, x * current - Double(m) * previous)
                m += 1
            }
            return (current, Double(n) * previous)
        default:
            return (value(x), derivative(x))
        }
    }

    /// Heₙ(x) by the three-term recurrence He_{m+1} = x He_m − m He_{m−1}.
    @inlinable static func hermiteValue(_ n: Int, _ x: Double) -> Double {
        if n == 0 { return 1 }
        var previous = 1.0, current = x
        var m = 1
        while m < n {
            (previous, current) = (current, x * current - Double(m) * previous)
            m += 1
        }
        return current
    }

    /// The coefficients c₀, c₁, … of σ(x) = Σ cᵢ xⁱ when σ is a polynomial (linear, Heₙ, a polynomial
    /// expression); nil otherwise.
    public var polynomialCoefficients: [Double]? {
        switch self {
        case .linear: return [0, 1]
        case let .hermite(n):
            var previous = [1.0], current = [0.0, 1.0]
            if n == 0 { return previous }
            for m in 1..<n {
                var next = [Double](repeating: 0, count: m + 2)
                for i in 0..<current.count { next[i + 1] += current[i] }
                for i in 0..<previous.count { next[i] -= Double(m) * previous[i] }
                (previous, current) = (current, next)
            }
            return current
        case let .expression(e): return e.polynomialCoefficients
        case .erf, .relu, .tanh: return nil
        }
    }

    /// Whether σ is analytic on the real line (see `Formula.isSmooth`): not ReLU, not kinked expressions.
    public var isSmooth: Bool {
        switch self {
        case .relu: return false
        case let .expression(e): return e.formula.isSmooth
        default: return true
        }
    }

    /// Whether σ is a polynomial (its expectations are then exact by Wick's theorem).
    public var isPolynomial: Bool { polynomialCoefficients != nil }

    /// Human description with the convention spelled out.
    public var formula: String {
        switch self {
        case .erf: return "erf(x/√2)"
        case .linear: return "x"
        case .relu: return "max(0, x)"
        case .tanh: return "tanh(x)"
        case let .hermite(n): return "He\(n)(x)"
        case let .expression(e): return e.formula.description
        }
    }

    /// σ as an expression in x (for the Hermite analysis and for writing σ*(z_r) into a target).
    public var expression: Formula {
        switch self {
        case let .expression(e): return e.formula
        default:
            let text: String
            switch self {
            case .erf: text = "erf(x/sqrt(2))"
            case .linear: text = "x"
            case .relu: text = "relu(x)"
            case .tanh: text = "tanh(x)"
            case let .hermite(n): text = "He\(n)(x)"
            case .expression: fatalError("unreachable")
            }
            // These texts are fixed and parse.
            return try! Formula(parsing: text, variables: .activation)
        }
    }
}

extension Activation: Codable {
    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        self = try Activation.parse(text)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(name)
    }
}

/// A user activation σ(x) given as an expression, compiled together with its symbolic derivative and,
/// when it is a polynomial, its coefficients.
public struct ActivationExpression: Sendable, Hashable {
    public let formula: Formula
    public let derivative: Formula
    public let polynomialCoefficients: [Double]?

    public init(_ formula: Formula) {
        precondition(formula.variables == .activation, "an activation is an expression in x")
        self.formula = formula
        derivative = formula.derivative()
        if let terms = formula.polynomialCoefficients() {
            let degree = terms.keys.map { $0[0] }.max() ?? 0
            var c = [Double](repeating: 0, count: degree + 1)
            for (e, v) in terms { c[e[0]] += v }
            polynomialCoefficients = c
        } else {
            polynomialCoefficients = nil
        }
    }

    public static func == (a: Self, b: Self) -> Bool { a.formula == b.formula }
    public func hash(into hasher: inout Hasher) { hasher.combine(formula) }
}
