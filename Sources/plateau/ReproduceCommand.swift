import ArgumentParser
import Foundation
import PlateauCore
import PlateauStudies

struct ReproduceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reproduce",
        abstract: "Run a named reproduction of a published result and write its folder (specs, CSVs, notebook, README).",
        discussion: """
        Writes, under --out (default notebooks-data/NAME): specs/*.yaml (every experiment used), the CSV \
        data, plot.ipynb (Jupyter: Python, pandas and matplotlib read the CSVs and draw the figures) and \
        README.md (what is reproduced, the settings and the measured agreement). Every file is replaced \
        atomically; nothing is written when the run fails. The measured numbers go to stdout, progress to stderr.

        Known reproductions: \(Reproductions.names.joined(separator: ", ")) (plateau reproduce --list).

        Example: plateau reproduce saad-solla --quick --out /tmp/saad-solla
        """)

    @Argument(help: "The reproduction to run (see --list).")
    var name: String?

    @Flag(name: .long, help: "List the known reproductions and exit.")
    var list = false

    @Option(name: .long, help: ArgumentHelp("Folder for the files (default notebooks-data/NAME).", valueName: "dir"))
    var out: String?

    @Flag(name: .long, help: "Tiny sizes (seconds): the same files and columns, for tests and a first look.")
    var quick = false

    @Option(name: .long, help: "Seeds per simulated configuration (default: the study's).")
    var seeds: Int?

    @Option(name: .long, help: ArgumentHelp("Simulated input dimensions, comma-separated (default: the study's).", valueName: "d1,d2,..."))
    var dimensions: String?

    @Option(name: .long, help: "Master random seed of every stream the study draws.")
    var seed: UInt64 = 1

    @Flag(name: .long, help: "No progress on stderr.")
    var quiet = false

    @OptionGroup var control: RunOptions

    func settings() throws -> ReproductionSettings {
        var dims: [Int]?
        if let dimensions {
            dims = try dimensions.split(separator: ",", omittingEmptySubsequences: false).map { part in
                guard let d = Int(part.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("--dimensions: each entry must be an integer (got \"\(part)\" in \"\(dimensions)\")")
                }
                return d
            }
        }
        let s = ReproductionSettings(quick: quick, seeds: seeds, dimensions: dims, masterSeed: seed)
        do { try s.validate() } catch let error as SpecError { throw ValidationError("\(error)") }
        return s
    }

    func reproduction() throws -> any Reproduction {
        let known = Reproductions.names.joined(separator: ", ")
        guard let name else { throw ValidationError("give the name of a reproduction, or --list (known: \(known))") }
        guard let r = Reproductions.named(name) else {
            throw ValidationError("unknown reproduction \"\(name)\"; known: \(known)")
        }
        return r
    }

    func validate() throws {
        guard !list else { return }
        _ = try reproduction()
        _ = try settings()
    }

    func run() throws {
        if list {
            for r in Reproductions.all { print("\(r.name)\n  \(r.title)\n  \(r.reproduces)\n") }
            return
        }
        let reproduction = try reproduction()
        let settings = try settings()
        let writer = try ResultWriter(path: out ?? "notebooks-data/\(reproduction.name)")
        let identity = "\(reproduction.name) quick=\(settings.quick) seeds=\(settings.seeds.map(String.init) ?? "default") dimensions=\(settings.dimensions.map { "\($0)" } ?? "default") seed=\(settings.masterSeed)"
        try control.run(out: writer.folder.path, command: "reproduce", spec: identity) {
            let progress = StageProgress(enabled: !quiet)
            let result: ReproductionResult
            do {
                result = try reproduction.run(settings) { progress.update($0, $1) }
            } catch let error as SpecError {
                throw ValidationError("\(error)")
            }
            progress.done()
            for file in result.files {
                let folder = (file.path as NSString).deletingLastPathComponent
                let target = folder.isEmpty ? writer : try ResultWriter(path: writer.path(folder))
                try target.write((file.path as NSString).lastPathComponent, file.contents)
            }
            print(result.summary, terminator: "")
            print("wrote \(result.files.count) files to \(writer.folder.path)")
        }
    }
}

/// Progress of a multi-stage run on stderr: one throttled `Progress` per stage.
final class StageProgress: @unchecked Sendable {
    private let lock = NSLock()
    private let enabled: Bool
    private var stage = ""
    private var current: Progress?

    init(enabled: Bool) { self.enabled = enabled }

    func update(_ label: String, _ fraction: Double) {
        lock.lock()
        defer { lock.unlock() }
        if label != stage {
            current?.done()
            stage = label
            current = Progress(label, parts: 1, enabled: enabled)
        }
        current?.update(part: 0, fraction: fraction)
    }

    func done() {
        lock.lock()
        defer { lock.unlock() }
        current?.done()
        current = nil
    }
}
