import Foundation
import Yams

/// A sweep's grid file: which spec fields and run options vary, over which values, and how the axes
/// combine into points.
///
///     command: ode                 # the subcommand every point runs (default ode)
///     combine: product             # product (default; the first axis varies slowest) | zip
///     arguments: ["--rtol", "1e-10"]   # fixed extra arguments of every point's command
///     axes:
///       training.learningRate: [0.1, 0.5, 1.0]   # a dotted path: a spec field
///       teacher.noise: "0:0.1:0.05"              # a range from:to:step (to included up to rounding)
///       student.p: {from: 2, to: 4, step: 1}     # the same as a mapping
///       dimension: [500, 1000]                   # no dot: a run option, passed as --dimension 500
///       "teacher.k, student.p": [[2, 2], [3, 3]] # linked: several fields varied together
///
/// A dotted axis sets that field of the base spec (intermediate sections are created when missing);
/// the point's spec is then read by the package's own spec reader, so a bad value is refused exactly
/// as `plateau ode --spec` would refuse it. An axis without a dot is the subcommand's option of that
/// name (`dimension`, `seeds`, `seed`, `alpha`, `method`, …); `command` as an axis varies the
/// subcommand itself. A linked axis names several fields separated by commas; each of its values is
/// a list with one entry per field (a zip inside the product: K = M with matching init matrices).
/// The collected CSV has one column per field. Range values are integers when from, to and step are all integers, otherwise
/// numbers rounded to 12 significant digits (so 0:1:0.1 gives 0.3, not 0.30000000000000004).
public struct SweepGrid: Sendable {
    public enum Combination: String, Sendable { case product, zip }

    public struct Axis: Sendable {
        /// Dotted spec paths (`training.learningRate`) or run options (`dimension`): one, or several
        /// varied together.
        public var names: [String]
        /// Each value: one YAML text per name (scalars plain, lists and mappings in flow style).
        public var values: [[String]]
        public var name: String { names.joined(separator: ", ") }
    }

    /// The field or option names of all axes, in order: the columns of a point's values.
    public var columns: [String] { axes.flatMap(\.names) }

    public var command: String
    public var combination: Combination
    public var arguments: [String]
    public var axes: [Axis]

    /// The most points a grid may have.
    public static let maximumPoints = 1_000_000

    public init(text: String) throws {
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch {
            throw SweepError("grid: not valid YAML: \(error)")
        }
        guard let mapping = root?.mapping else { throw SweepError("grid: expected a mapping with an `axes` section") }
        command = "ode"
        combination = .product
        arguments = []
        axes = []
        for (keyNode, value) in mapping {
            let key = keyNode.string ?? ""
            switch key {
            case "command":
                guard let s = value.string, !s.isEmpty else { throw SweepError("grid.command: expected a subcommand name (got \(Self.text(value)))") }
                command = s
            case "combine":
                guard let c = value.string.flatMap(Combination.init(rawValue:)) else {
                    throw SweepError("grid.combine: expected product or zip (got \(Self.text(value)))")
                }
                combination = c
            case "arguments":
                guard let seq = value.sequence, seq.allSatisfy({ $0.scalar != nil }) else {
                    throw SweepError("grid.arguments: expected a list of strings, e.g. [\"--rtol\", \"1e-10\"] (got \(Self.text(value)))")
                }
                arguments = seq.map { $0.scalar!.string }
            case "axes":
                guard let axesMapping = value.mapping, !axesMapping.isEmpty else {
                    throw SweepError("grid.axes: expected a non-empty mapping from a field or option to its values (got \(Self.text(value)))")
                }
                for (nameNode, valuesNode) in axesMapping {
                    guard let name = nameNode.string, !name.isEmpty else { throw SweepError("grid.axes: an axis name must be a string (got \(Self.text(nameNode)))") }
                    let names = name.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                    for n in names {
                        guard !columns.contains(n), names.filter({ $0 == n }).count == 1 else { throw SweepError("grid.axes.\(n): named twice") }
                        try Self.checkName(n)
                    }
                    let field = "grid.axes.\(name)"
                    if names.count == 1 {
                        axes.append(Axis(names: names, values: try Self.values(valuesNode, field: field).map { [$0] }))
                    } else {
                        guard let seq = valuesNode.sequence, !seq.isEmpty else {
                            throw SweepError("\(field): a linked axis takes a list of values, each a list of \(names.count) entries (got \(Self.text(valuesNode)))")
                        }
                        axes.append(Axis(names: names, values: try seq.map { v in
                            guard let entries = v.sequence, entries.count == names.count else {
                                throw SweepError("\(field): \(Self.text(v)) is not a list of \(names.count) entries (one per field)")
                            }
                            return entries.map(Self.text)
                        }))
                    }
                }
            default:
                throw SweepError("grid.\(key): unknown key (allowed: command, combine, arguments, axes)")
            }
        }
        guard !axes.isEmpty else { throw SweepError("grid.axes: missing (the grid needs at least one axis)") }
        if combination == .zip, let first = axes.first, let other = axes.first(where: { $0.values.count != first.values.count }) {
            throw SweepError("grid.axes.\(other.name): combine: zip needs axes of equal length (\(first.name) has \(first.values.count) values, \(other.name) has \(other.values.count))")
        }
        let count = pointCount
        guard count <= Self.maximumPoints else { throw SweepError("grid.axes: \(count) points is more than \(Self.maximumPoints)") }
    }

