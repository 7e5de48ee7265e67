/* SPDX-License-Identifier: MPL-2.0 */
/* kl-enforcer configuration: defaults, YAML file, flags, `-n` report. */
#include "enforcer/config.h"

#include "common/knob.h"
#include "common/man.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "bpf/shield.h"
#include "common/log.h"
#include "common/safefile.h"

#define ENF_RUN_DIR_DEFAULT "/run/kernloom"

static const char *const feature_names[ENF_FEAT_MAX] = {
	[ENF_FEAT_LIGHT] = "light",
	[ENF_FEAT_IQ_LEARNING] = "iq-learning",
	[ENF_FEAT_GRAPH_LEARNING] = "graph-learning",
	[ENF_FEAT_GRAPH_ENFORCE] = "graph-enforce",
};

static const char *const mode_names[KL_XDP_MODE_MAX] = {
	[KL_XDP_AUTO] = "auto",
	[KL_XDP_NATIVE] = "native",
	[KL_XDP_GENERIC] = "generic",
};

static const char *const size_keys[ENF_SZ_MAX] = {
	[ENF_SZ_SRC] = "src",
	[ENF_SZ_DENY] = "deny",
	[ENF_SZ_DENY_CIDR] = "deny_cidr",
	[ENF_SZ_ALLOW] = "allow",
	[ENF_SZ_RL] = "rl",
	[ENF_SZ_FLOW] = "flow",
	[ENF_SZ_EDGE] = "edge",
};

static const uint32_t size_defaults[ENF_SZ_MAX] = {
	[ENF_SZ_SRC] = KL_SRC_MAX_DEFAULT,
	[ENF_SZ_DENY] = KL_DENY_MAX_DEFAULT,
	[ENF_SZ_DENY_CIDR] = KL_DENY_LPM_MAX_DEFAULT,
	[ENF_SZ_ALLOW] = KL_ALLOW_MAX_DEFAULT,
	[ENF_SZ_RL] = KL_RL_MAX_DEFAULT,
	[ENF_SZ_FLOW] = KL_FLOW_MAX_DEFAULT,
	[ENF_SZ_EDGE] = KL_EDGE_MAX_DEFAULT,
};

const char *enf_features_name(enum enf_features f)
{
	return (unsigned)f < ENF_FEAT_MAX ? feature_names[f] : "?";
}

int enf_features_parse(const char *s)
{
	for (int i = 0; i < ENF_FEAT_MAX; i++)
		if (strcmp(s, feature_names[i]) == 0)
			return i;
	return -1;
}

bool enf_features_flow(enum enf_features f)
{
	return f == ENF_FEAT_GRAPH_LEARNING || f == ENF_FEAT_GRAPH_ENFORCE;
}

bool enf_features_edge(enum enf_features f)
{
	return f == ENF_FEAT_GRAPH_ENFORCE;
}

const char *enf_xdp_mode_name(enum kl_xdp_mode m)
{
	return (unsigned)m < KL_XDP_MODE_MAX ? mode_names[m] : "?";
}

int enf_xdp_mode_parse(const char *s)
{
	for (int i = 0; i < KL_XDP_MODE_MAX; i++)
		if (strcmp(s, mode_names[i]) == 0)
			return i;
	return -1;
}

const char *enf_size_key(enum enf_size s)
{
	return (unsigned)s < ENF_SZ_MAX ? size_keys[s] : "?";
}

void enf_diag_add(struct enf_diag *d, const char *fmt, ...)
{
	if (d->n >= ENF_MAX_ERRORS) {
		d->dropped++;
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d->msg[d->n], ENF_ERR_LEN, fmt, ap);
	va_end(ap);
	d->n++;
}

static unsigned diag_total(const struct enf_diag *d)
{
	return d->n + d->dropped;
}

void enf_config_defaults(struct enf_config *c)
{
	memset(c, 0, sizeof(*c));
	/* obj stays empty: the object compiled into kl-enforcer. */
	snprintf(c->pin_dir, sizeof(c->pin_dir), "%s", KL_PIN_DIR_DEFAULT);
	snprintf(c->run_dir, sizeof(c->run_dir), "%s", ENF_RUN_DIR_DEFAULT);
	snprintf(c->audit_dir, sizeof(c->audit_dir), "%s", ENF_AUDIT_DIR_DEFAULT);
	snprintf(c->audit_key, sizeof(c->audit_key), "%s", ENF_AUDIT_KEY_DEFAULT);
	c->xdp_mode = KL_XDP_AUTO;
	c->features = ENF_FEAT_IQ_LEARNING;
	for (int i = 0; i < ENF_SZ_MAX; i++)
		c->map_sizes[i] = size_defaults[i];
	c->ephemeral_min = KL_EPHEMERAL_MIN_DEFAULT;
	snprintf(c->decider_user, sizeof(c->decider_user), "%s", ENF_DECIDER_USER_DEFAULT);
	snprintf(c->graph_user, sizeof(c->graph_user), "%s", ENF_GRAPH_USER_DEFAULT);
	snprintf(c->sensor_user, sizeof(c->sensor_user), "%s", ENF_SENSOR_USER_DEFAULT);
	snprintf(c->user, sizeof(c->user), "%s", ENF_USER_DEFAULT);
	c->decider_rate = ENF_DECIDER_RATE_DEFAULT;
	c->decider_max = ENF_DECIDER_MAX_DEFAULT;
	c->graph_rate = ENF_GRAPH_RATE_DEFAULT;
	c->graph_max = ENF_GRAPH_MAX_DEFAULT;
	c->newsrc_min_rate = ENF_NEWSRC_MIN_RATE_DEFAULT;
	c->newsrc_max_ttl = ENF_NEWSRC_MAX_TTL_DEFAULT;
	c->log_level = KL_LOG_INFO;
}

/* ---- value checks shared by file and flags ---- */

int enf_check_ifname(const char *s, char *why, size_t len)
{
	size_t n = strlen(s);
	if (n == 0) {
		snprintf(why, len, "empty interface name");
		return -1;
	}
	if (n >= KL_IFNAMSIZ) {
		snprintf(why, len, "interface name \"%s\" is longer than %d characters", s,
			 KL_IFNAMSIZ - 1);
		return -1;
	}
	if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
		snprintf(why, len, "\"%s\" is not an interface name", s);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		/* The kernel refuses '/', ':' and whitespace; the name also becomes
		 * part of a pin file name, so keep it to printable ASCII. */
		if (ch <= ' ' || ch >= 0x7f || ch == '/' || ch == ':') {
			snprintf(why, len, "interface name \"%s\" contains an invalid character", s);
			return -1;
		}
	}
	return 0;
}

int enf_check_path(const char *s, char *why, size_t len)
{
	if (s[0] == '\0') {
		snprintf(why, len, "empty path");
		return -1;
	}
	if (strlen(s) >= PATH_MAX - 32) {
		snprintf(why, len, "path is too long");
		return -1;
	}
	return 0;
}

