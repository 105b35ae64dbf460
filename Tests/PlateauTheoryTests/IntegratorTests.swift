import Foundation
import Testing
import PlateauCore
@testable import PlateauTheory

@Suite("ODE integrator")
struct IntegratorTests {
    /// y' = −y, y(0) = 1: error measured in units of the requested tolerance, rhs calls bounded.
    @Test("exponential decay: error within the tolerance, for every adaptive method", arguments: [ODEMethod.rk8pd, .rkck, .rkf45, .rk4])
    func decay(method: ODEMethod) {
        let problem = ODEProblem(dimension: 1, rhs: { _, y, f in f[0] = -y[0] })
        let times = [0.0, 0.5, 1, 2, 5]
        let rtol = 1e-9
        let s = integrate(problem, initial: [1], times: times,
                          options: ODEOptions(method: method, relativeTolerance: rtol, absoluteTolerance: 1e-12))
        #expect(s.status == .completed)
        for (t, y) in zip(s.times, s.states) {
            // Global error of a stable linear problem stays within a small multiple of the local tolerance.
            #expect(abs(y[0] - exp(-t)) <= 100 * rtol * exp(-t) + 1e-12, "\(method) t = \(t): \(y[0])")
        }
        #expect(s.rhsEvaluations > 0 && s.rhsEvaluations < 20_000)
    }

    @Test("explicit Euler is exactly (1 − dt)^n")
    func euler() {
        let problem = ODEProblem(dimension: 1, rhs: { _, y, f in f[0] = -y[0] })
        let s = integrate(problem, initial: [1], times: [1], options: ODEOptions(method: .euler, eulerStep: 0.1))
        #expect(s.steps == 10 && s.rhsEvaluations == 10)
        #expect(abs(s.states[0][0] - pow(0.9, 10)) < 1e-15)
    }

    struct Boom: Error {}

    @Test("a throwing right-hand side ends the run with a message, not a crash")
    func throwingRHS() {
        let problem = ODEProblem(dimension: 1, rhs: { t, _, f in
            if t > 0.3 { throw Boom() }
            f[0] = 1
        })
        let s = integrate(problem, initial: [0], times: [0, 0.2, 1])
        #expect(s.status == .integratorFailure)
        #expect(s.message.contains("Boom"))
        #expect(s.times == [0, 0.2])
    }

    @Test("the check ends a run that leaves the allowed region, keeping the rows before")
    func check() {
        let problem = ODEProblem(dimension: 1, rhs: { _, _, f in f[0] = 1 }, check: { y in
            y[0] > 1.5 ? (.leftPSDCone, "left") : nil
        })
        let s = integrate(problem, initial: [0], times: [0, 1, 2, 3])
        #expect(s.status == .leftPSDCone && s.times == [0, 1])
    }

    @Test("a diverging order-parameter flow ends with a status (linear network, η far above stability)")
    func divergence() {
        let e = Experiment(teacher: TeacherSpec(k: 1, activation: .linear), student: StudentSpec(p: 1, activation: .linear),
                           training: TrainingSpec(learningRate: 5, time: 1000), initialization: .random(scale: 1))
        let theory = OnlineSGDTheory(e)
        let (traj, sol) = theory.trajectory(from: theory.initialOverlaps, times: [0, 1, 10, 100, 1000])
        #expect(sol.status != .completed)
        #expect(traj.times.count < 5)
        #expect(!sol.message.isEmpty)
    }

    /// Linear network, square loss, p = k = 1, P = 1: closed-form ODE. With m = M, q = Q:
    /// dm/dt = η(1 − m), dq/dt = 2η(m − q) + η²(1 − 2m + q + Δ) (Ψ = 1 − m, Φ = m − q, Ξ = E[D²] = 1 − 2m + q + Δ).
    @Test("linear network: the ODE matches its closed-form solution")
    func linearClosedForm() {
        let eta = 0.3, delta = 0.1
        let e = Experiment(teacher: TeacherSpec(k: 1, activation: .linear, noiseVariance: delta),
                           student: StudentSpec(p: 1, activation: .linear),
                           training: TrainingSpec(learningRate: eta, time: 10),
                           initialization: .overlaps(M: Matrix([[0.2]]), Q: Matrix([[0.5]])))
        let theory = OnlineSGDTheory(e)
        let times = [0.0, 1, 3, 10]
        let (traj, sol) = theory.trajectory(from: theory.initialOverlaps, times: times,
                                            options: ODEOptions(relativeTolerance: 1e-12, absoluteTolerance: 1e-14))
        #expect(sol.status == .completed)
        // m(t) = 1 − 0.8 e^{−ηt}; e = 1 − 2m + q obeys de/dt = −2η e + η²(e + Δ) ⇒
        // e(t) = (e0 + c) e^{(η² − 2η)t} − c with c = η²Δ/(η² − 2η).
        let c = eta * eta * delta / (eta * eta - 2 * eta)
        for (i, t) in times.enumerated() {
            let m = 1 - 0.8 * exp(-eta * t)
            let e0 = 1 - 0.4 + 0.5
            let err = (e0 + c) * exp((eta * eta - 2 * eta) * t) - c
            let q = err - 1 + 2 * m
            #expect(abs(traj.column("M_1_1")![i] - m) < 1e-10)
            #expect(abs(traj.column("Q_1_1")![i] - q) < 1e-10)
            #expect(abs(traj.column("risk")![i] - 0.5 * (err + delta)) < 1e-10)
        }
    }
}
