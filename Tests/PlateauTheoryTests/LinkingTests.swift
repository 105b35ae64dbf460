import Testing
@testable import PlateauTheory

/// GSL is linked as `gsl` alone; the CBLAS calls it makes must resolve to OpenBLAS, not to
/// Debian's libgslcblas (which libgsl.so.27 itself lists as NEEDED).
@Suite("Linking")
struct LinkingTests {
    @Test("cblas_dgemm (called by GSL's BLAS wrappers) comes from OpenBLAS")
    func cblasIsOpenBLAS() {
        let provider = cblasProviderForGSL()
        #expect(provider != nil)
        #expect(provider?.contains("openblas") == true, "cblas_dgemm resolves to \(provider ?? "nothing")")
        #expect(provider?.contains("gslcblas") == false)
    }
}
