import Foundation
import Testing
@testable import PlateauCore

/// Activations and targets in the specification: parsing, presets, round trip, errors naming the
/// field and the value, and the shared definitions the theory and the simulator read.
@Suite("Specification: activations and targets")
struct TargetSpecTests {
    static func spec(teacher: String, student: String = "activation: erf") -> String {
        """
        teacher:
          k: 2
          \(teacher)
        student:
          p: 2
          \(student)
        training:
          learningRate: 0.5
          time: 10
        """
    }

    @Test("activations: names, Heₙ, expressions; value and derivative agree with the definitions")
    func activations() throws {
        #expect(try Activation.parse("tanh") == .tanh)
        #expect(try Activation.parse("He3") == .hermite(3))
        #expect(try Activation.parse("RELU") == .relu)
        let poly = try Activation.parse("x^3 - 3*x")
        #expect(poly.polynomialCoefficients == [0, -3, 0, 1])
        #expect(Activation.hermite(3).polynomialCoefficients == [0, -3, 0, 1])
        #expect(Activation.hermite(4).polynomialCoefficients == [3, 0, -6, 0, 1])
        for x in [-2.3, -0.4, 0.0, 0.7, 1.9] {
            #expect(abs(poly.value(x) - Activation.hermite(3).value(x)) < 1e-12)
            #expect(abs(poly.derivative(x) - Activation.hermite(3).derivative(x)) < 1e-12)
            #expect(abs(Activation.tanh.derivative(x) - (1 - tanh(x) * tanh(x))) < 1e-15)
            let (v, dv) = Activation.hermite(5).valueAndDerivative(x)
            #expect(abs(v - Activation.hermite(5).value(x)) < 1e-12 && abs(dv - 5 * Activation.hermite(4).value(x)) < 1e-12)
            let sig = try Activation.parse("sigmoid(2*x)")
            let s = 1 / (1 + exp(-2 * x))
            #expect(abs(sig.value(x) - s) < 1e-14 && abs(sig.derivative(x) - 2 * s * (1 - s)) < 1e-14)
        }
        // Round trip through the name.
        for a in [Activation.erf, .linear, .relu, .tanh, .hermite(7), poly] {
            #expect(try Activation.parse(a.name) == a, "\(a.name)")
        }
        let kinked = try Activation.parse("abs(x)")
        #expect(Activation.tanh.isSmooth && !Activation.relu.isSmooth && !kinked.isSmooth)
        #expect(try Activation.parse("x") == .linear)
    }

    @Test("teacher target and preset: parsed over z1…zk, evaluated by the shared definition")
    func targets() throws {
        let e = try Experiment(specText: Self.spec(teacher: "target: \"z1 + z1*z2\""))
        #expect(!e.teacher.isCommittee && e.teacher.isPolynomial && e.teacher.isSmooth)
        let nu = [0.7, -1.3]
        #expect(nu.withUnsafeBufferPointer { e.teacher.output($0.baseAddress!) } == 0.7 + 0.7 * -1.3)
        let p = try Experiment(specText: Self.spec(teacher: "preset: parity"))
        #expect(p.teacher.link == PlateauCore.Formula.preset("parity", k: 2) && !p.teacher.isSmooth)
        // A committee written as one expression equals the committee.
        let c = try Experiment(specText: Self.spec(teacher: "activation: tanh\n  weights: [1, -0.5]"))
        let f = c.teacher.targetFormula
        for z in [[0.3, 2.0], [-1.1, 0.4]] {
            let direct = z.withUnsafeBufferPointer { c.teacher.output($0.baseAddress!) }
            #expect(abs(f.value(z) - direct) < 1e-15 && abs(direct - (tanh(z[0]) - 0.5 * tanh(z[1]))) < 1e-15)
        }
        // Round trip: the written spec reads back to the same experiment.
        #expect(try Experiment(specText: e.specJSON) == e)
        #expect(try Experiment(specText: p.specJSON) == p)
    }

    @Test("bad targets and activations name the field and the value")
    func errors() {
        func message(_ text: String) -> String {
            do { _ = try Experiment(specText: text); return "" } catch { return "\(error)" }
        }
        let column = message(Self.spec(teacher: "target: \"z1 + * z2\""))
        #expect(column.contains("teacher.target") && column.contains("column"))
        let index = message(Self.spec(teacher: "target: \"z1 + z3\""))
        #expect(index.contains("teacher.target") && index.contains("z3"))
        #expect(message(Self.spec(teacher: "preset: ladder")).contains("unknown preset"))
        #expect(message(Self.spec(teacher: "target: \"z1\"\n  preset: parity")).contains("not both"))
        #expect(message(Self.spec(teacher: "target: \"z1\"\n  activation: relu")).contains("teacher.activation"))
        let act = message(Self.spec(teacher: "activation: erf", student: "activation: \"softsign(x)\""))
        #expect(act.contains("student.activation") && act.contains("softsign"))
    }
}
