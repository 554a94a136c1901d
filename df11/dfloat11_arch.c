/*
 * What an official DFloat11 checkpoint does not store: the weights' shapes
 * (from the model's config.json, per architecture), the config without
 * its "dfloat11_config" entry, and pattern_dict's Python regexes.
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "df11/dfloat11.h"
#include "common/error.h"

/* -------------------------------------------------------------- shapes */

static df11_result get_u(const json_t *c, const char *key, uint64_t def,
			 uint64_t *out, const char *label)
{
	const json_t *v = json_object_get(c, key);
	if (!v || json_is_null(v)) {
		if (!def)
			return df11_fail(DF11_BAD_DATA, "%s: config.json: \"%s\" is "
					 "missing", label, key);
		*out = def;
		return DF11_OK;
	}
	json_int_t x = json_is_integer(v) ? json_integer_value(v) : 0;
	if (x < 1 || x > (json_int_t)1 << 31)
		return df11_fail(DF11_BAD_DATA, "%s: config.json: \"%s\" is not "
				 "a positive integer", label, key);
	*out = (uint64_t)x;
	return DF11_OK;
}

/* The model types whose weight shapes follow from the config below. */
static const char *const known_types[] = {
	"llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text", "gemma3",
};

df11_result df11_dfl_arch_from_config(const json_t *config, df11_dfl_arch *a,
				      const char *label)
{
	memset(a, 0, sizeof *a);
	const json_t *mt = json_object_get(config, "model_type");
	const char *type = json_is_string(mt) ? json_string_value(mt) : NULL;
	int known = 0;
	for (size_t i = 0; type && i < sizeof known_types / sizeof *known_types;
	     i++)
		known |= !strcmp(type, known_types[i]);
	if (!known)
		return df11_fail(DF11_UNSUPPORTED, "%s: config.json: model_type %s%s%s:"
				 " the weights' shapes are not stored in the "
				 "DFloat11 format and cannot be known for this "
				 "architecture (supported: Llama, Mistral, Qwen2, "
				 "Qwen3, Gemma 2, Gemma 3 text)", label,
				 type ? "\"" : "", type ? type : "(none)",
				 type ? "\"" : "");
	snprintf(a->model_type, sizeof a->model_type, "%s", type);
	/* Gemma 3 with vision keeps the language model's numbers apart. */
	const json_t *tc = json_object_get(config, "text_config");
	if (!strcmp(type, "gemma3")) {
		if (!json_is_object(tc))
			return df11_fail(DF11_BAD_DATA, "%s: config.json: gemma3 "
					 "without a \"text_config\" object", label);
		config = tc;
	}
	df11_result r;
	if ((r = get_u(config, "hidden_size", 0, &a->hidden, label)) ||
	    (r = get_u(config, "intermediate_size", 0, &a->inter, label)) ||
	    (r = get_u(config, "vocab_size", 0, &a->vocab, label)) ||
	    (r = get_u(config, "num_attention_heads", 0, &a->heads, label)) ||
	    (r = get_u(config, "num_key_value_heads", a->heads, &a->kv_heads,
		       label)))
		return r;
	/* head_dim: explicit in Mistral-Nemo (128, not 5120 / 32), Qwen3 and
	 * Gemma; hidden / heads otherwise. */
	return get_u(config, "head_dim", a->hidden / a->heads ? a->hidden / a->heads
							      : 1,
		     &a->head_dim, label);
}

static int eat(const char **s, const char *prefix)
{
	size_t n = strlen(prefix);
	if (strncmp(*s, prefix, n))
		return 0;
	*s += n;
	return 1;
}

