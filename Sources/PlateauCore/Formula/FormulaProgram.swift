import Foundation

/// An expression compiled to a flat postfix program, run on a small stack with the top value held in a
/// register. Variable-free subtrees are folded to constants; a binary operation with a constant or a
/// variable operand becomes one instruction carrying it; integer powers become repeated multiplication;
/// each function is its own instruction. Running allocates nothing: the stack is a local 8-double
/// tuple, or for deeper programs a `withUnsafeTemporaryAllocation` buffer (on the call stack up to
/// 1 KiB, i.e. 128 levels).
///
/// All arithmetic is bit-for-bit that of `Formula.Node.evaluate` (operands of + and · may be swapped,
/// which IEEE arithmetic does not notice; x − c runs as x + (−c), which is exact).
struct Program: Sendable {
    enum Op: Sendable {
        case constant(Double)
        case variable(Int)  // 0-based input index
        case negate
        case add, subtract, multiply, divide, power, minimum, maximum
        case addConstant(Double)  // top + c (also top − c as top + (−c), which is exact)
        case multiplyConstant(Double)  // top · c
        case divideConstant(Double)  // top / c
        case constantMinus(Double)  // c − top
        case constantDivide(Double)  // c / top
        case addVariable(Int)  // top + z[i]
        case subtractVariable(Int)  // top − z[i]
        case multiplyVariable(Int)  // top · z[i]
        case divideVariable(Int)  // top / z[i]
        case cube
        case square
        case integerPower(Int)  // top^n, |n| ≤ 64
        case powerConstant(Double)  // pow(top, c), c not a small integer
        case hermite(Int)
        // One instruction per function (a single dispatch, no nested switch).
        case erf, erfc, tanh, relu, sign, abs, exp, log, sqrt, sin, cos, sigmoid, step

        init(_ f: Formula.Function) {
            switch f {
            case .erf: self = .erf
            case .erfc: self = .erfc
            case .tanh: self = .tanh
            case .relu: self = .relu
            case .sign: self = .sign
            case .abs: self = .abs
            case .exp: self = .exp
            case .log: self = .log
            case .sqrt: self = .sqrt
            case .sin: self = .sin
            case .cos: self = .cos
            case .sigmoid: self = .sigmoid
            case .step: self = .step
            }
        }
    }

    private(set) var ops: ContiguousArray<Op> = []
    /// Doubles the stack needs (the deepest point of the program, the register included).
    private(set) var stackSize = 0
    /// The largest 1-based variable index read: `run` needs at least this many inputs.
    private(set) var inputCount = 0
    private var depth = 0

    init(compiling root: Formula.Node) {
        emit(root)
        precondition(depth == 1)
    }

    private mutating func push(_ op: Op) {
        ops.append(op)
        depth += 1
        stackSize = max(stackSize, depth)
    }

    /// An operation that pops `popped` values and pushes one.
    private mutating func apply(_ op: Op, popped: Int) {
        ops.append(op)
        depth -= popped - 1
    }

    private mutating func emit(_ node: Formula.Node) {
        if !node.hasVariables {
            push(.constant(node.evaluate([])))
            return
        }
        switch node {
        case .constant(let c):
            push(.constant(c))
        case .variable(let i):
            useVariable(i)
            push(.variable(i - 1))
        case .negate(let u):
            emit(u)
            apply(.negate, popped: 1)
        case .add(let a, let b):
            if let c = Self.constant(b) {
                emit(a); apply(.addConstant(c), popped: 1)
            } else if let c = Self.constant(a) {
                emit(b); apply(.addConstant(c), popped: 1)
            } else if case .variable(let i) = b {
                emit(a); useVariable(i); apply(.addVariable(i - 1), popped: 1)
            } else if case .variable(let i) = a {
                emit(b); useVariable(i); apply(.addVariable(i - 1), popped: 1)
            } else {
                emit(a); emit(b); apply(.add, popped: 2)
            }
        case .subtract(let a, let b):
            if let c = Self.constant(b) {
                emit(a); apply(.addConstant(-c), popped: 1)
            } else if let c = Self.constant(a) {
                emit(b); apply(.constantMinus(c), popped: 1)
            } else if case .variable(let i) = b {
                emit(a); useVariable(i); apply(.subtractVariable(i - 1), popped: 1)
            } else {
                emit(a); emit(b); apply(.subtract, popped: 2)
            }
        case .multiply(let a, let b):
            if let c = Self.constant(b) {
                emit(a); apply(.multiplyConstant(c), popped: 1)
            } else if let c = Self.constant(a) {
                emit(b); apply(.multiplyConstant(c), popped: 1)
            } else if case .variable(let i) = b {
                emit(a); useVariable(i); apply(.multiplyVariable(i - 1), popped: 1)
            } else if case .variable(let i) = a {
                emit(b); useVariable(i); apply(.multiplyVariable(i - 1), popped: 1)
            } else {
                emit(a); emit(b); apply(.multiply, popped: 2)
            }
        case .divide(let a, let b):
            if let c = Self.constant(b) {
                emit(a); apply(.divideConstant(c), popped: 1)
            } else if let c = Self.constant(a) {
                emit(b); apply(.constantDivide(c), popped: 1)
            } else if case .variable(let i) = b {
                emit(a); useVariable(i); apply(.divideVariable(i - 1), popped: 1)
            } else {
                emit(a); emit(b); apply(.divide, popped: 2)
            }
        case .power(let a, let b):
            if let c = Self.constant(b) {
                emit(a)
                if c.magnitude <= Scalar.integerPowerLimit, c == c.rounded(.towardZero) {
                    apply(c == 2 ? .square : c == 3 ? .cube : .integerPower(Int(c)), popped: 1)
                } else {
                    apply(.powerConstant(c), popped: 1)
                }
            } else {
                emit(a); emit(b); apply(.power, popped: 2)
            }
        case .hermite(let n, let u):
            emit(u)
            apply(.hermite(n), popped: 1)
        case .call(let f, let u):
            emit(u)
            apply(Op(f), popped: 1)
        case .minimum(let a, let b):
            emit(a); emit(b); apply(.minimum, popped: 2)
        case .maximum(let a, let b):
            emit(a); emit(b); apply(.maximum, popped: 2)
        }
    }

