import Foundation
import PlateauCore

/// The d → ∞ theory of online SGD for a two-layer student learning a committee teacher
/// (EQUATIONS.md §1.1): ODEs for the overlaps M, Q (and a) on the time axis t = steps/d.
///
///     dM_jr/dt = η a_j Ψ_jr − ηκ M_jr
///     dQ_jl/dt = η (a_j Φ_jl + a_l Φ_lj) + (η²/n_b) a_j a_l Ξ_jl − 2ηκ Q_jl
///     da_j/dt  = η_a E[σ(λ_j) D]                     (trained second layer only)
///
/// with Ψ_jr = E[σ'(λ_j) ν_r D], Φ_jl = E[σ'(λ_j) λ_l D], Ξ_jl = E[σ'(λ_j) σ'(λ_l) D²] (D² includes Δ),
/// D = y − f (square loss) or D = y (correlation loss). The population-gradient-flow variant drops
/// the η² term. Population risk R = ½E[(g(ν) − f(λ))²] + Δ/2.
/// A d = ∞ (or exact-map) model of online SGD that turns a start into a curve on t = steps/d:
/// the ODE (`OnlineSGDTheory`) or the exact one-step map (`OnlineSGDMap`).
public protocol OnlineTheoryModel: Sendable {
    /// The curve from `start` at `times`, with status and message when it ends early.
    func curve(from start: Overlaps, times: [Double], options: ODEOptions) -> Trajectory
}

/// How the Gaussian expectations of a problem are computed (chosen per problem, and reported).
public enum TheoryRoute: String, Sendable, Hashable, CaseIterable {
    /// Closed forms and exact reductions, per term (student and committee teacher in erf, linear, ReLU).
    case closedForm = "closed-form"
    /// Exact moments of polynomials by Wick/Isserlis (polynomial student activation and target).
    case wick = "wick"
    /// A deterministic cubature rule over the joint fields (any activation, any link).
    case quadrature = "quadrature"

    /// The routes that can compute `experiment`'s terms, best first.
    public static func available(for e: Experiment) -> [TheoryRoute] {
        var routes: [TheoryRoute] = []
        if Activation.closedForm.contains(e.student.activation) && e.teacher.isCommittee
            && Activation.closedForm.contains(e.teacher.activation) { routes.append(.closedForm) }
        if e.student.activation.isPolynomial && e.teacher.isPolynomial && e.student.p + e.teacher.k <= 16 { routes.append(.wick) }
        if e.student.p + e.teacher.k <= 40 { routes.append(.quadrature) }
        return routes
    }
}

public struct OnlineSGDTheory: OnlineTheoryModel, Sendable {
    public let experiment: Experiment
    public let expectations: GaussianExpectations
    /// Drop the (η²/n_b)Ξ term (gradient flow on the population loss).
    public var populationFlow: Bool
    /// The route every expectation of this problem takes.
    public let route: TheoryRoute
    let wick: WickTerms?
    let cubature: QuadratureTerms?
    /// The closed-form route with erf student and teacher computes the pieces its terms share once
    /// (`SharedErfTerms`); false: one `GaussianExpectations` call per term (`PerTermExpectations`,
    /// the reference the tests compare it with).
    var sharesErfTerms: Bool

