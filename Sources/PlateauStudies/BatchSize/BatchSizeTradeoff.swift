import Foundation
import PlateauCompare
import PlateauCore
import PlateauSimulation
import PlateauTheory

/// Batch size against time to weak recovery: online SGD on a single-index Hermite target, square
/// loss against correlation loss, from the exact one-step map (EQUATIONS.md §1.2–1.3) at d up to
/// 2³² and from the finite-d simulator at moderate d.
///
/// Problem: target y = He_ℓ(z1) (ℓ = `hermiteOrder` = 2), one spherical student neuron
/// f = He_ℓ(λ) (|w|² = d after every step, a = 1 fixed), noiseless, P = 1; the Wick route computes
/// every expectation exactly. The state is the single overlap m = M = cos(w, w*).
///
/// Definitions (stated again in the README this study writes):
/// - *Learning rate*: η = γ₀·n_b·d^{1−ℓ/2} (for ℓ = 2: η = γ₀·n_b, no d in it), γ₀ = `learningRatePerSample`.
///   The capped square-loss protocol uses η = γ₀·min(n_b, n_b*) with n_b* the batch size at which
///   the square loss's own recovery time is shortest (measured from the map at that d).
/// - *Recovery time* T: the first SGD step at which |m| exceeds `threshold`, located between the
///   bracketing steps by linear interpolation of ln|m| (so T is a real number of steps); samples n_b·T.
/// - *Transition* n_b*: the minimum of T(n_b) for the square loss (parabola through the three grid
///   points around the least T, in ln n_b); n_b^edge: the n_b above which one map step of the square
///   loss shrinks a tiny overlap, so it never recovers (bisection); n_b^×2: the first n_b at which the samples n_b·T exceed twice their
///   smallest-batch value (both losses).
///
/// Why ℓ = 2: the growth of m from a small start is linear in m (dm ∝ γ·4m), so T is logarithmic in
/// 1/m₀ and the recovery from a fixed m₀ takes T ∝ d/n_b steps: the map needs a few thousand steps per
/// point even at d = 2³², and the simulator reaches the transition n_b ~ d^{ℓ/2} = d with n_b·d ≲ 10⁷.
/// For ℓ = 3 T grows like √d/(γ m₀) and the transition sits at n_b ~ d^{3/2}: 10⁴–10⁶ map steps per
/// point and batches of 10⁴·d in the simulator.
public struct BatchSizeTradeoff: Reproduction {
    public let name = "batch-size"
    public let title = "Batch size against time to weak recovery: square vs correlation loss, He₂ target, exact map at d ≤ 2³² and finite-d SGD"
    public let reproduces = """
        The batch-size / time-complexity trade-off of one-pass SGD (Arnaboldi, Dandi, Krzakala, Loureiro, \
        Pesce, Stephan, "Online learning and information exponents: on the importance of batch size, and \
        time/complexity tradeoffs", ICML 2024, arXiv:2406.02157): with η ∝ n_b the number of SGD steps to \
        weak recovery falls like 1/n_b (the sample count n_b·T stays fixed) up to n_b ~ d^{ℓ/2}, beyond \
        which the square loss stops gaining (its self-interaction and noise take over) while the \
        correlation loss keeps speeding up. Single-index He₂ target (ℓ = 2), spherical He₂ neuron, \
        exact one-step map (d = 2¹⁰…2³²) and finite-d simulation.
        """

    public init() {}

    /// One He_ℓ problem of the study: the target He_ℓ(z1), a spherical He_ℓ neuron, η = γ₀·n_b·d^{1−ℓ/2},
    /// and the start m₀ = c·d^{−κ}.
    public struct Problem: Sendable, Hashable {
        /// ℓ: information exponent of the target He_ℓ and degree of the student activation.
        public var order: Int
        /// γ₀ in η = γ₀·n_b·d^{1−ℓ/2}.
        public var learningRatePerSample: Double
        /// m₀ = `initialOverlapScale`·d^{−`initialOverlapExponent`}.
        public var initialOverlapScale: Double
        public var initialOverlapExponent: Double

