/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Knob table, command line, PDPConfig / PolicyPack YAML, precedence,
 * profiles, every config error path, and PolicyPack signatures.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "decider/knobs.h"
#include "decider/yamlcfg.h"

static bool errs_have(const struct kl_errs *e, const char *needle)
{
	for (size_t i = 0; i < e->n; i++)
		if (strstr(e->v[i], needle) != NULL)
			return true;
	return false;
}

static void dump(const struct kl_errs *e)
{
	for (size_t i = 0; i < e->n; i++)
		fprintf(stderr, "  err: %s\n", e->v[i]);
}

#define ASSERT_ERR(e, s)                                         \
	do {                                                     \
		if (!errs_have((e), (s))) {                      \
			dump(e);                                 \
			fail_msg("no error containing \"%s\"", (s)); \
		}                                                \
	} while (0)

static int cli(struct kl_layer *L, struct kl_errs *e, enum kl_cli_action *act, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;

	argv[argc++] = (char *)"kl-decider";
	va_start(ap, act);
	for (char *a; (a = va_arg(ap, char *)) != NULL;)
		argv[argc++] = a;
	va_end(ap);
	return kl_cli_parse(&dec_knobset, argc, argv, L, act, NULL, NULL, e);
}

static int yaml(const char *text, enum kl_doc_kind kind, struct kl_layer *L, struct kl_errs *e)
{
	struct dec_doc_info info;
	int rc = dec_yaml_load_text(text, strlen(text), "t.yaml", kind, L, &info, e);
	dec_doc_info_free(&info);
	return rc;
}

static int ki(const char *name)
{
	int i = kl_knob_index(&dec_knobset, name);
	assert_true(i >= 0);
	return i;
}

/* Every built-in profile resolves without error, and each knob's default
 * parses (no typos in the table). */
static void test_profiles_and_defaults(void **state)
{
	(void)state;
	size_t n;
	const struct dec_profile *p = dec_profiles(&n);
	assert_int_equal(n, 12);
	for (size_t i = 0; i < n; i++) {
		struct kl_layer f;
		struct kl_errs e = { 0 };
		struct dec_config c;
		kl_layer_init(&f, &dec_knobset, KL_L_FLAG, NULL);
		assert_int_equal(kl_layer_set(&f, ki("profile"), p[i].name, 0, "--profile", false, &e), 0);
		if (dec_config_resolve(&c, &f, NULL, NULL, NULL, &e) != 0) {
			dump(&e);
			fail_msg("profile %s", p[i].name);
		}
		assert_string_equal(c.profile->name, p[i].name);
		assert_true(c.v.trig[DEC_F_PPS] > 0 && c.v.soft_at >= 1);
		assert_int_equal(c.r.o[ki("trig-pps")].kind, KL_L_PROFILE);
		dec_config_free(&c);
		kl_layer_free(&f);
	}
	/* Aliases and the default profile. */
	assert_string_equal(dec_profile_find("router")->name, "ziti-router");
	assert_string_equal(dec_profile_find("controller")->name, "ziti-controller");
	assert_string_equal(dec_profile_find("internal")->name, "internal-app");
	struct kl_errs e = { 0 };
	struct dec_config c;
	assert_int_equal(dec_config_resolve(&c, NULL, NULL, NULL, NULL, &e), 0);
	assert_string_equal(c.profile->name, "generic");
	assert_true(c.v.trig[DEC_F_PPS] == 5000);
	assert_int_equal(c.v.block_at, 999);
	assert_true(c.v.min_pps == 10);
	assert_true(c.v.dry_run);
	assert_int_equal(c.v.interval, 1000000000LL);
	assert_true(c.v.block_min_sev == 0); /* generic: gate off */
	dec_config_free(&c);
}

/* Numbers of profiles.md, spot-checked through the resolver. */
static void test_profile_values(void **state)
{
	(void)state;
	struct kl_layer f;
	struct kl_errs e = { 0 };
	struct dec_config c;
	kl_layer_init(&f, &dec_knobset, KL_L_FLAG, NULL);
	kl_layer_set(&f, ki("profile"), "ziti-controller", 0, "--profile", false, &e);
	assert_int_equal(dec_config_resolve(&c, &f, NULL, NULL, NULL, &e), 0);
	assert_true(c.v.trig[DEC_F_PPS] == 80 && c.v.trig[DEC_F_SYN] == 20 && c.v.trig[DEC_F_SCAN] == 5);
	assert_true(fabs(c.v.w[DEC_F_SYN] - 0.40) < 1e-12);
	assert_int_equal(c.v.soft_at, 1);
	assert_int_equal(c.v.hard_at, 3);
	assert_int_equal(c.v.block_at, 9);
	assert_int_equal(c.v.hard_ttl, 600LL * 1000000000LL);
	assert_true(c.v.block_min_sev == 2.0);
	assert_int_equal(c.v.block_min_dur, 15LL * 1000000000LL);
	assert_int_equal(c.v.up_need, 2);
	assert_int_equal(c.v.down_need, 6);
	assert_int_equal(c.v.noncomp_at, 8);
	assert_true(c.v.sev_cap == 3.0);
	assert_int_equal(c.v.cooldown, 5LL * 1000000000LL);
	assert_int_equal(c.v.soft_rate, 20);
	assert_int_equal(c.v.hard_burst, 10);
	dec_config_free(&c);
	kl_layer_free(&f);
}

