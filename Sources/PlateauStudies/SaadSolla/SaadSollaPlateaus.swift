import Foundation
import PlateauCompare
import PlateauCore
import PlateauSimulation
import PlateauTheory

/// Saad & Solla's plateaus of the soft committee machine: plateau height and escape time against
/// the learning rate η and the size K = M, from the d = ∞ ODE started at a tiny overlap, with
/// finite-d simulations overlaid.
///
/// Problem: student f = Σ_j σ(λ_j) and teacher g = Σ_r σ(ν_r), σ(x) = erf(x/√2), a = 1 (not trained),
/// P = I, square loss, noiseless, online SGD with n_b = 1 (EQUATIONS.md §1).
///
/// Definitions (stated again in the README this study writes):
/// - *Plateau height*: the population risk at the symmetric fixed point of the ODE (all M_jr = R,
///   Q_jj = Q, Q_jl = C for j ≠ l), solved by Newton's method in (R, Q, C) from the flattest
///   symmetric point of the trajectory. The risk at that flattest point (least |dR/dt| while every
///   overlap is still symmetric to 1e-3) is reported next to it as a check.
/// - *Escape time*: the first t at which the risk falls below `escapeFraction` (½) of the plateau
///   height, located to ~1e-3 of a grid step by re-integrating the bracketing interval.
/// - *Unstable rate* λ: the largest real part of the eigenvalues of the full ODE's Jacobian at the
///   fixed point (power iteration on exp(Jτ)). The escape time grows like ln(1/ε)/λ with the
///   initial asymmetry ε, and λ ∝ η at small η, so t_esc ∝ 1/η there.
///
/// Reference numbers: `shared/reference/online-sgd.md` §1 (K = M = 2, η = 0.5: least risk over
/// t ∈ [100, 500] of an ε = 1e-9 curve 0.014652 with Q ≈ 0.375, C ≈ 0.321, R ≈ 0.416 there; risk
/// < 1e-3 first at t ≈ 758–759; K = M = 4 still on the plateau at t = 1000 with risk 0.0573). That
/// window measure is reported too (`PlateauCurve.windowRisk`): at t = 500 the curve is still
/// relaxing towards the fixed point along a slow stable direction, so it lies a few 1e-6 above the
/// plateau height proper.
public struct SaadSollaPlateaus: Reproduction {
    public let name = "saad-solla"
    public let title = "Saad & Solla plateaus of the soft committee machine: plateau height and escape time against η and K = M"
    public let reproduces = """
        The symmetric plateau of on-line learning in the erf soft committee machine (Saad & Solla, \
        Phys. Rev. E 52, 4225 (1995); Phys. Rev. Lett. 74, 4337 (1995)): its height as a function of the \
        learning rate η and the number of hidden units K = M, the escape time and its scaling \
        t_esc ≈ A + ln(1/ε)/λ(η) with λ ∝ η at small η, checked against the reference numbers of \
        shared/reference/online-sgd.md §1 and against finite-d online SGD.
        """

    public init() {}

    /// Risk below this fraction of the plateau height marks the escape.
    public static let escapeFraction = 0.5
    /// The reference's own escape marker (risk < 1e-3, `online-sgd.md` §1).
    public static let lowRisk = 1e-3
    /// Learning rates up to this value enter the small-η power-law fits of the escape time and λ.
    public static let smallLearningRates = 0.3
    /// The learning rate of the reference numbers, of the ε sweep and of the simulations.
    public static let referenceLearningRate = 0.5
    /// The window of the reference's plateau measure (least risk over t ∈ [100, 500], `online-sgd.md` §1).
    public static let referenceWindow = 100.0...500.0
    /// Every overlap symmetric to this absolute spread counts as "on the symmetric manifold".
    static let symmetricSpread = 1e-3
    /// Tight tolerances: the escape time is read off a curve that has spent hundreds of time units
    /// near a saddle.
    public static let odeOptions = ODEOptions(relativeTolerance: 1e-10, absoluteTolerance: 1e-12)

