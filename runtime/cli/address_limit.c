/* Refuses to start under an address-space limit (ulimit -v) too small to load, instead of hanging.
 *
 * OpenBLAS reserves a 128 MiB buffer in its load-time constructor, before main, and when the mmap is
 * refused it retries forever (Debian's 0.3.21: gotoblas_init -> blas_memory_alloc): under
 * `ulimit -v 300000` every command, even `hybridrt version`, hung without a word. No code of ours runs
 * before that constructor except the executable's .preinit_array, which the dynamic linker calls
 * before any shared library's initializer. So the check lives there, and uses only system calls:
 * libc itself is not initialised yet. */
#include <sys/resource.h>
#include <unistd.h>

/* What `hybridrt version` needs here is about 300 MiB (the libraries' mappings and OpenBLAS's
 * buffer); the margin covers other machines' libraries and thread counts. Training needs more, and
 * an allocation that fails then is an error that names its size. */
#define HR_MIN_ADDRESS_SPACE_MIB 512

static void put(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    if (write(2, s, n) < 0) return; /* nowhere left to say it */
}

static void put_number(unsigned long long v) {
    char digits[24];
    int i = (int)sizeof digits - 1;
    digits[i] = '\0';
    do digits[--i] = (char)('0' + v % 10);
    while ((v /= 10) && i > 0);
    put(digits + i);
}

static void refuse_small_address_space(void) {
    struct rlimit lim;
    if (getrlimit(RLIMIT_AS, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY) return;
    unsigned long long mib = (unsigned long long)lim.rlim_cur >> 20;
    if (mib >= HR_MIN_ADDRESS_SPACE_MIB) return;
    put("hybridrt: the address-space limit (ulimit -v) is ");
    put_number(mib);
    put(" MiB, below the ");
    put_number(HR_MIN_ADDRESS_SPACE_MIB);
    put(" MiB hybridrt needs to start (OpenBLAS reserves its buffers while it loads, and waits forever "
        "when refused): raise it, e.g. ulimit -v ");
    put_number((unsigned long long)HR_MIN_ADDRESS_SPACE_MIB << 10);
    put("\n");
    _exit(1);
}

__attribute__((used, section(".preinit_array"))) static void (*const hr_preinit_address_limit)(void) =
    refuse_small_address_space;
