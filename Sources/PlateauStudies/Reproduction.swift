import Dispatch
import Foundation
import PlateauCompare
import PlateauCore

/// A named reproduction of a published result: it runs theory (and simulations where they are part
/// of the claim) and returns every file of its folder — the spec of each experiment it used, CSV
/// data, a `plot.ipynb` that draws the figures from the CSVs, and a `README.md` with the measured
/// numbers. `plateau reproduce NAME` writes them under `notebooks-data/NAME/` (ARCHITECTURE.md,
/// "Folders").
///
/// A new study is a new conforming type added to `Reproductions.all`; the framework below (files,
/// CSV tables, notebooks, agreement summaries) is shared.
public protocol Reproduction: Sendable {
    /// The command-line name (`plateau reproduce NAME`), lower-case with dashes.
    var name: String { get }
    /// One line: what is computed.
    var title: String { get }
    /// What published result this reproduces, with its source.
    var reproduces: String { get }
    /// Runs the study. Deterministic given `settings`; `progress` receives a stage label and the
    /// fraction of that stage done (from any thread).
    func run(_ settings: ReproductionSettings, progress: @escaping ReproductionProgress) throws -> ReproductionResult
}

/// Progress of a reproduction: (stage label, fraction of that stage done in [0, 1]).
public typealias ReproductionProgress = @Sendable (_ stage: String, _ fraction: Double) -> Void

/// What a reproduction may be told from outside. Everything else is the study's own documented default.
public struct ReproductionSettings: Sendable, Hashable {
    /// Tiny sizes (for tests and a first look): a few seconds, same files and columns.
    public var quick: Bool
    /// Seeds per simulated configuration (nil: the study's default).
    public var seeds: Int?
    /// Simulated input dimensions (nil: the study's default).
    public var dimensions: [Int]?
    /// Master seed of every random stream the study draws.
    public var masterSeed: UInt64

    public init(quick: Bool = false, seeds: Int? = nil, dimensions: [Int]? = nil, masterSeed: UInt64 = 1) {
        self.quick = quick
        self.seeds = seeds
        self.dimensions = dimensions
        self.masterSeed = masterSeed
    }

    /// Refuses settings no study can use, naming the field and the value.
    public func validate() throws {
        if let seeds, seeds < 2 {
            throw SpecError(field: "--seeds", value: "\(seeds)", reason: "must be an integer ≥ 2 (a standard error needs two seeds)")
        }
        if let dimensions {
            guard !dimensions.isEmpty else { throw SpecError(field: "--dimensions", value: "[]", reason: "must list at least one dimension") }
            for d in dimensions where d < 16 {
                throw SpecError(field: "--dimensions", value: "\(d)", reason: "each dimension must be an integer ≥ 16")
            }
        }
    }
}

/// One file of a reproduction's folder; `path` is relative to that folder (it may name a sub-folder,
/// e.g. `specs/theory.yaml`).
public struct ReproductionFile: Sendable, Hashable {
    public var path: String
    public var contents: String

    public init(path: String, contents: String) {
        self.path = path
        self.contents = contents
    }
}

/// The outcome of a reproduction: the files to write and the text for stdout.
public struct ReproductionResult: Sendable {
    public var files: [ReproductionFile] = []
    /// Measured numbers as plain text (tables), printed by the CLI.
    public var summary: String = ""

    public init() {}

    public mutating func add(_ path: String, _ contents: String) {
        precondition(!files.contains { $0.path == path }, "reproduction file \(path) written twice")
        files.append(ReproductionFile(path: path, contents: contents))
    }

    public mutating func add(_ path: String, _ table: CSVTable) { add(path, table.text) }

    /// Adds the specification of an experiment as `specs/NAME.yaml`, in the file schema of
    /// `Experiment(specText:)` (written by `Experiment.specJSON`: JSON is YAML, so the file is read
    /// back by `plateau ode --spec FILE` as it is).
    public mutating func addSpec(_ name: String, _ experiment: Experiment, comment: String) {
        let header = comment.split(separator: "\n", omittingEmptySubsequences: false).map { "# " + $0 }.joined(separator: "\n")
        add("specs/\(name).yaml", header + "\n" + experiment.specJSON + "\n")
    }

    /// Adds the specification of an amp-protocol problem as `specs/NAME.yaml` (read back by
    /// `plateau threshold --spec FILE` and `plateau se --spec FILE` as it is).
    public mutating func addSpec(_ name: String, _ problem: EstimationProblem, comment: String) {
        let header = comment.split(separator: "\n", omittingEmptySubsequences: false).map { "# " + $0 }.joined(separator: "\n")
        add("specs/\(name).yaml", header + "\n" + problem.specJSON + "\n")
    }
}

/// The registry of reproductions known to `plateau reproduce`.
public enum Reproductions {
    public static let all: [any Reproduction] = [SaadSollaPlateaus(), LossComparison(), BatchSizeTradeoff(), WeakRecoveryStudy(),
                                                   SpectralTransitionStudy(), BatchReuseStudy()]

    public static func named(_ name: String) -> (any Reproduction)? {
        all.first { $0.name == name.lowercased() }
    }

    public static var names: [String] { all.map(\.name) }