        /// ℓ = 2, the study with the simulator: m₀ = 0.1 fixed (so the map's d → ∞ limit is the
        /// mean-field curve and the simulator's fluctuations around it shrink like d^{-1/2}: see the
        /// README), γ₀ = 0.05, below the square loss's small-batch stability edge 1/6.
        public static let he2 = Problem(order: 2, learningRatePerSample: 0.05, initialOverlapScale: 0.1, initialOverlapExponent: 0)
        /// ℓ = 3, exact map only: m₀ = d^{−1/2}, the size of a random start, so that the escape takes
        /// T ≈ √d/(18γ) steps and the correlation loss's linear speed-up lasts to n_b ~ d^{ℓ−1} = d²;
        /// γ₀ = 0.005, below the square loss's small-batch stability edge at m ~ d^{−1/2},
        /// γ₀ < 2·18/3456 ≈ 0.0104 (gain 18γm against the noise ½γ²(d/n_b)Ξ, Ξ = 3456 at m = 0).
        public static let he3 = Problem(order: 3, learningRatePerSample: 0.005, initialOverlapScale: 1, initialOverlapExponent: 0.5)

        public func initialOverlap(_ d: Int) -> Double {
            initialOverlapScale * Foundation.pow(Double(d), -initialOverlapExponent)
        }

        /// d^{ℓ/2}, the scale of the square loss's transition.
        public func transitionScale(_ d: Int) -> Double { Foundation.pow(Double(d), Double(order) / 2) }

        /// The overlap at which the one-step gain decides recovery: for ℓ = 2 the gain does not depend
        /// on m to leading order (a tiny m = 10⁻⁸); for ℓ ≥ 3 it grows with m, so at the start m₀.
        func edgeOverlap(_ d: Int) -> Double { order == 2 ? 1e-8 : initialOverlap(d) }

        /// The step scale of the map's budget (40 × this + 200 steps): for ℓ = 2, d/η (the small-batch
        /// recovery time is ln(m_th/m₀)/(4γ) ≈ 0.4·d/η); for ℓ ≥ 3, the leading-order escape time from m₀,
        /// 1/(ℓ·ℓ!·γ·m₀^{ℓ−2}) with γ = η/d.
        func budgetScale(_ d: Int, learningRate eta: Double) -> Double {
            if order == 2 { return Double(d) / eta }
            let gamma = eta / Double(d)
            let factorial = (1...order).reduce(1.0) { $0 * Double($1) }
            return 1 / (Double(order) * factorial * gamma * Foundation.pow(initialOverlap(d), Double(order - 2)))
        }
    }

    /// The ℓ = 2 problem's constants (the simulated study).
    public static let hermiteOrder = Problem.he2.order
    /// Weak recovery: |m| above this.
    public static let threshold = 0.5
    public static let initialOverlap = Problem.he2.initialOverlapScale
    public static let learningRatePerSample = Problem.he2.learningRatePerSample
    /// Family-wise level of the map-vs-simulator verdicts (Bonferroni over the compared rows).
    public static let alpha = 0.01

    /// How the learning rate follows the batch size, and which loss.
    public enum TrainingRule: String, Sendable, Hashable, CaseIterable {
        /// Square loss, η = γ₀ n_b.
        case square
        /// Correlation loss, η = γ₀ n_b.
        case correlation
        /// Square loss, η = γ₀ min(n_b, n_b*): the learning rate stops growing where the square loss stops gaining.
        case squareCapped = "square-capped"

        public var loss: Loss { self == .correlation ? .correlation : .square }
    }

    /// The sizes of one run.
    public struct Configuration: Sendable, Hashable {
        /// Dimensions of the exact-map sweep (the scaling fits use these).
        public var mapDimensions: [Int]
        /// Batch sizes of the map sweep as n_b/d^{ℓ/2} (at each d, n_b = round(x·d^{ℓ/2})).
        public var ratios: [Double]
        /// Simulated dimensions (the map also runs at each, for the comparison).
        public var dimensions: [Int]
        /// Simulated batch sizes as n_b/d^{ℓ/2}.
        public var simulatedRatios: [Double]
        public var seeds: Int
        public var masterSeed: UInt64
        public var quick: Bool
        /// The ℓ = 3 exact-map sweep: dimensions and n_b/d^{3/2}.
        public var cubicDimensions: [Int]
        public var cubicRatios: [Double]

