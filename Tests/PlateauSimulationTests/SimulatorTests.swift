import Foundation
import PlateauCore
import Testing
@testable import PlateauSimulation

/// Maximum absolute entry-wise difference of two matrices of equal shape.
func maxDifference(_ a: Matrix, _ b: Matrix) -> Double {
    precondition(a.rows == b.rows && a.cols == b.cols)
    return zip(a.values, b.values).map { abs($0 - $1) }.max() ?? 0
}

func experiment(p: Int, k: Int, P: Matrix? = nil, student: Activation = .erf, teacher: Activation = .erf,
                a: [Double]? = nil, teacherWeights: [Double]? = nil, noise: Double = 0, loss: Loss = .square,
                eta: Double = 0.5, batch: Int = 1, decay: Double = 0, trainA: Bool = false, etaA: Double = 0,
                horizon: Double = 1, initialization: InitialCondition = .random(scale: 1)) -> Experiment {
    Experiment(
        teacher: TeacherSpec(k: k, activation: teacher, weights: teacherWeights, covariance: P, noiseVariance: noise),
        student: StudentSpec(p: p, activation: student, secondLayer: a, trainSecondLayer: trainA, secondLayerLearningRate: etaA),
        training: TrainingSpec(loss: loss, learningRate: eta, batchSize: batch, weightDecay: decay, time: horizon),
        initialization: initialization)
}

@Suite struct InitialConditionTests {
    static let P = Matrix([[1.0, 0.3, -0.2], [0.3, 2.0, 0.4], [-0.2, 0.4, 1.5]])
    static let M = Matrix([[0.2, 0.1, 0.0], [0.0, 0.5, -0.3]])
    static let Q = Matrix([[1.0, 0.2], [0.2, 0.8]])

    @Test(arguments: [7, 50, 333])
    func prescribedOverlapsAreExact(d: Int) throws {
        let e = experiment(p: 2, k: 3, P: Self.P, initialization: .overlaps(M: Self.M, Q: Self.Q))
        try e.validate()
        let o = try OnlineSGDNetwork(e, dimension: d, seed: 5).overlaps()
        #expect(maxDifference(o.P, Self.P) < 1e-10, "P = \(o.P)")
        #expect(maxDifference(o.M, Self.M) < 1e-10, "M = \(o.M)")
        #expect(maxDifference(o.Q, Self.Q) < 1e-10, "Q = \(o.Q)")
    }

    @Test func prescribedOverlapsWithMoreStudentsThanTeachers() throws {
        let P = Matrix([[1.5, -0.4], [-0.4, 0.7]])
        let M = Matrix([[0.3, 0.1], [-0.2, 0.25], [0.0, 0.05]])
        let Q = Matrix([[1.0, 0.1, 0.0], [0.1, 0.6, 0.2], [0.0, 0.2, 2.0]])
        let e = experiment(p: 3, k: 2, P: P, initialization: .overlaps(M: M, Q: Q))
        try e.validate()
        let o = try OnlineSGDNetwork(e, dimension: 40, seed: 11).overlaps()
        #expect(maxDifference(o.P, P) < 1e-10 && maxDifference(o.M, M) < 1e-10 && maxDifference(o.Q, Q) < 1e-10)
    }

    @Test func studentInsideTheTeacherSpan() throws {
        // Q = M P⁻¹ Mᵀ: the Schur complement vanishes (rounding may make it slightly negative).
        let P = Matrix([[1.0, 0.5], [0.5, 1.0]])
        let M = Matrix([[1.0, 0.5], [0.5, 1.0]])   // W = W*
        let e = experiment(p: 2, k: 2, P: P, initialization: .overlaps(M: M, Q: P))
        let o = try OnlineSGDNetwork(e, dimension: 30, seed: 3).overlaps()
        #expect(maxDifference(o.M, M) < 1e-10 && maxDifference(o.Q, P) < 1e-10)
    }

    @Test func orthogonalStart() throws {
        let P = Matrix([[2.0, 0.6], [0.6, 1.0]])
        let Q = Matrix([[0.5, 0.1, 0.0], [0.1, 1.0, -0.3], [0.0, -0.3, 0.9]])
        let e = experiment(p: 3, k: 2, P: P, initialization: .orthogonal(Q: Q))
        let o = try OnlineSGDNetwork(e, dimension: 25, seed: 8).overlaps()
        #expect(maxDifference(o.P, P) < 1e-10)
        #expect(maxDifference(o.M, Matrix(rows: 3, cols: 2)) < 1e-10)
        #expect(maxDifference(o.Q, Q) < 1e-10)
    }

