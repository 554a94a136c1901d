/* df11-info: what is in a checkpoint, tensor by tensor. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "df11.h"
#include "tools/common.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: df11-info INPUT [--json] [-j THREADS]\n"
		"\n"
		"Lists the tensors of a .df11 file, a .safetensors file or a\n"
		"checkpoint folder: shape, dtype, stored bits per weight and, for\n"
		"BF16 tensors, the exponent entropy (the bound df11 approaches)\n"
		"and the number of distinct exponents; then totals.\n"
		"\n"
		"  --json              one JSON document on stdout\n"
		"  -j, --threads N     decoder threads (default: all CPUs)\n"
		"  -h, --help          this text\n");
}

static void shape_str(const df11_tensor_desc *d, char *buf, size_t size)
{
	size_t n = 0;
	n += (size_t)snprintf(buf + n, size - n, "[");
	for (int k = 0; k < d->ndim && n < size; k++)
		n += (size_t)snprintf(buf + n, size - n, "%s%" PRIu64,
				      k ? "," : "", d->shape[k]);
	if (n < size)
		snprintf(buf + n, size - n, "]");
}

int main(int argc, char **argv)
{
	tool_name = "df11-info";
	static const struct option longopts[] = {
		{"json", no_argument, NULL, 'J'},
		{"threads", required_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int json = 0, threads = tool_default_threads(), c;
	while ((c = getopt_long(argc, argv, "j:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'J': json = 1; break;
		case 'j': threads = tool_threads(optarg); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	df11_model *m;
	df11_result r = df11_model_open(argv[optind], &m);
	if (r)
		return tool_fail(r);
	df11_model_set_threads(m, threads);
	size_t n = df11_model_num_tensors(m);
	json_t *jt = json ? json_array() : NULL;
	uint64_t tot_orig = 0, tot_stored = 0, bf_elems = 0, bf_stored = 0;
	double bf_entropy = 0.0;
	uint16_t *buf = NULL;
	size_t cap = 0;
	if (!json)
		printf("%-48s %-7s %-16s %12s %9s %8s %8s\n", "tensor", "dtype",
		       "shape", "stored", "bits/w", "H(exp)", "distinct");
	for (size_t i = 0; i < n; i++) {
		df11_tensor_desc d;
		df11_model_tensor(m, i, &d);
		double bpw = d.n_elems ? 8.0 * (double)d.stored_bytes /
						 (double)d.n_elems : 0.0;
		int have_stats = d.dtype == DF11_DTYPE_BF16 && d.n_elems;
		df11_exponent_stats es = {0};
		if (have_stats) {
			if (cap < d.nbytes) {
				free(buf);
				cap = 0;
				if (!(buf = malloc(d.nbytes))) {
					tool_error("out of memory for %s", d.name);
					return EXIT_FAIL;
				}
				cap = d.nbytes;
			}
			if ((r = df11_model_read(m, i, buf, d.nbytes))) {
				int e = tool_fail(r);
				df11_model_close(m);
				return e;
			}
			df11_exponent_histogram(buf, d.n_elems, &es);
			bf_elems += d.n_elems;
			bf_stored += d.stored_bytes;
			bf_entropy += es.entropy_bits * (double)d.n_elems;
		}
		tot_orig += d.nbytes;
		tot_stored += d.stored_bytes;
		char shape[256];
		shape_str(&d, shape, sizeof shape);
		if (json) {
			json_t *o = json_object(), *s = json_array();
			for (int k = 0; k < d.ndim; k++)
				json_array_append_new(s, json_integer((json_int_t)d.shape[k]));
			json_object_set_new(o, "name", json_string(d.name));
			json_object_set_new(o, "dtype",
					    json_string(df11_dtype_name(d.dtype)));
			json_object_set_new(o, "shape", s);
			json_object_set_new(o, "bytes", json_integer((json_int_t)d.nbytes));
			json_object_set_new(o, "stored_bytes",
					    json_integer((json_int_t)d.stored_bytes));
			json_object_set_new(o, "compressed", json_boolean(d.compressed));
			json_object_set_new(o, "bits_per_weight", json_real(bpw));
			json_object_set_new(o, "exponent_entropy", have_stats ?
					    json_real(es.entropy_bits) : json_null());
			json_object_set_new(o, "distinct_exponents", have_stats ?
					    json_integer(es.distinct) : json_null());
			json_array_append_new(jt, o);
		} else if (have_stats) {
			printf("%-48s %-7s %-16s %12" PRIu64 " %9.3f %8.3f %8u\n",
			       d.name, df11_dtype_name(d.dtype), shape,
			       d.stored_bytes, bpw, es.entropy_bits, es.distinct);
		} else {
			printf("%-48s %-7s %-16s %12" PRIu64 " %9.3f %8s %8s\n",
			       d.name, df11_dtype_name(d.dtype), shape,
			       d.stored_bytes, bpw, "-", "-");
		}
	}
	double bf_bpw = bf_elems ? 8.0 * (double)bf_stored / (double)bf_elems : 0;
	double bf_h = bf_elems ? bf_entropy / (double)bf_elems : 0;
	if (json) {
		json_t *root = json_object(), *tot = json_object();
		json_object_set_new(root, "path", json_string(argv[optind]));
		json_object_set_new(root, "tensors", jt);
		json_object_set_new(tot, "tensors", json_integer((json_int_t)n));
		json_object_set_new(tot, "bytes", json_integer((json_int_t)tot_orig));
		json_object_set_new(tot, "stored_bytes",
				    json_integer((json_int_t)tot_stored));
		json_object_set_new(tot, "bf16_elements",
				    json_integer((json_int_t)bf_elems));
		json_object_set_new(tot, "bf16_bits_per_weight", json_real(bf_bpw));
		json_object_set_new(tot, "bf16_exponent_entropy", json_real(bf_h));
		json_object_set_new(root, "totals", tot);
		json_dumpf(root, stdout, JSON_INDENT(1));
		putchar('\n');
		json_decref(root);
	} else {
		char a[32], b[32];
		printf("total: %zu tensors, %s -> %s stored (%.2f%%); BF16: %" PRIu64
		       " weights, %.3f bits/weight stored, exponent entropy "
		       "%.3f bits (+8 sign/mantissa = %.3f)\n", n,
		       tool_bytes(tot_orig, a, sizeof a),
		       tool_bytes(tot_stored, b, sizeof b),
		       tot_orig ? 100.0 * (double)tot_stored / (double)tot_orig : 100.0,
		       bf_elems, bf_bpw, bf_h, bf_h + 8.0);
	}
	free(buf);
	df11_model_close(m);
	return 0;
}
