// The theory's inner loop against its floor (issue 13): per erf committee K = M (η = 0.5), the time of
// one right-hand side, one explicit-Euler step (dt = 0.01, with its per-step checks) and one step of
// the exact map (n_b = 1 and n_b = 50), against the floor = the time of just the transcendental
// evaluations one right-hand side needs at that K (its arcsines and square roots, at the arguments
// of the timed state), all measured in the same run; then the same for the Wick route (He2 student,
// staircase target), which needs no transcendental (its ratio is to the closed form of the same size).
//   swift run -c release --scratch-path ../.build-bench inner-loop-timing
// Each timed quantity runs in turns with the others of its table (round robin, 9 rounds of ≥ 50 ms
// each, thread CPU time) and its best round is kept: the machine is shared, and the best round is
// the least disturbed; turns make a slow spell hit every quantity alike, so the ratios hold.
import Foundation
import PlateauCore
import PlateauTheory

typealias Formula = PlateauCore.Formula

/// A quantity to time: `body` does `calls` units of work and returns something to keep.
struct Timed {
    var calls: Int
    var body: () -> Double
}

func threadSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

/// Best seconds per unit of work of each quantity, timed in turns.
func best(_ quantities: [Timed], rounds: Int = 9) -> [Double] {
    var repeats = quantities.map { _ in 1 }
    var bests = quantities.map { _ in Double.infinity }
    var sink = 0.0
    for round in 0..<(rounds + 1) {
        for (i, q) in quantities.enumerated() {
            var seconds = 0.0
            while true {
                let start = threadSeconds()
                for _ in 0..<repeats[i] { sink += q.body() }
                seconds = threadSeconds() - start
                if seconds >= 0.05 { break }
                repeats[i] *= 2
            }
            // Round 0 only calibrates (and warms up).
            if round > 0 { bests[i] = min(bests[i], seconds / Double(repeats[i] * q.calls)) }
        }
    }
    if sink.isNaN { print("(NaN)") }
    return bests
}

func committee(_ k: Int) -> Experiment {
    var M = Matrix(rows: k, cols: k), Q = Matrix.identity(k)
    for j in 0..<k { for r in 0..<k { M[j, r] = 1e-9 * (1 + 0.37 * Double(j) - 0.23 * Double(r)) } }
    for j in 0..<k { for l in 0..<k where l != j { Q[j, l] = 5e-10 } }
    return Experiment(teacher: TeacherSpec(k: k, activation: .erf), student: StudentSpec(p: k, activation: .erf),
                      training: TrainingSpec(learningRate: 0.5, time: 1000), initialization: .overlaps(M: M, Q: Q))
}

func staircase(_ k: Int) -> Experiment {
    let text = (1...k).map { r in (1...r).map { "z\($0)" }.joined(separator: "*") }.joined(separator: " + ")
    let link = try! Formula(parsing: text, variables: .target(k: k))
    var M = Matrix(rows: k, cols: k), Q = Matrix.identity(k)
    for j in 0..<k { for r in 0..<k { M[j, r] = j == r ? 0.3 : 0.05 } }
    for j in 0..<k { for l in 0..<k where l != j { Q[j, l] = 0.1 } }
    return Experiment(teacher: TeacherSpec(link: link), student: StudentSpec(p: k, activation: .hermite(2)),
                      training: TrainingSpec(learningRate: 0.05, time: 100), initialization: .overlaps(M: M, Q: Q))
}

/// The arcsine and square-root arguments of one erf right-hand side at Ω (EQUATIONS.md §1.4), each
/// distinct integral once: per unit j, 1 + Ω_jj; per (j, m), the tilted variance of field m; per pair
/// j ≤ l, Λ₄; per (j ≤ l, m), Λ₁ (so √(Λ₁Λ₂) = √Λ₁√Λ₂ costs no square root of its own); per
/// (j ≤ l, m ≤ n), the arcsine's argument Λ₀/√(Λ₁Λ₂). `perIntegral`: one √(Λ₁Λ₂) per quartic instead
/// of one √Λ₁ per field, as the closed form is written per term (the right-hand side before its
/// shared pieces were allowed to change the rounding; it now takes the square roots of the floor).
func transcendentalArguments(_ o: Overlaps, perIntegral: Bool = false) -> (asin: [Double], sqrt: [Double]) {
    let omega = o.jointCovariance, p = o.p, n = o.p + o.k
    var asinArguments: [Double] = [], sqrtArguments: [Double] = []
    for j in 0..<p {
        sqrtArguments.append(1 + omega[j, j])
        for m in 0..<n { sqrtArguments.append(1 + omega[m, m] - omega[j, m] * omega[j, m] / (1 + omega[j, j])) }
    }
    for j in 0..<p { for l in j..<p {
        let (c11, c12, c22) = (omega[j, j], omega[j, l], omega[l, l])
        let l4 = (1 + c11) * (1 + c22) - c12 * c12
        sqrtArguments.append(l4)
        func norm(_ m: Int) -> Double {
            l4 * (1 + omega[m, m]) - omega[l, m] * omega[l, m] * (1 + c11) - omega[j, m] * omega[j, m] * (1 + c22)
                + 2 * c12 * omega[j, m] * omega[l, m]
        }
        for m in 0..<n {
            if !perIntegral { sqrtArguments.append(norm(m)) }
            for s in m..<n {
                if perIntegral { sqrtArguments.append(norm(m) * norm(s)) }
                let l0 = l4 * omega[m, s] - omega[l, m] * omega[l, s] * (1 + c11) - omega[j, m] * omega[j, s] * (1 + c22)
                    + c12 * omega[j, m] * omega[l, s] + c12 * omega[j, s] * omega[l, m]
                asinArguments.append(l0 / (norm(m) * norm(s)).squareRoot())
            }
        }
    } }
    return (asinArguments, sqrtArguments)
}

