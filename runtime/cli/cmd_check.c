/* hybridrt check: the validation gates G1-G4, i.e. the bundled gates.lua run with the same options. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/commands.h"

int hr_cmd_check(int argc, char **argv) {
    char **args = malloc(((size_t)argc + 2) * sizeof *args);
    if (!args) {
        fprintf(stderr, "hybridrt check: out of memory\n");
        return 1;
    }
    args[0] = "gates.lua";
    for (int i = 0; i < argc; i++) args[i + 1] = argv[i]; /* --help reaches the script, which prints its options */
    args[argc + 1] = NULL;
    int rc = hr_cmd_run(argc + 1, args);
    free(args);
    return rc;
}
