/* SPDX-License-Identifier: MPL-2.0 */
#include "decider/decider.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/log.h"
#include "decider/yamlcfg.h"

static volatile sig_atomic_t reload_requested;

void kl_decider_request_reload(void)
{
	reload_requested = 1;
}

static const char *flag_str(const struct kl_layer *L, const char *name)
{
	int ki = kl_knob_index(name);
	if (ki < 0 || !L->set[ki])
		return "";
	size_t n;
	const struct kl_knob *k = &kl_knobs(&n)[ki];
	const char *s = *(char *const *)((const char *)&L->v + k->off);
	return s != NULL ? s : "";
}

int kl_decider_load_config(int argc, char *const argv[], struct kl_config *cfg,
			   enum kl_cli_action *action, char **policy_canonical,
			   struct kl_errs *errs)
{
	struct kl_layer flags, pdp, pol;
	struct kl_doc_info pdp_info, pol_info;
	bool have_pdp = false, have_pol = false;
	size_t before = errs->n;

	memset(cfg, 0, sizeof(*cfg));
	memset(&pdp_info, 0, sizeof(pdp_info));
	memset(&pol_info, 0, sizeof(pol_info));
	if (policy_canonical != NULL)
		*policy_canonical = NULL;
	kl_layer_init(&flags, KL_L_FLAG, NULL);
	kl_cli_parse(argc, argv, &flags, action, errs);
	if (*action != KL_CLI_RUN) {
		kl_layer_free(&flags);
		return 0;
	}

	/* The files are named by flags only (a file cannot name another). */
	const char *pdp_path = flag_str(&flags, "pdp-config");
	const char *pol_path = flag_str(&flags, "policy");
	const char *key_path = flag_str(&flags, "policy-pubkey");
	if (pdp_path[0] != '\0') {
		kl_layer_init(&pdp, KL_L_PDP, pdp_path);
		have_pdp = true;
		kl_yaml_load_file(pdp_path, KL_DOC_PDP, &pdp, &pdp_info, errs);
	}
	if (pol_path[0] != '\0') {
		kl_layer_init(&pol, KL_L_POLICY, pol_path);
		have_pol = true;
		if (kl_yaml_load_file(pol_path, KL_DOC_POLICY, &pol, &pol_info, errs) == 0) {
			char err[256];
			if (key_path[0] != '\0') {
				unsigned char pk[32];
				if (kl_pubkey_load(key_path, pk, err, sizeof(err)) < 0)
					kl_errs_add(errs, "--policy-pubkey: %s", err);
				else if (kl_policy_verify(&pol_info, pk, err, sizeof(err)) < 0)
					kl_errs_add(errs, "%s: refused: %s", pol_path, err);
			} else if (pol_info.has_signature) {
				kl_warn("%s: signed, but no --policy-pubkey is set: signature not checked",
					pol_path);
			}
			if (policy_canonical != NULL && pol_info.canonical != NULL)
				*policy_canonical = strdup(pol_info.canonical);
		}
	} else if (key_path[0] != '\0') {
		kl_errs_add(errs, "--policy-pubkey is set but there is no --policy to verify");
	}
	kl_config_resolve(cfg, &flags, have_pdp ? &pdp : NULL, have_pol ? &pol : NULL, NULL, errs);
	kl_layer_free(&flags);
	if (have_pdp)
		kl_layer_free(&pdp);
	if (have_pol)
		kl_layer_free(&pol);
	kl_doc_info_free(&pdp_info);
	kl_doc_info_free(&pol_info);
	return errs->n > before ? -1 : 0;
}

/* Read and parse one exemption file. Returns 0 with *out filled (empty if
 * disabled or, when missing_ok, absent), or -1 with an error added. */
static int read_exempt_file(const char *path, bool feedback, bool missing_ok,
			    struct kl_exempt_list *out, struct kl_errs *errs)
{
	char *buf;
	size_t len;
	char err[512];
	int rc;

