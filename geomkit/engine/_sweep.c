/* The row sweep (see kernels.py): per row its squared norm, and the column sums and unit-vector
 * sums over the finite rows, in one pass over a C-contiguous block. Loaded with ctypes (no Python
 * API; ctypes releases the GIL during the call). Also the block centring of the moments pass.
 *
 * Row reductions in the block's type with reassociation (vectorised partial sums; no finite-math
 * assumption, so NaN/Inf propagate into the squared norm). Column sums four rows at a time in the
 * block's type, added to the float64 totals every FLUSH rows.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#define FLUSH 256
#define LANES 16 /* independent partial sums per row reduction (several vector registers) */

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CLONES
#endif

#define SWEEP_ROWS(T, NAME)                                                                    \
    CLONES static void NAME(const T *restrict x, int64_t d, int64_t lo, int64_t hi,          \
                            T *restrict sq, double *restrict col, double *restrict unit,      \
                            T *restrict col_part, T *restrict unit_part) {                         \
        int64_t i, j;                                                                          \
        int k, since = 0;                                                                      \
        for (j = 0; j < d; j++) col_part[j] = unit_part[j] = 0;                                \
        for (i = lo; i < hi;) {                                                                \
            int r = hi - i < 4 ? (int)(hi - i) : 4, all = (r == 4), ok[4];                     \
            T inv[4];                                                                          \
            for (k = 0; k < r; k++) {                                                          \
                const T *row = x + (i + k) * d;                                                \
                T s = 0, acc[LANES] = {0};                                                     \
                for (j = 0; j + LANES <= d; j += LANES)                                        \
                    for (int u = 0; u < LANES; u++) acc[u] += row[j + u] * row[j + u];        \
                for (; j < d; j++) s += row[j] * row[j];                                       \
                for (int u = 0; u < LANES; u++) s += acc[u];                                   \
                sq[i + k] = s;                                                                 \
                ok[k] = isfinite(s);                                                           \
                all = all && ok[k];                                                            \
                inv[k] = (ok[k] && s > 0) ? (T)(1.0 / sqrt((double)s)) : (T)0;                 \
            }                                                                                  \
            if (all) {                                                                         \
                const T *restrict r0 = x + i * d, *restrict r1 = r0 + d;                     \
                const T *restrict r2 = r1 + d, *restrict r3 = r2 + d;                          \
                T a0 = inv[0], a1 = inv[1], a2 = inv[2], a3 = inv[3];                          \
                for (j = 0; j < d; j++) {                                                      \
                    col_part[j] += (r0[j] + r1[j]) + (r2[j] + r3[j]);                          \
                    unit_part[j] += (r0[j] * a0 + r1[j] * a1) + (r2[j] * a2 + r3[j] * a3);     \
                }                                                                              \
            } else {                                                                           \
                for (k = 0; k < r; k++) {                                                      \
                    const T *row = x + (i + k) * d;                                            \
                    T a = inv[k];                                                              \
                    if (!ok[k]) continue;                                                      \
                    for (j = 0; j < d; j++) {                                                  \
                        col_part[j] += row[j];                                                 \
                        unit_part[j] += row[j] * a;                                            \
                    }                                                                          \
                }                                                                              \
            }                                                                                  \
            i += r;                                                                            \
            since += r;                                                                        \
            if (since >= FLUSH || i >= hi) {                                                   \
                for (j = 0; j < d; j++) {                                                      \
                    col[j] += col_part[j];                                                     \
                    unit[j] += unit_part[j];                                                   \
                    col_part[j] = unit_part[j] = 0;                                            \
                }                                                                              \
                since = 0;                                                                     \
            }                                                                                  \
        }                                                                                      \
    }

SWEEP_ROWS(float, rows_f32)
SWEEP_ROWS(double, rows_f64)

/* x: n×d (float32 if is64 == 0, else float64), C order; sq: n of the same type; col, unit: d
 * float64, zeroed by the caller. Returns 0, or 1 when out of memory for the two scratch rows. */
int geomkit_row_sweep(const void *x, int64_t n, int64_t d, int is64, void *sq, double *col,
                      double *unit) {
    void *part = malloc(2 * (size_t)d * (is64 ? sizeof(double) : sizeof(float)));
    if (part == NULL) return 1;
    if (is64)
        rows_f64((const double *)x, d, 0, n, (double *)sq, col, unit, (double *)part,
                 (double *)part + d);
    else
        rows_f32((const float *)x, d, 0, n, (float *)sq, col, unit, (float *)part,
                 (float *)part + d);
    free(part);
    return 0;
}

/* out = x − mean (row by row), n×d C order, float32 if is64 == 0 else float64. */
#define CENTRE(T, NAME)                                                                        \
    CLONES static void NAME(const T *restrict x, int64_t n, int64_t d, const T *restrict mean, \
                            T *restrict out) {                                                 \
        for (int64_t i = 0; i < n; i++) {                                                      \
            const T *restrict row = x + i * d;                                                 \
            T *restrict dst = out + i * d;                                                     \
            for (int64_t j = 0; j < d; j++) dst[j] = row[j] - mean[j];                         \
        }                                                                                      \
    }

CENTRE(float, centre_f32)
CENTRE(double, centre_f64)

void geomkit_centre(const void *x, int64_t n, int64_t d, int is64, const void *mean, void *out) {
    if (is64)
        centre_f64((const double *)x, n, d, (const double *)mean, (double *)out);
    else
        centre_f32((const float *)x, n, d, (const float *)mean, (float *)out);
}