        public init(_ s: ReproductionSettings) {
            quick = s.quick
            masterSeed = s.masterSeed
            if s.quick {
                mapDimensions = [1 << 12, 1 << 20, 1 << 32]
                ratios = (-12...8).map { Foundation.pow(2, Double($0) / 2) }
                dimensions = [1024]
                simulatedRatios = [1.0 / 16, 1.0 / 4]
                seeds = 16
                cubicDimensions = [1 << 8, 1 << 12, 1 << 16]
                cubicRatios = (-4...12).map { Foundation.pow(2, Double($0)) }
            } else {
                mapDimensions = [1 << 12, 1 << 16, 1 << 20, 1 << 24, 1 << 28, 1 << 32]
                ratios = (-32...24).map { Foundation.pow(2, Double($0) / 4) }
                dimensions = [256, 1024]
                simulatedRatios = [1.0 / 64, 1.0 / 16, 1.0 / 4, 1, 2, 4, 8]
                seeds = 32
                cubicDimensions = [1 << 10, 1 << 12, 1 << 14, 1 << 16, 1 << 18, 1 << 20]
                cubicRatios = (-6...34).map { Foundation.pow(2, Double($0) / 2) }
            }
            if let d = s.dimensions { dimensions = d }
            if let n = s.seeds { seeds = n }
        }
    }

    // MARK: - The problem

    /// d^{ℓ/2}, the scale of the transition.
    static func transitionScale(_ d: Int, _ problem: Problem = .he2) -> Double { problem.transitionScale(d) }

    /// The batch size n_b = round(x·d^{ℓ/2}) (at least 1).
    static func batchSize(ratio x: Double, dimension d: Int, _ problem: Problem = .he2) -> Int {
        max(1, Int((x * transitionScale(d, problem)).rounded()))
    }

    /// η = γ₀·n_b·d^{1−ℓ/2}.
    static func learningRate(batchSize nb: Double, dimension d: Int, _ problem: Problem = .he2) -> Double {
        problem.learningRatePerSample * nb * Foundation.pow(Double(d), 1 - Double(problem.order) / 2)
    }

    /// The He_ℓ target, spherical He_ℓ neuron, `loss`, learning rate `eta`, batch `nb`, from m = m₀,
    /// `steps` SGD steps at dimension d, recorded at every step.
    public static func experiment(loss: Loss, dimension d: Int, batchSize nb: Int, learningRate eta: Double,
                                  steps: Int, times: TimeGrid? = nil, problem: Problem = .he2) -> Experiment {
        let link = try! Formula(parsing: "He\(problem.order)(z1)", variables: .target(k: 1))
        let horizon = Double(steps) / Double(d)
        return Experiment(
            teacher: TeacherSpec(link: link),
            student: StudentSpec(p: 1, activation: .hermite(problem.order), spherical: true),
            training: TrainingSpec(loss: loss, learningRate: eta, batchSize: nb, time: horizon),
            initialization: .overlaps(M: Matrix(rows: 1, cols: 1, repeating: problem.initialOverlap(d)), Q: .identity(1)),
            output: OutputSpec(times: times ?? .list((0...steps).map { Double($0) / Double(d) })))
    }

    /// The first step at which |m| exceeds `threshold`, interpolated linearly in ln|m| between the
    /// bracketing steps; +∞ when it never does. `m[s]` is the overlap after s steps.
    public static func recoveryTime(_ m: [Double]) -> Double {
        guard let s = m.firstIndex(where: { abs($0) > threshold }) else { return .infinity }
        guard s > 0 else { return 0 }
        let (a, b) = (Foundation.log(abs(m[s - 1])), Foundation.log(abs(m[s])))
        return Double(s - 1) + (Foundation.log(threshold) - a) / (b - a)
    }

    /// One point of the exact-map sweep.
    public struct MapPoint: Sendable {
        public var dimension: Int
        public var protocolName: TrainingRule
        public var batchSize: Int
        public var learningRate: Double
        /// Steps to recovery (+∞: none within the step budget, or m collapsed).
        public var steps: Double
        /// |m| after each step, up to the recovery step + 1 (or the budget).
        public var overlaps: [Double]
        public var problem: Problem = .he2
        public var ratio: Double { Double(batchSize) / problem.transitionScale(dimension) }
        public var samples: Double { Double(batchSize) * steps }
    }

