extension Experiment {
    /// Checks every field; throws one `SpecError` carrying every problem found (each naming the
    /// field and the value; `SpecError.all`).
    public func validate() throws {
        let problems = SpecProblems()
        check(into: problems)
        try problems.throwIfAny()
    }

    /// Records every problem of this experiment in `problems` (independent checks all run; a check
    /// whose field already has a problem is dropped by the collector).
    func check(into problems: SpecProblems) {
        func finite(_ x: Double, _ field: String) throws {
            guard x.isFinite else { throw SpecError(field: field, value: Experiment.format(x), reason: "must be a finite number") }
        }
        func finiteVector(_ v: [Double], _ field: String) {
            for (i, x) in v.enumerated() { problems.check { try finite(x, "\(field)[\(i)]") } }
        }
        func finiteMatrix(_ m: Matrix, _ field: String) throws {
            for i in 0..<m.rows { for j in 0..<m.cols { try finite(m[i, j], "\(field)[\(i)][\(j)]") } }
        }
        func symmetricPSD(_ m: Matrix, _ field: String) throws {
            try finiteMatrix(m, field)
            guard m.isSymmetric(tolerance: 1e-9) else {
                throw SpecError(field: field, value: m.description, reason: "must be symmetric")
            }
            guard m.choleskyPSD() != nil else {
                throw SpecError(field: field, value: m.description, reason: "must be positive semi-definite")
            }
        }
        let k = teacher.k, p = student.p
        problems.check {
            guard (1...64).contains(k) else { throw SpecError(field: "teacher.k", value: "\(k)", reason: "must be an integer in 1...64") }
        }
        problems.check {
            guard (1...64).contains(p) else { throw SpecError(field: "student.p", value: "\(p)", reason: "must be an integer in 1...64") }
        }
        problems.check {
            guard teacher.weights.count == k else {
                throw SpecError(field: "teacher.weights", value: "\(teacher.weights)", reason: "must have k = \(k) entries")
            }
            finiteVector(teacher.weights, "teacher.weights")
        }
        let covarianceOK = problems.attempt(false) {
            guard teacher.covariance.rows == k, teacher.covariance.cols == k else {
                throw SpecError(field: "teacher.P", value: teacher.covariance.description, reason: "must be \(k)×\(k)")
            }
            try symmetricPSD(teacher.covariance, "teacher.P")
            for r in 0..<k where teacher.covariance[r, r] <= 0 {
                throw SpecError(field: "teacher.P[\(r)][\(r)]", value: Experiment.format(teacher.covariance[r, r]),
                                reason: "a teacher direction must have positive norm")
            }
            return true
        }
        problems.check {
            try finite(teacher.noiseVariance, "teacher.noise")
            guard teacher.noiseVariance >= 0 else {
                throw SpecError(field: "teacher.noise", value: Experiment.format(teacher.noiseVariance), reason: "is a variance Δ and must be ≥ 0")
            }
        }
        switch training.trainingProtocol {
        case .online: break
        case .multipass: checkMultipass(into: problems)
        case .amp:
            problems.record(SpecError(field: "training.protocol", value: "\"amp\"",
                                      reason: "describes Bayes-optimal estimation, not a trained student: use plateau se, threshold or gamp"))
        }
        problems.check {
            try finite(training.learningRate, "training.learningRate")
            guard training.learningRate > 0 else {
                throw SpecError(field: "training.learningRate", value: Experiment.format(training.learningRate), reason: "must be > 0")
            }
        }
        problems.check {
            guard training.batchSize >= 1 else {
                throw SpecError(field: "training.batchSize", value: "\(training.batchSize)", reason: "must be an integer ≥ 1")
            }
        }
        problems.check {
            try finite(training.weightDecay, "training.weightDecay")
            guard training.weightDecay >= 0 else {
                throw SpecError(field: "training.weightDecay", value: Experiment.format(training.weightDecay), reason: "must be ≥ 0")
            }
        }
        // The multipass horizon is training.steps (checked there).
        if training.trainingProtocol != .multipass { problems.check {
            try finite(training.time, "training.time")
            guard training.time > 0 else {
                throw SpecError(field: "training.time", value: Experiment.format(training.time), reason: "must be > 0")
            }
        } }
        problems.check {
            guard student.secondLayer.count == p else {
                throw SpecError(field: "student.secondLayer", value: "\(student.secondLayer)", reason: "must have p = \(p) entries")
            }
            finiteVector(student.secondLayer, "student.secondLayer")
        }
        // η_a defaults to η: a bad η is reported once, under training.learningRate.
        let inheritsBadRate = !training.learningRate.isFinite
            && student.secondLayerLearningRate.bitPattern == training.learningRate.bitPattern
        if !inheritsBadRate { problems.check {
            try finite(student.secondLayerLearningRate, "student.secondLayerLearningRate")
            if student.trainSecondLayer {
                guard student.secondLayerLearningRate > 0 else {
                    throw SpecError(field: "student.secondLayerLearningRate", value: Experiment.format(student.secondLayerLearningRate),
                                    reason: "must be > 0 when trainSecondLayer is true")
                }
            }
        } }
        switch initialization {
        case let .overlaps(M, Q):
            let mOK = problems.attempt(false) {
                guard M.rows == p, M.cols == k else { throw SpecError(field: "init.M", value: M.description, reason: "must be p×k = \(p)×\(k)") }
                try finiteMatrix(M, "init.M")
                return true
            }
            let qOK = problems.attempt(false) {
                guard Q.rows == p, Q.cols == p else { throw SpecError(field: "init.Q", value: Q.description, reason: "must be p×p = \(p)×\(p)") }
                try symmetricPSD(Q, "init.Q")
                return true
            }
            // The joint condition only means something when its parts are well formed.
            if mOK, qOK, covarianceOK {
                problems.check {
                    guard Overlaps.jointCovariance(M: M, Q: Q, P: teacher.covariance).choleskyPSD() != nil else {
                        throw SpecError(field: "init", value: "M = \(M), Q = \(Q)",
                                        reason: "the joint covariance [[Q, M], [Mᵀ, P]] of (λ, ν) must be positive semi-definite")
                    }
                }
            }
        case let .random(scale, _):
            problems.check {
                try finite(scale, "init.random.scale")
                guard scale > 0 else { throw SpecError(field: "init.random.scale", value: Experiment.format(scale), reason: "must be > 0") }
            }
        case let .orthogonal(Q):
            problems.check {
                guard Q.rows == p, Q.cols == p else { throw SpecError(field: "init.orthogonal.Q", value: Q.description, reason: "must be p×p = \(p)×\(p)") }
                try symmetricPSD(Q, "init.orthogonal.Q")
            }
        }
        if student.spherical {
            let q: Matrix? = {
                switch initialization {
                case let .overlaps(_, Q), let .orthogonal(Q): return Q
                case .random: return nil
                }
            }()
            if let q, q.rows == p, q.cols == p {
                for j in 0..<p where abs(q[j, j] - 1) > 1e-12 {
                    problems.record(SpecError(field: "init.Q[\(j)][\(j)]", value: Experiment.format(q[j, j]),
                                              reason: "must be 1 for a spherical student (|w_j|² = d)"))
                }
            }
        }
        switch output.times {
        case let .log(count, start):
            problems.check {
                guard count >= 1, count <= 1_000_000 else { throw SpecError(field: "output.times.log", value: "\(count)", reason: "must be an integer in 1...1000000") }
            }
            problems.check {
                try finite(start, "output.times.start")
                guard start > 0 else { throw SpecError(field: "output.times.start", value: Experiment.format(start), reason: "must be > 0") }
            }
        case let .linear(count):
            problems.check {
                guard count >= 1, count <= 1_000_000 else { throw SpecError(field: "output.times.linear", value: "\(count)", reason: "must be an integer in 1...1000000") }
            }
        case let .list(ts):
            if ts.isEmpty { problems.record(SpecError(field: "output.times", value: "[]", reason: "must list at least one time")) }
            if ts.count > 1_000_000 {
                problems.record(SpecError(field: "output.times", value: "\(ts.count) times", reason: "must list at most 1000000 times"))
            }
            for (i, t) in ts.enumerated() {
                problems.check {
                    try finite(t, "output.times[\(i)]")
                    guard t >= 0, t <= training.time else {
                        throw SpecError(field: "output.times[\(i)]", value: Experiment.format(t), reason: "must lie in [0, training.time = \(training.time)]")
                    }
                }
            }
        }
    }
}
