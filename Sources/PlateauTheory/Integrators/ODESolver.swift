internal import CGSL
import PlateauCore

/// Integration method. The adaptive ones are GSL odeiv2 steppers with standard step control
/// (local error < atol + rtol·|y|); `euler` is explicit Euler with the fixed step `eulerStep`,
/// which reproduces the public Euler codes (sgoldt/nn2pp and friends) digit for digit.
public enum ODEMethod: String, Sendable, Hashable, CaseIterable {
    case rk8pd, rkck, rkf45, rk4, euler
}

public struct ODEOptions: Sendable, Hashable {
    public var method: ODEMethod
    public var relativeTolerance: Double
    public var absoluteTolerance: Double
    /// First trial step of the adaptive methods.
    public var initialStep: Double
    /// The fixed step of `.euler`.
    public var eulerStep: Double
    /// Give up (status `.integratorFailure`) after this many accepted steps.
    public var maxSteps: Int

    public init(method: ODEMethod = .rk8pd, relativeTolerance: Double = 1e-8, absoluteTolerance: Double = 1e-10,
                initialStep: Double = 1e-3, eulerStep: Double = 0.01, maxSteps: Int = 50_000_000) {
        self.method = method
        self.relativeTolerance = relativeTolerance
        self.absoluteTolerance = absoluteTolerance
        self.initialStep = initialStep
        self.eulerStep = eulerStep
        self.maxSteps = maxSteps
    }
}

/// The result of an integration: states at the output times that were reached, with status,
/// message and counters. Failure is data (phase-diagram scans need that), not a thrown error.
public struct ODESolution: Sendable {
    public var times: [Double] = []
    public var states: [[Double]] = []
    public var status: TrajectoryStatus = .completed
    public var message: String = ""
    public var rhsEvaluations: Int = 0
    public var steps: Int = 0
    /// Projections of the state back onto its admissible set (`ODEProblem.constrain`).
    public var projections = StateProjections()

    public init() {}
}

/// How many times a state was projected back onto its admissible set (the PSD cone of the
/// overlaps, `ConeGuard`), and the largest depth projected away.
public struct StateProjections: Sendable, Hashable {
    public var count = 0
    public var largestDepth = 0.0
    public init() {}

    mutating func record(_ depth: Double) {
        count += 1
        largestDepth = max(largestDepth, depth)
    }

    /// "" without projections, else "; N projections onto the PSD cone (largest depth x)".
    public var summary: String {
        count == 0 ? "" : "; \(count) projection\(count == 1 ? "" : "s") onto the PSD cone (largest depth \(String(format: "%.1e", largestDepth)))"
    }
}

/// What `ODEProblem.constrain` did to a state.
public enum StateConstraint: Sendable, Hashable {
    case accepted
    /// Moved back onto the admissible set from this depth outside it.
    case projected(depth: Double)
    /// A real departure: the integration ends with this status.
    case failed(TrajectoryStatus, String)
}

/// An autonomous-or-not ODE y' = f(t, y). `rhs` writes f into its last argument; it may throw
/// (the error ends the integration and is reported in the solution's message).
public struct ODEProblem {
    public var dimension: Int
    public var rhs: (Double, UnsafeBufferPointer<Double>, UnsafeMutableBufferPointer<Double>) throws -> Void
    /// Checked after every accepted step: a non-nil (status, message) ends the integration there.
    public var check: ([Double]) -> (TrajectoryStatus, String)?
    /// Optional, run after every accepted step before `check`: may move the state back onto its
    /// admissible set (a projection, counted in `ODESolution.projections`) or end the integration.
    /// Its second argument is the integrator's own bound on one step's error per component, from
    /// which the problem derives how far outside a state may be and still be integration error:
    /// atol + rtol·max|yᵢ| for the adaptive methods (their step control keeps the estimated local
    /// error below it), ½·dt·max|fᵢ(y_k) − fᵢ(y_{k−1})| ≈ ½dt²|y''| for explicit Euler.
    public var constrain: ((UnsafeMutableBufferPointer<Double>, Double) -> StateConstraint)?

    public init(dimension: Int,
                rhs: @escaping (Double, UnsafeBufferPointer<Double>, UnsafeMutableBufferPointer<Double>) throws -> Void,
                check: @escaping ([Double]) -> (TrajectoryStatus, String)? = { _ in nil },
                constrain: ((UnsafeMutableBufferPointer<Double>, Double) -> StateConstraint)? = nil) {
        self.dimension = dimension
        self.rhs = rhs
        self.check = check
        self.constrain = constrain
    }
}