    /// Iterates the exact one-step map until |m| > threshold (one more step is kept), |m| < m₀/10⁴
    /// (no recovery), or the budget is spent: 40·d/η + 200 steps for ℓ = 2 (60 times the small-batch
    /// recovery time), 40 times the leading-order escape time + 200 for ℓ ≥ 3. The cost of a step does
    /// not depend on d.
    static func mapRecovery(_ protocolName: TrainingRule, dimension d: Int, batchSize nb: Int, learningRate eta: Double,
                            problem: Problem = .he2) -> MapPoint {
        let budget = Int(min(5e6, 40 * problem.budgetScale(d, learningRate: eta) + 200))
        let m0 = problem.initialOverlap(d)
        let e = experiment(loss: protocolName.loss, dimension: d, batchSize: nb, learningRate: eta, steps: 1, times: .list([0]),
                           problem: problem)
        let map = OnlineSGDMap(OnlineSGDTheory(e), dimension: Double(d))
        let iteration = OnlineSGDMap.Iteration(map, from: map.theory.initialOverlaps)
        var m = [iteration.cosine(0, 0)]
        while m.count <= budget {
            iteration.advance()
            let c = iteration.cosine(0, 0)
            guard c.isFinite else { break }
            m.append(c)
            if abs(c) > threshold || abs(c) < m0 * 1e-4 { break }
        }
        return MapPoint(dimension: d, protocolName: protocolName, batchSize: nb, learningRate: eta,
                        steps: recoveryTime(m), overlaps: m.map(abs), problem: problem)
    }

    /// The one-step gain m'/m of the square loss (η = γ₀n_b) at the problem's edge overlap (ℓ = 2: a
    /// tiny m = 10⁻⁸; ℓ ≥ 3: m₀).
    static func smallOverlapGain(dimension d: Int, batchSize nb: Double, problem: Problem = .he2) -> Double {
        let n = Int(nb.rounded())
        let e = experiment(loss: .square, dimension: d, batchSize: n, learningRate: learningRate(batchSize: Double(n), dimension: d, problem),
                           steps: 1, times: .list([0]), problem: problem)
        let map = OnlineSGDMap(OnlineSGDTheory(e), dimension: Double(d))
        var o = map.theory.initialOverlaps
        let m = problem.edgeOverlap(d)
        o.M[0, 0] = m
        return map.step(o).cosine(0, 0) / m
    }

    /// The n_b at which the square loss's one-step gain at a tiny overlap falls to 1 (bisection in
    /// ln n_b to one batch): above it the map never leaves m ≈ 0. Leading order: n_b/d = (1 − 6γ₀)/(2γ₀) for ℓ = 2.
    static func recoveryEdge(dimension d: Int, problem: Problem = .he2) -> Double {
        var lo = max(1, transitionScale(d, problem) / 1024), hi = transitionScale(d, problem) * 1024
        guard smallOverlapGain(dimension: d, batchSize: lo, problem: problem) > 1,
              smallOverlapGain(dimension: d, batchSize: hi, problem: problem) < 1 else { return .nan }
        while hi - lo > 1 {
            let mid = (lo * hi).squareRoot().rounded()
            guard mid > lo, mid < hi else { break }
            if smallOverlapGain(dimension: d, batchSize: mid, problem: problem) > 1 { lo = mid } else { hi = mid }
        }
        return hi
    }

    /// The map sweep at one dimension: square and correlation over `ratios`, then the transition
    /// n_b* of the square loss, then the capped square loss above it.
    static func mapSweep(dimension d: Int, ratios: [Double], problem: Problem = .he2) -> (points: [MapPoint], transition: Transition) {
        let sizes = Array(Set(ratios.map { batchSize(ratio: $0, dimension: d, problem) })).sorted()
        var points: [MapPoint] = []
        for p in [TrainingRule.square, .correlation] {
            for nb in sizes {
                points.append(mapRecovery(p, dimension: d, batchSize: nb, learningRate: learningRate(batchSize: Double(nb), dimension: d, problem),
                                          problem: problem))
            }
        }
        let transition = Transition(dimension: d, square: points.filter { $0.protocolName == .square },
                                    correlation: points.filter { $0.protocolName == .correlation }, problem: problem)
        let capSize = transition.bestGridBatchSize
        let capRate = learningRate(batchSize: Double(capSize), dimension: d, problem)
        for nb in sizes {
            if nb <= capSize, let same = points.first(where: { $0.protocolName == .square && $0.batchSize == nb }) {
                var copy = same
                copy.protocolName = .squareCapped
                points.append(copy)
            } else {
                points.append(mapRecovery(.squareCapped, dimension: d, batchSize: nb, learningRate: capRate, problem: problem))
            }
        }
        return (points, transition)
    }

