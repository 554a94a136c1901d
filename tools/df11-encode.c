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
		"  -h, --help          this text\n");
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
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *output = NULL;
	df11_pack_options opt = {.threads = tool_default_threads(),
				 .progress = tool_progress,
				 .progress_ctx = "encode"};
	int c;
	while ((c = getopt_long(argc, argv, "o:j:fh", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': output = optarg; break;
		case 'j': opt.threads = tool_threads(optarg); break;
		case 'f': opt.force = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *input = argv[optind];
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