    /// The theory of `experiment`. `route` nil chooses the first of `TheoryRoute.available(for:)`
    /// (falling back to quadrature if a Wick expansion turns out too large); a route that cannot
    /// compute this problem is a programming error (check `available(for:)` first).
    public init(_ experiment: Experiment, populationFlow: Bool = false,
                expectations: GaussianExpectations = GaussianExpectations(),
                route: TheoryRoute? = nil, quadrature: QuadratureSettings = QuadratureSettings()) {
        self.experiment = experiment
        self.expectations = expectations
        self.populationFlow = populationFlow
        let available = TheoryRoute.available(for: experiment)
        var chosen = route ?? available.first ?? .quadrature
        precondition(available.contains(chosen), "route \(chosen.rawValue) cannot compute this problem; available: \(available.map(\.rawValue))")
        var wick: WickTerms?
        if chosen == .wick {
            do { wick = try WickTerms(experiment) } catch {
                precondition(route == nil, "the Wick expansion of this problem is too large (\(error))")
                chosen = .quadrature
            }
        }
        self.route = chosen
        self.wick = wick
        sharesErfTerms = chosen == .closedForm && experiment.student.activation == .erf && experiment.teacher.activation == .erf
        if chosen == .quadrature {
            // Calibrate at the start and at a half-learned state (M_jj = 0.5 on the diagonal).
            let start = Self.startOverlaps(experiment)
            var learned = start
            for j in 0..<min(experiment.student.p, experiment.teacher.k) {
                learned.M[j, j] = 0.5 * (start.Q[j, j] * experiment.teacher.covariance[j, j]).squareRoot()
            }
            let points = learned.jointCovariance.choleskyPSD(tolerance: 1e-12) == nil ? [start] : [start, learned]
            cubature = QuadratureTerms(experiment, settings: quadrature, calibrationPoints: points)
        } else {
            cubature = nil
        }
    }

    /// A one-line account of the route: what it computes exactly, or its rule and size.
    public var routeDescription: String {
        switch route {
        case .closedForm: return "closed forms and exact reductions per term (erf, linear, ReLU)"
        case .wick: return "exact Gaussian moments of polynomials (Wick/Isserlis), \(wick!.momentCount) moments per evaluation"
        case .quadrature: return cubature!.ruleDescription
        }
    }

    /// False when the quadrature route's calibration stopped at its point budget before reaching the
    /// asked tolerance (the reached accuracy is in `routeDescription`); true on the exact routes.
    public var quadratureMetTolerance: Bool { cubature?.metTolerance ?? true }

    /// For the quadrature route, an estimate of the largest absolute error of Ψ, Φ, Ξ at `o` (see
    /// `QuadratureSettings`); 0 for the exact routes (up to rounding).
    public func quadratureErrorEstimate(_ o: Overlaps) -> Double {
        cubature?.errorEstimate(o) ?? 0
    }

    var p: Int { experiment.student.p }
    var k: Int { experiment.teacher.k }
    var sigma: Activation { experiment.student.activation }
    var teacherActivation: Activation { experiment.teacher.activation }
    var b: [Double] { experiment.teacher.weights }
    var trainsA: Bool { experiment.student.trainSecondLayer }

    /// Which route each expectation of this problem takes.
    public var routes: [(String, String)] {
        guard route == .closedForm else { return [("all terms", routeDescription)] }
        let s = sigma, t = teacherActivation
        return [
            ("E[σ σ]", GaussianExpectations.pairRoute(s, s)),
            ("E[σ σ*]", GaussianExpectations.pairRoute(s, t)),
            ("E[σ* σ*]", GaussianExpectations.pairRoute(t, t)),
            ("E[σ' u σ]", GaussianExpectations.steinRoute(s, s)),
            ("E[σ' u σ*]", GaussianExpectations.steinRoute(s, t)),
            ("E[σ' σ' σ σ]", GaussianExpectations.quarticRoute(s, s, s)),
            ("E[σ' σ' σ* σ]", GaussianExpectations.quarticRoute(s, t, s)),
            ("E[σ' σ' σ* σ*]", GaussianExpectations.quarticRoute(s, t, t)),
            ("E[σ' σ']", GaussianExpectations.slopePairRoute(s, s)),
        ].map { ($0.0, $0.1.rawValue) }
    }

    // MARK: State layout: M (p·k, row-major), Q upper triangle (p(p+1)/2), a (p, if trained)

    public var stateDimension: Int { p * k + p * (p + 1) / 2 + (trainsA ? p : 0) }

    public func state(of o: Overlaps) -> [Double] {
        var y = o.M.values
        for j in 0..<p { for l in j..<p { y.append(o.Q[j, l]) } }
        if trainsA { y.append(contentsOf: o.a) }
        return y
    }

