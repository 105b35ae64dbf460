import Foundation

/// A token of the expression language, with its 1-based column and its text as written.
struct ExpressionToken {
    enum Kind: Equatable {
        case number(Double)
        case name(String)
        case symbol(Character)  // + - * / ^ ( ) ,
        case end
    }

    var kind: Kind
    var column: Int
    var text: String
}

/// Splits expression text into tokens.
struct ExpressionLexer {
    let text: String
    let characters: [Character]

    init(text: String) {
        self.text = text
        self.characters = Array(text)
    }

    func error(_ column: Int, _ token: String, _ message: String) -> ExpressionError {
        ExpressionError(text: text, column: column, token: token, message: message)
    }

    func tokens() throws -> [ExpressionToken] {
        var result: [ExpressionToken] = []
        var i = 0
        let n = characters.count
        func isDigit(_ c: Character) -> Bool { c.isASCII && c.isNumber }
        func isNameStart(_ c: Character) -> Bool { c.isASCII && (c.isLetter || c == "_") }
        func isNameContinuation(_ c: Character) -> Bool { c.isASCII && (c.isLetter || c.isNumber || c == "_") }
        while i < n {
            let c = characters[i]
            if c.isWhitespace { i += 1; continue }
            let start = i
            if isDigit(c) || (c == "." && i + 1 < n && isDigit(characters[i + 1])) {
                while i < n, isDigit(characters[i]) { i += 1 }
                if i < n, characters[i] == "." {
                    i += 1
                    while i < n, isDigit(characters[i]) { i += 1 }
                }
                var malformed = false
                if i < n, characters[i] == "e" || characters[i] == "E" {
                    i += 1
                    if i < n, characters[i] == "+" || characters[i] == "-" { i += 1 }
                    if i < n, isDigit(characters[i]) {
                        while i < n, isDigit(characters[i]) { i += 1 }
                    } else {
                        malformed = true
                    }
                }
                // A second decimal point, or letters/digits glued to an exponent, make a bad number.
                if i < n, characters[i] == "." {
                    malformed = true
                    while i < n, characters[i] == "." || isNameContinuation(characters[i]) { i += 1 }
                }
                let literal = String(characters[start..<i])
                if malformed { throw error(start + 1, literal, "bad number \"\(literal)\"") }
                guard let value = Double(literal) else { throw error(start + 1, literal, "bad number \"\(literal)\"") }
                guard value.isFinite else {
                    throw error(start + 1, literal, "number \"\(literal)\" is not finite")
                }
                result.append(ExpressionToken(kind: .number(value), column: start + 1, text: literal))
            } else if isNameStart(c) {
                while i < n, isNameContinuation(characters[i]) { i += 1 }
                let name = String(characters[start..<i])
                result.append(ExpressionToken(kind: .name(name), column: start + 1, text: name))
            } else if "+-*/^(),".contains(c) {
                i += 1
                result.append(ExpressionToken(kind: .symbol(c), column: start + 1, text: String(c)))
            } else if c == "\u{2212}" {  // − (minus sign) reads as "-"
                i += 1
                result.append(ExpressionToken(kind: .symbol("-"), column: start + 1, text: String(c)))
            } else {
                throw error(start + 1, String(c), "unexpected character \"\(c)\"")
            }
        }
        result.append(ExpressionToken(kind: .end, column: n + 1, text: ""))
        return result
    }
}

/// Recursive-descent parser of the grammar documented on `Formula`.
struct ExpressionParser {
    let lexer: ExpressionLexer
    let variables: VariableSet
    var tokens: [ExpressionToken] = []
    var position = 0
    /// Open parentheses, calls, unary signs and `^` around the current position (all recursive).
    var nesting = 0

    init(text: String, variables: VariableSet) {
        self.lexer = ExpressionLexer(text: text)
        self.variables = variables
    }

    static let unaryFunctions: [String: Formula.Function] = Dictionary(
        uniqueKeysWithValues: Formula.Function.allCases.map { ($0.rawValue, $0) })
    static let binaryFunctions: Set<String> = ["min", "max", "pow"]

    func error(_ token: ExpressionToken, _ message: String) -> ExpressionError {
        lexer.error(token.column, token.text, message)
    }

    var current: ExpressionToken { tokens[position] }

    mutating func advance() { if position < tokens.count - 1 { position += 1 } }

    func describe(_ token: ExpressionToken) -> String {
        token.kind == .end ? "end of input" : "\"\(token.text)\""
    }

    /// A parsed subtree and its depth (a leaf has depth 1).
    typealias Parsed = (node: Formula.Node, depth: Int)

    /// A node over `children`, refused if the tree would be deeper than `Formula.maximumDepth`
    /// (`token` is the operator or function that makes it so).
    func make(_ node: Formula.Node, _ children: [Parsed], at token: ExpressionToken) throws -> Parsed {
        let depth = 1 + (children.map(\.depth).max() ?? 0)
        guard depth <= Formula.maximumDepth else {
            throw error(token, "expression nested more than \(Formula.maximumDepth) levels deep")
        }
        return (node, depth)
    }

