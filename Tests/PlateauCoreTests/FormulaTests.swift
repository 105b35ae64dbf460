import Foundation
import PlateauCore
import Testing

// Foundation declares a generic `Formula` too: spell PlateauCore's out.
private typealias Expr = Formula

// MARK: - Helpers

/// SplitMix64: deterministic, platform-independent.
private struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in (0, 1).
    mutating func uniform() -> Double { (Double(next() >> 11) + 0.5) / 9_007_199_254_740_992.0 }
    /// Standard normal (Box–Muller).
    mutating func normal() -> Double {
        (-2 * Foundation.log(uniform())).squareRoot() * Foundation.cos(2 * Double.pi * uniform())
    }
}

private func parse(_ text: String, k: Int) throws -> Expr { try Expr(parsing: text, variables: .target(k: k)) }
private func activation(_ text: String) throws -> Expr { try Expr(parsing: text, variables: .activation) }

private struct MissingPreset: Error { var name: String }
private func preset(_ name: String, k: Int) throws -> Expr {
    guard let e = Expr.preset(name, k: k) else { throw MissingPreset(name: name) }
    return e
}

/// Equal, or both NaN.
private func same(_ a: Double, _ b: Double) -> Bool { a == b || (a.isNaN && b.isNaN) }

private func close(_ a: Double, _ b: Double, relative: Double = 1e-13) -> Bool {
    if a.isNaN || b.isNaN { return a.isNaN && b.isNaN }
    if a.isInfinite || b.isInfinite { return a == b }
    return abs(a - b) <= relative * max(1, abs(a), abs(b))
}

private func factorial(_ n: Int) -> Double { (0..<n).reduce(1.0) { $0 * Double($1 + 1) } }

/// Heₙ(t) and Heₙ₋₁(t) by the recurrence (independent of the library).
private func hermitePair(_ n: Int, _ t: Double) -> (current: Double, previous: Double) {
    var previous = 0.0, current = 1.0
    for k in 0..<n {
        let next = t * current - Double(k) * previous
        previous = current
        current = next
    }
    return (current, previous)
}

/// The n-point Gauss–Hermite rule for E over N(0, 1): nodes are the roots of Heₙ, found by Newton on
/// the recurrence from the Numerical Recipes (`gauher`) starting guesses rescaled by √2; weights are
/// n! / (n² He_{n−1}(tᵢ)²).
private func gaussHermite(_ n: Int) -> (nodes: [Double], weights: [Double]) {
    var nodes = [Double](repeating: 0, count: n), weights = nodes
    var physicists = [Double](repeating: 0, count: n)  // roots on the e^{−x²} scale, for the guesses
    let root2 = 2.0.squareRoot()
    var z = 0.0
    for i in 0..<(n + 1) / 2 {
        switch i {
        case 0: z = Double(2 * n + 1).squareRoot() - 1.85575 * pow(Double(2 * n + 1), -0.16667)
        case 1: z -= 1.14 * pow(Double(n), 0.426) / z
        case 2: z = 1.86 * z - 0.86 * physicists[0]
        case 3: z = 1.91 * z - 0.91 * physicists[1]
        default: z = 2 * z - physicists[i - 2]
        }
        var t = z * root2
        for _ in 0..<100 {
            let (p, previous) = hermitePair(n, t)
            let dt = p / (Double(n) * previous)
            t -= dt
            if abs(dt) <= 1e-15 * max(1, abs(t)) { break }
        }
        z = t / root2  // the next guesses start from the converged roots
        physicists[i] = z
        let previous = hermitePair(n, t).previous
        let w = factorial(n) / (Double(n * n) * previous * previous)
        nodes[i] = t; nodes[n - 1 - i] = -t
        weights[i] = w; weights[n - 1 - i] = w
    }
    return (nodes, weights)
}

// MARK: - Parsing and evaluation

