// Plain release-mode timing of the amp protocol (no benchmark plugin):
//   swift run -c release --scratch-path ../.build-bench amp-timing
// α_c of k = 2 targets, a state-evolution curve, and one GAMP iteration at d = 2000, α = 2, k = 2
// against the time of its own matrix products measured in the same run.
import Foundation
import PlateauCore
import PlateauSimulation
import PlateauTheory

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

func problem(_ target: String, k: Int, noise: Double = 0) -> EstimationProblem {
    EstimationProblem(teacher: TeacherSpec(link: try! Formula(parsing: target, variables: .target(k: k)), noiseVariance: noise))
}

print("target\tk\talpha_c\tthreshold_s")
for (target, k) in [("sign(z1*z2)", 2), ("z1*z2", 2), ("z1^2", 1), ("sign(z1*z2*z3)", 3)] {
    var alphaC = 0.0
    let t = try seconds { alphaC = try StateEvolution(problem: problem(target, k: k)).weakRecovery().alphaC }
    print("\(target)\t\(k)\t\(alphaC)\t\(String(format: "%.3f", t))")
}
let se = try StateEvolution(problem: problem("sign(z1*z2)", k: 2))
let alphas = (0..<50).map { 2 + 0.04 * Double($0) }
let curve = seconds { _ = se.curve(alphas: alphas) }
print(String(format: "SE curve sign(z1*z2), 50 α in [2, 4): %.2f s", curve))
let p = problem("sign(z1*z2)", k: 2)
let m = try GAMPTiming.measure(problem: p, alpha: 2, denoiser: try OutputChannel(problem: p), dimension: 2000)
print(String(format: "GAMP d = 2000, α = 2, k = 2: iteration %.4f s, matrix products %.4f s, channel step %.4f s, ratio %.2f",
             m.iterationSeconds, m.matrixProductSeconds, m.channelSeconds, m.ratio))