/* What useradd(8) accepts by default: a letter or '_' first, then
 * letters, digits, '_', '-', '.'; at most 32 characters. */
int enf_check_user(const char *s, char *why, size_t len)
{
	size_t n = strlen(s);
	if (n == 0 || n >= ENF_USER_LEN) {
		snprintf(why, len, "user name \"%s\" must have 1..%d characters", s,
			 ENF_USER_LEN - 1);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		bool ok = isalpha(ch) || ch == '_' ||
			  (i > 0 && (isdigit(ch) || ch == '-' || ch == '.'));
		if (!ok || ch >= 0x80) {
			snprintf(why, len, "user name \"%s\" has an invalid character at %zu", s, i);
			return -1;
		}
	}
	return 0;
}

/* ---- YAML ---- */

enum topkey {
	K_INTERFACES = 0,
	K_OBJ,
	K_PIN_DIR,
	K_RUN_DIR,
	K_XDP_MODE,
	K_FEATURES,
	K_PROTECT,
	K_MAP_SIZES,
	K_EPHEMERAL_MIN,
	K_DECIDER_USER,
	K_GRAPH_USER,
	K_DECIDER_RATE,
	K_DECIDER_MAX,
	K_GRAPH_RATE,
	K_GRAPH_MAX,
	K_SENSOR_USER,
	K_USER,
	K_NEWSRC_MIN_RATE,
	K_NEWSRC_MAX_TTL,
	K_MAX
};

static const char *const top_keys[K_MAX] = {
	"interfaces", "obj", "pin_dir", "run_dir", "xdp_mode",
	"features", "protect", "map_sizes", "ephemeral_min",
	"decider_user", "graph_user", "decider_rate", "decider_max",
	"graph_rate", "graph_max", "sensor_user", "user", "new_source_min_rate",
	"new_source_max_ttl",
};

struct yctx {
	struct enf_config *c;
	yaml_document_t *doc;
	const char *fname;
	struct enf_diag *d;
};

static unsigned nline(const yaml_node_t *n)
{
	return (unsigned)n->start_mark.line + 1;
}

static const char *node_kind(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_SCALAR_NODE: return "a scalar";
	case YAML_SEQUENCE_NODE: return "a list";
	case YAML_MAPPING_NODE: return "a mapping";
	default: return "nothing";
	}
}