    /// One more level of recursion (a sign, "(", a call or "^" at `token`), refused past the limit.
    mutating func enter(at token: ExpressionToken) throws {
        nesting += 1
        if nesting > Formula.maximumDepth {
            nesting -= 1
            throw error(token, "expression nested more than \(Formula.maximumDepth) levels deep")
        }
    }

    mutating func parse() throws -> Formula.Node {
        if case let .target(k) = variables, !(1...VariableSet.maximumTargetIndices).contains(k) {
            throw lexer.error(1, "", "a target has 1…\(VariableSet.maximumTargetIndices) indices (k = \(k))")
        }
        tokens = try lexer.tokens()
        if tokens.count == 1 { throw lexer.error(1, "", "empty expression") }
        let parsed = try parseExpression()
        let token = current
        switch token.kind {
        case .end:
            return parsed.node
        case .symbol(")"):
            throw error(token, "unmatched \")\"")
        case .number, .name, .symbol("("):
            throw error(token, "expected an operator before \(describe(token)) (implicit multiplication is not supported)")
        default:
            throw error(token, "unexpected \(describe(token))")
        }
    }

    mutating func parseExpression() throws -> Parsed {
        var lhs = try parseTerm()
        while case let .symbol(s) = current.kind, s == "+" || s == "-" {
            let token = current
            advance()
            let rhs = try parseTerm()
            lhs = try make(s == "+" ? .add(lhs.node, rhs.node) : .subtract(lhs.node, rhs.node), [lhs, rhs], at: token)
        }
        return lhs
    }

    mutating func parseTerm() throws -> Parsed {
        var lhs = try parseUnary()
        while case let .symbol(s) = current.kind, s == "*" || s == "/" {
            let token = current
            advance()
            let rhs = try parseUnary()
            lhs = try make(s == "*" ? .multiply(lhs.node, rhs.node) : .divide(lhs.node, rhs.node), [lhs, rhs], at: token)
        }
        return lhs
    }

    mutating func parseUnary() throws -> Parsed {
        if case let .symbol(s) = current.kind, s == "-" || s == "+" {
            let token = current
            advance()
            // Counted before recursing, so that "------…" cannot exhaust the call stack.
            try enter(at: token)
            defer { nesting -= 1 }
            let operand = try parseUnary()
            guard s == "-" else { return operand }
            // A negated number is a negative constant, so that a printed "-2" reads back as itself.
            if case let .constant(c) = operand.node { return (.constant(-c), operand.depth) }
            return try make(.negate(operand.node), [operand], at: token)
        }
        return try parsePower()
    }

    mutating func parsePower() throws -> Parsed {
        let base = try parsePrimary()
        if case .symbol("^") = current.kind {
            let token = current
            advance()
            try enter(at: token)
            defer { nesting -= 1 }
            let exponent = try parseUnary()
            return try make(.power(base.node, exponent.node), [base, exponent], at: token)
        }
        return base
    }

    mutating func parsePrimary() throws -> Parsed {
        let token = current
        switch token.kind {
        case let .number(value):
            advance()
            return (.constant(value), 1)
        case .symbol("("):
            advance()
            try enter(at: token)
            defer { nesting -= 1 }
            let parsed = try parseExpression()
            try expect(")")
            return parsed
        case let .name(name):
            advance()
            if case .symbol("(") = current.kind { return try parseCall(name: name, token: token) }
            return (try resolveName(name, token: token), 1)
        case .end:
            throw error(token, "expected a number, variable, function or \"(\" but the input ended")
        default:
            throw error(token, "expected a number, variable, function or \"(\", got \(describe(token))")
        }
    }

    mutating func expect(_ symbol: Character) throws {
        guard case .symbol(symbol) = current.kind else {
            throw error(current, "expected \"\(symbol)\", got \(describe(current))")
        }
        advance()
    }

    /// Parses `( argument, … )` after a function name.
    mutating func parseCall(name: String, token: ExpressionToken) throws -> Parsed {
        let arity: Int
        var hermiteDegree: Int?
        if let n = Self.hermiteDegree(name) {
            guard n <= 99 else { throw error(token, "Hermite degree \(n) is out of range 0…99") }
            hermiteDegree = n
            arity = 1
        } else if Self.unaryFunctions[name] != nil {
            arity = 1
        } else if Self.binaryFunctions.contains(name) {
            arity = 2
        } else if isVariableOrConstant(name) {
            throw error(token, "\(name) is not a function")
        } else {
            throw error(token, "unknown function \"\(name)\"")
        }
        try expect("(")
        try enter(at: token)
        defer { nesting -= 1 }
        var arguments = [try parseExpression()]
        while case .symbol(",") = current.kind {
            advance()
            arguments.append(try parseExpression())
        }
        guard arguments.count == arity else {
            throw error(token, "\(name) takes \(arity) argument\(arity == 1 ? "" : "s"), got \(arguments.count)")
        }
        try expect(")")
        let u = arguments[0].node
        let node: Formula.Node
        if let n = hermiteDegree {
            node = .hermite(n, u)
        } else if let f = Self.unaryFunctions[name] {
            node = .call(f, u)
        } else {
            let v = arguments[1].node
            node = name == "min" ? .minimum(u, v) : name == "max" ? .maximum(u, v) : .power(u, v)
        }
        return try make(node, arguments, at: token)
    }

