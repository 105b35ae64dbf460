import Dispatch
import Foundation
import PlateauCompare
import PlateauCore
import PlateauSimulation
import PlateauTheory

/// Finite-d GAMP against the state evolution (EQUATIONS.md §2), through the same verdict machinery as
/// the online-SGD comparisons. The time axis is the AMP iteration index (ARCHITECTURE.md).
///
/// The compared observables are invariant under the symmetries of g (sign(z₁z₂) is unchanged by z → −z
/// and by swapping z₁ and z₂, so GAMP may find its overlap with the teacher M_t = ŴᵀW*ᵀ/d only up to a
/// signed permutation R): q_t = tr Q_t/k and the entries `Q_r_s` (r ≤ s) of the self-overlap
/// Q_t = ŴᵀŴ/d, which on the Nishimori line equal the state evolution's M_t, and m2_t = tr(M_tᵀM_t)/k
/// (unchanged by R), which the state evolution predicts as tr(M_t²)/k. The state evolution starts
/// from each seed's realised overlap M₀ (symmetrised; the nominal εI or (1 − ε)I when that is not a valid
/// overlap).
public struct AMPComparison: Sendable {
    public var problem: EstimationProblem
    public var alpha: Double
    public var gamp: GAMPResult
    /// Per seed, GAMP's observables per iteration (`AMPComparison.observables`).
    public var simulation: [Trajectory]
    /// The state evolution on the same iterations (identical for every seed).
    public var theory: [Trajectory]
    public var report: AgreementReport

    /// `q`, `m2`, then `Q_r_s` for r ≤ s (1-based).
    public static func observables(k: Int) -> [String] {
        ["q", "m2"] + (1...k).flatMap { r in (r...k).map { "Q_\(r)_\($0)" } }
    }

    /// The observables from the self-overlap Q and the overlap with the teacher M (the state evolution
    /// passes its M for both).
    static func row(Q: Matrix, M: Matrix) -> [Double] {
        let k = Q.rows
        let MtM = M.transposed * M
        var out = [(0..<k).reduce(0) { $0 + Q[$1, $1] } / Double(k), (0..<k).reduce(0) { $0 + MtM[$1, $1] } / Double(k)]
        for r in 0..<k { for s in r..<k { out.append(0.5 * (Q[r, s] + Q[s, r])) } }
        return out
    }

    /// Runs GAMP at α over `options.seeds` seeds and compares it per iteration with the state evolution.
    public static func run(problem: EstimationProblem, alpha: Double, options: GAMPOptions,
                           stateEvolution: StateEvolution? = nil, theoryAlpha: Double? = nil,
                           criterion: AgreementCriterion = AgreementCriterion()) throws -> AMPComparison {
        let se = try stateEvolution ?? StateEvolution(problem: problem)
        let gamp = try GAMPSimulator.run(problem: problem, alpha: alpha, denoiser: se.channel, options: options)
        let names = observables(k: problem.k)
        let simulation = gamp.seeds.map { seed in
            var t = Trajectory(observables: names)
            for (i, Q) in seed.Q.enumerated() { t.append(time: Double(i), values: row(Q: Q, M: seed.M[i])) }
            t.status = seed.status
            t.message = seed.message
            return t
        }
        // Each seed's state evolution starts from that seed's realised overlap with the teacher M₀
        // (symmetrised), as the online comparisons start from the realised overlaps: its O(√(ε/d))
        // asymmetries grow along the degenerate directions of 𝓕 exactly as GAMP's do.
        let theoryAlpha = theoryAlpha ?? alpha
        let slots = JobResults<Trajectory>(count: gamp.seeds.count)
        DispatchQueue.concurrentPerform(iterations: gamp.seeds.count) { s in
            let start = gamp.seeds[s].M.first.map(Self.admissibleStart) ?? nil
            let iterates = Self.iterates(se, alpha: theoryAlpha, from: start ?? se.start(informed: options.informed),
                                         iterations: options.iterations)
            var curve = Trajectory(observables: names)
            for (i, M) in iterates.enumerated() { curve.append(time: Double(i), values: row(Q: M, M: M)) }
            slots.set(s, curve)
        }
        let theory = slots.values
        let report = Agreement.compare(theory: theory, simulation: simulation, dimension: options.dimension,
                                       observables: names, criterion: criterion)
        return AMPComparison(problem: problem, alpha: alpha, gamp: gamp, simulation: simulation, theory: theory, report: report)
    }

    /// The state evolution's M_0 … M_T at α (the budget set to T iterations; a converged run is
    /// continued at its fixed point).
    static func iterates(_ se: StateEvolution, alpha: Double, from start: Matrix, iterations: Int) -> [Matrix] {
        var history = [start]
        var M = history[0]
        for _ in 0..<iterations {
            guard let next = se.dampedStep(M, alpha: alpha) else { break }
            M = next
            history.append(M)
        }
        while history.count < iterations + 1 { history.append(Matrix(rows: M.rows, cols: M.cols, repeating: .nan)) }
        return history
    }
}

extension AMPComparison {
    /// ½(M₀ + M₀ᵀ) when it is a valid state-evolution overlap (0 ≼ M ≺ I), else nil.
    static func admissibleStart(_ M0: Matrix) -> Matrix? {
        let k = M0.rows
        var M = M0
        for i in 0..<k { for j in 0..<k { M[i, j] = 0.5 * (M0[i, j] + M0[j, i]) } }
        guard M.isPositiveSemidefinite(tolerance: 0), (Matrix.identity(k) - M).inverseSPD(tolerance: 1e-12) != nil else { return nil }
        return M
    }
}

/// GAMP after T iterations against the state evolution after T iterations, over an α grid: the
/// "time" axis of the comparison is α (one row per α), so the verdicts are per α and observable.
public struct AMPFixedPointScan: Sendable {
    public var problem: EstimationProblem
    public var alphas: [Double]
    public var runs: [AMPComparison]
    public var simulation: [Trajectory]
    public var theory: [Trajectory]
    public var report: AgreementReport

    public static func run(problem: EstimationProblem, alphas: [Double], options: GAMPOptions,
                           criterion: AgreementCriterion = AgreementCriterion(),
                           progress: (@Sendable (Double) -> Void)? = nil) throws -> AMPFixedPointScan {
        let se = try StateEvolution(problem: problem)
        var runs: [AMPComparison] = []
        for (i, alpha) in alphas.enumerated() {
            runs.append(try AMPComparison.run(problem: problem, alpha: alpha, options: options, stateEvolution: se,
                                              criterion: criterion))
            progress?(Double(i + 1) / Double(alphas.count))
        }
        let names = AMPComparison.observables(k: problem.k)
        func last(_ t: Trajectory) -> [Double] { t.values.last ?? names.map { _ in .nan } }
        let simulation = (0..<options.seeds).map { s in
            var t = Trajectory(observables: names)
            for (alpha, run) in zip(alphas, runs) { t.append(time: alpha, values: last(run.simulation[s])) }
            return t
        }
        var curve = Trajectory(observables: names)
        for (alpha, run) in zip(alphas, runs) { curve.append(time: alpha, values: last(run.theory[0])) }
        let theory = Array(repeating: curve, count: options.seeds)
        let report = Agreement.compare(theory: theory, simulation: simulation, dimension: options.dimension,
                                       observables: names, criterion: criterion)
        return AMPFixedPointScan(problem: problem, alphas: alphas, runs: runs, simulation: simulation, theory: theory, report: report)
    }
}
