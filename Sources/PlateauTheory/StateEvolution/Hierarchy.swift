import Foundation
import PlateauCore

/// One step of the learning hierarchy: from `alpha` on, the Bayes-optimal fixed point reached from the
/// uninformed start has learned `rank` directions (an orthonormal basis in `directions`).
public struct LearningStage: Sendable, Hashable {
    /// The sample ratio where the stage begins (0: at any α > 0).
    public var alpha: Double
    public var rank: Int
    public var directions: [[Double]]
}

extension StateEvolution {
    /// The directions learned at α: the eigenvectors of the fixed point M*(α) reached from the uninformed
    /// start εI whose eigenvalue exceeds `cutoff`.
    ///
    /// Resolution: below a threshold the overlap in the unlearned directions decays geometrically to the
    /// tolerance scale (≈ 10⁻⁹), far below the cutoff 10⁻⁶, while a learned direction sits at an O(1)
    /// overlap, or at O(α m²) when a learned direction drives it (a staircase). Just below a threshold
    /// the decay rate r = α/α_h approaches 1 and the iteration budget T may end first: a direction then
    /// counts as learned when ε·r^T > 10⁻⁶, i.e. within ln(ε/10⁻⁶)/T relative below α_h (1.4% for
    /// ε = 10⁻³, T = 500).
    public func learnedDirections(alpha: Double, cutoff: Double = 1e-6) -> [[Double]] {
        let run = iterate(alpha: alpha, from: start(informed: false), label: "uninformed")
        guard run.status != .failed else { return [] }
        let (values, vectors) = GSL.symmetricEigen(run.M)
        let k = run.M.rows
        return (0..<k).filter { values[$0] > cutoff }.map { e in (0..<k).map { vectors[$0, e] } }
    }

    /// The learning hierarchy over [α_min, α_max]: the rank of the uninformed fixed point on a log grid
    /// of `gridPoints` values (in parallel), each increase located by geometric bisection to a relative
    /// `tolerance`. A stage that exists at α_min is reported at α = 0 when the weak-recovery analysis
    /// finds those directions trivial (learned at any α > 0), else at α_min.
    public func hierarchy(alphaMin: Double = 0.02, alphaMax: Double = 20, gridPoints: Int = 16,
                          tolerance: Double = 1e-3) -> [LearningStage] {
        let grid = (0..<gridPoints).map { alphaMin * pow(alphaMax / alphaMin, Double($0) / Double(gridPoints - 1)) }
        let slots = JobResults<[[Double]]>(count: grid.count)
        DispatchQueue.concurrentPerform(iterations: grid.count) { i in slots.set(i, learnedDirections(alpha: grid[i])) }
        let learned = slots.values
        var stages: [LearningStage] = []
        if !learned[0].isEmpty {
            let trivial = weakRecovery().trivialSubspace
            stages.append(LearningStage(alpha: trivial.count == learned[0].count ? 0 : grid[0], rank: learned[0].count,
                                        directions: learned[0]))
        }
        for i in 1..<grid.count where learned[i].count > learned[i - 1].count {
            var lo = grid[i - 1], hi = grid[i], high = learned[i]
            while hi / lo - 1 > tolerance {
                let mid = (lo * hi).squareRoot()
                let m = learnedDirections(alpha: mid)
                if m.count > learned[i - 1].count { hi = mid; high = m } else { lo = mid }
            }
            stages.append(LearningStage(alpha: hi, rank: high.count, directions: high))
        }
        return stages
    }
}