/* flag > PDPConfig > PolicyPack > state > profile > default. */
static void test_precedence(void **state)
{
	(void)state;
	struct kl_layer flag, pdp, pol, st;
	struct kl_errs e = { 0 };
	struct dec_config c;
	const double tuned[DEC_F_COUNT] = { 6000, 0, 40, 0 };

	kl_layer_init(&flag, &dec_knobset, KL_L_FLAG, NULL);
	kl_layer_init(&pdp, &dec_knobset, KL_L_PDP, "pdp.yaml");
	kl_layer_init(&pol, &dec_knobset, KL_L_POLICY, "policy.yaml");
	kl_layer_init(&st, &dec_knobset, KL_L_STATE, NULL);
	dec_layer_from_tuned(&st, tuned, "state.json");
	/* trig-pps: state 6000, pdp 7000, flag 8000 */
	kl_layer_set(&pdp, ki("trig-pps"), "7000", 3, "x", false, &e);
	kl_layer_set(&flag, ki("trig-pps"), "8000", 0, "x", false, &e);
	/* trig-syn: profile only; trig-scan: state 40 beats profile 50 */
	/* soft-rate: profile 20 < policy 30 < pdp 40 < flag 50 */
	kl_layer_set(&pol, ki("soft-rate"), "30", 7, "x", false, &e);
	kl_layer_set(&pdp, ki("soft-rate"), "40", 9, "x", false, &e);
	kl_layer_set(&flag, ki("soft-rate"), "50", 0, "x", false, &e);
	/* hard-rate: policy beats profile */
	kl_layer_set(&pol, ki("hard-rate"), "3", 8, "x", false, &e);
	/* hard-burst: pdp beats policy */
	kl_layer_set(&pol, ki("hard-burst"), "7", 9, "x", false, &e);
	kl_layer_set(&pdp, ki("hard-burst"), "8", 11, "x", false, &e);
	/* a flag at its sentinel does not count */
	kl_layer_set(&flag, ki("hard-burst"), "0", 0, "x", false, &e);
	assert_int_equal(e.n, 0);
	assert_int_equal(dec_config_resolve(&c, &flag, &pdp, &pol, &st, &e), 0);
	assert_true(c.v.trig[DEC_F_PPS] == 8000);
	assert_int_equal(c.r.o[ki("trig-pps")].kind, KL_L_FLAG);
	assert_true(c.v.trig[DEC_F_SYN] == 500);
	assert_int_equal(c.r.o[ki("trig-syn")].kind, KL_L_PROFILE);
	assert_true(c.v.trig[DEC_F_SCAN] == 40);
	assert_int_equal(c.r.o[ki("trig-scan")].kind, KL_L_STATE);
	assert_int_equal(c.v.soft_rate, 50);
	assert_int_equal(c.v.hard_rate, 3);
	assert_int_equal(c.r.o[ki("hard-rate")].kind, KL_L_POLICY);
	assert_int_equal(c.v.hard_burst, 8);
	assert_int_equal(c.r.o[ki("hard-burst")].kind, KL_L_PDP);
	assert_int_equal(c.r.o[ki("hard-burst")].line, 11);
	assert_int_equal(c.r.o[ki("interval")].kind, KL_L_DEFAULT);
	char buf[128];
	kl_origin_format(&c.r, ki("hard-burst"), buf, sizeof(buf));
	assert_string_equal(buf, "pdp pdp.yaml:11");
	kl_origin_format(&c.r, ki("trig-scan"), buf, sizeof(buf));
	assert_string_equal(buf, "state state.json");
	dec_config_free(&c);

	/* Without the flag, PDPConfig wins over state. */
	kl_layer_free(&flag);
	kl_layer_init(&flag, &dec_knobset, KL_L_FLAG, NULL);
	assert_int_equal(dec_config_resolve(&c, &flag, &pdp, &pol, &st, &e), 0);
	assert_true(c.v.trig[DEC_F_PPS] == 7000);
	dec_config_free(&c);
	/* Without PDPConfig, state wins over the profile. */
	assert_int_equal(dec_config_resolve(&c, &flag, NULL, &pol, &st, &e), 0);
	assert_true(c.v.trig[DEC_F_PPS] == 6000);
	assert_int_equal(c.v.soft_rate, 30);
	dec_config_free(&c);
	kl_layer_free(&flag);
	kl_layer_free(&pdp);
	kl_layer_free(&pol);
	kl_layer_free(&st);
}

