#ifndef PLATEAU_COPENBLAS_SHIM_H
#define PLATEAU_COPENBLAS_SHIM_H
/* OpenBLAS's cblas.h also declares openblas_set_num_threads and openblas_get_config. */
#include <cblas.h>
#include <stddef.h>

/* LAPACK routines shipped inside libopenblas (no LAPACKE there): the Fortran calling convention,
   column-major arrays, every argument by pointer, and gfortran's hidden lengths of the character
   arguments appended last. */
void dsyevr_(const char *jobz, const char *range, const char *uplo, const int *n, double *a, const int *lda,
             const double *vl, const double *vu, const int *il, const int *iu, const double *abstol, int *m,
             double *w, double *z, const int *ldz, int *isuppz, double *work, const int *lwork, int *iwork,
             const int *liwork, int *info, size_t jobz_len, size_t range_len, size_t uplo_len);
void dgeev_(const char *jobvl, const char *jobvr, const int *n, double *a, const int *lda, double *wr, double *wi,
            double *vl, const int *ldvl, double *vr, const int *ldvr, double *work, const int *lwork, int *info,
            size_t jobvl_len, size_t jobvr_len);
void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w, double *work,
            const int *lwork, int *info, size_t jobz_len, size_t uplo_len);
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t uplo_len);
#endif