    @Test func randomStartHasTheRequestedScale() throws {
        let d = 4000, scale = 0.5
        let o = try OnlineSGDNetwork(experiment(p: 2, k: 2, initialization: .random(scale: scale)), dimension: d, seed: 1).overlaps()
        // Q_jj = scale² χ²_d/d: standard error scale² √(2/d); M_jr ~ N(0, scale²/d).
        for j in 0..<2 {
            #expect(abs(o.Q[j, j] - scale * scale) < 5 * scale * scale * (2.0 / Double(d)).squareRoot())
            for r in 0..<2 { #expect(abs(o.M[j, r]) < 5 * scale / Double(d).squareRoot()) }
        }
        #expect(maxDifference(o.P, .identity(2)) < 1e-10)
    }
}

@Suite struct OneStepTests {
    /// A direct re-implementation of one SGD step (EQUATIONS.md §1, with weight decay), in plain loops.
    static func naiveStep(W: [[Double]], Wstar: [[Double]], a: [Double], inputs: [[Double]], noise: [Double],
                          e: Experiment) -> (W: [[Double]], a: [Double]) {
        let d = Double(W[0].count), nb = Double(inputs.count)
        let eta = e.training.learningRate, kappa = e.training.weightDecay, etaA = e.student.secondLayerLearningRate
        let sigma = e.student.activation, sigmaStar = e.teacher.activation
        var newW = W.map { row in row.map { (1 - eta * kappa / d) * $0 } }
        var newA = a
        for (mu, x) in inputs.enumerated() {
            let lambda = W.map { w in zip(w, x).map { $0 * $1 }.reduce(0, +) / d.squareRoot() }
            let nu = Wstar.map { w in zip(w, x).map { $0 * $1 }.reduce(0, +) / d.squareRoot() }
            var y = e.teacher.noiseVariance.squareRoot() * noise[mu]
            for r in nu.indices { y += e.teacher.weights[r] * sigmaStar.value(nu[r]) }
            var f = 0.0
            for j in lambda.indices { f += a[j] * sigma.value(lambda[j]) }
            let D = e.training.loss == .square ? y - f : y
            for j in W.indices {
                for i in x.indices {
                    newW[j][i] += (eta / nb) * a[j] * sigma.derivative(lambda[j]) * D * x[i] / d.squareRoot()
                }
                if e.student.trainSecondLayer { newA[j] += etaA / (nb * d) * sigma.value(lambda[j]) * D }
            }
        }
        return (newW, newA)
    }