static void test_cli_forms(void **state)
{
	(void)state;
	struct kl_layer L;
	struct kl_errs e = { 0 };
	enum kl_cli_action act;

	kl_layer_init(&L, &dec_knobset, KL_L_FLAG, NULL);
	assert_int_equal(cli(&L, &e, &act, "--dry-run=false", "--top", "50", "--whitelist=",
			     "--feedback-file=", "-n", "--interval=500ms", "--block-min-sev", "NaN",
			     "--block-min-dur=-1", "--profile", "idp", NULL), 0);
	assert_int_equal(act, KL_CLI_RUN);
	assert_true(L.set[ki("dry-run")] && !((struct dec_dcfg *)L.v)->dry_run);
	assert_int_equal(((struct dec_dcfg *)L.v)->top, 50);
	assert_true(L.set[ki("whitelist")]);
	assert_string_equal(((struct dec_dcfg *)L.v)->whitelist, "");
	assert_true(((struct dec_dcfg *)L.v)->config_check);
	assert_int_equal(((struct dec_dcfg *)L.v)->interval, 500000000LL);
	assert_false(L.set[ki("block-min-sev")]); /* sentinels: use profile */
	assert_false(L.set[ki("block-min-dur")]);
	kl_layer_free(&L);

	kl_layer_init(&L, &dec_knobset, KL_L_FLAG, NULL);
	assert_int_equal(cli(&L, &e, &act, "--dry-run", "--autotune=true", NULL), 0);
	assert_true(((struct dec_dcfg *)L.v)->dry_run && ((struct dec_dcfg *)L.v)->autotune);
	assert_int_equal(cli(&L, &e, &act, "--help", NULL), 0);
	assert_int_equal(act, KL_CLI_HELP);
	kl_layer_free(&L);

	/* Error paths, all reported in one pass. */
	kl_layer_init(&L, &dec_knobset, KL_L_FLAG, NULL);
	assert_int_equal(cli(&L, &e, &act, "--no-such", "--dry-run=maybe", "--top", "0",
			     "--interval", "5", "--max-action", "nuke", "stray", "--trig-pps", "-3",
			     "--soft-at", "1.5", "--soft-rate", "-1", "--top", NULL), -1);
	ASSERT_ERR(&e, "--no-such: unknown flag");
	ASSERT_ERR(&e, "--dry-run: expected a boolean");
	ASSERT_ERR(&e, "--top: 0 is out of range (must be >= 1");
	ASSERT_ERR(&e, "--interval: missing unit");
	ASSERT_ERR(&e, "--max-action: 'nuke' is not one of observe | rate_limit | rate_limit_hard | block");
	ASSERT_ERR(&e, "unexpected argument 'stray'");
	ASSERT_ERR(&e, "--trig-pps: -3 is out of range (must be > 0");
	ASSERT_ERR(&e, "--soft-at: expected an integer, got '1.5'");
	ASSERT_ERR(&e, "--soft-rate: expected a non-negative integer");
	ASSERT_ERR(&e, "--top needs a value");
	assert_int_equal(e.n, 10);
	kl_errs_free(&e);
	kl_layer_free(&L);
}

static const char *pdp_good =
	"apiVersion: kernloom.io/v1alpha1\n"
	"kind: PDPConfig\n"
	"metadata:\n"
	"  name: web\n"
	"spec:\n"
	"  signal_engine:\n"
	"    pps_trigger: 1200\n"
	"    syn_trigger: 250\n"
	"    weights: {pps: 0.55, syn: 0.30, scan: 0.15, cap: 3}\n"
	"  progressive_enforcement:\n"
	"    soft_at: 2\n"
	"    hard_at: 5\n"
	"    block_at: 12\n"
	"    block_min_sev: 2.8\n"
	"    block_min_dur: 30s\n"
	"  non_compliance: {at: 15, drop: 10, sev: 2.0, reset: 0.3}\n"
	"  graph:\n"
	"    mode: frozen-observe\n"
	"    exclude:\n"
	"      source_cidrs: [198.18.0.0/15, \"fd00:6b6c::/48\"]\n"
	"  autotune:\n"
	"    bootstrap:\n"
	"      phase1: {interval: 2h, max_up: 0.1, max_down: 0.02, alpha: 0.1}\n"
	"  enforcement:\n"
	"    soft_rate_factor: 0.01\n"
	"    ttl: {soft: 60s, hard: 10m, block: 10m}\n";

