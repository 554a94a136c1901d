/*
 * Fuzz target: the .df11 container reader (df11_model_open on a container,
 * then every tensor and carried file) and df11_verify.
 *
 * Input: the container file. It is written to a memfd and opened through
 * /proc/self/fd, since the API takes paths. Properties:
 *   - nothing crashes, whatever the bytes;
 *   - what an opened container declares is justified by the file: a
 *     tensor's original size is at most twice the container's size (every
 *     encoded BF16 element takes at least one stored byte), so a program
 *     that allocates what the directory says allocates no more than that;
 *   - df11_model_encoded of an encoded tensor succeeds or refuses with
 *     DF11_BAD_DATA, and then reading the tensor fails too;
 *   - a full read either refuses (with a data error: DF11_BAD_DATA,
 *     DF11_CHECKSUM or DF11_UNSUPPORTED) or returns bytes that match the stored
 *     checksum of the original; after a successful full read, every range
 *     read of that tensor agrees with it;
 *   - df11_verify accepts only containers whose every read succeeds.
 * Random mutations almost never keep the XXH3 checksums of the header,
 * trailer, directory, sections and payloads right, which would stop every
 * input at the first checksum; so each input runs twice: as it is, then
 * with those checksums recomputed (fuzz/container_fix.h). The checksums of the
 * original (decoded) bytes are left alone: they are what must catch a
 * payload that decodes to other data.
 */
#include <sys/mman.h>
#include <unistd.h>

#include "df11.h"
#include "codec/format.h"
#include "df11/model_internal.h"
#include "fuzz/container_fix.h"
#include "fuzz/fuzz.h"

/* Bigger tensors are legal but would make fuzzing slow; they are
 * skipped after the size check. */
#define MAX_READ (1u << 24)

static int verify_reports;

static void on_bad(void *ctx, const char *what, df11_result r,
		   const char *message)
{
	(void)ctx;
	(void)what;
	(void)message;
	FUZZ_CHECK(r != DF11_OK, "verify reported a failure with DF11_OK");
	verify_reports++;
}

static void run(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run(data, size);
	uint8_t *fixed = malloc(size ? size : 1);
	FUZZ_CHECK(fixed != NULL, "out of memory");
	memcpy(fixed, data, size);
	df11_ct_fix_checksums(fixed, size);
	if (memcmp(fixed, data, size) != 0)
		run(fixed, size);
	free(fixed);
	return 0;
}

static void run(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	if (fd < 0) {
		fd = memfd_create("fuzz.df11", 0);
		FUZZ_CHECK(fd >= 0, "memfd_create");
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	}
	FUZZ_CHECK(ftruncate(fd, 0) == 0 &&
		   pwrite(fd, data, size, 0) == (ssize_t)size,
		   "writing the input");

	df11_model *m = NULL;
	df11_result r = df11_model_open(path, &m);
	if (r != DF11_OK) {
		FUZZ_CHECK(m == NULL, "failed open returned a model");
		FUZZ_CHECK(df11_verify(path, NULL, NULL, NULL, NULL, NULL) !=
			   DF11_OK, "verify accepts what open refuses");
		return;
	}
	df11_model_set_threads(m, 1);
	int failed = 0;
	size_t n = df11_model_num_tensors(m);
	for (size_t i = 0; i < n; i++) {
		df11_tensor_desc d;
		FUZZ_CHECK(df11_model_tensor(m, i, &d) == DF11_OK, "tensor %zu", i);
		FUZZ_CHECK(d.nbytes <= 2 * (uint64_t)size,
			   "tensor %s claims %llu bytes in a %zu-byte container",
			   d.name, (unsigned long long)d.nbytes, size);
		FUZZ_CHECK(d.stored_bytes <= size, "tensor %s stores %llu bytes "
			   "in a %zu-byte container", d.name,
			   (unsigned long long)d.stored_bytes, size);
		size_t idx;
		FUZZ_CHECK(df11_model_find(m, d.name, &idx) == DF11_OK,
			   "tensor %s not found by name", d.name);
		int enc_bad = 0;
		if (d.compressed) {
			const void *enc;
			size_t enc_size;
			r = df11_model_encoded(m, i, &enc, &enc_size);
			FUZZ_CHECK(r == DF11_OK ? enc_size == d.stored_bytes
						: r == DF11_BAD_DATA,
				   "encoded bytes of %s: %d", d.name, (int)r);
			enc_bad = r != DF11_OK;
		}
		if (d.nbytes > MAX_READ)
			continue;
		uint8_t *buf = malloc(d.nbytes + 2);
		FUZZ_CHECK(buf != NULL, "out of memory");
		r = df11_model_read(m, i, buf, (size_t)d.nbytes);
		FUZZ_CHECK(r == DF11_OK || r == DF11_BAD_DATA ||
			   r == DF11_CHECKSUM || r == DF11_UNSUPPORTED,
			   "read %s: %d", d.name, (int)r);
		FUZZ_CHECK(!enc_bad || r != DF11_OK, "read %s succeeded, its "
			   "encoded bytes were refused", d.name);
		failed |= r != DF11_OK;
		if (r == DF11_OK && d.dtype == DF11_DTYPE_BF16 && d.n_elems) {
			uint64_t h = fuzz_hash(buf, (size_t)d.nbytes);
			uint64_t f = h % d.n_elems, c = (h >> 32) % (d.n_elems - f) + 1;
			uint16_t *part = malloc(2 * c);
			FUZZ_CHECK(part != NULL, "out of memory");
			r = df11_model_read_range(m, i, f, c, part);
			FUZZ_CHECK(r == DF11_OK && memcmp(part, buf + 2 * f,
							  2 * c) == 0,
				   "range %llu+%llu of %s differs from the full "
				   "read", (unsigned long long)f,
				   (unsigned long long)c, d.name);
			free(part);
		}
		free(buf);
	}
	df11_model_close(m);

	/* verify decodes and checks everything again: it may accept only if
	 * every read above succeeded, and it reports each failure it counts. */
	verify_reports = 0;
	uint64_t n_bad = 0;
	r = df11_verify(path, NULL, NULL, on_bad, NULL, &n_bad);
	FUZZ_CHECK(n_bad == (uint64_t)verify_reports, "verify counted %llu "
		   "failures, reported %d", (unsigned long long)n_bad,
		   verify_reports);
	if (r == DF11_OK)
		FUZZ_CHECK(!failed && n_bad == 0, "verify accepted a container "
			   "with a failing tensor");
	else
		FUZZ_CHECK(r != DF11_CHECKSUM || n_bad > 0, "verify: checksum "
			   "failure with nothing reported");
}
