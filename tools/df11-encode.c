/* df11-encode: a .safetensors file or checkpoint folder -> one .df11 file. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "df11.h"
#include "tools/common.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: df11-encode INPUT [-o OUTPUT] [-j THREADS] [--force]\n"
		"       df11-encode INPUT --format dfloat11 -o DIR [--pattern-dict FILE]\n"
		"\n"
		"Compresses a checkpoint losslessly: INPUT is a .safetensors file\n"
		"or a folder (sharded model-*.safetensors, index.json, config and\n"
		"tokenizer files). BF16 tensors are df11-encoded, everything else\n"
		"is stored as is; df11-decode gives back every file byte for byte.\n"
		"\n"
		"  -o, --output FILE   output (default: INPUT without .safetensors,\n"
		"                      plus .df11)\n"
		"  -j, --threads N     worker threads (default: all CPUs)\n"
		"  -f, --force         replace an existing output\n"
		"  --format dfloat11   write the official DFloat11 format instead: a\n"
		"                      folder for the dfloat11 package's loader\n"
		"                      (docs/DFLOAT11.md); groups from config.json\n"
		"                      for Llama, Mistral, Qwen2/3, Gemma 2/3 text\n"
		"  --pattern-dict FILE the official pattern_dict (JSON) for other\n"
		"                      models: {\"regex\": [\"attr\", ...], ...}\n"
		"  -h, --help          this text\n"
		"\n"
		"INPUT may also be an official DFloat11 folder: it is read as the\n"
		"BF16 checkpoint it holds.\n");
}

static void on_plain(void *ctx, const char *group, const char *why)
{
	(void)ctx;
	fprintf(stderr, "%s: group %s stored as plain BF16: %s\n", tool_name,
		group, why);
}

/* --format dfloat11 */
static int export_dfloat11(const char *input, const char *output,
			   const char *pattern_file, int threads, int force)
{
	char *pd = NULL;
	if (pattern_file) {
		FILE *f = fopen(pattern_file, "rb");
		long n = -1;
		if (f && fseek(f, 0, SEEK_END) == 0)
			n = ftell(f);
		if (n < 0 || n > (1l << 24) || !(pd = calloc(1, (size_t)n + 1)) ||
		    fseek(f, 0, SEEK_SET) != 0 ||
		    fread(pd, 1, (size_t)n, f) != (size_t)n) {
			tool_error("%s: cannot read", pattern_file);
			if (f)
				fclose(f);
			free(pd);
			return EXIT_FAIL;
		}
		fclose(f);
	}
	df11_dfloat11_options opt = {.threads = threads, .force = force,
				     .pattern_dict = pd,
				     .progress = tool_progress,
				     .progress_ctx = "export",
				     .note = on_plain};
	tool_signals();
	double t0 = tool_now();
	df11_dfloat11_stats st;
	df11_result r = df11_export_dfloat11(input, output, &opt, &st);
	tool_progress_end();
	free(pd);
	if (r)
		return tool_fail(r);
	double dt = tool_now() - t0;
	char a[32], b[32];
	printf("%s: %llu groups (%llu plain), %llu weights, %s -> %s (%.2f%%), "
	       "%.2f s, %.0f MB/s\n", output, (unsigned long long)st.n_groups,
	       (unsigned long long)st.n_plain,
	       (unsigned long long)st.n_weights,
	       tool_bytes(st.bf16_bytes, a, sizeof a),
	       tool_bytes(st.stored_bytes, b, sizeof b),
	       st.bf16_bytes ? 100.0 * (double)st.stored_bytes /
				       (double)st.bf16_bytes : 100.0,
	       dt, dt > 0 ? (double)st.bf16_bytes / dt / 1e6 : 0.0);
	return 0;
}

static char *default_output(const char *in)
{
	size_t n = strlen(in);
	while (n > 1 && in[n - 1] == '/')
		n--;
	const char *ext = ".safetensors";
	size_t k = strlen(ext);
	if (n > k && !strncmp(in + n - k, ext, k))
		n -= k;
	char *out = malloc(n + 6);
	if (!out)
		return NULL;
	memcpy(out, in, n);
	memcpy(out + n, ".df11", 6);
	return out;
}

int main(int argc, char **argv)
{
	tool_name = "df11-encode";
	static const struct option longopts[] = {
		{"output", required_argument, NULL, 'o'},
		{"threads", required_argument, NULL, 'j'},
		{"force", no_argument, NULL, 'f'},
		{"format", required_argument, NULL, 'F'},
		{"pattern-dict", required_argument, NULL, 'P'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *output = NULL, *format = NULL, *patterns = NULL;
	df11_pack_options opt = {.threads = tool_default_threads(),
				 .progress = tool_progress,
				 .progress_ctx = "encode"};
	int c;
	while ((c = getopt_long(argc, argv, "o:j:fh", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': output = optarg; break;
		case 'j': opt.threads = tool_threads(optarg); break;
		case 'f': opt.force = 1; break;
		case 'F': format = optarg; break;
		case 'P': patterns = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *input = argv[optind];
	if (format && strcmp(format, "dfloat11") && strcmp(format, "df11")) {
		tool_error("--format %s: df11 or dfloat11", format);
		return EXIT_USAGE;
	}
	if (format && !strcmp(format, "dfloat11")) {
		if (!output) {
			tool_error("--format dfloat11 needs -o DIR");
			return EXIT_USAGE;
		}
		return export_dfloat11(input, output, patterns, opt.threads,
				       opt.force);
	}
	if (patterns) {
		tool_error("--pattern-dict goes with --format dfloat11");
		return EXIT_USAGE;
	}
	char *def = NULL;
	if (!output && !(output = def = default_output(input))) {
		tool_error("out of memory");
		return EXIT_FAIL;
	}
	tool_signals();
	double t0 = tool_now();
	df11_pack_stats st;
	df11_result r = df11_pack(input, output, &opt, &st);
	tool_progress_end();
	if (r) {
		free(def);
		return tool_fail(r);
	}
	double dt = tool_now() - t0;
	char a[32], b[32];
	printf("%s: %llu tensors (%llu df11-encoded), %llu files, %s -> %s "
	       "(%.2f%%), %.2f bits per BF16 weight, %.2f s, %.0f MB/s\n",
	       output, (unsigned long long)st.n_tensors,
	       (unsigned long long)st.n_compressed,
	       (unsigned long long)st.n_files,
	       tool_bytes(st.orig_bytes, a, sizeof a),
	       tool_bytes(st.container_bytes, b, sizeof b),
	       st.orig_bytes ? 100.0 * (double)st.container_bytes /
				       (double)st.orig_bytes : 100.0,
	       st.bf16_elems ? 8.0 * (double)st.bf16_stored /
				       (double)st.bf16_elems : 0.0,
	       dt, dt > 0 ? (double)st.orig_bytes / dt / 1e6 : 0.0);
	free(def);
	return 0;
}
