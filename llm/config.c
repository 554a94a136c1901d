/* config.json of a LlamaForCausalLM / MistralForCausalLM -> df11_llm_config.
 * Defaults are those of transformers' LlamaConfig / MistralConfig, so a
 * config that leaves a key out means what it means to transformers. */
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "common/error.h"
#include "llm/forward.h"

/* An integer field: *out = default if absent or null (def < 0 means
 * required); otherwise it must be an integer in [lo, hi]. */
static df11_result get_int(json_t *root, const char *key, long long def,
			   long long lo, long long hi, int *out)
{
	json_t *v = json_object_get(root, key);
	if (!v || json_is_null(v)) {
		if (def < 0)
			return df11_fail(DF11_BAD_DATA,
					 "config.json: \"%s\" is missing", key);
		*out = (int)def;
		return DF11_OK;
	}
	long long x;
	if (json_is_integer(v)) {
		x = json_integer_value(v);
	} else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
		   fabs(json_real_value(v)) < 1e15) {
		x = (long long)json_real_value(v);  /* 4096.0 written by some tools */
	} else {
		return df11_fail(DF11_BAD_DATA,
				 "config.json: \"%s\" is not an integer", key);
	}
	if (x < lo || x > hi)
		return df11_fail(DF11_BAD_DATA,
				 "config.json: \"%s\" = %lld is outside [%lld, %lld]",
				 key, x, lo, hi);
	*out = (int)x;
	return DF11_OK;
}

static df11_result get_real(json_t *obj, const char *key, double def,
			    double lo, double hi, float *out)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v)) {
		*out = (float)def;
		return DF11_OK;
	}
	if (!json_is_number(v))
		return df11_fail(DF11_BAD_DATA,
				 "config.json: \"%s\" is not a number", key);
	double x = json_number_value(v);
	if (!(x >= lo && x <= hi))
		return df11_fail(DF11_BAD_DATA,
				 "config.json: \"%s\" = %g is outside [%g, %g]",
				 key, x, lo, hi);
	*out = (float)x;
	return DF11_OK;
}

static int get_bool(json_t *obj, const char *key, int def)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v))
		return def;
	if (json_is_boolean(v))
		return json_is_true(v);
	if (json_is_integer(v))
		return json_integer_value(v) != 0;
	return def;
}

/* rope_scaling / rope_parameters: only plain RoPE ("default") is supported;
 * Llama 3's "llama3" or YaRN would silently give wrong logits. */
static df11_result check_rope_type(json_t *obj)
{
	if (!obj || json_is_null(obj))
		return DF11_OK;
	if (!json_is_object(obj))
		return df11_fail(DF11_BAD_DATA,
				 "config.json: rope_scaling is not an object");
	const char *keys[] = {"rope_type", "type"};
	for (int i = 0; i < 2; i++) {
		json_t *t = json_object_get(obj, keys[i]);
		if (t && json_is_string(t) &&
		    strcmp(json_string_value(t), "default") != 0)
			return df11_fail(DF11_UNSUPPORTED,
					 "config.json: rope type \"%s\"",
					 json_string_value(t));
	}
	return DF11_OK;
}

