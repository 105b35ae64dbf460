import ArgumentParser
import Foundation
import PlateauCore
import PlateauTheory

struct ODECommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ode",
        abstract: "Integrate the d = ∞ order-parameter ODEs of online SGD (EQUATIONS.md §1.1).",
        discussion: """
        Writes trajectory.csv (columns t, risk, M_j_r, Q_j_l, a_j, cos_j_r; 1-based) and report.json
        (spec, integrator status, counters, expectation routes) to --out (default results/ode).
        Random initial weights start the theory from their d = ∞ limit M = 0, Q = scale²·I.
        Example: plateau ode --spec spec.yaml --rtol 1e-10 --out results/ode
        """)

    @OptionGroup var common: SpecOptions
    @OptionGroup var integrator: IntegratorOptions

    @Option(name: .customLong("map-dimension"), help: ArgumentHelp("Iterate the exact one-step map (EQUATIONS.md §1.2) at this dimension d instead of integrating the ODE (any d, e.g. 4294967296; t·d steps, none of them costs anything that grows with d).", valueName: "d"))
    var mapDimension: Int?

    func validate() throws {
        if let mapDimension, mapDimension < 1 {
            throw ValidationError("--map-dimension must be an integer ≥ 1 (got \(mapDimension))")
        }
    }

    func run() throws {
        let experiment = try common.experiment()
        if experiment.multipass != nil {
            throw ValidationError("training.protocol: multipass is multi-pass GD: use plateau dmft (theory), simulate or compare")
        }
        let writer = try common.writer(default: "ode")
        let theory = try integrator.theory(experiment)
        let start = Date()
        let progress = Progress(mapDimension == nil ? "ode" : "map", parts: 1, enabled: !common.quiet)
        var (trajectory, solution) = (Trajectory(observables: []), ODESolution())
        if let mapDimension {
            let times = OnlineTime.realisedTimes(experiment.recordTimes, dimension: mapDimension)
            (trajectory, solution.projections) = OnlineSGDMap(theory, dimension: Double(mapDimension)).run(from: theory.initialOverlaps, times: times) {
                progress.update(part: 0, fraction: $0)
            }
            solution.status = trajectory.status
            solution.message = trajectory.message
            solution.steps = OnlineTime.step(at: trajectory.times.last ?? 0, dimension: mapDimension)
        } else {
            (trajectory, solution) = theory.trajectory(from: theory.initialOverlaps, times: experiment.recordTimes,
                                                       options: integrator.options) { progress.update(part: 0, fraction: $0) }
        }
        progress.done()
        let seconds = Date().timeIntervalSince(start)
        let report: [String: Any] = [
            "plateau_version": PlateauVersion.string,
            "command": "ode",
            "spec": experiment.specTree,
            "risk_definition": "½E[(g − f)²] + Δ/2 (population risk including label noise)",
            "time_axis": "t = SGD steps / d",
            "integrator": [
                "method": mapDimension == nil ? integrator.method.rawValue : "exact one-step map",
                "map_dimension": mapDimension.map(Double.init) ?? Double.infinity, "rtol": integrator.rtol, "atol": integrator.atol,
                "euler_step": integrator.eulerStep, "population_flow": integrator.populationFlow,
                "status": solution.status.rawValue, "message": solution.message,
                "rhs_evaluations": solution.rhsEvaluations, "steps": solution.steps,
                "cone_projections": solution.projections.count, "largest_projected_depth": solution.projections.largestDepth,
            ] as [String: Any],
            "expectation_route": theory.route.rawValue,
            "expectation_route_description": theory.routeDescription,
            "quadrature_error_estimate_at_start": theory.quadratureErrorEstimate(theory.initialOverlaps),
            "expectation_routes": Dictionary(uniqueKeysWithValues: theory.routes.map { ($0.0, $0.1) }),
            "trajectory": JSON.trajectory(trajectory),
        ]
        try writer.write("trajectory.csv", trajectory.csv())
        // The wall time goes to stdout only: the files are the same bytes on a rerun.
        try writer.write("report.json", JSON.string(report))
        if common.format == .json {
            var shown = report
            shown["wall_seconds"] = seconds
            print(JSON.string(shown), terminator: "")
        } else {
            print("expectations: \(theory.route.rawValue): \(theory.routeDescription)")
            if theory.route == .quadrature {
                print("quadrature error estimate at the start: \(String(format: "%.2g", theory.quadratureErrorEstimate(theory.initialOverlaps)))")
            }
            print("ODE: \(solution.status.rawValue) (\(solution.message)); \(solution.rhsEvaluations) rhs evaluations, \(solution.steps) steps, \(String(format: "%.3f", seconds)) s")
            print(Table.render(header: ["t", "risk", "M_1_1", "Q_1_1"], rows: Table.pick(trajectory, ["risk", "M_1_1", "Q_1_1"])))
            print("wrote \(writer.path("trajectory.csv")), \(writer.path("report.json"))")
        }
        if solution.status != .completed { note("warning: the integration ended early: \(solution.message)") }
    }
}

/// Plain text tables for stdout.
enum Table {
    static func render(header: [String], rows: [[String]]) -> String {
        let widths = header.indices.map { c in max(header[c].count, rows.map { $0[c].count }.max() ?? 0) }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { String(repeating: " ", count: widths[$0.offset] - $0.element.count) + $0.element }.joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }

    /// About a dozen rows of the named columns, spread over the curve.
    static func pick(_ t: Trajectory, _ columns: [String], rows: Int = 12) -> [[String]] {
        guard !t.times.isEmpty else { return [] }
        let idx = Set((0..<rows).map { Int((Double($0) / Double(rows - 1) * Double(t.times.count - 1)).rounded()) })
        let cols = columns.compactMap { t.observables.firstIndex(of: $0) }
        return idx.sorted().map { i in [fmt(t.times[i])] + cols.map { fmt(t.values[i][$0]) } }
    }

    static func fmt(_ x: Double) -> String {
        x.isFinite ? String(format: "%.5g", x) : Trajectory.format(x)
    }
}
