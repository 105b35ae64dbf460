/// Statistics of a sample of independent replicas (seeds), shared by the simulators and the comparisons.
public enum SampleStatistics {
    /// Sample mean and its standard error (sample standard deviation / √n); NaN error for n < 2.
    public static func meanAndStandardError(_ xs: [Double]) -> (mean: Double, standardError: Double) {
        let n = Double(xs.count)
        let m = xs.reduce(0, +) / n
        guard xs.count > 1 else { return (m, .nan) }
        let v = xs.map { ($0 - m) * ($0 - m) }.reduce(0, +) / (n - 1)
        return (m, (v / n).squareRoot())
    }

    /// Mean and standard error across replicas, per time and observable, of curves that share one
    /// time axis and one set of observables. Curves that ended early contribute only the rows they
    /// have; a row is kept while at least one curve has it (NaN error with fewer than two).
    public static func summary(_ curves: [Trajectory]) -> (mean: Trajectory, standardError: Trajectory, count: [Int]) {
        precondition(!curves.isEmpty)
        let names = curves[0].observables
        let rows = curves.map(\.times.count).max()!
        var mean = Trajectory(observables: names), se = Trajectory(observables: names)
        var counts: [Int] = []
        for i in 0..<rows {
            let present = curves.filter { $0.times.count > i }
            var m = [Double](repeating: 0, count: names.count), s = m
            for c in 0..<names.count { (m[c], s[c]) = meanAndStandardError(present.map { $0.values[i][c] }) }
            mean.append(time: present[0].times[i], values: m)
            se.append(time: present[0].times[i], values: s)
            counts.append(present.count)
        }
        return (mean, se, counts)
    }
}
