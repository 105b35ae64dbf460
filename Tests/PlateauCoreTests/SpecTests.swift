import Foundation
import Testing
@testable import PlateauCore

@Suite("Specification: reading, defaults, round trip")
struct SpecReadingTests {
    static let full = """
    teacher:
      k: 2
      activation: erf
      weights: [1, 0.5]
      P: [[1, 0.2], [0.2, 1]]
      noise: 0.01
    student:
      p: 3
      activation: relu
      secondLayer: 0.5
      trainSecondLayer: true
      secondLayerLearningRate: 0.1
    training:
      protocol: online
      loss: correlation
      learningRate: 0.25
      batchSize: 4
      weightDecay: 0.01
      time: 50
    init:
      M: [[1e-9, 0], [0, 1e-9], [0, 0]]
      Q: identity
    output:
      times: [0, 1, 10, 50]
    """

    @Test("every field of a full YAML spec is read")
    func fullSpec() throws {
        let e = try Experiment(specText: Self.full)
        #expect(e.teacher.k == 2 && e.teacher.activation == .erf && e.teacher.weights == [1, 0.5])
        #expect(e.teacher.covariance == Matrix([[1, 0.2], [0.2, 1]]) && e.teacher.noiseVariance == 0.01)
        #expect(e.student.p == 3 && e.student.activation == .relu && e.student.secondLayer == [0.5, 0.5, 0.5])
        #expect(e.student.trainSecondLayer && e.student.secondLayerLearningRate == 0.1)
        #expect(e.training.loss == .correlation && e.training.learningRate == 0.25 && e.training.batchSize == 4)
        #expect(e.training.weightDecay == 0.01 && e.training.time == 50)
        guard case let .overlaps(M, Q) = e.initialization else { Issue.record("init"); return }
        #expect(M[0, 0] == 1e-9 && M.rows == 3 && Q == .identity(3))
        #expect(e.recordTimes == [0, 1, 10, 50])
    }

    @Test("defaults: minimal spec")
    func defaults() throws {
        let e = try Experiment(specText: "teacher: {k: 1}\nstudent: {p: 2}\ntraining: {learningRate: 1, time: 5}")
        #expect(e.teacher.activation == .erf && e.teacher.weights == [1] && e.teacher.covariance == .identity(1))
        #expect(e.student.secondLayer == [1, 1] && !e.student.trainSecondLayer && e.student.secondLayerLearningRate == 1)
        #expect(e.training.loss == .square && e.training.batchSize == 1 && e.training.weightDecay == 0)
        #expect(e.initialization == .random(scale: 1))
        let ts = e.recordTimes
        #expect(ts.first == 0 && ts.last == 5 && ts.count == 61)
    }

    @Test("JSON reads the same as YAML, and specJSON round-trips")
    func roundTrip() throws {
        let e = try Experiment(specText: Self.full)
        let again = try Experiment(specText: e.specJSON)
        #expect(again == e)
        let d = try Experiment(specText: Experiment.saadSolla.specJSON)
        #expect(d == Experiment.saadSolla)
        let sample = try Experiment(specText: Experiment.sampleYAML)
        #expect(sample.teacher.k == 2 && sample.training.learningRate == 0.5)
    }
}

@Suite("Specification: bad input names the field and the value")
struct SpecErrorTests {
    static func error(_ text: String) -> SpecError? {
        do { _ = try Experiment(specText: text); return nil } catch let e as SpecError { return e } catch { return nil }
    }

    static let base = "teacher: {k: 2}\nstudent: {p: 2}\ntraining: {learningRate: 0.5, time: 10}\n"