df11_result df11_dfl_arch_shape(const df11_dfl_arch *a, const char *name,
				uint64_t shape[2], const char *label)
{
	uint64_t q = a->heads * a->head_dim, kv = a->kv_heads * a->head_dim;
	const char *s = name;
	if (!strcmp(s, "lm_head.weight") ||
	    !strcmp(s, "language_model.lm_head.weight")) {
		shape[0] = a->vocab;
		shape[1] = a->hidden;
		return DF11_OK;
	}
	/* The language model's prefix: Llama-like, or inside a Gemma 3
	 * vision model (two spellings across transformers versions). */
	if (!eat(&s, "model.language_model.") &&
	    !eat(&s, "language_model.model.") && !eat(&s, "model."))
		goto unknown;
	if (!strcmp(s, "embed_tokens.weight")) {
		shape[0] = a->vocab;
		shape[1] = a->hidden;
		return DF11_OK;
	}
	if (!eat(&s, "layers.") || *s < '0' || *s > '9')
		goto unknown;
	while (*s >= '0' && *s <= '9')
		s++;
	static const struct {
		const char *role;
		int rows, cols; /* 0 hidden, 1 q, 2 kv, 3 intermediate */
	} roles[] = {
		{".self_attn.q_proj.weight", 1, 0},
		{".self_attn.k_proj.weight", 2, 0},
		{".self_attn.v_proj.weight", 2, 0},
		{".self_attn.o_proj.weight", 0, 1},
		{".mlp.gate_proj.weight", 3, 0},
		{".mlp.up_proj.weight", 3, 0},
		{".mlp.down_proj.weight", 0, 3},
	};
	const uint64_t dim[4] = {a->hidden, q, kv, a->inter};
	for (size_t i = 0; i < sizeof roles / sizeof *roles; i++)
		if (!strcmp(s, roles[i].role)) {
			shape[0] = dim[roles[i].rows];
			shape[1] = dim[roles[i].cols];
			return DF11_OK;
		}
unknown:
	return df11_fail(DF11_UNSUPPORTED, "%s: compressed weight %s: its shape "
			 "is not stored in the DFloat11 format and the %s "
			 "architecture does not name it", label, name,
			 a->model_type);
}

/* ------------------------------------------------------ config.json */

