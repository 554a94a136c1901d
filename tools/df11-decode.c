/* df11-decode: a .df11 file -> the original file or folder, byte for byte. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "df11.h"
#include "tools/common.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: df11-decode INPUT -o OUTPUT [-j THREADS] [--force]\n"
		"\n"
		"Restores the checkpoint a .df11 file was made from: the original\n"
		".safetensors file, or the whole folder, byte for byte. Every\n"
		"tensor and file is checked against its stored checksum before the\n"
		"output is moved into place; on any mismatch nothing is written.\n"
		"\n"
		"  -o, --output PATH   the file or folder to create\n"
		"  -j, --threads N     decoder threads (default: all CPUs)\n"
		"  -f, --force         replace an existing output\n"
		"  -h, --help          this text\n");
}

int main(int argc, char **argv)
{
	tool_name = "df11-decode";
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
				 .progress_ctx = "decode"};
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
	if (optind != argc - 1 || !output) {
		usage(stderr);
		return EXIT_USAGE;
	}
	tool_signals();
	double t0 = tool_now();
	df11_pack_stats st;
	df11_result r = df11_unpack(argv[optind], output, &opt, &st);
	tool_progress_end();
	if (r)
		return tool_fail(r);
	double dt = tool_now() - t0;
	char a[32], b[32];
	printf("%s: %llu tensors, %llu files, %s -> %s, checksums ok, %.2f s, "
	       "%.0f MB/s\n", output, (unsigned long long)st.n_tensors,
	       (unsigned long long)st.n_files,
	       tool_bytes(st.container_bytes, a, sizeof a),
	       tool_bytes(st.orig_bytes, b, sizeof b), dt,
	       dt > 0 ? (double)st.orig_bytes / dt / 1e6 : 0.0);
	return 0;
}
