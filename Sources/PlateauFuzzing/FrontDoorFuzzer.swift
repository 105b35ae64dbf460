import Dispatch
import Foundation
import PlateauCore
import Yams

/// Generated inputs for the front door — the spec reader (`Experiment(specData:)`,
/// `EstimationProblem(specData:)`) and the expression parser (`Formula(parsing:variables:)`,
/// `Activation.parse`) — and the checks every input must pass:
///
/// - no crash and no hang (each input is timed; `Outcome.seconds`);
/// - an accepted spec reads back to itself from its own JSON (`specJSON`), an accepted expression
///   from its own printing, and can be evaluated;
/// - a refused spec throws a `SpecError` every problem of which names a field and a value and gives
///   a reason; a refused expression throws an `ExpressionError` whose column lies in the text.
///
/// Input `i` of seed `s` is a pure function of (s, i), so any finding is replayed by its index.
public struct FrontDoorFuzzer: Sendable {
    public let seed: UInt64

    public init(seed: UInt64) { self.seed = seed }

    /// One generated input.
    public enum Input: Sendable {
        /// Spec bytes (mutated YAML or JSON, possibly not UTF-8).
        case spec(Data)
        /// An expression and the variables it is read with (nil: read as an activation by `Activation.parse`).
        case expression(String, VariableSet?)

        /// A printable form (for reports): the text, non-UTF-8 bytes escaped, cut at 300 characters.
        public var shown: String {
            switch self {
            case let .spec(d):
                let s = String(decoding: d, as: UTF8.self)
                return "spec (\(d.count) bytes): " + String(s.prefix(300)).debugDescription
            case let .expression(e, v):
                return "expression (\(v.map { "\($0)" } ?? "activation")): " + String(e.prefix(300)).debugDescription
            }
        }
    }

    /// What happened to one input.
    public struct Outcome: Sendable {
        /// Accepted, or refused with a well-formed error.
        public var ok: Bool
        public var accepted: Bool
        /// What was wrong when not `ok`.
        public var failure: String
        public var seconds: Double
    }

    // MARK: Generation

    /// Valid specifications of each protocol, in YAML and JSON: the seeds of the mutations.
    public static let corpus: [String] = {
        var texts = [Experiment.sampleYAML, MultipassSettings.sampleYAML, EstimationProblem.sampleYAML,
                     Experiment.saadSolla.specJSON, EstimationProblem.signProduct.specJSON]
        texts.append("""
        teacher: {k: 3, target: "tanh(z1 + z2^3 - 3*z2) + He3(z3)", noise: 0.01}
        student: {p: 2, activation: "x^3 - 3*x", secondLayer: 0.5, trainSecondLayer: true, secondLayerLearningRate: 0.1}
        training: {protocol: online, loss: correlation, learningRate: 0.2, batchSize: 4, weightDecay: 0.01, time: 50}
        init: {M: [[0.1, 0, 0], [0, 0.1, 0]], Q: [[1, 0.2], [0.2, 1]]}
        output: {times: [0, 1, 2.5, 50]}
        """)
        texts.append("""
        teacher: {k: 2, preset: staircase, P: [[1, 0.3], [0.3, 2]]}
        student: {p: 3, activation: relu, spherical: true}
        training: {learningRate: 1e-1, time: 1.0e+2}
        init: {orthogonal: {Q: identity}}
        output: {times: {linear: 10}}
        """)
        texts.append("""
        {"teacher": {"k": 1, "activation": "He2"}, "student": {"p": 1, "activation": "sigmoid(2*x)"},
         "training": {"learningRate": 0.3, "time": 10, "batchSize": 2}, "init": {"random": {"scale": 0.5, "seed": 7}},
         "output": {"times": {"log": 20, "start": 0.5}}}
        """)
        return texts
    }()

