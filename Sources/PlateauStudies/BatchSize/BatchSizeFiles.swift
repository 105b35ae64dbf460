import Foundation
import PlateauCompare
import PlateauCore

/// The files of the `batch-size` reproduction: CSVs, specs, notebook, README and the stdout summary.
extension BatchSizeTradeoff {
    static func label(_ x: Double) -> String { String(format: "%g", x) }

    /// d as a power of two where it is one ("2^20"), else the integer.
    static func dimensionLabel(_ d: Int) -> String {
        d > 0 && d & (d - 1) == 0 && d >= 1 << 12 ? "2^\(d.trailingZeroBitCount)" : "\(d)"
    }

    /// Leading order in m → 0 of the map for ℓ = 2 with η = γ₀ n_b (γ = η/d, x = n_b/d): the square
    /// loss multiplies m by 1/√((1 − 4γ)² + 48γ²/x) per step, which exceeds 1 only for
    /// x < (1 − 6γ₀)/(2γ₀) and is largest at x = (1 − 6γ₀)/(4γ₀); the correlation loss multiplies it
    /// by (1 + 4γ)/√(1 + 8γ²/x), which grows without bound (≈ √(2x)).
    static var leadingOrderBest: Double { (1 - 6 * learningRatePerSample) / (4 * learningRatePerSample) }
    static var leadingOrderFailure: Double { (1 - 6 * learningRatePerSample) / (2 * learningRatePerSample) }