    /// The number of points: the product of the axis lengths, or their common length when zipped.
    public var pointCount: Int {
        switch combination {
        case .zip: return axes.first?.values.count ?? 0
        case .product: return axes.reduce(1) { $0 > Self.maximumPoints ? $0 : $0 * $1.values.count }
        }
    }

    /// The value of each axis at point `index` (product: row-major, the first axis varying slowest).
    /// One entry per column (`columns`).
    public func values(at index: Int) -> [String] {
        switch combination {
        case .zip: return axes.flatMap { $0.values[index] }
        case .product:
            var rest = index
            var out = [[String]](repeating: [], count: axes.count)
            for a in axes.indices.reversed() {
                let n = axes[a].values.count
                out[a] = axes[a].values[rest % n]
                rest /= n
            }
            return out.flatMap { $0 }
        }
    }

    static func checkName(_ name: String) throws {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" } }) else {
            throw SweepError("grid.axes.\(name): an axis is a dotted spec path (training.learningRate) or an option name (dimension)")
        }
        if !name.contains(".") && ["spec", "out", "format", "help", "version"].contains(name) {
            throw SweepError("grid.axes.\(name): set by the sweep itself, cannot be an axis")
        }
    }

    static func text(_ node: Node) -> String {
        if let s = node.scalar { return s.string }
        return ((try? Yams.serialize(node: flow(node))) ?? "?").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The node with every collection in flow style (one line).
    static func flow(_ node: Node) -> Node {
        switch node {
        case let .sequence(s): return Node(s.map(flow), node.tag, .flow)
        case let .mapping(m): return Node(m.map { (flow($0.key), flow($0.value)) }, node.tag, .flow)
        default: return node
        }
    }

    /// An axis's values: a list, a range mapping {from, to, step}, a range string "a:b:c", or one value.
    static func values(_ node: Node, field: String) throws -> [String] {
        if let seq = node.sequence {
            guard !seq.isEmpty else { throw SweepError("\(field): an empty list") }
            return seq.map(text)
        }
        if let m = node.mapping {
            let keys = Set(m.keys.compactMap(\.string))
            guard keys == ["from", "to", "step"] else {
                throw SweepError("\(field): a range is {from, to, step} (got keys \(keys.sorted().joined(separator: ", ")))")
            }
            func part(_ k: String) -> String { m[k].map(text) ?? "" }
            return try range(part("from"), part("to"), part("step"), field: field)
        }
        let s = text(node)
        let parts = s.split(separator: ":", omittingEmptySubsequences: false)
        if parts.count == 3, parts.allSatisfy({ Double($0.trimmingCharacters(in: .whitespaces)) != nil }) {
            return try range(String(parts[0]), String(parts[1]), String(parts[2]), field: field)
        }
        return [s]
    }

    static func range(_ a: String, _ b: String, _ c: String, field: String) throws -> [String] {
        let (sa, sb, sc) = (a.trimmingCharacters(in: .whitespaces), b.trimmingCharacters(in: .whitespaces), c.trimmingCharacters(in: .whitespaces))
        if let from = Int(sa), let to = Int(sb), let step = Int(sc) {
            guard step > 0 else { throw SweepError("\(field): the step must be > 0 (got \(step))") }
            guard to >= from else { throw SweepError("\(field): to \(to) is below from \(from)") }
            let count = (to - from) / step + 1
            guard count <= maximumPoints else { throw SweepError("\(field): \(count) values is more than \(maximumPoints)") }
            return stride(from: from, through: to, by: step).map(String.init)
        }
        guard let from = Double(sa), let to = Double(sb), let step = Double(sc), from.isFinite, to.isFinite else {
            throw SweepError("\(field): a range needs finite numbers from, to, step (got \(sa), \(sb), \(sc))")
        }
        guard step.isFinite, step > 0 else { throw SweepError("\(field): the step must be a finite number > 0 (got \(sc))") }
        guard to >= from else { throw SweepError("\(field): to \(sb) is below from \(sa)") }
        let steps = ((to - from) / step + 1e-9).rounded(.down)
        guard steps < Double(maximumPoints) else { throw SweepError("\(field): \(Int(steps) + 1) values is more than \(maximumPoints)") }
        return (0...Int(steps)).map { i in
            let v = Double(String(format: "%.12g", from + Double(i) * step))!
            return v == v.rounded() && abs(v) < 1e15 ? String(format: "%.1f", v) : "\(v)"
        }
    }
}

