/* Internal: recording the reason for a failure (see df11_last_error). */
#ifndef DF11_ERROR_H
#define DF11_ERROR_H

#include "df11.h"

/* Sets this thread's last-error message to "<strerror(r)>: <fmt...>" and
 * returns r, so that callers write `return df11_fail(DF11_BAD_DATA, ...)`. */
df11_result df11_fail(df11_result r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Like df11_fail, with errno's text appended. */
df11_result df11_fail_errno(df11_result r, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* DF11_OK if every reserved option field is zero; DF11_INVALID_ARG naming
 * what otherwise (an option this library version does not know). */
df11_result df11_check_reserved(const int *reserved, size_t n,
				const char *what);

#endif