    static func files(config: Configuration, mapPoints: [MapPoint], transitions: [Transition], simulated: [SimulatedPoint],
                      fits: [ScalingFit], cubicPoints: [MapPoint], cubicTransitions: [Transition], seconds: Double) -> ReproductionResult {
        var result = ReproductionResult()
        let fmt = { (x: Double) in MarkdownTable.number(x, 4) }

        // Agreement: the map's T against the simulator's mean over seeds, Bonferroni over the rows compared.
        let compared = simulated.filter { $0.map.steps.isFinite && $0.statistics.mean.isFinite }
        let z = SeedStatistics.criticalValue(alpha: alpha, comparisons: compared.count, seeds: config.seeds)
        func verdict(_ s: SimulatedPoint) -> (deviation: Double, agrees: String) {
            if !s.map.steps.isFinite { return (.nan, s.recovered == 0 ? "true" : "false") }
            let st = s.statistics
            guard st.mean.isFinite else { return (.nan, "false") }
            let dev = (st.mean - s.map.steps) / st.standardError
            return (dev, abs(dev) <= z ? "true" : "false")
        }

        // recovery_times.csv: every map point; simulator columns where simulated.
        var times = CSVTable(columns: [
            "d", "loss", "protocol", "n_b", "n_b_over_d_half_l", "learning_rate", "T_map", "samples_map", "T_sim_mean", "T_sim_se",
            "T_sim_sd", "seeds", "recovered_seeds", "horizon_steps", "deviation_se", "critical_value", "agrees",
        ])
        for p in mapPoints.sorted(by: { ($0.dimension, $0.protocolName.rawValue, $0.batchSize) < ($1.dimension, $1.protocolName.rawValue, $1.batchSize) }) {
            let s = simulated.first { $0.dimension == p.dimension && $0.protocolName == p.protocolName && $0.batchSize == p.batchSize }
            if let s {
                let st = s.statistics, v = verdict(s)
                times.append([p.dimension, p.protocolName.loss.rawValue, p.protocolName.rawValue, p.batchSize, p.ratio, p.learningRate,
                              p.steps, p.samples, st.mean, st.standardError, st.standardDeviation, s.steps.count, s.recovered,
                              s.horizonSteps, v.deviation, z, v.agrees])
            } else {
                times.append([p.dimension, p.protocolName.loss.rawValue, p.protocolName.rawValue, p.batchSize, p.ratio, p.learningRate,
                              p.steps, p.samples, Double.nan, Double.nan, Double.nan, 0, 0, 0, Double.nan, Double.nan, ""])
            }
        }
        result.add("recovery_times.csv", times)

        var seedTable = CSVTable(columns: ["d", "protocol", "n_b", "seed", "T_sim", "T_map"])
        for s in simulated {
            for (seed, t) in zip(s.seeds, s.steps) { seedTable.append([s.dimension, s.protocolName.rawValue, s.batchSize, seed, t, s.map.steps]) }
        }
        result.add("seed_times.csv", seedTable)

        var transitionTable = CSVTable(columns: [
            "d", "n_b_star", "n_b_star_over_d_half_l", "T_min_square", "n_b_cap", "n_b_edge", "n_b_edge_over_d_half_l", "n_b_double_square",
            "n_b_double_correlation", "T_min_correlation",
        ])
        for t in transitions {
            transitionTable.append([t.dimension, t.squareBest, t.squareBest / transitionScale(t.dimension), t.squareLeastSteps,
                                    t.bestGridBatchSize, t.squareEdge, t.squareEdge / transitionScale(t.dimension), t.squareDoubling, t.correlationDoubling, t.correlationLeastSteps])
        }
        result.add("transitions.csv", transitionTable)

        var fitTable = CSVTable(columns: ["l", "fit", "source", "protocol", "d", "x", "y", "slope", "slope_se", "intercept", "expected_slope", "points"])
        for f in fits {
            fitTable.append([f.order, f.name, f.source, f.protocolName, f.dimension.map { "\($0)" } ?? "all", f.x, f.y, f.slope, f.slopeStandardError,
                             f.intercept, f.expectedSlope, f.points])
        }
        result.add("fits.csv", fitTable)

        // ℓ = 3 (exact map only): recovery times and transitions.
        let cubic = Problem.he3
        var cubicTimes = CSVTable(columns: ["d", "loss", "protocol", "n_b", "n_b_over_d_half_l", "learning_rate", "m0", "T_map", "samples_map"])
        for p in cubicPoints.sorted(by: { ($0.dimension, $0.protocolName.rawValue, $0.batchSize) < ($1.dimension, $1.protocolName.rawValue, $1.batchSize) }) {
            cubicTimes.append([p.dimension, p.protocolName.loss.rawValue, p.protocolName.rawValue, p.batchSize, p.ratio, p.learningRate,
                               p.problem.initialOverlap(p.dimension), p.steps, p.samples])
        }
        result.add("recovery_times_l3.csv", cubicTimes)
        var cubicTransitionTable = CSVTable(columns: [
            "d", "n_b_star", "n_b_star_over_d_half_l", "T_min_square", "n_b_edge", "n_b_edge_over_d_half_l", "n_b_double_square",
            "n_b_double_correlation", "n_b_double_correlation_over_d_l_minus_1", "T_min_correlation",
        ])
        for t in cubicTransitions {
            let s = cubic.transitionScale(t.dimension), d = Double(t.dimension)
            cubicTransitionTable.append([t.dimension, t.squareBest, t.squareBest / s, t.squareLeastSteps, t.squareEdge, t.squareEdge / s,
                                         t.squareDoubling, t.correlationDoubling, t.correlationDoubling / (d * d), t.correlationLeastSteps])
        }
        result.add("transitions_l3.csv", cubicTransitionTable)

        // curves.csv: |m| against the step, map and simulator mean, at the simulated (d, protocol, n_b)
        // and, for the map, at the largest map dimension for the same n_b/d^{ℓ/2}.
        var curves = CSVTable(columns: ["source", "d", "protocol", "n_b", "step", "m", "m_se"])
        func addCurve(_ source: String, _ d: Int, _ p: TrainingRule, _ nb: Int, _ m: [Double], _ se: [Double]?) {
            let stride = max(1, m.count / 200)
            for i in Swift.stride(from: 0, to: m.count, by: stride) { curves.append([source, d, p.rawValue, nb, i, m[i], se?[i] ?? .nan]) }
        }
        let largest = config.mapDimensions.max() ?? 0
        for s in simulated {
            addCurve("map", s.dimension, s.protocolName, s.batchSize, s.map.overlaps, nil)
            addCurve("simulation", s.dimension, s.protocolName, s.batchSize, s.meanOverlap, s.overlapStandardError)
            let nb = batchSize(ratio: Double(s.batchSize) / transitionScale(s.dimension), dimension: largest)
            if let p = mapPoints.first(where: { $0.dimension == largest && $0.protocolName == s.protocolName && $0.batchSize == nb }),
               s.dimension == config.dimensions.max() {
                addCurve("map", largest, p.protocolName, p.batchSize, p.overlaps, nil)
            }
        }
        result.add("curves.csv", curves)

        // Specs: the three protocols at the largest simulated d, at a small batch and at 4·d^{ℓ/2};
        // and the map at d = 2³² at a small batch.
        if let d = config.dimensions.max() {
            for p in TrainingRule.allCases {
                for x in [1.0 / 16, 4] {
                    guard let s = simulated.first(where: { $0.dimension == d && $0.protocolName == p
                        && $0.batchSize == batchSize(ratio: x, dimension: d) }) else { continue }
                    result.addSpec("simulation-\(p.rawValue)-d\(d)-nb\(s.batchSize)", s.experiment, comment: """
                        batch-size: finite-d online SGD, \(p.rawValue), d = \(d), n_b = \(s.batchSize), η = \(label(s.learningRate)), m₀ = \(label(initialOverlap)), every step recorded.
                        Run: plateau simulate --spec THIS_FILE --dimension \(d) --seeds \(config.seeds)   (the map: plateau ode --spec THIS_FILE --map-dimension \(d))
                        The study sweeps n_b = round(x·d^{ℓ/2}) for x ∈ {\(config.simulatedRatios.map(label).joined(separator: ", "))} with η = γ₀·n_b (γ₀ = \(label(learningRatePerSample))\(p == .squareCapped ? ", capped at γ₀·n_b*" : "")).
                        """)
                }
            }
        }
        if let p = mapPoints.filter({ $0.dimension == largest && $0.protocolName == .square }).min(by: { $0.batchSize < $1.batchSize }) {
            let steps = Int(p.steps.rounded(.up)) + 1
            let e = experiment(loss: .square, dimension: largest, batchSize: p.batchSize, learningRate: p.learningRate, steps: steps,
                               times: .linear(count: 100))
            result.addSpec("map-square-d\(largest)-nb\(p.batchSize)", e, comment: """
                batch-size: the exact one-step map at d = 2^\(largest.trailingZeroBitCount), square loss, n_b = \(p.batchSize), η = \(label(p.learningRate)), to step \(steps) (recovery at \(fmt(p.steps))).
                Run: plateau ode --spec THIS_FILE --map-dimension \(largest)   (change training.loss to correlation for the other loss)
                """)
        }

        // Tables shared by README and stdout.
        let refD = largest
        let refPoints = mapPoints.filter { $0.dimension == refD }
        let sizes = Array(Set(refPoints.map(\.batchSize))).sorted()
        let shown = sizes.enumerated().filter { config.quick || $0.offset % 4 == 0 || $0.offset == sizes.count - 1 }.map(\.element)
        func point(_ p: TrainingRule, _ nb: Int) -> MapPoint? { refPoints.first { $0.protocolName == p && $0.batchSize == nb } }
        func steps(_ x: Double) -> String { x.isFinite ? MarkdownTable.number(x, 4) : "no recovery" }
        // Collapse: at each n_b/d^{ℓ/2}, the largest relative spread of T over the map dimensions.
        var spread = 0.0
        for p in [TrainingRule.square, .correlation] {
            for nb in sizes {
                guard let ref = point(p, nb), ref.steps.isFinite else { continue }
                for d in config.mapDimensions where d != refD {
                    let n = batchSize(ratio: ref.ratio, dimension: d)
                    if let q = mapPoints.first(where: { $0.dimension == d && $0.protocolName == p && $0.batchSize == n }), q.steps.isFinite,
                       abs(Double(n) / transitionScale(d) / ref.ratio - 1) < 1e-3 {
                        spread = max(spread, abs(q.steps / ref.steps - 1))
                    }
                }
            }
        }
        let recoveryRows = shown.map { nb -> [String] in
            let sq = point(.square, nb), co = point(.correlation, nb), cap = point(.squareCapped, nb)
            return [String(format: "%.4g", Double(nb)), fmt(Double(nb) / transitionScale(refD)), fmt(sq?.learningRate ?? .nan),
                    steps(sq?.steps ?? .nan), steps(co?.steps ?? .nan), steps(cap?.steps ?? .nan),
                    fmt(sq?.samples ?? .nan), fmt(co?.samples ?? .nan)]
        }
        let recoveryTable = MarkdownTable.render(
            ["n_b", "n_b/d", "η (uncapped)", "T square", "T correlation", "T square, η capped", "n_b·T square", "n_b·T correlation"],
            recoveryRows)

        let transitionRows = transitions.map { t -> [String] in
            [dimensionLabel(t.dimension), String(format: "%.5g", t.squareBest), fmt(t.squareBest / transitionScale(t.dimension)),
             fmt(t.squareLeastSteps), t.squareEdge.isFinite ? String(format: "%.4g", t.squareEdge) : "—",
             String(format: "%.4g", t.squareDoubling), String(format: "%.4g", t.correlationDoubling), fmt(t.correlationLeastSteps)]
        }
        let transitionText = MarkdownTable.render(
            ["d", "n_b* (least T, square)", "n_b*/d", "T at n_b*", "n_b^edge (square)", "n_b^×2 square", "n_b^×2 correlation",
             "least T correlation (largest n_b)"], transitionRows)

        let fitRows = fits.map { f -> [String] in
            ["\(f.order)", f.name, f.source, f.protocolName, f.dimension.map(dimensionLabel) ?? "all map d", f.y + " vs " + f.x,
             String(format: "%.4f ± %.2g", f.slope, f.slopeStandardError), fmt(f.expectedSlope), "\(f.points)"]
        }
        let fitText = MarkdownTable.render(["ℓ", "fit", "source", "protocol", "d", "line", "slope ± SE", "expected", "points"], fitRows)

        let simRows = simulated.map { s -> [String] in
            let st = s.statistics, v = verdict(s)
            let simText = st.mean.isFinite ? String(format: "%.4g ± %.2g", st.mean, st.standardError)
                : "\(s.recovered) of \(s.steps.count) recovered in \(s.horizonSteps) steps"
            return ["\(s.dimension)", s.protocolName.rawValue, "\(s.batchSize)", fmt(s.learningRate), steps(s.map.steps), simText,
                    v.deviation.isFinite ? String(format: "%+.2f", v.deviation) : "—", v.agrees == "true" ? "agrees" : "differs"]
        }
        let simText = MarkdownTable.render(["d", "protocol", "n_b", "η", "T map", "T simulation (mean ± SE)", "(sim − map)/SE", "verdict"], simRows)
        let agreeing = compared.filter { verdict($0).agrees == "true" }.count
        var perD: [String] = []
        for d in config.dimensions {
            let rows = compared.filter { $0.dimension == d }
            guard !rows.isEmpty else { continue }
            let devs = rows.map { verdict($0).deviation }
            let rel = rows.map { abs($0.statistics.mean / $0.map.steps - 1) }
            let rms = (devs.map { $0 * $0 }.reduce(0, +) / Double(devs.count)).squareRoot()
            perD.append(String(format: "d = %d: %d of %d rows within z·SE; largest |sim − map|/SE %.2f, RMS %.2f; largest relative difference of T %.1f %%",
                               d, rows.filter { verdict($0).agrees == "true" }.count, rows.count, devs.map(abs).max() ?? .nan, rms,
                               100 * (rel.max() ?? .nan)))
        }
        let agreementText = compared.isEmpty ? "(no simulated rows with a finite map time)"
            : String(format: "%d of %d rows agree at family-wise α = %g (Bonferroni Student-t, %d seeds: z = %.2f).\n",
                     agreeing, compared.count, alpha, config.seeds, z) + perD.map { "- " + $0 }.joined(separator: "\n")
        let failures = simulated.filter { !$0.map.steps.isFinite }
        let failureText = failures.isEmpty ? "" : "\n\nWhere the map never recovers (square loss above n_b^edge), the simulator recovered in " +
            failures.map { "\($0.recovered) of \($0.steps.count) seeds (d = \($0.dimension), n_b = \($0.batchSize), \($0.horizonSteps) steps)" }
                .joined(separator: "; ") + "."

        let mapFit = { (p: String) in fits.first { $0.order == 2 && $0.source == "map" && $0.protocolName == p && $0.dimension == refD && $0.name.hasPrefix("ln T") } }
        let transitionFit = fits.first { $0.order == 2 && $0.name == "transition vs d" && $0.y.hasPrefix("ln n_b*") }
        var findings: [String] = []
        if let s = mapFit("square"), let c = mapFit("correlation") {
            findings.append(String(format: "Linear speed-up: at d = %@ the map gives T ∝ n_b^{%.4f} (square) and n_b^{%.4f} (correlation) below the transition (expected −1): the sample count n_b·T is constant there.",
                                   dimensionLabel(refD), s.slope, c.slope))
        }
        if let t = transitionFit, let ref = transitions.first(where: { $0.dimension == refD }) {
            findings.append(String(format: "Transition: the square loss's recovery time is shortest at n_b* = %.3f·d^{ℓ/2} (d = %@); across d = %@…%@ n_b* ∝ d^{%.4f ± %.1g} (expected ℓ/2 = %g). Leading order in m → 0 puts the optimum at n_b/d = (1 − 6γ₀)/(4γ₀) = %g and the end of recovery at (1 − 6γ₀)/(2γ₀) = %g; the map's n_b^edge is %.4g·d.",
                                   ref.squareBest / transitionScale(refD), dimensionLabel(refD), dimensionLabel(config.mapDimensions.min()!),
                                   dimensionLabel(refD), t.slope, t.slopeStandardError, Double(hermiteOrder) / 2, leadingOrderBest,
                                   leadingOrderFailure, ref.squareEdge / transitionScale(refD)))
            // With η capped at γ_cap = η_cap/d the square loss's gain per step tends to 1/|1 − 4γ_cap| (leading order).
            let gammaCap = learningRate(batchSize: Double(ref.bestGridBatchSize), dimension: refD) / Double(refD)
            let floor = Foundation.log(threshold / initialOverlap) / -Foundation.log(abs(1 - 4 * gammaCap))
            let capped = refPoints.filter { $0.protocolName == .squareCapped }.max { $0.batchSize < $1.batchSize }
            let corr = refPoints.filter { $0.protocolName == .correlation }.max { $0.batchSize < $1.batchSize }
            findings.append(String(format: "Beyond it: the square loss with η = γ₀n_b slows down again and never recovers above n_b^edge. With η capped at γ₀·n_b,cap (γ = η/d = %.3f) its T tends to a floor, ln(%@/%@)/ln(1/|1 − 4γ|) = %.2f steps to leading order, reaching %@ steps at n_b = %@·d; the correlation loss, η = γ₀n_b throughout, keeps speeding up, to T = %@ steps there (its gain per step tends to √(2n_b/d), so T → 0 like 2 ln(m_th/m₀)/ln(2n_b/d)).",
                                   gammaCap, label(threshold), label(initialOverlap), floor, steps(capped?.steps ?? .nan),
                                   label(capped?.ratio ?? .nan), steps(corr?.steps ?? .nan)))
        }
        findings.append(String(format: "Collapse: at fixed n_b/d the map's T is the same at every d = %@…%@ to %.2g (relative), so T = F(n_b/d)·d/n_b exactly as ℓ = 2 and a fixed m₀ predict.",
                               dimensionLabel(config.mapDimensions.min()!), dimensionLabel(refD), spread))

        // ℓ = 3 findings and tables.
        let cubicRefD = config.cubicDimensions.max() ?? 0
        let cubicFit = { (p: String, y: String) in fits.first { $0.order == 3 && $0.name == "transition vs d" && $0.protocolName == p && $0.y.hasPrefix(y) } }
        let cubicSpeedUp = { (p: String) in fits.first { $0.order == 3 && $0.protocolName == p && $0.dimension == cubicRefD && $0.name.hasPrefix("ln T") } }
        var cubicFindings: [String] = []
        if let s = cubicSpeedUp("square"), let c = cubicSpeedUp("correlation") {
            cubicFindings.append(String(format: "Linear speed-up: at d = %@ T ∝ n_b^{%.4f} (square) and n_b^{%.4f} (correlation) below the square loss's transition (expected −1).",
                                        dimensionLabel(cubicRefD), s.slope, c.slope))
        }
        if let best = cubicFit("square", "ln n_b*"), let edge = cubicFit("square", "ln n_b^edge"), let sq2 = cubicFit("square", "ln n_b^×2"),
           let co2 = cubicFit("correlation", "ln n_b^×2") {
            cubicFindings.append(String(format: "The square loss stops gaining at n_b ~ d^{ℓ/2} = d^{3/2}: across d = %@…%@, n_b* ∝ d^{%.4f ± %.1g}, n_b^edge ∝ d^{%.4f ± %.1g}, n_b^×2 ∝ d^{%.4f ± %.1g} (expected 1.5).",
                                        dimensionLabel(config.cubicDimensions.min() ?? 0), dimensionLabel(cubicRefD), best.slope, best.slopeStandardError,
                                        edge.slope, edge.slopeStandardError, sq2.slope, sq2.slopeStandardError))
            cubicFindings.append(String(format: "The correlation loss goes further, to n_b ~ d^{ℓ−1} = d²: its n_b^×2 ∝ d^{%.4f ± %.1g} (expected 2), while its T keeps falling below the square loss's least T.",
                                        co2.slope, co2.slopeStandardError))
        }
        let cubicRows = cubicTransitions.map { t -> [String] in
            let s = cubic.transitionScale(t.dimension), d = Double(t.dimension)
            return [dimensionLabel(t.dimension), String(format: "%.4g", t.squareBest), fmt(t.squareBest / s), fmt(t.squareLeastSteps),
                    t.squareEdge.isFinite ? String(format: "%.4g", t.squareEdge) : "—", fmt(t.squareEdge / s),
                    String(format: "%.4g", t.squareDoubling), String(format: "%.4g", t.correlationDoubling), fmt(t.correlationDoubling / (d * d)),
                    fmt(t.correlationLeastSteps)]
        }
        let cubicText = MarkdownTable.render(
            ["d", "n_b* (square)", "n_b*/d^{3/2}", "T at n_b*", "n_b^edge (square)", "n_b^edge/d^{3/2}", "n_b^×2 square", "n_b^×2 correlation",
             "n_b^×2 correlation / d²", "least T correlation"], cubicRows)

        let settingsText = """
            - Problem: target y = He\(hermiteOrder)(z1) (information exponent ℓ = \(hermiteOrder)), student one spherical neuron \
            f = He\(hermiteOrder)(λ) (|w|² = d after every step, a = 1 fixed), noiseless, online SGD with a fresh batch of n_b samples per step; \
            square loss ½(y − f)² or correlation loss −y·f (EQUATIONS.md §1). Every Gaussian expectation by the exact Wick route.
            - Start: m₀ = \(label(initialOverlap)) at every d (prescribed overlaps, built exactly at finite d). The spherical \
            theory started at m₀ = 0 never moves. A fixed m₀ (rather than m₀ ∝ d^{-1/2}) keeps the simulator's noise \
            relative to m₀ of order d^{-1/2}, so the map is the d → ∞ limit of the simulator and the comparison has no \
            O(1) bias from the random-start fluctuations.
            - Learning rate η = γ₀·n_b·d^{1−ℓ/2} = γ₀·n_b with γ₀ = \(label(learningRatePerSample)) (below the square loss's \
            small-batch stability edge γ₀ = 1/6). TrainingRule `square-capped`: η = γ₀·min(n_b, n_b,cap) with n_b,cap the grid \
            batch size of least T for the square loss at that d.
            - Recovery time T (SGD steps): the first step with |m| > \(label(threshold)), interpolated in ln|m| between the \
            bracketing steps; samples n_b·T.
            - Exact map (EQUATIONS.md §1.2–1.3, with the squared population gradient) at d ∈ {\(config.mapDimensions.map(dimensionLabel).joined(separator: ", "))}, \
            n_b = round(x·d) for x = n_b/d ∈ [\(label(config.ratios.min()!)), \(label(config.ratios.max()!))] \
            (\(config.ratios.count) log-spaced values); budget 40·d/η + 200 steps, stopped when |m| < m₀·10⁻⁴.
            - Simulator at d ∈ {\(config.dimensions.map(String.init).joined(separator: ", "))}, n_b/d ∈ {\(config.simulatedRatios.map(label).joined(separator: ", "))}, \
            \(config.seeds) seeds each (master seed \(config.masterSeed)), every step recorded, horizon 2·T_map + 6 steps (12 \
            where the map does not recover); the map is run at the same d. Verdict per row: |mean T_sim − T_map| ≤ z·SE, \
            z the Bonferroni Student-t quantile at family-wise α = \(label(alpha)) over the compared rows.
            - Fits: ln T against ln n_b over n_b ≤ n_b*/10 (ordinary least squares for the map, whose points are \
            deterministic so the standard error measures curvature; weighted by the seed standard error of ln T̄ \
            for the simulator); transitions against ln d over the map dimensions.
            \(config.quick ? "- QUICK RUN (--quick): small sizes for tests; the numbers are not the study's.\n" : "")
            """

        var summary = "\(BatchSizeTradeoff().title)\n\n"
        summary += "Recovery time T (steps to |m| > \(label(threshold))) from the exact map at d = \(dimensionLabel(refD)), m₀ = \(label(initialOverlap)), η = γ₀·n_b, γ₀ = \(label(learningRatePerSample))\n"
        summary += recoveryTable + "\n\nTransitions (exact map)\n" + transitionText + "\n\nFitted exponents\n" + fitText + "\n\n"
        summary += findings.map { "- " + $0 }.joined(separator: "\n") + "\n"
        summary += "\nℓ = 3 (He3, exact map, m₀ = d^{-1/2}, γ₀ = \(label(Problem.he3.learningRatePerSample)))\n" + cubicText + "\n"
        summary += cubicFindings.map { "- " + $0 }.joined(separator: "\n") + "\n"
        if !simulated.isEmpty { summary += "\nMap against simulator (same d)\n" + simText + "\n" + agreementText + failureText + "\n" }
        summary += String(format: "\nwall time %.1f s\n", seconds)
        result.summary = summary

        let readme = """
            # Batch size against time to weak recovery: square vs correlation loss

            Written by `plateau reproduce batch-size\(config.quick ? " --quick" : "")` (Plateau \(PlateauVersion.string)); the wall time goes to stdout only, so that a rerun (or a resumed run) writes the same bytes. Plot with `plot.ipynb` \
            (Python, pandas, matplotlib; run it from this folder).

            ## What is reproduced

            \(BatchSizeTradeoff().reproduces)

            ## Settings

            \(settingsText)
            Why ℓ = 2 for the simulator: from a small start the overlap grows linearly in m (dm ≈ 4γm per step, γ = η/d), so T is \
            logarithmic in 1/m₀ and T ∝ d/n_b: a few thousand map steps per point even at d = 2³², and the \
            transition n_b ~ d^{ℓ/2} = d is within the simulator's reach (n_b·d ≲ 10⁷). \
            For ℓ = 2, d^{ℓ/2} = d^{ℓ−1} = d, so the correlation loss's extra range is not a new power of d \
            but the absence of a floor: its T keeps falling (like 1/ln(n_b/d)) where the square loss's stops. \
            The separation of the two powers needs ℓ = 3: the section "ℓ = 3" below, from the exact map only.

            ## Findings

            \(findings.map { "- " + $0 }.joined(separator: "\n"))

            ## Recovery time against n_b (exact map, d = \(dimensionLabel(refD)))

            \(recoveryTable)

            "no recovery": the map's |m| decays (square loss, η = γ₀n_b above n_b^edge). Why, to leading order \
            in m: per step the square loss's population gradient has a radial part −4γw (its self-interaction: \
            E[σ'(λ)f(λ)x] ∝ w) and its batch noise adds 48γ²d/n_b to |w|², so after renormalisation \
            m' = m/√((1 − 4γ)² + 48γ²d/n_b); with γ = γ₀n_b/d this is a gain only for n_b/d < (1 − 6γ₀)/(2γ₀) = \
            \(label(leadingOrderFailure)), and the gain is largest at n_b/d = (1 − 6γ₀)/(4γ₀) = \(label(leadingOrderBest)). \
            The correlation loss has neither the radial term nor the large noise (Ξ = 8 against 48 at m = 0): \
            m' = m(1 + 4γ)/√(1 + 8γ²d/n_b), a gain at every n_b, tending to √(2n_b/d).

            ## Transitions (exact map)

            \(transitionText)

            n_b*: least T of the square loss (parabola in ln n_b through the three grid points around the least); \
            n_b^edge: the n_b above which one step of the map shrinks a tiny overlap (m = 10⁻⁸; bisection to one \
            batch), so the square loss never recovers; n_b^×2: first grid n_b at which the samples n_b·T exceed \
            twice their smallest-batch value.

            ## Fitted exponents

            \(fitText)

            The map's points are deterministic: the standard error of a map slope measures the curvature of \
            ln T against ln n_b over the fitted range, not noise. The simulator's slopes are weighted fits with \
            the seed standard error of ln T̄ of each point.

            ## ℓ = 3: He₃ target, spherical He₃ neuron (exact map only)

            - Start m₀ = d^{−1/2} (the size of a random start), γ₀ = \(label(Problem.he3.learningRatePerSample)) in \
            η = γ₀·n_b·d^{1−ℓ/2} = γ₀·n_b/√d (γ = η/d = γ₀·n_b/d^{3/2}); below the square loss's stability edge at \
            m ~ d^{−1/2}: the gain per step is 18γm, the noise ½γ²(d/n_b)Ξ with Ξ = 3456 at m = 0 (108 for the \
            correlation loss), so γ₀ < 36/3456 ≈ 0.0104.
            - d ∈ {\(config.cubicDimensions.map(dimensionLabel).joined(separator: ", "))}, n_b = round(x·d^{3/2}) for \
            x ∈ [\(label(config.cubicRatios.min() ?? .nan)), \(label(config.cubicRatios.max() ?? .nan))] (\(config.cubicRatios.count) log-spaced values); \
            budget 40 × the leading-order escape time √d/(18γ₀x) + 200 steps. n_b^edge is the n_b above which one map \
            step shrinks m₀ (bisection). No simulation: from m₀ ~ d^{−1/2} the simulator's escape is random at O(1) \
            (its noise is as large as m₀), so the deterministic map is not its mean; and n_b ~ d² at d = 2¹⁰ is 10⁶ samples per step.

            \(cubicFindings.map { "- " + $0 }.joined(separator: "\n"))

            \(cubicText)

            Why the powers differ, to leading order in m: the square loss's radial self-interaction −18γw \
            (E[σ'(λ)f(λ)x] ∝ w for He₃) overshoots once 18γ = 18γ₀n_b/d^{3/2} approaches 1, so it stops at \
            n_b ~ d^{3/2}; the correlation loss has no such term, and its escape T ≈ 1/(18γm₀) = d²/(18γ₀n_b) falls \
            like 1/n_b until it reaches O(1) steps at n_b ~ d².

            ## Map against simulator at moderate d (ℓ = 2)

            \(simulated.isEmpty ? "(no simulations in this run)" : simText + "\n\n" + agreementText + failureText)

            The simulator's T fluctuates from seed to seed mainly through the noise in m while m is small \
            (relative size ∝ (d·m₀²)^{-1/2}); its mean approaches the map's T like 1/d (a second-order effect of \
            that noise through ln m), which is why d = 256 sits closer to the edge of the seed error than d = 1024.

            ## Files

            | file | what |
            |---|---|
            | `recovery_times.csv` | per (d, protocol, n_b): η, T and n_b·T from the map; where simulated, T mean ± SE (and SD) over seeds, recovered seeds, horizon, (sim − map)/SE, critical value, verdict |
            | `seed_times.csv` | per simulated seed: T from the simulator and the map's T |
            | `transitions.csv` | per d: n_b*, T there, the cap, n_b^edge, n_b^×2 per loss, least T of the correlation loss |
            | `fits.csv` | the least-squares lines above (column `l`: ℓ) |
            | `recovery_times_l3.csv` | ℓ = 3: per (d, protocol, n_b): η, m₀, T and n_b·T from the exact map |
            | `transitions_l3.csv` | ℓ = 3: per d: n_b*, n_b^edge, n_b^×2 per loss (also over d^{3/2} and d²) |
            | `curves.csv` | \\|m\\| against the step: the map (at the simulated d and at d = \(dimensionLabel(refD)) for the same n_b/d) and the simulator's mean ± SE |
            | `specs/*.yaml` | representative experiments (readable by `plateau simulate/ode --spec`; the map with `--map-dimension`) |
            | `plot.ipynb` | the figures |

            ## Figures

            Written by `plot.ipynb` beside the CSVs (`make figures` runs every study's notebook):

            ![figure 1](batch-size-1.png) ![figure 2](batch-size-2.png) ![figure 3](batch-size-3.png) ![figure 4](batch-size-4.png) ![figure 5](batch-size-5.png) ![figure 6](batch-size-6.png)

            """
        result.add("README.md", readme)
        result.add("plot.ipynb", notebook.json)
        return result
    }