    // MARK: - Transitions and fits

    /// Where the linear speed-up ends, at one dimension (from the map).
    public struct Transition: Sendable {
        public var dimension: Int
        /// Minimum of T(n_b) for the square loss: parabola in ln n_b through the least grid point and its neighbours.
        public var squareBest: Double
        public var squareLeastSteps: Double
        /// The grid batch size with the least T (the capped protocol's cap).
        public var bestGridBatchSize: Int
        /// The edge of recovery of the square loss (η = γ₀n_b): the n_b above which one step of the map
        /// shrinks a small overlap (`recoveryEdge`); NaN if none below 2¹⁰·d^{ℓ/2}.
        public var squareEdge: Double
        /// First grid n_b with n_b·T > 2 × the smallest-batch value, per loss.
        public var squareDoubling: Double
        public var correlationDoubling: Double
        /// Least T of the correlation loss over the grid (its largest n_b).
        public var correlationLeastSteps: Double

        init(dimension: Int, square: [MapPoint], correlation: [MapPoint], problem: Problem = .he2) {
            self.dimension = dimension
            let sq = square.sorted { $0.batchSize < $1.batchSize }
            let finite = sq.indices.filter { sq[$0].steps.isFinite }
            let i = finite.min { sq[$0].steps < sq[$1].steps } ?? 0
            bestGridBatchSize = sq[i].batchSize
            squareLeastSteps = sq[i].steps
            if i > 0, i + 1 < sq.count, sq[i + 1].steps.isFinite {
                let x = [i - 1, i, i + 1].map { Foundation.log(Double(sq[$0].batchSize)) }
                let y = [i - 1, i, i + 1].map { Foundation.log(sq[$0].steps) }
                // Vertex of the parabola through the three points (x[1] is the least).
                let num = (x[1] - x[0]) * (x[1] - x[0]) * (y[1] - y[2]) - (x[1] - x[2]) * (x[1] - x[2]) * (y[1] - y[0])
                let den = (x[1] - x[0]) * (y[1] - y[2]) - (x[1] - x[2]) * (y[1] - y[0])
                let vertex = den != 0 ? x[1] - 0.5 * num / den : x[1]
                squareBest = Foundation.exp(min(max(vertex, x[0]), x[2]))
            } else {
                squareBest = Double(sq[i].batchSize)
            }
            squareEdge = BatchSizeTradeoff.recoveryEdge(dimension: dimension, problem: problem)
            func doubling(_ pts: [MapPoint]) -> Double {
                let s = pts.sorted { $0.batchSize < $1.batchSize }
                guard let first = s.first, first.samples.isFinite else { return .nan }
                return s.first { !($0.samples <= 2 * first.samples) }.map { Double($0.batchSize) } ?? .nan
            }
            squareDoubling = doubling(square)
            correlationDoubling = doubling(correlation)
            correlationLeastSteps = correlation.map(\.steps).filter(\.isFinite).min() ?? .nan
        }
    }

    /// A least-squares line with what theory expects of its slope.
    public struct ScalingFit: Sendable {
        public var name: String
        public var dimension: Int?
        public var protocolName: String
        public var source: String
        public var x: String, y: String
        public var slope: Double, slopeStandardError: Double, intercept: Double
        public var expectedSlope: Double
        public var points: Int
        /// ℓ of the problem fitted.
        public var order: Int = 2
    }