@Suite("Formula: parsing and evaluation")
struct ExpressionParsingTests {
    @Test("precedence and associativity")
    func precedence() throws {
        let cases: [(String, [Double], Double)] = [
            ("1 + 2*3", [0, 0, 0], 7),
            ("(1 + 2)*3", [0, 0, 0], 9),
            ("2^3^2", [0, 0, 0], 512),  // right-associative
            ("(2^3)^2", [0, 0, 0], 64),
            ("1 - 2^2^0", [0, 0, 0], -1),
            ("-2^2", [0, 0, 0], -4),  // ^ binds tighter than unary minus
            ("(-2)^2", [0, 0, 0], 4),
            ("2^-1", [0, 0, 0], 0.5),
            ("2^-1^2", [0, 0, 0], 0.5),  // 2^(-(1^2))
            ("-z1^2", [3, 0, 0], -9),
            ("-z1*z2", [3, 2, 0], -6),
            ("2*3^2", [0, 0, 0], 18),
            ("2^3*2", [0, 0, 0], 16),
            ("z1 - z2 - z3", [1, 2, 3], -4),  // left-associative
            ("z1 / z2 / z3", [8, 2, 4], 1),
            ("z1 - z2 + z3", [1, 2, 3], 2),
            ("z1 / z2 * z3", [8, 2, 4], 16),
            ("-3*-2", [0, 0, 0], 6),
            ("- - 2", [0, 0, 0], 2),
            ("+z1 - -z2", [1, 2, 0], 3),
            ("-(z1 + z2)*z3", [1, 2, 3], -9),
            (".5 + 1e-3 + 2.5E2 + 3. + 1E+1", [0, 0, 0], 263.501),
            ("2*pi - e", [0, 0, 0], 2 * Double.pi - M_E),
            ("pow(2, 3) + min(1, 2) + max(1, -2)", [0, 0, 0], 10),
            ("pow(z1, z2)^2", [2, 3, 0], 64),
            ("z1*z2*z3 - z1^2/z2", [2, 3, 4], 24 - 4.0 / 3),
            ("  z1\t+\n z2  ", [1, 2, 0], 3),
            ("He3(z1) + he2(z2)", [2, 3, 0], 2 + 8),
            ("z1 \u{2212} z2", [5, 2, 0], 3),  // the minus sign − reads as -
        ]
        for (text, z, expected) in cases {
            let e = try parse(text, k: 3)
            #expect(close(e.value(z), expected, relative: 1e-15), "\(text) = \(e.value(z)), expected \(expected)")
        }
        // The trees themselves.
        #expect(try parse("-z1^2", k: 1).root == .negate(.power(.variable(1), .constant(2))))
        #expect(try parse("2^3^2", k: 1).root == .power(.constant(2), .power(.constant(3), .constant(2))))
        #expect(try parse("-2", k: 1).root == .constant(-2))
        #expect(try parse("pow(z1, 2)", k: 1) == parse("(z1)^2", k: 1))
        #expect(try parse("2*z1", k: 1) != parse("z1*2", k: 1))
    }

    @Test("variables: z1…zk, z for z1 when k = 1, x for activations")
    func variables() throws {
        #expect(try parse("z", k: 1) == parse("z1", k: 1))
        #expect(try parse("z^2 + 1", k: 1).value([3]) == 10)
        #expect(try activation("x^2 + 2*x").value(3) == 15)
        #expect(try activation("x").variablesUsed == [1])
        let e = try parse("z64*z2 + z2", k: 64)
        #expect(e.variablesUsed == [2, 64])
        var z = [Double](repeating: 0, count: 64)
        z[1] = 2; z[63] = 5
        #expect(e.value(z) == 12)
        #expect(try parse("1 + pi", k: 2).variablesUsed.isEmpty)
        // The same text under different variable sets is a different expression.
        #expect(try parse("z1", k: 1) != parse("z1", k: 2))
        #expect(throws: ExpressionError.self) { try Expr(parsing: "z1", variables: .target(k: 0)) }
        #expect(throws: ExpressionError.self) { try Expr(parsing: "z1", variables: .target(k: 65)) }
        #expect(VariableSet.target(k: 5).count == 5 && VariableSet.activation.count == 1)
    }

