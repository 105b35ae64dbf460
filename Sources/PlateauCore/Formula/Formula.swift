import Foundation

// MARK: - Variable sets

/// Which variable names a `Formula` may use, and how many inputs it reads.
///
/// Variables are numbered from 1 everywhere in the expression API: variable `i` is `z_i` of a target
/// (read from `z[i - 1]` by `Formula.value(_:)`), and the single variable `x` of an activation is
/// variable 1.
public enum VariableSet: Sendable, Hashable, CustomStringConvertible {
    /// A link g(z₁, …, z_k) of a k-index target: the names `z1` … `zk`, and `z` as a synonym of `z1`
    /// when k = 1. `k` must be in 1…`VariableSet.maximumTargetIndices`.
    case target(k: Int)
    /// An activation σ(x): the single name `x`.
    case activation
    /// A preprocessing p(y) of an output (spectral methods): the single name `y`.
    case preprocessing

    /// The largest k of a target (variables `z1` … `z64`).
    public static let maximumTargetIndices = 64

    /// Number of inputs: k for a target, 1 for an activation.
    public var count: Int {
        switch self {
        case let .target(k): return k
        case .activation, .preprocessing: return 1
        }
    }

    /// The name variable `index` (1-based) is written with: `z3`, or `x`.
    public func name(of index: Int) -> String {
        switch self {
        case .target: return "z\(index)"
        case .activation: return "x"
        case .preprocessing: return "y"
        }
    }

    public var description: String {
        switch self {
        case let .target(k): return k == 1 ? "target (k = 1: z1)" : "target (k = \(k): z1…z\(k))"
        case .activation: return "activation (x)"
        case .preprocessing: return "preprocessing (y)"
        }
    }
}

// MARK: - Errors

/// A refused expression text: the 1-based column of the offending token (characters, counted from the
/// start of the text; `text.count + 1` means "at the end of the input"), the token as written (empty at
/// the end of the input) and what is wrong.
///
/// `summary` is one line, e.g. `column 9: unknown function "tanhh"`; `description` adds the text with a
/// caret under the column.
public struct ExpressionError: Error, Sendable, Hashable, CustomStringConvertible {
    public var text: String
    public var column: Int
    public var token: String
    public var message: String

    public init(text: String, column: Int, token: String, message: String) {
        self.text = text
        self.column = column
        self.token = token
        self.message = message
    }

    /// `column 9: unknown function "tanhh"`.
    public var summary: String { "column \(column): \(message)" }

    /// The summary, then the text (tabs and line breaks shown as spaces) with a caret under the column.
    public var description: String {
        let shown = String(text.map { $0.isWhitespace ? " " : $0 })
        return summary + "\n  " + shown + "\n  " + String(repeating: " ", count: max(0, column - 1)) + "^"
    }
}

// MARK: - Formula

