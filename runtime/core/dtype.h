/* Element types: names, sizes and the bf16 <-> f32 conversion. */
#ifndef HR_DTYPE_H
#define HR_DTYPE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    HR_F32,   /* the training dtype */
    HR_F64,   /* reference precision for gradient checks */
    HR_BF16,  /* storage and conversion only */
    HR_I32,
    HR_I64,   /* token ids */
    HR_U8,
    HR_DTYPE_COUNT
} hr_dtype;

size_t hr_dtype_size(hr_dtype dt);
const char *hr_dtype_name(hr_dtype dt);
/* Returns 0 and sets *out if name is a dtype ("f32", "float32", ...); -1 otherwise. */
int hr_dtype_parse(const char *name, hr_dtype *out);
int hr_dtype_is_float(hr_dtype dt);   /* f32, f64, bf16 */

/* bf16 is the top half of an f32; rounding is to nearest even, NaN stays NaN. */
uint16_t hr_f32_to_bf16(float f);
float hr_bf16_to_f32(uint16_t b);

/* Reads / writes element i of a dtype's array as a double (debugging and conversions). */
double hr_dtype_get(hr_dtype dt, const void *data, int64_t i);
void hr_dtype_set(hr_dtype dt, void *data, int64_t i, double value);

#endif