	memset(out, 0, sizeof(*out));
	if (path == NULL || path[0] == '\0')
		return 0;
	if (kl_read_file(path, KL_EX_MAX_FILE, &buf, &len, err, sizeof(err)) < 0) {
		if (errno == ENOENT && missing_ok)
			return 0;
		kl_errs_add(errs, "cannot read the %s: %s", feedback ? "feedback file" : "whitelist",
			    err);
		return -1;
	}
	rc = feedback ? kl_feedback_parse(buf, len, path, out, errs)
		      : kl_whitelist_parse(buf, len, path, out, errs);
	free(buf);
	return rc;
}

/* The whitelist may only be missing at its default path; a feedback file
 * may always be missing (klctl creates it on first use). */
static bool wl_missing_ok(const struct kl_config *cfg)
{
	return cfg->o[kl_knob_index("whitelist")].kind == KL_L_DEFAULT;
}

int kl_decider_check_files(const struct kl_config *cfg, struct kl_errs *errs)
{
	struct kl_exempt_list l;
	int rc = 0;

	if (read_exempt_file(cfg->v.whitelist, false, wl_missing_ok(cfg), &l, errs) < 0)
		rc = -1;
	kl_exempt_list_free(&l);
	if (read_exempt_file(cfg->v.feedback_file, true, true, &l, errs) < 0)
		rc = -1;
	kl_exempt_list_free(&l);
	return rc;
}

int kl_decider_init(struct kl_decider *d, const struct kl_config *cfg, struct kl_sink *sink,
		    uint64_t seed, bool periodic_reload)
{
	memset(d, 0, sizeof(*d));
	d->cfg = cfg;
	d->sink = sink;
	d->periodic_reload = periodic_reload;
	kl_engine_params_from_config(&cfg->v, &d->params);
	d->eng = kl_engine_new(&d->params, seed);
	if (d->eng == NULL)
		return -1;
	kl_exempt_init(&d->ex);
	d->last_tick_log = KL_T_NEVER;
	d->next_release = KL_T_NEVER;
	return 0;
}

void kl_decider_free(struct kl_decider *d)
{
	kl_engine_free(d->eng);
	kl_exempt_free(&d->ex);
	kl_changes_free(&d->ch);
	free(d->pending.v);
	memset(d, 0, sizeof(*d));
}

static int queue_releases(struct kl_decider *d, struct kl_cidrs *r)
{
	if (r->n == 0)
		return 0;
	if (d->cfg->v.feedback_deenforce_cidr && d->cfg->v.feedback_cidr_every > 0) {
		struct kl_addr *nv = realloc(d->pending.v, (d->pending.n + r->n) * sizeof(*nv));
		if (nv == NULL)
			return -1;
		memcpy(nv + d->pending.n, r->v, r->n * sizeof(*nv));
		d->pending.v = nv;
		d->pending.n += r->n;
		d->next_release = KL_T_NEVER; /* release now, not in 30 s */
	}
	free(r->v);
	r->v = NULL;
	r->n = 0;
	return 0;
}

int kl_decider_reload_exemptions(struct kl_decider *d, int64_t now, bool force, bool initial,
				 struct kl_errs *errs)
{
	const struct kl_dcfg *v = &d->cfg->v;
	struct kl_cidrs rel = { 0 };
	struct kl_exempt_list l;
	int rc = 0;

	if (v->whitelist[0] != '\0' &&
	    (force || kl_filewatch_changed(&d->wl_watch, v->whitelist))) {
		struct kl_errs e = { 0 };
		if (force)
			kl_filewatch_changed(&d->wl_watch, v->whitelist);
		if (read_exempt_file(v->whitelist, false, wl_missing_ok(d->cfg), &l, &e) == 0) {
			kl_info("whitelist %s: %zu entries", v->whitelist, l.n);
			if (kl_exempt_set_whitelist(&d->ex, &l, now, &rel) < 0)
				rc = -1;
		} else if (initial) {
			for (size_t i = 0; i < e.n; i++)
				kl_errs_add(errs, "%s", e.v[i]);
			rc = -1;
		} else {
			for (size_t i = 0; i < e.n; i++)
				kl_warn("%s (keeping the previous whitelist)", e.v[i]);
		}
		kl_exempt_list_free(&l);
		kl_errs_free(&e);
	}
	if (v->feedback_file[0] != '\0' &&
	    (force || kl_filewatch_changed(&d->fb_watch, v->feedback_file))) {
		struct kl_errs e = { 0 };
		if (force)
			kl_filewatch_changed(&d->fb_watch, v->feedback_file);
		if (read_exempt_file(v->feedback_file, true, true, &l, &e) == 0) {
			kl_info("feedback %s: %zu entries", v->feedback_file, l.n);
			if (kl_exempt_set_feedback(&d->ex, &l, now, &rel) < 0)
				rc = -1;
		} else if (initial) {
			for (size_t i = 0; i < e.n; i++)
				kl_errs_add(errs, "%s", e.v[i]);
			rc = -1;
		} else {
			for (size_t i = 0; i < e.n; i++)
				kl_warn("%s (keeping the previous feedback)", e.v[i]);
		}
		kl_exempt_list_free(&l);
		kl_errs_free(&e);
	}
	if (queue_releases(d, &rel) < 0)
		rc = -1;
	free(rel.v);
	return rc;
}