    private mutating func useVariable(_ i: Int) { inputCount = max(inputCount, i) }

    /// The value of a variable-free subtree.
    private static func constant(_ node: Formula.Node) -> Double? {
        node.hasVariables ? nil : node.evaluate([])
    }

    func run(_ z: UnsafeBufferPointer<Double>) -> Double {
        precondition(z.count >= inputCount, "the expression reads \(inputCount) inputs, got \(z.count)")
        let input = z.baseAddress
        if stackSize <= 8 {
            var stack: (Double, Double, Double, Double, Double, Double, Double, Double) = (0, 0, 0, 0, 0, 0, 0, 0)
            return withUnsafeMutableBytes(of: &stack) { raw in
                execute(input, raw.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: Double.self))
            }
        }
        return withUnsafeTemporaryAllocation(of: Double.self, capacity: stackSize) { stack in
            execute(input, stack.baseAddress.unsafelyUnwrapped)
        }
    }

    /// Runs the program with `s` as the stack (at least `stackSize` doubles).
    @inline(__always)
    private func execute(_ input: UnsafePointer<Double>?, _ s: UnsafeMutablePointer<Double>) -> Double {
        ops.withUnsafeBufferPointer { ops in
            var top = 0.0
            var sp = 0  // values held in s below the register
            for op in ops {
                switch op {
                case .constant(let c):
                    s[sp] = top; sp &+= 1; top = c
                case .variable(let i):
                    s[sp] = top; sp &+= 1; top = input.unsafelyUnwrapped[i]
                case .negate: top = -top
                case .add: sp &-= 1; top = s[sp] + top
                case .subtract: sp &-= 1; top = s[sp] - top
                case .multiply: sp &-= 1; top = s[sp] * top
                case .divide: sp &-= 1; top = s[sp] / top
                case .power: sp &-= 1; top = Scalar.power(s[sp], top)
                case .minimum: sp &-= 1; top = Scalar.minimum(s[sp], top)
                case .maximum: sp &-= 1; top = Scalar.maximum(s[sp], top)
                case .addConstant(let c): top += c
                case .multiplyConstant(let c): top *= c
                case .divideConstant(let c): top /= c
                case .constantMinus(let c): top = c - top
                case .constantDivide(let c): top = c / top
                case .square: top *= top
                case .cube: top = top * top * top
                case .addVariable(let i): top += input.unsafelyUnwrapped[i]
                case .subtractVariable(let i): top -= input.unsafelyUnwrapped[i]
                case .multiplyVariable(let i): top *= input.unsafelyUnwrapped[i]
                case .divideVariable(let i): top /= input.unsafelyUnwrapped[i]
                case .integerPower(let n): top = Scalar.power(top, n)
                case .powerConstant(let c): top = Foundation.pow(top, c)
                case .hermite(let n): top = Scalar.hermite(n, top)
                case .erf: top = Formula.Function.erf.apply(top)
                case .erfc: top = Formula.Function.erfc.apply(top)
                case .tanh: top = Formula.Function.tanh.apply(top)
                case .relu: top = Formula.Function.relu.apply(top)
                case .sign: top = Formula.Function.sign.apply(top)
                case .abs: top = Formula.Function.abs.apply(top)
                case .exp: top = Formula.Function.exp.apply(top)
                case .log: top = Formula.Function.log.apply(top)
                case .sqrt: top = Formula.Function.sqrt.apply(top)
                case .sin: top = Formula.Function.sin.apply(top)
                case .cos: top = Formula.Function.cos.apply(top)
                case .sigmoid: top = Formula.Function.sigmoid.apply(top)
                case .step: top = Formula.Function.step.apply(top)
                }
            }
            return top
        }
    }
}
