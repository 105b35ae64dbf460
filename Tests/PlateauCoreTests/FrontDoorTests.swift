import Foundation
import PlateauCore
import PlateauFuzzing
import Testing

@Suite("Front door: every problem of a spec at once, and a fuzzed reader")
struct FrontDoorTests {
    static func problems(_ text: String, amp: Bool = false) -> [SpecError] {
        do {
            if amp { _ = try EstimationProblem(specText: text) } else { _ = try Experiment(specText: text) }
            return []
        } catch let e as SpecError { return e.all } catch { return [] }
    }

    @Test("online: five independent problems are all reported, by section, each with field and value")
    func online() {
        let text = """
        teacher: {k: 2, noise: -1, colour: red}
        student: {p: 2, secondLayer: [1, .nan]}
        training: {learningRate: 0, time: 10, batchSize: 2.5}
        """
        let fields = Self.problems(text).map(\.field)
        #expect(fields == ["teacher.colour", "teacher.noise", "student.secondLayer[1]", "training.batchSize", "training.learningRate"], "\(fields)")
        #expect(Self.problems(text).first?.value == "\"red\"")
    }

    @Test("multipass and amp: all problems at once; a field that failed to read is reported once")
    func otherProtocols() {
        let multipass = """
        teacher: {k: 2}
        student: {p: 2, trainSecondLayer: true}
        training: {protocol: multipass, learningRate: 0.2, alpha: -3, steps: 0, ridge: -1, batchFraction: 2}
        """
        #expect(Set(Self.problems(multipass).map(\.field)) == ["training.alpha", "training.steps", "training.ridge", "training.batchFraction", "student.trainSecondLayer"])
        let amp = """
        teacher: {k: 2, target: "sign(z1*z2)", noise: nan}
        training: {protocol: amp, alpha: 0}
        amp: {damping: 1, iterations: 0, epsilon: 2}
        """
        #expect(Set(Self.problems(amp, amp: true).map(\.field)) == ["teacher.noise", "training.alpha", "amp.damping", "amp.iterations", "amp.epsilon"])
        // "k: two" fails to read; the shapes are checked against the data's own length (2), so no cascade.
        let once = Self.problems("teacher: {k: two, weights: [1, 1]}\nstudent: {p: 2}\ntraining: {learningRate: -1, time: 1}\n")
        #expect(once.map(\.field) == ["teacher.k", "training.learningRate"], "\(once.map(\.line))")
    }

    @Test("bytes that are not UTF-8, deep nesting, aliases and list keys are refused naming (file)")
    func structure() {
        func error(_ data: Data) -> SpecError? {
            do { _ = try Experiment(specData: data); return nil } catch let e as SpecError { return e } catch { return nil }
        }
        #expect(error(Data([0x74, 0x65, 0xFF, 0x3A]))?.value == "byte 2")
        #expect(error(Data(("teacher: " + String(repeating: "[", count: 100_000)).utf8))?.reason.contains("nested deeper") == true)
        #expect(error(Data("a: &x [1, 2]\nb: *x\n".utf8))?.reason.contains("alias") == true)
        #expect(error(Data("{[1]: 2}".utf8))?.reason.contains("keys") == true)
        #expect((try? Activation.parse("He99999")) == nil)
        #expect((try? Activation.parse("(x)")) == .linear)
        // A huge power is read as a general expression, not expanded.
        #expect((try? Formula(parsing: "x^2147483647", variables: .activation))?.isPolynomial == false)
        #expect((try? Formula(parsing: "He99(x)^2", variables: .activation))?.isPolynomial == true)
    }

    /// 10⁴ inputs of the fuzzer (seed 20261203): no crash, every refusal well formed, accepted specs
    /// and expressions read back from their own printing. The 10⁶-input run is `plateau-fuzz` (README).
    @Test("10⁴ fuzzed inputs: zero failures, none slower than 5 s")
    func fuzz() {
        let fuzzer = FrontDoorFuzzer(seed: 20_261_203)
        var failures: [String] = []
        var slowest = 0.0
        for i in 0..<10_000 {
            let input = fuzzer.input(i)
            let outcome = FrontDoorFuzzer.check(input)
            slowest = max(slowest, outcome.seconds)
            if !outcome.ok || outcome.seconds > 5 { failures.append("input \(i): \(outcome.failure) \(outcome.seconds) s — \(input.shown)") }
        }
        #expect(failures.isEmpty, "\(failures.prefix(5).joined(separator: "\n"))")
    }
}