/// A parsed, immutable scalar expression: a link g(z₁, …, z_k) of a target, or an activation σ(x).
///
/// Grammar (whitespace is ignored):
///
///     expression := term (("+" | "-") term)*
///     term       := unary (("*" | "/") unary)*
///     unary      := ("-" | "+") unary | power
///     power      := primary ("^" unary)?            -- right-associative: 2^3^2 = 2^(3^2)
///     primary    := number | name | call | "(" expression ")"
///     call       := function "(" expression ("," expression)* ")"
///
/// so the precedence is `^` > unary minus > `*` `/` > `+` `-`, and `-z1^2` is −(z1²) while `2^-1` is ½.
/// Numbers are decimal with optional fraction and exponent (`1`, `2.5`, `.5`, `1e-3`); non-finite
/// literals (`1e999`) are refused, and `2e` is a malformed number (write `2*e`). A minus applied directly
/// to a number gives a negative constant (`-2` is the number −2; `-2^2` is still −4). The minus sign
/// `−` (U+2212) reads as `-`. Names are the variables of the `VariableSet` (`z1` … `zk`, `z` for `z1`
/// when k = 1, or `x`) and the constants `pi` and `e`. Trees deeper than `Formula.maximumDepth`
/// are refused.
///
/// Functions (all of one argument except `min`, `max`, `pow`):
/// - `He0` … `He99`: the probabilists' Hermite polynomials Heₙ(u) (He₀ = 1, He₁ = u,
///   He_{n+1} = u Heₙ − n He_{n−1}; E[He_m He_n] = n! δ_mn under N(0, 1)). `he3` is accepted too.
/// - `erf`, `erfc`: the plain error function erf(u) = (2/√π) ∫₀ᵘ e^{−t²} dt of the argument and its
///   complement. **This is not the package's `Activation.erf` convention**, which is erf(x/√2): that
///   activation is written `erf(x/sqrt(2))` here.
/// - `tanh`, `exp`, `log` (natural), `sqrt`, `sin`, `cos`, `abs`;
///   `sigmoid(u)` = 1/(1 + e^{−u}); `relu(u)` = max(0, u); `sign(u)` ∈ {−1, 0, 1} (sign(0) = 0);
///   `step(u)` = θ(u) = 1{u > 0} (step(0) = 0). NaN arguments give NaN.
/// - `min(u, v)`, `max(u, v)` (NaN if either argument is NaN); `pow(u, v)` is the same as `u^v`.
///
/// Evaluation follows IEEE arithmetic: non-finite results are returned as they come (log of a negative
/// number is NaN, 1/0 is +∞). Integer exponents with |n| ≤ 64 are computed by repeated multiplication,
/// other powers with `Foundation.pow`. Subexpressions without variables are folded to constants when the
/// expression is compiled, so `erf(x/sqrt(2))` costs one division by a constant, one `erf`.
///
/// Equality and hashing are structural (the parsed tree and the variable set): `2*z1` and `z1*2` are
/// different expressions, `pow(z1, 2)`, `z1^2` and `(z1)^2` are the same one. `description` prints an
/// expression with the fewest parentheses that parse back to an equal expression (plus parentheses
/// around a negation right of an operator: `z1*(-z2)`, `2^(-1)`), numbers in Swift's shortest
/// round-trip form, π and e as `pi` and `e`.
///
/// Name clash: Foundation (swift-foundation, also on Linux) declares a generic `Formula` for
/// predicates. A file importing both Foundation and PlateauCore must write `PlateauCore.Formula`
/// (or declare a typealias in its own module) wherever the type name is spelled out.
public struct Formula: Sendable, Hashable, CustomStringConvertible {
    /// The expression tree, as parsed (or as built by `derivative(withRespectTo:)`).
    public let root: Node
    /// The names the expression may use and the number of inputs `value(_:)` reads.
    public let variables: VariableSet
    /// The flat postfix program `value(_:)` runs.
    let program: Program

    /// A scalar function of one argument (see the type's documentation for the definitions).
    public enum Function: String, Sendable, Hashable, CaseIterable {
        case erf, erfc, tanh, relu, sign, abs, exp, log, sqrt, sin, cos, sigmoid, step
    }

    /// A node of the expression tree. Variables are 1-based (`.variable(1)` is `z1`, or `x`).
    /// Trees built by the parser and by `derivative` hold finite constants only.
    public indirect enum Node: Sendable, Hashable {
        case constant(Double)
        case variable(Int)
        case negate(Node)
        case add(Node, Node)
        case subtract(Node, Node)
        case multiply(Node, Node)
        case divide(Node, Node)
        /// `u^v`, also written `pow(u, v)`.
        case power(Node, Node)
        /// The probabilists' Hermite polynomial He_n(u), 0 ≤ n ≤ 99.
        case hermite(Int, Node)
        case call(Function, Node)
        case minimum(Node, Node)
        case maximum(Node, Node)
    }

    /// Builds (and compiles) an expression from a tree; trees are trusted to hold finite constants.
    init(root: Node, variables: VariableSet) {
        self.root = root
        self.variables = variables
        self.program = Program(compiling: root)
    }