    /// The degree of a Hermite function name `He<n>` / `he<n>` (digits without a leading zero, or "0").
    static func hermiteDegree(_ name: String) -> Int? {
        guard name.hasPrefix("He") || name.hasPrefix("he") else { return nil }
        let digits = name.dropFirst(2)
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
            digits == "0" || digits.first != "0"
        else { return nil }
        return Int(digits) ?? Int.max
    }

    func isVariableOrConstant(_ name: String) -> Bool {
        name == "pi" || name == "e" || name == "x" || name == "z" || Self.variableIndex(name) != nil
    }

    /// The index of a name `z<n>` (digits without a leading zero), if it has that shape.
    static func variableIndex(_ name: String) -> Int? {
        guard name.hasPrefix("z") else { return nil }
        let digits = name.dropFirst()
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), digits.first != "0" else {
            return nil
        }
        return Int(digits) ?? Int.max
    }

    func resolveName(_ name: String, token: ExpressionToken) throws -> Formula.Node {
        switch name {
        case "pi": return .constant(Double.pi)
        case "e": return .constant(ExpressionPrinter.e)
        default: break
        }
        if Self.unaryFunctions[name] != nil || Self.binaryFunctions.contains(name) || Self.hermiteDegree(name) != nil {
            throw error(token, "expected \"(\" after the function \(name)")
        }
        switch variables {
        case .activation:
            if name == "x" { return .variable(1) }
            if name == "z" || Self.variableIndex(name) != nil {
                throw error(token, "\(name) is not a variable of an activation (use x)")
            }
        case .preprocessing:
            if name == "y" { return .variable(1) }
            if name == "x" || name == "z" || Self.variableIndex(name) != nil {
                throw error(token, "\(name) is not a variable of a preprocessing (use y)")
            }
        case let .target(k):
            if name == "z" {
                if k == 1 { return .variable(1) }
                throw error(token, "z is a synonym of z1 only when k = 1 (k = \(k)): write z1…z\(k)")
            }
            if let i = Self.variableIndex(name) {
                if i <= k { return .variable(i) }
                throw error(token, "\(name) is not a variable of this target (k = \(k))")
            }
            if name == "x" {
                throw error(token, "x is not a variable of a target (use \(k == 1 ? "z1" : "z1…z\(k)"))")
            }
        }
        throw error(token, "unknown variable \"\(name)\"")
    }
}

// MARK: - Printing

/// Prints a tree with the fewest parentheses that read back to the same tree.
///
/// Levels: 1 `+ −`, 2 `* /`, 3 unary minus (and negative numbers), 4 `^`, 5 atoms. A negation on the
/// right of a binary operator, under `^` or under another minus is parenthesised for readability.
struct ExpressionPrinter {
    static let e = 2.718281828459045235360287

    let variables: VariableSet

    func number(_ c: Double) -> String {
        if c == Double.pi { return "pi" }
        if c == Self.e { return "e" }
        var s = "\(c)"
        if s.hasSuffix(".0") { s.removeLast(2) }
        return s
    }

    func string(_ node: Formula.Node) -> (text: String, level: Int) {
        switch node {
        case let .constant(c):
            if c < 0 { return ("-" + number(-c), 3) }
            return (number(c == 0 ? 0 : c), 5)
        case let .variable(i):
            return (variables.name(of: i), 5)
        case let .negate(u):
            return ("-" + wrap(u, when: { $0 <= 3 }), 3)
        case let .add(a, b): return binary(a, "+", b, level: 1)
        case let .subtract(a, b): return binary(a, "-", b, level: 1)
        case let .multiply(a, b): return binary(a, "*", b, level: 2)
        case let .divide(a, b): return binary(a, "/", b, level: 2)
        case let .power(a, b):
            return (wrap(a, when: { $0 <= 4 }) + "^" + wrap(b, when: { $0 < 4 }), 4)
        case let .hermite(n, u): return ("He\(n)(\(string(u).text))", 5)
        case let .call(f, u): return ("\(f.rawValue)(\(string(u).text))", 5)
        case let .minimum(a, b): return ("min(\(string(a).text), \(string(b).text))", 5)
        case let .maximum(a, b): return ("max(\(string(a).text), \(string(b).text))", 5)
        }
    }

    func wrap(_ node: Formula.Node, when condition: (Int) -> Bool) -> String {
        let (text, level) = string(node)
        return condition(level) ? "(" + text + ")" : text
    }

    func binary(_ a: Formula.Node, _ op: String, _ b: Formula.Node, level: Int) -> (text: String, level: Int) {
        let left = wrap(a, when: { $0 < level })
        let right = wrap(b, when: { $0 <= level || $0 == 3 })
        let separator = level == 1 ? " \(op) " : op
        return (left + separator + right, level)
    }
}