    /// The figures, drawn from the CSVs.
    static var notebook: Notebook {
        Notebook([
            .markdown("""
                # Batch size against time to weak recovery

                Figures from the CSV files written by `plateau reproduce batch-size` (see `README.md` for the settings \
                and definitions). Run from this folder.
                """),
            .code("""
                import numpy as np
                import pandas as pd
                import matplotlib.pyplot as plt

                times = pd.read_csv("recovery_times.csv")
                seeds = pd.read_csv("seed_times.csv")
                transitions = pd.read_csv("transitions.csv")
                fits = pd.read_csv("fits.csv")
                curves = pd.read_csv("curves.csv")
                styles = {"square": "C0", "correlation": "C3", "square-capped": "C2"}
                simulated = sorted(times[times.seeds > 0].d.unique())
                map_only = sorted(set(times.d.unique()) - set(simulated))
                transitions
                """),
            .markdown("## Steps to recovery T and samples n_b·T against n_b\n\nLines: exact map (one per d, lighter for smaller d); points: simulator mean ± SE."),
            .code("""
                fig, (a, b) = plt.subplots(1, 2, figsize=(14, 5))
                dims = sorted(times.d.unique())
                for i, d in enumerate(dims):
                    alpha = 0.3 + 0.7 * (i + 1) / len(dims)
                    for p, c in styles.items():
                        g = times[(times.d == d) & (times.protocol == p)].sort_values("n_b")
                        g = g[np.isfinite(g.T_map)]
                        ls = "-"
                        if p == "square-capped":  # identical to the square loss up to its cap
                            g = g[g.n_b >= transitions[transitions.d == d].n_b_cap.iloc[0]]
                            ls = "--"
                        label = p if d == dims[-1] else None
                        a.loglog(g.n_b, g.T_map, ls, color=c, alpha=alpha, label=label)
                        b.loglog(g.n_b, g.samples_map, ls, color=c, alpha=alpha, label=label)
                        s = times[(times.d == d) & (times.protocol == p) & (times.seeds > 0)]
                        s = s[np.isfinite(s.T_sim_mean)]
                        a.errorbar(s.n_b, s.T_sim_mean, yerr=s.T_sim_se, fmt="o", color=c, ms=4, capsize=2)
                        b.errorbar(s.n_b, s.n_b * s.T_sim_mean, yerr=s.n_b * s.T_sim_se, fmt="o", color=c, ms=4, capsize=2)
                for t in transitions.itertuples():
                    a.axvline(t.n_b_star, color="gray", ls=":", lw=0.6)
                a.set_xlabel("batch size n_b"); a.set_ylabel("steps to |m| > 0.5"); a.legend()
                b.set_xlabel("batch size n_b"); b.set_ylabel("samples n_b·T"); b.legend()
                a.set_title("dotted: n_b* (least T of the square loss) at each d", fontsize=9)
                plt.tight_layout(); plt.savefig("batch-size-1.png", dpi=120); plt.show()
                """),
            .markdown("## Collapse: T·n_b/d against n_b/d (ℓ = 2), every map dimension"),
            .code("""
                fig, ax = plt.subplots(figsize=(7, 5))
                for d in dims:
                    for p, c in styles.items():
                        g = times[(times.d == d) & (times.protocol == p)].sort_values("n_b")
                        ax.loglog(g.n_b_over_d_half_l, g.T_map * g.n_b_over_d_half_l, "-", color=c, alpha=0.5,
                                  label=p if d == dims[-1] else None)
                ax.set_xlabel("n_b / d"); ax.set_ylabel("T · n_b / d  (samples / d)"); ax.legend()
                plt.tight_layout(); plt.savefig("batch-size-2.png", dpi=120); plt.show()
                """),
            .markdown("## Transition against d, and the fitted exponents"),
            .code("""
                fig, ax = plt.subplots(figsize=(7, 5))
                tr = transitions[transitions.d.isin(map_only)] if map_only else transitions
                for col, lab in [("n_b_star", "n_b* (least T, square)"), ("n_b_edge", "n_b^edge (square, no recovery above)"),
                                 ("n_b_double_square", "n_b^×2 square"), ("n_b_double_correlation", "n_b^×2 correlation")]:
                    ax.loglog(tr.d, tr[col], "o-", label=lab)
                ax.loglog(tr.d, tr.d, "k:", label="∝ d^{ℓ/2} = d")
                ax.set_xlabel("d"); ax.set_ylabel("batch size"); ax.legend()
                plt.tight_layout(); plt.savefig("batch-size-3.png", dpi=120); plt.show()
                fits
                """),
            .markdown("## ℓ = 3 (exact map): the square loss stops at n_b ~ d^{3/2}, the correlation loss goes on to d²"),
            .code("""
                cubic = pd.read_csv("recovery_times_l3.csv")
                cubic_tr = pd.read_csv("transitions_l3.csv")
                fig, (a, b) = plt.subplots(1, 2, figsize=(14, 5))
                cdims = sorted(cubic.d.unique())
                for i, d in enumerate(cdims):
                    alpha = 0.3 + 0.7 * (i + 1) / len(cdims)
                    for p in ["square", "correlation"]:
                        g = cubic[(cubic.d == d) & (cubic.protocol == p)].sort_values("n_b")
                        g = g[np.isfinite(g.T_map)]
                        a.loglog(g.n_b / d**1.5, g.T_map, "-", color=styles[p], alpha=alpha, label=p if d == cdims[-1] else None)
                a.set_xlabel("n_b / d^{3/2}"); a.set_ylabel("steps to |m| > 0.5"); a.legend()
                for col, lab in [("n_b_star", "n_b* (square)"), ("n_b_edge", "n_b^edge (square)"),
                                 ("n_b_double_square", "n_b^×2 square"), ("n_b_double_correlation", "n_b^×2 correlation")]:
                    b.loglog(cubic_tr.d, cubic_tr[col], "o-", label=lab)
                b.loglog(cubic_tr.d, cubic_tr.d**1.5, "k:", label="∝ d^{3/2}")
                b.loglog(cubic_tr.d, cubic_tr.d**2.0, "k--", label="∝ d²")
                b.set_xlabel("d"); b.set_ylabel("batch size"); b.legend()
                plt.tight_layout(); plt.savefig("batch-size-4.png", dpi=120); plt.show()
                cubic_tr
                """),
            .markdown("## |m| against the step: map and simulator (mean ± SE)"),
            .code("""
                groups = list(curves[curves.source == "simulation"].groupby(["d", "protocol"]))
                if groups:
                    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 4), squeeze=False)
                    for ax, ((d, p), g) in zip(axes[0], groups):
                        for i, (nb, h) in enumerate(g.groupby("n_b")):
                            c = f"C{i % 10}"
                            ax.fill_between(h.step, h.m - h.m_se, h.m + h.m_se, color=c, alpha=0.3)
                            m = curves[(curves.source == "map") & (curves.d == d) & (curves.protocol == p) & (curves.n_b == nb)]
                            ax.plot(m.step, m.m, "-", color=c, lw=1, label=f"n_b = {nb}")
                        ax.axhline(0.5, color="gray", ls=":")
                        ax.set_xscale("symlog", linthresh=1); ax.set_xlabel("SGD step"); ax.set_ylabel("|m|")
                        ax.set_title(f"d = {d}, {p}", fontsize=9); ax.legend(fontsize=6)
                    plt.tight_layout(); plt.savefig("batch-size-5.png", dpi=120); plt.show()
                """),
            .markdown("## Per-seed recovery times against the map"),
            .code("""
                fig, ax = plt.subplots(figsize=(6, 5))
                for (d, p), g in seeds.groupby(["d", "protocol"]):
                    g = g[np.isfinite(g.T_sim) & np.isfinite(g.T_map)]
                    ax.loglog(g.T_map, g.T_sim, ".", color=styles[p], alpha=0.4, label=f"{p}, d = {d}")
                lim = [seeds.T_map[np.isfinite(seeds.T_map)].min() * 0.7, seeds.T_map[np.isfinite(seeds.T_map)].max() * 1.4]
                ax.plot(lim, lim, "k:"); ax.set_xlabel("T, exact map"); ax.set_ylabel("T, simulator (per seed)"); ax.legend(fontsize=7)
                plt.tight_layout(); plt.savefig("batch-size-6.png", dpi=120); plt.show()
                times[times.seeds > 0]
                """),
        ])
    }
}