/// A sweep refused: the message names the grid field or point, and the value.
public struct SweepError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The spec of one point: the base spec with the point's dotted fields set.
public struct SweepSpecBuilder {
    let base: Node

    public init(baseText: String) throws {
        let node: Node?
        do { node = try Yams.compose(yaml: baseText) } catch { throw SweepError("--spec: not valid YAML or JSON: \(error)") }
        guard let node, node.mapping != nil else { throw SweepError("--spec: expected a mapping of sections (teacher, student, training, …)") }
        base = node
    }

    /// The YAML text of the base spec with `fields` (dotted path, YAML value text) set, in order.
    public func spec(setting fields: [(path: String, value: String)]) throws -> String {
        var root = base
        for (path, value) in fields {
            let node: Node
            do { node = try Yams.compose(yaml: value) ?? Node("") } catch { throw SweepError("\(path): \(value) is not a YAML value") }
            try Self.set(&root, path.split(separator: ".").map(String.init)[...], node, full: path)
        }
        do { return try Yams.serialize(node: root, width: -1, sortKeys: false) } catch {
            throw SweepError("cannot write the point's spec: \(error)")
        }
    }

    static func set(_ node: inout Node, _ path: ArraySlice<String>, _ value: Node, full: String) throws {
        guard let key = path.first else { node = value; return }
        guard node.mapping != nil else {
            throw SweepError("\(full): \(path.joined(separator: ".")) sits inside a value that is not a section")
        }
        var child = node[key] ?? Node([(Node, Node)]())
        if path.count > 1, child.mapping == nil {
            throw SweepError("\(full): the spec's \(key) is a value, not a section with fields")
        }
        try set(&child, path.dropFirst(), value, full: full)
        node[key] = child
    }
}