    @Test("every function against Foundation")
    func functions() throws {
        let points: [Double] = [-3.7, -1, -0.3, 0, 0.25, 1, 2.5]
        let reference: [(String, (Double) -> Double)] = [
            ("erf", { Foundation.erf($0) }),
            ("erfc", { Foundation.erfc($0) }),
            ("tanh", { Foundation.tanh($0) }),
            ("relu", { max(0, $0) }),
            ("sign", { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) }),
            ("abs", { Swift.abs($0) }),
            ("exp", { Foundation.exp($0) }),
            ("log", { Foundation.log($0) }),
            ("sqrt", { Foundation.sqrt($0) }),
            ("sin", { Foundation.sin($0) }),
            ("cos", { Foundation.cos($0) }),
            ("sigmoid", { 1 / (1 + Foundation.exp(-$0)) }),
            ("step", { $0 > 0 ? 1 : 0 }),
        ]
        #expect(Set(reference.map(\.0)) == Set(Expr.Function.allCases.map(\.rawValue)))
        for (name, f) in reference {
            let e = try activation("\(name)(x)")
            let shifted = try parse("\(name)(2*z1 - z2)", k: 2)
            for u in points {
                #expect(same(e.value(u), f(u)), "\(name)(\(u)) = \(e.value(u)), expected \(f(u))")
                #expect(close(shifted.value([u, 0.5]), f(2 * u - 0.5)), "\(name)(2*\(u) - 0.5)")
            }
        }
        for (a, b) in [(-1.5, 2.0), (3.0, 0.5), (2.0, 2.0), (0.7, -2.0), (-2.0, 3.0), (-8.0, 1.0 / 3)] {
            #expect(try parse("min(z1, z2)", k: 2).value([a, b]) == Swift.min(a, b))
            #expect(try parse("max(z1, z2)", k: 2).value([a, b]) == Swift.max(a, b))
            #expect(try close(parse("pow(z1, z2)", k: 2).value([a, b]), Foundation.pow(a, b)))
            #expect(try close(parse("z1^z2", k: 2).value([a, b]), Foundation.pow(a, b)))
        }
        #expect(try parse("min(z1, z2)", k: 2).value([.nan, 1]).isNaN)
        #expect(try parse("max(z1, z2)", k: 2).value([1, .nan]).isNaN)
        // Plain error function of the argument; the package's erf activation is erf(x/√2).
        #expect(try activation("erf(x)").value(1) == Foundation.erf(1.0))
        let packageErf = try activation("erf(x/sqrt(2))")
        for u in points {
            #expect(close(packageErf.value(u), Activation.erf.value(u), relative: 2e-16))
        }
        #expect(try activation("pi").value(0) == Double.pi && activation("e").value(0) == M_E)
    }

    @Test("non-finite results are returned, not refused")
    func nonFinite() throws {
        #expect(try activation("log(x)").value(-1).isNaN)
        #expect(try activation("sqrt(x)").value(-1).isNaN)
        #expect(try activation("1/x").value(0) == .infinity)
        #expect(try activation("log(x)").value(0) == -.infinity)
        #expect(try activation("x^0.5").value(-4).isNaN)
        #expect(try activation("relu(x) + sign(x) + step(x)").value(.nan).isNaN)
        #expect(try activation("sigmoid(x)").value(-1000) == 0)
    }

    @Test("value from a buffer, an array and a scalar agree")
    func valueEntryPoints() throws {
        let e = try parse("tanh(z1 + z2^3 - 3*z2)", k: 2)
        let z: [Double] = [0.3, -1.2]
        let fromBuffer = z.withUnsafeBufferPointer { e.value($0) }
        #expect(fromBuffer == e.value(z))
        #expect(close(fromBuffer, Foundation.tanh(0.3 + pow(-1.2, 3) - 3 * -1.2)))
        let sigma = try activation("x*sigmoid(x)")
        #expect(sigma.value(1.5) == sigma.value([1.5]))
    }

    @Test("programs deeper than the small fixed stack")
    func deepPrograms() throws {
        let z: [Double] = [0.9, -1.7]
        for n in [3, 8, 9, 20, 200] {
            var text = "sin(z1)"
            var expected = Foundation.sin(z[0])
            for i in 1..<n {
                text = "sin(z\(i % 2 + 1))*(\(text))"
                expected = Foundation.sin(z[i % 2]) * expected
            }
            #expect(try parse(text, k: 2).value(z) == expected, "depth \(n)")
        }
    }

    @Test("Hermite polynomials against explicit formulas up to He6")
    func hermiteExplicit() throws {
        let explicit: [(Double) -> Double] = [
            { _ in 1 },
            { u in u },
            { u in u * u - 1 },
            { u in u * u * u - 3 * u },
            { u in pow(u, 4) - 6 * u * u + 3 },
            { u in pow(u, 5) - 10 * pow(u, 3) + 15 * u },
            { u in pow(u, 6) - 15 * pow(u, 4) + 45 * u * u - 15 },
        ]
        for (n, f) in explicit.enumerated() {
            let e = try activation("He\(n)(x)")
            for u in [-2.7, -1, -0.4, 0, 0.9, 1.7, 3.3] {
                #expect(close(e.value(u), f(u), relative: 1e-13), "He\(n)(\(u))")
            }
        }
        #expect(try activation("He99(x)").value(0) == 0)  // odd
        #expect(throws: ExpressionError.self) { try activation("He100(x)") }
    }

    @Test("Hermite orthogonality E[He_m He_n] = n! δ_mn with a 40-point Gauss–Hermite rule")
    func hermiteOrthogonality() throws {
        let (t, w) = gaussHermite(40)
        // The rule itself: distinct decreasing positive nodes, E[1] = 1, E[t²] = 1, E[t⁴] = 3, E[t⁶] = 15.
        for i in 0..<39 { #expect(t[i] > t[i + 1]) }
        #expect(t[19] > 0 && t[20] == -t[19])
        for (p, moment) in [(0, 1.0), (2, 1.0), (4, 3.0), (6, 15.0), (8, 105.0)] {
            let m = zip(t, w).reduce(0.0) { $0 + $1.1 * pow($1.0, Double(p)) }
            #expect(close(m, moment, relative: 1e-12), "E[t^\(p)] = \(m)")
        }
        for m in 0...12 {
            for n in m...12 {
                let e = try activation("He\(m)(x)*He\(n)(x)")
                let integral = zip(t, w).reduce(0.0) { $0 + $1.1 * e.value($1.0) }
                let scale = (factorial(m) * factorial(n)).squareRoot()
                if m == n {
                    #expect(close(integral, factorial(n), relative: 1e-11), "E[He\(n)²] = \(integral)")
                } else {
                    #expect(abs(integral) <= 1e-11 * scale, "E[He\(m) He\(n)] = \(integral)")
                }
            }
        }
    }
}

