/* hybridrt tune: the bundled tune.lua, with the command's own spelling of its options
 * (--budget 10m, --show, a model file) turned into the script's key=value ones. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"

int hr_cmd_tune(int argc, char **argv) {
    char **args = calloc((size_t)argc + 2, sizeof *args);
    char **owned = calloc((size_t)argc + 1, sizeof *owned); /* strings made here */
    if (!args || !owned) {
        free(args);
        free(owned);
        fprintf(stderr, "hybridrt tune: out of memory\n");
        return 1;
    }
    int n = 0, rc = 2;
    args[n++] = "tune.lua";
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        char buf[1200];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            args[n++] = "--help";
            continue;
        }
        if (strcmp(a, "--show") == 0) {
            snprintf(buf, sizeof buf, "show=true");
        } else if (strcmp(a, "--budget") == 0 || strcmp(a, "--db") == 0) {
            if (i + 1 == argc) {
                fprintf(stderr, "hybridrt tune: %s needs a value\n", a);
                goto done;
            }
            snprintf(buf, sizeof buf, "%s=%s", a + 2, argv[++i]);
        } else if (strncmp(a, "--", 2) == 0) {
            fprintf(stderr, "hybridrt tune: unknown option '%s' (see hybridrt tune --help)\n", a);
            goto done;
        } else if (!strchr(a, '=')) { /* a model file */
            snprintf(buf, sizeof buf, "model=%s", a);
        } else {
            args[n++] = argv[i];
            continue;
        }
        owned[i] = strdup(buf);
        if (!owned[i]) {
            fprintf(stderr, "hybridrt tune: out of memory\n");
            rc = 1;
            goto done;
        }
        args[n++] = owned[i];
    }
    rc = hr_cmd_run(n, args);
done:
    for (int i = 0; i < argc; i++) free(owned[i]);
    free(owned);
    free(args);
    return rc;
}
