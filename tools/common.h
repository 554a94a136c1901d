/* Shared by the df11-* programs: one-line errors, signals, progress. */
#ifndef DF11_TOOLS_COMMON_H
#define DF11_TOOLS_COMMON_H

#include <signal.h>
#include <stdint.h>

#include "df11.h"

extern const char *tool_name;
extern volatile sig_atomic_t tool_interrupted;

/* Exit statuses shared by the programs. */
enum { EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_INTERRUPTED = 130 };

/* SIGINT/SIGTERM set tool_interrupted; the library sees it through the
 * progress callback and cleans up. A second signal kills at once. */
void tool_signals(void);

/* "<tool>: <message>" on stderr. */
void tool_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints the library's last error and returns the exit status for r. */
int tool_fail(df11_result r);

/* Parses a thread count ("-j 4"); 0 means all online CPUs. */
int tool_threads(const char *s);
int tool_default_threads(void);

/* A progress bar on stderr if it is a terminal; returns tool_interrupted.
 * Use as df11_pack_options.progress with ctx = a label string. */
int tool_progress(void *ctx, uint64_t done, uint64_t total);
void tool_progress_end(void);

double tool_now(void);
/* "1.23 GB" into buf. */
const char *tool_bytes(uint64_t n, char *buf, int size);

#endif
