/* All-or-nothing outputs: see fsutil.h. */
#include "df11/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"

/* ---------------------------------------------------------- file output */

void df11_reserve_blocks(int fd, uint64_t len)
{
#ifdef FALLOC_FL_KEEP_SIZE
	if (len && len <= (uint64_t)INT64_MAX)
		(void)fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)len);
#else
	(void)fd;
	(void)len;
#endif
}

df11_result df11_write_all(int fd, const void *p, uint64_t n,
			     const char *path)
{
	const uint8_t *b = p;
	while (n) {
		size_t chunk = n > (1u << 30) ? (1u << 30) : (size_t)n;
		ssize_t w = write(fd, b, chunk);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return df11_fail_errno(DF11_IO, errno, "%s", path);
		}
		b += w;
		n -= (uint64_t)w;
	}
	return DF11_OK;
}

static int rm_entry(const char *p, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p) < 0 ? -1 : 0;
}

void df11_remove_tree(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A temporary name next to the final one, so the rename is atomic. */
char *df11_temp_name(const char *final)
{
	const char *slash = strrchr(final, '/');
	size_t dl = slash ? (size_t)(slash - final + 1) : 0;
	const char *base = slash ? slash + 1 : final;
	size_t n = strlen(final) + 32;
	char *t = malloc(n);
	if (t)
		snprintf(t, n, "%.*s.%s.tmp.XXXXXX", (int)dl, final, base);
	return t;
}

df11_result df11_check_output(const char *out, int force)
{
	struct stat st;
	if (!*out)
		return df11_fail(DF11_INVALID_ARG, "empty output name");
	if (lstat(out, &st) == 0 && !force)
		return df11_fail(DF11_EXISTS, "%s exists (use --force to replace "
				 "it)", out);
	return DF11_OK;
}

/* Moves tmp into place; an existing output (allowed by force) is moved
 * aside first and removed only after the new one is in place. */
df11_result df11_commit_output(const char *tmp, const char *out)
{
	struct stat st;
	if (lstat(out, &st) == 0 && S_ISDIR(st.st_mode)) {
		char *old = df11_temp_name(out);
		if (!old || !mkdtemp(old)) {
			free(old);
			return df11_fail_errno(DF11_IO, errno, "%s", out);
		}
		rmdir(old);
		if (rename(out, old) < 0) {
			int e = errno;
			free(old);
			return df11_fail_errno(DF11_IO, e, "%s", out);
		}
		if (rename(tmp, out) < 0) {
			int e = errno;
			rename(old, out);
			free(old);
			return df11_fail_errno(DF11_IO, e, "%s", out);
		}
		df11_remove_tree(old);
		free(old);
		return DF11_OK;
	}
	if (rename(tmp, out) < 0)
		return df11_fail_errno(DF11_IO, errno, "%s", out);
	return DF11_OK;
}