    /// The sizes of one run.
    public struct Configuration: Sendable, Hashable {
        /// K = M values.
        public var committees: [Int]
        public var learningRates: [Double]
        /// Size of the initial asymmetry of the theory curves: M = ε·N, Q = I + ε·(G + Gᵀ)/2.
        public var epsilon: Double
        /// ε values of the escape-time vs ln(1/ε) fit (at `referenceLearningRate`).
        public var epsilonSweep: [Double]
        public var simulatedCommittees: [Int]
        public var dimensions: [Int]
        public var seeds: Int
        public var masterSeed: UInt64
        public var quick: Bool

        public init(_ s: ReproductionSettings) {
            quick = s.quick
            masterSeed = s.masterSeed
            epsilon = 1e-9
            if s.quick {
                committees = [2]
                learningRates = [0.1, 0.2, 0.5, 1.0]
                epsilonSweep = [1e-3, 1e-6, 1e-9]
                simulatedCommittees = [2]
                dimensions = [64]
                seeds = 4
            } else {
                committees = [2, 3, 4]
                learningRates = [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.3]
                epsilonSweep = [1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-11, 1e-12]
                simulatedCommittees = [2, 3]
                dimensions = [500, 1000]
                seeds = 32
            }
            if let d = s.dimensions { dimensions = d }
            if let n = s.seeds { seeds = n }
        }
    }

    // MARK: - The problem

    /// The soft committee machine with K = M hidden units (erf, a = 1, P = I, square loss, n_b = 1).
    public static func committee(K: Int, learningRate eta: Double, time: Double, initialization: InitialCondition,
                                 times: TimeGrid) -> Experiment {
        Experiment(
            teacher: TeacherSpec(k: K, activation: .erf),
            student: StudentSpec(p: K, activation: .erf, secondLayerLearningRate: eta),
            training: TrainingSpec(loss: .square, learningRate: eta, batchSize: 1, time: time),
            initialization: initialization, output: OutputSpec(times: times))
    }

    /// The standard tiny-overlap start (`online-sgd.md` §1): M = ε·N, Q = I + ε·(G + Gᵀ)/2 with N, G
    /// i.i.d. standard normal K×K matrices drawn from `seed` (the same draws for every ε).
    public static func tinyOverlapStart(K: Int, epsilon: Double, seed: UInt64) -> (M: Matrix, Q: Matrix) {
        var rng = Xoshiro256PlusPlus(seed: seed)
        var M = Matrix(rows: K, cols: K), G = Matrix(rows: K, cols: K)
        for i in 0..<(K * K) { M.values[i] = epsilon * rng.nextStandardNormal() }
        for i in 0..<(K * K) { G.values[i] = rng.nextStandardNormal() }
        var Q = Matrix.identity(K)
        for j in 0..<K { for l in 0..<K { Q[j, l] += epsilon * 0.5 * (G[j, l] + G[l, j]) } }
        return (M, Q)
    }

    /// Overlaps on the symmetric manifold: every M_jr = R, Q_jj = Q, Q_jl = C (j ≠ l).
    static func symmetricOverlaps(K: Int, _ x: [Double]) -> Overlaps {
        var Q = Matrix(rows: K, cols: K, repeating: x[2])
        for j in 0..<K { Q[j, j] = x[1] }
        return Overlaps(M: Matrix(rows: K, cols: K, repeating: x[0]), Q: Q, P: .identity(K), a: Array(repeating: 1, count: K))
    }

    /// (mean M, mean Q_jj, mean Q_jl over j ≠ l) and the largest spread of any of the three groups.
    static func symmetricCoordinates(_ o: Overlaps) -> (x: [Double], spread: Double) {
        let K = o.p
        let m = o.M.values
        var diag: [Double] = [], off: [Double] = []
        for j in 0..<K { for l in 0..<K { if j == l { diag.append(o.Q[j, l]) } else { off.append(o.Q[j, l]) } } }
        func mean(_ v: [Double]) -> Double { v.isEmpty ? 0 : v.reduce(0, +) / Double(v.count) }
        func spread(_ v: [Double]) -> Double { (v.max() ?? 0) - (v.min() ?? 0) }
        return ([mean(m), mean(diag), mean(off)], max(spread(m), spread(diag), spread(off)))
    }

    // MARK: - The symmetric fixed point and its unstable rate

