// How busy two threads stay when each runs half of one product, with no Swift involved:
// y (1024 × 1536) = x (1024 × 576) · Wᵀ, x's rows split in two, OpenBLAS single-threaded in
// each thread (as pissa's lanes run it). Prints a few per-thread times and, over 200 products,
// the threads' busy time as a share of 2 × wall time and the achieved GFLOP/s (BENCHMARKS.md).
//
//   gcc -O2 scripts/bench/two_lane_sgemm.c -o /tmp/two_lane_sgemm -lopenblas -lpthread && /tmp/two_lane_sgemm
#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

extern void openblas_set_num_threads(int);

enum { M = 1024, N = 1536, K = 576, PRODUCTS = 200 };
static float *x, *w, *y;

typedef struct { int row0, row1; double seconds; } Half;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *run(void *arg) {
    Half *h = arg;
    double t0 = now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, h->row1 - h->row0, N, K, 1, x + h->row0 * K, K, w, K,
                0, y + h->row0 * N, N);
    h->seconds = now() - t0;
    return NULL;
}

int main(void) {
    openblas_set_num_threads(1);
    x = malloc(sizeof(float) * M * K);
    w = malloc(sizeof(float) * N * K);
    y = malloc(sizeof(float) * M * N);
    for (long i = 0; i < (long)M * K; i++) x[i] = rand() / (float)RAND_MAX;
    for (long i = 0; i < (long)N * K; i++) w[i] = rand() / (float)RAND_MAX;
    double wall = 0, busy = 0;
    for (int p = 0; p <= PRODUCTS; p++) {   // product 0 is a warm-up
        Half halves[2] = {{0, M / 2, 0}, {M / 2, M, 0}};
        pthread_t second;
        double t0 = now();
        pthread_create(&second, NULL, run, &halves[1]);
        run(&halves[0]);
        pthread_join(second, NULL);
        double t = now() - t0;
        if (p == 0) continue;
        wall += t;
        busy += halves[0].seconds + halves[1].seconds;
        if (p % 40 == 1)
            printf("thread 0 %.2f ms, thread 1 %.2f ms, wall %.2f ms\n", halves[0].seconds * 1e3, halves[1].seconds * 1e3, t * 1e3);
    }
    printf("busy %.1f %% of 2 × wall; %.1f GFLOP/s\n", 100 * busy / (2 * wall), PRODUCTS * 2.0 * M * N * K / wall / 1e9);
    free(x); free(w); free(y);
    return 0;
}