    public func overlaps(fromState y: UnsafeBufferPointer<Double>) -> Overlaps {
        var M = Matrix(rows: p, cols: k)
        for i in 0..<(p * k) { M.values[i] = y[i] }
        var Q = Matrix(rows: p, cols: p)
        var idx = p * k
        for j in 0..<p { for l in j..<p { Q[j, l] = y[idx]; Q[l, j] = y[idx]; idx += 1 } }
        let a = trainsA ? (0..<p).map { y[idx + $0] } : experiment.student.secondLayer
        return Overlaps(M: M, Q: Q, P: experiment.teacher.covariance, a: a)
    }

    public func overlaps(fromState y: [Double]) -> Overlaps {
        y.withUnsafeBufferPointer { overlaps(fromState: $0) }
    }

    /// The d = ∞ limit of the specification's initial condition (random weights: M = 0, Q = scale²·I).
    public var initialOverlaps: Overlaps { Self.startOverlaps(experiment) }

    static func startOverlaps(_ experiment: Experiment) -> Overlaps {
        let p = experiment.student.p, k = experiment.teacher.k
        let P = experiment.teacher.covariance, a = experiment.student.secondLayer
        switch experiment.initialization {
        case let .overlaps(M, Q): return Overlaps(M: M, Q: Q, P: P, a: a)
        case let .random(scale, _):
            let q = experiment.student.spherical ? 1 : scale * scale
            return Overlaps(M: Matrix(rows: p, cols: k), Q: q * .identity(p), P: P, a: a)
        case let .orthogonal(Q): return Overlaps(M: Matrix(rows: p, cols: k), Q: Q, P: P, a: a)
        }
    }

    // MARK: Risk

    /// Population risk ½E[(g(ν) − f(λ))²] + Δ/2 at the given overlaps (the same function scores the
    /// simulator's measured overlaps).
    public func risk(_ o: Overlaps) -> Double {
        if let wick { return wick.risk(o) }
        if let cubature { return cubature.risk(o) }
        let s = sigma, t = teacherActivation, E = expectations
        let dim = p + k
        return o.jointCovariance.values.withUnsafeBufferPointer { omega in
            var tt = 0.0, st = 0.0, ss = 0.0
            for r in 0..<k { for q in 0..<k {
                tt += b[r] * b[q] * E.pair(t, t, FieldCovariance(omega, dim, p + r, p + q))
            } }
            for j in 0..<p { for r in 0..<k {
                st += o.a[j] * b[r] * E.pair(s, t, FieldCovariance(omega, dim, j, p + r))
            } }
            for j in 0..<p { for l in 0..<p {
                ss += o.a[j] * o.a[l] * E.pair(s, s, FieldCovariance(omega, dim, j, l))
            } }
            return 0.5 * (tt - 2 * st + ss) + 0.5 * experiment.teacher.noiseVariance
        }
    }

    // MARK: Right-hand side

    /// The averaged increments per unit time at overlaps `o`: (dM/dt, dQ/dt, da/dt).
    public func derivatives(_ o: Overlaps) -> (dM: Matrix, dQ: Matrix, da: [Double]) {
        let w = makeWorkspace()
        w.load(o)
        evaluateTerms(w)
        var f = [Double](repeating: 0, count: stateDimension)
        f.withUnsafeMutableBufferPointer { writeRates(w, into: $0) }
        var dM = Matrix(rows: p, cols: k), dQ = Matrix(rows: p, cols: p)
        for i in 0..<(p * k) { dM.values[i] = f[i] }
        var idx = p * k
        for j in 0..<p { for l in j..<p { dQ[j, l] = f[idx]; dQ[l, j] = f[idx]; idx += 1 } }
        let da = trainsA ? Array(f[idx...]) : Array(repeating: 0, count: p)
        return (dM, dQ, da)
    }