    /// The plateau: the symmetric fixed point of the ODE.
    public struct SymmetricPlateau: Sendable, Hashable {
        /// M_jr (all equal), Q_jj, Q_jl (j ≠ l).
        public var R: Double, Q: Double, C: Double
        /// The population risk there: the plateau height.
        public var risk: Double
        /// Largest |component| of the full right-hand side at the solution.
        public var residual: Double
        /// Largest real part of the eigenvalues of the full Jacobian there (> 0: a saddle).
        public var unstableRate: Double
    }

    /// Newton's method on the three symmetric equations dM_11/dt = dQ_11/dt = dQ_12/dt = 0 from
    /// `guess` = (R, Q, C); nil when it leaves the PSD cone or does not converge to 1e-13.
    static func symmetricFixedPoint(_ theory: OnlineSGDTheory, K: Int, guess: [Double]) -> SymmetricPlateau? {
        func F(_ x: [Double]) -> [Double]? {
            let o = symmetricOverlaps(K: K, x)
            guard o.jointCovariance.choleskyPSD(tolerance: 1e-14) != nil else { return nil }
            let d = theory.derivatives(o)
            return [d.dM[0, 0], d.dQ[0, 0], d.dQ[0, 1]]
        }
        var x = guess
        for _ in 0..<60 {
            guard let f = F(x) else { return nil }
            var J = Matrix(rows: 3, cols: 3)
            for c in 0..<3 {
                let h = 1e-7 * max(1, abs(x[c]))
                var xp = x, xm = x
                xp[c] += h
                xm[c] -= h
                guard let fp = F(xp), let fm = F(xm) else { return nil }
                for r in 0..<3 { J[r, c] = (fp[r] - fm[r]) / (2 * h) }
            }
            guard let dx = solveLinear(J, f.map { -$0 }) else { return nil }
            for i in 0..<3 { x[i] += dx[i] }
            if dx.map(abs).max()! < 1e-15 { break }
        }
        let o = symmetricOverlaps(K: K, x)
        guard let f = F(x), f.map(abs).max()! < 1e-13 else { return nil }
        let full = rightHandSide(theory, theory.state(of: o))
        return SymmetricPlateau(R: x[0], Q: x[1], C: x[2], risk: theory.risk(o), residual: full.map(abs).max()!,
                                unstableRate: unstableRate(theory, at: o))
    }

    static func rightHandSide(_ theory: OnlineSGDTheory, _ y: [Double]) -> [Double] {
        let problem = theory.problem
        var f = [Double](repeating: 0, count: y.count)
        y.withUnsafeBufferPointer { yp in f.withUnsafeMutableBufferPointer { fp in try? problem.rhs(0, yp, fp) } }
        return f
    }

    /// The largest real part of the eigenvalues of the ODE's Jacobian at `o` (central differences):
    /// the growth rate of the slowest-decaying (here: growing) mode, by power iteration on exp(Jτ).
    static func unstableRate(_ theory: OnlineSGDTheory, at o: Overlaps) -> Double {
        let y0 = theory.state(of: o)
        let n = y0.count
        var J = Matrix(rows: n, cols: n)
        for c in 0..<n {
            let h = 1e-6 * max(1, abs(y0[c]))
            var yp = y0, ym = y0
            yp[c] += h
            ym[c] -= h
            let fp = rightHandSide(theory, yp), fm = rightHandSide(theory, ym)
            for r in 0..<n { J[r, c] = (fp[r] - fm[r]) / (2 * h) }
        }
        let tau = 20 / theory.experiment.training.learningRate
        let E = exponential(tau * J)
        var x = (0..<n).map { 1 + 0.1 * Double($0 % 7) }
        var rate = Double.nan
        for _ in 0..<5000 {
            var z = [Double](repeating: 0, count: n)
            for r in 0..<n { for c in 0..<n { z[r] += E[r, c] * x[c] } }
            let norm = z.map { $0 * $0 }.reduce(0, +).squareRoot()
            guard norm > 0, norm.isFinite else { return .nan }
            let next = Foundation.log(norm) / tau
            x = z.map { $0 / norm }
            if abs(next - rate) < 1e-13 * max(1, abs(next)) { return next }
            rate = next
        }
        return rate
    }

