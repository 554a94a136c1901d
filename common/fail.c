/*
 * df11_fail and df11_fail_errno: format a failure's message and record it
 * through the public df11_set_error. Compiled into libdf11 and, as a
 * private copy, into libraries layered on it (libdf11_cuda), so that every
 * failure lands in the one df11_last_error() of libdf11.
 */
#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The format attribute lets clang's -Wformat-nonliteral see fmt is checked
 * at the callers. */
__attribute__((format(printf, 3, 0)))
static df11_result record(df11_result r, const char *suffix, const char *fmt,
			  va_list ap)
{
	char msg[448];
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	if (n >= 0 && (size_t)n < sizeof msg && suffix)
		snprintf(msg + n, sizeof msg - (size_t)n, ": %s", suffix);
	return df11_set_error(r, msg);
}

df11_result df11_fail(df11_result r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	r = record(r, NULL, fmt, ap);
	va_end(ap);
	return r;
}

df11_result df11_fail_errno(df11_result r, int err, const char *fmt, ...)
{
	char buf[128];
	const char *text = strerror_r(err, buf, sizeof buf);
	va_list ap;
	va_start(ap, fmt);
	r = record(r, text, fmt, ap);
	va_end(ap);
	return r;
}
