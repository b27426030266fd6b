/* The float32 decode step's ops between its matmuls, each fused into one C call (fused_decode.py
   calls them through ctypes), and a batch-1 step whose layers run in one call. From Python each
   ATen op costs 2-20 us on these CPUs (F.rms_norm of one 576-wide row: 17 us); a decode step has
   ~25 of them per layer, and they cost more than a small model's weights take to stream. Here a
   whole norm, or a whole attention over the cache, is one call of ~1 us plus its arithmetic.

   The attention runs its heads on torch's OpenMP threads where the library is built with
   -fopenmp against the libgomp torch loaded (fused_build.py), once its cache is long enough
   to pay for a parallel region: the cache streams from memory, and two cores read it faster
   than one (a 56M step's attention: 0.37 ms on two threads, 0.55 on one). The norms and silu
   are a few thousand elements, below what pays for a parallel region. Built without
   -ffast-math: with it, gcc links crtfastmath.o into the library, which flushes denormals
   for the whole process. */
#include <math.h>
#include <stdint.h>
#include <string.h>

/* 1 where this build runs its parallel regions on OpenMP threads, 0 where it runs them on
   one (a compiler without OpenMP for torch's runtime: fused_build.py says so at load). */
int64_t built_with_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

/* own_sgemv splits its rows over threads from this size (128 KB of float32): below, the
   parallel region's wake-up costs about what a second core saves */
#define PARALLEL_MATVEC_FLOATS (32 * 1024)

/* One layer's attention at decode: the sizes, the caches and the norms it reads. */
typedef struct {
    int64_t bsz, nh, nkv, hd, max_len; /* max_len: the caches' third dimension */
    float scale, eps;                  /* 1/sqrt(hd); Qwen3's head norms' epsilon */
    const float *q_norm, *k_norm;      /* (hd,) each, Qwen3 only; NULL otherwise */
    const float *cos, *sin;            /* (max_len, hd), rotate_half's sign folded into sin */
    float *k_cache, *v_cache;          /* (bsz, nkv, max_len, hd) */
    float *scores;                     /* scratch, (bsz * nh, max_len) */
    int64_t parallel_len;              /* from this many positions the heads split over threads */
} Attention;

static void norm_row(const float *x, const float *w, float *out, int64_t d, float eps) {
    float ss = 0.0f;
    for (int64_t i = 0; i < d; i++) ss += x[i] * x[i];
    const float s = 1.0f / sqrtf(ss / (float)d + eps);
    for (int64_t i = 0; i < d; i++) out[i] = x[i] * s * w[i];
}

/* e^x, written so that loops over it vectorize (libm's expf is a call per element: at batch 8
   softmax and silu made a 250M step 1.07x the ATen step's). Cephes' expf: x = n ln2 + r with
   |r| <= ln2 / 2, e^r by a degree-7 polynomial, 2^n put into the exponent bits; within 2e-7
   of expf, relative, for |x| <= 60. */
static inline float exp_approx(float x) {
    /* Not fminf/fmaxf: without -ffinite-math-only (which would turn a NaN into a number) they
       stop the loop vectorizing. A ternary does, but the compiler then computes each bound's
       case for every element: at +-88, silu's g / (1 + e^88) came out denormal for |g| < 0.7,
       and the microcode assists made silu_mul 10x slower. At +-60 it stays normal, and
       e^-60 = 9e-27 is as good as 0 next to softmax's sum (>= 1) and silu's 1. */
    x = x < -60.0f ? -60.0f : (x > 60.0f ? 60.0f : x);
    const float n = floorf(x * 1.44269504088896341f + 0.5f);
    const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union {
        int32_t i;
        float f;
    } scale = {.i = ((int32_t)n + 127) << 23};
    return p * scale.f;
}

/* out = x * rsqrt(mean(x^2) + eps) * w, row by row (F.rms_norm) */
void rms_norm(const float *x, const float *w, float *out, int64_t rows, int64_t d, float eps) {
    for (int64_t r = 0; r < rows; r++) norm_row(x + r * d, w, out + r * d, d, eps);
}

/* x += y (the residual), then out = rms_norm(x) */
void add_rms_norm(float *x, const float *y, const float *w, float *out, int64_t rows, int64_t d,
                  float eps) {
    for (int64_t n = rows * d, i = 0; i < n; i++) x[i] += y[i];
    rms_norm(x, w, out, rows, d, eps);
}

