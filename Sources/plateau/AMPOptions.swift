import ArgumentParser
import Foundation
import PlateauCore

/// The options of the amp-protocol subcommands (se, threshold): the spec and its overrides.
struct EstimationOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Specification of the amp protocol, YAML or JSON (see `plateau se --help` for a sample). Default: sign(z1*z2), k = 2.", valueName: "file"))
    var spec: String?

    @Option(name: .long, help: ArgumentHelp("Folder for the results (created if missing; files are replaced atomically).", valueName: "dir"))
    var out: String?

    @Option(name: .long, help: "table: a short table on stdout; json: the result as JSON on stdout. Files are written either way.")
    var format: OutputFormat = .table

    @Flag(name: .long, help: "No progress on stderr.")
    var quiet = false

    @Option(name: .long, help: "Override teacher.noise (the label-noise variance Δ).")
    var noise: Double?

    @Option(name: .long, help: "Override amp.damping (β in [0, 1)).")
    var damping: Double?

    /// The resolved problem: command line overrides the file, which overrides the defaults.
    func problem() throws -> EstimationProblem {
        var p: EstimationProblem
        if let spec {
            guard FileManager.default.isReadableFile(atPath: spec) else {
                throw ValidationError("--spec: cannot read the file \(spec)")
            }
            var overrides: [SpecOverride] = []
            if let noise { overrides.append(SpecOverride("teacher.noise", noise)) }
            if let damping { overrides.append(SpecOverride("amp.damping", damping)) }
            do {
                p = try EstimationProblem(contentsOf: URL(fileURLWithPath: spec), overrides: overrides)
            } catch let error as SpecError {
                throw ValidationError("invalid specification \(spec): \(error)")
            }
        } else {
            p = .signProduct
        }
        if let noise { p.teacher.noiseVariance = noise }
        if let damping { p.settings.damping = damping }
        do { try p.validate() } catch let error as SpecError {
            throw ValidationError("invalid specification: \(error)")
        }
        return p
    }

    func writer(default name: String) throws -> ResultWriter {
        try ResultWriter(path: out ?? "results/\(name)")
    }
}

/// An α grid: one number, or start:stop:step (inclusive of stop up to rounding), or a comma list.
enum AlphaGrid {
    static func parse(_ text: String, option: String = "--alpha") throws -> [Double] {
        func number(_ s: Substring) throws -> Double {
            guard let v = Double(s.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("\(option): \"\(s)\" is not a number (write A, start:stop:step or a comma-separated list)")
            }
            try check(v)
            return v
        }
        func check(_ v: Double) throws {
            guard v.isFinite, v > 0 else { throw ValidationError("\(option): the sample ratio α = n/d must be a finite number > 0 (got \(v))") }
        }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        if parts.count == 3 {
            let start = try number(parts[0]), stop = try number(parts[1])
            guard let step = Double(parts[2].trimmingCharacters(in: .whitespaces)), step.isFinite, step > 0 else {
                throw ValidationError("\(option): the step of start:stop:step must be a finite number > 0 (got \"\(parts[2])\")")
            }
            guard stop >= start else { throw ValidationError("\(option): stop \(stop) is below start \(start)") }
            let count = Int(((stop - start) / step + 1e-9).rounded(.down)) + 1
            guard count <= 100_000 else { throw ValidationError("\(option): \(count) points is more than 100000") }
            return (0..<count).map { start + Double($0) * step }
        }
        guard parts.count == 1 else { throw ValidationError("\(option): write A, start:stop:step or a comma-separated list (got \"\(text)\")") }
        return try text.split(separator: ",").map(number)
    }
}

extension Matrix {
    /// The entries as named columns M_r_s (1-based, row-major).
    static func overlapNames(k: Int) -> [String] {
        (1...k).flatMap { r in (1...k).map { "M_\(r)_\($0)" } }
    }
}
