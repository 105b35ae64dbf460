// The ODE right-hand side per expectation route (closed form, Wick, quadrature), timed on the same
// problems, with each route's time as a ratio to the fastest exact route measured in the same run.
//   swift run -c release --scratch-path ../.build-bench route-timing
import Foundation
import PlateauCore
import PlateauTheory

typealias Formula = PlateauCore.Formula

func experiment(student: Activation, teacher: TeacherSpec, p: Int) -> Experiment {
    Experiment(teacher: teacher, student: StudentSpec(p: p, activation: student),
               training: TrainingSpec(learningRate: 0.5, time: 10), initialization: .random(scale: 1))
}

/// Generic mid-learning overlaps (every entry non-zero, Ω positive definite).
func overlaps(p: Int, k: Int) -> Overlaps {
    var M = Matrix(rows: p, cols: k), Q = Matrix(rows: p, cols: p)
    for j in 0..<p {
        for r in 0..<k { M[j, r] = (j % k == r ? 0.4 : 0.05) }
        for l in 0..<p { Q[j, l] = j == l ? 1 : 0.1 }
    }
    return Overlaps(M: M, Q: Q, P: .identity(k), a: Array(repeating: 1, count: p))
}

/// Median seconds per right-hand side over repeated batches of at least 0.2 s.
func time(_ theory: OnlineSGDTheory, _ o: Overlaps) -> Double {
    var samples: [Double] = []
    var n = 1
    while samples.count < 7 {
        let start = DispatchTime.now().uptimeNanoseconds
        var sink = 0.0
        for _ in 0..<n { sink += theory.derivatives(o).dQ[0, 0] }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        if sink.isNaN { print("NaN") }
        if seconds < 0.2 { n *= 2; continue }
        samples.append(seconds / Double(n))
    }
    return samples.sorted()[samples.count / 2]
}

func microseconds(_ s: Double) -> String { String(format: "%.3g µs", s * 1e6) }

let staircase4 = try! Formula(parsing: "z1 + z1*z2 + z1*z2*z3 + z1*z2*z3*z4", variables: .target(k: 4))
let staircase2 = try! Formula(parsing: "z1 + z1*z2", variables: .target(k: 2))
let problems: [(String, Experiment)] = [
    ("erf committee, p = k = 2", experiment(student: .erf, teacher: TeacherSpec(k: 2, activation: .erf), p: 2)),
    ("He2 student, staircase z1 + z1 z2, p = k = 2", experiment(student: .hermite(2), teacher: TeacherSpec(link: staircase2), p: 2)),
    ("erf committee, p = 8, k = 4", experiment(student: .erf, teacher: TeacherSpec(k: 4, activation: .erf), p: 8)),
    ("He2 student, staircase (k = 4), p = 8", experiment(student: .hermite(2), teacher: TeacherSpec(link: staircase4), p: 8)),
]

print("ODE right-hand side per expectation route (median per evaluation; ratio to the exact route of the same problem)")
for (label, e) in problems {
    let o = overlaps(p: e.student.p, k: e.teacher.k)
    var base: Double?
    for route in TheoryRoute.available(for: e) {
        let theory = OnlineSGDTheory(e, route: route)
        let t = time(theory, o)
        if base == nil { base = t }
        let ratio = String(format: "%.3g×", t / base!)
        var line = "  \(label) — \(route.rawValue): \(microseconds(t)) (\(ratio))"
        if route == .quadrature {
            line += "; \(theory.routeDescription); error estimate here \(String(format: "%.1e", theory.quadratureErrorEstimate(o)))"
        }
        print(line)
    }
}

// The accuracy–time trade-off of the quadrature route on the erf problem at p = k = 2: for each
// stated tolerance, the time per right-hand side over the closed form's (same run) and the largest
// error of Ψ, Φ, Ξ against the closed form at the timed overlaps.
print("\nerf committee, p = k = 2: quadrature time and error against the stated tolerance (closed form = 1×)")
do {
    let e = problems[0].1
    let o = overlaps(p: 2, k: 2)
    let closed = OnlineSGDTheory(e)
    let base = time(closed, o)
    let exact = closed.expectationTerms(o)
    // E[σD] is left out: the closed form computes it only when the second layer is trained (here it is not).
    func flat(_ t: (psi: Matrix, phi: Matrix, xi: Matrix, aDrift: [Double])) -> [Double] {
        t.psi.values + t.phi.values + t.xi.values
    }
    for tolerance in [1e-2, 1e-3, 1e-4, 1e-5, 1e-6] {
        var settings = QuadratureSettings()
        settings.tolerance = tolerance
        let quad = OnlineSGDTheory(e, route: .quadrature, quadrature: settings)
        let t = time(quad, o)
        let error = zip(flat(exact), flat(quad.expectationTerms(o))).map { abs($0 - $1) }.max() ?? .nan
        print(String(format: "  tolerance %.0e: %@ (%.3g×), max error %.1e; ", tolerance, microseconds(t), t / base, error) + quad.routeDescription)
    }
}