// MARK: - Derivatives

@Suite("Formula: symbolic derivatives")
struct ExpressionDerivativeTests {
    static let expressions: [(String, Int)] = [
        ("tanh(z1 + z2^3 - 3*z2)", 2),
        ("z1 + z1*z2", 2),
        ("sign(z1*z2*z3)", 3),
        ("He3(z1)", 1),
        ("relu(z1) - relu(z2)", 2),
        ("erf(z1/sqrt(2)) + erfc(z2)", 2),
        ("exp(-z1^2/2)*sin(z2) + cos(z1*z2)", 2),
        ("log(1 + z1^2) + sqrt(2 + z2^2)", 2),
        ("sigmoid(z1 - 2*z2)", 2),
        ("z1/(1 + z2^2) - 3/(2 + z1^2)", 2),
        ("pow(2 + z1^2, z2) + 2^z1", 2),
        ("abs(z1)*He4(z2) + He5(z1 - z2)", 2),
        ("min(z1, z2) + max(z1*z2, z3)", 3),
        ("(1 + z1^2)^-1.5 + (1 + z2^2)^(1/3)", 2),
        ("step(z1)*z2^2 + e^z1 - pi*z2", 2),
        ("He6(z1*z2)/720 - z3^4 + z1*z2*z3", 3),
        ("-(z1 - z2)^2*tanh(-z1)", 2),
        ("z1 + z1*z2 + z1*z2*z3", 3),
    ]

    @Test("derivatives agree with central finite differences")
    func finiteDifferences() throws {
        var rng = SplitMix64(state: 20_240_601)
        var skipped = 0, checked = 0
        for (text, k) in Self.expressions {
            let f = try parse(text, k: k)
            let gradient = f.gradient
            #expect(gradient.count == k)
            for _ in 0..<40 {
                let z = (0..<k).map { _ in 1.3 * rng.normal() }
                for j in 0..<k {
                    let h = 1e-5 * max(1, abs(z[j]))
                    var plus = z, minus = z
                    plus[j] += h; minus[j] -= h
                    let fp = f.value(plus), fm = f.value(minus), f0 = f.value(z)
                    // Within h of a kink or a jump (sign, step, relu, abs, min, max): no derivative to compare.
                    let forward = (fp - f0) / (plus[j] - z[j]), backward = (f0 - fm) / (z[j] - minus[j])
                    if abs(forward - backward) > 1e-2 * (1 + abs(f0)) { skipped += 1; continue }
                    let fd = (fp - fm) / (plus[j] - minus[j])
                    let analytic = gradient[j].value(z)
                    checked += 1
                    #expect(abs(analytic - fd) <= 1e-6 * (1 + abs(analytic) + abs(f0)),
                        "∂\(text)/∂z\(j + 1) at \(z): \(analytic) vs finite difference \(fd) [\(gradient[j])]")
                }
            }
        }
        #expect(skipped <= 3, "\(skipped) points skipped as non-smooth")
        #expect(checked > 1500)
    }

    @Test("simplified forms of the derivatives")
    func simplifiedForms() throws {
        func d(_ text: String, k: Int, _ j: Int) throws -> String {
            try parse(text, k: k).derivative(withRespectTo: j).description
        }
        #expect(try d("He3(z1)", k: 1, 1) == "3*He2(z1)")
        #expect(try d("He2(z1)", k: 1, 1) == "2*z1")
        #expect(try d("He1(z1)", k: 1, 1) == "1")
        #expect(try d("relu(z1) - relu(z2)", k: 2, 1) == "step(z1)")
        #expect(try d("relu(z1) - relu(z2)", k: 2, 2) == "-step(z2)")
        #expect(try d("sign(z1*z2*z3)", k: 3, 2) == "0")
        #expect(try d("z1 + z1*z2", k: 2, 1) == "1 + z2")
        #expect(try d("z1 + z1*z2", k: 2, 2) == "z1")
        #expect(try d("z1 + z1*z2", k: 3, 3) == "0")
        #expect(try d("abs(z1)", k: 1, 1) == "sign(z1)")
        #expect(try d("z1^3", k: 1, 1) == "3*z1^2")
        #expect(try d("tanh(z1 + z2^3 - 3*z2)", k: 2, 2) == "(1 - tanh(z1 + z2^3 - 3*z2)^2)*(3*z2^2 - 3)")
        #expect(try d("erf(z1)", k: 1, 1) == "2/sqrt(pi)*exp(-z1^2)")
        // σ′ of activations given as expressions, against the package's own.
        let erfActivation = try activation("erf(x/sqrt(2))").derivative()
        let reluActivation = try activation("relu(x)").derivative()
        for u in [-2.0, -0.5, 0, 0.3, 1.9] {
            #expect(close(erfActivation.value(u), Activation.erf.derivative(u), relative: 1e-15))
            #expect(reluActivation.value(u) == Activation.relu.derivative(u))
        }
        #expect(reluActivation.variables == .activation)
    }
}

