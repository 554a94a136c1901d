#include "df11/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[512];

const char *df11_strerror(df11_result r)
{
	switch (r) {
	case DF11_OK: return "success";
	case DF11_BAD_DATA: return "corrupt or malformed data";
	case DF11_NOMEM: return "out of memory";
	case DF11_IO: return "I/O error";
	case DF11_UNSUPPORTED: return "unsupported";
	case DF11_CUDA: return "CUDA error";
	case DF11_INVALID_ARG: return "invalid argument";
	case DF11_CHECKSUM: return "checksum mismatch";
	case DF11_BUFFER_TOO_SMALL: return "buffer too small";
	case DF11_EXISTS: return "output exists";
	case DF11_LIMIT: return "size limit exceeded";
	case DF11_NO_DEVICE: return "no usable GPU";
	case DF11_NOT_FOUND: return "not found";
	case DF11_CANCELLED: return "cancelled";
	}
	return "unknown error";
}

const char *df11_last_error(void)
{
	return last_error;
}

/* The format attribute lets clang's -Wformat-nonliteral see fmt is checked
 * at the callers (it broke -DDF11_WERROR=ON builds with CC=clang). */
__attribute__((format(printf, 3, 0)))
static void set_message(df11_result r, const char *suffix, const char *fmt,
			va_list ap)
{
	int n = snprintf(last_error, sizeof last_error, "%s: ", df11_strerror(r));
	if (n < 0 || (size_t)n >= sizeof last_error)
		return;
	int m = vsnprintf(last_error + n, sizeof last_error - (size_t)n, fmt, ap);
	if (m < 0 || (size_t)(n + m) >= sizeof last_error || !suffix)
		return;
	snprintf(last_error + n + m, sizeof last_error - (size_t)(n + m), ": %s",
		 suffix);
}

df11_result df11_fail(df11_result r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_message(r, NULL, fmt, ap);
	va_end(ap);
	return r;
}

df11_result df11_fail_errno(df11_result r, int err, const char *fmt, ...)
{
	char buf[128];
	const char *text = strerror_r(err, buf, sizeof buf);
	va_list ap;
	va_start(ap, fmt);
	set_message(r, text, fmt, ap);
	va_end(ap);
	return r;
}

df11_result df11_check_reserved(const int *reserved, size_t n,
				const char *what)
{
	for (size_t i = 0; i < n; i++)
		if (reserved[i])
			return df11_fail(DF11_INVALID_ARG,
					 "%s: reserved field %zu is %d, not 0 "
					 "(an option this library version does "
					 "not know)", what, i, reserved[i]);
	return DF11_OK;
}
