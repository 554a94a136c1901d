/* Helpers for the DFloat11 tests: safetensors files edited in memory, and
 * a CPU model of the official CUDA decode kernel. */
#ifndef DF11_DFL_TESTUTIL_H
#define DF11_DFL_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "df11/dfloat11.h"

typedef struct st_edit_tensor {
	char *name;
	char dtype[8];
	int ndim;
	uint64_t shape[8];
	uint8_t *data;
	size_t size;
} st_edit_tensor;

typedef struct st_edit {
	st_edit_tensor *t;
	size_t n;
} st_edit;

/* Loads a whole safetensors file (fails the test if it cannot). */
void st_edit_load(st_edit *e, const char *path);
/* Writes it back (tensors in their order, offsets recomputed). */
void st_edit_save(const st_edit *e, const char *path);
void st_edit_free(st_edit *e);
/* The tensor of that name (fails the test if absent). */
st_edit_tensor *st_edit_find(st_edit *e, const char *name);
/* Replaces a 1-D tensor's bytes (shape[0] = size / element size). */
void st_edit_set(st_edit_tensor *t, const void *p, size_t size);
void st_edit_remove(st_edit *e, const char *name);
/* Appends a tensor (bytes copied). */
void st_edit_add(st_edit *e, const char *name, const char *dtype, int ndim,
		 const uint64_t *shape, const void *p, size_t size);

/* Copies the regular files of folder src into a fresh temporary folder. */
char *copy_fixture(const char *src);
/* $DF11_SOURCE_DIR/tests/fixtures/dfloat11/<rel>, malloc'd. */
char *fixture_path(const char *rel);

/* Fills g from the six "<name>.*" tensors of e (pointers into e). */
void dfl_group_from_edit(st_edit *e, const char *name, df11_dfl_group *g);

/* The official kernel (decode.cu, DFLOAT11_FORMAT.md section 8) run on
 * the CPU thread by thread: 12-byte windows, gaps, per-thread counts, the
 * block-wide scan seeded with output_positions, the shared-memory buffer
 * and its copy-out. Writes n elements to out. Returns 0, or -1 with why
 * set where the kernel would misbehave: a pointer past the tables, a
 * zero-length code (the kernel spins), a block over the 48 KiB
 * shared-memory limit, output positions that leave elements unwritten. */
int dfl_kernel_model(const df11_dfl_group *g, uint16_t *out, char *why,
		     size_t why_size);

#endif