// MARK: - Polynomials

@Suite("Formula: polynomial expansion")
struct ExpressionPolynomialTests {
    @Test("He3 and (z1 + z2)^2 expand exactly")
    func expansions() throws {
        #expect(try parse("He3(z1)", k: 1).polynomialCoefficients() == [[3]: 1, [1]: -3])
        #expect(try parse("He3(z1)", k: 2).polynomialCoefficients() == [[3, 0]: 1, [1, 0]: -3])
        #expect(try parse("He4(z)", k: 1).polynomialCoefficients() == [[4]: 1, [2]: -6, [0]: 3])
        #expect(try parse("(z1 + z2)^2", k: 2).polynomialCoefficients() == [[2, 0]: 1, [1, 1]: 2, [0, 2]: 1])
        #expect(try preset("staircase", k: 3).polynomialCoefficients() == [[1, 0, 0]: 1, [1, 1, 0]: 1, [1, 1, 1]: 1])
        #expect(try parse("z1/2 + sqrt(4)*z2^(1 + 1) - 3", k: 2).polynomialCoefficients()
            == [[1, 0]: 0.5, [0, 2]: 2, [0, 0]: -3])
        #expect(try parse("z1 - z1", k: 1).polynomialCoefficients() == [:])
        #expect(try parse("-(z1*z2)^0", k: 2).polynomialCoefficients() == [[0, 0]: -1])
    }

    @Test("isPolynomial")
    func classification() throws {
        for text in ["z1", "3", "He5(z1*z2 - 1)", "erf(1)*z1", "z1^2/pi", "(z1 - z2)^3*(z1 + 1)", "pow(z1, 2)"] {
            #expect(try parse(text, k: 2).isPolynomial, "\(text)")
        }
        for text in ["tanh(z1)", "z1/z2", "z1^0.5", "z1^-1", "2^z1", "abs(z1)", "min(z1, z2)", "z1/0", "log(-1)*z1",
            "He2(relu(z1))", "z1^z2"]
        {
            let e = try parse(text, k: 2)
            #expect(!e.isPolynomial && e.polynomialCoefficients() == nil, "\(text)")
        }
    }

    @Test("expansions evaluate to the expression")
    func expansionValues() throws {
        var rng = SplitMix64(state: 7)
        for text in ["He4(z1 - z2) + He3(z2)*z1", "(z1 + 2*z2 - 1)^5", "He6(z1*z2)/720 - z3^4 + z1*z2*z3", "He8(z3)"] {
            let e = try parse(text, k: 3)
            let coefficients = try #require(e.polynomialCoefficients())
            for _ in 0..<20 {
                let z = (0..<3).map { _ in rng.normal() }
                let p = coefficients.reduce(0.0) { sum, term in
                    sum + term.value * zip(z, term.key).reduce(1.0) { $0 * pow($1.0, Double($1.1)) }
                }
                #expect(close(p, e.value(z), relative: 1e-11), "\(text) at \(z)")
            }
        }
    }
}

// MARK: - Errors