    /// exp(A) by scaling and squaring with a Taylor polynomial.
    static func exponential(_ A: Matrix) -> Matrix {
        let n = A.rows
        let norm = (0..<n).map { r in (0..<n).map { abs(A[r, $0]) }.reduce(0, +) }.max() ?? 0
        let s = norm > 0.5 ? Int((Foundation.log2(norm / 0.5)).rounded(.up)) : 0
        let B = (1 / Foundation.pow(2, Double(s))) * A
        var E = Matrix.identity(n), term = Matrix.identity(n)
        for k in 1...20 {
            term = (1 / Double(k)) * (term * B)
            E = E + term
        }
        for _ in 0..<s { E = E * E }
        return E
    }

    /// Solves A x = b (Gaussian elimination with partial pivoting); nil when A is singular.
    static func solveLinear(_ A: Matrix, _ b: [Double]) -> [Double]? {
        let n = A.rows
        var a = A, x = b
        for col in 0..<n {
            let pivot = (col..<n).max { abs(a[$0, col]) < abs(a[$1, col]) }!
            guard abs(a[pivot, col]) > 1e-300 else { return nil }
            if pivot != col {
                for c in 0..<n { let t = a[col, c]; a[col, c] = a[pivot, c]; a[pivot, c] = t }
                x.swapAt(col, pivot)
            }
            for r in (col + 1)..<n {
                let f = a[r, col] / a[col, col]
                for c in col..<n { a[r, c] -= f * a[col, c] }
                x[r] -= f * x[col]
            }
        }
        for r in stride(from: n - 1, through: 0, by: -1) {
            var v = x[r]
            for c in (r + 1)..<n { v -= a[r, c] * x[c] }
            x[r] = v / a[r, r]
        }
        return x.allSatisfy(\.isFinite) ? x : nil
    }

    // MARK: - One theory curve through the plateau

    /// A d = ∞ curve from a tiny-overlap start, integrated until it has escaped the plateau.
    public struct PlateauCurve: Sendable {
        public var K: Int
        public var learningRate: Double
        public var epsilon: Double
        /// The experiment as integrated (horizon: the time reached).
        public var experiment: Experiment
        public var times: [Double]
        public var risks: [Double]
        /// Largest spread of the symmetric groups of overlaps (0 on the symmetric manifold).
        public var asymmetry: [Double]
        public var status: TrajectoryStatus
        public var message: String
        public var plateau: SymmetricPlateau?
        /// Risk and time at the flattest symmetric point (least |dR/dt| with asymmetry < 1e-3).
        public var flattestRisk: Double
        public var flattestTime: Double
        public var escapeTime: Double
        /// First t with risk < 1e-3 (the reference's marker); NaN if not reached.
        public var lowRiskTime: Double
        /// The reference's own plateau measure: the least risk on the grid over t ∈ [100, 500]
        /// (`online-sgd.md` §1), and the symmetric coordinates (R, Q, C) there.
        public var windowRisk: Double
        public var windowOverlaps: [Double]

        /// Linear interpolation of the risk at time t (NaN outside the curve).
        public func risk(at t: Double) -> Double {
            guard let i = times.firstIndex(where: { $0 >= t }) else { return .nan }
            if i == 0 { return times[0] == t ? risks[0] : .nan }
            let w = (t - times[i - 1]) / (times[i] - times[i - 1])
            return risks[i - 1] + w * (risks[i] - risks[i - 1])
        }
    }

    static let pointsPerChunk = 200
    static let maximumChunks = 40

    /// The length of one integration chunk: about the plateau's scale, 100·K/η.
    static func chunkLength(K: Int, learningRate eta: Double) -> Double { 100 * Double(K) / eta }