    @Test("field and value are named", arguments: [
        ("teacher: {k: 2}\nstudent: {p: 2}\ntraining: {learningRate: -1, time: 10}", "training.learningRate", "-1"),
        ("teacher: {k: 2}\nstudent: {p: 2}\ntraining: {learningRate: 0, time: 10}", "training.learningRate", "0"),
        ("teacher: {k: 2}\nstudent: {p: 2}\ntraining: {learningRate: .inf, time: 10}", "training.learningRate", "inf"),
        ("teacher: {k: 2}\nstudent: {p: 2}\ntraining: {learningRate: 0.5, batchSize: 0, time: 10}", "training.batchSize", "0"),
        ("teacher: {k: 2}\nstudent: {p: 2}\ntraining: {learningRate: 0.5, batchSize: 2.5, time: 10}", "training.batchSize", "2.5"),
        ("teacher: {k: 2}\nstudent: {p: 2}\ntraining: {learningRate: 0.5, time: -3}", "training.time", "-3"),
        ("teacher: {k: 2, noise: -0.1}\nstudent: {p: 2}\ntraining: {learningRate: 0.5, time: 10}", "teacher.noise", "-0.1"),
        ("teacher: {k: 2, activation: swish}\nstudent: {p: 2}\ntraining: {learningRate: 0.5, time: 10}", "teacher.activation", "swish"),
        ("teacher: {k: 2, P: [[1, 2], [2, 1]]}\nstudent: {p: 2}\ntraining: {learningRate: 0.5, time: 10}", "teacher.P", "[[1.0, 2.0], [2.0, 1.0]]"),
        ("teacher: {k: 2, P: [[1, 0.1], [0.2, 1]]}\nstudent: {p: 2}\ntraining: {learningRate: 0.5, time: 10}", "teacher.P", "symmetric"),
        ("teacher: {k: 2, P: [[1, 0], [0, 1], [0, 0]]}\nstudent: {p: 2}\ntraining: {learningRate: 0.5, time: 10}", "teacher.P", "2 rows"),
        ("teacher: {k: 2, weights: [1, 2, 3]}\nstudent: {p: 2}\ntraining: {learningRate: 0.5, time: 10}", "teacher.weights", "2 entries"),
        ("teacher: {k: 2}\nstudent: {p: 2, secondLayer: [1, .nan]}\ntraining: {learningRate: 0.5, time: 10}", "student.secondLayer[1]", "nan"),
        ("teacher: {k: 2}\nstudent: {p: 2}\ntraining: {learningRate: 0.5, time: 10, loss: hinge}", "training.loss", "hinge"),
        ("teacher: {k: 2}\nstudent: {p: 2}\ntraining: {learningRate: 0.5, time: 10, protocol: offline}", "training.protocol", "offline"),
        ("teacher: {k: 2}\nstudent: {p: 2}\ntraining: {learningRate: 0.5, time: 10, protocol: amp}", "training.protocol", "amp"),
        ("teacher: {k: 2, colour: 3}\nstudent: {p: 2}\ntraining: {learningRate: 0.5, time: 10}", "teacher.colour", "unknown key"),
        ("teacher: {k: 2}\nstudent: {p: 2}\ntraining: {learningRate: 0.5, time: 10}\nextra: 1", "extra", "unknown key"),
        ("teacher: {k: 0}\nstudent: {p: 2}\ntraining: {learningRate: 0.5, time: 10}", "teacher.k", "0"),
        ("teacher: {k: 2}\nstudent: {p: 2}\ntraining: {learningRate: 0.5, time: 10}\ninit: {M: [[0, 0], [0, 0]], Q: [[1, 0], [0, -1]]}", "init.Q", "positive semi-definite"),
        ("teacher: {k: 2}\nstudent: {p: 2}\ntraining: {learningRate: 0.5, time: 10}\ninit: {M: [[2, 0], [0, 0]], Q: identity}", "init", "[[Q, M], [Mᵀ, P]]"),
        ("teacher: {k: 2}\nstudent: {p: 2}\ntraining: {learningRate: 0.5, time: 10}\ninit: {M: [[0, 0]], Q: identity}", "init.M", "2 rows"),
        ("teacher: {k: 2}\nstudent: {p: 2}\ntraining: {learningRate: 0.5, time: 10}\ninit: {random: {scale: -1}}", "init.random.scale", "-1"),
        ("teacher: {k: 2}\nstudent: {p: 2}\ntraining: {learningRate: 0.5, time: 10}\noutput: {times: [0, 20]}", "output.times[1]", "20"),
        ("teacher: {k: 2}\nstudent: {p: 2}\ntraining: {time: 10}", "training.learningRate", "missing"),
        ("- just a list", "(file)", "mapping"),
        ("teacher: {k: 2\n", "(file)", "YAML"),
    ])
    func named(text: String, field: String, fragment: String) {
        guard let e = Self.error(text) else { Issue.record("accepted: \(text)"); return }
        #expect(e.field == field, "field \(e.field) for \(text)")
        #expect(e.description.contains(fragment), "\(e.description)")
    }
}

@Suite("Matrix")
struct MatrixTests {
    @Test("PSD Cholesky: full rank, deficient rank, indefinite")
    func cholesky() {
        let a = Matrix([[4, 2], [2, 3]])
        let L = a.choleskyPSD()!
        #expect(((L * L.transposed) - a).values.allSatisfy { abs($0) < 1e-14 })
        let rankOne = Matrix([[1, 1], [1, 1]])
        let L1 = rankOne.choleskyPSD()!
        #expect(((L1 * L1.transposed) - rankOne).values.allSatisfy { abs($0) < 1e-14 })
        #expect(Matrix([[1, 2], [2, 1]]).choleskyPSD() == nil)
        #expect(Matrix([[0, 1], [1, 0]]).choleskyPSD() == nil)
        #expect(Matrix([[1, .nan], [.nan, 1]]).choleskyPSD() == nil)
        let inv = a.inverseSPD()!
        #expect(((a * inv) - .identity(2)).values.allSatisfy { abs($0) < 1e-14 })
        #expect(rankOne.inverseSPD() == nil)
    }

    @Test("time grids and the online time axis")
    func times() {
        #expect(TimeGrid.linear(count: 4).times(horizon: 2) == [0, 0.5, 1, 1.5, 2])
        let log = TimeGrid.log(count: 3, start: 0.1).times(horizon: 10)
        #expect(log.count == 4 && log[0] == 0 && abs(log[1] - 0.1) < 1e-15 && abs(log[2] - 1) < 1e-12 && log[3] == 10)
        #expect(OnlineTime.realisedTimes([0, 0.0004, 0.0011, 1], dimension: 1000) == [0, 0.001, 1])
        #expect(OnlineTime.samples(at: 2, dimension: 100, batchSize: 5) == 1000)
    }
}
