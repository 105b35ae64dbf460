import PlateauCore

/// What the finite-d simulator needs besides the `Experiment`: the input dimension and the record
/// times. Nothing about the learning problem itself is stated here.
public struct SimulationOptions: Sendable, Hashable {
    /// The input dimension d.
    public var dimension: Int
    /// Requested record times (online SGD: t = steps/d), non-decreasing, within [0, training.time].
    /// The realised times are `OnlineTime.realisedTimes(times, dimension:)` (whole steps).
    public var times: [Double]
    /// Size of a fixed held-out test set for a test-risk estimate; 0 = none.
    public var testSetSize: Int

    public init(dimension: Int, times: [Double], testSetSize: Int = 0) {
        self.dimension = dimension
        self.times = times
        self.testSetSize = testSetSize
    }

    /// The smallest dimension the simulator accepts for p student and k teacher units: it needs
    /// p + k orthonormal directions (teacher span plus its complement) and one more.
    public static func minimumDimension(p: Int, k: Int) -> Int { p + k + 1 }

    /// Checks the experiment and these options together; throws a `SpecError` naming the field.
    public func validate(for experiment: Experiment) throws {
        try experiment.validate()
        guard experiment.training.trainingProtocol == .online else {
            throw SpecError(field: "training.protocol", value: "\"\(experiment.training.trainingProtocol.rawValue)\"",
                            reason: "the online-SGD simulator needs online (multipass: MultipassGDSimulator)")
        }
        let p = experiment.student.p, k = experiment.teacher.k
        let dMin = Self.minimumDimension(p: p, k: k)
        guard dimension >= dMin else {
            throw SpecError(field: "simulation.dimension", value: "\(dimension)",
                            reason: "must be an integer ≥ p + k + 1 = \(dMin)")
        }
        guard dimension <= (1 << 31 - 1) / (p + k) else {
            throw SpecError(field: "simulation.dimension", value: "\(dimension)",
                            reason: "must be ≤ (2^31 − 1)/(p + k) = \((1 << 31 - 1) / (p + k)) (BLAS uses 32-bit sizes)")
        }
        guard !times.isEmpty else {
            throw SpecError(field: "simulation.times", value: "[]", reason: "must list at least one time")
        }
        let horizon = experiment.training.time
        for (i, t) in times.enumerated() {
            guard t.isFinite, t >= 0, t <= horizon * (1 + 1e-12) else {
                throw SpecError(field: "simulation.times[\(i)]", value: "\(t)",
                                reason: "must lie in [0, training.time = \(horizon)]")
            }
            if i > 0, t < times[i - 1] {
                throw SpecError(field: "simulation.times[\(i)]", value: "\(t)",
                                reason: "times must be non-decreasing (previous \(times[i - 1]))")
            }
        }
        let lastStep = OnlineTime.step(at: times.last!, dimension: dimension)
        guard Double(lastStep) < 9e15 else {
            throw SpecError(field: "simulation.times", value: "\(times.last!)", reason: "needs too many steps at d = \(dimension)")
        }
        guard testSetSize >= 0 else {
            throw SpecError(field: "simulation.testSetSize", value: "\(testSetSize)", reason: "must be an integer ≥ 0")
        }
        let testEntries = testSetSize.multipliedReportingOverflow(by: dimension)
        guard !testEntries.overflow, testEntries.partialValue <= 1 << 31 else {
            throw SpecError(field: "simulation.testSetSize", value: "\(testSetSize)",
                            reason: "testSetSize·d must be ≤ 2^31 (the test set is held in memory)")
        }
        let batchEntries = experiment.training.batchSize.multipliedReportingOverflow(by: dimension)
        guard !batchEntries.overflow, batchEntries.partialValue <= 1 << 31 else {
            throw SpecError(field: "training.batchSize", value: "\(experiment.training.batchSize)",
                            reason: "batchSize·d must be ≤ 2^31 (one batch is held in memory)")
        }
    }
}

/// One seed's sampled curve: overlaps measured exactly from the weights at each realised time.
public struct SeedResult: Sendable, Hashable {
    /// The per-seed seed actually used (`SeedSequence.seed(master:index:)` in multi-seed runs).
    public var seed: UInt64
    /// Realised times (multiples of 1/d), one per row of `overlaps`.
    public var times: [Double]
    /// M = WW*ᵀ/d, Q = WWᵀ/d, P = W*W*ᵀ/d and a, measured from the weights.
    public var overlaps: [Overlaps]
    /// ½ mean over the held-out test set of (y − f)², label noise included; nil without a test set.
    public var testRisk: [Double]?
    /// `.completed`, or `.diverged` when the weights became non-finite (rows up to then are kept).
    public var status: TrajectoryStatus
    public var message: String
    /// Multi-pass GD: the training loss, mean over the training samples of ℓ; nil for online SGD.
    public var trainLoss: [Double]?

    public init(seed: UInt64, times: [Double], overlaps: [Overlaps], testRisk: [Double]?,
                status: TrajectoryStatus, message: String, trainLoss: [Double]? = nil) {
        self.seed = seed
        self.times = times
        self.overlaps = overlaps
        self.testRisk = testRisk
        self.status = status
        self.message = message
        self.trainLoss = trainLoss
    }

    /// The curve with the shared observables (`Trajectory.overlapObservables`), `risk` from the
    /// given function of the overlaps (pass the theory's population risk so both sides use one
    /// definition), plus a `test_risk` column when a test set was used and a `train_loss` column for
    /// multi-pass GD.
    public func trajectory(risk: (Overlaps) -> Double) -> Trajectory {
        var trajectory = Trajectory.fromOverlaps(times: times, overlaps: overlaps, risk: risk)
        for (name, column) in [("test_risk", testRisk), ("train_loss", trainLoss)] {
            guard let column else { continue }
            trajectory.observables.append(name)
            for i in trajectory.values.indices { trajectory.values[i].append(column[i]) }
        }
        trajectory.status = status
        trajectory.message = message
        return trajectory
    }
}
