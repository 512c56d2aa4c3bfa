#pragma once
// OpenBLAS as PyPI's scipy-openblas32 builds it (scripts/setup.sh installs it): every symbol
// carries the prefix scipy_, so that numpy's and scipy's copies never clash with another BLAS.
// The library calls the usual names; these wrappers map them to the prefixed ones.
#include <cblas.h>
#include <lapacke.h>

static inline void cblas_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb,
                               blasint m, blasint n, blasint k, float alpha, const float *a, blasint lda,
                               const float *b, blasint ldb, float beta, float *c, blasint ldc) {
    scipy_cblas_sgemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static inline void cblas_sgemv(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE t, blasint m, blasint n, float alpha,
                               const float *a, blasint lda, const float *x, blasint incx, float beta, float *y, blasint incy) {
    scipy_cblas_sgemv(order, t, m, n, alpha, a, lda, x, incx, beta, y, incy);
}

static inline void cblas_strsm(enum CBLAS_ORDER order, enum CBLAS_SIDE side, enum CBLAS_UPLO uplo, enum CBLAS_TRANSPOSE t,
                               enum CBLAS_DIAG diag, blasint m, blasint n, float alpha, const float *a, blasint lda,
                               float *b, blasint ldb) {
    scipy_cblas_strsm(order, side, uplo, t, diag, m, n, alpha, a, lda, b, ldb);
}

static inline lapack_int LAPACKE_sgesdd(int layout, char jobz, lapack_int m, lapack_int n, float *a, lapack_int lda,
                                        float *s, float *u, lapack_int ldu, float *vt, lapack_int ldvt) {
    return scipy_LAPACKE_sgesdd(layout, jobz, m, n, a, lda, s, u, ldu, vt, ldvt);
}

static inline lapack_int LAPACKE_sgesvdx(int layout, char jobu, char jobvt, char range, lapack_int m, lapack_int n,
                                         float *a, lapack_int lda, float vl, float vu, lapack_int il, lapack_int iu,
                                         lapack_int *ns, float *s, float *u, lapack_int ldu, float *vt, lapack_int ldvt,
                                         lapack_int *superb) {
    return scipy_LAPACKE_sgesvdx(layout, jobu, jobvt, range, m, n, a, lda, vl, vu, il, iu, ns, s, u, ldu, vt, ldvt, superb);
}

static inline lapack_int LAPACKE_sgelqf(int layout, lapack_int m, lapack_int n, float *a, lapack_int lda, float *tau) {
    return scipy_LAPACKE_sgelqf(layout, m, n, a, lda, tau);
}

static inline lapack_int LAPACKE_sorglq(int layout, lapack_int m, lapack_int n, lapack_int k, float *a, lapack_int lda,
                                        const float *tau) {
    return scipy_LAPACKE_sorglq(layout, m, n, k, a, lda, tau);
}

static inline void cblas_dgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb,
                               blasint m, blasint n, blasint k, double alpha, const double *a, blasint lda,
                               const double *b, blasint ldb, double beta, double *c, blasint ldc) {
    scipy_cblas_dgemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static inline lapack_int LAPACKE_sgeqrf(int layout, lapack_int m, lapack_int n, float *a, lapack_int lda, float *tau) {
    return scipy_LAPACKE_sgeqrf(layout, m, n, a, lda, tau);
}

static inline lapack_int LAPACKE_sorgqr(int layout, lapack_int m, lapack_int n, lapack_int k, float *a, lapack_int lda,
                                        const float *tau) {
    return scipy_LAPACKE_sorgqr(layout, m, n, k, a, lda, tau);
}

static inline lapack_int LAPACKE_sgetrf(int layout, lapack_int m, lapack_int n, float *a, lapack_int lda, lapack_int *ipiv) {
    return scipy_LAPACKE_sgetrf(layout, m, n, a, lda, ipiv);
}

static inline lapack_int LAPACKE_sgetri(int layout, lapack_int n, float *a, lapack_int lda, const lapack_int *ipiv) {
    return scipy_LAPACKE_sgetri(layout, n, a, lda, ipiv);
}

static inline lapack_int LAPACKE_dgesdd(int layout, char jobz, lapack_int m, lapack_int n, double *a, lapack_int lda,
                                        double *s, double *u, lapack_int ldu, double *vt, lapack_int ldvt) {
    return scipy_LAPACKE_dgesdd(layout, jobz, m, n, a, lda, s, u, ldu, vt, ldvt);
}

static inline lapack_int LAPACKE_dgesvdx(int layout, char jobu, char jobvt, char range, lapack_int m, lapack_int n,
                                         double *a, lapack_int lda, double vl, double vu, lapack_int il, lapack_int iu,
                                         lapack_int *ns, double *s, double *u, lapack_int ldu, double *vt, lapack_int ldvt,
                                         lapack_int *superb) {
    return scipy_LAPACKE_dgesvdx(layout, jobu, jobvt, range, m, n, a, lda, vl, vu, il, iu, ns, s, u, ldu, vt, ldvt, superb);
}

static inline lapack_int LAPACKE_dpotrf(int layout, char uplo, lapack_int n, double *a, lapack_int lda) {
    return scipy_LAPACKE_dpotrf(layout, uplo, n, a, lda);
}

static inline lapack_int LAPACKE_dpotrs(int layout, char uplo, lapack_int n, lapack_int nrhs, const double *a, lapack_int lda,
                                        double *b, lapack_int ldb) {
    return scipy_LAPACKE_dpotrs(layout, uplo, n, nrhs, a, lda, b, ldb);
}

static inline int openblas_get_num_threads(void) { return scipy_openblas_get_num_threads(); }
static inline void openblas_set_num_threads(int n) { scipy_openblas_set_num_threads(n); }
/// The kernel family in use, e.g. "SkylakeX", "Haswell", "Prescott".
static inline const char *openblas_get_corename(void) { return scipy_openblas_get_corename(); }
/// The build: version and options, e.g. "OpenBLAS 0.3.34 DYNAMIC_ARCH NO_AFFINITY SkylakeX MAX_THREADS=64".
static inline const char *openblas_get_config(void) { return scipy_openblas_get_config(); }
