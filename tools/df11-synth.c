/*
 * df11-synth: a synthetic checkpoint with the structure of
 * Mistral-Nemo-Instruct-2407 (config.json, tensor names and shapes,
 * sharding) and realistic BF16 weight statistics. Deterministic for a
 * seed, whatever the thread count: each block of rows has its own seed.
 * Streams tensor by tensor, so a full nemo-12b (24.5 GB) needs about one
 * embedding matrix (1.3 GB) of memory.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "df11.h"
#include "df11/fsutil.h"
#include "synth/synth.h"
#include "tools/common.h"

#define MAX_TENSORS DF11_SYNTH_MAX_TENSORS

typedef struct tspec {
	df11_synth_tensor t;
	uint64_t bytes;
	int shard;
	uint64_t begin;      /* in its shard's data area */
} tspec;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: df11-synth --preset tiny|small|nemo-12b -o FOLDER [--layers N]\n"
		"                  [--seed S] [-j THREADS] [--force]\n"
		"\n"
		"Writes a synthetic checkpoint folder with the config.json fields,\n"
		"tensor names and shapes of Mistral-Nemo-Instruct-2407 (tiny: the\n"
		"same structure with small dimensions) and BF16 weights with the\n"
		"statistics of trained ones (std ~0.02 matrices, norms near 1).\n"
		"Sharded into model-0000K-of-0000N.safetensors files of at most\n"
		"5 GB with model.safetensors.index.json when larger than that;\n"
		"otherwise one model.safetensors. Same seed, same bytes.\n"
		"\n"
		"  -p, --preset NAME      tiny, small (hidden 1024, 8 layers) or\n"
		"                         nemo-12b\n"
		"  -o, --output FOLDER    the folder to create\n"
		"  -l, --layers N         number of decoder layers (default: preset)\n"
		"  -s, --seed S           random seed (default 1)\n"
		"      --shard-bytes N    largest shard (default 5000000000)\n"
		"  -j, --threads N        generator threads (default: all CPUs)\n"
		"  -f, --force            replace an existing output\n"
		"  -h, --help             this text\n");
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp((*(tspec *const *)a)->t.name, (*(tspec *const *)b)->t.name);
}