static bool scalar_is_null(const yaml_node_t *n)
{
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	const char *v = (const char *)n->data.scalar.value;
	return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
	       strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/* A non-null scalar string, or NULL after recording why not. */
static const char *want_string(struct yctx *y, const yaml_node_t *n, const char *key,
			       const char *what)
{
	if (n->type != YAML_SCALAR_NODE) {
		enf_diag_add(y->d, "%s:%u: %s: expected %s, got %s", y->fname, nline(n), key,
			     what, node_kind(n));
		return NULL;
	}
	if (scalar_is_null(n)) {
		enf_diag_add(y->d, "%s:%u: %s: expected %s, got an empty value", y->fname,
			     nline(n), key, what);
		return NULL;
	}
	const char *v = (const char *)n->data.scalar.value;
	if (strlen(v) != n->data.scalar.length) {
		enf_diag_add(y->d, "%s:%u: %s: value contains a NUL byte", y->fname, nline(n), key);
		return NULL;
	}
	return v;
}

/* Plain decimal only: a quoted "42" is a string in YAML, and a leading zero
 * would be octal in YAML 1.1, so both are refused rather than guessed. */
static int want_uint(struct yctx *y, const yaml_node_t *n, const char *key, uint64_t min,
		     uint64_t max, uint64_t *out)
{
	const char *v = want_string(y, n, key, "an integer");
	if (!v)
		return -1;
	bool ok = n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && v[0] != '\0' &&
		  !(v[0] == '0' && v[1] != '\0');
	uint64_t x = 0;
	for (const char *p = v; ok && *p; p++) {
		if (!isdigit((unsigned char)*p) || x > (UINT64_MAX - 9) / 10)
			ok = false;
		else
			x = x * 10 + (uint64_t)(*p - '0');
	}
	if (!ok) {
		enf_diag_add(y->d, "%s:%u: %s: expected an integer, got %s\"%s\"", y->fname,
			     nline(n), key,
			     n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? "" : "the string ", v);
		return -1;
	}
	if (x < min || x > max) {
		enf_diag_add(y->d, "%s:%u: %s: %llu is out of range (%llu..%llu)", y->fname,
			     nline(n), key, (unsigned long long)x, (unsigned long long)min,
			     (unsigned long long)max);
		return -1;
	}
	*out = x;
	return 0;
}

static struct enf_origin file_origin(const yaml_node_t *n)
{
	return (struct enf_origin){ .src = ENF_SRC_FILE, .line = nline(n) };
}

static void y_path(struct yctx *y, const yaml_node_t *n, const char *key, char *dst,
		   size_t dstlen, struct enf_origin *o)
{
	char why[128];
	const char *v = want_string(y, n, key, "a path");
	if (!v)
		return;
	if (enf_check_path(v, why, sizeof(why)) < 0) {
		enf_diag_add(y->d, "%s:%u: %s: %s", y->fname, nline(n), key, why);
		return;
	}
	snprintf(dst, dstlen, "%s", v);
	*o = file_origin(n);
}

static void y_user(struct yctx *y, const yaml_node_t *n, const char *key, char *dst,
		   struct enf_origin *o)
{
	char why[128];
	const char *v = want_string(y, n, key, "a user name");
	if (!v)
		return;
	if (enf_check_user(v, why, sizeof(why)) < 0) {
		enf_diag_add(y->d, "%s:%u: %s: %s", y->fname, nline(n), key, why);
		return;
	}
	snprintf(dst, ENF_USER_LEN, "%s", v);
	*o = file_origin(n);
}

static void y_u32(struct yctx *y, const yaml_node_t *n, const char *key, uint64_t min,
		  uint64_t max, uint32_t *dst, struct enf_origin *o)
{
	uint64_t x;
	if (want_uint(y, n, key, min, max, &x) == 0) {
		*dst = (uint32_t)x;
		*o = file_origin(n);
	}
}

static void y_interfaces(struct yctx *y, const yaml_node_t *n)
{
	struct enf_config *c = y->c;
	if (n->type != YAML_SEQUENCE_NODE) {
		enf_diag_add(y->d, "%s:%u: interfaces: expected a list of interface names, got %s",
			     y->fname, nline(n), node_kind(n));
		return;
	}
	c->n_ifaces = 0;
	c->o_ifaces = file_origin(n);
	for (yaml_node_item_t *it = n->data.sequence.items.start;
	     it < n->data.sequence.items.top; it++) {
		yaml_node_t *e = yaml_document_get_node(y->doc, *it);
		char why[128];
		const char *v = want_string(y, e, "interfaces", "an interface name");
		if (!v)
			continue;
		if (enf_check_ifname(v, why, sizeof(why)) < 0) {
			enf_diag_add(y->d, "%s:%u: interfaces: %s", y->fname, nline(e), why);
			continue;
		}
		if (c->n_ifaces == ENF_MAX_IFACES) {
			enf_diag_add(y->d, "%s:%u: interfaces: more than %d interfaces", y->fname,
				     nline(e), ENF_MAX_IFACES);
			return;
		}
		snprintf(c->ifaces[c->n_ifaces++], KL_IFNAMSIZ, "%s", v);
	}
}

static void y_protect(struct yctx *y, const yaml_node_t *n)
{
	struct enf_config *c = y->c;
	if (n->type != YAML_SEQUENCE_NODE) {
		enf_diag_add(y->d, "%s:%u: protect: expected a list of addresses or CIDRs, got %s",
			     y->fname, nline(n), node_kind(n));
		return;
	}
	for (yaml_node_item_t *it = n->data.sequence.items.start;
	     it < n->data.sequence.items.top; it++) {
		yaml_node_t *e = yaml_document_get_node(y->doc, *it);
		char err[128];
		struct kl_addr a;
		const char *v = want_string(y, e, "protect", "an address or CIDR");
		if (!v)
			continue;
		if (kl_cidr_parse(v, &a, err, sizeof(err)) < 0) {
			enf_diag_add(y->d, "%s:%u: protect: \"%s\": %s", y->fname, nline(e), v, err);
			continue;
		}
		if (c->n_protect == ENF_MAX_PROTECT) {
			enf_diag_add(y->d, "%s:%u: protect: more than %d entries", y->fname, nline(e),
				     ENF_MAX_PROTECT);
			return;
		}
		c->protect[c->n_protect++] = (struct enf_protect){ .cidr = a, .o = file_origin(e) };
	}
}

static void y_map_sizes(struct yctx *y, const yaml_node_t *n)
{
	struct enf_config *c = y->c;
	if (n->type != YAML_MAPPING_NODE) {
		enf_diag_add(y->d, "%s:%u: map_sizes: expected a mapping, got %s", y->fname,
			     nline(n), node_kind(n));
		return;
	}
	unsigned seen = 0;
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(y->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(y->doc, p->value);
		const char *ks = want_string(y, k, "map_sizes", "a key");
		if (!ks)
			continue;
		int idx = -1;
		for (int i = 0; i < ENF_SZ_MAX; i++)
			if (strcmp(ks, size_keys[i]) == 0)
				idx = i;
		if (idx < 0) {
			enf_diag_add(y->d,
				     "%s:%u: map_sizes.%s: unknown key (known: src, deny, deny_cidr, "
				     "allow, rl, flow, edge)",
				     y->fname, nline(k), ks);
			continue;
		}
		char key[64];
		snprintf(key, sizeof(key), "map_sizes.%s", ks);
		if (seen & (1u << idx)) {
			enf_diag_add(y->d, "%s:%u: %s: duplicate key", y->fname, nline(k), key);
			continue;
		}
		seen |= 1u << idx;
		uint64_t x;
		if (want_uint(y, v, key, 1, ENF_MAP_SIZE_MAX, &x) == 0) {
			c->map_sizes[idx] = (uint32_t)x;
			c->o_map_sizes[idx] = file_origin(v);
		}
	}
}

static void y_top(struct yctx *y, enum topkey k, const yaml_node_t *v)
{
	struct enf_config *c = y->c;
	const char *s;
	uint64_t x;
	int m;

	switch (k) {
	case K_INTERFACES:
		y_interfaces(y, v);
		break;
	case K_OBJ:
		y_path(y, v, "obj", c->obj, sizeof(c->obj), &c->o_obj);
		break;
	case K_PIN_DIR:
		y_path(y, v, "pin_dir", c->pin_dir, sizeof(c->pin_dir), &c->o_pin_dir);
		break;
	case K_RUN_DIR:
		y_path(y, v, "run_dir", c->run_dir, sizeof(c->run_dir), &c->o_run_dir);
		break;
	case K_XDP_MODE:
		if (!(s = want_string(y, v, "xdp_mode", "native, generic or auto")))
			break;
		if ((m = enf_xdp_mode_parse(s)) < 0) {
			enf_diag_add(y->d,
				     "%s:%u: xdp_mode: unknown mode \"%s\" (native, generic, auto)",
				     y->fname, nline(v), s);
			break;
		}
		c->xdp_mode = (enum kl_xdp_mode)m;
		c->o_xdp_mode = file_origin(v);
		break;
	case K_FEATURES:
		if (!(s = want_string(y, v, "features", "a feature profile")))
			break;
		if ((m = enf_features_parse(s)) < 0) {
			enf_diag_add(y->d,
				     "%s:%u: features: unknown profile \"%s\" (light, iq-learning, "
				     "graph-learning, graph-enforce)",
				     y->fname, nline(v), s);
			break;
		}
		c->features = (enum enf_features)m;
		c->o_features = file_origin(v);
		break;
	case K_PROTECT:
		y_protect(y, v);
		break;
	case K_MAP_SIZES:
		y_map_sizes(y, v);
		break;
	case K_EPHEMERAL_MIN:
		if (want_uint(y, v, "ephemeral_min", 0, 65535, &x) == 0) {
			c->ephemeral_min = (uint32_t)x;
			c->o_ephemeral_min = file_origin(v);
		}
		break;
	case K_DECIDER_USER:
		y_user(y, v, "decider_user", c->decider_user, &c->o_decider_user);
		break;
	case K_GRAPH_USER:
		y_user(y, v, "graph_user", c->graph_user, &c->o_graph_user);
		break;
	case K_SENSOR_USER:
		y_user(y, v, "sensor_user", c->sensor_user, &c->o_sensor_user);
		break;
	case K_USER:
		y_user(y, v, "user", c->user, &c->o_user);
		break;
	case K_DECIDER_RATE:
		y_u32(y, v, "decider_rate", 1, ENF_QUOTA_RATE_MAX, &c->decider_rate,
		      &c->o_decider_rate);
		break;
	case K_DECIDER_MAX:
		y_u32(y, v, "decider_max", 1, ENF_QUOTA_MAX_MAX, &c->decider_max, &c->o_decider_max);
		break;
	case K_GRAPH_RATE:
		y_u32(y, v, "graph_rate", 1, ENF_QUOTA_RATE_MAX, &c->graph_rate, &c->o_graph_rate);
		break;
	case K_GRAPH_MAX:
		y_u32(y, v, "graph_max", 1, ENF_QUOTA_MAX_MAX, &c->graph_max, &c->o_graph_max);
		break;
	case K_NEWSRC_MIN_RATE:
		y_u32(y, v, "new_source_min_rate", 0, ENF_NEWSRC_RATE_MAX, &c->newsrc_min_rate,
		      &c->o_newsrc_min_rate);
		break;
	case K_NEWSRC_MAX_TTL:
		y_u32(y, v, "new_source_max_ttl", 0, 86400, &c->newsrc_max_ttl,
		      &c->o_newsrc_max_ttl);
		break;
	case K_MAX:
		break;
	}
}

unsigned enf_config_parse_yaml(struct enf_config *c, const char *text, size_t len,
			       const char *fname, struct enf_diag *d)
{
	unsigned before = diag_total(d);
	yaml_parser_t parser;
	yaml_document_t doc;

	if (!yaml_parser_initialize(&parser)) {
		enf_diag_add(d, "%s: cannot initialise the YAML parser", fname);
		return 1;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		enf_diag_add(d, "%s:%zu: YAML syntax error: %s%s%s", fname,
			     parser.problem_mark.line + 1,
			     parser.problem ? parser.problem : "unknown problem",
			     parser.context ? " " : "", parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		return diag_total(d) - before;
	}
	snprintf(c->file, sizeof(c->file), "%s", fname);

	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (root && !(root->type == YAML_SCALAR_NODE && scalar_is_null(root))) {
		struct yctx y = { .c = c, .doc = &doc, .fname = fname, .d = d };
		if (root->type != YAML_MAPPING_NODE) {
			enf_diag_add(d, "%s:%u: expected a mapping of settings at the top level, got %s",
				     fname, nline(root), node_kind(root));
		} else {
			unsigned seen = 0;
			for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
			     p < root->data.mapping.pairs.top; p++) {
				yaml_node_t *k = yaml_document_get_node(&doc, p->key);
				yaml_node_t *v = yaml_document_get_node(&doc, p->value);
				const char *ks = want_string(&y, k, "(top level)", "a key");
				if (!ks)
					continue;
				int idx = -1;
				for (int i = 0; i < K_MAX; i++)
					if (strcmp(ks, top_keys[i]) == 0)
						idx = i;
				if (idx < 0) {
					enf_diag_add(d,
						     "%s:%u: %s: unknown key (known: interfaces, obj, "
						     "pin_dir, run_dir, xdp_mode, features, protect, "
						     "map_sizes, ephemeral_min, decider_user, graph_user, "
						     "decider_rate, decider_max, graph_rate, graph_max, "
						     "sensor_user, user, new_source_min_rate, "
						     "new_source_max_ttl)",
						     fname, nline(k), ks);
					continue;
				}
				if (seen & (1u << idx)) {
					enf_diag_add(d, "%s:%u: %s: duplicate key", fname, nline(k), ks);
					continue;
				}
				seen |= 1u << idx;
				y_top(&y, (enum topkey)idx, v);
			}
		}
	}
	yaml_document_delete(&doc);

	/* One document only: a second one would be silently ignored otherwise. */
	yaml_document_t extra;
	if (yaml_parser_load(&parser, &extra)) {
		yaml_node_t *r2 = yaml_document_get_root_node(&extra);
		if (r2)
			enf_diag_add(d, "%s:%u: more than one YAML document", fname, nline(r2));
		yaml_document_delete(&extra);
	}
	yaml_parser_delete(&parser);
	return diag_total(d) - before;
}

unsigned enf_config_load_file(struct enf_config *c, const char *path, struct enf_diag *d)
{
	char *buf = NULL, why[512];
	size_t len = 0;
	/* The file is small by design; cap it so a wrong path (a log, a device)
	 * cannot make the privileged process read without bound. No link, FIFO
	 * or hard link is followed (common/safefile.h). */
	if (kl_safe_read_file(path, 1u << 20, KL_SAFE_OWNED, &buf, &len, why, sizeof(why)) < 0) {
		enf_diag_add(d, "%s%s", why,
			     errno == EFBIG ? "; not a kl-enforcer config" : "");
		return 1;
	}
	unsigned n = enf_config_parse_yaml(c, buf, len, path, d);
	free(buf);
	return n;
}

/* ---- flags ---- */

enum {
	OPT_IFACE = 256,
	OPT_OBJ,
	OPT_PIN_DIR,
	OPT_RUN_DIR,
	OPT_XDP_MODE,
	OPT_FEATURES,
	OPT_PROTECT,
	OPT_DETACH,
	OPT_FORCE,
	OPT_LOG_LEVEL,
	OPT_CONFIG,
	OPT_DECIDER_USER,
	OPT_SENSOR_USER,
	OPT_GRAPH_USER,
	OPT_AUDIT_DIR,
	OPT_AUDIT_KEY,
	OPT_USER,
	OPT_METRICS_FILE,
	OPT_HELP_MAN,
	OPT_HELP_MAN_FILE,
};

static const struct option long_opts[] = {
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "iface", required_argument, NULL, OPT_IFACE },
	{ "obj", required_argument, NULL, OPT_OBJ },
	{ "pin-dir", required_argument, NULL, OPT_PIN_DIR },
	{ "run-dir", required_argument, NULL, OPT_RUN_DIR },
	{ "xdp-mode", required_argument, NULL, OPT_XDP_MODE },
	{ "features", required_argument, NULL, OPT_FEATURES },
	{ "protect", required_argument, NULL, OPT_PROTECT },
	{ "detach-on-exit", no_argument, NULL, OPT_DETACH },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "decider-user", required_argument, NULL, OPT_DECIDER_USER },
	{ "sensor-user", required_argument, NULL, OPT_SENSOR_USER },
	{ "graph-user", required_argument, NULL, OPT_GRAPH_USER },
	{ "audit-dir", required_argument, NULL, OPT_AUDIT_DIR },
	{ "audit-key", required_argument, NULL, OPT_AUDIT_KEY },
	{ "user", required_argument, NULL, OPT_USER },
	{ "metrics-file", required_argument, NULL, OPT_METRICS_FILE },
	{ "config-check", no_argument, NULL, 'n' },
	{ "help", no_argument, NULL, 'h' },
	{ "help-man", no_argument, NULL, OPT_HELP_MAN },
	{ "help-man-file", no_argument, NULL, OPT_HELP_MAN_FILE },
	{ NULL, 0, NULL, 0 },
};