    /// Integrates from the ε start chunk by chunk, finds the plateau (unless `known`) and the escape,
    /// and stops once t ≥ 1.5 × the escape time (or after `maximumChunks` chunks).
    static func plateauCurve(K: Int, learningRate eta: Double, epsilon: Double, noiseSeed: UInt64,
                             known: SymmetricPlateau?) -> PlateauCurve {
        let start = tinyOverlapStart(K: K, epsilon: epsilon, seed: noiseSeed)
        let n = pointsPerChunk, L = chunkLength(K: K, learningRate: eta)
        var experiment = committee(K: K, learningRate: eta, time: L, initialization: .overlaps(M: start.M, Q: start.Q),
                                   times: .linear(count: n))
        let theory = OnlineSGDTheory(experiment)
        let problem = theory.problem
        func risk(_ y: [Double]) -> Double { theory.risk(theory.overlaps(fromState: y)) }
        var times = [0.0], states = [theory.state(of: theory.initialOverlaps)]
        var risks = [risk(states[0])]
        var plateau = known, escape = Double.nan
        var status = TrajectoryStatus.completed, message = ""
        var chunks = 0

        /// The first crossing of `level` after index 0, re-integrated on a fine grid inside the
        /// bracketing interval and interpolated linearly there.
        func crossing(_ level: Double) -> Double {
            guard let i = risks.firstIndex(where: { $0 < level }), i > 0 else { return .nan }
            let fine = (1...100).map { times[i - 1] + (times[i] - times[i - 1]) * Double($0) / 100 }
            let sol = integrate(problem, initial: states[i - 1], from: times[i - 1], times: fine, options: odeOptions)
            var (tPrev, rPrev) = (times[i - 1], risks[i - 1])
            for (t, y) in zip(sol.times, sol.states) {
                let r = risk(y)
                if r < level { return tPrev + (t - tPrev) * (rPrev - level) / (rPrev - r) }
                (tPrev, rPrev) = (t, r)
            }
            return times[i]
        }

        while chunks < maximumChunks {
            let t0 = times.last!
            let grid = (1...n).map { t0 + L * Double($0) / Double(n) }
            let sol = integrate(problem, initial: states.last!, from: t0, times: grid, options: odeOptions)
            chunks += 1
            for (t, y) in zip(sol.times, sol.states) {
                times.append(t)
                states.append(y)
                risks.append(risk(y))
            }
            if sol.status != .completed {
                (status, message) = (sol.status, sol.message)
                break
            }
            if plateau == nil, let i = flattestSymmetricIndex(theory, states, times, risks) {
                let guess = symmetricCoordinates(theory.overlaps(fromState: states[i])).x
                if let p = symmetricFixedPoint(theory, K: K, guess: guess),
                   max(abs(p.R - guess[0]), abs(p.Q - guess[1]), abs(p.C - guess[2])) < 0.02 {
                    plateau = p
                }
            }
            if let plateau, escape.isNaN { escape = crossing(escapeFraction * plateau.risk) }
            if escape.isFinite, times.last! >= 1.5 * escape { break }
        }
        if status == .completed, escape.isNaN {
            message = plateau == nil ? "no symmetric plateau found by t = \(Trajectory.format(times.last!))"
                : "still on the plateau at t = \(Trajectory.format(times.last!))"
        }
        let flat = flattestSymmetricIndex(theory, states, times, risks)
        let window = times.indices.filter { times[$0] >= referenceWindow.lowerBound && times[$0] <= referenceWindow.upperBound }
            .min { risks[$0] < risks[$1] }
        experiment.training.time = times.last!
        experiment.output.times = .linear(count: chunks * n)
        return PlateauCurve(
            K: K, learningRate: eta, epsilon: epsilon, experiment: experiment, times: times, risks: risks,
            asymmetry: states.map { symmetricCoordinates(theory.overlaps(fromState: $0)).spread },
            status: status, message: message, plateau: plateau,
            flattestRisk: flat.map { risks[$0] } ?? .nan, flattestTime: flat.map { times[$0] } ?? .nan,
            escapeTime: escape, lowRiskTime: crossing(lowRisk),
            windowRisk: window.map { risks[$0] } ?? .nan,
            windowOverlaps: window.map { symmetricCoordinates(theory.overlaps(fromState: states[$0])).x } ?? [.nan, .nan, .nan])
    }

    /// The interior grid point with the least |dR/dt| (central differences) among the points whose
    /// overlaps are still symmetric to `symmetricSpread`.
    static func flattestSymmetricIndex(_ theory: OnlineSGDTheory, _ states: [[Double]], _ times: [Double],
                                       _ risks: [Double]) -> Int? {
        guard times.count >= 3 else { return nil }
        var best: Int?, slope = Double.infinity
        for i in 1..<(times.count - 1) {
            let s = abs((risks[i + 1] - risks[i - 1]) / (times[i + 1] - times[i - 1]))
            guard s < slope, symmetricCoordinates(theory.overlaps(fromState: states[i])).spread < symmetricSpread else { continue }
            (best, slope) = (i, s)
        }
        return best
    }

