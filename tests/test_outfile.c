/* df11/outfile.h: output files written through O_DIRECT. Runs of every
 * length (below, across and at block boundaries), from memory aligned like
 * the file offset and not, shuffled and in order, with a gap never written:
 * the file must hold exactly the bytes (zeros in the gap) and the right
 * length, and the read-back hash must see the runs still held in memory.
 * The same with ordinary writes. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <xxhash.h>

#include "df11/outfile.h"
#include "model_testutil.h"

#define SIZE ((size_t)(3 << 20) + 777)
#define GAP_AT ((size_t)(1 << 20) + 100) /* never written: zeros */
#define GAP_LEN ((size_t)5000)

typedef struct run {
	size_t off, len;
} run;

static uint64_t rng = 88172645463325252ull;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Cuts [0, SIZE) less the gap into runs of mixed lengths. */
static size_t cut(run *r, size_t max)
{
	static const size_t lens[] = {1, 7, 4095, 4096, 4097, 100, 12288,
				      65536 + 3, 1 << 20, 300000};
	size_t n = 0;
	for (size_t at = 0; at < SIZE && n < max;) {
		if (at == GAP_AT) {
			at += GAP_LEN;
			continue;
		}
		size_t len = lens[next() % (sizeof lens / sizeof lens[0])];
		size_t end = at < GAP_AT ? GAP_AT : SIZE;
		if (len > end - at)
			len = end - at;
		r[n++] = (run){at, len};
		at += len;
	}
	return n;
}

static void write_runs(int direct, int shuffle)
{
	char *dir = make_tmpdir();
	char *path = path_join(dir, "out.bin");
	uint8_t *want = malloc(SIZE), *src = NULL;
	assert_non_null(want);
	for (size_t i = 0; i < SIZE; i++)
		want[i] = (uint8_t)(next() >> 32);
	memset(want + GAP_AT, 0, GAP_LEN);
	/* Sources: the run's bytes at the file offset's place modulo the
	 * block (direct, no copy), or one byte further (staged). */
	assert_int_equal(posix_memalign((void **)&src, DF11_OUT_BLOCK,
					SIZE + 2 * DF11_OUT_BLOCK), 0);
	static run r[4096];
	size_t n = cut(r, 4096);
	for (size_t i = n; shuffle && i > 1; i--) {
		size_t j = next() % i;
		run t = r[i - 1];
		r[i - 1] = r[j];
		r[j] = t;
	}
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	df11_out o;
	df11_out_open(&o, fd, path, direct);
	if (!direct)
		assert_int_equal(o.direct, 0);
	for (size_t i = 0; i < n; i++) {
		size_t skew = next() % 3 ? 1 : 0;
		uint8_t *p = src + r[i].off % DF11_OUT_BLOCK + skew;
		memcpy(p, want + r[i].off, r[i].len);
		assert_int_equal(df11_out_pwrite(&o, p, r[i].len, r[i].off),
				 DF11_OK);
	}
	/* Read back before finish: parts still held are laid over. */
	static const size_t ranges[][2] = {{0, SIZE}, {1, 4095}, {4095, 2},
					   {GAP_AT - 3, GAP_LEN + 10},
					   {SIZE - 5000, 5000}};
	XXH3_state_t *st = XXH3_createState();
	for (size_t k = 0; k < sizeof ranges / sizeof ranges[0]; k++) {
		XXH3_64bits_reset(st);
		assert_int_equal(df11_out_hash(&o, ranges[k][0], ranges[k][1],
					       st), DF11_OK);
		assert_true(XXH3_64bits_digest(st) ==
			    XXH3_64bits(want + ranges[k][0], ranges[k][1]));
	}
	assert_int_equal(df11_out_finish(&o), DF11_OK);
	assert_int_equal(close(fd), 0);
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal((size_t)sb.st_size, SIZE);
	uint8_t *got = malloc(SIZE);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fread(got, 1, SIZE, f), SIZE);
	fclose(f);
	assert_memory_equal(got, want, SIZE);
	XXH3_freeState(st);
	free(got);
	free(src);
	free(want);
	free(path);
	rm_tree(dir);
	free(dir);
}

static void test_direct(void **state)
{
	(void)state;
	write_runs(1, 1);
}

/* In order: runs that continue each other join in the staging buffer. */
static void test_direct_in_order(void **state)
{
	(void)state;
	write_runs(1, 0);
}

static void test_buffered(void **state)
{
	(void)state;
	write_runs(0, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_direct),
		cmocka_unit_test(test_direct_in_order),
		cmocka_unit_test(test_buffered),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