void enf_usage(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s [--config FILE] [--iface IF]... [--obj PATH] [--pin-dir DIR]\n"
		"       [--run-dir DIR] [--xdp-mode native|generic|auto]\n"
		"       [--features light|iq-learning|graph-learning|graph-enforce]\n"
		"       [--protect CIDR]... [--force] [--detach-on-exit] [--log-level L]\n"
		"       [--user USER] [--decider-user USER] [--graph-user USER]\n"
		"       [--sensor-user USER] [--audit-dir DIR] [--audit-key FILE|DIR]\n"
		"       [--metrics-file FILE] [-n|--config-check] [--help]\n"
		"       %s --help-man | --help-man-file   kl-enforcer(8) | kernloom.yaml(5) (roff)\n"
		"\n"
		"Loads the Kernloom XDP shield, attaches it to each --iface, keeps its maps\n"
		"pinned under --pin-dir and serves klctl on <run-dir>/enforcer/enforcer.sock,\n"
		"the decider on enforcer/enforcer-decider.sock and graphd on\n"
		"enforcer/enforcer-graphd.sock.\n"
		"\n"
		"  --config FILE      YAML settings (default " ENF_CONFIG_DEFAULT " when it exists;\n"
		"                     \"\" none; flags override them; --protect adds)\n"
		"  --iface IF         attach to IF (repeatable)\n"
		"  --obj PATH         load this BPF object instead of the built-in one (its maps\n"
		"                     and settings must be laid out the same)\n"
		"  --pin-dir DIR      map and link pins (default %s)\n"
		"  --run-dir DIR      root of the role socket directories (default %s)\n"
		"  --xdp-mode M       native, generic or auto (driver, then generic; default)\n"
		"  --features P       feature profile (default iq-learning)\n"
		"  --protect CIDR     never deny or rate-limit these addresses (repeatable)\n"
		"  --force            replace another XDP program found on an --iface\n"
		"  --detach-on-exit   detach and unpin the links on SIGTERM (maps stay)\n"
		"  --log-level L      debug, info, warn, error (default info)\n"
		"  --user U           started as root, become U keeping only CAP_BPF,\n"
		"                     CAP_NET_ADMIN, CAP_PERFMON (default %s)\n"
		"  --decider-user U   user whose processes may connect as the decider\n"
		"                     (default %s; root and our own uid always may)\n"
		"  --graph-user U     the same for graphd (default %s)\n"
		"  --sensor-user U    its group may read the telemetry pins (default %s)\n"
		"  --audit-dir DIR    the audit trail (default %s)\n"
		"  --audit-key F      its Ed25519 signing key, or a directory for audit.key\n"
		"                     (default %s; created at first start)\n"
		"  --metrics-file F   Prometheus metrics (node_exporter textfile format),\n"
		"                     replaced atomically every second: requests applied and\n"
		"                     refused, entries per map, XDP verdict counters\n"
		"                     (default: none)\n"
		"  -n, --config-check print the effective configuration and exit\n",
		prog, prog, KL_PIN_DIR_DEFAULT, ENF_RUN_DIR_DEFAULT, ENF_USER_DEFAULT,
		ENF_DECIDER_USER_DEFAULT, ENF_GRAPH_USER_DEFAULT, ENF_SENSOR_USER_DEFAULT,
		ENF_AUDIT_DIR_DEFAULT, ENF_AUDIT_KEY_DEFAULT);
}

