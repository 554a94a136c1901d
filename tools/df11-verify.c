/* df11-verify: is a .df11 file intact (and equal to its original)? */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "df11.h"
#include "tools/common.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: df11-verify INPUT [--against ORIGINAL] [-j THREADS]\n"
		"\n"
		"Decodes every tensor of a .df11 file and checks it against the\n"
		"stored checksums; with --against, also compares every tensor,\n"
		"header and carried file with the original file or folder bit for\n"
		"bit. Each failing tensor or file is named on stderr.\n"
		"Exit status: 0 intact, 1 mismatch or corruption, 2 usage or I/O\n"
		"error.\n"
		"\n"
		"  -a, --against PATH  the original .safetensors file or folder\n"
		"  -j, --threads N     decoder threads (default: all CPUs)\n"
		"  -h, --help          this text\n");
}

static void report(void *ctx, const char *what, df11_result r,
		   const char *message)
{
	(void)r;
	*(int *)ctx = 1;
	tool_error("FAIL %s: %s", what, message);
}

int main(int argc, char **argv)
{
	tool_name = "df11-verify";
	static const struct option longopts[] = {
		{"against", required_argument, NULL, 'a'},
		{"threads", required_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *against = NULL;
	df11_pack_options opt = {.threads = tool_default_threads(),
				 .progress = tool_progress,
				 .progress_ctx = "verify"};
	int c;
	while ((c = getopt_long(argc, argv, "a:j:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'a': against = optarg; break;
		case 'j': opt.threads = tool_threads(optarg); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	tool_signals();
	double t0 = tool_now();
	uint64_t n_bad = 0;
	int reported = 0;
	df11_result r = df11_verify(argv[optind], against, &opt, report,
				    &reported, &n_bad);
	tool_progress_end();
	if (tool_interrupted) {
		tool_error("interrupted");
		return EXIT_INTERRUPTED;
	}
	if (r == DF11_OK) {
		printf("%s: intact%s%s (%.2f s)\n", argv[optind],
		       against ? ", identical to " : "",
		       against ? against : "", tool_now() - t0);
		return 0;
	}
	if (n_bad) {
		tool_error("%s: %llu tensors or files FAILED", argv[optind],
			   (unsigned long long)n_bad);
		return 1;
	}
	/* Could not even open it: corrupt data is a failure of the file,
	 * anything else (missing file, bad usage) is an error. */
	tool_error("%s", df11_last_error());
	return (r == DF11_BAD_DATA || r == DF11_CHECKSUM) ? 1 : 2;
}
