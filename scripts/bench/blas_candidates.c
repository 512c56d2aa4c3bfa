// The BLAS candidates on the products and decompositions pissa runs, one library per build.
// scripts/bench/blas_candidates.sh builds it against each candidate and runs them alternately:
//
//   debian:  gcc -O2 blas_candidates.c -o bc_debian $(pkg-config --cflags --libs openblas) -llapacke -lpthread
//   scipy:   gcc -O2 -DPREFIX=scipy_ -I$DIR/include blas_candidates.c -o bc_scipy $DIR/lib/libscipy_openblas.so -Wl,-rpath,$DIR/lib -lpthread
//   mkl:     gcc -O2 -DMKL blas_candidates.c -o bc_mkl $DIR/lib/libmkl_rt.so.3 -Wl,-rpath,$DIR/lib -lpthread
//
// Prints one JSON object: the library's own name for its kernel, and per operation the median
// time and GFLOP/s of `REPEATS` calls. "lanes2" runs two threads, each a single-threaded BLAS
// call on half the rows, as pissa's training lanes do.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef PREFIX
#define PREFIX
#endif
#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define P(name) CAT(PREFIX, name)

enum { RowMajor = 101, ColMajor = 102 };
enum { NoTrans = 111, Trans = 112 };
void P(cblas_sgemm)(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int);
void P(cblas_sgemv)(int, int, int, int, float, const float *, int, const float *, int, float, float *, int);
int P(LAPACKE_sgesdd)(int, char, int, int, float *, int, float *, float *, int, float *, int);
int P(LAPACKE_sgesvdx)(int, char, char, char, int, int, float *, int, float, float, int, int, int *, float *,
                       float *, int, float *, int, int *);
#ifdef MKL
void MKL_Set_Num_Threads(int);
static void set_threads(int n) { MKL_Set_Num_Threads(n); }
static const char *corename(void) { return "mkl"; }
#else
void P(openblas_set_num_threads)(int);
char *P(openblas_get_corename)(void);
char *P(openblas_get_config)(void);
static void set_threads(int n) { P(openblas_set_num_threads)(n); }
static const char *corename(void) { return P(openblas_get_corename)(); }
#endif

#define REPEATS 15

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static float *filled(size_t n, unsigned seed) {
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
    }
    return p;
}

typedef struct { int ta, tb, m, n, k; const float *a, *b; float *c; } Gemm;

static void run_gemm(const Gemm *g) {
    int lda = g->ta == Trans ? g->m : g->k, ldb = g->tb == Trans ? g->k : g->n;
    P(cblas_sgemm)(RowMajor, g->ta, g->tb, g->m, g->n, g->k, 1, g->a, lda, g->b, ldb, 0, g->c, g->n);
}

static void *lane(void *arg) { run_gemm(arg); return NULL; }

// Median seconds of one product, on `threads` BLAS threads, or on two lanes of one thread each
// (threads = -2), each lane taking half of C's rows (op(A) = A only).
static double time_gemm(int ta, int tb, int m, int n, int k, int threads) {
    float *a = filled((size_t)m * k, 1), *b = filled((size_t)k * n, 2), *c = filled((size_t)m * n, 3);
    double t[REPEATS];
    set_threads(threads < 0 ? 1 : threads);
    for (int r = -2; r < REPEATS; r++) {
        double t0 = now();
        if (threads < 0) {
            Gemm halves[2] = {{ta, tb, m / 2, n, k, a, b, c}, {ta, tb, m - m / 2, n, k, a + (size_t)(m / 2) * k, b, c + (size_t)(m / 2) * n}};
            pthread_t other;
            pthread_create(&other, NULL, lane, &halves[1]);
            run_gemm(&halves[0]);
            pthread_join(other, NULL);
        } else {
            Gemm g = {ta, tb, m, n, k, a, b, c};
            run_gemm(&g);
        }
        if (r >= 0) t[r] = now() - t0;
    }
    free(a); free(b); free(c);
    qsort(t, REPEATS, sizeof(double), cmp);
    return t[REPEATS / 2];
}