int enf_cli_parse(int argc, char **argv, struct enf_cli *cli, struct enf_diag *d)
{
	unsigned before = diag_total(d);
	memset(cli, 0, sizeof(*cli));
	optind = 0; /* full re-initialisation of getopt (glibc) */
	opterr = 0;
	int ch;
	while ((ch = getopt_long(argc, argv, ":nh", long_opts, NULL)) != -1) {
		switch (ch) {
		case OPT_CONFIG: cli->config = optarg; break;
		case OPT_IFACE:
			if (cli->n_ifaces == ENF_MAX_IFACES)
				enf_diag_add(d, "--iface: more than %d interfaces", ENF_MAX_IFACES);
			else
				cli->ifaces[cli->n_ifaces++] = optarg;
			break;
		case OPT_OBJ: cli->obj = optarg; break;
		case OPT_PIN_DIR: cli->pin_dir = optarg; break;
		case OPT_RUN_DIR: cli->run_dir = optarg; break;
		case OPT_XDP_MODE: cli->xdp_mode = optarg; break;
		case OPT_FEATURES: cli->features = optarg; break;
		case OPT_PROTECT:
			if (cli->n_protect == ENF_MAX_PROTECT)
				enf_diag_add(d, "--protect: more than %d entries", ENF_MAX_PROTECT);
			else
				cli->protect[cli->n_protect++] = optarg;
			break;
		case OPT_DETACH: cli->detach_on_exit = true; break;
		case OPT_FORCE: cli->force = true; break;
		case OPT_LOG_LEVEL: cli->log_level = optarg; break;
		case OPT_DECIDER_USER: cli->decider_user = optarg; break;
		case OPT_SENSOR_USER: cli->sensor_user = optarg; break;
		case OPT_GRAPH_USER: cli->graph_user = optarg; break;
		case OPT_AUDIT_DIR: cli->audit_dir = optarg; break;
		case OPT_AUDIT_KEY: cli->audit_key = optarg; break;
		case OPT_USER: cli->user = optarg; break;
		case OPT_METRICS_FILE: cli->metrics_file = optarg; break;
		case 'n': cli->check_only = true; break;
		case 'h': cli->help = true; break;
		case OPT_HELP_MAN: cli->help_man = 1; break;
		case OPT_HELP_MAN_FILE: cli->help_man = 2; break;
		case ':':
			enf_diag_add(d, "%s: missing value", argv[optind - 1]);
			break;
		default:
			if (optopt && optopt < 256)
				enf_diag_add(d, "-%c: unknown option", optopt);
			else
				enf_diag_add(d, "%s: unknown option", argv[optind - 1]);
			break;
		}
	}
	for (int i = optind; i < argc; i++)
		enf_diag_add(d, "%s: unexpected argument (kl-enforcer takes only options)", argv[i]);
	return diag_total(d) == before ? 0 : -1;
}

static const struct enf_origin flag_origin = { .src = ENF_SRC_FLAG, .line = 0 };

static void cli_path(const char *v, const char *flag, char *dst, size_t len,
		     struct enf_origin *o, struct enf_diag *d)
{
	char why[128];
	if (!v)
		return;
	if (enf_check_path(v, why, sizeof(why)) < 0) {
		enf_diag_add(d, "%s: %s", flag, why);
		return;
	}
	snprintf(dst, len, "%s", v);
	*o = flag_origin;
}

unsigned enf_config_apply_cli(struct enf_config *c, const struct enf_cli *cli,
			      struct enf_diag *d)
{
	unsigned before = diag_total(d);
	char why[160];