@Suite("Formula: parse errors")
struct ExpressionErrorTests {
    static let cases: [(text: String, k: Int?, column: Int, token: String, message: String)] = [
        ("z1 + 2*(tanhh(z1))", 2, 9, "tanhh", "unknown function \"tanhh\""),
        ("z1+ z3", 2, 5, "z3", "z3 is not a variable of this target (k = 2)"),
        ("z1 + y", 2, 6, "y", "unknown variable \"y\""),
        ("x + 1", 2, 1, "x", "x is not a variable of a target (use z1…z2)"),
        ("z1 + x", nil, 1, "z1", "z1 is not a variable of an activation (use x)"),
        ("z*2", 3, 1, "z", "z is a synonym of z1 only when k = 1 (k = 3): write z1…z3"),
        ("max(z1, z2 z1)", 2, 12, "z1", "expected \")\", got \"z1\""),
        ("tanh(z1 + z2", 2, 13, "", "expected \")\", got end of input"),
        ("((z1)", 1, 6, "", "expected \")\", got end of input"),
        ("z1 + z2)", 2, 8, ")", "unmatched \")\""),
        ("z1 +", 1, 5, "", "expected a number, variable, function or \"(\" but the input ended"),
        ("z1 * ", 1, 6, "", "expected a number, variable, function or \"(\" but the input ended"),
        ("z1 * / 2", 1, 6, "/", "expected a number, variable, function or \"(\", got \"/\""),
        ("", 1, 1, "", "empty expression"),
        ("   ", 1, 1, "", "empty expression"),
        ("1 2", 1, 3, "2", "expected an operator before \"2\" (implicit multiplication is not supported)"),
        ("2 (z1)", 1, 3, "(", "expected an operator before \"(\" (implicit multiplication is not supported)"),
        ("1e", 1, 1, "1e", "bad number \"1e\""),
        ("2*1e+", 1, 3, "1e+", "bad number \"1e+\""),
        ("1.2.3 + z1", 1, 1, "1.2.3", "bad number \"1.2.3\""),
        ("z1*1e999", 1, 4, "1e999", "number \"1e999\" is not finite"),
        ("tanh z1", 1, 1, "tanh", "expected \"(\" after the function tanh"),
        ("tanh(z1, z1)", 1, 1, "tanh", "tanh takes 1 argument, got 2"),
        ("max(z1)", 1, 1, "max", "max takes 2 arguments, got 1"),
        ("He100(z1)", 1, 1, "He100", "Hermite degree 100 is out of range 0…99"),
        ("z1(2)", 1, 1, "z1", "z1 is not a function"),
        ("z1 # 2", 1, 4, "#", "unexpected character \"#\""),
        ("()", 1, 2, ")", "expected a number, variable, function or \"(\", got \")\""),
        ("z1, z2", 2, 3, ",", "unexpected \",\""),
        ("z0 + z1", 2, 1, "z0", "unknown variable \"z0\""),
    ]

    @Test("malformed inputs are refused at the right column")
    func columns() {
        for c in Self.cases {
            let variables: VariableSet = c.k.map { .target(k: $0) } ?? .activation
            do {
                let e = try Expr(parsing: c.text, variables: variables)
                Issue.record("\"\(c.text)\" parsed as \(e)")
            } catch let error as ExpressionError {
                #expect(error.column == c.column, "\"\(c.text)\": \(error.summary)")
                #expect(error.token == c.token, "\"\(c.text)\": token \"\(error.token)\"")
                #expect(error.message == c.message, "\"\(c.text)\": \(error.message)")
                #expect(error.summary == "column \(c.column): \(c.message)")
                #expect(error.text == c.text)
            } catch {
                Issue.record("\"\(c.text)\": unexpected error \(error)")
            }
        }
    }

    @Test("depth limit: deep but allowed input parses, deeper input is refused, not a crash")
    func depth() throws {
        let limit = Expr.maximumDepth
        let calls = String(repeating: "tanh(", count: limit - 1) + "z1" + String(repeating: ")", count: limit - 1)
        #expect(try close(parse(calls, k: 1).value([0.5]), (0..<(limit - 1)).reduce(0.5) { x, _ in tanh(x) }))
        let parentheses = String(repeating: "(", count: limit) + "z1" + String(repeating: ")", count: limit)
        #expect(try parse(parentheses, k: 1) == parse("z1", k: 1))
        let signs = String(repeating: "-", count: limit - 2) + "z1"
        #expect(try parse(signs, k: 1).value([2]) == 2)
        let sum = Array(repeating: "z1", count: limit).joined(separator: "+")
        #expect(try parse(sum, k: 1).value([1]) == Double(limit))
        for text in [
            String(repeating: "tanh(", count: 2 * limit) + "z1" + String(repeating: ")", count: 2 * limit),
            String(repeating: "(", count: 100_000) + "z1" + String(repeating: ")", count: 100_000),
            String(repeating: "-", count: 100_000) + "z1",
            Array(repeating: "z1", count: 100_000).joined(separator: "+"),
            Array(repeating: "z1", count: 100_000).joined(separator: "^"),
        ] {
            let error = try #require(throws: ExpressionError.self) { try parse(text, k: 1) }
            #expect(error.message == "expression nested more than \(limit) levels deep")
        }
    }