/* gate_up rows of [gate | up] (2 * inter each) -> silu(gate) * up, rows of inter */
void silu_mul(const float *gate_up, float *out, int64_t rows, int64_t inter) {
    for (int64_t r = 0; r < rows; r++) {
        const float *g = gate_up + r * 2 * inter, *u = g + inter;
        float *o = out + r * inter;
        for (int64_t i = 0; i < inter; i++) o[i] = g[i] / (1.0f + exp_approx(-g[i])) * u[i];
    }
}

/* x * cos + rotate_half(x) * sin, for one head (sin's first half holds -sin) */
static void rope_head(const float *x, const float *cos, const float *sin, float *out, int64_t hd) {
    const int64_t half = hd / 2;
    for (int64_t i = 0; i < half; i++) out[i] = x[i] * cos[i] + x[i + half] * sin[i];
    for (int64_t i = half; i < hd; i++) out[i] = x[i] * cos[i] + x[i - half] * sin[i];
}

/* Eight floats as one value (GCC's and clang's vector extension: AVX on x86, two NEON registers
   on ARM). The attention's loops are written with it: the compiler did not vectorize them
   well (the sum over positions went through memory, then came out scalar). */
typedef float vf8 __attribute__((vector_size(32)));

static inline vf8 load8(const float *p) {
    vf8 x;
    memcpy(&x, p, sizeof x);
    return x;
}

static inline void store8(float *p, vf8 x) { memcpy(p, &x, sizeof x); }

static inline float sum8(vf8 x) {
    return (x[0] + x[4]) + (x[1] + x[5]) + (x[2] + x[6]) + (x[3] + x[7]);
}

static float dot(const float *a, const float *b, int64_t n) {
    vf8 acc = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) acc += load8(a + i) * load8(b + i);
    float s = sum8(acc);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* One query head against positions 0..len-1 of its key/value head: softmax(q.K * scale) V. */
static void attend_head(const float *q, const float *keys, const float *values, int64_t len,
                        int64_t hd, float scale, float *scores, float *out) {
    float top = 0.0f;
    for (int64_t t = 0; t < len; t++) {
        scores[t] = dot(q, keys + t * hd, hd) * scale;
        if (t == 0 || scores[t] > top) top = scores[t];
    }
    float total = 0.0f;
    for (int64_t t = 0; t < len; t++) {
        scores[t] = exp_approx(scores[t] - top);
        total += scores[t];
    }
    /* the sum over positions, 64 outputs (a whole Llama head) at a time, held in registers,
       so each value row is read once; then 16 at a time */
    const float inv = 1.0f / total;
    int64_t i0 = 0;
    for (; i0 + 64 <= hd; i0 += 64) {
        vf8 acc[8] = {{0}};
        for (int64_t t = 0; t < len; t++) {
            const float *v = values + t * hd + i0;
            for (int j = 0; j < 8; j++) acc[j] += scores[t] * load8(v + 8 * j);
        }
        for (int j = 0; j < 8; j++) store8(out + i0 + 8 * j, acc[j] * inv);
    }
    for (; i0 + 16 <= hd; i0 += 16) {
        vf8 lo = {0}, hi = {0};
        for (int64_t t = 0; t < len; t++) {
            const float *v = values + t * hd + i0;
            lo += scores[t] * load8(v);
            hi += scores[t] * load8(v + 8);
        }
        store8(out + i0, lo * inv);
        store8(out + i0 + 8, hi * inv);
    }
    for (int64_t i = i0; i < hd; i++) { /* a head_dim that is not a multiple of 16 */
        float acc = 0.0f;
        for (int64_t t = 0; t < len; t++) acc += scores[t] * values[t * hd + i];
        out[i] = acc * inv;
    }
}

/* A decode step's attention for one layer: qkv holds (bsz, (nh + 2 nkv) hd) rows from the
   fused projection. Rotates q and k at `pos` (after Qwen3's head norms), stores k and v in
   the caches at `pos`, attends over positions 0..pos; out: (bsz, nh hd). Query head h reads
   key/value head h / (nh / nkv), as transformers' repeat_kv does. */
