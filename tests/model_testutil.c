#include "tests/model_testutil.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "codec/format.h"
#include "synth/synth.h"

char *make_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *t = path_join(base && *base ? base : "/tmp", "df11test.XXXXXX");
	assert_non_null(mkdtemp(t));
	return t;
}

void rm_tree(const char *path)
{
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
	assert_int_equal(system(cmd), 0);
}

char *path_join(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *s = malloc(n);
	assert_non_null(s);
	snprintf(s, n, "%s/%s", a, b);
	return s;
}

void write_bytes(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

uint8_t *read_bytes(const char *path, size_t *n_ret)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	long n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	uint8_t *p = malloc((size_t)n + 1);
	assert_non_null(p);
	assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*n_ret = (size_t)n;
	return p;
}

void write_st(const char *path, const char *json, const void *data,
	      size_t data_size)
{
	size_t n = strlen(json);
	uint8_t *buf = malloc(8 + n + data_size + 1);
	assert_non_null(buf);
	df11_wr64(buf, n);
	memcpy(buf + 8, json, n);
	if (data_size)
		memcpy(buf + 8 + n, data, data_size);
	write_bytes(path, buf, 8 + n + data_size);
	free(buf);
}

void write_st_mixed(const char *path, int nt, uint64_t rows, uint64_t cols,
		    uint64_t seed)
{
	size_t cap = 4096 + (size_t)nt * 128;
	char *json = malloc(cap);
	assert_non_null(json);
	uint64_t mat = rows * cols * 2;
	/* extra tensors: F32 [3] (12 B), I64 [2] (16 B), U8 [5] (5 B),
	 * BF16 scalar (2 B), BF16 [0, 4] (0 B), BF16 norm [cols] */
	uint64_t data_size = (uint64_t)nt * mat + 12 + 16 + 5 + 2 + 2 * cols;
	uint8_t *data = malloc(data_size + 1);
	assert_non_null(data);
	int len = snprintf(json, cap, "{\"__metadata__\":{\"format\":\"pt\"}");
	uint64_t at = 0;
	for (int i = 0; i < nt; i++) {
		len += snprintf(json + len, cap - (size_t)len,
				",\"w.%d\":{\"dtype\":\"BF16\",\"shape\":[%llu,%llu],"
				"\"data_offsets\":[%llu,%llu]}", i,
				(unsigned long long)rows, (unsigned long long)cols,
				(unsigned long long)at,
				(unsigned long long)(at + mat));
		uint16_t *w = malloc(mat + 2);
		assert_non_null(w);
		df11_synth_matrix(seed * 1000 + (uint64_t)i, rows, cols, 0.02f, w);
		memcpy(data + at, w, mat);
		free(w);
		at += mat;
	}
	static const struct {
		const char *name, *dtype, *shape;
		int bytes;
	} extra[] = {
		{"f32", "F32", "[3]", 12}, {"i64", "I64", "[2]", 16},
		{"u8", "U8", "[5]", 5}, {"scalar", "BF16", "[]", 2},
		{"empty", "BF16", "[0,4]", 0},
	};
	for (size_t k = 0; k < sizeof extra / sizeof extra[0]; k++) {
		len += snprintf(json + len, cap - (size_t)len,
				",\"%s\":{\"dtype\":\"%s\",\"shape\":%s,"
				"\"data_offsets\":[%llu,%llu]}", extra[k].name,
				extra[k].dtype, extra[k].shape,
				(unsigned long long)at,
				(unsigned long long)(at + (uint64_t)extra[k].bytes));
		for (int b = 0; b < extra[k].bytes; b++)
			data[at + (uint64_t)b] = (uint8_t)(seed * 31 + k * 7 + (uint64_t)b);
		at += (uint64_t)extra[k].bytes;
	}
	len += snprintf(json + len, cap - (size_t)len,
			",\"norm\":{\"dtype\":\"BF16\",\"shape\":[%llu],"
			"\"data_offsets\":[%llu,%llu]}}  ",
			(unsigned long long)cols, (unsigned long long)at,
			(unsigned long long)(at + 2 * cols));
	uint16_t *nw = malloc(2 * cols + 2);
	assert_non_null(nw);
	df11_synth_norm(seed + 77, cols, 1.0f, nw);
	memcpy(data + at, nw, 2 * cols);
	free(nw);
	at += 2 * cols;
	assert_true(at == data_size);
	assert_true((size_t)len < cap);
	write_st(path, json, data, data_size);
	free(json);
	free(data);
}

void evict_file(const char *path)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fdatasync(fd), 0);
	assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	close(fd);
}

int direct_reads_work(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECT);
	if (fd < 0)
		return 0;
	void *b = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(b != MAP_FAILED);
	int ok = pread(fd, b, 4096, 0) >= 0;
	munmap(b, 4096);
	close(fd);
	return ok;
}