	if (cli->n_ifaces) {
		c->n_ifaces = 0;
		c->o_ifaces = flag_origin;
		for (size_t i = 0; i < cli->n_ifaces; i++) {
			if (enf_check_ifname(cli->ifaces[i], why, sizeof(why)) < 0) {
				enf_diag_add(d, "--iface: %s", why);
				continue;
			}
			snprintf(c->ifaces[c->n_ifaces++], KL_IFNAMSIZ, "%s", cli->ifaces[i]);
		}
	}
	cli_path(cli->obj, "--obj", c->obj, sizeof(c->obj), &c->o_obj, d);
	cli_path(cli->pin_dir, "--pin-dir", c->pin_dir, sizeof(c->pin_dir), &c->o_pin_dir, d);
	cli_path(cli->run_dir, "--run-dir", c->run_dir, sizeof(c->run_dir), &c->o_run_dir, d);
	cli_path(cli->audit_dir, "--audit-dir", c->audit_dir, sizeof(c->audit_dir),
		 &c->o_audit_dir, d);
	cli_path(cli->audit_key, "--audit-key", c->audit_key, sizeof(c->audit_key),
		 &c->o_audit_key, d);
	cli_path(cli->metrics_file, "--metrics-file", c->metrics_file, sizeof(c->metrics_file),
		 &c->o_metrics_file, d);
	if (cli->xdp_mode) {
		int m = enf_xdp_mode_parse(cli->xdp_mode);
		if (m < 0) {
			enf_diag_add(d, "--xdp-mode: unknown mode \"%s\" (native, generic, auto)",
				     cli->xdp_mode);
		} else {
			c->xdp_mode = (enum kl_xdp_mode)m;
			c->o_xdp_mode = flag_origin;
		}
	}
	if (cli->features) {
		int f = enf_features_parse(cli->features);
		if (f < 0) {
			enf_diag_add(d,
				     "--features: unknown profile \"%s\" (light, iq-learning, "
				     "graph-learning, graph-enforce)",
				     cli->features);
		} else {
			c->features = (enum enf_features)f;
			c->o_features = flag_origin;
		}
	}
	for (size_t i = 0; i < cli->n_protect; i++) {
		struct kl_addr a;
		if (kl_cidr_parse(cli->protect[i], &a, why, sizeof(why)) < 0) {
			enf_diag_add(d, "--protect: \"%s\": %s", cli->protect[i], why);
			continue;
		}
		if (c->n_protect == ENF_MAX_PROTECT) {
			enf_diag_add(d, "--protect: more than %d entries in total", ENF_MAX_PROTECT);
			break;
		}
		c->protect[c->n_protect++] = (struct enf_protect){ .cidr = a, .o = flag_origin };
	}
	const struct {
		const char *v, *flag;
		char *dst;
		struct enf_origin *o;
	} users[] = {
		{ cli->decider_user, "--decider-user", c->decider_user, &c->o_decider_user },
		{ cli->graph_user, "--graph-user", c->graph_user, &c->o_graph_user },
		{ cli->sensor_user, "--sensor-user", c->sensor_user, &c->o_sensor_user },
		{ cli->user, "--user", c->user, &c->o_user },
	};
	for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
		if (!users[i].v)
			continue;
		if (enf_check_user(users[i].v, why, sizeof(why)) < 0) {
			enf_diag_add(d, "%s: %s", users[i].flag, why);
			continue;
		}
		snprintf(users[i].dst, ENF_USER_LEN, "%s", users[i].v);
		*users[i].o = flag_origin;
	}
	if (cli->log_level) {
		int l = kl_log_level_parse(cli->log_level);
		if (l < 0)
			enf_diag_add(d, "--log-level: unknown level \"%s\" (debug, info, warn, error)",
				     cli->log_level);
		else
			c->log_level = l;
	}
	c->detach_on_exit = cli->detach_on_exit;
	c->force = cli->force;
	c->check_only = cli->check_only;
	return diag_total(d) - before;
}

static void origin_text(const struct enf_config *c, const struct enf_origin *o, char *buf,
			size_t len)
{
	switch (o->src) {
	case ENF_SRC_FILE: snprintf(buf, len, "%s:%u", c->file, o->line); break;
	case ENF_SRC_FLAG: snprintf(buf, len, "flag"); break;
	default: snprintf(buf, len, "default"); break;
	}
}

/* Where a value was set, as an error prefix: "FILE:LINE: key" or "--flag". */
static void place_text(const struct enf_config *c, const struct enf_origin *o, const char *key,
		       const char *flag, char *buf, size_t len)
{
	if (o->src == ENF_SRC_FLAG)
		snprintf(buf, len, "%s", flag);
	else if (o->src == ENF_SRC_FILE)
		snprintf(buf, len, "%s:%u: %s", c->file, o->line, key);
	else
		snprintf(buf, len, "%s", key);
}

uint32_t enf_operator_reserve(uint32_t max_entries)
{
	uint32_t r = max_entries / 16;
	if (r < 1)
		r = 1;
	return r > 4096 ? 4096 : r;
}

/* A role's total quota must fit in each map it writes, after the
 * operator's reserve: else the role may fill a map it shares with the
 * operator (graph_max 100000 against a 65536-entry edge map did). */
static void check_quota_fits(const struct enf_config *c, struct enf_diag *d, const char *qkey,
			     uint32_t quota, const struct enf_origin *qo, enum enf_size sz)
{
	uint32_t size = c->map_sizes[sz], reserve = enf_operator_reserve(size);
	if (quota <= size - reserve)
		return;
	char o1[PATH_MAX + 32], o2[PATH_MAX + 32];
	origin_text(c, qo, o1, sizeof(o1));
	origin_text(c, &c->o_map_sizes[sz], o2, sizeof(o2));
	enf_diag_add(d, "%s %u (%s) does not fit in one map: map_sizes.%s %u (%s) minus the "
		     "operator's reserve %u leaves %u; lower %s or raise map_sizes.%s",
		     qkey, quota, o1, enf_size_key(sz), size, o2, reserve, size - reserve, qkey,
		     enf_size_key(sz));
}

unsigned enf_config_validate(const struct enf_config *c, struct enf_diag *d)
{
	unsigned before = diag_total(d);
	char o1[PATH_MAX + 32], o2[PATH_MAX + 32];

	for (size_t i = 0; i < c->n_ifaces; i++)
		for (size_t j = i + 1; j < c->n_ifaces; j++)
			if (strcmp(c->ifaces[i], c->ifaces[j]) == 0) {
				place_text(c, &c->o_ifaces, "interfaces", "--iface", o1, sizeof(o1));
				enf_diag_add(d, "%s: \"%s\" is listed twice", o1, c->ifaces[i]);
			}
	/* The same protected CIDR twice is harmless but almost always a
	 * copy-paste slip between file and flags; say so instead of merging. */
	for (size_t i = 0; i < c->n_protect; i++)
		for (size_t j = i + 1; j < c->n_protect; j++) {
			const struct kl_addr *a = &c->protect[i].cidr, *b = &c->protect[j].cidr;
			if (a->family == b->family && a->prefixlen == b->prefixlen &&
			    memcmp(a->addr, b->addr, sizeof(a->addr)) == 0) {
				char t[KL_ADDR_STRLEN];
				origin_text(c, &c->protect[i].o, o1, sizeof(o1));
				place_text(c, &c->protect[j].o, "protect", "--protect", o2, sizeof(o2));
				enf_diag_add(d, "%s: %s is already listed (%s)", o2,
					     kl_addr_format(b, t, sizeof(t)), o1);
			}
		}
	/* The decider writes the deny and rate-limit maps, graphd the edge
	 * maps (each per family; one family may take a role's whole quota). */
	check_quota_fits(c, d, "decider_max", c->decider_max, &c->o_decider_max, ENF_SZ_DENY);
	check_quota_fits(c, d, "decider_max", c->decider_max, &c->o_decider_max, ENF_SZ_RL);
	check_quota_fits(c, d, "graph_max", c->graph_max, &c->o_graph_max, ENF_SZ_EDGE);
	return diag_total(d) - before;
}