    /// Ordinary least squares (deterministic points: the slope's standard error measures curvature).
    static func fit(_ name: String, dimension: Int?, protocolName: String, source: String, x: String, y: String,
                    _ xs: [Double], _ ys: [Double], expected: Double) -> ScalingFit? {
        let pairs = zip(xs, ys).filter { $0.0.isFinite && $0.1.isFinite }
        guard pairs.count >= 3 else { return nil }
        let f = SeedStatistics.linearFit(x: pairs.map(\.0), y: pairs.map(\.1))
        return ScalingFit(name: name, dimension: dimension, protocolName: protocolName, source: source, x: x, y: y,
                          slope: f.slope, slopeStandardError: f.slopeStandardError, intercept: f.intercept,
                          expectedSlope: expected, points: pairs.count)
    }

    /// Weighted least squares with known standard errors of y (simulator means): the slope's standard
    /// error is √(1/Σw(x − x̄_w)²), w = 1/se², from the seed noise alone.
    static func weightedFit(_ name: String, dimension: Int, protocolName: String, x: String, y: String,
                            _ xs: [Double], _ ys: [Double], _ se: [Double], expected: Double) -> ScalingFit? {
        let rows = (0..<xs.count).filter { xs[$0].isFinite && ys[$0].isFinite && se[$0].isFinite && se[$0] > 0 }
        guard rows.count >= 2 else { return nil }
        let w = rows.map { 1 / (se[$0] * se[$0]) }, X = rows.map { xs[$0] }, Y = rows.map { ys[$0] }
        let W = w.reduce(0, +)
        let xm = zip(w, X).map { $0 * $1 }.reduce(0, +) / W, ym = zip(w, Y).map { $0 * $1 }.reduce(0, +) / W
        let sxx = (0..<w.count).map { w[$0] * (X[$0] - xm) * (X[$0] - xm) }.reduce(0, +)
        let sxy = (0..<w.count).map { w[$0] * (X[$0] - xm) * (Y[$0] - ym) }.reduce(0, +)
        let slope = sxy / sxx
        return ScalingFit(name: name, dimension: dimension, protocolName: protocolName, source: "simulation", x: x, y: y,
                          slope: slope, slopeStandardError: (1 / sxx).squareRoot(), intercept: ym - slope * xm,
                          expectedSlope: expected, points: rows.count)
    }

    /// The exact map's fits for one problem: ln T against ln n_b below the transition (n_b ≤ n_b*/10),
    /// per d and loss (expected −1); the transitions against ln d over `dimensions` (square: ℓ/2;
    /// correlation's n_b^×2: ℓ − 1, where the escape from m₀ = c·d^{−κ} takes T ∝ d^{κ(ℓ−2)}·d^{ℓ/2}/n_b
    /// steps, so its linear speed-up lasts until T ~ 1, n_b ~ d^{ℓ/2 + κ(ℓ−2)} = d^{ℓ−1} for κ = ½ or ℓ = 2);
    /// the least T of the square loss (d^{κ(ℓ−2)}); the samples at the smallest n_b (d^{ℓ/2 + κ(ℓ−2)}).
    static func mapFits(points: [MapPoint], transitions: [Transition], dimensions: [Int], problem: Problem) -> [ScalingFit] {
        var fits: [ScalingFit] = []
        for t in transitions {
            let limit = t.squareBest / 10
            for p in [TrainingRule.square, .correlation] {
                let pts = points.filter { $0.dimension == t.dimension && $0.protocolName == p && Double($0.batchSize) <= limit }
                if let f = fit("ln T vs ln n_b below the transition", dimension: t.dimension, protocolName: p.rawValue, source: "map",
                               x: "ln n_b", y: "ln T", pts.map { Foundation.log(Double($0.batchSize)) },
                               pts.map { Foundation.log($0.steps) }, expected: -1) { fits.append(f) }
            }
        }
        let scaling = transitions.filter { dimensions.contains($0.dimension) }
        let lnD = scaling.map { Foundation.log(Double($0.dimension)) }
        let l = Double(problem.order), half = l / 2, escape = problem.initialOverlapExponent * (l - 2)
        let transitionFits: [(String, String, [Double], Double)] = [
            ("square", "ln n_b* (least T)", scaling.map(\.squareBest), half),
            ("square", "ln n_b^edge (no recovery above)", scaling.map(\.squareEdge), half),
            ("square", "ln n_b^×2 (samples doubled)", scaling.map(\.squareDoubling), half),
            ("correlation", "ln n_b^×2 (samples doubled)", scaling.map(\.correlationDoubling), half + escape),
        ]
        for (p, y, values, expected) in transitionFits {
            if let f = fit("transition vs d", dimension: nil, protocolName: p, source: "map", x: "ln d", y: y, lnD,
                           values.map { Foundation.log($0) }, expected: expected) { fits.append(f) }
        }
        if let f = fit("least T vs d", dimension: nil, protocolName: "square", source: "map", x: "ln d", y: "ln T_min", lnD,
                       scaling.map { Foundation.log($0.squareLeastSteps) }, expected: escape) { fits.append(f) }
        // Samples at the smallest batch against d: n_b·T ∝ d^{ℓ/2 + κ(ℓ−2)}.
        let smallest = scaling.compactMap { t in
            points.filter { $0.dimension == t.dimension && $0.protocolName == .square }.min { $0.batchSize < $1.batchSize }?.samples
        }
        if smallest.count == lnD.count,
           let f = fit("samples vs d (smallest n_b)", dimension: nil, protocolName: "square", source: "map", x: "ln d", y: "ln n_b·T",
                       lnD, smallest.map { Foundation.log($0) }, expected: half + escape) { fits.append(f) }
        return fits.map { var f = $0; f.order = problem.order; return f }
    }