    @Test(arguments: [(Loss.square, 3), (Loss.correlation, 3), (Loss.square, 1), (Loss.correlation, 1)])
    func stepMatchesHandComputation(loss: Loss, batch: Int) throws {
        let d = 7, p = 2, k = 3
        let e = experiment(p: p, k: k, P: InitialConditionTests.P, student: .erf, teacher: .relu, a: [0.8, -0.6],
                           teacherWeights: [1.0, -0.5, 0.7], noise: 0.09, loss: loss, eta: 0.7, batch: batch,
                           decay: 0.3, trainA: true, etaA: 0.4, initialization: .random(scale: 1.2))
        try e.validate()
        let net = try OnlineSGDNetwork(e, dimension: d, seed: 2024)
        for _ in 0..<3 {
            let before = net.student
            let W = (0..<p).map { Array(before.weights[($0 * d)..<(($0 + 1) * d)]) }
            let teacher = net.teacher
            let Wstar = (0..<k).map { Array(teacher[($0 * d)..<(($0 + 1) * d)]) }
            #expect(net.step())
            let raw = Array(UnsafeBufferPointer(start: net.batch, count: batch * d + batch))
            let inputs = (0..<batch).map { Array(raw[($0 * d)..<(($0 + 1) * d)]) }
            let noise = Array(raw[(batch * d)...])
            let expected = Self.naiveStep(W: W, Wstar: Wstar, a: before.secondLayer, inputs: inputs, noise: noise, e: e)
            let after = net.student
            for j in 0..<p {
                for i in 0..<d { #expect(abs(after.weights[j * d + i] - expected.W[j][i]) < 1e-13 * max(1, abs(expected.W[j][i]))) }
                #expect(abs(after.secondLayer[j] - expected.a[j]) < 1e-14)
                #expect(after.secondLayer[j] != before.secondLayer[j])
            }
            #expect(net.teacher == teacher)
        }
    }
}

@Suite struct DriftTests {
    /// Ψ_jr = E[σ'(λ_j) ν_r D] for (λ, ν) ~ N(0, Ω) by plain Monte Carlo (Box–Muller normals, so the
    /// check shares nothing with the simulator's sampler), with its standard error.
    static func psiMonteCarlo(_ o: Overlaps, e: Experiment, samples: Int, seed: UInt64) -> (mean: Matrix, se: Matrix) {
        let p = o.p, k = o.k
        let L = o.jointCovariance.choleskyPSD()!
        var rng = Xoshiro256PlusPlus(seed: seed)
        var sum = Matrix(rows: p, cols: k), sum2 = Matrix(rows: p, cols: k)
        var z = [Double](repeating: 0, count: p + k + 1)
        for _ in 0..<samples {
            var i = 0
            while i < z.count {
                let u1 = rng.nextUniformPositive(), u2 = rng.nextUniform()
                let rad = (-2 * log(u1)).squareRoot()
                z[i] = rad * cos(2 * .pi * u2)
                if i + 1 < z.count { z[i + 1] = rad * sin(2 * .pi * u2) }
                i += 2
            }
            var h = [Double](repeating: 0, count: p + k)
            for r in 0..<(p + k) { for s in 0...r { h[r] += L[r, s] * z[s] } }
            var y = e.teacher.noiseVariance.squareRoot() * z[p + k]
            for r in 0..<k { y += e.teacher.weights[r] * e.teacher.activation.value(h[p + r]) }
            var f = 0.0
            for j in 0..<p { f += o.a[j] * e.student.activation.value(h[j]) }
            let D = e.training.loss == .square ? y - f : y
            for j in 0..<p {
                let g = e.student.activation.derivative(h[j]) * D
                for r in 0..<k { let v = g * h[p + r]; sum[j, r] += v; sum2[j, r] += v * v }
            }
        }
        let n = Double(samples)
        let mean = (1 / n) * sum
        var se = Matrix(rows: p, cols: k)
        for j in 0..<p { for r in 0..<k { se[j, r] = ((sum2[j, r] / n - mean[j, r] * mean[j, r]) / n).squareRoot() } }
        return (mean, se)
    }

    /// The mean one-step change of M from a fixed W over fresh batches is exactly (η/d) a_j Ψ_jr at
    /// any finite d (the fields of a Gaussian input are exactly N(0, Ω)).
    @Test(arguments: [Loss.square, Loss.correlation])
    func meanChangeOfMMatchesPsi(loss: Loss) throws {
        let d = 40, steps = 20_000
        let M = Matrix([[0.3, 0.1], [0.05, -0.2]]), Q = Matrix([[1.0, 0.2], [0.2, 0.8]])
        let eta = 0.8
        let e = experiment(p: 2, k: 2, a: [1.0, 0.7], noise: 0.05, loss: loss, eta: eta, initialization: .overlaps(M: M, Q: Q))
        let net = try OnlineSGDNetwork(e, dimension: d, seed: 99)
        let start = net.student, o0 = net.overlaps()
        var sum = Matrix(rows: 2, cols: 2), sum2 = Matrix(rows: 2, cols: 2)
        for _ in 0..<steps {
            net.setStudent(weights: start.weights, secondLayer: start.secondLayer)
            #expect(net.step())
            let dM = net.overlaps().M - o0.M
            for j in 0..<2 { for r in 0..<2 { sum[j, r] += dM[j, r]; sum2[j, r] += dM[j, r] * dM[j, r] } }
        }
        let psi = Self.psiMonteCarlo(o0, e: e, samples: 400_000, seed: 7)
        // Bonferroni over the 4 entries at two-sided level 1e-5: z = 4.9.
        let z = 4.9
        for j in 0..<2 {
            for r in 0..<2 {
                let n = Double(steps)
                let mean = sum[j, r] / n
                let seSim = ((sum2[j, r] / n - mean * mean) / n).squareRoot()
                let predicted = eta / Double(d) * o0.a[j] * psi.mean[j, r]
                let seMC = eta / Double(d) * abs(o0.a[j]) * psi.se[j, r]
                let tolerance = z * (seSim * seSim + seMC * seMC).squareRoot()
                #expect(abs(mean - predicted) < tolerance,
                        "ΔM[\(j)][\(r)] = \(mean), predicted \(predicted) ± \(tolerance)")
                // The check has power: the drift is well resolved.
                #expect(abs(predicted) > 4 * tolerance, "drift \(predicted) not resolved by tolerance \(tolerance)")
            }
        }
    }
}

@Suite struct RunTests {
    static let e = experiment(p: 2, k: 2, noise: 0.01, eta: 0.5, horizon: 5, initialization: .random(scale: 1))
    static let options = SimulationOptions(dimension: 60, times: [0, 0.5, 1, 2.5, 5], testSetSize: 50)

