/* The subcommands of the hybridrt binary. Each takes the arguments after its own name and returns
 * the process exit status. */
#ifndef HR_CLI_COMMANDS_H
#define HR_CLI_COMMANDS_H

int hr_cmd_run(int argc, char **argv);
int hr_cmd_version(int argc, char **argv);
int hr_cmd_check(int argc, char **argv);
int hr_cmd_tune(int argc, char **argv);
int hr_cmd_tokenize(int argc, char **argv);
int hr_cmd_devices(int argc, char **argv);
int hr_cmd_cache(int argc, char **argv);

/* Prints the CUDA driver, NVRTC and cuBLAS lines of `hybridrt version` (gpu_report.c). */
void hr_print_gpu_libraries(void);

/* Re-executes the binary with OPENBLAS_CORETYPE set when OpenBLAS picked kernels far below what the
 * CPU supports (blas_core.c); returns when nothing needs doing. */
void hr_fix_blas_core(char **argv);

/* True when the argument list asks for help (-h, --help). */
int hr_wants_help(int argc, char **argv);

#endif
