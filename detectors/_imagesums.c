/* The integer sums behind every image signal, in one pass over the pixels (detectors/image.py).
 *
 * image_sums(buffer, height, width, channels) -> 11 ints:
 *   luma sum, luma sum of squares, Laplacian sum, Laplacian sum of squares,
 *   pixels with luma <= 10, pixels with luma >= 245,
 *   (R-G) sum, (R-G) sum of squares, (R+G-2B) sum, (R+G-2B) sum of squares,
 *   pixels with |R-G| <= 2 and |G-B| <= 2.
 * The buffer holds uint8 pixels, row-major, 1 (grey) or 3 (RGB) channels; luma is Pillow's
 * fixed-point Rec.601 (bit-identical to convert("L")), the Laplacian the 4-neighbour one with
 * mirrored borders (OpenCV ksize=1, BORDER_REFLECT_101). Every sum is exact (64-bit integers).
 * The NumPy code in detectors/image.py computes the same sums when this module is not built.
 * Pure: no state, the GIL is released while it runs.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CLONES
#endif

enum { Y_SUM, Y_SQ, LAP_SUM, LAP_SQ, UNDER, OVER, RG_SUM, RG_SQ, YB_SUM, YB_SQ, GREY, N_SUMS };

/* Rows are summed in chunks of CHUNK pixels with 32-bit accumulators (they vectorise twice as
 * wide as 64-bit ones), then added to 64-bit totals: with |Laplacian| <= 1020, a chunk's sum of
 * squares stays below 1024 * 1020^2 < 2^31, and every other chunk sum is smaller. */
#define CHUNK 1024

CLONES static void rgb_row(const uint8_t *restrict px, uint8_t *restrict y, int64_t w, int64_t *restrict s) {
    for (int64_t j0 = 0; j0 < w; j0 += CHUNK) {
        int64_t j1 = j0 + CHUNK < w ? j0 + CHUNK : w;
        int32_t ys = 0, yq = 0, un = 0, ov = 0, rgs = 0, rgq = 0, ybs = 0, ybq = 0, grey = 0;
        for (int64_t j = j0; j < j1; j++) {
            int32_t r = px[3 * j], g = px[3 * j + 1], b = px[3 * j + 2];
            int32_t l = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
            y[j] = (uint8_t)l;
            ys += l;
            yq += l * l;
            un += l <= 10;
            ov += l >= 245;
            int32_t rg = r - g, yb = r + g - 2 * b, gb = g - b;
            rgs += rg;
            rgq += rg * rg;
            ybs += yb;
            ybq += yb * yb;
            grey += (rg >= -2) & (rg <= 2) & (gb >= -2) & (gb <= 2);
        }
        s[Y_SUM] += ys; s[Y_SQ] += yq; s[UNDER] += un; s[OVER] += ov;
        s[RG_SUM] += rgs; s[RG_SQ] += rgq; s[YB_SUM] += ybs; s[YB_SQ] += ybq; s[GREY] += grey;
    }
}

CLONES static void grey_row(const uint8_t *restrict y, int64_t w, int64_t *restrict s) {
    for (int64_t j0 = 0; j0 < w; j0 += CHUNK) {
        int64_t j1 = j0 + CHUNK < w ? j0 + CHUNK : w;
        int32_t ys = 0, yq = 0, un = 0, ov = 0;
        for (int64_t j = j0; j < j1; j++) {
            int32_t l = y[j];
            ys += l;
            yq += l * l;
            un += l <= 10;
            ov += l >= 245;
        }
        s[Y_SUM] += ys; s[Y_SQ] += yq; s[UNDER] += un; s[OVER] += ov;
    }
}

static inline int64_t mirror(int64_t i, int64_t n) {
    if (n == 1) return 0;
    if (i < 0) return 1;
    if (i >= n) return n - 2;
    return i;
}

CLONES static void laplacian_row(const uint8_t *restrict up, const uint8_t *restrict mid,
                                 const uint8_t *restrict dn, int64_t w, int64_t *restrict s) {
    for (int64_t j0 = 1; j0 < w - 1; j0 += CHUNK) {
        int64_t j1 = j0 + CHUNK < w - 1 ? j0 + CHUNK : w - 1;
        int32_t ls = 0, lq = 0;
        for (int64_t j = j0; j < j1; j++) {
            int32_t lap = up[j] + dn[j] + mid[j - 1] + mid[j + 1] - 4 * mid[j];
            ls += lap;
            lq += lap * lap;
        }
        s[LAP_SUM] += ls;
        s[LAP_SQ] += lq;
    }
    int64_t edges[2] = {0, w - 1};
    for (int k = 0; k < (w > 1 ? 2 : 1); k++) {
        int64_t j = edges[k];
        int32_t lap = up[j] + dn[j] + mid[mirror(j - 1, w)] + mid[mirror(j + 1, w)] - 4 * mid[j];
        s[LAP_SUM] += lap;
        s[LAP_SQ] += (int64_t)lap * lap;
    }
}

static PyObject *image_sums(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t h, w, c;
    if (!PyArg_ParseTuple(args, "y*nnn", &view, &h, &w, &c)) return NULL;
    if (h < 1 || w < 1 || (c != 1 && c != 3) || view.len != h * w * c) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "buffer size does not match height x width x channels (1 or 3)");
        return NULL;
    }
    int64_t s[N_SUMS] = {0};
    const uint8_t *px = (const uint8_t *)view.buf;
    uint8_t *luma = NULL;
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    if (c == 3) {
        luma = malloc((size_t)(h * w));
        if (luma == NULL) {
            failed = 1;
        } else {
            for (Py_ssize_t i = 0; i < h; i++) rgb_row(px + i * w * 3, luma + i * w, w, s);
        }
    } else {
        for (Py_ssize_t i = 0; i < h; i++) grey_row(px + i * w, w, s);
    }
    if (!failed) {
        const uint8_t *y = c == 3 ? luma : px;
        for (Py_ssize_t i = 0; i < h; i++)
            laplacian_row(y + mirror(i - 1, h) * w, y + i * w, y + mirror(i + 1, h) * w, w, s);
    }
    free(luma);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (failed) return PyErr_NoMemory();
    return Py_BuildValue("(LLLLLLLLLLL)", (long long)s[0], (long long)s[1], (long long)s[2], (long long)s[3],
                         (long long)s[4], (long long)s[5], (long long)s[6], (long long)s[7], (long long)s[8],
                         (long long)s[9], (long long)s[10]);
}

static PyMethodDef methods[] = {
    {"image_sums", image_sums, METH_VARARGS, "The integer sums behind the image signals, in one pass."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_imagesums", NULL, -1, methods};

PyMODINIT_FUNC PyInit__imagesums(void) { return PyModule_Create(&module); }
