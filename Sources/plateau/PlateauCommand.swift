import ArgumentParser
import Foundation
import PlateauCore

@main
struct PlateauCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plateau",
        abstract: "Exact high-dimensional theory of learning, the same problem at finite d, and where the two agree.",
        discussion: """
        One specification drives both sides: `plateau ode` integrates the d = ∞ order-parameter ODEs of
        online SGD, `plateau simulate` runs the same problem at finite d over many seeds, and
        `plateau compare` does both (the theory started from each seed's realised initial overlaps) and
        reports, in units of the seed-to-seed standard error, where they agree. Without --spec the
        built-in default is used: Saad & Solla's soft committee (erf, K = M = 2, η = 0.5).

        Time is t = SGD steps / d. The risk is the population risk ½E[(f − y)²] including label noise,
        i.e. ½E[(g − f)²] + Δ/2.

        Sample specification (YAML; JSON with the same keys works too; unknown keys are errors):

        \(Experiment.sampleYAML)
        """,
        version: PlateauVersion.string,
        subcommands: [ODECommand.self, SimulateCommand.self, CompareCommand.self, SECommand.self, ThresholdCommand.self, GAMPCommand.self, SpectralCommand.self,
                      DescribeCommand.self, ReproduceCommand.self, DMFTCommand.self, SweepCommand.self])
}