unsigned enf_config_build(struct enf_config *c, const struct enf_cli *cli, struct enf_diag *d)
{
	unsigned n = 0;
	enf_config_defaults(c);
	/* Named by flag it must exist ("" = none); the default one may not. */
	if (cli->config != NULL && cli->config[0] != '\0')
		n += enf_config_load_file(c, cli->config, d);
	else if (cli->config == NULL && access(ENF_CONFIG_DEFAULT, F_OK) == 0)
		n += enf_config_load_file(c, ENF_CONFIG_DEFAULT, d);
	n += enf_config_apply_cli(c, cli, d);
	n += enf_config_validate(c, d);
	return n;
}

/* ---- -n report ---- */

/* Room for any value kl_yaml_scalar renders: a path (< PATH_MAX) with every
 * byte escaped as \xNN, the quotes and the NUL, so no value is ever cut
 * (a cut value would make the -n report unparseable or, worse, mean
 * something else). */
#define RENDER_MAX (4 * PATH_MAX + 4)


static void line(FILE *out, const struct enf_config *c, const struct enf_origin *o,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void line(FILE *out, const struct enf_config *c, const struct enf_origin *o,
		 const char *fmt, ...)
{
	char body[RENDER_MAX + 64], org[PATH_MAX + 16];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	if (!o) {
		fprintf(out, "%s\n", body);
		return;
	}
	origin_text(c, o, org, sizeof(org));
	fprintf(out, "%-40s # %s\n", body, org);
}

void enf_config_render(const struct enf_config *c, FILE *out)
{
	char v[RENDER_MAX];
	/* Each name quoted and escaped (printable only: at most 2x), ", ". */
	char list[ENF_MAX_IFACES * (2 * KL_IFNAMSIZ + 4 + 2) + 8];

	fprintf(out, "# kl-enforcer effective configuration\n");
	size_t o = 0;
	o += (size_t)snprintf(list + o, sizeof(list) - o, "[");
	for (size_t i = 0; i < c->n_ifaces; i++) {
		char q[2 * KL_IFNAMSIZ + 4];
		kl_yaml_scalar(c->ifaces[i], q, sizeof(q));
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", i ? ", " : "", q);
	}
	snprintf(list + o, sizeof(list) - o, "]");
	line(out, c, &c->o_ifaces, "interfaces: %s", list);
	if (c->obj[0]) {
		kl_yaml_scalar(c->obj, v, sizeof(v));
		line(out, c, &c->o_obj, "obj: %s", v);
	} else {
		fputs("# obj: not set: the shield object built into kl-enforcer\n", out);
	}
	kl_yaml_scalar(c->pin_dir, v, sizeof(v));
	line(out, c, &c->o_pin_dir, "pin_dir: %s", v);
	kl_yaml_scalar(c->run_dir, v, sizeof(v));
	line(out, c, &c->o_run_dir, "run_dir: %s", v);
	line(out, c, &c->o_xdp_mode, "xdp_mode: %s", enf_xdp_mode_name(c->xdp_mode));
	line(out, c, &c->o_features, "features: %s", enf_features_name(c->features));
	/* Always protected from the decider and graphd, list or not: this
	 * host's own interface addresses (re-read while running) and
	 * loopback. With no list, that is all, and the operator should know. */
	if (c->n_protect == 0) {
		static const struct enf_origin def = { 0, 0 };
		fputs("# protect is empty: only this host's own addresses and loopback are protected\n"
		      "# from the decider and graphd; nothing else (not the operator's address)\n", out);
		line(out, c, &def, "protect: []");
	} else {
		fputs("# protect: besides these, this host's own addresses and loopback\n", out);
		line(out, c, NULL, "protect:");
		for (size_t i = 0; i < c->n_protect; i++) {
			/* A plain "2001:db8::" would be read back as a mapping
			 * key: quote an address that ends in ':'. */
			char t[KL_ADDR_STRLEN];
			size_t n = strlen(kl_addr_format(&c->protect[i].cidr, t, sizeof(t)));
			const char *q = n > 0 && t[n - 1] == ':' ? "\"" : "";
			line(out, c, &c->protect[i].o, "  - %s%s%s", q, t, q);
		}
	}
	line(out, c, NULL, "map_sizes:");
	for (int i = 0; i < ENF_SZ_MAX; i++)
		line(out, c, &c->o_map_sizes[i], "  %s: %u", size_keys[i], c->map_sizes[i]);
	line(out, c, &c->o_ephemeral_min, "ephemeral_min: %u", c->ephemeral_min);
	line(out, c, &c->o_decider_user, "decider_user: %s", c->decider_user);
	line(out, c, &c->o_decider_rate, "decider_rate: %u", c->decider_rate);
	line(out, c, &c->o_decider_max, "decider_max: %u", c->decider_max);
	line(out, c, &c->o_graph_user, "graph_user: %s", c->graph_user);
	line(out, c, &c->o_graph_rate, "graph_rate: %u", c->graph_rate);
	line(out, c, &c->o_graph_max, "graph_max: %u", c->graph_max);
	line(out, c, &c->o_sensor_user, "sensor_user: %s", c->sensor_user);
	line(out, c, &c->o_user, "user: %s", c->user);
	line(out, c, &c->o_newsrc_min_rate, "new_source_min_rate: %u", c->newsrc_min_rate);
	line(out, c, &c->o_newsrc_max_ttl, "new_source_max_ttl: %u", c->newsrc_max_ttl);
	static const char *const lvl[] = { "debug", "info", "warn", "error" };
	fprintf(out, "# flags only: force=%s detach_on_exit=%s log_level=%s\n",
		c->force ? "yes" : "no", c->detach_on_exit ? "yes" : "no",
		(unsigned)c->log_level < 4 ? lvl[c->log_level] : "?");
}

/* ---- reload ---- */

/* The -n report as "key: value" lines without their origin comments; a
 * setting whose line differs between two reports changed. */
static char *report_lines(const struct enf_config *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	if (m == NULL)
		return NULL;
	enf_config_render(c, m);
	if (fclose(m) != 0) {
		free(buf);
		return NULL;
	}
	for (char *l = buf; l != NULL && *l != '\0';) {
		char *nl = strchr(l, '\n');
		char *hash = strstr(l, " # ");
		if (hash != NULL && (nl == NULL || hash < nl)) {
			/* blank the comment out up to the line's end */
			for (char *p = hash; p < (nl ? nl : l + strlen(l)); p++)
				*p = ' ';
		}
		l = nl ? nl + 1 : NULL;
	}
	return buf;
}

static bool has_line(const char *text, const char *line, size_t n)
{
	for (const char *l = text; l != NULL && *l != '\0';) {
		const char *nl = strchr(l, '\n');
		size_t ln = nl ? (size_t)(nl - l) : strlen(l);
		while (ln > 0 && l[ln - 1] == ' ')
			ln--;
		if (ln == n && memcmp(l, line, n) == 0)
			return true;
		l = nl ? nl + 1 : NULL;
	}
	return false;
}

unsigned enf_config_reload(struct enf_config *run, const struct enf_config *fresh)
{
	unsigned live = 0;

	if (run->newsrc_min_rate != fresh->newsrc_min_rate ||
	    run->newsrc_max_ttl != fresh->newsrc_max_ttl) {
		kl_info("reload: new_source_min_rate %u -> %u, new_source_max_ttl %u -> %u",
			run->newsrc_min_rate, fresh->newsrc_min_rate, run->newsrc_max_ttl,
			fresh->newsrc_max_ttl);
		run->newsrc_min_rate = fresh->newsrc_min_rate;
		run->o_newsrc_min_rate = fresh->o_newsrc_min_rate;
		run->newsrc_max_ttl = fresh->newsrc_max_ttl;
		run->o_newsrc_max_ttl = fresh->o_newsrc_max_ttl;
		live++;
	}
	/* Everything else: name each changed line of the report. */
	char *a = report_lines(run), *b = report_lines(fresh);
	for (const char *l = b; a != NULL && l != NULL && *l != '\0';) {
		const char *nl = strchr(l, '\n');
		size_t n = nl ? (size_t)(nl - l) : strlen(l);
		while (n > 0 && l[n - 1] == ' ')
			n--;
		if (n > 0 && l[0] != '#' && !has_line(a, l, n) && l[n - 1] != ':') {
			size_t ind = strspn(l, " ");
			kl_warn("reload: %.*s needs a restart; keeping the running value",
				(int)(n - ind), l + ind);
		}
		l = nl ? nl + 1 : NULL;
	}
	for (const char *l = a; b != NULL && l != NULL && *l != '\0';) {
		const char *nl = strchr(l, '\n');
		size_t n = nl ? (size_t)(nl - l) : strlen(l);
		while (n > 0 && l[n - 1] == ' ')
			n--;
		size_t ind = strspn(l, " ");
		if (n > ind + 2 && ind > 0 && l[ind] == '-' && l[ind + 1] == ' ' && !has_line(b, l, n))
			kl_warn("reload: %.*s is gone from the file; it stays until a restart",
				(int)(n - ind), l + ind);
		l = nl ? nl + 1 : NULL;
	}
	free(a);
	free(b);
	return live;
}

/* ---- reference pages ---- */

/* Text a function prints, as a roff no-fill block. */
static void nofill(FILE *f, void (*print)(FILE *, const void *), const void *arg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	if (m == NULL)
		return;
	print(m, arg);
	if (fclose(m) == 0 && buf != NULL) {
		fputs(".nf\n", f);
		kl_man_puts(f, buf);
		fputs(".fi\n", f);
	}
	free(buf);
}

static void print_usage(FILE *f, const void *arg)
{
	(void)arg;
	enf_usage(f, "kl-enforcer");
}

static void print_defaults(FILE *f, const void *arg)
{
	(void)arg;
	static struct enf_config c;
	enf_config_defaults(&c);
	enf_config_render(&c, f);
}

void enf_help_man(FILE *f)
{
	static const struct kl_manpage mp = {
		.name = "kl-enforcer",
		.section = 8,
		.summary = "Kernloom XDP shield loader and the one privileged process",
	};
	kl_man_page_header(&mp, f);
	fputs(".SH SYNOPSIS\n.B kl-enforcer\n.RI [ options ]\n.br\n.B kl-enforcer \\-n\n"
	      ".RI [ options ]\n.SH DESCRIPTION\nLoads the XDP shield over its pinned maps, "
	      "attaches it to each interface, then serves klctl, kl\\-decider and kl\\-graphd, "
	      "each on its own socket, with only CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON left. "
	      "Settings come from the built\\-in values, \\fB\\-\\-config\\fR (keys in "
	      "\\fBkernloom.yaml\\fR(5)) and the command line, in that order; "
	      "\\fB\\-n\\fR prints the result with each value's origin. SIGHUP reads them "
	      "again: a bad file keeps the running configuration; new_source_min_rate and "
	      "new_source_max_ttl change at once, any other change is logged as needing a "
	      "restart.\n"
	      ".SH OPTIONS\n", f);
	nofill(f, print_usage, NULL);
	fputs(".SH FILES\n.TP\n.I /etc/kernloom/enforcer.yaml\nThe settings "
	      "(\\fB\\-\\-config\\fR; the unit passes it).\n.TP\n.I /sys/fs/bpf/kernloom/\n"
	      "The pinned maps and links.\n"
	      ".SH EXIT STATUS\n0 ok; 1 a refused configuration (every problem named with file, "
	      "line and key) or a failure; 2 a usage error.\n"
	      ".SH SEE ALSO\n\\fBkernloom.yaml\\fR(5), \\fBklctl\\fR(8), "
	      "\\fBkl\\-sensor\\fR(8)\n", f);
}

void enf_help_man_file(FILE *f)
{
	static const struct kl_manpage mp = {
		.name = "kernloom.yaml",
		.section = 5,
		.summary = "configuration files of kl-enforcer, kl-sensor and kl-graphd",
	};
	kl_man_page_header(&mp, f);
	fputs(".SH SYNOPSIS\n/etc/kernloom/enforcer.yaml, /etc/kernloom/sensor.yaml, "
	      "/etc/kernloom/graphd.yaml\n.SH DESCRIPTION\nEach file is one YAML mapping of "
	      "settings; every key is optional and a command\\-line flag overrides it. Unknown "
	      "keys, duplicate keys, wrong types and out\\-of\\-range values are refused, each "
	      "named with file, line and key. \\fBBIN \\-n\\fR prints the effective "
	      "configuration with each value's origin. kl\\-graphd also reads spec.graph of the "
	      "PDPConfig (\\fBkernloom\\-pdp\\fR(5)); its own file overrides that. SIGHUP makes "
	      "each daemon read its files again.\n"
	      ".SH ENFORCER.YAML\nThe keys and their built\\-in values, as "
	      "\\fBkl\\-enforcer \\-n\\fR prints them:\n", f);
	nofill(f, print_defaults, NULL);
	/* The other daemons' tables are theirs (each binary links only its own
	 * code): their pages list every key beside its flag. */
	fputs(".SH SENSOR.YAML, GRAPHD.YAML\nThe keys are the flag names with \\(aq_\\(aq for "
	      "\\(aq\\-\\(aq (\\fB\\-\\-graph\\-min\\-seen\\fR is \\fBgraph_min_seen:\\fR); "
	      "\\fBkl\\-sensor\\fR(8) and \\fBkl\\-graphd\\fR(8) name each option's file key, "
	      "its type, range and default, and whether SIGHUP reloads it.\n", f);
	fputs(".SH SEE ALSO\n\\fBkl\\-enforcer\\fR(8), \\fBkl\\-sensor\\fR(8), "
	      "\\fBkl\\-graphd\\fR(8), \\fBkernloom\\-pdp\\fR(5)\n", f);
}