    /// Runs `body` over `jobs` on all cores, reporting the fraction of jobs done as `stage`; the
    /// results are in job order, independent of scheduling.
    static func parallel<J: Sendable, R: Sendable>(_ jobs: [J], stage: String, _ progress: @escaping ReproductionProgress,
                                                   _ body: @escaping @Sendable (J) -> R) -> [R] {
        let slots = JobResults<R>(count: jobs.count)
        progress(stage, 0)
        WorkerThreads.forEach(jobs.count) { i in
            progress(stage, Double(slots.set(i, body(jobs[i]))) / Double(jobs.count))
        }
        return slots.values
    }
}

// MARK: - Files

/// A CSV table with declared columns; numbers are written by `Trajectory.format` (NaN and ±∞ as
/// `nan`, `inf`, `-inf`).
public struct CSVTable: Sendable {
    public let columns: [String]
    public private(set) var rows: [[String]] = []

    public init(columns: [String]) { self.columns = columns }

    /// Appends one row; its cells must match the declared columns one to one.
    public mutating func append(_ cells: [any CSVCell]) {
        precondition(cells.count == columns.count, "CSV row has \(cells.count) cells for \(columns.count) columns")
        rows.append(cells.map(\.csvText))
    }

    public var text: String {
        ([columns] + rows).map { $0.joined(separator: ",") }.joined(separator: "\n") + "\n"
    }
}

/// A value that can stand in a CSV cell.
public protocol CSVCell { var csvText: String { get } }
extension Double: CSVCell { public var csvText: String { Trajectory.format(self) } }
extension Int: CSVCell { public var csvText: String { "\(self)" } }
extension UInt64: CSVCell { public var csvText: String { "\(self)" } }
extension Bool: CSVCell { public var csvText: String { self ? "true" : "false" } }
extension String: CSVCell {
    public var csvText: String {
        contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + replacingOccurrences(of: "\"", with: "\"\"") + "\"" : self
    }
}

/// A Jupyter notebook (nbformat 4.5): markdown and Python code cells, no outputs.
public struct Notebook: Sendable {
    public enum Cell: Sendable {
        case markdown(String)
        case code(String)
    }

    public var cells: [Cell]

    public init(_ cells: [Cell]) { self.cells = cells }

    /// The notebook as JSON (nbformat 4, minor 5: every cell has an id).
    public var json: String {
        func lines(_ text: String) -> [String] {
            // nbformat stores source as a list of lines, each but the last ending in "\n".
            let parts = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            return parts.enumerated().map { $0.offset == parts.count - 1 ? $0.element : $0.element + "\n" }
        }
        let cellTrees: [[String: Any]] = cells.enumerated().map { i, cell in
            switch cell {
            case let .markdown(text):
                return ["cell_type": "markdown", "id": "cell-\(i)", "metadata": [String: Any](), "source": lines(text)]
            case let .code(text):
                return ["cell_type": "code", "id": "cell-\(i)", "metadata": [String: Any](), "source": lines(text),
                        "execution_count": NSNull(), "outputs": [Any]()]
            }
        }
        let tree: [String: Any] = [
            "cells": cellTrees,
            "metadata": [
                "kernelspec": ["display_name": "Python 3", "language": "python", "name": "python3"],
                "language_info": ["name": "python"],
            ] as [String: Any],
            "nbformat": 4,
            "nbformat_minor": 5,
        ]
        let data = try! JSONSerialization.data(withJSONObject: tree, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}

/// A Markdown table with padded columns (reads as plain text on a terminal too).
public enum MarkdownTable {
    public static func render(_ header: [String], _ rows: [[String]]) -> String {
        let widths = header.indices.map { c in max(3, header[c].count, rows.map { $0[c].count }.max() ?? 0) }
        func line(_ cells: [String]) -> String {
            "| " + cells.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                .joined(separator: " | ") + " |"
        }
        let rule = "|" + widths.map { String(repeating: "-", count: $0 + 2) }.joined(separator: "|") + "|"
        return ([line(header), rule] + rows.map(line)).joined(separator: "\n")
    }

    /// A number with `digits` significant digits (NaN and ±∞ spelled out).
    public static func number(_ x: Double, _ digits: Int = 5) -> String {
        x.isFinite ? String(format: "%.\(digits)g", x) : Trajectory.format(x)
    }
}

// MARK: - Agreement, summarised for a study's tables

extension AgreementReport {
    /// The largest |mean deviation| over all comparisons in units of its standard error.
    public var maximumStandardErrors: Double {
        comparisons.map { $0.deviationStandardError > 0 ? $0.zScore : 0 }.max() ?? .nan
    }

    /// The largest |mean deviation| / threshold (≤ 1 everywhere means "agrees").
    public var worstThresholdRatio: Double {
        comparisons.map { abs($0.meanDeviation) / $0.threshold }.max() ?? .nan
    }

    /// One phrase: "agrees (N of N)" or "differs at N of M; first at t = … (observable)".
    public var verdict: String {
        let agreeing = comparisons.filter(\.agrees).count
        if agreesEverywhere { return "agrees (\(agreeing) of \(comparisons.count))" }
        var s = "differs at \(comparisons.count - agreeing) of \(comparisons.count)"
        if let f = firstDisagreement { s += "; first at t = \(MarkdownTable.number(f.time, 4)) (\(f.observable))" }
        return s
    }
}