    /// The first time a sampled curve falls below `level` (linear interpolation between samples).
    static func firstCrossing(_ times: [Double], _ values: [Double], level: Double) -> Double {
        guard let i = values.firstIndex(where: { $0 < level }), i > 0 else { return .nan }
        return times[i - 1] + (times[i] - times[i - 1]) * (values[i - 1] - level) / (values[i - 1] - values[i])
    }

    // MARK: - Fits

    /// A least-squares line with its name and the slope theory expects.
    public struct ScalingFit: Sendable {
        public var K: Int
        public var name: String
        public var x: String, y: String
        public var slope: Double, slopeStandardError: Double, intercept: Double
        public var expectedSlope: Double
        public var expectation: String
        public var points: Int
    }

    static func fit(K: Int, name: String, x: String, y: String, _ xs: [Double], _ ys: [Double], expected: Double,
                    expectation: String) -> ScalingFit? {
        let pairs = zip(xs, ys).filter { $0.0.isFinite && $0.1.isFinite }
        guard pairs.count >= 2 else { return nil }
        let f = SeedStatistics.linearFit(x: pairs.map(\.0), y: pairs.map(\.1))
        return ScalingFit(K: K, name: name, x: x, y: y, slope: f.slope, slopeStandardError: f.slopeStandardError,
                          intercept: f.intercept, expectedSlope: expected, expectation: expectation, points: pairs.count)
    }

    // MARK: - Finite d

    /// One simulated configuration against its theory (each seed's theory from its realised start).
    public struct SimulationComparison: Sendable {
        public var K: Int
        public var run: ComparisonRun
        /// Per seed: escape time of the simulation and of its theory curve (NaN: not escaped).
        public var simulationEscape: [Double]
        public var theoryEscape: [Double]

        /// Mean, standard error and standard deviation over seeds of (simulation − theory) escape
        /// time, over the seeds where both escaped.
        public var escapeDifference: (mean: Double, standardError: Double, standardDeviation: Double, seeds: Int) {
            let d = zip(simulationEscape, theoryEscape).map { $0 - $1 }.filter(\.isFinite)
            guard !d.isEmpty else { return (.nan, .nan, .nan, 0) }
            let s = SeedStatistics.meanAndStandardError(d)
            return (s.mean, s.standardError, s.standardError * Double(d.count).squareRoot(), d.count)
        }
    }

    // MARK: - The study

