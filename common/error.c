#include "common/error.h"

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

df11_result df11_set_error(df11_result r, const char *message)
{
	snprintf(last_error, sizeof last_error, "%s%s%s", df11_strerror(r),
		 message && *message ? ": " : "", message ? message : "");
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
