/* hybridrt: the command-line entry point. Parses the subcommand and hands over. */
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"run", hr_cmd_run, "run a Lua script: hybridrt run SCRIPT.lua [key=value ...]"},
    {"tokenize", hr_cmd_tokenize, "text to a token file, bytes or byte-level BPE (--tokenizer FILE, --train-bpe VOCAB)"},
    {"version", hr_cmd_version, "show the versions of hybridrt, Lua, BLAS, the CUDA driver, NVRTC and cuBLAS"},
    {"devices", hr_cmd_devices, "list the GPUs: name, SM architecture, memory, driver"},
    {"cache", hr_cmd_cache, "the compiled-kernel cache: hybridrt cache warm|list|stats|verify|clear"},
    {"check", hr_cmd_check, "the validation gates G1-G4 on a fresh model (or ckpt=FILE): hybridrt check [key=value ...]"},
    {"tune", hr_cmd_tune, "auto-tune the kernels on this GPU: hybridrt tune [--budget 10m] [--show] [MODEL.lua]"},
};
#define N_COMMANDS (int)(sizeof commands / sizeof commands[0])

static void usage(FILE *out) {
    fprintf(out, "usage: hybridrt <command> [arguments]\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++) fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "  %-9s %s\n", "help", "show this help, or a command's: hybridrt help COMMAND");
    fprintf(out, "\nEvery command takes --help. Environment: HYBRIDRT_LUA_PATH (use a source lua/ folder),\n"
                 "HYBRIDRT_CHECK_NAN=1 (stop at the first op producing NaN/Inf), OMP_NUM_THREADS.\n");
}

int hr_wants_help(int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
    return 0;
}

static const command *find(const char *name) {
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

/* A training step frees and reallocates the same buffers (kernel scratch, eager intermediates) every
 * step. glibc's defaults hand large blocks back to the kernel on free and fault them in again on the
 * next malloc, and each unmap costs a TLB shootdown on every core (the SSD backward ran 1.7x slower
 * for it). Keep blocks up to 32 MiB in the heap and never trim it below 1 GiB of free space. */
static void tune_malloc(void) {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

int main(int argc, char **argv) {
    hr_fix_blas_core(argv);
    tune_malloc();
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0) return hr_cmd_version(0, NULL);
    if (strcmp(name, "help") == 0) {
        if (argc < 3) {
            usage(stdout);
            return 0;
        }
        const command *c = find(argv[2]);
        if (!c) {
            fprintf(stderr, "hybridrt: unknown command '%s' (see hybridrt help)\n", argv[2]);
            return 2;
        }
        char *help_argv[] = {"--help", NULL};
        return c->run(1, help_argv);
    }
    const command *c = find(name);
    if (!c) {
        fprintf(stderr, "hybridrt: unknown command '%s' (see hybridrt help)\n", name);
        return 2;
    }
    return c->run(argc - 2, argv + 2);
}
