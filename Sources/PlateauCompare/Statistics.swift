internal import CGSL
import Foundation
import PlateauCore

/// Seed-to-seed statistics of curves that share one time axis and one set of observables.
public enum SeedStatistics {
    /// Mean and standard error (sample standard deviation / √R) across seeds, per time and
    /// observable. Curves that ended early contribute only the rows they have; a row is kept
    /// while at least one seed has it, and its standard error is NaN with fewer than two seeds.
    public static func summary(_ curves: [Trajectory]) -> (mean: Trajectory, standardError: Trajectory, count: [Int]) {
        SampleStatistics.summary(curves)
    }

    /// Sample mean and its standard error (sample standard deviation / √n); NaN error for n < 2.
    public static func meanAndStandardError(_ xs: [Double]) -> (mean: Double, standardError: Double) {
        SampleStatistics.meanAndStandardError(xs)
    }

    /// The two-sided critical value for `comparisons` simultaneous tests at family-wise error
    /// `alpha` (Bonferroni): the Student-t quantile with R − 1 degrees of freedom at 1 − α/(2N),
    /// or the normal quantile when `seeds` is nil.
    public static func criticalValue(alpha: Double, comparisons: Int, seeds: Int?) -> Double {
        let q = 1 - alpha / (2 * Double(max(1, comparisons)))
        _ = gsl_set_error_handler_off()
        if let seeds, seeds > 1 { return gsl_cdf_tdist_Pinv(q, Double(seeds - 1)) }
        return gsl_cdf_ugaussian_Pinv(q)
    }

    /// Least-squares line y = intercept + slope·x with the slope's standard error (GSL gsl_fit_linear).
    public static func linearFit(x: [Double], y: [Double]) -> (intercept: Double, slope: Double, slopeStandardError: Double) {
        precondition(x.count == y.count && x.count >= 2)
        var c0 = 0.0, c1 = 0.0, cov00 = 0.0, cov01 = 0.0, cov11 = 0.0, sumsq = 0.0
        _ = gsl_set_error_handler_off()
        _ = gsl_fit_linear(x, 1, y, 1, x.count, &c0, &c1, &cov00, &cov01, &cov11, &sumsq)
        // gsl_fit_linear's covariance uses the residual variance sumsq/(n − 2): with two points the
        // line fits exactly and the standard error is undefined (NaN), not zero.
        return (c0, c1, x.count > 2 ? cov11.squareRoot() : .nan)
    }
}
