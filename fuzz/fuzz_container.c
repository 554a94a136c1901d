/*
 * Fuzz target: opening and reading a .df11 container. The input's header,
 * directory and trailer checksums are recomputed first (when the trailer
 * points somewhere plausible), so mutations reach the record checks
 * instead of stopping at a checksum. Whatever opens must read back
 * without crashing, and every tensor read must either fail or give
 * exactly nbytes bytes whose checksum matched.
 */
#include "fuzz/fuzz.h"

#include <sys/mman.h>
#include <unistd.h>

#include "df11.h"
#include "df11/format.h"
#include "df11/model_internal.h"

static void fix_checksums(uint8_t *b, size_t size)
{
	if (size < DF11_CT_ALIGN + DF11_CT_TRAILER_SIZE)
		return;
	df11_wr64(b + 56, df11_xxh3(b, 56));
	uint8_t *tr = b + size - DF11_CT_TRAILER_SIZE;
	uint64_t off = df11_rd64(tr + 8), len = df11_rd64(tr + 16);
	if (off <= size - DF11_CT_TRAILER_SIZE &&
	    len <= size - DF11_CT_TRAILER_SIZE - off)
		df11_wr64(tr + 24, df11_xxh3(b + off, (size_t)len));
	df11_wr64(tr + 56, df11_xxh3(tr, 56));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *b = malloc(size + 1);
	if (!b)
		return 0;
	memcpy(b, data, size);
	fix_checksums(b, size);
	int fd = memfd_create("fuzz.df11", 0);
	FUZZ_CHECK(fd >= 0, "memfd_create");
	size_t done = 0;
	while (done < size) {
		ssize_t w = write(fd, b + done, size - done);
		FUZZ_CHECK(w > 0, "write");
		done += (size_t)w;
	}
	free(b);
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	df11_model *m;
	if (df11_model_open(path, &m) == DF11_OK) {
		for (size_t i = 0; i < df11_model_num_tensors(m); i++) {
			df11_tensor_desc d;
			FUZZ_CHECK(df11_model_tensor(m, i, &d) == DF11_OK, "desc");
			if (d.nbytes > (16u << 20))
				continue;
			uint8_t *buf = malloc(d.nbytes + 1);
			if (!buf)
				continue;
			df11_model_read(m, i, buf, d.nbytes);
			if (d.dtype == DF11_DTYPE_BF16 && d.n_elems)
				df11_model_read_range(m, i, d.n_elems / 2,
						      d.n_elems - d.n_elems / 2,
						      (uint16_t *)(void *)buf);
			free(buf);
		}
		const void *p;
		size_t n;
		df11_model_file(m, "config.json", &p, &n);
		df11_model_close(m);
	}
	close(fd);
	return 0;
}
