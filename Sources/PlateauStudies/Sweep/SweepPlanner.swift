import Foundation
import PlateauCore

/// Turns a base spec and a grid into validated points. Every point's spec is built from the base and
/// read back through the package's spec reader (`Experiment` or, for `training.protocol: amp`,
/// `EstimationProblem`), and its command line is checked by `checkArguments` (the command-line
/// parser, supplied by the executable), before anything runs: a bad point is refused naming its
/// index, its values, the field and the value.
public enum SweepPlanner {
    public struct Result: Sendable {
        public var plan: SweepPlan
        public var points: [SweepPoint]
        public var specs: [String]
    }

    /// The subcommands a point may run, and the option that carries its random seed (nil: none).
    public static let commands = ["ode", "simulate", "compare", "se", "threshold", "gamp", "dmft", "spectral"]

    /// With `only`, just the points it accepts are built and validated (a resumed sweep checks the
    /// points it is about to run; the others were checked when the sweep was planned).
    public static func plan(baseSpec: String, gridText: String, only: ((Int) -> Bool)? = nil,
                            checkArguments: ([String]) throws -> Void) throws -> Result {
        let grid = try SweepGrid(text: gridText)
        let builder = try SweepSpecBuilder(baseText: baseSpec)
        let count = grid.pointCount
        var points: [SweepPoint] = []
        var specs: [String] = []
        var checked = Set<[String]>()   // command lines already accepted (most points share one)
        points.reserveCapacity(count)
        specs.reserveCapacity(count)
        for index in 0..<count where only?(index) ?? true {
            let values = grid.values(at: index)
            func refuse(_ message: String) -> SweepError {
                let where_ = zip(grid.columns, values).map { "\($0) = \($1)" }.joined(separator: ", ")
                return SweepError("point \(index) (\(where_)): \(message)")
            }
            var command = grid.command
            var options: [String] = []
            var fields: [(path: String, value: String)] = []
            for (name, value) in zip(grid.columns, values) {
                if name.contains(".") {
                    fields.append((name, value))
                } else if name == "command" {
                    command = value
                } else if value == "true" {
                    options.append("--\(name)")
                } else if value != "false" {
                    options += ["--\(name)", value]
                }
            }
            guard commands.contains(command) else {
                throw refuse("command: \(command) is not a subcommand a sweep can run (\(commands.joined(separator: ", ")))")
            }
            let spec: String
            do {
                spec = try builder.spec(setting: fields)
                if try EstimationProblem.declaredProtocol(specText: spec) == .amp {
                    _ = try EstimationProblem(specText: spec)
                } else {
                    _ = try Experiment(specText: spec)
                }
            } catch let error as SweepError {
                throw refuse(error.description)
            } catch {
                throw refuse("\(error)")
            }
            let arguments = [command, "--spec", "spec.yaml", "--out", "."] + options + grid.arguments
            if !checked.contains(arguments) {
                do { try checkArguments(arguments) } catch { throw refuse("\(error)") }
                checked.insert(arguments)
            }
            points.append(SweepPoint(index: index, values: values, arguments: arguments))
            specs.append(spec)
        }
        let plan = SweepPlan(plateauVersion: PlateauVersion.string, baseSpec: baseSpec, grid: gridText,
                             axes: grid.columns, pointCount: count)
        return Result(plan: plan, points: points, specs: specs)
    }
}
