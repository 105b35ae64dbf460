import ArgumentParser
import Foundation
import PlateauCore
import PlateauTheory

struct DescribeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "describe",
        abstract: "Hermite coefficients, information exponent and leap structure of a target or an activation.",
        discussion: """
        One of --target EXPR (a link in z1…zk, with --k), --activation EXPR (a function of x), or
        --spec FILE (the spec's teacher: its link, or its committee g(z) = Σ_r weights_r σ*(z_r), and
        its student activation). Expressions: + − * / ^, numbers, pi, e, z1…zk or x, and He0…He99, erf, erfc,
        tanh, relu, sign, abs, exp, log, sqrt, sin, cos, sigmoid, step, min, max, pow; erf(u) is the
        plain error function (the package's erf activation is erf(x/sqrt(2))).
        Examples: plateau describe --activation "He3(x)"
                  plateau describe --target "sign(z1*z2*z3)" --k 3
        """)

    @Option(name: .long, help: ArgumentHelp("A link g(z1, …, zk).", valueName: "expr"))
    var target: String?

    @Option(name: .long, help: "Number of indices k of --target (default: the largest z index used).")
    var k: Int?

    @Option(name: .long, help: ArgumentHelp("An activation σ(x).", valueName: "expr"))
    var activation: String?

    @Option(name: .long, help: ArgumentHelp("A specification file: describe its teacher and student.", valueName: "file"))
    var spec: String?

    @Option(name: .customLong("max-degree"), help: "Highest Hermite degree examined (default 8 for k = 1, 6 for k ≤ 3, 4 above).")
    var maxDegree: Int?

    @Option(name: .long, help: "table or json.")
    var format: OutputFormat = .table

    func validate() throws {
        let given = [target != nil, activation != nil, spec != nil].filter { $0 }.count
        guard given == 1 else { throw ValidationError("give exactly one of --target, --activation, --spec") }
        if let k, !(1...8).contains(k) { throw ValidationError("--k must be an integer in 1...8 (got \(k))") }
        if let maxDegree, !(1...12).contains(maxDegree) { throw ValidationError("--max-degree must be in 1...12 (got \(maxDegree))") }
    }

    func parse(_ text: String, _ variables: VariableSet, option: String) throws -> Formula {
        do { return try Formula(parsing: text, variables: variables) } catch let error as ExpressionError {
            throw ValidationError("\(option): \(error.description)")
        }
    }

    func run() throws {
        var items: [(String, Int, ([Double]) -> Double)] = []
        // The symbolic derivative(s) of each item, printed with it ("where defined": the pointwise
        // derivative; kinks and jumps contribute no Dirac masses).
        var derivatives: [[String]] = []
        if let activation {
            let a: Activation
            do { a = try Activation.parse(activation) } catch let error as ExpressionError {
                throw ValidationError("--activation: \(error.description)")
            }
            items.append(("activation σ(x) = \(a.formula)", 1, { a.value($0[0]) }))
            derivatives.append(["σ'(x) = \(a.expression.derivative())"])
        } else if let target {
            let probe = try parse(target, .target(k: VariableSet.maximumTargetIndices), option: "--target")
            let used = probe.variablesUsed.max() ?? 1
            let kk = k ?? used
            guard kk >= used else { throw ValidationError("--k \(kk) is smaller than the largest index used, z\(used)") }
            guard kk <= 8 else { throw ValidationError("--target uses z\(kk); describe handles k ≤ 8") }
            let g = try parse(target, .target(k: kk), option: "--target")
            items.append(("target g(z) = \(g.description), k = \(kk)", kk, { g.value($0) }))
            derivatives.append(g.gradient.enumerated().map { "∂g/∂z\($0.offset + 1) = \($0.element)" })
        } else if let spec {
            let e: Experiment
            do { e = try Experiment(contentsOf: URL(fileURLWithPath: spec)) } catch let error as SpecError {
                throw ValidationError("invalid specification \(spec): \(error)")
            }
            let t = e.teacher
            guard t.k <= 8 else { throw ValidationError("the spec's teacher has k = \(t.k); describe handles k ≤ 8") }
            items.append(("teacher \(t.targetDescription), k = \(t.k)", t.k, { z in
                z.withUnsafeBufferPointer { t.output($0.baseAddress!) }
            }))
            derivatives.append(t.targetFormula.gradient.enumerated().map { "∂g/∂z\($0.offset + 1) = \($0.element)" })
            let s = e.student.activation
            items.append(("student activation σ(x) = \(s.formula)", 1, { s.value($0[0]) }))
            derivatives.append(["σ'(x) = \(s.expression.derivative())"])
        }
        var records: [[String: Any]] = []
        for (index, (title, kk, g)) in items.enumerated() {
            let h = HermiteAnalysis.analyse(k: kk, maxDegree: maxDegree, g)
            if format == .table {
                print(title)
                for line in derivatives[index] { print(line) }
                print(h.summary)
            }
            var record: [String: Any] = [
                "title": title, "derivatives": derivatives[index], "k": kk, "max_degree": h.maxDegree, "norm_squared": h.normSquared,
                "first_order_directions": h.firstOrderDirections, "learning_steps": h.learningSteps,
                "nonzero": h.nonZero.sorted { $0.lexicographicallyPrecedes($1) }.map { ["alpha": $0, "c": h.coefficients[$0] ?? 0] as [String: Any] },
            ]
            if let ie = h.informationExponent { record["information_exponent"] = ie }
            if let leap = h.leap { record["leap"] = leap }
            records.append(record)
        }
        if format == .json { print(JSON.string(["plateau_version": PlateauVersion.string, "command": "describe", "items": records]), terminator: "") }
    }
}
