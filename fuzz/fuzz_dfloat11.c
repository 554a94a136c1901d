/*
 * Fuzz target: the official DFloat11 reader (df11_model_open on a DFloat11
 * folder, then every tensor, ranges and the checkpoint's files).
 *
 * Input: one byte choosing config.json (even: the Llama fixture's,
 * tests/fixtures/dfloat11/llama, hidden 64; odd: a tiny Llama, hidden 8,
 * whose groups fit one block and small inputs), then one safetensors file,
 * written as model.safetensors beside that config.json; both configs carry
 * the official pattern_dict. Properties:
 *   - nothing crashes or hangs, whatever the bytes;
 *   - a refusal is a data error (DF11_BAD_DATA, DF11_UNSUPPORTED,
 *     DF11_LIMIT), never a usage or memory error on a small file;
 *   - every group whose block decoder accepts it decodes the same with
 *     the front-to-back reference decoder (the block checks of gaps and
 *     output positions never let other data through);
 *   - after a successful full read, a range read agrees with it.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "df11.h"
#include "df11/dfloat11.h"
#include "df11/model_internal.h"
#include "fuzz/fuzz.h"

#define PATTERNS                                                            \
	" \"dfloat11_config\": {\"version\": \"0.5.0\", \"threads_per_block\":" \
	" [512], \"bytes_per_thread\": 8, \"pattern_dict\": {\"lm_head\": []," \
	" \"model\\\\.embed_tokens\": [], \"model\\\\.layers\\\\.\\\\d+\":" \
	" [\"self_attn.q_proj\", \"self_attn.k_proj\", \"self_attn.v_proj\"," \
	" \"self_attn.o_proj\", \"mlp.gate_proj\", \"mlp.up_proj\"," \
	" \"mlp.down_proj\"]}}}\n"

static const char *const configs[2] = {
	"{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\",\n"
	" \"hidden_size\": 64, \"intermediate_size\": 172, \"vocab_size\": 300,\n"
	" \"num_attention_heads\": 4, \"num_key_value_heads\": 2,\n"
	" \"num_hidden_layers\": 2, \"head_dim\": 16,\n" PATTERNS,
	"{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\",\n"
	" \"hidden_size\": 8, \"intermediate_size\": 16, \"vocab_size\": 32,\n"
	" \"num_attention_heads\": 2, \"num_key_value_heads\": 1,\n"
	" \"num_hidden_layers\": 1, \"head_dim\": 4,\n" PATTERNS,
};

static char dir[64];

static void spill(const char *name, const void *p, size_t n)
{
	char path[128];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	FUZZ_CHECK(fd >= 0, "%s: %s", path, strerror(errno));
	FUZZ_CHECK(n == 0 || write(fd, p, n) == (ssize_t)n, "write %s", path);
	close(fd);
}

static void cleanup(void)
{
	char path[128];
	snprintf(path, sizeof path, "%s/model.safetensors", dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/config.json", dir);
	unlink(path);
	rmdir(dir);
}

static int data_error(df11_result r)
{
	return r == DF11_BAD_DATA || r == DF11_UNSUPPORTED || r == DF11_LIMIT;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int config_now = -1;
	if (!dir[0]) {
		snprintf(dir, sizeof dir, "/tmp/df11-fuzz-dfl-XXXXXX");
		FUZZ_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
		atexit(cleanup);
	}
	if (size == 0)
		return 0;
	int which = data[0] & 1;
	if (which != config_now) {
		spill("config.json", configs[which], strlen(configs[which]));
		config_now = which;
	}
	data++;
	size--;
	spill("model.safetensors", data, size);
	df11_model *m;
	df11_result r = df11_model_open(dir, &m);
	if (r) {
		FUZZ_CHECK(data_error(r), "open: %d %s", r, df11_last_error());
		return 0;
	}
	df11_model_set_threads(m, 2);
	for (size_t gi = 0; gi < df11_dfl_group_count(m); gi++) {
		df11_dfl_group *g = df11_dfl_group_get(m, gi);
		uint16_t *a = malloc(2 * g->n), *b = malloc(2 * g->n);
		FUZZ_CHECK(a && b, "out of memory");
		df11_result ra = df11_dfl_group_decode(g, 0, g->n, a, 2, "fuzz");
		df11_result rb = df11_dfl_decode_reference(g, b, "fuzz");
		FUZZ_CHECK(!ra || data_error(ra), "decode: %d", ra);
		FUZZ_CHECK(!rb || data_error(rb), "reference: %d", rb);
		if (!ra) {
			FUZZ_CHECK(!rb, "blocks decode, the reference refuses: %s",
				   df11_last_error());
			FUZZ_CHECK(!memcmp(a, b, 2 * g->n),
				   "group %s: blocks and reference differ", g->name);
		}
		free(a);
		free(b);
	}
	for (size_t i = 0; i < df11_model_num_tensors(m); i++) {
		df11_tensor_desc d;
		FUZZ_CHECK(df11_model_tensor(m, i, &d) == DF11_OK, "tensor");
		FUZZ_CHECK(d.nbytes <= 2 * (uint64_t)size + 64,
			   "%s: %llu bytes from a %zu-byte file", d.name,
			   (unsigned long long)d.nbytes, size);
		uint8_t *p = malloc(d.nbytes + 1);
		FUZZ_CHECK(p != NULL, "out of memory");
		r = df11_model_read(m, i, p, d.nbytes);
		FUZZ_CHECK(!r || data_error(r), "read %s: %d", d.name, r);
		if (!r && d.dtype == DF11_DTYPE_BF16 && d.n_elems > 0) {
			uint64_t first = d.n_elems / 3, count = d.n_elems - first;
			count = count > 1000 ? 1000 : count;
			uint16_t *q = malloc(2 * count + 2);
			FUZZ_CHECK(q != NULL, "out of memory");
			r = df11_model_read_range(m, i, first, count, q);
			FUZZ_CHECK(!r, "range of %s: %s", d.name, df11_last_error());
			FUZZ_CHECK(!memcmp(q, p + 2 * first, 2 * count),
				   "range of %s differs", d.name);
			free(q);
		}
		free(p);
	}
	const void *cf;
	size_t cn;
	FUZZ_CHECK(df11_model_file(m, "config.json", &cf, &cn) == DF11_OK,
		   "config.json");
	df11_model_close(m);
	return 0;
}
