#include "core/dtype.h"

#include <string.h>

static const struct { const char *name; const char *alias; size_t size; } dtype_info[HR_DTYPE_COUNT] = {
    [HR_F32] = {"f32", "float32", 4}, [HR_F64] = {"f64", "float64", 8},
    [HR_BF16] = {"bf16", "bfloat16", 2}, [HR_I32] = {"i32", "int32", 4},
    [HR_I64] = {"i64", "int64", 8}, [HR_U8] = {"u8", "uint8", 1},
};

size_t hr_dtype_size(hr_dtype dt) { return dtype_info[dt].size; }
const char *hr_dtype_name(hr_dtype dt) { return dtype_info[dt].name; }
int hr_dtype_is_float(hr_dtype dt) { return dt == HR_F32 || dt == HR_F64 || dt == HR_BF16; }

int hr_dtype_parse(const char *name, hr_dtype *out) {
    for (int i = 0; i < HR_DTYPE_COUNT; i++) {
        if (strcmp(name, dtype_info[i].name) == 0 || strcmp(name, dtype_info[i].alias) == 0) {
            *out = (hr_dtype)i;
            return 0;
        }
    }
    return -1;
}

uint16_t hr_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);                                           /* round to nearest even */
    return (uint16_t)(u >> 16);
}

float hr_bf16_to_f32(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

double hr_dtype_get(hr_dtype dt, const void *data, int64_t i) {
    switch (dt) {
    case HR_F32: return ((const float *)data)[i];
    case HR_F64: return ((const double *)data)[i];
    case HR_BF16: return hr_bf16_to_f32(((const uint16_t *)data)[i]);
    case HR_I32: return ((const int32_t *)data)[i];
    case HR_I64: return (double)((const int64_t *)data)[i];
    case HR_U8: return ((const uint8_t *)data)[i];
    default: return 0;
    }
}

void hr_dtype_set(hr_dtype dt, void *data, int64_t i, double v) {
    switch (dt) {
    case HR_F32: ((float *)data)[i] = (float)v; break;
    case HR_F64: ((double *)data)[i] = v; break;
    case HR_BF16: ((uint16_t *)data)[i] = hr_f32_to_bf16((float)v); break;
    case HR_I32: ((int32_t *)data)[i] = (int32_t)v; break;
    case HR_I64: ((int64_t *)data)[i] = (int64_t)v; break;
    case HR_U8: ((uint8_t *)data)[i] = (uint8_t)v; break;
    default: break;
    }
}