static void do_releases(struct kl_decider *d, int64_t now)
{
	const struct kl_dcfg *v = &d->cfg->v;
	int64_t every = v->feedback_cidr_every / 1000000;
	size_t keep = 0;

	if (d->pending.n == 0 || (d->next_release != KL_T_NEVER && now < d->next_release))
		return;
	for (size_t i = 0; i < d->pending.n; i++) {
		uint32_t removed = 0;
		uint32_t budget = (uint32_t)v->feedback_cidr_max;
		char a[KL_ADDR_STRLEN];
		if (d->sink->release(d->sink, now, &d->pending.v[i], budget, &removed) < 0) {
			kl_warn("release of %s failed; retrying in %lld ms",
				kl_addr_format(&d->pending.v[i], a, sizeof(a)), (long long)every);
			d->pending.v[keep++] = d->pending.v[i];
		} else if (removed >= budget) {
			/* Budget used up: there may be more inside. */
			d->pending.v[keep++] = d->pending.v[i];
		} else if (removed > 0) {
			kl_info("RELEASE cidr=%s removed=%u",
				kl_addr_format(&d->pending.v[i], a, sizeof(a)), removed);
		}
	}
	d->pending.n = keep;
	d->next_release = now + every;
}

static void tick_log(struct kl_decider *d, int64_t now)
{
	const struct kl_engine_stats *st = kl_engine_stats(d->eng);
	int64_t every = d->cfg->v.tick_log_every / 1000000;
	char ts[32];

	if (every <= 0 || (d->last_tick_log != KL_T_NEVER && now - d->last_tick_log < every))
		return;
	d->last_tick_log = now;
	kl_info("TICK#%llu t=%s sources=%zu candidates=%zu evaluated=%zu exempt=%zu tracked=%zu "
		"observe=%zu soft=%zu hard=%zu block=%zu changes=%llu dry_run=%s",
		(unsigned long long)d->ticks, kl_fmt_t(now, ts, sizeof(ts)), st->sources,
		st->candidates, st->evaluated, st->exempted, st->tracked,
		st->per_level[KL_LVL_OBSERVE], st->per_level[KL_LVL_SOFT],
		st->per_level[KL_LVL_HARD], st->per_level[KL_LVL_BLOCK],
		(unsigned long long)d->changes_total, d->cfg->v.dry_run ? "true" : "false");
}