void decode_attention(const Attention *a, const float *qkv, int64_t pos, float *out) {
    const int64_t nh = a->nh, nkv = a->nkv, hd = a->hd, rep = nh / nkv, len = pos + 1;
    const int64_t width = (nh + 2 * nkv) * hd;
    const float *cos = a->cos + pos * hd, *sin = a->sin + pos * hd;
    for (int64_t b = 0; b < a->bsz; b++) {
        const float *row = qkv + b * width;
        for (int64_t g = 0; g < nkv; g++) {
            const float *k = row + (nh + g) * hd, *v = row + (nh + nkv + g) * hd;
            const int64_t at = ((b * nkv + g) * a->max_len + pos) * hd;
            float normed[hd];
            if (a->k_norm) {
                norm_row(k, a->k_norm, normed, hd, a->eps);
                k = normed;
            }
            rope_head(k, cos, sin, a->k_cache + at, hd);
            memcpy(a->v_cache + at, v, (size_t)hd * sizeof(float));
        }
    }
    const int64_t heads = a->bsz * nh;
#pragma omp parallel for schedule(static) if (heads > 1 && len >= a->parallel_len)
    for (int64_t bh = 0; bh < heads; bh++) {
        const int64_t b = bh / nh, h = bh % nh;
        const float *qh = qkv + b * width + h * hd;
        float normed[hd], q[hd];
        if (a->q_norm) {
            norm_row(qh, a->q_norm, normed, hd, a->eps);
            qh = normed;
        }
        rope_head(qh, cos, sin, q, hd);
        const int64_t head = (b * nkv + h / rep) * a->max_len * hd;
        attend_head(q, a->k_cache + head, a->v_cache + head, len, hd, a->scale,
                    a->scores + bh * a->max_len, out + bh * hd);
    }
}

/* BLAS's sgemv, Fortran's calling convention: the one F.linear reaches for a single row (MKL's
   in torch's x86 wheels). fused_decode.py passes its address, found in torch's library. */
typedef void (*Sgemv)(const char *trans, const int *m, const int *n, const float *alpha,
                      const float *a, const int *lda, const float *x, const int *incx,
                      const float *beta, float *y, const int *incy);

/* Sixteen floats as one value: one AVX-512 register, two AVX ones, four NEON ones. */
typedef float vf16 __attribute__((vector_size(64)));

static inline vf16 load16(const float *p) {
    vf16 x;
    memcpy(&x, p, sizeof x);
    return x;
}

static inline float sum16(vf16 x) {
    vf8 lo, hi;
    memcpy(&lo, &x, sizeof lo);
    memcpy(&hi, (const char *)&x + sizeof lo, sizeof hi);
    return sum8(lo + hi);
}

/* own_matmul's sums: one vector register of MM_LANES floats each. Sixteen vf16 sums fit in
   AVX-512's 32 registers of 16 floats; under AVX2 (16 registers of 8 floats) they took 32
   registers and spilled: 1.5x the time of vf8 sums at batch 8 (ATEN_CPU_CAPABILITY=avx2 on a
   Xeon @ 2.80GHz; 2.0x for vf16 against vf4 with SSE alone). */
#if defined(__AVX512F__)
#define MM_LANES 16
#elif defined(__AVX__)
#define MM_LANES 8
#else
#define MM_LANES 4
#endif
typedef float vmm __attribute__((vector_size(MM_LANES * sizeof(float))));

static inline vmm load_vmm(const float *p) {
    vmm x;
    memcpy(&x, p, sizeof x);
    return x;
}

static inline float sum_vmm(vmm x) {
    float s = 0.0f;
    for (int l = 0; l < MM_LANES; l++) s += x[l];
    return s;
}

/* rows r0..r1 of y = alpha w x + beta y, four rows at a time: x is read once per four rows
   and stays in L1, while each row streams from memory. Each step asks for the same columns
   of the next four rows: the hardware prefetcher stops at a 4 KB page, and four streams of
   2 KB rows cross one every other step (on a Xeon @ 2.80GHz a first version without the
   prefetch took 1.08-1.15x MKL's time over a step's matrices; bench/matmul.py measures this
   one at 0.98-1.03x). */