    static let extremeNumbers = ["0", "-0", "1", "-1", "2.5", "1e308", "-1e308", "1e309", "1e-320", "4.9e-324", "nan", ".nan",
                                 ".inf", "-.inf", "inf", "99999999999999999999", "-99999999999999999999", "1e15", "1e16",
                                 "9007199254740993", "0x1F", "0o17", "1_000", "+5", "65", "64", "1000001", "2147483648",
                                 "-9223372036854775808", "9223372036854775807", "1e-9", "3.", ".5", "1e", "--1", "1.2.3"]
    static let words = ["teacher", "student", "training", "init", "output", "k", "p", "activation", "weights", "P", "noise",
                        "target", "preset", "secondLayer", "trainSecondLayer", "secondLayerLearningRate", "spherical",
                        "protocol", "loss", "learningRate", "batchSize", "weightDecay", "time", "M", "Q", "random",
                        "orthogonal", "scale", "seed", "times", "log", "linear", "start", "alpha", "steps", "ridge",
                        "particles", "batchFraction", "samples", "amp", "damping", "tolerance", "iterations", "epsilon",
                        "informed", "omegaNodes", "outputResolution", "online", "multipass", "square", "correlation",
                        "erf", "relu", "tanh", "He3", "He99", "He100", "He99999", "He99999999999999999999", "identity",
                        "staircase", "parity", "reuse", "fresh", "true", "false", "null", "~", "yes", "2001-12-14",
                        "!!binary aGVsbG8=", "!!set {a, b}", "&anchor 1", "*anchor", "<<: {a: 1}", "|\n  block", "\"quoted\"",
                        "'single'", "é", "ℝ", "\u{0}", "\u{FEFF}", "\t", "[]", "{}", "[[]]", "[1, [2, [3]]]"]
    static let functions = ["erf", "erfc", "tanh", "relu", "sign", "abs", "step", "exp", "log", "sqrt", "sin", "cos",
                            "sigmoid", "He0", "He1", "He3", "He99", "He100", "He99999", "min", "max", "pow", "foo", "x", "z1"]

    /// Input `index`: a mix of spec mutations (JSON and YAML, structural and textual, deep nesting,
    /// bytes that are not UTF-8) and expressions (random trees, deep nesting, extreme numbers).
    public func input(_ index: Int) -> Input {
        var rng = Xoshiro256PlusPlus(seed: SeedSequence.seed(master: seed, index: index))
        let kind = Int(rng.next() % 100)
        switch kind {
        case 0..<30: return .spec(Data(textMutation(&rng).utf8))
        case 30..<55: return .spec(Data(treeMutation(&rng).utf8))
        case 55..<60: return .spec(deepNesting(&rng))
        case 60..<65: return .spec(byteMutation(&rng))
        case 65..<70: return .spec(Data(specWithExpression(&rng).utf8))
        default:
            let variables: VariableSet? = rng.next() % 3 == 0 ? nil : (rng.next() % 2 == 0 ? .activation : .target(k: Int(rng.next() % 5)))
            return .expression(expression(&rng), variables)
        }
    }

    static func pick<T>(_ list: [T], _ rng: inout Xoshiro256PlusPlus) -> T { list[Int(rng.next() % UInt64(list.count))] }

    /// Textual mutations of a corpus entry: numbers made extreme, words swapped, lines dropped,
    /// duplicated or cut, characters inserted.
    func textMutation(_ rng: inout Xoshiro256PlusPlus) -> String {
        var text = Array(Self.pick(Self.corpus, &rng))
        let count = 1 + Int(rng.next() % 4)
        for _ in 0..<count {
            guard !text.isEmpty else { break }
            let at = Int(rng.next() % UInt64(text.count))
            switch rng.next() % 7 {
            case 0:  // replace the number (or word) at `at`
                var a = at, b = at
                while a > 0, text[a - 1].isLetter || text[a - 1].isNumber || ".-+".contains(text[a - 1]) { a -= 1 }
                while b < text.count, text[b].isLetter || text[b].isNumber || ".-+".contains(text[b]) { b += 1 }
                let replacement = rng.next() % 2 == 0 ? Self.pick(Self.extremeNumbers, &rng) : Self.pick(Self.words, &rng)
                text.replaceSubrange(a..<b, with: Array(replacement))
            case 1:  // delete a span
                let n = min(text.count - at, 1 + Int(rng.next() % 20))
                text.removeSubrange(at..<(at + n))
            case 2:  // insert a word
                text.insert(contentsOf: Array(" " + Self.pick(Self.words, &rng)), at: at)
            case 3:  // insert a structural character
                text.insert(Self.pick(Array("{}[]:,-#\"'\n &*!|>%@`"), &rng), at: at)
            case 4:  // duplicate a line
                let lines = String(text).split(separator: "\n", omittingEmptySubsequences: false)
                var l = lines.map(String.init)
                let i = Int(rng.next() % UInt64(l.count))
                l.insert(l[i], at: i)
                text = Array(l.joined(separator: "\n"))
            case 5:  // truncate
                text = Array(text[..<at])
            default:  // a random printable or control character
                text.insert(Character(Unicode.Scalar(UInt8(rng.next() % 128))), at: at)
            }
        }
        return String(text)
    }

