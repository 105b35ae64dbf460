/// The channel step of GAMP for a multi-index model (EQUATIONS.md §2): the posterior of z ∈ ℝᵏ given
/// one output y under the Gaussian prior z ~ N(ω, V). The theory implements it (`OutputChannel` in
/// PlateauTheory); finite-d GAMP in PlateauSimulation calls it per sample, so both sides use one
/// definition of the channel.
public protocol OutputDenoiser: Sendable {
    /// Number of indices k.
    var k: Int { get }
    /// Writes E[z | y, ω, V] into `mean` (k entries) and Cov[z | y, ω, V] into `covariance` (k×k,
    /// row-major). Returns false when the prior gives y no likelihood (the caller should then treat
    /// the sample as uninformative). V must be symmetric positive definite.
    func posterior(y: Double, omega: [Double], V: Matrix, mean: inout [Double], covariance: inout [Double]) -> Bool
}