df11_result df11_llm_config_parse(const void *text, size_t size,
				  df11_llm_config *c)
{
	memset(c, 0, sizeof *c);
	json_error_t jerr;
	json_t *root = json_loadb(text, size, 0, &jerr);
	if (!root)
		return df11_fail(DF11_BAD_DATA, "config.json: line %d: %s",
				 jerr.line, jerr.text);
	df11_result r = DF11_OK;
	if (!json_is_object(root)) {
		r = df11_fail(DF11_BAD_DATA, "config.json: not an object");
		goto out;
	}

	/* The architecture: "architectures": ["MistralForCausalLM"], or
	 * model_type when architectures is absent. */
	const char *arch = NULL;
	json_t *archs = json_object_get(root, "architectures");
	if (json_is_array(archs) && json_array_size(archs) > 0 &&
	    json_is_string(json_array_get(archs, 0)))
		arch = json_string_value(json_array_get(archs, 0));
	json_t *mt = json_object_get(root, "model_type");
	const char *model_type = json_is_string(mt) ? json_string_value(mt) : "";
	if (arch ? !strcmp(arch, "MistralForCausalLM") : !strcmp(model_type, "mistral")) {
		c->arch = DF11_ARCH_MISTRAL;
	} else if (arch ? !strcmp(arch, "LlamaForCausalLM") : !strcmp(model_type, "llama")) {
		c->arch = DF11_ARCH_LLAMA;
	} else {
		r = df11_fail(DF11_UNSUPPORTED,
			      "config.json: architecture \"%s\" (df11-run knows "
			      "MistralForCausalLM and LlamaForCausalLM)",
			      arch ? arch : model_type);
		goto out;
	}
	int mistral = c->arch == DF11_ARCH_MISTRAL;

	if ((r = get_int(root, "hidden_size", -1, 1, DF11_LLM_MAX_DIM, &c->hidden)) ||
	    (r = get_int(root, "intermediate_size", -1, 1, DF11_LLM_MAX_DIM, &c->intermediate)) ||
	    (r = get_int(root, "num_hidden_layers", -1, 1, DF11_LLM_MAX_LAYERS, &c->n_layers)) ||
	    (r = get_int(root, "num_attention_heads", -1, 1, DF11_LLM_MAX_HEADS, &c->n_heads)) ||
	    (r = get_int(root, "num_key_value_heads", c->n_heads, 1, DF11_LLM_MAX_HEADS, &c->n_kv_heads)) ||
	    (r = get_int(root, "vocab_size", -1, 1, DF11_LLM_MAX_VOCAB, &c->vocab)) ||
	    (r = get_int(root, "max_position_embeddings", mistral ? 4096 * 32 : 2048,
			 1, 1 << 30, &c->max_pos)))
		goto out;

	/* head_dim: Mistral-Nemo sets 128 while hidden / heads = 160. */
	if ((r = get_int(root, "head_dim", 0, 2, DF11_LLM_MAX_HEAD_DIM, &c->head_dim)))
		goto out;
	if (c->head_dim == 0) {
		if (c->hidden % c->n_heads != 0 || (c->hidden / c->n_heads) < 2) {
			r = df11_fail(DF11_BAD_DATA,
				      "config.json: no head_dim and hidden_size %d "
				      "is not a multiple of num_attention_heads %d",
				      c->hidden, c->n_heads);
			goto out;
		}
		c->head_dim = c->hidden / c->n_heads;
	}
	if (c->head_dim % 2 != 0) {
		r = df11_fail(DF11_BAD_DATA, "config.json: head_dim %d is odd",
			      c->head_dim);
		goto out;
	}
	if (c->n_heads % c->n_kv_heads != 0) {
		r = df11_fail(DF11_BAD_DATA,
			      "config.json: num_attention_heads %d is not a "
			      "multiple of num_key_value_heads %d",
			      c->n_heads, c->n_kv_heads);
		goto out;
	}

	/* MistralConfig's default sliding_window is 4096: absent means 4096,
	 * null means none. Llama has no sliding window. */
	c->sliding_window = 0;
	if (mistral) {
		json_t *sw = json_object_get(root, "sliding_window");
		if (!sw) {
			c->sliding_window = 4096;
		} else if (!json_is_null(sw) &&
			   (r = get_int(root, "sliding_window", 0, 1, 1 << 30,
					&c->sliding_window))) {
			goto out;
		}
	}

	/* transformers >= 5 writes rope_theta inside rope_parameters. */
	json_t *rp = json_object_get(root, "rope_parameters");
	json_t *rope_obj = json_is_object(rp) && json_object_get(rp, "rope_theta") ? rp : root;
	if ((r = get_real(rope_obj, "rope_theta", 10000.0, 1.0, 1e12, &c->rope_theta)) ||
	    (r = get_real(root, "rms_norm_eps", 1e-6, 0.0, 1.0, &c->norm_eps)) ||
	    (r = check_rope_type(json_object_get(root, "rope_scaling"))) ||
	    (r = check_rope_type(rp)))
		goto out;

	c->tied = get_bool(root, "tie_word_embeddings", 0);
	if (get_bool(root, "attention_bias", 0) || get_bool(root, "mlp_bias", 0)) {
		r = df11_fail(DF11_UNSUPPORTED, "config.json: attention or MLP biases");
		goto out;
	}
	json_t *act = json_object_get(root, "hidden_act");
	if (act && json_is_string(act) && strcmp(json_string_value(act), "silu") != 0) {
		r = df11_fail(DF11_UNSUPPORTED, "config.json: hidden_act \"%s\"",
			      json_string_value(act));
		goto out;
	}
out:
	json_decref(root);
	return r;
}
