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
}