int kl_decider_tick(struct kl_decider *d, struct kl_tick *t, struct kl_errs *errs)
{
	const struct kl_dcfg *v = &d->cfg->v;
	int64_t now = t->t_ms;

	if (!d->loaded) {
		/* First tick: the files count from here on the tick clock. */
		if (kl_decider_reload_exemptions(d, now, true, true, errs) < 0)
			return -1;
		d->loaded = true;
		d->next_wl_check = now + v->whitelist_reload / 1000000;
		d->next_fb_check = now + v->feedback_reload / 1000000;
	} else if (reload_requested) {
		reload_requested = 0;
		kl_info("SIGUSR1: reloading exemptions");
		kl_decider_reload_exemptions(d, now, true, false, errs);
	} else if (d->periodic_reload) {
		if (v->whitelist_reload > 0 && now >= d->next_wl_check) {
			kl_decider_reload_exemptions(d, now, false, false, errs);
			d->next_wl_check = now + v->whitelist_reload / 1000000;
		}
		if (v->feedback_reload > 0 && now >= d->next_fb_check) {
			kl_decider_reload_exemptions(d, now, false, false, errs);
			d->next_fb_check = now + v->feedback_reload / 1000000;
		}
	}
	/* Replay traces may rewrite the files' contents at a tick. */
	struct kl_cidrs rel = { 0 };
	if (t->has_whitelist && t->whitelist != NULL) {
		kl_info("%s: whitelist now %zu entries", t->where ? t->where : "trace",
			t->whitelist->n);
		if (kl_exempt_set_whitelist(&d->ex, t->whitelist, now, &rel) < 0)
			return -1;
	}
	if (t->has_feedback && t->feedback != NULL) {
		kl_info("%s: feedback now %zu entries", t->where ? t->where : "trace",
			t->feedback->n);
		if (kl_exempt_set_feedback(&d->ex, t->feedback, now, &rel) < 0)
			return -1;
	}
	if (queue_releases(d, &rel) < 0)
		return -1;

	d->ex.now = now;
	d->ch.n = 0;
	bool any_ex = !kl_exempt_empty(&d->ex);
	if (kl_engine_tick(d->eng, now, t->src, t->nsrc, t->viol, t->nviol,
			   any_ex ? kl_exempt_cb : NULL, any_ex ? &d->ex : NULL, &d->ch) < 0) {
		kl_errs_add(errs, "out of memory in tick at t=%lld ms", (long long)now);
		return -1;
	}
	d->ticks++;
	for (size_t i = 0; i < d->ch.n; i++)
		if (d->ch.v[i].reason != KL_R_REFRESH)
			d->changes_total++;
	if (d->ch.n > 0 && d->sink->apply(d->sink, now, d->ch.v, d->ch.n) < 0) {
		kl_errs_add(errs, "output failed at t=%lld ms", (long long)now);
		return -1;
	}
	do_releases(d, now);
	tick_log(d, now);
	return 0;
}

int kl_decider_replay(struct kl_decider *d, struct kl_input *in, struct kl_errs *errs)
{
	struct kl_tick t;
	int r;

	while ((r = in->next(in, &t, errs)) == 1) {
		if (kl_decider_tick(d, &t, errs) < 0)
			return -1;
	}
	if (r < 0)
		return -1;
	const struct kl_engine_stats *st = kl_engine_stats(d->eng);
	kl_info("replay done: %llu ticks, %llu level changes, %zu sources tracked, %zu forgotten",
		(unsigned long long)d->ticks, (unsigned long long)d->changes_total, st->tracked,
		st->forgotten);
	return 0;
}

static void on_sigusr1(int sig)
{
	(void)sig;
	kl_decider_request_reload();
}

int kl_decider_run_replay(const struct kl_config *cfg)
{
	struct kl_errs errs = { 0 };
	struct kl_decider d;
	struct kl_sink *sink;
	struct kl_input *in;
	struct sigaction sa;
	uint64_t seed = 0;
	int rc = 1;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigusr1;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	/* The hash seed only defends the tables; output never depends on it. */
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
		seed = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull;

	in = kl_input_jsonl_open(cfg->v.replay, cfg->v.interval / 1000000, &errs);
	sink = kl_sink_print_new(stdout, cfg->v.decisions_json, cfg->v.dry_run);
	if (in == NULL || sink == NULL || kl_decider_init(&d, cfg, sink, seed, false) < 0) {
		kl_errs_add(&errs, "cannot start the replay");
		goto out_nod;
	}
	kl_info("replay %s: profile %s, dry_run=%s", cfg->v.replay, cfg->profile->name,
		cfg->v.dry_run ? "true" : "false");
	if (kl_decider_replay(&d, in, &errs) == 0)
		rc = 0;
	kl_decider_free(&d);
out_nod:
	for (size_t i = 0; i < errs.n; i++)
		kl_error("%s", errs.v[i]);
	kl_errs_free(&errs);
	if (in != NULL)
		in->close(in);
	if (sink != NULL)
		sink->close(sink);
	if (fflush(stdout) != 0)
		rc = 1;
	return rc;
}