    @Test("the description shows a caret under the column")
    func caret() throws {
        let error = try #require(throws: ExpressionError.self) { try parse("z1 + 2*(tanhh(z1))", k: 2) }
        let lines = error.description.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.count == 3)
        #expect(lines[0] == "column 9: unknown function \"tanhh\"")
        #expect(lines[1] == "  z1 + 2*(tanhh(z1))")
        #expect(lines[2] == "  " + String(repeating: " ", count: 8) + "^")
        #expect(Array(lines[1])[lines[2].count - 1] == "t")
    }
}

// MARK: - Printing, presets, hashing

@Suite("Formula: description round trip and presets")
struct ExpressionDescriptionTests {
    static let texts: [(String, Int)] = [
        ("-z1^2", 1), ("(-2)^2", 1), ("2^3^2", 1), ("(2^3)^2", 1), ("2^-1", 1), ("z1 - (z2 - z3)", 3),
        ("z1*(z2*z3)", 3), ("z1/(z2/z3)", 3), ("-(z1*z2)", 2), ("-z1*z2", 2), ("--z1", 1), ("-(-z1)", 1),
        ("z1 - -3", 1), ("2*-z1", 1), ("1e-5*z1 + 1.5e20 - 0.1", 1), ("pi*e^z1", 1), ("(z1 + z2)^2", 2),
        ("He3(z1)", 1), ("pow(z1, z2^2)", 2), ("min(-z1, max(z2, 0))", 2), ("-0", 1), ("2^-z1^2", 1),
        ("(-z1)^z2", 2), ("z1^(-2)", 1), ("-pi", 1), ("2.5e-300*z1", 1), ("0.30000000000000004", 1),
    ] + ExpressionDerivativeTests.expressions

    private static func roundTrips(_ e: Expr) -> Bool {
        guard let again = try? Expr(parsing: e.description, variables: e.variables) else { return false }
        return again == e && again.hashValue == e.hashValue && again.description == e.description
    }

