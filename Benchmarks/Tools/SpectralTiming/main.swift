// Plain release-mode timing of the finite-d spectral estimators (no benchmark plugin):
//   swift run -c release --scratch-path ../.build-bench spectral-timing [d]
// The L solve at n = 8000, d = 2000, k = 2 against its own matrix products, and T at dk = 4000
// against its dgemm calls plus LAPACK's dsyevr, measured in the same run (issue 9's targets: ≤ 2× and ≤ 1.5×).
import Foundation
import PlateauCore
import PlateauSimulation
import PlateauTheory

let d = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 2000 : 2000
let p = EstimationProblem(teacher: TeacherSpec(link: try! Formula(parsing: "sign(z1*z2)", variables: .target(k: 2))))
let m = try SpectralTiming.measure(problem: p, alpha: 4, denoiser: try OutputChannel(problem: p), dimension: d, groupSize: 2)
print(String(format: "L, n = %d, d = %d, k = 2: solve %.3f s (%d iterations), its matrix products %.3f s, ratio %.2f",
             4 * d, d, m.lSeconds, m.lIterations, m.lProductSeconds, m.lRatio))
print(String(format: "T, dk = %d: %.3f s; dgemm %.3f s + dsyevr %.3f s; ratio %.2f",
             2 * d, m.tSeconds, m.tProductSeconds, m.tLapackSeconds, m.tRatio))
