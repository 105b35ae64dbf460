// plateau-fuzz: feeds generated inputs to the spec reader and the expression parser
// (PlateauFuzzing.FrontDoorFuzzer) and reports crashes, hangs and malformed refusals.
//
//   plateau-fuzz [--count N] [--seed S] [--start I] [--bound SECONDS] [--show I]
//
// Every input is timed; one slower than --bound (default 5 s) is a failure, and a watchdog thread
// stops the run (exit 3) when one input takes 10 × --bound. A crash prints the index of the input
// being read (replay it with --show I). Exit 0: no failure.
import Dispatch
import Foundation
import PlateauCore
import PlateauFuzzing

#if canImport(Glibc)
import Glibc
#endif

nonisolated(unsafe) var currentIndex = -1
nonisolated(unsafe) var currentStart: UInt64 = 0

func option(_ name: String) -> String? {
    let args = CommandLine.arguments
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}

let count = Int(option("--count") ?? "1000000") ?? 1_000_000
let seed = UInt64(option("--seed") ?? "1") ?? 1
let start = Int(option("--start") ?? "0") ?? 0
let bound = Double(option("--bound") ?? "5") ?? 5
let fuzzer = FrontDoorFuzzer(seed: seed)

if let shown = option("--show").flatMap(Int.init) {
    let input = fuzzer.input(shown)
    print(input.shown)
    let outcome = FrontDoorFuzzer.check(input)
    print(outcome.ok ? (outcome.accepted ? "accepted" : "refused (well-formed)") : "FAILURE: \(outcome.failure)")
    print(String(format: "%.6f s", outcome.seconds))
    exit(outcome.ok ? 0 : 1)
}

for sig in [SIGSEGV, SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGABRT] {
    signal(sig) { s in
        let text = "\nplateau-fuzz: signal \(s) while reading input \(currentIndex) (replay: plateau-fuzz --seed \(seed) --show \(currentIndex))\n"
        _ = text.withCString { write(2, $0, strlen($0)) }
        _exit(2)
    }
}

// The watchdog: an input that takes 10 × bound stops the run.
let watchdog = Thread {
    while true {
        Thread.sleep(forTimeInterval: 0.5)
        let began = currentStart
        if began > 0, Double(DispatchTime.now().uptimeNanoseconds &- began) * 1e-9 > 10 * bound {
            FileHandle.standardError.write(Data("plateau-fuzz: HANG: input \(currentIndex) still running after \(10 * bound) s\n\(fuzzer.input(currentIndex).shown)\n".utf8))
            exit(3)
        }
    }
}
watchdog.start()

let clock = Date()
var accepted = 0, refused = 0, failures: [(Int, String)] = []
var slowest = (index: -1, seconds: 0.0)
var kinds = ["spec": 0, "expression": 0]
for i in start..<(start + count) {
    let input = fuzzer.input(i)
    currentIndex = i
    currentStart = DispatchTime.now().uptimeNanoseconds
    let outcome = FrontDoorFuzzer.check(input)
    currentStart = 0
    if case .spec = input { kinds["spec"]! += 1 } else { kinds["expression"]! += 1 }
    if outcome.seconds > slowest.seconds { slowest = (i, outcome.seconds) }
    if !outcome.ok {
        failures.append((i, outcome.failure))
    } else if outcome.seconds > bound {
        failures.append((i, String(format: "took %.3f s (bound %.3f s)", outcome.seconds, bound)))
    } else if outcome.accepted {
        accepted += 1
    } else {
        refused += 1
    }
    if failures.count > 0, failures.count <= 20, failures.last!.0 == i {
        print("FAILURE at input \(i): \(failures.last!.1)\n  \(input.shown)")
    }
    if (i - start + 1) % 100_000 == 0 {
        FileHandle.standardError.write(Data(String(format: "%d inputs, %.0f s, %d failures\n", i - start + 1, Date().timeIntervalSince(clock), failures.count).utf8))
    }
}
let seconds = Date().timeIntervalSince(clock)
print("""
plateau-fuzz: seed \(seed), inputs \(start)..<\(start + count): \(count) inputs (\(kinds["spec"]!) specs, \(kinds["expression"]!) expressions) in \(String(format: "%.1f", seconds)) s
  accepted \(accepted), refused with a well-formed error \(refused), failures \(failures.count)
  slowest input \(slowest.index): \(String(format: "%.4f", slowest.seconds)) s (bound \(bound) s)
""")
exit(failures.isEmpty ? 0 : 1)
