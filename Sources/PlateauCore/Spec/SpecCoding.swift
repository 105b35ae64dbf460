import Foundation

// Reading and writing an `Experiment` as YAML or JSON.
//
// The file is read into a plain tree (YAML is a superset of JSON, so Yams reads both), then walked
// by hand: every key is known, every unknown key is an error, and every error names its dotted path.

extension Experiment {
    /// Parses a YAML or JSON specification and validates it. Every problem of the file is reported at
    /// once: the thrown `SpecError` carries them all (`SpecError.all`), each naming its field and value.
    ///
    /// `overrides` set fields before anything is checked (the command line's `--learning-rate` and the
    /// like), so a file may leave out a field the command line gives.
    public init(specText: String, overrides: [SpecOverride] = []) throws {
        let problems = SpecProblems()
        let tree = SpecOverride.apply(overrides, to: try SpecReader.topLevel(specText))
        let experiment = try SpecReader(tree, path: "", problems: problems).experiment()
        experiment.check(into: problems)
        try problems.throwIfAny()
        self = experiment
    }

    /// Parses the bytes of a specification (UTF-8 YAML or JSON); bytes that are not UTF-8 are refused
    /// naming the offset of the first bad one.
    public init(specData: Data) throws {
        try self.init(specText: try SpecReader.text(of: specData))
    }

    /// Reads a specification file (YAML or JSON), with `overrides` set before it is checked.
    public init(contentsOf url: URL, overrides: [SpecOverride] = []) throws {
        try self.init(specText: try SpecReader.read(url), overrides: overrides)
    }

    static func show(_ value: Any?) -> String {
        guard let value else { return "null" }
        if let d = value as? Double { return Self.format(d) }
        if let s = value as? String { return "\"\(s)\"" }
        if let a = value as? [Any] { return "[" + a.map { show($0) }.joined(separator: ", ") + "]" }
        if let m = value as? [String: Any] { return "{" + m.keys.sorted().joined(separator: ", ") + "}" }
        return "\(value)"
    }