    // MARK: - Finite d

    /// One simulated (d, protocol, n_b): per-seed recovery times against the map at the same d.
    public struct SimulatedPoint: Sendable {
        public var dimension: Int
        public var protocolName: TrainingRule
        public var batchSize: Int
        public var learningRate: Double
        public var horizonSteps: Int
        public var seeds: [UInt64]
        /// Per seed: steps to recovery (+∞: not within the horizon).
        public var steps: [Double]
        /// Mean and standard error of |m| over seeds after each step (for the curves).
        public var meanOverlap: [Double]
        public var overlapStandardError: [Double]
        public var map: MapPoint
        public var experiment: Experiment

        public var recovered: Int { steps.filter(\.isFinite).count }
        /// Mean ± SE over seeds (NaN unless every seed recovered within the horizon).
        public var statistics: (mean: Double, standardError: Double, standardDeviation: Double) {
            guard recovered == steps.count, steps.count >= 2 else { return (.nan, .nan, .nan) }
            let s = SeedStatistics.meanAndStandardError(steps)
            return (s.mean, s.standardError, s.standardError * Double(steps.count).squareRoot())
        }
    }

    /// Simulates `seeds` seeds at one (d, protocol, n_b) for a horizon of 2·T_map + 6 steps (or 12
    /// steps when the map does not recover).
    static func simulate(_ map: MapPoint, seeds: Int, masterSeed: UInt64, progress: (@Sendable (Double) -> Void)?) throws -> SimulatedPoint {
        let d = map.dimension
        let horizon = map.steps.isFinite ? Int((2 * map.steps).rounded(.up)) + 6 : 12
        let e = experiment(loss: map.protocolName.loss, dimension: d, batchSize: map.batchSize, learningRate: map.learningRate,
                           steps: horizon)
        let options = SimulationOptions(dimension: d, times: e.recordTimes)
        let results = try OnlineSGDSimulator.run(e, options: options, masterSeed: masterSeed, count: seeds, progress: progress)
        let curves = results.map { r in r.overlaps.map { abs($0.cosine(0, 0)) } }
        let length = curves.map(\.count).min() ?? 0
        var mean: [Double] = [], se: [Double] = []
        for s in 0..<length {
            let x = SeedStatistics.meanAndStandardError(curves.map { $0[s] })
            mean.append(x.mean)
            se.append(x.standardError)
        }
        return SimulatedPoint(dimension: d, protocolName: map.protocolName, batchSize: map.batchSize, learningRate: map.learningRate,
                              horizonSteps: horizon, seeds: results.map(\.seed), steps: curves.map(recoveryTime),
                              meanOverlap: mean, overlapStandardError: se, map: map, experiment: e)
    }

    // MARK: - The study

