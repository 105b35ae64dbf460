import Foundation
import Testing
@testable import PlateauCore

@Suite("Specification: the multipass protocol")
struct MultipassSpecTests {
    static let base = "teacher: {k: 2}\nstudent: {p: 2, activation: relu}\n"

    @Test("every multipass field is read, and the spec round-trips")
    func reads() throws {
        let e = try Experiment(specText: Self.base + """
        training: {protocol: multipass, loss: correlation, learningRate: 0.2, alpha: 3, steps: 6, ridge: 0.1,
                   particles: 5000, batchFraction: 0.5, samples: fresh}
        init: orthogonal
        """)
        let m = try #require(e.multipass)
        #expect(m == MultipassSettings(alpha: 3, steps: 6, ridge: 0.1, particles: 5000, batchFraction: 0.5, freshSamples: true))
        #expect(e.training.loss == .correlation && e.training.learningRate == 0.2 && e.training.time == 6)
        #expect(e.initialization == .orthogonal(Q: .identity(2)))
        #expect(e.recordTimes == [0, 1, 2, 3, 4, 5, 6])
        #expect(try Experiment(specText: e.specJSON) == e)
        let sample = try Experiment(specText: MultipassSettings.sampleYAML)
        #expect(sample.multipass?.alpha == 3 && sample.student.activation == .relu && sample.multipass!.isFullBatchReuse)
    }

    @Test("bad multipass values name the field and the value", arguments: [
        ("training: {protocol: multipass, learningRate: 0.2, alpha: -1, steps: 6}", "training.alpha", "-1"),
        ("training: {protocol: multipass, learningRate: 0.2, alpha: 3, steps: 0}", "training.steps", "0"),
        ("training: {protocol: multipass, learningRate: 0.2, alpha: 3, steps: 2.5}", "training.steps", "2.5"),
        ("training: {protocol: multipass, learningRate: 0.2, alpha: 3, steps: 6, ridge: -0.1}", "training.ridge", "-0.1"),
        ("training: {protocol: multipass, learningRate: 0.2, alpha: 3, steps: 6, particles: 1}", "training.particles", "1"),
        ("training: {protocol: multipass, learningRate: 0.2, alpha: 3, steps: 6, batchFraction: 0}", "training.batchFraction", "0"),
        ("training: {protocol: multipass, learningRate: 0.2, alpha: 3, steps: 6, samples: sometimes}", "training.samples", "sometimes"),
        ("training: {protocol: multipass, learningRate: 0.2, alpha: 3, steps: 6, time: 10}", "training.time", "unknown key"),
        ("training: {protocol: multipass, learningRate: 0.2, steps: 6}", "training.alpha", "missing"),
        ("training: {protocol: multipass, learningRate: -0.2, alpha: 3, steps: 6}", "training.learningRate", "-0.2"),
        ("training: {protocol: multipass, learningRate: 0.2, alpha: 3, steps: 6}\noutput: {times: [0, 1]}", "output", "every step"),
    ])
    func refused(text: String, field: String, fragment: String) {
        do {
            _ = try Experiment(specText: Self.base + text)
            Issue.record("accepted: \(text)")
        } catch let e as SpecError {
            #expect(e.field == field, "field \(e.field) for \(text)")
            #expect(e.description.contains(fragment), "\(e.description)")
        } catch { Issue.record("\(error)") }
    }

    @Test("a trained second layer is refused for multipass")
    func secondLayer() {
        #expect(throws: SpecError.self) {
            try Experiment(specText: "teacher: {k: 1}\nstudent: {p: 1, trainSecondLayer: true}\ntraining: {protocol: multipass, learningRate: 0.2, alpha: 3, steps: 6}")
        }
    }
}