private final class RHSBox {
    let problem: ODEProblem
    var evaluations = 0
    var error: Error?
    init(_ problem: ODEProblem) { self.problem = problem }
}

private let gslRHS: @convention(c) (Double, UnsafePointer<Double>?, UnsafeMutablePointer<Double>?, UnsafeMutableRawPointer?) -> Int32 = {
    t, y, f, params in
    let box = Unmanaged<RHSBox>.fromOpaque(params!).takeUnretainedValue()
    box.evaluations += 1
    let n = box.problem.dimension
    do {
        try box.problem.rhs(t, UnsafeBufferPointer(start: y, count: n), UnsafeMutableBufferPointer(start: f, count: n))
    } catch {
        box.error = error
        return Int32(GSL_EBADFUNC)
    }
    for i in 0..<n where !f![i].isFinite { return Int32(GSL_EBADFUNC) }
    return Int32(GSL_SUCCESS)
}

/// Integrates `problem` from y(t₀) = `initial` and records the state at each of `times`
/// (sorted, ≥ t₀; the first may equal t₀). `progress` receives the fraction of the time span done
/// after each output time.
public func integrate(_ problem: ODEProblem, initial: [Double], from t0: Double = 0, times: [Double],
                      options: ODEOptions = ODEOptions(), progress: ((Double) -> Void)? = nil) -> ODESolution {
    _ = GSL.ready
    precondition(initial.count == problem.dimension)
    var run = IntegrationRun(problem: problem, t0: t0, span: max((times.last ?? t0) - t0, .leastNormalMagnitude),
                             progress: progress, y: initial, t: t0)
    if options.method == .euler { return run.euler(dt: options.eulerStep, times: times) }

    let box = RHSBox(problem)
    let n = problem.dimension
    func finish(_ status: TrajectoryStatus, _ message: String) -> ODESolution {
        run.finish(status, message, evaluations: box.evaluations)
    }
    let stepType: OpaquePointer? = {
        switch options.method {
        case .rk8pd: return OpaquePointer(plateau_step_rk8pd())
        case .rkck: return OpaquePointer(plateau_step_rkck())
        case .rkf45: return OpaquePointer(plateau_step_rkf45())
        case .rk4: return OpaquePointer(plateau_step_rk4())
        case .euler: return nil
        }
    }()
    let unmanaged = Unmanaged.passRetained(box)
    defer { unmanaged.release() }
    var system = gsl_odeiv2_system(function: gslRHS, jacobian: nil, dimension: n, params: unmanaged.toOpaque())
    guard let stepper = gsl_odeiv2_step_alloc(UnsafePointer(stepType), n),
          let control = gsl_odeiv2_control_standard_new(options.absoluteTolerance, options.relativeTolerance, 1, 0),
          let evolve = gsl_odeiv2_evolve_alloc(n) else {
        return finish(.integratorFailure, "GSL could not allocate the integrator")
    }
    defer {
        gsl_odeiv2_evolve_free(evolve)
        gsl_odeiv2_control_free(control)
        gsl_odeiv2_step_free(stepper)
    }
    gsl_odeiv2_step_set_driver(stepper, nil)
    var h = options.initialStep
    for target in times {
        while run.t < target {
            var t = run.t
            let status = run.y.withUnsafeMutableBufferPointer { yp in
                gsl_odeiv2_evolve_apply(evolve, control, stepper, &system, &t, target, &h, yp.baseAddress!)
            }
            run.t = t
            run.solution.steps += 1
            if status != GSL_SUCCESS {
                if let e = box.error { return finish(.integratorFailure, "right-hand side failed at t = \(t): \(e)") }
                if !run.y.allSatisfy(\.isFinite) { return finish(.diverged, "state became non-finite at t = \(t)") }
                if let bad = problem.check(run.y) { return finish(bad.0, bad.1 + " (t = \(t))") }
                return finish(.integratorFailure, "GSL: \(GSL.message(status)) at t = \(t), h = \(h)")
            }
            if run.solution.steps >= options.maxSteps {
                return finish(.integratorFailure, "more than \(options.maxSteps) steps before t = \(target)")
            }
            if !run.y.allSatisfy(\.isFinite) { return finish(.diverged, "state became non-finite at t = \(t)") }
            var largest = 0.0
            for i in 0..<n { largest = max(largest, abs(run.y[i])) }
            if let bad = run.constrained(options.absoluteTolerance + options.relativeTolerance * largest) {
                return finish(bad.0, bad.1 + " (t = \(t))")
            }
            if let bad = problem.check(run.y) { return finish(bad.0, bad.1 + " (t = \(t))") }
        }
        if let bad = run.record(target) { return finish(bad.0, bad.1 + " (t = \(target))") }
    }
    return finish(.completed, "\(options.method.rawValue), rtol = \(options.relativeTolerance), atol = \(options.absoluteTolerance)")
}