static void test_pdp_ok(void **state)
{
	(void)state;
	struct kl_layer L;
	struct kl_errs e = { 0 };
	struct dec_config c;
	kl_layer_init(&L, &dec_knobset, KL_L_PDP, "t.yaml");
	if (yaml(pdp_good, KL_DOC_PDP, &L, &e) != 0) {
		dump(&e);
		fail();
	}
	assert_true(L.set[ki("trig-pps")]);
	assert_int_equal(L.line[ki("trig-pps")], 7);
	assert_int_equal(L.line[ki("noncomp-at")], 16);
	assert_int_equal(dec_config_resolve(&c, NULL, &L, NULL, NULL, &e), 0);
	assert_true(c.v.trig[DEC_F_PPS] == 1200);
	assert_true(c.v.trig[DEC_F_SCAN] == 50); /* from the profile */
	assert_int_equal(c.v.block_at, 12);
	assert_int_equal(c.v.block_min_dur, 30LL * 1000000000LL);
	assert_int_equal(c.v.graph_mode, 1);
	assert_int_equal(c.v.graph_exclude_cidrs.n, 2);
	assert_int_equal(c.v.bootstrap_every[0], 7200LL * 1000000000LL);
	assert_int_equal(c.v.soft_ttl, 60LL * 1000000000LL);
	/* soft_rate_factor: rate = trig_pps x factor */
	struct dec_engine_params p;
	dec_engine_params_from_config(&c.v, &p);
	assert_int_equal(p.rate[DEC_LVL_SOFT], 12);
	assert_int_equal(p.rate[DEC_LVL_HARD], 5);
	assert_int_equal(p.block_min_dur_ms, 30000);
	char o[128];
	kl_origin_format(&c.r, ki("block-at"), o, sizeof(o));
	assert_string_equal(o, "pdp t.yaml:13");
	dec_config_free(&c);
	kl_layer_free(&L);
}

