#include "emu_image.h"

#include <elf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* .nv.info attribute records: a format byte, an attribute byte, then a 16-bit value, or for the
 * "sized" format a 16-bit length and that many bytes. The attributes read here: */
enum { EIFMT_SVAL = 4, EIATTR_MAX_THREADS = 0x05, EIATTR_KPARAM_INFO = 0x17 };

static void cubin_info(const unsigned char *elf, const char *name, hr_emu_image_kernel *info) {
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)elf;
    if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_shentsize != sizeof(Elf64_Shdr)) return;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(elf + eh->e_shoff);
    const char *names = (const char *)elf + sh[eh->e_shstrndx].sh_offset;
    char info_name[600], shared_name[600], text_name[600];
    snprintf(info_name, sizeof info_name, ".nv.info.%s", name);
    snprintf(shared_name, sizeof shared_name, ".nv.shared.%s", name);
    snprintf(text_name, sizeof text_name, ".text.%s", name);
    for (int i = 0; i < eh->e_shnum; i++) {
        const char *n = names + sh[i].sh_name;
        if (strcmp(n, text_name) == 0) {
            info->found = true;
            info->registers = (int)(sh[i].sh_info >> 24);
        } else if (strcmp(n, shared_name) == 0) {
            info->static_shared = (long long)sh[i].sh_size;
        } else if (strcmp(n, info_name) == 0) {
            const unsigned char *p = elf + sh[i].sh_offset, *end = p + sh[i].sh_size;
            info->nparams = 0;
            while (p + 4 <= end) {
                int fmt = p[0], attr = p[1];
                uint16_t v;
                memcpy(&v, p + 2, 2);
                const unsigned char *val = p + 4;
                p += fmt == EIFMT_SVAL ? 4 + (size_t)v : 4;
                if (fmt != EIFMT_SVAL || p > end) continue;
                if (attr == EIATTR_MAX_THREADS && v >= 4) {
                    uint32_t x;
                    memcpy(&x, val, 4);
                    info->max_threads = (int)x;
                } else if (attr == EIATTR_KPARAM_INFO && v >= 12) {
                    uint16_t ordinal;
                    uint32_t flags;
                    memcpy(&ordinal, val + 4, 2);
                    memcpy(&flags, val + 8, 4);
                    if (ordinal < HR_EMU_MAX_PARAMS) {
                        info->param_size[ordinal] = (int)(flags >> 18);
                        if (ordinal + 1 > info->nparams) info->nparams = ordinal + 1;
                    }
                }
            }
        }
    }
}

/* Bytes of a PTX declaration's type (.u64 8, .f32 4, .b8 1), times its [count]. */
static long long ptx_decl_bytes(const char *decl, const char *stop) {
    long long size = 0;
    for (const char *p = decl; p < stop; p++) {
        if (*p == '.' && strchr("usbf", p[1]) && p[2] >= '0' && p[2] <= '9') {
            int bits = atoi(p + 2);
            if (bits == 8 || bits == 16 || bits == 32 || bits == 64) size = bits / 8;
        }
    }
    const char *bracket = memchr(decl, '[', (size_t)(stop - decl));
    return bracket ? size * atoll(bracket + 1) : size;
}

static void ptx_info(const char *ptx, const char *name, hr_emu_image_kernel *info) {
    char key[600];
    snprintf(key, sizeof key, ".entry %s(", name);
    const char *e = strstr(ptx, key);
    if (!e) return;
    info->found = true;
    info->nparams = 0;
    const char *close = strchr(e, ')');
    if (!close) return;
    for (const char *p = strstr(e, ".param"); p && p < close; p = strstr(p + 1, ".param")) {
        const char *stop = strpbrk(p, ",)");
        if (info->nparams < HR_EMU_MAX_PARAMS) info->param_size[info->nparams] = (int)ptx_decl_bytes(p, stop);
        info->nparams++;
    }
    const char *body = strchr(close, '{');
    const char *mx = strstr(close, ".maxntid");
    if (mx && (!body || mx < body)) info->max_threads = atoi(mx + strlen(".maxntid"));
    if (!body) return;
    int depth = 0;
    for (const char *p = body; *p; p++) { /* .shared declarations inside the entry's braces */
        if (*p == '{') depth++;
        else if (*p == '}' && --depth == 0) break;
        else if (strncmp(p, ".shared ", 8) == 0 && (p == body || p[-1] == '\n' || p[-1] == '\t' || p[-1] == ' ')) {
            const char *stop = strchr(p, ';');
            if (stop) info->static_shared += ptx_decl_bytes(p, stop);
        }
    }
}

void hr_emu_image_kernel_info(const void *image, const char *name, hr_emu_image_kernel *info) {
    *info = (hr_emu_image_kernel){.nparams = -1};
    const unsigned char *b = image;
    if (!b) return;
    if (memcmp(b, ELFMAG, SELFMAG) == 0) cubin_info(b, name, info);
    else ptx_info(image, name, info);
}