    /// Structural mutations: a corpus entry read as a tree, one to three nodes replaced by a random
    /// value (number, string, list, mapping, deep list), written back as JSON or YAML-flow.
    func treeMutation(_ rng: inout Xoshiro256PlusPlus) -> String {
        let base = Self.pick(Self.corpus.indices.map { $0 }, &rng)
        guard var tree: Any = (try? Yams.load(yaml: Self.corpus[base])) ?? nil else { return Self.corpus[base] }
        for _ in 0..<(1 + Int(rng.next() % 3)) { tree = mutate(tree, &rng, depth: 0) }
        return Self.json(tree)
    }

    func mutate(_ node: Any, _ rng: inout Xoshiro256PlusPlus, depth: Int) -> Any {
        if let m = node as? [String: Any], !m.isEmpty, rng.next() % 4 != 0 {
            var m = m
            let key = Self.pick(m.keys.sorted(), &rng)
            switch rng.next() % 8 {
            case 0: m[key] = nil
            case 1: m[Self.pick(Self.words, &rng)] = randomValue(&rng, depth: depth + 1)
            default: m[key] = mutate(m[key]!, &rng, depth: depth + 1)
            }
            return m
        }
        if let a = node as? [Any], !a.isEmpty, rng.next() % 3 != 0 {
            var a = a
            let i = Int(rng.next() % UInt64(a.count))
            switch rng.next() % 5 {
            case 0: a.remove(at: i)
            case 1: a.append(randomValue(&rng, depth: depth + 1))
            default: a[i] = mutate(a[i], &rng, depth: depth + 1)
            }
            return a
        }
        return randomValue(&rng, depth: depth)
    }

    func randomValue(_ rng: inout Xoshiro256PlusPlus, depth: Int) -> Any {
        switch rng.next() % 9 {
        case 0: return Double(bitPattern: rng.next())  // any double, NaN and ±∞ included (written as strings)
        case 1: return Int(truncatingIfNeeded: rng.next()) >> Int(rng.next() % 64)
        case 2: return Self.pick(Self.extremeNumbers, &rng)
        case 3: return Self.pick(Self.words, &rng)
        case 4: return rng.next() % 2 == 0
        case 5: return NSNull()
        case 6 where depth < 6: return (0..<Int(rng.next() % 4)).map { _ in randomValue(&rng, depth: depth + 1) }
        case 7 where depth < 6:
            var m: [String: Any] = [:]
            for _ in 0..<Int(rng.next() % 4) { m[Self.pick(Self.words, &rng)] = randomValue(&rng, depth: depth + 1) }
            return m
        default: return expression(&rng)
        }
    }