    @Test("parsing the description gives an equal expression")
    func roundTrip() throws {
        for (text, k) in Self.texts {
            let e = try parse(text, k: k)
            #expect(Self.roundTrips(e), "\(text) → \(e)")
            for d in e.gradient { #expect(Self.roundTrips(d), "∂(\(text)) → \(d)") }
        }
        for text in ["erf(x/sqrt(2))", "x*sigmoid(x)", "He4(x) - 2*x", "relu(x)^2"] {
            let e = try activation(text)
            #expect(Self.roundTrips(e) && Self.roundTrips(e.derivative()), "\(text) → \(e)")
        }
        for name in Expr.presetNames {
            for k in [1, 4] {
                let e = try preset(name, k: k)
                #expect(Self.roundTrips(e), "\(name) → \(e)")
            }
        }
    }

    @Test("printed forms")
    func printed() throws {
        let expected: [(String, String)] = [
            ("-z1^2", "-z1^2"), ("(-2)^2", "(-2)^2"), ("2^-1", "2^(-1)"), ("z1 - -3", "z1 - (-3)"),
            ("((z1 + 1))*z1", "(z1 + 1)*z1"), ("--z1", "-(-z1)"), ("-(z1*z2)", "-(z1*z2)"),
            ("3.0*z1 + 0.5", "3*z1 + 0.5"), ("pow(z1, 2)", "z1^2"), ("3.141592653589793*z1", "pi*z1"),
            ("He3(z1)", "He3(z1)"), ("he3(z2)", "He3(z2)"),
        ]
        for (text, printed) in expected { #expect(try parse(text, k: 2).description == printed) }
        #expect(try parse("z + 1", k: 1).description == "z1 + 1")
        #expect(try activation("2*x - 1").description == "2*x - 1")
    }

    @Test("random expressions round-trip and keep their values")
    func randomRoundTrip() throws {
        var rng = SplitMix64(state: 99)
        func pick<T>(_ xs: [T]) -> T { xs[Int(rng.next() % UInt64(xs.count))] }
        func random(_ depth: Int) -> String {
            if depth == 0 || rng.uniform() < 0.2 {
                return pick(["z1", "z2", "z3", "2", "0.5", "-1", "pi", "1e-3", "3"])
            }
            switch rng.next() % 10 {
            case 0: return "-" + random(depth - 1)
            case 1: return "(" + random(depth - 1) + ")"
            case 2: return pick(["tanh", "erf", "sin", "relu", "abs", "sigmoid", "He3", "exp"]) + "(" + random(depth - 1) + ")"
            case 3: return pick(["min", "max", "pow"]) + "(" + random(depth - 1) + ", " + random(depth - 1) + ")"
            default: return random(depth - 1) + pick([" + ", " - ", "*", "/", "^"]) + random(depth - 1)
            }
        }
        for _ in 0..<400 {
            let text = random(5)
            let e = try parse(text, k: 3)
            let again = try parse(e.description, k: 3)
            #expect(again == e, "\(text) → \(e)")
            let z = (0..<3).map { _ in rng.normal() }
            #expect(same(again.value(z), e.value(z)))
        }
    }

    @Test("presets")
    func presets() throws {
        let z: [Double] = [0.7, -1.3, 0.4, 2.1]
        let erf = try preset("committee-erf", k: 4)
        #expect(close(erf.value(z), z.reduce(0) { $0 + Activation.erf.value($1) }, relative: 1e-15))
        #expect(try preset("committee-relu", k: 4).value(z) == 0.7 + 0.4 + 2.1)
        #expect(try close(preset("committee-tanh", k: 4).value(z), z.reduce(0) { $0 + tanh($1) }))
        let staircase = try preset("staircase", k: 4)
        #expect(close(staircase.value(z), 0.7 + 0.7 * -1.3 + 0.7 * -1.3 * 0.4 + 0.7 * -1.3 * 0.4 * 2.1))
        #expect(staircase.description == "z1 + z1*z2 + z1*z2*z3 + z1*z2*z3*z4")
        #expect(try preset("parity", k: 4).value(z) == -1)
        #expect(try preset("parity", k: 3).description == "sign(z1*z2*z3)")
        #expect(try preset("he2", k: 4).value(z) == 0.7 * 0.7 - 1)
        #expect(try close(preset("he3", k: 1).value([2]), 2))
        #expect(try preset("he4", k: 2).polynomialCoefficients() == [[4, 0]: 1, [2, 0]: -6, [0, 0]: 3])
        #expect(try preset("committee-erf", k: 1).description == "erf(z1/sqrt(2))")
        #expect(Expr.preset("nope", k: 2) == nil && Expr.preset("parity", k: 0) == nil && Expr.preset("parity", k: 65) == nil)
        #expect(try preset("staircase", k: 64).variablesUsed.count == 64)
        let distinct = Set(Expr.presetNames.compactMap { Expr.preset($0, k: 3) })
        #expect(distinct.count == Expr.presetNames.count)
    }
}

// MARK: - Timing (printed, never asserted)

@Suite("Formula: timing (printed only)")
struct ExpressionTimingTests {
    @Test("evaluation time per call")
    func timing() throws {
        #if DEBUG
            let calls = 200_000
            let build = "debug"
        #else
            let calls = 5_000_000
            let build = "release"
        #endif
        let cases: [(String, Int)] = [
            ("tanh(z1 + z2^3 - 3*z2)", 2), ("z1 + z1*z2", 2), ("He4(z1)", 1),
            ("erf(z1/sqrt(2)) + erf(z2/sqrt(2)) + erf(z3/sqrt(2)) + erf(z4/sqrt(2))", 4),
        ]
        var inputs = [Double](repeating: 0, count: 1024 * 4)
        var rng = SplitMix64(state: 1)
        for i in inputs.indices { inputs[i] = rng.normal() }
        var lines: [String] = []
        try inputs.withUnsafeBufferPointer { all in
            for (text, k) in cases {
                let e = try parse(text, k: k)
                var sink = 0.0
                let clock = ContinuousClock()
                let elapsed = clock.measure {
                    for i in 0..<calls {
                        let offset = (i & 1023) * 4
                        sink += e.value(UnsafeBufferPointer(rebasing: all[offset..<offset + k]))
                    }
                }
                let ns = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) * 1e-9
                lines.append("  \(text): \(String(format: "%.1f", ns / Double(calls))) ns/call (checksum \(sink))")
            }
            // Hand-written Swift for the first case, for scale.
            var sink = 0.0
            let elapsed = ContinuousClock().measure {
                for i in 0..<calls {
                    let offset = (i & 1023) * 4
                    let z1 = all[offset], z2 = all[offset + 1]
                    sink += Foundation.tanh(z1 + z2 * z2 * z2 - 3 * z2)
                }
            }
            let ns = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) * 1e-9
            lines.append("  native Swift tanh(z1 + z2^3 - 3*z2): \(String(format: "%.1f", ns / Double(calls))) ns/call (checksum \(sink))")
        }
        print("Formula evaluation timing (\(build), \(calls) calls each):\n" + lines.joined(separator: "\n"))
    }
}