static double time_gemv(int m, int k, int threads) {
    float *a = filled((size_t)m * k, 1), *x = filled(k, 2), *y = filled(m, 3);
    double t[REPEATS * 10];
    set_threads(threads);
    for (int r = -5; r < REPEATS * 10; r++) {
        double t0 = now();
        P(cblas_sgemv)(RowMajor, NoTrans, m, k, 1, a, k, x, 1, 0, y, 1);
        if (r >= 0) t[r] = now() - t0;
    }
    free(a); free(x); free(y);
    qsort(t, REPEATS * 10, sizeof(double), cmp);
    return t[REPEATS * 5];
}

// sgesdd (jobz 'S') or the top-16 triplets by sgesvdx, on an m×n column-major matrix.
static double time_svd(int m, int n, int top, int threads) {
    float *src = filled((size_t)m * n, 4), *a = malloc((size_t)m * n * sizeof(float));
    int mn = m < n ? m : n;
    float *s = malloc(mn * sizeof(float)), *u = malloc((size_t)m * mn * sizeof(float)), *vt = malloc((size_t)mn * n * sizeof(float));
    int *iwork = malloc(12 * mn * sizeof(int)), found = 0;
    double t[5];
    set_threads(threads);
    for (int r = -1; r < 5; r++) {
        memcpy(a, src, (size_t)m * n * sizeof(float));
        double t0 = now();
        if (top > 0)
            P(LAPACKE_sgesvdx)(ColMajor, 'V', 'V', 'I', m, n, a, m, 0, 0, 1, top, &found, s, u, m, vt, top, iwork);
        else
            P(LAPACKE_sgesdd)(ColMajor, 'S', m, n, a, m, s, u, m, vt, mn);
        if (r >= 0) t[r] = now() - t0;
    }
    free(src); free(a); free(s); free(u); free(vt); free(iwork);
    qsort(t, 5, sizeof(double), cmp);
    return t[2];
}

static int first = 1;
static void report(const char *name, double seconds, double flops) {
    printf("%s\n    \"%s\": {\"ms\": %.3f, \"gflops\": %.1f}", first ? "" : ",", name, seconds * 1e3, flops / seconds / 1e9);
    first = 0;
}

int main(void) {
    printf("{\"corename\": \"%s\", \"results\": {", corename());
    // pissa's projection shapes at 4 × 256 tokens: forward y = x·Wᵀ, dx = dy·W, dW = dyᵀ·x.
    const int m = 1024, n = 1536, k = 576;
    double f = 2.0 * m * n * k;
    report("sgemm NT 1024x1536x576, 1 thread", time_gemm(NoTrans, Trans, m, n, k, 1), f);
    report("sgemm NT 1024x1536x576, 2 lanes", time_gemm(NoTrans, Trans, m, n, k, -2), f);
    report("sgemm NT 1024x1536x576, 2 threads", time_gemm(NoTrans, Trans, m, n, k, 2), f);
    report("sgemm NN 1024x576x1536, 2 lanes", time_gemm(NoTrans, NoTrans, m, k, n, -2), f);
    report("sgemm TN 1536x576x1024, 1 thread", time_gemm(Trans, NoTrans, n, k, m, 1), f);
    report("sgemm NN 2048^3, 2 threads", time_gemm(NoTrans, NoTrans, 2048, 2048, 2048, 2), 2.0 * 2048 * 2048 * 2048);
    report("sgemv 1536x576, 1 thread", time_gemv(1536, 576, 1), 2.0 * 1536 * 576);
    report("sgesdd 576x1536 (col-major 1536x576), 1 thread", time_svd(1536, 576, 0, 1), 0);
    report("sgesvdx top 16 of 1536x576, 1 thread", time_svd(1536, 576, 16, 1), 0);
    printf("\n}}\n");
    return 0;
}