static void matvec_rows(const float *w, int64_t ldw, const float *x, float *y, int64_t r0,
                        int64_t r1, int64_t k, float alpha, float beta) {
    for (int64_t r = r0; r < r1; r += 4) {
        const int64_t n = r1 - r < 4 ? r1 - r : 4;
        const float *row[4];
        for (int j = 0; j < 4; j++) row[j] = w + (r + (j < n ? j : 0)) * ldw;
        vf16 acc[4] = {{0}};
        int64_t i = 0;
        for (; i + 16 <= k; i += 16) {
            const vf16 xv = load16(x + i);
            for (int j = 0; j < 4; j++) {
                __builtin_prefetch(row[j] + i + 4 * ldw);
                acc[j] += load16(row[j] + i) * xv;
            }
        }
        for (int64_t j = 0; j < n; j++) {
            float s = sum16(acc[j]);
            for (int64_t t = i; t < k; t++) s += row[j][t] * x[t];
            y[r + j] = alpha * s + (beta == 0.0f ? 0.0f : beta * y[r + j]);
        }
    }
}

/* The library's own matvec, with sgemv's signature and arguments so that decode_one_row can
   take it or BLAS's: y = alpha A^T x + beta y for a column-major (m, n) A, i.e. a row-major
   (n, m) w; trans "T" and unit strides only, as matvec below calls it. The rows split over
   torch's OpenMP threads in blocks of four, once the matrix is big enough to pay for a
   parallel region. Where MKL's sgemv is slow (MKL off Intel's CPUs: F.linear's floor was
   2.0x oneDNN's on an AMD EPYC) or absent, the load-time choice can keep this one. */
void own_sgemv(const char *trans, const int *m, const int *n, const float *alpha, const float *a,
               const int *lda, const float *x, const int *incx, const float *beta, float *y,
               const int *incy) {
    (void)trans, (void)incx, (void)incy;
    const int64_t k = *m, rows = *n, blocks = (rows + 3) / 4;
#pragma omp parallel for schedule(static) if (rows * k >= PARALLEL_MATVEC_FLOATS)
    for (int64_t b = 0; b < blocks; b++) {
        const int64_t r0 = 4 * b, r1 = r0 + 4 < rows ? r0 + 4 : rows;
        matvec_rows(a, *lda, x, y, r0, r1, k, *alpha, *beta);
    }
}

/* bfloat16 is the top half of a float32: widened by a shift, it multiplies in float32. */
typedef uint32_t vu32 __attribute__((vector_size(MM_LANES * sizeof(uint32_t))));

static inline vmm load_bf16(const uint16_t *p) {
    vu32 wide;
    for (int l = 0; l < MM_LANES; l++) wide[l] = (uint32_t)p[l] << 16;
    vmm x;
    memcpy(&x, &wide, sizeof x);
    return x;
}