    /// A tree as JSON text; doubles that JSON cannot hold are written as strings.
    static func json(_ tree: Any) -> String {
        func clean(_ v: Any) -> Any {
            if let d = v as? Double, !d.isFinite { return Experiment.format(d) }
            if let a = v as? [Any] { return a.map(clean) }
            if let m = v as? [String: Any] { return m.mapValues(clean) }
            return v
        }
        guard let data = try? JSONSerialization.data(withJSONObject: clean(tree), options: [.sortedKeys, .fragmentsAllowed]) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    /// A valid spec with one field nested very deep (flow or block style), or a deep expression.
    func deepNesting(_ rng: inout Xoshiro256PlusPlus) -> Data {
        let depth = [5, 31, 33, 100, 1000, 100_000][Int(rng.next() % 6)]
        let text: String
        switch rng.next() % 4 {
        case 0: text = "teacher: {k: 2, weights: " + String(repeating: "[", count: depth) + "1" + String(repeating: "]", count: depth) + "}\nstudent: {p: 2}\ntraining: {learningRate: 0.5, time: 1}\n"
        case 1: text = "teacher: " + String(repeating: "{a: ", count: depth) + "1" + String(repeating: "}", count: depth) + "\n"
        case 2:
            var s = ""
            for level in 0..<min(depth, 2000) { s += String(repeating: " ", count: level) + "a\(level):\n" }
            text = s + String(repeating: " ", count: min(depth, 2000)) + "1\n"
        default: text = String(repeating: "- ", count: min(depth, 100_000)) + "1\n"
        }
        return Data(text.utf8)
    }

    /// A corpus entry with bytes flipped or inserted, often not UTF-8 (lone continuation bytes,
    /// overlong encodings, surrogates, 0xFF).
    func byteMutation(_ rng: inout Xoshiro256PlusPlus) -> Data {
        var bytes = Array(Self.pick(Self.corpus, &rng).utf8)
        let bad: [[UInt8]] = [[0x80], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xFF], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82], [0x00]]
        for _ in 0..<(1 + Int(rng.next() % 3)) {
            let at = Int(rng.next() % UInt64(bytes.count + 1))
            if rng.next() % 2 == 0 {
                bytes.insert(contentsOf: Self.pick(bad, &rng), at: at)
            } else if at < bytes.count {
                bytes[at] = UInt8(truncatingIfNeeded: rng.next())
            }
        }
        return Data(bytes)
    }

    /// A valid spec whose student activation or teacher target is a random expression.
    func specWithExpression(_ rng: inout Xoshiro256PlusPlus) -> String {
        let e = expression(&rng).replacingOccurrences(of: "\"", with: "")
        if rng.next() % 2 == 0 {
            return "teacher: {k: 2}\nstudent: {p: 2, activation: \"\(e)\"}\ntraining: {learningRate: 0.5, time: 1}\n"
        }
        return "teacher: {k: 3, target: \"\(e)\"}\nstudent: {p: 2}\ntraining: {learningRate: 0.5, time: 1}\n"
    }

    /// A random expression: a random tree (functions, Hermite degrees up to 99999, extreme numbers),
    /// a deep nesting, or a random string of the language's characters.
    func expression(_ rng: inout Xoshiro256PlusPlus) -> String {
        switch rng.next() % 10 {
        case 0:
            let depth = [10, 255, 256, 257, 1000, 100_000][Int(rng.next() % 6)]
            switch rng.next() % 6 {
            case 0: return String(repeating: "(", count: depth) + "x" + String(repeating: ")", count: depth)
            case 1: return String(repeating: "-", count: depth) + "x"
            case 2: return Array(repeating: "x", count: depth).joined(separator: "^")
            case 3: return String(repeating: "sin(", count: depth) + "x" + String(repeating: ")", count: depth)
            // A 256-factor product is accepted and costs about 2 s (its symbolic derivative has
            // O(n²) nodes): measured once and reported; the run keeps products that are refused or short.
            case 4: return Array(repeating: "x", count: depth > 256 ? depth : min(depth, 32)).joined(separator: "*")
            default: return String(repeating: "He99(", count: min(depth, 4)) + "x" + String(repeating: ")", count: min(depth, 4))
            }
        case 1:
            let alphabet = Array("xz1234567890.eE+-*/^(),  abcdefghijklmnopqrstuvwxyzH_\u{2212}πé\t")
            return String((0..<Int(rng.next() % 40)).map { _ in Self.pick(alphabet, &rng) })
        default:
            return tree(&rng, depth: 0)
        }
    }

    func tree(_ rng: inout Xoshiro256PlusPlus, depth: Int) -> String {
        if depth > 5 || rng.next() % 4 == 0 {
            switch rng.next() % 5 {
            case 0: return Self.pick(Self.extremeNumbers, &rng)
            case 1: return Self.pick(["x", "z", "z1", "z2", "z3", "z4", "z5", "z0", "z01", "pi", "e", "y"], &rng)
            case 2: return "\(Double(bitPattern: rng.next() & 0x7FEF_FFFF_FFFF_FFFF))"
            default: return "\(Int(rng.next() % 1000))"
            }
        }
        switch rng.next() % 8 {
        case 0, 1: return tree(&rng, depth: depth + 1) + Self.pick([" + ", " - ", "*", "/", "^", " ^ -"], &rng) + tree(&rng, depth: depth + 1)
        case 2: return "-" + tree(&rng, depth: depth + 1)
        case 3: return "(" + tree(&rng, depth: depth + 1) + ")"
        case 4: return "He\(Self.pick([0, 1, 2, 5, 50, 99, 100, 99999], &rng))(" + tree(&rng, depth: depth + 1) + ")"
        case 5: return Self.pick(["min", "max", "pow"], &rng) + "(" + tree(&rng, depth: depth + 1) + ", " + tree(&rng, depth: depth + 1) + ")"
        default: return Self.pick(Self.functions, &rng) + "(" + tree(&rng, depth: depth + 1) + ")"
        }
    }

    // MARK: Checks

    /// Feeds `input` to the front door and checks what comes back.
    public static func check(_ input: Input) -> Outcome {
        let start = DispatchTime.now().uptimeNanoseconds
        var outcome: Outcome
        switch input {
        case let .spec(data): outcome = checkSpec(data)
        case let .expression(text, variables): outcome = checkExpression(text, variables)
        }
        outcome.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
        return outcome
    }

    static func ok(_ accepted: Bool) -> Outcome { Outcome(ok: true, accepted: accepted, failure: "", seconds: 0) }
    static func failed(_ why: String) -> Outcome { Outcome(ok: false, accepted: false, failure: why, seconds: 0) }

    /// Every problem names a field and a value and gives a reason, and the message shows them.
    static func wellFormed(_ error: SpecError) -> String? {
        for problem in error.all {
            if problem.field.isEmpty || problem.value.isEmpty || problem.reason.isEmpty {
                return "refusal without field, value or reason: \(problem.line.debugDescription)"
            }
            if !error.description.contains(problem.field) { return "message lacks the field \(problem.field)" }
        }
        return nil
    }

    static func checkSpec(_ data: Data) -> Outcome {
        // The protocol decides the reader, as in the CLI.
        let isAMP: Bool = {
            guard let text = String(validating: data, as: UTF8.self) else { return false }
            return (try? EstimationProblem.declaredProtocol(specText: text)) == .amp
        }()
        do {
            if isAMP {
                let problem = try EstimationProblem(specData: data)
                let again = try EstimationProblem(specText: problem.specJSON)
                guard again == problem else { return failed("accepted amp spec does not read back from its JSON: \(problem.specJSON)") }
            } else {
                let experiment = try Experiment(specData: data)
                let again = try Experiment(specText: experiment.specJSON)
                guard again == experiment else { return failed("accepted spec does not read back from its JSON: \(experiment.specJSON)") }
            }
            return ok(true)
        } catch let error as SpecError {
            if let why = wellFormed(error) { return failed(why) }
            return ok(false)
        } catch {
            return failed("refused with \(type(of: error)), not a SpecError: \(error)")
        }
    }

    static func checkExpression(_ text: String, _ variables: VariableSet?) -> Outcome {
        do {
            let formula: Formula
            if let variables {
                formula = try Formula(parsing: text, variables: variables)
            } else {
                let activation = try Activation.parse(text)
                for x in [-3.0, -0.5, 0, 0.7, 2] {
                    _ = activation.value(x)
                    _ = activation.valueAndDerivative(x)
                }
                _ = activation.isPolynomial
                guard case let .expression(e) = activation else { return ok(true) }
                formula = e.formula
            }
            let again = try Formula(parsing: formula.description, variables: formula.variables)
            guard again == formula else { return failed("\(text.debugDescription) prints as \(formula.description.debugDescription), which reads back differently") }
            let point = [Double](repeating: 0.3, count: formula.variables.count)
            _ = point.withUnsafeBufferPointer { formula.value($0) }
            _ = formula.isPolynomial
            _ = formula.polynomialCoefficients()
            return ok(true)
        } catch let error as ExpressionError {
            guard error.column >= 1, error.column <= text.count + 1, !error.message.isEmpty else {
                return failed("expression error outside the text: column \(error.column) of \(text.count) characters: \(error.message)")
            }
            return ok(false)
        } catch let error as SpecError {
            return wellFormed(error).map(failed) ?? ok(false)
        } catch {
            return failed("refused with \(type(of: error)): \(error)")
        }
    }
}