/// The state of one integration: the current y and t, the solution so far, and the steps shared by
/// the methods (the constraint, recording an output time, finishing). A value whose methods mutate
/// it in place, so the explicit Euler loop touches its state with no run-time exclusivity checks.
private struct IntegrationRun {
    let problem: ODEProblem
    let t0: Double, span: Double
    let progress: ((Double) -> Void)?
    var y: [Double]
    var t: Double
    var solution = ODESolution()

    /// The solution with its status, message (plus the projections' summary) and evaluation count.
    func finish(_ status: TrajectoryStatus, _ message: String, evaluations: Int) -> ODESolution {
        var s = solution
        s.status = status
        s.message = message + solution.projections.summary
        s.rhsEvaluations = evaluations
        return s
    }

    /// `problem.constrain` on the current state; nil, or the failure that ends the integration.
    mutating func constrained(_ localError: Double) -> (TrajectoryStatus, String)? {
        guard let constrain = problem.constrain else { return nil }
        switch y.withUnsafeMutableBufferPointer({ constrain($0, localError) }) {
        case .accepted: return nil
        case let .projected(depth): solution.projections.record(depth); return nil
        case let .failed(status, message): return (status, message)
        }
    }

    mutating func record(_ time: Double) -> (TrajectoryStatus, String)? {
        if let bad = problem.check(y) { return bad }
        solution.times.append(time)
        solution.states.append(y)
        progress?((time - t0) / span)
        return nil
    }

    /// Explicit Euler with the fixed step `dt` to each of `times`.
    mutating func euler(dt: Double, times: [Double]) -> ODESolution {
        let n = problem.dimension
        var f = [Double](repeating: 0, count: n), previous = f
        var stepIndex = 0, evaluations = 0
        /// f(t, y) into `f`; false when the right-hand side threw (`failure` holds the message).
        var failure = ""
        func evaluate(_ run: inout IntegrationRun, _ f: inout [Double]) -> Bool {
            evaluations += 1
            do {
                try run.y.withUnsafeBufferPointer { yp in
                    try f.withUnsafeMutableBufferPointer { fp in try run.problem.rhs(run.t, yp, fp) }
                }
                return true
            } catch {
                failure = "right-hand side failed at t = \(run.t): \(error)"
                return false
            }
        }
        // With a constraint, f(y_k) is evaluated right after step k (and reused by step k + 1), so
        // that the step's error estimate ½dt·|f(y_k) − f(y_{k−1})| is known before y_k is accepted.
        let lookahead = problem.constrain != nil
        if lookahead && !evaluate(&self, &f) { return finish(.integratorFailure, failure, evaluations: evaluations) }
        for target in times {
            let targetStep = Int(((target - t0) / dt).rounded())
            while stepIndex < targetStep {
                if !lookahead && !evaluate(&self, &f) { return finish(.integratorFailure, failure, evaluations: evaluations) }
                for i in 0..<n { y[i] += dt * f[i] }
                stepIndex += 1
                solution.steps += 1
                t = t0 + Double(stepIndex) * dt
                if !y.allSatisfy(\.isFinite) { return finish(.diverged, "state became non-finite at t = \(t)", evaluations: evaluations) }
                if lookahead {
                    swap(&f, &previous)
                    if !evaluate(&self, &f) { return finish(.integratorFailure, failure, evaluations: evaluations) }
                    var change = 0.0
                    for i in 0..<n { change = max(change, abs(f[i] - previous[i])) }
                    let projections = solution.projections.count
                    if let bad = constrained(0.5 * dt * change) {
                        return finish(bad.0, bad.1 + " (t = \(t))", evaluations: evaluations)
                    }
                    if solution.projections.count != projections && !evaluate(&self, &f) {
                        return finish(.integratorFailure, failure, evaluations: evaluations)
                    }
                }
                if let bad = problem.check(y) { return finish(bad.0, bad.1 + " (t = \(t))", evaluations: evaluations) }
            }
            if let bad = record(target) { return finish(bad.0, bad.1 + " (t = \(target))", evaluations: evaluations) }
        }
        return finish(.completed, "explicit Euler, dt = \(dt)", evaluations: evaluations)
    }
}