    /// Parses `text` (see the type's documentation for the grammar) allowing the names of `variables`.
    /// Throws `ExpressionError` naming the column of the first offending token.
    public init(parsing text: String, variables: VariableSet) throws {
        var parser = ExpressionParser(text: text, variables: variables)
        let root = try parser.parse()
        self.init(root: root, variables: variables)
    }

    public static func == (a: Formula, b: Formula) -> Bool {
        a.variables == b.variables && a.root == b.root
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(variables)
        hasher.combine(root)
    }

    // MARK: Evaluation

    /// The value at `z` (z[i − 1] is variable i; for an activation z[0] is x). `z` must hold at least
    /// as many values as the largest variable index used (normally `variables.count`).
    /// Allocation-free: runs the compiled postfix program on a stack-allocated stack.
    public func value(_ z: UnsafeBufferPointer<Double>) -> Double {
        program.run(z)
    }

    /// The value at `z` (see `value(_: UnsafeBufferPointer<Double>)`).
    public func value(_ z: [Double]) -> Double {
        z.withUnsafeBufferPointer { program.run($0) }
    }

    /// The value of a one-variable expression (an activation σ(x), or a k = 1 target) at `x`.
    public func value(_ x: Double) -> Double {
        withUnsafePointer(to: x) { program.run(UnsafeBufferPointer(start: $0, count: 1)) }
    }

    // MARK: Structure

    /// The 1-based indices of the variables the expression reads.
    public var variablesUsed: Set<Int> { root.variablesUsed }

    /// Whether the expression is a polynomial in its variables: built from constants, variables, `+`,
    /// `−`, `*`, Hermite polynomials, division by variable-free subexpressions and powers with a
    /// variable-free exponent equal to a non-negative integer (any variable-free subexpression, such
    /// as `sqrt(2)` or `erf(1)`, counts as a constant provided its value is finite), whose expansion
    /// stays small: total degree at most `maximumPolynomialDegree` and at most
    /// `maximumPolynomialTerms` monomials (bounds computed without expanding). A larger polynomial
    /// (`x^100000`, `(z1 + z2)^300`) is treated as a general expression (quadrature route), so that
    /// reading it costs no more than reading any other expression.
    public var isPolynomial: Bool {
        guard root.isPolynomial else { return false }
        let bound = root.expansionBound(variableCount: variables.count)
        return bound.degree <= Self.maximumPolynomialDegree && bound.terms <= Self.maximumPolynomialTerms
    }

    /// The largest total degree expanded as a polynomial (He₉₉ and its square fit).
    public static let maximumPolynomialDegree = 256
    /// The most monomials expanded as a polynomial.
    public static let maximumPolynomialTerms = 100_000

    /// Whether the expression is analytic on the whole real line (no kink, jump or singularity):
    /// built from polynomials, erf, erfc, tanh, exp, sin, cos and sigmoid, with division only by
    /// variable-free subexpressions. relu, sign, abs, step, min, max, sqrt, log, non-integer powers
    /// and division by a variable make it not smooth (quadrature then converges only algebraically).
    public var isSmooth: Bool { root.isSmooth }

    /// The expansion of a polynomial expression (nil if `isPolynomial` is false): exponent vector →
    /// coefficient, where the exponent vector has `variables.count` entries and entry i − 1 is the
    /// power of variable i. Heₙ is expanded through its recurrence. Terms whose coefficient is exactly
    /// zero are left out (so the zero polynomial is `[:]`); floating-point cancellation may leave
    /// tiny coefficients.
    public func polynomialCoefficients() -> [[Int]: Double]? {
        guard isPolynomial else { return nil }
        return root.polynomial(variableCount: variables.count).terms
    }

    /// The expression, printed so that parsing it with the same `variables` gives an equal expression.
    public var description: String { ExpressionPrinter(variables: variables).string(root).text }

    // MARK: Presets

    /// The deepest tree the parser accepts (a leaf has depth 1; parentheses add nothing). Deeper
    /// input, e.g. 300 nested calls or a sum of 300 terms, is refused rather than risking the stack of
    /// the recursive tree walks.
    public static let maximumDepth = 256