/* Every error path of the YAML loader names file and line. */
static void test_pdp_errors(void **state)
{
	(void)state;
	struct kl_layer L;
	struct kl_errs e = { 0 };
	const char *bad =
		"apiVersion: kernloom.io/v1alpha1\n"
		"kind: PDPConfig\n"
		"metadata: {name: x, owner: me}\n"
		"spec:\n"
		"  signal_engine:\n"
		"    pps_triger: 10\n"
		"    syn_trigger: abc\n"
		"    scan_trigger: 0\n"
		"    weights: 3\n"
		"  progressive_enforcement:\n"
		"    soft_at: 40000\n"
		"    up_need: [1, 2]\n"
		"    soft_at: 2\n"
		"  graph:\n"
		"    mode: sometimes\n"
		"    exclude: {source_cidrs: [10.0.0.0/33]}\n"
		"  enforcement:\n"
		"    ttl: {soft: 10 minutes}\n"
		"  extra: 1\n"
		"foo: bar\n";
	kl_layer_init(&L, &dec_knobset, KL_L_PDP, "t.yaml");
	assert_int_equal(yaml(bad, KL_DOC_PDP, &L, &e), -1);
	ASSERT_ERR(&e, "t.yaml:3: metadata.owner: unknown key");
	ASSERT_ERR(&e, "t.yaml:6: spec.signal_engine.pps_triger: unknown key");
	ASSERT_ERR(&e, "t.yaml:7: spec.signal_engine.syn_trigger: expected a number, got 'abc'");
	/* 0 is the "use profile" sentinel: not an error, not set */
	assert_false(L.set[ki("trig-scan")]);
	ASSERT_ERR(&e, "t.yaml:9: spec.signal_engine.weights: expected a mapping, got a scalar");
	ASSERT_ERR(&e, "t.yaml:11: spec.progressive_enforcement.soft_at: 40000 is out of range (must be >= 1 and <= 30000)");
	ASSERT_ERR(&e, "t.yaml:12: spec.progressive_enforcement.up_need: expected a value, got a list");
	ASSERT_ERR(&e, "t.yaml:13: duplicate key 'spec.progressive_enforcement.soft_at'");
	ASSERT_ERR(&e, "t.yaml:15: spec.graph.mode: 'sometimes' is not one of learn | frozen-observe | frozen-enforce");
	ASSERT_ERR(&e, "t.yaml:16: spec.graph.exclude.source_cidrs: item 1:");
	ASSERT_ERR(&e, "t.yaml:18: spec.enforcement.ttl.soft:");
	ASSERT_ERR(&e, "t.yaml:19: spec.extra: unknown key");
	ASSERT_ERR(&e, "t.yaml:20: foo: unknown key");
	assert_int_equal(e.n, 12);
	kl_errs_free(&e);
	kl_layer_free(&L);

	/* Envelope errors. */
	const struct {
		const char *text, *want;
	} cases[] = {
		{ "apiVersion: v2\nkind: PDPConfig\nspec: {}\n", "t.yaml:1: apiVersion: want kernloom.io/v1alpha1" },
		{ "apiVersion: kernloom.io/v1alpha1\nkind: PolicyPack\nspec: {}\n", "t.yaml:2: kind: want PDPConfig here, got 'PolicyPack'" },
		{ "apiVersion: kernloom.io/v1alpha1\nkind: PDPConfig\n", "spec is missing" },
		{ "kind: PDPConfig\nspec: {}\n", "apiVersion is missing" },
		{ "- a\n- b\n", "t.yaml:1: expected a PDPConfig mapping" },
		{ "a: [1, 2\n", "YAML error" },
		{ "a: &x 1\nb: *x\n", "anchors are not supported" },
		{ "a: 1\n---\nb: 2\n", "only one YAML document" },
		{ "", "empty document" },
		{ "apiVersion: kernloom.io/v1alpha1\nkind: PDPConfig\nspec:\n  signal_engine:\n    pps_trigger: 1e400\n",
		  "t.yaml:5: spec.signal_engine.pps_trigger: expected a number" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		kl_layer_init(&L, &dec_knobset, KL_L_PDP, "t.yaml");
		assert_int_equal(yaml(cases[i].text, KL_DOC_PDP, &L, &e), -1);
		ASSERT_ERR(&e, cases[i].want);
		kl_errs_free(&e);
		kl_layer_free(&L);
	}
}

/* Cross-field rules name the origin of each value. */
static void test_cross_field(void **state)
{
	(void)state;
	struct kl_layer f, pdp;
	struct kl_errs e = { 0 };
	struct dec_config c;
	kl_layer_init(&f, &dec_knobset, KL_L_FLAG, NULL);
	kl_layer_init(&pdp, &dec_knobset, KL_L_PDP, "p.yaml");
	kl_layer_set(&pdp, ki("soft-at"), "8", 4, "x", false, &e);
	kl_layer_set(&f, ki("sev-step2"), "5", 0, "x", false, &e);
	kl_layer_set(&f, ki("hard-action"), "block", 0, "x", false, &e);
	kl_layer_set(&f, ki("profile"), "bogus", 0, "x", false, &e);
	assert_int_equal(dec_config_resolve(&c, &f, &pdp, NULL, NULL, &e), -1);
	ASSERT_ERR(&e, "soft-at=8 (pdp p.yaml:4) must not be above hard-at=7 (profile generic)");
	ASSERT_ERR(&e, "sev-step2=5 (flag --sev-step2) must not be above sev-step3=3 (default)");
	ASSERT_ERR(&e, "hard-action=block (flag --hard-action) is stronger than its level");
	ASSERT_ERR(&e, "unknown profile 'bogus' (valid: generic, ziti-router,");
	ASSERT_ERR(&e, "ssh-bastion; aliases: router, controller, internal)");
	dec_config_free(&c);
	kl_errs_free(&e);
	kl_layer_free(&f);
	kl_layer_free(&pdp);
}

static const char *pol_text =
	"apiVersion: kernloom.io/v1alpha1\n"
	"kind: PolicyPack\n"
	"metadata: {name: edge, version: 3}\n"
	"spec:\n"
	"  max_action: rate_limit_hard\n"
	"  dry_run: false\n"
	"  block_gate: {min_sev: 2.5, min_dur: 20s}\n"
	"  levels:\n"
	"    rate_soft: {action: rate_limit, rate_pps: 30, burst: 60, ttl: 90s}\n"
	"    rate_hard: {action: rate_limit_hard, rate_pps: 4, burst: 8, ttl: 10m}\n"
	"    block: {action: block, ttl: 30m}\n";

static void test_policy(void **state)
{
	(void)state;
	struct kl_layer L;
	struct kl_errs e = { 0 };
	struct dec_config c;
	struct dec_doc_info info;

	kl_layer_init(&L, &dec_knobset, KL_L_POLICY, "pol.yaml");
	assert_int_equal(dec_yaml_load_text(pol_text, strlen(pol_text), "pol.yaml", KL_DOC_POLICY,
					   &L, &info, &e), 0);
	assert_string_equal(info.name, "edge");
	assert_false(info.has_signature);
	assert_non_null(strstr(info.canonical, "spec.levels.block.ttl=30m\n"));
	assert_int_equal(dec_config_resolve(&c, NULL, NULL, &L, NULL, &e), 0);
	assert_false(c.v.dry_run);
	assert_int_equal(c.v.soft_rate, 30);
	assert_true(c.v.block_min_sev == 2.5);
	struct dec_engine_params p;
	dec_engine_params_from_config(&c.v, &p);
	assert_int_equal(p.action[DEC_LVL_BLOCK], DEC_LVL_HARD); /* max_action caps */
	assert_int_equal(p.action[DEC_LVL_HARD], DEC_LVL_HARD);
	assert_int_equal(p.ttl_ms[DEC_LVL_BLOCK], 1800000);
	dec_config_free(&c);
	dec_doc_info_free(&info);
	kl_layer_free(&L);

	/* PDPConfig keys are not PolicyPack keys. */
	kl_layer_init(&L, &dec_knobset, KL_L_POLICY, "pol.yaml");
	const char *wrong = "apiVersion: kernloom.io/v1alpha1\nkind: PolicyPack\nspec:\n"
			    "  signal_engine: {pps_trigger: 5}\n  levels: {block: {rate_pps: 3}}\n";
	assert_int_equal(yaml(wrong, KL_DOC_POLICY, &L, &e), -1);
	ASSERT_ERR(&e, "t.yaml:4: spec.signal_engine: unknown key");
	ASSERT_ERR(&e, "t.yaml:5: spec.levels.block.rate_pps: unknown key");
	kl_errs_free(&e);
	kl_layer_free(&L);

	/* allow_local_block=false enforces BLOCK as a hard limit. */
	kl_layer_init(&L, &dec_knobset, KL_L_POLICY, "pol.yaml");
	assert_int_equal(yaml("apiVersion: kernloom.io/v1alpha1\nkind: PolicyPack\nspec:\n"
			      "  allow_local_block: false\n", KL_DOC_POLICY, &L, &e), 0);
	assert_int_equal(dec_config_resolve(&c, NULL, NULL, &L, NULL, &e), 0);
	dec_engine_params_from_config(&c.v, &p);
	assert_int_equal(p.action[DEC_LVL_BLOCK], DEC_LVL_HARD);
	assert_int_equal(p.action[DEC_LVL_SOFT], DEC_LVL_SOFT);
	dec_config_free(&c);
	kl_layer_free(&L);
}

/* noinline: GCC 12 at -O1 mistakes the asprintf result for a pointer to
 * this frame once inlined (-Wdangling-pointer). */
__attribute__((noinline)) static char *with_signature(const char *text, const unsigned char sk[64],
						     const char *canonical)
{
	unsigned char sig[64];
	char b64[sodium_base64_ENCODED_LEN(64, sodium_base64_VARIANT_ORIGINAL)];
	char *out = NULL;

	crypto_sign_detached(sig, NULL, (const unsigned char *)canonical, strlen(canonical), sk);
	sodium_bin2base64(b64, sizeof(b64), sig, sizeof(sig), sodium_base64_VARIANT_ORIGINAL);
	assert_true(asprintf(&out, "%ssignature:\n  alg: ed25519\n  key_id: test\n  value: %s\n",
			     text, b64) > 0);
	return out;
}

static int load_pol(const char *text, struct dec_doc_info *info, struct kl_errs *e)
{
	struct kl_layer L;
	kl_layer_init(&L, &dec_knobset, KL_L_POLICY, "p.yaml");
	int rc = dec_yaml_load_text(text, strlen(text), "p.yaml", KL_DOC_POLICY, &L, info, e);
	kl_layer_free(&L);
	return rc;
}

static void test_policy_signature(void **state)
{
	(void)state;
	unsigned char pk[32], sk[64], pk2[32], sk2[64];
	struct dec_doc_info info;
	struct kl_errs e = { 0 };
	char err[256];

	assert_true(sodium_init() >= 0);
	crypto_sign_keypair(pk, sk);
	crypto_sign_keypair(pk2, sk2);
	assert_int_equal(load_pol(pol_text, &info, &e), 0);
	char *canon = strdup(info.canonical);
	dec_doc_info_free(&info);

	char *signed_text = with_signature(pol_text, sk, canon);
	assert_int_equal(load_pol(signed_text, &info, &e), 0);
	assert_true(info.has_signature);
	assert_string_equal(info.canonical, canon); /* the signature is not covered */
	assert_int_equal(dec_policy_verify(&info, pk, err, sizeof(err)), 0);
	assert_int_equal(dec_policy_verify(&info, pk2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "does not verify"));
	dec_doc_info_free(&info);

	/* Reordering and re-indenting keeps the signature valid. */
	const char *reordered =
		"kind: PolicyPack\n"
		"apiVersion: kernloom.io/v1alpha1\n"
		"spec:\n"
		"    levels:\n"
		"        block: {ttl: 30m, action: block}\n"
		"        rate_hard: {burst: 8, action: rate_limit_hard, rate_pps: 4, ttl: 10m}\n"
		"        rate_soft: {action: rate_limit, rate_pps: 30, burst: 60, ttl: 90s}\n"
		"    block_gate: {min_dur: 20s, min_sev: 2.5}\n"
		"    dry_run: false\n"
		"    max_action: rate_limit_hard\n"
		"metadata: {version: 3, name: edge}\n";
	char *re_signed = NULL;
	const char *sigpart = strstr(signed_text, "signature:");
	assert_true(asprintf(&re_signed, "%s%s", reordered, sigpart) > 0);
	assert_int_equal(load_pol(re_signed, &info, &e), 0);
	assert_int_equal(dec_policy_verify(&info, pk, err, sizeof(err)), 0);
	dec_doc_info_free(&info);

	/* Changing a value breaks it. */
	char *tampered = strdup(signed_text);
	char *at = strstr(tampered, "burst: 8");
	at[7] = '9';
	assert_int_equal(load_pol(tampered, &info, &e), 0);
	assert_int_equal(dec_policy_verify(&info, pk, err, sizeof(err)), -1);
	dec_doc_info_free(&info);

	/* Unsigned pack with a key configured: refused. */
	assert_int_equal(load_pol(pol_text, &info, &e), 0);
	assert_int_equal(dec_policy_verify(&info, pk, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not signed"));
	dec_doc_info_free(&info);

	/* Malformed signature blocks. */
	const char *badsig = "apiVersion: kernloom.io/v1alpha1\nkind: PolicyPack\nspec: {dry_run: true}\n"
			     "signature: {alg: rsa, value: AAAA, extra: 1}\n";
	assert_int_equal(load_pol(badsig, &info, &e), -1);
	ASSERT_ERR(&e, "p.yaml:4: signature.alg: only ed25519 is supported");
	ASSERT_ERR(&e, "p.yaml:4: signature.value: expected 64 bytes of base64");
	ASSERT_ERR(&e, "p.yaml:4: signature.extra: unknown key");
	dec_doc_info_free(&info);
	kl_errs_free(&e);

	/* Public key files: base64 or hex. */
	char path[] = "/tmp/kl_pk_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
	sodium_bin2base64(b64, sizeof(b64), pk, 32, sodium_base64_VARIANT_ORIGINAL);
	dprintf(fd, "%s\n", b64);
	close(fd);
	unsigned char got[32];
	assert_int_equal(dec_pubkey_load(path, got, err, sizeof(err)), 0);
	assert_memory_equal(got, pk, 32);
	FILE *f = fopen(path, "w");
	for (int i = 0; i < 32; i++)
		fprintf(f, "%02x", pk[i]);
	fclose(f);
	assert_int_equal(dec_pubkey_load(path, got, err, sizeof(err)), 0);
	assert_memory_equal(got, pk, 32);
	f = fopen(path, "w");
	fprintf(f, "not a key\n");
	fclose(f);
	assert_int_equal(dec_pubkey_load(path, got, err, sizeof(err)), -1);
	unlink(path);

	free(canon);
	free(signed_text);
	free(re_signed);
	free(tampered);
}

/* --config-check output names every knob with its origin; --help and
 * --help-markdown come from the same table. */
static void test_print_and_help(void **state)
{
	(void)state;
	struct kl_layer f;
	struct kl_errs e = { 0 };
	struct dec_config c;
	char *buf = NULL;
	size_t len = 0;

	kl_layer_init(&f, &dec_knobset, KL_L_FLAG, NULL);
	kl_layer_set(&f, ki("top"), "77", 0, "--top", false, &e);
	assert_int_equal(dec_config_resolve(&c, &f, NULL, NULL, NULL, &e), 0);
	FILE *m = open_memstream(&buf, &len);
	dec_config_print(&c, m);
	fclose(m);
	assert_non_null(strstr(buf, "\ntop "));
	assert_non_null(strstr(buf, "77"));
	assert_non_null(strstr(buf, "flag --top\n"));
	assert_non_null(strstr(buf, "profile generic\n"));
	free(buf);

	size_t n;
	const struct kl_knob *k = dec_knobs(&n);
	m = open_memstream(&buf, &len);
	dec_help_markdown(m);
	fclose(m);
	char *h = NULL;
	size_t hl = 0;
	FILE *m2 = open_memstream(&h, &hl);
	dec_help(m2, "kl-decider");
	fclose(m2);
	for (size_t i = 0; i < n; i++) {
		char want[96];
		snprintf(want, sizeof(want), "| `--%s` |", k[i].name);
		assert_non_null(strstr(buf, want));
		snprintf(want, sizeof(want), "  --%s", k[i].name);
		assert_non_null(strstr(h, want));
		/* every knob's default is valid for its own parser */
		assert_true(k[i].help != NULL && k[i].group != NULL);
	}
	free(buf);
	free(h);
	dec_config_free(&c);
	kl_layer_free(&f);
}

/* Every flag of the seeds' IQ reference exists. */
static void test_seed_flags_exist(void **state)
{
	(void)state;
	static const char *const seeds[] = {
		"interval", "top", "min-pps", "min-sev", "dry-run", "profile", "state-file",
		"max-state-age", "state-history", "whitelist", "whitelist-reload", "whitelist-learn",
		"feedback-file", "feedback-reload", "feedback-learn", "feedback-deenforce-cidr",
		"feedback-cidr-every", "feedback-cidr-max", "bootstrap", "bootstrap-window",
		"bootstrap-phase1-end", "bootstrap-phase2-end", "bootstrap-every1", "bootstrap-every2",
		"bootstrap-every3", "steady-every", "bootstrap-k-start", "bootstrap-k-final",
		"bootstrap-max-up1", "bootstrap-max-down1", "bootstrap-max-up2", "bootstrap-max-down2",
		"bootstrap-max-up3", "bootstrap-max-down3", "bootstrap-alpha1", "bootstrap-alpha2",
		"bootstrap-alpha3", "autotune", "autotune-every", "autotune-min-samples", "autotune-k",
		"autotune-max-change", "autotune-max-change-up", "autotune-max-change-down",
		"autotune-alpha", "autotune-floor-pps", "autotune-floor-syn", "autotune-floor-scan",
		"learn-sev-gt", "learn-frac-gt", "learn-max-sev", "learn-skip-if-blocks",
		"learn-max-drop-ratio", "trig-pps", "trig-syn", "trig-scan", "w-pps", "w-syn", "w-scan",
		"sev-cap", "sev-step1", "sev-step2", "sev-step3", "sev-delta1", "sev-delta2",
		"sev-delta3", "sev-decay-below", "soft-at", "hard-at", "block-at", "soft-rate",
		"soft-burst", "soft-ttl", "hard-rate", "hard-burst", "hard-ttl", "block-ttl",
		"cooldown", "block-min-sev", "block-min-dur", "up-need", "down-need", "min-hold-soft",
		"min-hold-hard", "noncomp-at", "noncomp-drop", "noncomp-sev", "noncomp-reset-below",
		"prev-ttl", "state-ttl", "run-dir", "user", "pdp-config", "policy", "replay",
		"decisions-json",
	};
	struct kl_errs e = { 0 };
	struct dec_config c;
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
		assert_true(kl_knob_index(&dec_knobset, seeds[i]) >= 0);
	/* Seeds' defaults for the non-profile knobs. */
	assert_int_equal(dec_config_resolve(&c, NULL, NULL, NULL, NULL, &e), 0);
	assert_int_equal(c.v.top, 200);
	assert_int_equal(c.v.feedback_cidr_max, 5000);
	assert_int_equal(c.v.autotune_min_samples, 5000);
	assert_true(c.v.bootstrap_k_start == 4.0 && c.v.bootstrap_alpha[2] == 0.20);
	assert_int_equal(c.v.steady_every, 84LL * 3600 * 1000000000LL);
	assert_int_equal(c.v.state_ttl, 3600LL * 1000000000LL);
	assert_true(c.v.learn_frac_gt == 0.005 && c.v.learn_skip_if_blocks);
	assert_true(c.v.feedback_deenforce_cidr && !c.v.whitelist_learn);
	dec_config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_profiles_and_defaults),
		cmocka_unit_test(test_profile_values),
		cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_cli_forms),
		cmocka_unit_test(test_pdp_ok),
		cmocka_unit_test(test_pdp_errors),
		cmocka_unit_test(test_cross_field),
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_policy_signature),
		cmocka_unit_test(test_print_and_help),
		cmocka_unit_test(test_seed_flags_exist),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
