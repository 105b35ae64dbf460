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
    /// A scratch object for the allocation-free per-sample path (one per thread).
    func makeWorkspace() -> any OutputDenoiserWorkspace
    /// When the posterior depends on y only through a discrete class (a noiseless output: its label or
    /// bin), that class; nil otherwise. Lets a caller evaluate the posterior once per class.
    func outputClass(y: Double) -> Int?
}

extension OutputDenoiser {
    public func outputClass(y: Double) -> Int? { nil }
}

/// Per-thread scratch space of an `OutputDenoiser`: V is prepared once (it is shared by all samples of
/// a GAMP iteration), then the posterior is evaluated per sample without allocating. Not thread-safe.
public protocol OutputDenoiserWorkspace: AnyObject {
    /// Prepares the prior covariance V (k×k, row-major, symmetric) for the following `posterior` calls.
    /// False when V is not positive definite.
    func setCovariance(_ V: UnsafePointer<Double>) -> Bool
    /// As `OutputDenoiser.posterior`, with V from the last successful `setCovariance` and k-sized
    /// buffers: E[z | y, ω, V] into `mean` (k), Cov[z | y, ω, V] into `covariance` (k×k, row-major).
    func posterior(y: Double, omega: UnsafePointer<Double>, mean: UnsafeMutablePointer<Double>,
                   covariance: UnsafeMutablePointer<Double>) -> Bool
}
