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

// As `plateau threshold` does: a noiseless product of coordinates from its exact law (no channel built),
// any other output through the channel (its build included); "binned" forces the channel for a product.
print("target\tk\troute\talpha_c\tthreshold_s")
for (target, k, binned) in [("sign(z1*z2)", 2, false), ("z1*z2", 2, false), ("z1*z2", 2, true), ("z1*z2*z3", 3, false),
                            ("z1^2", 1, false), ("sign(z1*z2*z3)", 3, false)] {
    var alphaC = 0.0, route = "channel"
    let t = try seconds {
        let p = problem(target, k: k)
        if !binned, let law = ProductOutputLaw(problem: p) {
            alphaC = WeakRecoveryAnalysis(law: law).alphaC
            route = "exact product law"
        } else {
            alphaC = try StateEvolution(problem: p).weakRecovery(exactProduct: false).alphaC
        }
    }
    print("\(target)\t\(k)\t\(route)\t\(alphaC)\t\(String(format: "%.3f", t))")
}
let se = try StateEvolution(problem: problem("sign(z1*z2)", k: 2))
let alphas = (0..<50).map { 2 + 0.04 * Double($0) }
let curve = seconds { _ = se.curve(alphas: alphas) }
print(String(format: "SE curve sign(z1*z2), 50 α in [2, 4): %.2f s", curve))
let p = problem("sign(z1*z2)", k: 2)
let m = try GAMPTiming.measure(problem: p, alpha: 2, denoiser: try OutputChannel(problem: p), dimension: 2000)
print(String(format: "GAMP d = 2000, α = 2, k = 2: iteration %.4f s, matrix products %.4f s, channel step %.4f s, ratio %.2f",
             m.iterationSeconds, m.matrixProductSeconds, m.channelSeconds, m.ratio))