static const char *skip_ws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* Past a JSON string starting at p ('"'); NULL if unterminated. */
static const char *skip_string(const char *p, const char *e)
{
	for (p++; p < e; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

/* Past one JSON value (already known to be valid JSON). */
static const char *skip_value(const char *p, const char *e)
{
	int depth = 0;
	while (p < e) {
		char c = *p;
		if (c == '"') {
			if (!(p = skip_string(p, e)))
				return NULL;
			if (depth == 0)
				return p;
			continue;
		}
		if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			if (depth == 0)
				return p;
			if (--depth == 0)
				return p + 1;
		} else if (depth == 0 && (c == ',' || c == ' ' || c == '\n' ||
					  c == '\r' || c == '\t')) {
			return p;
		}
		p++;
	}
	return depth ? NULL : p;
}

df11_result df11_dfl_strip_config(const char *text, size_t size, char **out,
				  size_t *out_size)
{
	json_error_t jerr;
	json_t *orig = json_loadb(text, size, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(orig)) {
		json_decref(orig);
		return df11_fail(DF11_BAD_DATA, "config.json: line %d: %s",
				 jerr.line, orig ? "not an object" : jerr.text);
	}
	const char *e = text + size, *p = skip_ws(text, e);
	const char *prev_end = NULL, *cut0 = NULL, *cut1 = NULL;
	if (p < e && *p == '{')
		p++;
	while (p && p < e) {
		p = skip_ws(p, e);
		if (p >= e || *p != '"')
			break;
		const char *k0 = p, *k1 = skip_string(p, e);
		if (!k1)
			break;
		p = skip_ws(k1, e);
		if (p >= e || *p != ':')
			break;
		const char *v0 = skip_ws(p + 1, e), *v1 = skip_value(v0, e);
		if (!v1)
			break;
		if (k1 - k0 == 17 && !memcmp(k0, "\"dfloat11_config\"", 17)) {
			cut0 = prev_end ? prev_end : k0;
			cut1 = v1;
			if (!prev_end) {
				/* The first member: take the comma after it. */
				const char *q = skip_ws(v1, e);
				if (q < e && *q == ',')
					cut1 = skip_ws(q + 1, e);
			}
		}
		prev_end = v1;
		p = skip_ws(v1, e);
		if (p < e && *p == ',')
			p++;
		else
			break;
	}
	df11_result r = DF11_OK;
	if (!json_object_get(orig, "dfloat11_config")) {
		r = df11_fail(DF11_NOT_FOUND, "config.json: no dfloat11_config");
		goto out;
	}
	size_t n = cut0 ? size - (size_t)(cut1 - cut0) : 0;
	char *s = cut0 ? malloc(n + 1) : NULL;
	if (cut0 && !s) {
		r = df11_fail(DF11_NOMEM, "config.json");
		goto out;
	}
	if (s) {
		memcpy(s, text, (size_t)(cut0 - text));
		memcpy(s + (cut0 - text), cut1, (size_t)(e - cut1));
		s[n] = 0;
		/* The cut must leave the same object less that member. */
		json_t *got = json_loadb(s, n, JSON_REJECT_DUPLICATES, NULL);
		json_object_del(orig, "dfloat11_config");
		int same = got && json_equal(got, orig);
		json_decref(got);
		if (!same) {
			free(s);
			s = NULL;
		}
	}
	if (!s) {
		/* Not laid out as a cut can handle: write the object anew. */
		json_object_del(orig, "dfloat11_config");
		s = json_dumps(orig, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
		if (!s) {
			r = df11_fail(DF11_NOMEM, "config.json");
			goto out;
		}
		n = strlen(s);
	}
	*out = s;
	*out_size = n;
out:
	json_decref(orig);
	return r;
}

/* ------------------------------------------------------------ regexes */

/* Python regex (the subset pattern_dicts use) -> POSIX ERE. */
static int translate(const char *py, char *out, size_t cap)
{
	size_t n = 0;
	int in_class = 0;
#define PUT(str)                                              \
	do {                                                  \
		size_t l_ = strlen(str);                      \
		if (n + l_ >= cap)                            \
			return -1;                            \
		memcpy(out + n, str, l_);                     \
		n += l_;                                      \
	} while (0)
	PUT("^(");
	for (const char *p = py; *p; p++) {
		char c = *p;
		if (c == '\\') {
			char d = *++p;
			if (!d)
				return -1;
			if (d == 'd')
				PUT(in_class ? "0-9" : "[0-9]");
			else if (d == 'w')
				PUT(in_class ? "A-Za-z0-9_" : "[A-Za-z0-9_]");
			else if (d == 's')
				PUT(in_class ? "[:space:]" : "[[:space:]]");
			else if (strchr(".^$*+?()[]{}|\\/-", d)) {
				char lit[4] = {'\\', d, 0, 0};
				if (in_class)
					lit[0] = d, lit[1] = 0;
				PUT(lit);
			} else {
				return -1;
			}
			continue;
		}
		if (in_class) {
			if (c == ']')
				in_class = 0;
			char lit[2] = {c, 0};
			PUT(lit);
			continue;
		}
		if (c == '[') {
			in_class = 1;
			PUT("[");
			if (p[1] == '^') {
				PUT("^");
				p++;
			}
			if (p[1] == ']') {
				PUT("]");
				p++;
			}
			continue;
		}
		if (c == '(' && p[1] == '?') {
			if (p[2] != ':')
				return -1; /* lookarounds, named groups */
			PUT("(");
			p += 2;
			continue;
		}
		if ((c == '*' || c == '+' || c == '?' || c == '}') && p[1] == '?') {
			char lit[2] = {c, 0}; /* lazy: same full matches */
			PUT(lit);
			p++;
			continue;
		}
		char lit[2] = {c, 0};
		PUT(lit);
	}
	if (in_class)
		return -1;
	PUT(")$");
	out[n] = 0;
	return 0;
#undef PUT
}

int df11_dfl_fullmatch(const char *pattern, const char *s)
{
	size_t cap = 4 * strlen(pattern) + 64;
	char *ere = malloc(cap);
	if (!ere || translate(pattern, ere, cap)) {
		free(ere);
		return -1;
	}
	regex_t re;
	int rc = regcomp(&re, ere, REG_EXTENDED | REG_NOSUB);
	free(ere);
	if (rc)
		return -1;
	rc = regexec(&re, s, 0, NULL, 0);
	regfree(&re);
	return rc == 0;
}