    /// The names `preset(_:k:)` knows.
    public static let presetNames = [
        "committee-erf", "committee-relu", "committee-tanh", "staircase", "parity", "he2", "he3", "he4",
    ]

    /// A named target link of k indices (1 ≤ k ≤ 64), or nil for an unknown name or k:
    /// - `committee-erf`: Σ_r erf(z_r/√2) (the package's erf activation on each index),
    /// - `committee-relu`: Σ_r relu(z_r); `committee-tanh`: Σ_r tanh(z_r),
    /// - `staircase`: z1 + z1*z2 + z1*z2*z3 + … + z1*…*zk,
    /// - `parity`: sign(z1*z2*…*zk),
    /// - `he2`, `he3`, `he4`: Heₙ(z1) (the other indices unused).
    public static func preset(_ name: String, k: Int) -> Formula? {
        guard (1...VariableSet.maximumTargetIndices).contains(k) else { return nil }
        let z = (1...k).map { "z\($0)" }
        let text: String
        switch name.lowercased() {
        case "committee-erf": text = z.map { "erf(\($0)/sqrt(2))" }.joined(separator: " + ")
        case "committee-relu": text = z.map { "relu(\($0))" }.joined(separator: " + ")
        case "committee-tanh": text = z.map { "tanh(\($0))" }.joined(separator: " + ")
        case "staircase": text = (1...k).map { z[0..<$0].joined(separator: "*") }.joined(separator: " + ")
        case "parity": text = "sign(" + z.joined(separator: "*") + ")"
        case "he2": text = "He2(z1)"
        case "he3": text = "He3(z1)"
        case "he4": text = "He4(z1)"
        default: return nil
        }
        return try? Formula(parsing: text, variables: .target(k: k))
    }
}

// MARK: - Scalar semantics shared by the compiled program and constant folding

extension Formula.Function {
    @inline(__always)
    func apply(_ u: Double) -> Double {
        switch self {
        case .erf: return Foundation.erf(u)
        case .erfc: return Foundation.erfc(u)
        case .tanh: return Foundation.tanh(u)
        case .relu: return u > 0 ? u : (u.isNaN ? u : 0)
        case .sign: return u > 0 ? 1 : (u < 0 ? -1 : (u.isNaN ? u : 0))
        case .abs: return Swift.abs(u)
        case .exp: return Foundation.exp(u)
        case .log: return Foundation.log(u)
        case .sqrt: return u.squareRoot()
        case .sin: return Foundation.sin(u)
        case .cos: return Foundation.cos(u)
        case .sigmoid: return 1 / (1 + Foundation.exp(-u))
        case .step: return u > 0 ? 1 : (u.isNaN ? u : 0)
        }
    }
}

enum Scalar {
    /// Heₙ(u) by the three-term recurrence.
    @inline(__always)
    static func hermite(_ n: Int, _ u: Double) -> Double {
        if n == 0 { return 1 }
        var previous = 1.0, current = u
        var k = 1
        while k < n {
            let next = u * current - Double(k) * previous
            previous = current
            current = next
            k += 1
        }
        return current
    }

    /// uⁿ by repeated squaring (n may be negative: 1/u^|n|).
    @inline(__always)
    static func power(_ u: Double, _ n: Int) -> Double {
        var e = n.magnitude, base = u, result = 1.0
        while e > 0 {
            if e & 1 == 1 { result *= base }
            e >>= 1
            if e > 0 { base *= base }
        }
        return n < 0 ? 1 / result : result
    }

    /// The largest |n| for which `power` is used for an integer exponent.
    static let integerPowerLimit = 64.0

    /// u^v: repeated multiplication for integer v with |v| ≤ 64, `Foundation.pow` otherwise.
    @inline(__always)
    static func power(_ u: Double, _ v: Double) -> Double {
        if v.magnitude <= integerPowerLimit, v == v.rounded(.towardZero) { return power(u, Int(v)) }
        return Foundation.pow(u, v)
    }

    @inline(__always)
    static func minimum(_ a: Double, _ b: Double) -> Double {
        if a.isNaN || b.isNaN { return .nan }
        return a < b ? a : b
    }