    /// Ψ (p×k), Φ (p×p), Ξ (p×p, symmetric) and E[σ(λ_j) D] at overlaps `o` (EQUATIONS.md §1.1).
    public func expectationTerms(_ o: Overlaps) -> (psi: Matrix, phi: Matrix, xi: Matrix, aDrift: [Double]) {
        let w = makeWorkspace()
        w.load(o)
        evaluateTerms(w)
        let t = w.terms
        return (t.psi, t.phi, t.xi, t.aDrift)
    }

    // MARK: Integration

    /// The ODE problem on the state layout above. After every step the overlaps are kept on the
    /// cone of valid covariances (`ConeGuard`): a departure within `coneAllowance` of the
    /// integrator's local error is projected back and counted; a larger one ends the integration
    /// with the status `leftPSDCone`.
    public var problem: ODEProblem {
        // One workspace per problem: the right-hand side and the guard allocate nothing.
        let theory = self, w = makeWorkspace(), guarded = makeWorkspace()
        let guardian = ConeGuard(p: p, P: experiment.teacher.covariance)
        return ODEProblem(dimension: stateDimension, rhs: { _, y, f in
            theory.load(state: y, into: w)
            theory.evaluateTerms(w)
            theory.writeRates(w, into: f)
        }, constrain: { y, localError in
            theory.load(state: UnsafeBufferPointer(y), into: guarded)
            let allowance = theory.coneAllowance(localError: localError)
            switch guardian.enforce(guarded.omega, allowance: allowance) {
            case .inside: return .accepted
            case let .projected(depth):
                theory.storeQ(from: guarded, into: y)
                return .projected(depth: depth)
            case let .outside(depth):
                return .failed(.leftPSDCone, "the overlaps left the PSD cone: [[Q, M], [Mᵀ, P]] is not positive semi-definite (depth \(String(format: "%.2e", depth)), beyond the integrator's allowance \(String(format: "%.2e", allowance)))")
            }
        })
    }

    /// How far outside the PSD cone (the depth −λ_min of Q − M P⁺ Mᵀ) a state may be and still be
    /// integration error, given the integrator's bound `localError` on one step's error per
    /// component: a perturbation of every entry of Ω by at most ε moves an eigenvalue by at most
    /// ‖ΔΩ‖₂ ≤ (p + k)·ε, and a factor 10 covers the inaccuracy of the error estimate itself (the
    /// tests measure the depth in units of this allowance).
    public func coneAllowance(localError: Double) -> Double {
        Self.coneAllowanceFactor * Double(p + k) * localError
    }

    /// The factor of `coneAllowance`.
    public static let coneAllowanceFactor = 10.0

    /// Writes the Q of `w`'s Ω into the state vector (layout of `state(of:)`).
    func storeQ(from w: OnlineSGDWorkspace, into y: UnsafeMutableBufferPointer<Double>) {
        let n = p + k
        var idx = p * k
        for j in 0..<p { for l in j..<p {
            y[idx] = w.omega[j * n + l]
            idx += 1
        } }
    }

    /// Integrates from `start` and returns the curve at `times` (risk and the overlap observables),
    /// plus the integrator's report.
    public func trajectory(from start: Overlaps, times: [Double], options: ODEOptions = ODEOptions(),
                           progress: ((Double) -> Void)? = nil) -> (trajectory: Trajectory, solution: ODESolution)
    {
        let solution = integrate(problem, initial: state(of: start), times: times, options: options, progress: progress)
        var trajectory = Trajectory.fromOverlaps(
            times: solution.times, overlaps: solution.states.map { overlaps(fromState: $0) }, risk: risk)
        if trajectory.observables.count == 1 { trajectory.observables = Trajectory.overlapObservables(p: p, k: k) }
        trajectory.status = solution.status
        trajectory.message = solution.message
        return (trajectory, solution)
    }

    public func curve(from start: Overlaps, times: [Double], options: ODEOptions) -> Trajectory {
        trajectory(from: start, times: times, options: options).trajectory
    }
}