    public func run(_ settings: ReproductionSettings, progress: @escaping ReproductionProgress) throws -> ReproductionResult {
        try settings.validate()
        let started = Date()
        let config = Configuration(settings)
        for d in config.dimensions {
            let largest = Self.batchSize(ratio: config.simulatedRatios.max()!, dimension: d)
            if largest.multipliedReportingOverflow(by: d).partialValue > 1 << 27 {
                throw SpecError(field: "--dimensions", value: "\(d)",
                                reason: "n_b·d reaches \(largest)·\(d) at n_b/d^{ℓ/2} = \(config.simulatedRatios.max()!); the batch-size study simulates d ≤ 4096")
            }
        }

        // 1. The exact map at every dimension (map sweep and simulated dimensions), in parallel.
        let mapDims = Array(Set(config.mapDimensions + config.dimensions)).sorted()
        let sweeps = Reproductions.parallel(mapDims, stage: "exact map: recovery time against n_b", progress) { d in
            Self.mapSweep(dimension: d, ratios: config.ratios)
        }
        let mapPoints = sweeps.flatMap(\.points)
        let transitions = sweeps.map(\.transition)

        // 2. The simulator at the simulated dimensions, against the map at the same d.
        var simulated: [SimulatedPoint] = []
        for (di, d) in config.dimensions.enumerated() {
            guard let t = transitions.first(where: { $0.dimension == d }) else { continue }
            for (pi, p) in TrainingRule.allCases.enumerated() {
                for (xi, x) in config.simulatedRatios.enumerated() {
                    let nb = Self.batchSize(ratio: x, dimension: d)
                    // The capped protocol differs from the square loss only above its cap.
                    if p == .squareCapped && nb <= t.bestGridBatchSize { continue }
                    let eta = p == .squareCapped ? Self.learningRate(batchSize: Double(t.bestGridBatchSize), dimension: d)
                        : Self.learningRate(batchSize: Double(nb), dimension: d)
                    let map = mapPoints.first { $0.dimension == d && $0.protocolName == p && $0.batchSize == nb }
                        ?? Self.mapRecovery(p, dimension: d, batchSize: nb, learningRate: eta)
                    let stage = "simulate d = \(d), \(p.rawValue), n_b = \(nb), \(config.seeds) seeds"
                    progress(stage, 0)
                    let point = try Self.simulate(map, seeds: config.seeds,
                                                  masterSeed: SeedSequence.seed(master: config.masterSeed, index: 100_000 * di + 1000 * pi + xi)) {
                        progress(stage, $0)
                    }
                    progress(stage, 1)
                    simulated.append(point)
                }
            }
        }

        // 3. Fits: ln T against ln n_b below the transition (n_b ≤ n_b*/10), per d and loss; the
        //    transitions against ln d across the map dimensions.
        var fits = Self.mapFits(points: mapPoints, transitions: transitions, dimensions: config.mapDimensions, problem: .he2)
        for d in config.dimensions {
            guard let t = transitions.first(where: { $0.dimension == d }) else { continue }
            for p in [TrainingRule.square, .correlation] {
                let pts = simulated.filter { $0.dimension == d && $0.protocolName == p && Double($0.batchSize) <= t.squareBest / 10 }
                let stats = pts.map(\.statistics)
                // ln of a mean: its standard error is SE/mean.
                if let f = Self.weightedFit("ln T vs ln n_b below the transition", dimension: d, protocolName: p.rawValue,
                                            x: "ln n_b", y: "ln mean T", pts.map { Foundation.log(Double($0.batchSize)) },
                                            stats.map { Foundation.log($0.mean) }, stats.map { $0.standardError / $0.mean },
                                            expected: -1) { fits.append(f) }
            }
        }

        // 4. ℓ = 3 (He₃ target and neuron, m₀ = d^{−1/2}), exact map only.
        let cubic = Reproductions.parallel(config.cubicDimensions, stage: "exact map, ℓ = 3: recovery time against n_b", progress) { d in
            Self.mapSweep(dimension: d, ratios: config.cubicRatios, problem: .he3)
        }
        let cubicPoints = cubic.flatMap(\.points), cubicTransitions = cubic.map(\.transition)
        fits += Self.mapFits(points: cubicPoints, transitions: cubicTransitions, dimensions: config.cubicDimensions, problem: .he3)

        let seconds = Date().timeIntervalSince(started)
        return Self.files(config: config, mapPoints: mapPoints, transitions: transitions, simulated: simulated, fits: fits,
                          cubicPoints: cubicPoints, cubicTransitions: cubicTransitions, seconds: seconds)
    }
}