    @inline(__always)
    static func maximum(_ a: Double, _ b: Double) -> Double {
        if a.isNaN || b.isNaN { return .nan }
        return a > b ? a : b
    }
}

// MARK: - Tree queries

extension Formula.Node {
    var children: [Formula.Node] {
        switch self {
        case .constant, .variable: return []
        case let .negate(u), let .hermite(_, u), let .call(_, u): return [u]
        case let .add(a, b), let .subtract(a, b), let .multiply(a, b), let .divide(a, b), let .power(a, b),
            let .minimum(a, b), let .maximum(a, b):
            return [a, b]
        }
    }

    var variablesUsed: Set<Int> {
        var used = Set<Int>()
        collectVariables(into: &used)
        return used
    }

    var isSmooth: Bool {
        switch self {
        case .constant, .variable: return true
        case let .call(f, u):
            switch f {
            case .relu, .sign, .abs, .step, .sqrt, .log: return !u.hasVariables
            default: return u.isSmooth
            }
        case let .minimum(u, v), let .maximum(u, v): return !u.hasVariables && !v.hasVariables
        case let .divide(u, v): return u.isSmooth && !v.hasVariables
        case let .power(u, v):
            if v.hasVariables { return !u.hasVariables && u.isSmooth && v.isSmooth }
            return u.isSmooth && v.naturalExponent != nil
        default: return children.allSatisfy(\.isSmooth)
        }
    }

    /// The tree with every occurrence of `variable` replaced by `replacement`.
    func substituting(variable: Int, with replacement: Formula.Node) -> Formula.Node {
        func sub(_ n: Formula.Node) -> Formula.Node { n.substituting(variable: variable, with: replacement) }
        switch self {
        case .constant: return self
        case let .variable(i): return i == variable ? replacement : self
        case let .negate(u): return .negate(sub(u))
        case let .add(u, v): return .add(sub(u), sub(v))
        case let .subtract(u, v): return .subtract(sub(u), sub(v))
        case let .multiply(u, v): return .multiply(sub(u), sub(v))
        case let .divide(u, v): return .divide(sub(u), sub(v))
        case let .power(u, v): return .power(sub(u), sub(v))
        case let .hermite(n, u): return .hermite(n, sub(u))
        case let .call(f, u): return .call(f, sub(u))
        case let .minimum(u, v): return .minimum(sub(u), sub(v))
        case let .maximum(u, v): return .maximum(sub(u), sub(v))
        }
    }

    func collectVariables(into used: inout Set<Int>) {
        if case let .variable(i) = self { used.insert(i); return }
        for child in children { child.collectVariables(into: &used) }
    }

    /// Whether the subtree reads any variable.
    var hasVariables: Bool {
        if case .variable = self { return true }
        return children.contains { $0.hasVariables }
    }

    func depends(on variable: Int) -> Bool {
        if case let .variable(i) = self { return i == variable }
        return children.contains { $0.depends(on: variable) }
    }

    /// The value by direct recursion (used to fold variable-free subtrees; same scalar semantics as the
    /// compiled program). `z[i - 1]` is variable i.
    func evaluate(_ z: [Double]) -> Double {
        switch self {
        case let .constant(c): return c
        case let .variable(i): return z[i - 1]
        case let .negate(u): return -u.evaluate(z)
        case let .add(a, b): return a.evaluate(z) + b.evaluate(z)
        case let .subtract(a, b): return a.evaluate(z) - b.evaluate(z)
        case let .multiply(a, b): return a.evaluate(z) * b.evaluate(z)
        case let .divide(a, b): return a.evaluate(z) / b.evaluate(z)
        case let .power(a, b): return Scalar.power(a.evaluate(z), b.evaluate(z))
        case let .hermite(n, u): return Scalar.hermite(n, u.evaluate(z))
        case let .call(f, u): return f.apply(u.evaluate(z))
        case let .minimum(a, b): return Scalar.minimum(a.evaluate(z), b.evaluate(z))
        case let .maximum(a, b): return Scalar.maximum(a.evaluate(z), b.evaluate(z))
        }
    }
}