    @Test func sameSeedSameResult() throws {
        let a = try OnlineSGDSimulator.run(Self.e, options: Self.options, seed: 17)
        let b = try OnlineSGDSimulator.run(Self.e, options: Self.options, seed: 17)
        let c = try OnlineSGDSimulator.run(Self.e, options: Self.options, seed: 18)
        #expect(a == b)
        #expect(a.overlaps != c.overlaps)
        #expect(a.status == .completed && a.times == Self.options.times && a.overlaps.count == 5 && a.testRisk?.count == 5)
    }

    @Test func seedsAreIndependentOfThreadCount() throws {
        let parallel = try OnlineSGDSimulator.run(Self.e, options: Self.options, masterSeed: 3, count: 5)
        let serial = try OnlineSGDSimulator.run(Self.e, options: Self.options, masterSeed: 3, count: 5, parallel: false)
        #expect(parallel == serial)
        for (i, r) in parallel.enumerated() {
            #expect(r.seed == SeedSequence.seed(master: 3, index: i))
            #expect(r == (try OnlineSGDSimulator.run(Self.e, options: Self.options, seed: r.seed)))
        }
        #expect(Set(parallel.map(\.seed)).count == 5)
    }

    @Test func realisedTimesAreWholeSteps() throws {
        let options = SimulationOptions(dimension: 30, times: [0, 0.01, 0.02, 0.51, 1])
        let r = try OnlineSGDSimulator.run(Self.e, options: options, seed: 1)
        #expect(r.times == OnlineTime.realisedTimes(options.times, dimension: 30))
        #expect(r.times == [0, 1.0 / 30, 15.0 / 30, 1])
    }

    @Test func progressReachesOne() throws {
        let box = ProgressBox()
        _ = try OnlineSGDSimulator.run(Self.e, options: Self.options, masterSeed: 1, count: 3) { box.record($0) }
        #expect(box.values.last == 1)
        #expect(box.values.allSatisfy { $0 >= 0 && $0 <= 1 })
    }

    @Test func testRiskMatchesMonteCarloAtStart() throws {
        // At t = 0 the test set's fields are exactly N(0, Ω): its risk estimates ½E[(y − f)²].
        let n = 20_000
        let e = experiment(p: 2, k: 2, a: [0.6, 1.1], noise: 0.2, initialization: .overlaps(M: Matrix([[0.4, 0], [0.1, 0.2]]), Q: .identity(2)))
        let r = try OnlineSGDSimulator.run(e, options: SimulationOptions(dimension: 50, times: [0], testSetSize: n), seed: 4)
        let o = r.overlaps[0]
        let L = o.jointCovariance.choleskyPSD()!
        var rng = Xoshiro256PlusPlus(seed: 123)
        var sum = 0.0, sum2 = 0.0
        let samples = 200_000
        var z = [Double](repeating: 0, count: 5)
        for _ in 0..<samples {
            z.withUnsafeMutableBufferPointer { rng.fillStandardNormal($0) }
            var h = [Double](repeating: 0, count: 4)
            for i in 0..<4 { for s in 0...i { h[i] += L[i, s] * z[s] } }
            let y = e.teacher.activation.value(h[2]) + e.teacher.activation.value(h[3]) + 0.2.squareRoot() * z[4]
            let f = o.a[0] * e.student.activation.value(h[0]) + o.a[1] * e.student.activation.value(h[1])
            let l = 0.5 * (y - f) * (y - f)
            sum += l; sum2 += l * l
        }
        let mean = sum / Double(samples)
        let sdLoss = (sum2 / Double(samples) - mean * mean).squareRoot()
        let tolerance = 5 * sdLoss * (1 / Double(n) + 1 / Double(samples)).squareRoot()
        #expect(abs(r.testRisk![0] - mean) < tolerance, "test risk \(r.testRisk![0]) vs \(mean) ± \(tolerance)")
    }