    /// A number as the spec errors show it (nan, inf, -inf written out).
    public static func format(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d > 0 ? "inf" : "-inf" }
        return "\(d)"
    }

    /// A JSON-compatible tree of this experiment in the file schema (round-trips through
    /// `init(specText:)`). Non-finite numbers never occur in a validated experiment.
    public var specTree: [String: Any] {
        func matrix(_ m: Matrix) -> [[Double]] { m.nested }
        var initTree: [String: Any]
        switch initialization {
        case let .overlaps(M, Q): initTree = ["M": matrix(M), "Q": matrix(Q)]
        case let .random(scale, seed):
            var r: [String: Any] = ["scale": scale]
            if let seed { r["seed"] = seed }
            initTree = ["random": r]
        case let .orthogonal(Q): initTree = ["orthogonal": ["Q": matrix(Q)]]
        }
        let teacherTree = teacher.specTree
        var trainingTree: [String: Any] = [
            "protocol": training.trainingProtocol.rawValue, "loss": training.loss.rawValue,
            "learningRate": training.learningRate, "batchSize": training.batchSize,
            "weightDecay": training.weightDecay, "time": training.time,
        ]
        if let multipass {
            trainingTree = multipass.specTree.merging(
                ["protocol": "multipass", "loss": training.loss.rawValue, "learningRate": training.learningRate]) { $1 }
        }
        var times: Any
        switch output.times {
        case let .log(count, start): times = ["log": count, "start": start]
        case let .linear(count): times = ["linear": count]
        case let .list(ts): times = ts
        }
        return [
            "teacher": teacherTree,
            "student": [
                "p": student.p, "activation": student.activation.name, "secondLayer": student.secondLayer,
                "trainSecondLayer": student.trainSecondLayer,
                "secondLayerLearningRate": student.secondLayerLearningRate, "spherical": student.spherical,
            ] as [String: Any],
            "training": trainingTree,
            "init": initTree,
        ].merging(multipass == nil ? ["output": ["times": times]] : [:]) { $1 }
    }

    /// The specification as pretty, key-sorted JSON.
    public var specJSON: String { Self.prettyJSON(specTree) }

    /// A JSON-compatible tree as pretty, key-sorted JSON.
    static func prettyJSON(_ tree: [String: Any]) -> String {
        let data = try! JSONSerialization.data(withJSONObject: tree, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    /// A commented sample specification (the built-in default), shown by `--help`.
    public static let sampleYAML = """
    teacher:
      k: 2
      activation: erf          # erf (= erf(x/√2)) | linear | relu | tanh | HeN | an expression in x
      weights: [1, 1]          # g(ν) = Σ_r weights_r σ*(ν_r); a scalar means all equal
      # target: "z1 + z1*z2"   # instead of activation/weights: any link g(z1…zk), or
      # preset: staircase      # a named one (committee-erf, committee-relu, committee-tanh,
                               # staircase, parity, he2, he3, he4)
      P: identity              # or a k×k symmetric PSD matrix
      noise: 0.0               # label-noise variance Δ
    student:
      p: 2
      activation: erf
      secondLayer: [1, 1]      # a_j; a scalar means all equal
      trainSecondLayer: false
      secondLayerLearningRate: 0.5
      spherical: false         # true: rows renormalised to |w_j|² = d after every step
    training:
      protocol: online         # online (t = steps/d)
      loss: square             # square | correlation
      learningRate: 0.5
      batchSize: 1
      weightDecay: 0.0
      time: 300                # horizon
    init:                      # {M: .., Q: ..} | {random: {scale: 1, seed: 7}} (seed optional) | {orthogonal: {Q: ..}}
      random: {scale: 1.0}
    output:
      times: {log: 40, start: 0.1}   # log | {log: N, start: t0} | {linear: N} | [t1, t2, ...]
    """
}

extension TeacherSpec {
    /// The `teacher` section of the file schema.
    var specTree: [String: Any] {
        var tree: [String: Any] = ["k": k, "P": covariance.nested, "noise": noiseVariance]
        if let link {
            tree["target"] = link.description
        } else {
            tree["activation"] = activation.name
            tree["weights"] = weights
        }
        return tree
    }
}

/// Walks one mapping of the spec tree, remembering its path for error messages. Problems go to the
/// shared `problems` collector and reading goes on with a placeholder, so one pass over a file finds
/// every problem in it.
struct SpecReader {
    let map: [String: Any]
    let path: String
    let problems: SpecProblems

    init(_ map: [String: Any], path: String, problems: SpecProblems) {
        self.map = map
        self.path = path
        self.problems = problems
    }

    func field(_ key: String) -> String { path.isEmpty ? Self.shown(key) : "\(path).\(Self.shown(key))" }

    /// A key as a field name shows it: quoted with escapes when it is empty or has characters that
    /// do not print (spaces, controls, a byte-order mark), as it is otherwise.
    static func shown(_ key: String) -> String {
        let plain = !key.isEmpty && key.unicodeScalars.allSatisfy {
            $0.properties.isAlphabetic || $0.properties.numericType != nil || "_-[]".unicodeScalars.contains($0)
        }
        return plain ? key : key.debugDescription
    }

    /// The value of `body`, or `fallback` with the problem recorded.
    func read<T>(_ fallback: @autoclosure () -> T, _ body: () throws -> T) -> T { problems.attempt(fallback(), body) }

    /// Records every key of this mapping that is not in `allowed`.
    func rejectUnknown(_ allowed: [String]) {
        for key in map.keys.sorted() where !allowed.contains(key) {
            problems.record(SpecError(field: field(key), value: Experiment.show(map[key]),
                                      reason: "unknown key; allowed here: \(allowed.joined(separator: ", "))"))
        }
    }

    /// The mapping under `key`; a missing required one or a non-mapping is recorded and read as empty
    /// (its own fields' problems are then covered by the section's).
    func section(_ key: String) -> SpecReader {
        sub(key, required: true) ?? SpecReader([:], path: field(key), problems: problems)
    }

    /// The mapping under `key`, nil when absent (recorded when `required`) or not a mapping (recorded).
    func sub(_ key: String, required: Bool) -> SpecReader? {
        guard let v = map[key] else {
            if required { problems.record(SpecError(field: field(key), value: "nothing", reason: "required section is missing")) }
            return nil
        }
        guard let m = v as? [String: Any] else {
            problems.record(SpecError(field: field(key), value: Experiment.show(v), reason: "must be a mapping"))
            return nil
        }
        return SpecReader(m, path: field(key), problems: problems)
    }

    static func number(_ v: Any, field: String) throws -> Double {
        if let b = v as? Bool { throw SpecError(field: field, value: "\(b)", reason: "must be a number") }
        if let i = v as? Int { return Double(i) }
        if let d = v as? Double { return d }
        if let s = v as? String {
            let t = s.trimmingCharacters(in: .whitespaces).lowercased()
            switch t {
            case "nan", ".nan": return .nan
            case "inf", "+inf", ".inf", "infinity": return .infinity
            case "-inf", "-.inf", "-infinity": return -.infinity
            default: if let d = Double(t) { return d }
            }
        }
        throw SpecError(field: field, value: Experiment.show(v), reason: "must be a number")
    }

    func double(_ key: String, default def: Double? = nil) throws -> Double {
        guard let v = map[key] else {
            if let def { return def }
            throw SpecError(field: field(key), value: "nothing", reason: "required number is missing")
        }
        return try Self.number(v, field: field(key))
    }

    func int(_ key: String, default def: Int? = nil) throws -> Int {
        guard let v = map[key] else {
            if let def { return def }
            throw SpecError(field: field(key), value: "nothing", reason: "required integer is missing")
        }
        let d = try Self.number(v, field: field(key))
        guard d.isFinite, d == d.rounded(), abs(d) < 1e15 else {
            throw SpecError(field: field(key), value: Experiment.show(v), reason: "must be an integer")
        }
        return Int(d)
    }

    /// An integer in `range` (required when `def` is nil).
    func int(_ key: String, in range: ClosedRange<Int>, default def: Int? = nil) throws -> Int {
        let n = try int(key, default: def)
        guard range.contains(n) else {
            throw SpecError(field: field(key), value: "\(n)", reason: "must be an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return n
    }

    func bool(_ key: String, default def: Bool) throws -> Bool {
        guard let v = map[key] else { return def }
        if let b = v as? Bool { return b }
        throw SpecError(field: field(key), value: Experiment.show(v), reason: "must be true or false")
    }

    func string(_ key: String, default def: String) throws -> String {
        guard let v = map[key] else { return def }
        if let s = v as? String { return s }
        throw SpecError(field: field(key), value: Experiment.show(v), reason: "must be a name")
    }

    /// A vector of `count` numbers; a scalar means all entries equal. Every bad entry is recorded.
    func vector(_ key: String, count: Int, default def: Double) throws -> [Double] {
        guard let v = map[key] else { return Array(repeating: def, count: count) }
        if let a = v as? [Any] {
            guard a.count == count else {
                throw SpecError(field: field(key), value: Experiment.show(v), reason: "must have \(count) entries")
            }
            let entries = a.enumerated().map { i, x in read(def) { try Self.number(x, field: "\(field(key))[\(i)]") } }
            return entries
        }
        let x = try Self.number(v, field: field(key))
        return Array(repeating: x, count: count)
    }

    /// A rows×cols matrix; "identity" (square only) and scalars times identity are accepted.
    func matrix(_ key: String, rows: Int, cols: Int, default def: Matrix?) throws -> Matrix {
        guard let v = map[key] else {
            if let def { return def }
            throw SpecError(field: field(key), value: "nothing", reason: "required \(rows)×\(cols) matrix is missing")
        }
        return try Self.matrix(v, field: field(key), rows: rows, cols: cols, problems: problems)
    }

    /// A matrix; every bad row and entry is recorded (as NaN), a wrong shape is thrown.
    static func matrix(_ v: Any, field: String, rows: Int, cols: Int, problems: SpecProblems) throws -> Matrix {
        if let s = v as? String, s.lowercased() == "identity" {
            guard rows == cols else {
                throw SpecError(field: field, value: "\"identity\"", reason: "identity needs a square matrix, this one is \(rows)×\(cols)")
            }
            return .identity(rows)
        }
        guard let outer = v as? [Any] else {
            throw SpecError(field: field, value: Experiment.show(v), reason: "must be a \(rows)×\(cols) matrix (list of rows)\(rows == cols ? " or \"identity\"" : "")")
        }
        guard outer.count == rows else {
            throw SpecError(field: field, value: Experiment.show(v), reason: "must have \(rows) rows, found \(outer.count)")
        }
        var values: [Double] = []
        for (i, row) in outer.enumerated() {
            guard let r = row as? [Any], r.count == cols else {
                problems.record(SpecError(field: "\(field)[\(i)]", value: Experiment.show(row), reason: "must be a row of \(cols) numbers"))
                values += Array(repeating: .nan, count: cols)
                continue
            }
            for (j, x) in r.enumerated() {
                values.append(problems.attempt(.nan) { try number(x, field: "\(field)[\(i)][\(j)]") })
            }
        }
        return Matrix(rows: rows, cols: cols, values: values)
    }

    /// A count (k, p) that cannot be read: the length of the first list among `candidates` (so that
    /// the shapes that depend on it are checked against the data, not against a guess), else 1.
    static func inferredCount(_ candidates: [Any?]) -> Int {
        for case let list as [Any] in candidates where (1...64).contains(list.count) { return list.count }
        return 1
    }

    func experiment() throws -> Experiment {
        rejectUnknown(["teacher", "student", "training", "init", "output"])
        if let training = map["training"] as? [String: Any], training["protocol"] as? String == TrainingProtocol.amp.rawValue {
            throw SpecError(field: "training.protocol", value: "\"amp\"",
                            reason: "describes Bayes-optimal estimation, not a trained student: use plateau se, threshold or gamp")
        }
        let teacher = self.teacher()
        let k = teacher.k
        // Student
        let s = section("student")
        s.rejectUnknown(["p", "activation", "secondLayer", "trainSecondLayer", "secondLayerLearningRate", "spherical"])
        let initMap = map["init"] as? [String: Any]
        let p = s.read(Self.inferredCount([s.map["secondLayer"], initMap?["Q"], initMap?["M"]])) { try s.int("p", in: 1...64) }
        // Training (read before the student's defaults that refer to it)
        let r = section("training")
        let protoName = r.read("online") { try r.string("protocol", default: "online") }
        let proto = r.read(TrainingProtocol.online) {
            guard let proto = TrainingProtocol(rawValue: protoName) else {
                throw SpecError(field: r.field("protocol"), value: "\"\(protoName)\"", reason: "unknown protocol; known: online, multipass, amp")
            }
            return proto
        }
        r.rejectUnknown(proto == .multipass ? Self.multipassKeys
                        : ["protocol", "loss", "learningRate", "batchSize", "weightDecay", "time"])
        let loss = r.read(Loss.square) {
            let lossName = try r.string("loss", default: "square")
            guard let loss = Loss(rawValue: lossName) else {
                throw SpecError(field: r.field("loss"), value: "\"\(lossName)\"", reason: "unknown loss; known: square, correlation")
            }
            return loss
        }
        let eta = r.read(1) { try r.double("learningRate") }
        let training = proto == .multipass
            ? TrainingSpec(multipass: r.multipassSettings(), loss: loss, learningRate: eta)
            : TrainingSpec(
                trainingProtocol: proto, loss: loss, learningRate: eta, batchSize: r.read(1) { try r.int("batchSize", default: 1) },
                weightDecay: r.read(0) { try r.double("weightDecay", default: 0) }, time: r.read(1) { try r.double("time") })
        let student = StudentSpec(
            p: p, activation: s.read(.erf) { try s.activation("activation") },
            secondLayer: s.read(Array(repeating: 1, count: p)) { try s.vector("secondLayer", count: p, default: 1) },
            trainSecondLayer: s.read(false) { try s.bool("trainSecondLayer", default: false) },
            secondLayerLearningRate: s.read(eta) { try s.double("secondLayerLearningRate", default: eta) },
            spherical: s.read(false) { try s.bool("spherical", default: false) })
        // Initial condition
        let initialization = initialCondition(p: p, k: k)
        // Output
        var output = OutputSpec()
        if proto == .multipass, let o = map["output"] {
            problems.record(SpecError(field: "output", value: Experiment.show(o), reason: "the multipass protocol records every step: remove the section"))
        } else if let o = sub("output", required: false) {
            o.rejectUnknown(["times"])
            if let v = o.map["times"] { output.times = o.read(output.times) { try Self.timeGrid(v, field: o.field("times"), problems: problems) } }
        }
        return Experiment(teacher: teacher, student: student, training: training,
                          initialization: initialization, output: output)
    }

    /// The `teacher` section (shared by every protocol).
    func teacher() -> TeacherSpec {
        let t = section("teacher")
        t.rejectUnknown(["k", "activation", "weights", "P", "noise", "target", "preset"])
        let k = t.read(Self.inferredCount([t.map["weights"], t.map["P"]])) { try t.int("k", in: 1...64) }
        return TeacherSpec(
            k: k, activation: t.read(.erf) { try t.activation("activation") },
            weights: t.read(Array(repeating: 1, count: k)) { try t.vector("weights", count: k, default: 1) },
            covariance: t.read(.identity(k)) { try t.matrix("P", rows: k, cols: k, default: .identity(k)) },
            noiseVariance: t.read(0) { try t.double("noise", default: 0) },
            link: t.read(nil) { try t.link(k: k) })
    }

    func activation(_ key: String) throws -> Activation {
        let name = try string(key, default: "erf")
        do {
            return try Activation.parse(name)
        } catch let error as ExpressionError {
            throw SpecError(field: field(key), value: "\"\(name)\"", reason: "unknown activation (known: \(Activation.knownNames.joined(separator: ", ")), or an expression in x): \(error.summary)")
        }
    }

    /// The teacher's link: `target` (an expression in z1…zk) or `preset` (a named link), not both, and
    /// neither together with a committee's `activation` / `weights`.
    func link(k: Int) throws -> Formula? {
        let hasTarget = map["target"] != nil, hasPreset = map["preset"] != nil
        if hasTarget && hasPreset {
            throw SpecError(field: field("preset"), value: Experiment.show(map["preset"]!), reason: "give either target or preset, not both")
        }
        guard hasTarget || hasPreset else { return nil }
        for key in ["activation", "weights"] where map[key] != nil {
            throw SpecError(field: field(key), value: Experiment.show(map[key]!),
                            reason: "a committee's \(key) cannot be combined with \(hasTarget ? "target" : "preset") (write the committee into the expression instead)")
        }
        if hasPreset {
            let name = try string("preset", default: "")
            guard let f = Formula.preset(name, k: k) else {
                throw SpecError(field: field("preset"), value: "\"\(name)\"", reason: "unknown preset; known: \(Formula.presetNames.joined(separator: ", "))")
            }
            return f
        }
        let text = try string("target", default: "")
        do {
            return try Formula(parsing: text, variables: .target(k: k))
        } catch let error as ExpressionError {
            throw SpecError(field: field("target"), value: "\"\(text)\"", reason: error.summary)
        }
    }

    func initialCondition(p: Int, k: Int) -> InitialCondition {
        let key = "init"
        guard let v = map[key] else { return .random(scale: 1) }
        if let s = v as? String {
            switch s.lowercased() {
            case "random": return .random(scale: 1)
            case "orthogonal": return .orthogonal(Q: .identity(p))
            default:
                problems.record(SpecError(field: key, value: "\"\(s)\"", reason: "must be random, orthogonal, or a mapping {M, Q} | {random: {scale}} | {orthogonal: {Q}}"))
                return .random(scale: 1)
            }
        }
        guard let m = v as? [String: Any] else {
            problems.record(SpecError(field: key, value: Experiment.show(v), reason: "must be a mapping"))
            return .random(scale: 1)
        }
        let r = SpecReader(m, path: key, problems: problems)
        if m["random"] != nil {
            r.rejectUnknown(["random"])
            if m["random"] is String || m["random"] is NSNull { return .random(scale: 1) }
            guard let rr = r.sub("random", required: true) else { return .random(scale: 1) }
            rr.rejectUnknown(["scale", "seed"])
            var seed: UInt64?
            if rr.map["seed"] != nil {
                seed = rr.read(nil) {
                    let s = try rr.int("seed")
                    guard s >= 0 else { throw SpecError(field: rr.field("seed"), value: "\(s)", reason: "must be an integer ≥ 0") }
                    return UInt64(s)
                }
            }
            return .random(scale: rr.read(1) { try rr.double("scale", default: 1) }, seed: seed)
        }
        if m["orthogonal"] != nil {
            r.rejectUnknown(["orthogonal"])
            if m["orthogonal"] is NSNull { return .orthogonal(Q: .identity(p)) }
            guard let o = r.sub("orthogonal", required: true) else { return .orthogonal(Q: .identity(p)) }
            o.rejectUnknown(["Q"])
            return .orthogonal(Q: o.read(.identity(p)) { try o.matrix("Q", rows: p, cols: p, default: .identity(p)) })
        }
        r.rejectUnknown(["M", "Q"])
        return .overlaps(M: r.read(Matrix(rows: p, cols: k)) {
                             try r.matrix("M", rows: p, cols: k, default: nil) },
                         Q: r.read(.identity(p)) { try r.matrix("Q", rows: p, cols: p, default: nil) })
    }

    static func timeGrid(_ v: Any, field: String, problems: SpecProblems) throws -> TimeGrid {
        if let s = v as? String {
            switch s.lowercased() {
            case "log": return .log(count: 60, start: 0.01)
            case "linear": return .linear(count: 100)
            default: throw SpecError(field: field, value: "\"\(s)\"", reason: "must be log, linear, {log: N, start: t0}, {linear: N} or a list of times")
            }
        }
        if let a = v as? [Any] {
            return .list(a.enumerated().map { i, x in problems.attempt(0) { try number(x, field: "\(field)[\(i)]") } })
        }
        if let m = v as? [String: Any] {
            let r = SpecReader(m, path: field, problems: problems)
            if m["log"] != nil {
                r.rejectUnknown(["log", "start"])
                return .log(count: r.read(60) { try r.int("log") }, start: r.read(0.01) { try r.double("start", default: 0.01) })
            }
            r.rejectUnknown(["linear"])
            return .linear(count: try r.int("linear"))
        }
        throw SpecError(field: field, value: Experiment.show(v), reason: "must be log, linear, a mapping or a list")
    }
}

/// A field of a specification set from outside the file (a command-line override): its dotted path and
/// a value as the file would hold it (a number, a string, …). Applied to the file's tree before it is read,
/// so the override counts for the checks (a required field the file leaves out, a bound that involves it).
public struct SpecOverride: @unchecked Sendable {
    public var path: [String]
    public var value: Any

    public init(_ dottedPath: String, _ value: Any) {
        path = dottedPath.split(separator: ".").map(String.init)
        self.value = value
    }

    /// `tree` with every override set (sections created when missing; a section that holds a value
    /// instead of fields is left for the reader to refuse).
    static func apply(_ overrides: [SpecOverride], to tree: [String: Any]) -> [String: Any] {
        var tree = tree
        for o in overrides where !o.path.isEmpty { set(&tree, o.path[...], o.value) }
        return tree
    }

    private static func set(_ map: inout [String: Any], _ path: ArraySlice<String>, _ value: Any) {
        let key = path.first!
        if path.count == 1 { map[key] = value; return }
        guard var child = (map[key] ?? [String: Any]()) as? [String: Any] else { return }
        set(&child, path.dropFirst(), value)
        map[key] = child
    }
}