static inline float bf16_float(uint16_t h) {
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* rounded to the nearest bfloat16, ties to even, as torch's .to(torch.bfloat16) rounds */
static inline uint16_t float_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* a quiet NaN */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static inline float same_float(float f) { return f; }

/* Rows r and r + 1 (r alone where `two` is 0) of w against `nb` (1-8) float32 rows of x:
   each weight vector is loaded once for every row of x, so the weights stream once per eight
   rows of x where F.linear's BLAS streams them once per row (at batch 8 a 32000x512 lm_head
   took 4.1 ms on a Xeon @ 2.80GHz, 4.8 in oneDNN's packed layout, 10.8 in F.linear).
   Inlined with a constant `nb`, so the sixteen sums stay in registers. One body for each
   weight type T: LOAD reads MM_LANES weights as float32, WIDEN one weight (or bias), and
   NARROW rounds a float32 sum to y's type; the sums are float32 either way, as oneDNN and
   ATen keep them for bfloat16, and y is rounded once, after the bias. */
#define TWO_ROWS_OF(NAME, T, LOAD, WIDEN, NARROW)                                              \
    static inline __attribute__((always_inline)) void NAME(                                    \
        const T *w, int64_t k, const T *bias, const float *x, T *y, int64_t n, int64_t r,      \
        int two, const int nb) {                                                               \
        const T *a = w + r * k, *b = w + (r + two) * k;                                        \
        vmm acc_a[8] = {{0}}, acc_b[8] = {{0}};                                                \
        int64_t i = 0;                                                                         \
        for (; i + MM_LANES <= k; i += MM_LANES) {                                             \
            __builtin_prefetch(a + i + 2 * k); /* the next pair's columns, as in matvec_rows */ \
            __builtin_prefetch(b + i + 2 * k);                                                 \
            const vmm wa = LOAD(a + i), wb = LOAD(b + i);                                      \
            for (int j = 0; j < nb; j++) {                                                     \
                const vmm xv = load_vmm(x + j * k + i);                                        \
                acc_a[j] += wa * xv;                                                           \
                acc_b[j] += wb * xv;                                                           \
            }                                                                                  \
        }                                                                                      \
        for (int j = 0; j < nb; j++) {                                                         \
            float sa = sum_vmm(acc_a[j]), sb = sum_vmm(acc_b[j]);                              \
            for (int64_t t = i; t < k; t++) {                                                  \
                sa += WIDEN(a[t]) * x[j * k + t];                                              \
                sb += WIDEN(b[t]) * x[j * k + t];                                              \
            }                                                                                  \
            y[j * n + r] = NARROW(sa + (bias ? WIDEN(bias[r]) : 0.0f));                        \
            if (two) y[j * n + r + 1] = NARROW(sb + (bias ? WIDEN(bias[r + 1]) : 0.0f));       \
        }                                                                                      \
    }

TWO_ROWS_OF(two_rows, float, load_vmm, same_float, same_float)
TWO_ROWS_OF(two_rows_bf16, uint16_t, load_bf16, bf16_float, float_bf16)

/* own_matmul's and own_matmul_bf16's loop: pairs of weight rows split over the threads, each
   pair against eight rows of the float32 x at a time while it sits in L1, with TWO_ROWS
   (two_rows or two_rows_bf16) inlined for a constant row count in each case. A macro: as an
   inline function taking the kernel as an argument, its parallel region is outlined before
   the inlining, and small matrices took 5-18% longer (960x576 at 3 rows, 2-core Xeon). */
#define OVER_PAIRS(TWO_ROWS, w, bias, x, y, n, k, rows)                                        \
    do {                                                                                       \
        const int64_t pairs = ((n) + 1) / 2;                                                   \
        _Pragma("omp parallel for schedule(static) if (n * k >= PARALLEL_MATVEC_FLOATS)")      \
        for (int64_t p = 0; p < pairs; p++) {                                                  \
            const int64_t r = 2 * p;                                                           \
            const int two = r + 1 < (n);                                                       \
            for (int64_t b0 = 0; b0 < (rows); b0 += 8) {                                       \
                const float *xb = (x) + b0 * (k);                                              \
                __typeof__(y) yb = (y) + b0 * (n);                                             \
                switch ((rows) - b0 < 8 ? (int)((rows) - b0) : 8) {                            \
                case 1: TWO_ROWS(w, k, bias, xb, yb, n, r, two, 1); break;                     \
                case 2: TWO_ROWS(w, k, bias, xb, yb, n, r, two, 2); break;                     \
                case 3: TWO_ROWS(w, k, bias, xb, yb, n, r, two, 3); break;                     \
                case 4: TWO_ROWS(w, k, bias, xb, yb, n, r, two, 4); break;                     \
                case 5: TWO_ROWS(w, k, bias, xb, yb, n, r, two, 5); break;                     \
                case 6: TWO_ROWS(w, k, bias, xb, yb, n, r, two, 6); break;                     \
                case 7: TWO_ROWS(w, k, bias, xb, yb, n, r, two, 7); break;                     \
                default: TWO_ROWS(w, k, bias, xb, yb, n, r, two, 8); break;                    \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    } while (0)

/* y = x w^T (+ bias) for `rows` rows of x, (rows, k), and a row-major (n, k) w: the decode
   step's projections at a small batch (kernels.py's "C matmul"). One row takes own_sgemv's
   four-row blocks; more, pairs of weight rows split over the threads, each pair against
   eight rows of x at a time while it sits in L1. */
void own_matmul(const float *w, const float *bias, const float *x, float *y, int64_t n,
                int64_t k, int64_t rows) {
    if (rows == 1) {
        const int m = (int)k, cols = (int)n, one = 1;
        const float alpha = 1.0f, beta = bias ? 1.0f : 0.0f;
        if (bias) memcpy(y, bias, (size_t)n * sizeof(float));
        own_sgemv("T", &m, &cols, &alpha, w, &m, x, &one, &beta, y, &one);
        return;
    }
    OVER_PAIRS(two_rows, w, bias, x, y, n, k, rows);
}

/* own_matmul for bfloat16 w, bias, x and y: x widened to float32 once (`xf`, rows * k), then
   pairs of weight rows split over the threads, each against eight rows of x at a time. Half
   the bytes of float32 weights to stream: ATen's bfloat16 matvec read them at a third of
   float32's speed on a 2-core Xeon with AMX (smollm2-135m: 48 ms a step, 24 in float32). */
void own_matmul_bf16(const uint16_t *w, const uint16_t *bias, const uint16_t *x, uint16_t *y,
                     float *xf, int64_t n, int64_t k, int64_t rows) {
    for (int64_t i = 0; i < rows * k; i++) xf[i] = bf16_float(x[i]);
    OVER_PAIRS(two_rows_bf16, w, bias, xf, y, n, k, rows);
}

/* y = w x (+ b) for a row-major (n, k) w, which Fortran reads as the (k, n) column-major w^T */
static void matvec(Sgemv sgemv, const float *w, const float *bias, const float *x, float *y,
                   int64_t n, int64_t k) {
    const int rows = (int)k, cols = (int)n, one = 1;
    const float alpha = 1.0f, beta = bias ? 1.0f : 0.0f;
    if (bias) memcpy(y, bias, (size_t)n * sizeof(float));
    sgemv("T", &rows, &cols, &alpha, w, &rows, x, &one, &beta, y, &one);
}

/* matvec for one call from Python: the probe that this sgemv gives F.linear's answer */
void linear_one_row(Sgemv sgemv, const float *w, const float *bias, const float *x, float *y,
                    int64_t n, int64_t k) {
    matvec(sgemv, w, bias, x, y, n, k);
}

/* One layer's weights, plain (n, k) row-major, as F.linear takes them. */
typedef struct {
    const float *wqkv, *bqkv, *wo, *w13, *w2; /* bqkv: Qwen2's q/k/v bias, or NULL */
    const float *ln1, *ln2, *after;           /* after: the next layer's ln1, or the final norm */
    const Attention *attention;
} Layer;

/* A batch-1 decode step's layers: sizes, weights, and one row of scratch per activation. */
typedef struct {
    int64_t layers, dim, attn_dim, qkv_dim, inter;
    float eps;
    const Layer *layer;
    const float *embed;
    float *x, *h, *qkv, *attn, *o, *gate_up, *act, *down;
    Sgemv qkv_mv, o_mv, gate_up_mv, down_mv; /* each projection's: BLAS's sgemv or own_sgemv */
} OneRowStep;

/* The embedding of `token` at `pos` through every layer, into s->h (the final norm's output,
   which the lm_head multiplies: fused_decode.py runs it with its own kernel). The same
   arithmetic, in the same order, as fused_decode.py's layer loop with F.linear. */
void decode_one_row(const OneRowStep *s, int64_t token, int64_t pos) {
    const int64_t d = s->dim;
    memcpy(s->x, s->embed + token * d, (size_t)d * sizeof(float));
    rms_norm(s->x, s->layer[0].ln1, s->h, 1, d, s->eps);
    for (int64_t i = 0; i < s->layers; i++) {
        const Layer *l = s->layer + i;
        matvec(s->qkv_mv, l->wqkv, l->bqkv, s->h, s->qkv, s->qkv_dim, d);
        decode_attention(l->attention, s->qkv, pos, s->attn);
        matvec(s->o_mv, l->wo, NULL, s->attn, s->o, d, s->attn_dim);
        add_rms_norm(s->x, s->o, l->ln2, s->h, 1, d, s->eps);
        matvec(s->gate_up_mv, l->w13, NULL, s->h, s->gate_up, 2 * s->inter, d);
        silu_mul(s->gate_up, s->act, 1, s->inter);
        matvec(s->down_mv, l->w2, NULL, s->act, s->down, d, s->inter);
        add_rms_norm(s->x, s->down, l->after, s->h, 1, d, s->eps);
    }
}
