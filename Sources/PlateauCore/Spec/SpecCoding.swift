import Foundation
import Yams

// Reading and writing an `Experiment` as YAML or JSON.
//
// The file is read into a plain tree (YAML is a superset of JSON, so Yams reads both), then walked
// by hand: every key is known, every unknown key is an error, and every error names its dotted path.

extension Experiment {
    /// Parses a YAML or JSON specification and validates it.
    public init(specText: String) throws {
        self = try SpecReader(try SpecReader.topLevel(specText), path: "").experiment()
        try validate()
    }

    /// Reads a specification file (YAML or JSON).
    public init(contentsOf url: URL) throws {
        try self.init(specText: try SpecReader.read(url))
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

/// Walks one mapping of the spec tree, remembering its path for error messages.
struct SpecReader {
    let map: [String: Any]
    let path: String
    private var used: Set<String> = []

    init(_ map: [String: Any], path: String) {
        self.map = map
        self.path = path
    }

    func field(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func rejectUnknown(_ allowed: [String]) throws {
        for key in map.keys.sorted() where !allowed.contains(key) {
            throw SpecError(field: field(key), value: Experiment.show(map[key]),
                            reason: "unknown key; allowed here: \(allowed.joined(separator: ", "))")
        }
    }

    func sub(_ key: String, required: Bool = true) throws -> SpecReader? {
        guard let v = map[key] else {
            if required { throw SpecError(field: field(key), value: "nothing", reason: "required section is missing") }
            return nil
        }
        guard let m = v as? [String: Any] else {
            throw SpecError(field: field(key), value: Experiment.show(v), reason: "must be a mapping")
        }
        return SpecReader(m, path: field(key))
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

    /// A vector of `count` numbers; a scalar means all entries equal.
    func vector(_ key: String, count: Int, default def: Double) throws -> [Double] {
        guard let v = map[key] else { return Array(repeating: def, count: count) }
        if let a = v as? [Any] {
            guard a.count == count else {
                throw SpecError(field: field(key), value: Experiment.show(v), reason: "must have \(count) entries")
            }
            return try a.enumerated().map { try Self.number($1, field: "\(field(key))[\($0)]") }
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
        return try Self.matrix(v, field: field(key), rows: rows, cols: cols)
    }

    static func matrix(_ v: Any, field: String, rows: Int, cols: Int) throws -> Matrix {
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
                throw SpecError(field: "\(field)[\(i)]", value: Experiment.show(row), reason: "must be a row of \(cols) numbers")
            }
            for (j, x) in r.enumerated() { values.append(try number(x, field: "\(field)[\(i)][\(j)]")) }
        }
        return Matrix(rows: rows, cols: cols, values: values)
    }

    func experiment() throws -> Experiment {
        try rejectUnknown(["teacher", "student", "training", "init", "output"])
        if let training = map["training"] as? [String: Any], training["protocol"] as? String == TrainingProtocol.amp.rawValue {
            throw SpecError(field: "training.protocol", value: "\"amp\"",
                            reason: "describes Bayes-optimal estimation, not a trained student: use plateau se, threshold or gamp")
        }
        let teacher = try self.teacher()
        let k = teacher.k
        // Student
        let s = try sub("student")!
        try s.rejectUnknown(["p", "activation", "secondLayer", "trainSecondLayer", "secondLayerLearningRate", "spherical"])
        let p = try s.int("p")
        guard p >= 1, p <= 64 else { throw SpecError(field: s.field("p"), value: "\(p)", reason: "must be an integer in 1...64") }
        // Training (read before the student's defaults that refer to it)
        let r = try sub("training")!
        let protoName = try r.string("protocol", default: "online")
        guard let proto = TrainingProtocol(rawValue: protoName) else {
            throw SpecError(field: r.field("protocol"), value: "\"\(protoName)\"", reason: "unknown protocol; known: online, multipass, amp")
        }
        try r.rejectUnknown(proto == .multipass ? Self.multipassKeys
                            : ["protocol", "loss", "learningRate", "batchSize", "weightDecay", "time"])
        let lossName = try r.string("loss", default: "square")
        guard let loss = Loss(rawValue: lossName) else {
            throw SpecError(field: r.field("loss"), value: "\"\(lossName)\"", reason: "unknown loss; known: square, correlation")
        }
        let eta = try r.double("learningRate")
        let training = proto == .multipass
            ? TrainingSpec(multipass: try r.multipassSettings(), loss: loss, learningRate: eta)
            : TrainingSpec(
                trainingProtocol: proto, loss: loss, learningRate: eta, batchSize: try r.int("batchSize", default: 1),
                weightDecay: try r.double("weightDecay", default: 0), time: try r.double("time"))
        let student = StudentSpec(
            p: p, activation: try s.activation("activation"),
            secondLayer: try s.vector("secondLayer", count: p, default: 1),
            trainSecondLayer: try s.bool("trainSecondLayer", default: false),
            secondLayerLearningRate: try s.double("secondLayerLearningRate", default: eta),
            spherical: try s.bool("spherical", default: false))
        // Initial condition
        let initialization = try initialCondition(p: p, k: k)
        // Output
        var output = OutputSpec()
        if proto == .multipass, let o = map["output"] {
            throw SpecError(field: "output", value: Experiment.show(o), reason: "the multipass protocol records every step: remove the section")
        }
        if let o = try sub("output", required: false) {
            try o.rejectUnknown(["times"])
            if let v = o.map["times"] { output.times = try Self.timeGrid(v, field: o.field("times")) }
        }
        return Experiment(teacher: teacher, student: student, training: training,
                          initialization: initialization, output: output)
    }

    /// The `teacher` section (shared by every protocol).
    func teacher() throws -> TeacherSpec {
        let t = try sub("teacher")!
        try t.rejectUnknown(["k", "activation", "weights", "P", "noise", "target", "preset"])
        let k = try t.int("k")
        guard k >= 1, k <= 64 else { throw SpecError(field: t.field("k"), value: "\(k)", reason: "must be an integer in 1...64") }
        return TeacherSpec(
            k: k, activation: try t.activation("activation"),
            weights: try t.vector("weights", count: k, default: 1),
            covariance: try t.matrix("P", rows: k, cols: k, default: .identity(k)),
            noiseVariance: try t.double("noise", default: 0),
            link: try t.link(k: k))
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

    func initialCondition(p: Int, k: Int) throws -> InitialCondition {
        let key = "init"
        guard let v = map[key] else { return .random(scale: 1) }
        if let s = v as? String {
            switch s.lowercased() {
            case "random": return .random(scale: 1)
            case "orthogonal": return .orthogonal(Q: .identity(p))
            default:
                throw SpecError(field: key, value: "\"\(s)\"", reason: "must be random, orthogonal, or a mapping {M, Q} | {random: {scale}} | {orthogonal: {Q}}")
            }
        }
        guard let m = v as? [String: Any] else {
            throw SpecError(field: key, value: Experiment.show(v), reason: "must be a mapping")
        }
        let r = SpecReader(m, path: key)
        if m["random"] != nil {
            try r.rejectUnknown(["random"])
            if m["random"] is String || m["random"] is NSNull { return .random(scale: 1) }
            let rr = try r.sub("random")!
            try rr.rejectUnknown(["scale", "seed"])
            var seed: UInt64?
            if rr.map["seed"] != nil {
                let s = try rr.int("seed")
                guard s >= 0 else { throw SpecError(field: rr.field("seed"), value: "\(s)", reason: "must be an integer ≥ 0") }
                seed = UInt64(s)
            }
            return .random(scale: try rr.double("scale", default: 1), seed: seed)
        }
        if m["orthogonal"] != nil {
            try r.rejectUnknown(["orthogonal"])
            if m["orthogonal"] is NSNull { return .orthogonal(Q: .identity(p)) }
            let o = try r.sub("orthogonal")!
            try o.rejectUnknown(["Q"])
            return .orthogonal(Q: try o.matrix("Q", rows: p, cols: p, default: .identity(p)))
        }
        try r.rejectUnknown(["M", "Q"])
        return .overlaps(M: try r.matrix("M", rows: p, cols: k, default: nil),
                         Q: try r.matrix("Q", rows: p, cols: p, default: nil))
    }

    static func timeGrid(_ v: Any, field: String) throws -> TimeGrid {
        if let s = v as? String {
            switch s.lowercased() {
            case "log": return .log(count: 60, start: 0.01)
            case "linear": return .linear(count: 100)
            default: throw SpecError(field: field, value: "\"\(s)\"", reason: "must be log, linear, {log: N, start: t0}, {linear: N} or a list of times")
            }
        }
        if let a = v as? [Any] {
            return .list(try a.enumerated().map { try number($1, field: "\(field)[\($0)]") })
        }
        if let m = v as? [String: Any] {
            let r = SpecReader(m, path: field)
            if m["log"] != nil {
                try r.rejectUnknown(["log", "start"])
                return .log(count: try r.int("log"), start: try r.double("start", default: 0.01))
            }
            try r.rejectUnknown(["linear"])
            return .linear(count: try r.int("linear"))
        }
        throw SpecError(field: field, value: Experiment.show(v), reason: "must be log, linear, a mapping or a list")
    }
}