/// Just the transcendental evaluations of one right-hand side (with their counts).
func floorWork(_ o: Overlaps, perIntegral: Bool = false) -> (Timed, asin: Int, sqrt: Int) {
    let (x, y) = transcendentalArguments(o, perIntegral: perIntegral)
    var round = 0.0
    let work = Timed(calls: 1) {
        // The arguments move by less than an ulp per call, so nothing can be hoisted out of the loop.
        round += 1e-300
        var s = 0.0
        for v in x { s += asin(v + round) }
        for v in y { s += (v + round).squareRoot() }
        return s
    }
    return (work, x.count, y.count)
}

/// One right-hand side, one Euler step (dt = 0.01) and one map step (d = 10⁴, n_b = 1 and 50) from `o`.
func stepWork(_ e: Experiment, at o: Overlaps) -> [Timed] {
    let theory = OnlineSGDTheory(e)
    let problem = theory.problem
    var y = theory.state(of: o), f = y
    let rhs = Timed(calls: 1) {
        y.withUnsafeBufferPointer { yp in f.withUnsafeMutableBufferPointer { fp in try! problem.rhs(0, yp, fp) } }
        return f[0]
    }
    let steps = 10_000
    let options = ODEOptions(method: .euler, eulerStep: 0.01)
    let run = theory.trajectory(from: o, times: [Double(steps) * 0.01], options: options).solution
    precondition(run.status == .completed && run.steps == steps, "the timed Euler run ended early: \(run.message)")
    let euler = Timed(calls: steps) { theory.trajectory(from: o, times: [Double(steps) * 0.01], options: options).solution.states[0][0] }
    let d = 10_000.0
    var batch = e
    batch.training.batchSize = 50
    let maps = [OnlineSGDMap(theory, dimension: d), OnlineSGDMap(OnlineSGDTheory(batch), dimension: d)]
    for m in maps {
        let run = m.trajectory(from: o, times: [Double(steps) / d])
        precondition(run.status == .completed, "the timed map run ended early: \(run.message)")
    }
    return [rhs, euler] + maps.map { m in Timed(calls: steps) { m.trajectory(from: o, times: [Double(steps) / d]).values[0][0] } }
}

func µs(_ s: Double) -> String { String(format: "%.3g µs", s * 1e6) }

print("erf committee, η = 0.5, at the plateau state (t = 200 of the ODE from a 1e-9 start)")
print("floor: the arcsines and square roots alone, √Λ₁ shared per field; floor′: one √(Λ₁Λ₂) per quartic, as the closed form is written per term")
print("K = M | floor (asin, sqrt) | floor′ (asin, sqrt) | rhs (/floor) | Euler step (/floor, /floor′) | map step n_b = 1 (/floor) | map step n_b = 50 (/floor)")
var closedForm: [Int: [Double]] = [:]
for k in [2, 4] {
    let e = committee(k)
    let theory = OnlineSGDTheory(e)
    let plateau = theory.overlaps(fromState: theory.trajectory(from: theory.initialOverlaps, times: [200]).solution.states[0])
    let (floor, asinCount, sqrtCount) = floorWork(plateau)
    let (floorPerIntegral, _, sqrtPerIntegral) = floorWork(plateau, perIntegral: true)
    let t = best([floor, floorPerIntegral] + stepWork(e, at: plateau))
    closedForm[k] = Array(t[2...])
    func r(_ x: Double, _ y: Double = t[0]) -> String { String(format: "%.2f", x / y) }
    print("\(k) | \(µs(t[0])) (\(asinCount), \(sqrtCount)) | \(µs(t[1])) (\(asinCount), \(sqrtPerIntegral)) | \(µs(t[2])) (\(r(t[2])))"
          + " | \(µs(t[3])) (\(r(t[3])), \(r(t[3], t[1])))" + t[4...].map { " | \(µs($0)) (\(r($0)))" }.joined())
}

print("\nWick route: He2 student, staircase target z1 + z1 z2 + …, p = k (ratio: to the erf closed form at the same K, other run)")
print("p = k | moments | rhs | Euler step | map step n_b = 1 | map step n_b = 50")
for k in [2, 4] {
    let e = staircase(k)
    let theory = OnlineSGDTheory(e)
    let t = best(stepWork(e, at: theory.initialOverlaps))
    let c = closedForm[k]!
    print("\(k) | \(theory.routeDescription) | " + t.indices.map { "\(µs(t[$0])) (\(String(format: "%.2f", t[$0] / c[$0])))" }.joined(separator: " | "))
}
