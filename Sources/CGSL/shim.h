#ifndef PLATEAU_CGSL_SHIM_H
#define PLATEAU_CGSL_SHIM_H
#include <gsl/gsl_errno.h>
#include <gsl/gsl_math.h>
#include <gsl/gsl_odeiv2.h>
#include <gsl/gsl_integration.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_sf_erf.h>
#include <gsl/gsl_sf_bessel.h>
#include <gsl/gsl_eigen.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_vector.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_fit.h>
#include <gsl/gsl_blas.h>
#include <gsl/gsl_qrng.h>

/* GSL exposes its step types as mutable globals, which Swift 6 strict concurrency rejects.
   These accessors wrap them once. */
static inline const gsl_odeiv2_step_type *plateau_step_rk8pd(void) { return gsl_odeiv2_step_rk8pd; }
static inline const gsl_odeiv2_step_type *plateau_step_rkf45(void) { return gsl_odeiv2_step_rkf45; }
static inline const gsl_odeiv2_step_type *plateau_step_rkck(void) { return gsl_odeiv2_step_rkck; }
static inline const gsl_odeiv2_step_type *plateau_step_rk4(void) { return gsl_odeiv2_step_rk4; }
static inline const gsl_integration_fixed_type *plateau_fixed_hermite(void) { return gsl_integration_fixed_hermite; }
static inline const gsl_qrng_type *plateau_qrng_sobol(void) { return gsl_qrng_sobol; }

/* a[i] ← 1/√a[i] for i < n, with the IEEE 754 square root and division (correctly rounded, no errno:
   Swift's squareRoot() on Linux keeps libm's errno path for negative arguments, which stops the
   vectoriser). Vectorised four-wide where the CPU has AVX2 (the package is compiled for the x86-64
   baseline, two-wide), else two-wide; both round every entry alike, so the bits do not depend on
   the machine. The online-SGD right-hand side (erf) takes every square root of one evaluation in
   one call. */
static inline void plateau_reciprocal_square_root_baseline(double *a, long n) {
    for (long i = 0; i < n; i++) a[i] = 1.0 / __builtin_elementwise_sqrt(a[i]);
}
#if defined(__x86_64__)
__attribute__((target("avx2"))) static inline void plateau_reciprocal_square_root_avx2(double *a, long n) {
    for (long i = 0; i < n; i++) a[i] = 1.0 / __builtin_elementwise_sqrt(a[i]);
}
#endif
static inline void plateau_reciprocal_square_root(double *a, long n) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2")) { plateau_reciprocal_square_root_avx2(a, n); return; }
#endif
    plateau_reciprocal_square_root_baseline(a, n);
}

/* The CBLAS behind GSL is OpenBLAS (see module.modulemap): the DMFT runs it single-threaded and
   parallelises over particle replicas instead. */
void openblas_set_num_threads(int num_threads);

#endif