    public func run(_ settings: ReproductionSettings, progress: @escaping ReproductionProgress) throws -> ReproductionResult {
        try settings.validate()
        let started = Date()
        var adjusted = Configuration(settings)
        let eta0 = Self.referenceLearningRate
        if !adjusted.learningRates.contains(eta0) { adjusted.learningRates = (adjusted.learningRates + [eta0]).sorted() }
        let config = adjusted
        let largest = config.simulatedCommittees.max() ?? 2
        for d in config.dimensions where d < SimulationOptions.minimumDimension(p: largest, k: largest) {
            throw SpecError(field: "--dimensions", value: "\(d)",
                            reason: "must be ≥ \(SimulationOptions.minimumDimension(p: largest, k: largest)) for K = M = \(largest)")
        }
        let (epsilon, master) = (config.epsilon, config.masterSeed)

        // 1. Theory curves from the ε start, every (K, η), in parallel. The noise draws depend on K only.
        let jobs = config.committees.flatMap { K in config.learningRates.map { (K, $0) } }
        let curves = Reproductions.parallel(jobs, stage: "theory: plateau curves", progress) { job in
            Self.plateauCurve(K: job.0, learningRate: job.1, epsilon: epsilon,
                              noiseSeed: SeedSequence.seed(master: master, index: job.0), known: nil)
        }
        func curve(_ K: Int, _ eta: Double) -> PlateauCurve? { curves.first { $0.K == K && $0.learningRate == eta } }

        // 2. ε sweep at the reference learning rate (the same draws, scaled), escape measured
        //    against the plateau found above.
        let sweepJobs = config.committees.flatMap { K in config.epsilonSweep.map { (K, $0, curve(K, eta0)?.plateau) } }
        let sweep = Reproductions.parallel(sweepJobs, stage: "theory: ε sweep", progress) { job in
            Self.plateauCurve(K: job.0, learningRate: eta0, epsilon: job.1,
                              noiseSeed: SeedSequence.seed(master: master, index: job.0), known: job.2)
        }

        // 3. Fits.
        var fits: [ScalingFit] = []
        for K in config.committees {
            let s = sweep.filter { $0.K == K }
            let rate = curve(K, eta0)?.plateau?.unstableRate ?? .nan
            if let f = Self.fit(K: K, name: "escape vs ln(1/ε)", x: "ln(1/ε)", y: "t_esc", s.map { -Foundation.log($0.epsilon) },
                                s.map(\.escapeTime), expected: 1 / rate,
                                expectation: "1/λ at η = \(MarkdownTable.number(eta0))") { fits.append(f) }
            // The slope tends to 1/λ only as ε → 0: the same fit over the smaller half of the ε values.
            let tail = s.sorted { $0.epsilon < $1.epsilon }.prefix(s.count / 2)
            if tail.count >= 3, let f = Self.fit(K: K, name: "escape vs ln(1/ε), smaller half", x: "ln(1/ε)", y: "t_esc",
                                                 tail.map { -Foundation.log($0.epsilon) }, tail.map(\.escapeTime), expected: 1 / rate,
                                                 expectation: "1/λ at η = \(MarkdownTable.number(eta0))") { fits.append(f) }
            let small = curves.filter { $0.K == K && $0.learningRate <= Self.smallLearningRates }
            if let f = Self.fit(K: K, name: "escape vs η", x: "ln η", y: "ln t_esc", small.map { Foundation.log($0.learningRate) },
                                small.map { Foundation.log($0.escapeTime) }, expected: -1, expectation: "−1 as η → 0") { fits.append(f) }
            if let f = Self.fit(K: K, name: "unstable rate vs η", x: "ln η", y: "ln λ", small.map { Foundation.log($0.learningRate) },
                                small.map { Foundation.log($0.plateau?.unstableRate ?? .nan) }, expected: 1, expectation: "+1 as η → 0") { fits.append(f) }
        }

        // 4. Finite d: random initial weights, η = 0.5, each seed's theory from its realised start.
        var comparisons: [SimulationComparison] = []
        let dMax = config.dimensions.max()!
        for K in config.simulatedCommittees {
            guard let plateau = curve(K, eta0)?.plateau,
                  let f = fits.first(where: { $0.K == K && $0.name == "escape vs ln(1/ε)" }) else { continue }
            // Random weights start with an asymmetry of order 1/√d: escape near A + B·ln √d. Twice that, in steps of 10.
            let expected = f.intercept + f.slope * 0.5 * Foundation.log(Double(dMax))
            let horizon = max(50, (2 * expected / 10).rounded(.up) * 10)
            let experiment = Self.committee(K: K, learningRate: eta0, time: horizon, initialization: .random(scale: 1),
                                            times: .linear(count: 200))
            for (di, d) in config.dimensions.enumerated() {
                let stage = "simulate K = \(K), d = \(d), \(config.seeds) seeds"
                progress(stage, 0)
                let run = try ComparisonRun.run(experiment, dimension: d, seeds: config.seeds,
                                                masterSeed: SeedSequence.seed(master: config.masterSeed, index: 1000 + 10 * K + di),
                                                odeOptions: Self.odeOptions) { progress(stage, $0) }
                progress(stage, 1)
                let level = Self.escapeFraction * plateau.risk
                func escape(_ t: Trajectory) -> Double { Self.firstCrossing(t.times, t.column("risk")!, level: level) }
                comparisons.append(SimulationComparison(K: K, run: run,
                                                        simulationEscape: run.simulation.map(escape),
                                                        theoryEscape: run.theory.map(escape)))
            }
        }

        let seconds = Date().timeIntervalSince(started)
        return Self.files(config: config, curves: curves, sweep: sweep, fits: fits, comparisons: comparisons, seconds: seconds)
    }
}