static int write_text(const char *dir, const char *name, const char *text)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f)) {
		tool_error("%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Grows a string buffer and appends. */
typedef struct sbuf {
	char *p;
	size_t n, cap;
} sbuf;

static int sb_printf(sbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int sb_printf(sbuf *b, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
		va_end(ap);
		if (k < 0)
			return -1;
		if ((size_t)k < b->cap - b->n) {
			b->n += (size_t)k;
			return 0;
		}
		size_t cap = (b->cap + (size_t)k + 1) * 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return -1;
		b->p = p;
		b->cap = cap;
	}
}

static int write_shard(const char *dir, const char *fname, tspec **ts,
		       int n, uint64_t seed, int threads, uint16_t *buf,
		       uint64_t *done, uint64_t total)
{
	/* Tensors sorted by name, as the safetensors package writes them. */
	qsort(ts, (size_t)n, sizeof *ts, cmp_name);
	sbuf h = {0};
	uint64_t at = 0;
	int bad = sb_printf(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
	for (int i = 0; i < n && !bad; i++) {
		tspec *t = ts[i];
		t->begin = at;
		if (t->t.cols)
			bad = sb_printf(&h, ",\"%s\":{\"dtype\":\"BF16\",\"shape\":"
					"[%" PRIu64 ",%" PRIu64 "],\"data_offsets\":"
					"[%" PRIu64 ",%" PRIu64 "]}", t->t.name,
					t->t.rows, t->t.cols, at, at + t->bytes);
		else
			bad = sb_printf(&h, ",\"%s\":{\"dtype\":\"BF16\",\"shape\":"
					"[%" PRIu64 "],\"data_offsets\":[%" PRIu64
					",%" PRIu64 "]}", t->t.name, t->t.rows, at,
					at + t->bytes);
		at += t->bytes;
	}
	bad = bad || sb_printf(&h, "}");
	/* Pad with spaces so the data area starts 8-aligned. */
	while (!bad && (h.n % 8))
		bad = sb_printf(&h, " ");
	if (bad) {
		free(h.p);
		tool_error("out of memory");
		return -1;
	}
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, fname);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		free(h.p);
		tool_error("%s: %s", path, strerror(errno));
		return -1;
	}
	uint8_t len[8];
	for (int i = 0; i < 8; i++)
		len[i] = (uint8_t)((uint64_t)h.n >> (8 * i));
	df11_result r = df11_write_all(fd, len, 8, path);
	if (!r)
		r = df11_write_all(fd, h.p, h.n, path);
	free(h.p);
	for (int i = 0; i < n && !r; i++) {
		df11_synth_tensor_data(&ts[i]->t, seed, threads, buf);
		r = df11_write_all(fd, buf, ts[i]->bytes, path);
		*done += ts[i]->bytes;
		if (!r && tool_progress("synth", *done, total))
			r = DF11_IO;
	}
	if (close(fd) < 0 && !r) {
		tool_error("%s: %s", path, strerror(errno));
		return -1;
	}
	if (r) {
		if (!tool_interrupted)
			tool_error("%s", df11_last_error());
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	tool_name = "df11-synth";
	static const struct option longopts[] = {
		{"preset", required_argument, NULL, 'p'},
		{"output", required_argument, NULL, 'o'},
		{"layers", required_argument, NULL, 'l'},
		{"seed", required_argument, NULL, 's'},
		{"shard-bytes", required_argument, NULL, 'S'},
		{"threads", required_argument, NULL, 'j'},
		{"force", no_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const df11_synth_preset *p = NULL;
	const char *out = NULL;
	long long layers = -1;
	uint64_t seed = 1, shard_max = 5000000000ull;
	int threads = tool_default_threads(), force = 0, c;
	char *end;
	while ((c = getopt_long(argc, argv, "p:o:l:s:j:fh", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			p = df11_synth_preset_find(optarg);
			if (!p) {
				tool_error("unknown preset \"%s\" (tiny, small, nemo-12b)",
					   optarg);
				return EXIT_USAGE;
			}
			break;
		case 'o': out = optarg; break;
		case 'l':
			layers = strtoll(optarg, &end, 10);
			if (*end || !*optarg || layers < 0 || layers > 400) {
				tool_error("bad --layers \"%s\" (0..400)", optarg);
				return EXIT_USAGE;
			}
			break;
		case 's':
			seed = strtoull(optarg, &end, 0);
			if (*end || !*optarg) {
				tool_error("bad --seed \"%s\"", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'S':
			shard_max = strtoull(optarg, &end, 0);
			if (*end || !*optarg || shard_max == 0) {
				tool_error("bad --shard-bytes \"%s\"", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'j': threads = tool_threads(optarg); break;
		case 'f': force = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (!p || !out || optind != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	uint64_t nl = layers >= 0 ? (uint64_t)layers : p->layers;
	static tspec specs[MAX_TENSORS];
	static df11_synth_tensor list[MAX_TENSORS];
	int n = df11_synth_tensors(p, nl, list);
	if (n < 0) {
		tool_error("too many layers");
		return EXIT_USAGE;
	}
	for (int i = 0; i < n; i++) {
		specs[i].t = list[i];
		specs[i].bytes = 2 * list[i].rows * (list[i].cols ? list[i].cols : 1);
	}
	df11_result r = df11_check_output(out, force);
	if (r)
		return tool_fail(r);

	/* Shards: state_dict order, a new one when the next tensor would
	 * push the current one past shard_max (as transformers does). */
	uint64_t total = 0, cur = 0, largest = 0;
	int n_shards = 1;
	for (int i = 0; i < n; i++) {
		if (cur && cur + specs[i].bytes > shard_max) {
			n_shards++;
			cur = 0;
		}
		specs[i].shard = n_shards - 1;
		cur += specs[i].bytes;
		total += specs[i].bytes;
		if (specs[i].bytes > largest)
			largest = specs[i].bytes;
	}
	uint16_t *buf = malloc(largest ? largest : 2);
	char *tmp = df11_temp_name(out);
	if (!buf || !tmp || !mkdtemp(tmp)) {
		tool_error("%s: %s", out, strerror(errno));
		return EXIT_FAIL;
	}
	chmod(tmp, 0755);
	tool_signals();
	double t0 = tool_now();
	int fail = 0;
	uint64_t done = 0;
	static tspec *ts[MAX_TENSORS];
	char fname[64];
	sbuf idx = {0};
	sb_printf(&idx, "{\n  \"metadata\": {\n    \"total_size\": %" PRIu64
		  "\n  },\n  \"weight_map\": {", total);
	for (int s = 0; s < n_shards && !fail; s++) {
		int k = 0;
		for (int i = 0; i < n; i++)
			if (specs[i].shard == s)
				ts[k++] = &specs[i];
		if (n_shards == 1)
			snprintf(fname, sizeof fname, "model.safetensors");
		else
			snprintf(fname, sizeof fname,
				 "model-%05d-of-%05d.safetensors", s + 1, n_shards);
		fail = write_shard(tmp, fname, ts, k, seed, threads, buf, &done,
				   total);
	}
	if (!fail && n_shards > 1) {
		/* weight_map sorted by tensor name, as transformers writes it. */
		for (int i = 0; i < n; i++)
			ts[i] = &specs[i];
		qsort(ts, (size_t)n, sizeof *ts, cmp_name);
		for (int i = 0; i < n && !fail; i++) {
			snprintf(fname, sizeof fname, "model-%05d-of-%05d.safetensors",
				 ts[i]->shard + 1, n_shards);
			fail = sb_printf(&idx, "%s\n    \"%s\": \"%s\"", i ? "," : "",
					 ts[i]->t.name, fname);
		}
		fail = fail || sb_printf(&idx, "\n  }\n}\n") ||
		       write_text(tmp, "model.safetensors.index.json", idx.p);
	}
	char *cfg = df11_synth_config_json(p, nl);
	if (!fail)
		fail = !cfg || write_text(tmp, "config.json", cfg);
	free(cfg);
	free(idx.p);
	free(buf);
	tool_progress_end();
	if (!fail && (r = df11_commit_output(tmp, out))) {
		tool_fail(r);
		fail = 1;
	}
	if (fail) {
		df11_remove_tree(tmp);
		free(tmp);
		if (tool_interrupted) {
			tool_error("interrupted; no output written");
			return EXIT_INTERRUPTED;
		}
		return EXIT_FAIL;
	}
	char b[32];
	printf("%s: preset %s, %" PRIu64 " layers, %d tensors, %d shard%s, %s, "
	       "seed %" PRIu64 ", %.2f s\n", out, p->name, nl, n, n_shards,
	       n_shards > 1 ? "s" : "", tool_bytes(total, b, sizeof b), seed,
	       tool_now() - t0);
	free(tmp);
	return 0;
}