    @Test func divergenceIsAResult() throws {
        let e = experiment(p: 1, k: 1, student: .linear, teacher: .linear, eta: 40, horizon: 200,
                           initialization: .random(scale: 1))
        let times = (0...200).map(Double.init)
        let r = try OnlineSGDSimulator.run(e, options: SimulationOptions(dimension: 10, times: times), seed: 1)
        #expect(r.status == .diverged)
        #expect(r.message.contains("non-finite"))
        #expect(r.overlaps.count == r.times.count && r.times.count < times.count && r.times.count >= 1)
        #expect(r.overlaps.allSatisfy { $0.Q.allFinite && $0.M.allFinite })

        // erf saturates, so an infinite weight must be caught through the fields themselves.
        let net = try OnlineSGDNetwork(experiment(p: 2, k: 2), dimension: 10, seed: 1)
        var w = net.student.weights
        w[3] = .infinity
        net.setStudent(weights: w, secondLayer: [1, 1])
        #expect(!net.step())
        #expect(net.stepCount == 0 && net.student.weights[3] == .infinity)
    }

    @Test func badInputIsRefusedWithFieldAndValue() throws {
        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "" } catch { return "\(error)" }
        }
        let e = Self.e
        let zero = message { _ = try OnlineSGDSimulator.run(e, options: SimulationOptions(dimension: 0, times: [0]), seed: 1) }
        #expect(zero.contains("simulation.dimension") && zero.contains("got 0"), "\(zero)")
        let negative = message { _ = try OnlineSGDSimulator.run(e, options: SimulationOptions(dimension: -3, times: [0]), seed: 1) }
        #expect(negative.contains("simulation.dimension") && negative.contains("-3"), "\(negative)")
        let small = message { _ = try OnlineSGDSimulator.run(e, options: SimulationOptions(dimension: 4, times: [0]), seed: 1) }
        #expect(small.contains("simulation.dimension") && small.contains("got 4") && small.contains("5"), "\(small)")
        let late = message { _ = try OnlineSGDSimulator.run(e, options: SimulationOptions(dimension: 20, times: [0, 7.5]), seed: 1) }
        #expect(late.contains("simulation.times[1]") && late.contains("7.5") && late.contains("training.time"), "\(late)")
        let early = message { _ = try OnlineSGDSimulator.run(e, options: SimulationOptions(dimension: 20, times: [-1]), seed: 1) }
        #expect(early.contains("simulation.times[0]") && early.contains("-1"), "\(early)")
        let unsorted = message { _ = try OnlineSGDSimulator.run(e, options: SimulationOptions(dimension: 20, times: [2, 1]), seed: 1) }
        #expect(unsorted.contains("simulation.times[1]") && unsorted.contains("non-decreasing"), "\(unsorted)")
        let testSet = message { _ = try OnlineSGDSimulator.run(e, options: SimulationOptions(dimension: 20, times: [0], testSetSize: -1), seed: 1) }
        #expect(testSet.contains("simulation.testSetSize") && testSet.contains("-1"), "\(testSet)")
        var badSpec = e
        badSpec.training.learningRate = -1
        let spec = message { _ = try OnlineSGDSimulator.run(badSpec, options: SimulationOptions(dimension: 20, times: [0]), seed: 1) }
        #expect(spec.contains("training.learningRate") && spec.contains("-1"), "\(spec)")
        let seeds = message { _ = try OnlineSGDSimulator.run(e, options: SimulationOptions(dimension: 20, times: [0]), masterSeed: 1, count: -2) }
        #expect(seeds.contains("simulation.seeds") && seeds.contains("-2"), "\(seeds)")
    }
}

final class ProgressBox: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Double] = []
    func record(_ x: Double) { lock.lock(); storage.append(x); lock.unlock() }
    var values: [Double] { lock.lock(); defer { lock.unlock() }; return storage }
}

@Suite("Shared initial condition")
struct SharedInitTests {
    @Test("init.random.seed gives every replica the same start, and different SGD noise")
    func sharedStart() throws {
        let e = Experiment(teacher: TeacherSpec(k: 2), student: StudentSpec(p: 2),
                           training: TrainingSpec(learningRate: 0.5, time: 1), initialization: .random(scale: 1, seed: 99))
        let runs = try OnlineSGDSimulator.run(e, options: SimulationOptions(dimension: 200, times: [0, 1]), masterSeed: 5, count: 2)
        #expect(runs[0].overlaps[0] == runs[1].overlaps[0])
        #expect(runs[0].overlaps[1] != runs[1].overlaps[1])
        var own = e
        own.initialization = .random(scale: 1)
        let separate = try OnlineSGDSimulator.run(own, options: SimulationOptions(dimension: 200, times: [0]), masterSeed: 5, count: 2)
        #expect(separate[0].overlaps[0] != separate[1].overlaps[0])
    }
}
