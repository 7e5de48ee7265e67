/* SPDX-License-Identifier: MPL-2.0 */
#include "decider/decider.h"

#include <errno.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/duration.h"
#include "common/prom.h"
#include "common/log.h"
#include "decider/autotune.h"
#include "decider/baseline.h"
#include "decider/state.h"
#include "decider/yamlcfg.h"

/* state.json is written at least this often while learning, so a crash
 * loses little of it. */
#define CHECKPOINT_EVERY_MS (10 * 60 * 1000)

static volatile sig_atomic_t reload_requested;

void dec_request_reload(void)
{
	reload_requested = 1;
}

static const char *flag_str(const struct kl_layer *L, const char *name)
{
	int ki = kl_knob_index(&dec_knobset, name);
	if (ki < 0 || !L->set[ki])
		return "";
	size_t n;
	const struct kl_knob *k = &dec_knobs(&n)[ki];
	const char *s = *(char *const *)((const char *)L->v + k->off);
	return s != NULL ? s : "";
}

int dec_load_config(int argc, char *const argv[], struct dec_config *cfg,
			   enum kl_cli_action *action, char **policy_canonical,
			   struct kl_errs *errs)
{
	struct kl_layer flags, pdp, pol;
	struct dec_doc_info pdp_info, pol_info;
	bool have_pdp = false, have_pol = false;
	size_t before = errs->n;

	memset(cfg, 0, sizeof(*cfg));
	memset(&pdp_info, 0, sizeof(pdp_info));
	memset(&pol_info, 0, sizeof(pol_info));
	if (policy_canonical != NULL)
		*policy_canonical = NULL;
	kl_layer_init(&flags, &dec_knobset, KL_L_FLAG, NULL);
	kl_cli_parse(&dec_knobset, argc, argv, &flags, action, NULL, NULL, errs);
	if (*action != KL_CLI_RUN) {
		kl_layer_free(&flags);
		return 0;
	}

	/* The files are named by flags only (a file cannot name another). */
	const char *pdp_path = flag_str(&flags, "pdp-config");
	if (!flags.set[kl_knob_index(&dec_knobset, "pdp-config")] &&
	    access(DEC_PDP_DEFAULT, F_OK) == 0)
		pdp_path = DEC_PDP_DEFAULT;
	const char *pol_path = flag_str(&flags, "policy");
	const char *key_path = flag_str(&flags, "policy-pubkey");
	if (pdp_path[0] != '\0') {
		kl_layer_init(&pdp, &dec_knobset, KL_L_PDP, pdp_path);
		have_pdp = true;
		dec_yaml_load_file(pdp_path, KL_DOC_PDP, &pdp, &pdp_info, errs);
	}
	if (pol_path[0] != '\0') {
		kl_layer_init(&pol, &dec_knobset, KL_L_POLICY, pol_path);
		have_pol = true;
		if (dec_yaml_load_file(pol_path, KL_DOC_POLICY, &pol, &pol_info, errs) == 0) {
			char err[256];
			if (key_path[0] != '\0') {
				unsigned char pk[32];
				if (dec_pubkey_load(key_path, pk, err, sizeof(err)) < 0)
					kl_errs_add(errs, "--policy-pubkey: %s", err);
				else if (dec_policy_verify(&pol_info, pk, err, sizeof(err)) < 0)
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
	dec_config_resolve(cfg, &flags, have_pdp ? &pdp : NULL, have_pol ? &pol : NULL, NULL, errs);
	if (errs->n == before && cfg->v.autotune) {
		/* Schedule rules the knob table cannot express (-n shows them too). */
		struct at_config ac;
		dec_at_config(cfg, &ac, errs);
	}
	kl_layer_free(&flags);
	if (have_pdp)
		kl_layer_free(&pdp);
	if (have_pol)
		kl_layer_free(&pol);
	dec_doc_info_free(&pdp_info);
	dec_doc_info_free(&pol_info);
	return errs->n > before ? -1 : 0;
}

/* Read and parse one exemption file. Returns 0 with *out filled (empty if
 * disabled or, when missing_ok, absent), or -1 with an error added. */
static int read_exempt_file(const char *path, bool feedback, bool missing_ok,
			    struct dec_exempt_list *out, struct kl_errs *errs)
{
	char *buf;
	size_t len;
	char err[512];
	int rc;

	memset(out, 0, sizeof(*out));
	if (path == NULL || path[0] == '\0')
		return 0;
	if (dec_read_file(path, DEC_EX_MAX_FILE, &buf, &len, err, sizeof(err)) < 0) {
		if (errno == ENOENT && missing_ok)
			return 0;
		kl_errs_add(errs, "cannot read the %s: %s", feedback ? "feedback file" : "whitelist",
			    err);
		return -1;
	}
	rc = feedback ? dec_feedback_parse(buf, len, path, out, errs)
		      : dec_whitelist_parse(buf, len, path, out, errs);
	free(buf);
	return rc;
}

/* The whitelist may only be missing at its default path; a feedback file
 * may always be missing (klctl creates it on first use). */
static bool wl_missing_ok(const struct dec_config *cfg)
{
	return cfg->r.o[kl_knob_index(&dec_knobset, "whitelist")].kind == KL_L_DEFAULT;
}

int dec_check_files(const struct dec_config *cfg, struct kl_errs *errs)
{
	struct dec_exempt_list l;
	int rc = 0;

	if (read_exempt_file(cfg->v.whitelist, false, wl_missing_ok(cfg), &l, errs) < 0)
		rc = -1;
	dec_exempt_list_free(&l);
	if (read_exempt_file(cfg->v.feedback_file, true, true, &l, errs) < 0)
		rc = -1;
	dec_exempt_list_free(&l);
	return rc;
}

int dec_init(struct dec_decider *d, const struct dec_config *cfg, struct dec_sink *sink,
		    uint64_t seed, bool periodic_reload)
{
	memset(d, 0, sizeof(*d));
	d->cfg = cfg;
	d->sink = sink;
	d->periodic_reload = periodic_reload;
	dec_engine_params_from_config(&cfg->v, &d->params);
	d->eng = dec_engine_new(&d->params, seed);
	if (d->eng == NULL)
		return -1;
	if (cfg->v.baseline) {
		struct dec_bl_params bp;
		dec_bl_params_from_config(&cfg->v, &bp);
		d->bl = dec_bl_new(&bp, seed ^ 0x6b6c626cull);
		if (d->bl == NULL) {
			dec_engine_free(d->eng);
			return -1;
		}
		dec_engine_set_baselines(d->eng, d->bl);
	}
	dec_exempt_init(&d->ex);
	d->last_tick_log = DEC_T_NEVER;
	d->next_release = DEC_T_NEVER;
	d->last_t = DEC_T_NEVER;
	return 0;
}

void dec_free(struct dec_decider *d)
{
	dec_audit_free(d->audit); /* writes what is queued, then audit_stop */
	autotune_free(d->at);
	free(d->at_sev);
	free(d->at_level);
	free(d->at_flags);
	dec_engine_free(d->eng);
	dec_bl_free(d->bl);
	free(d->bl_path);
	dec_exempt_free(&d->ex);
	dec_changes_free(&d->ch);
	free(d->pending.v);
	free(d->approved.v);
	memset(d, 0, sizeof(*d));
}

int dec_approved(struct dec_decider *d, const struct kl_addr *a)
{
	/* Bounded: one entry per distinct source, and a flood of the same
	 * approval is one entry. */
	for (size_t i = 0; i < d->approved.n; i++)
		if (dec_addr_cmp(&d->approved.v[i], a) == 0)
			return 0;
	if (d->approved.n >= DEC_APPROVED_MAX)
		return -1;
	struct kl_addr *nv = realloc(d->approved.v, (d->approved.n + 1) * sizeof(*nv));
	if (nv == NULL)
		return -1;
	nv[d->approved.n++] = *a;
	d->approved.v = nv;
	return 0;
}

/* The approvals since the last tick, before the engine runs: a source the
 * operator approved leaves its level now, not at its TTL. */
static int release_approved(struct dec_decider *d, int64_t now)
{
	for (size_t i = 0; i < d->approved.n; i++) {
		char ip[KL_ADDR_STRLEN];
		size_t before = d->ch.n;
		int rc = dec_engine_release(d->eng, &d->approved.v[i], DEC_R_APPROVED, now, &d->ch);
		if (rc < 0)
			return -1;
		kl_addr_format(&d->approved.v[i], ip, sizeof(ip));
		if (rc > 0)
			kl_info("APPROVED %s in the graph: %s->OBSERVE, its enforcer entries removed",
				ip, dec_level_name(d->ch.v[before].from));
		else
			kl_info("APPROVED %s in the graph: nothing held against it", ip);
	}
	d->approved.n = 0;
	return 0;
}

static int queue_releases(struct dec_decider *d, struct kl_cidrs *r)
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
		d->next_release = DEC_T_NEVER; /* release now, not in 30 s */
	}
	free(r->v);
	r->v = NULL;
	r->n = 0;
	return 0;
}

/* One exemption file: whitelist or feedback. */
struct exempt_file {
	const char *what; /* "whitelist", "feedback" */
	const char *path;
	bool feedback, missing_ok;
	struct dec_filewatch *watch;
	int (*set)(struct dec_exempt *x, struct dec_exempt_list *l, int64_t now,
		   struct kl_cidrs *released);
};

/* Re-read f if forced or changed. A file that does not parse is an error
 * at start; later it keeps the previous entries. */
static int reload_exempt_file(struct dec_decider *d, const struct exempt_file *f, int64_t now,
			      bool force, bool initial, struct kl_cidrs *rel, struct kl_errs *errs)
{
	struct kl_errs e = { 0 };
	struct dec_exempt_list l;
	int rc = 0;

	if (f->path[0] == '\0' || !(force || dec_filewatch_changed(f->watch, f->path)))
		return 0;
	if (force)
		dec_filewatch_changed(f->watch, f->path);
	if (read_exempt_file(f->path, f->feedback, f->missing_ok, &l, &e) == 0) {
		kl_info("%s %s: %zu entries", f->what, f->path, l.n);
		if (f->set(&d->ex, &l, now, rel) < 0)
			rc = -1;
	} else if (initial) {
		for (size_t i = 0; i < e.n; i++)
			kl_errs_add(errs, "%s", e.v[i]);
		rc = -1;
	} else {
		for (size_t i = 0; i < e.n; i++)
			kl_warn("%s (keeping the previous %s)", e.v[i], f->what);
	}
	dec_exempt_list_free(&l);
	kl_errs_free(&e);
	return rc;
}

int dec_reload_exemptions(struct dec_decider *d, int64_t now, bool force, bool initial,
				 struct kl_errs *errs)
{
	const struct dec_dcfg *v = &d->cfg->v;
	const struct exempt_file files[] = {
		{ "whitelist", v->whitelist, false, wl_missing_ok(d->cfg), &d->wl_watch,
		  dec_exempt_set_whitelist },
		{ "feedback", v->feedback_file, true, true, &d->fb_watch, dec_exempt_set_feedback },
	};
	struct kl_cidrs rel = { 0 };
	int rc = 0;

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (reload_exempt_file(d, &files[i], now, force, initial, &rel, errs) < 0)
			rc = -1;
	if (queue_releases(d, &rel) < 0)
		rc = -1;
	free(rel.v);
	return rc;
}

static void do_releases(struct dec_decider *d, int64_t now)
{
	const struct dec_dcfg *v = &d->cfg->v;
	int64_t every = v->feedback_cidr_every / 1000000;
	size_t keep = 0;

	if (d->pending.n == 0 || (d->next_release != DEC_T_NEVER && now < d->next_release))
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

static void tick_log(struct dec_decider *d, int64_t now)
{
	const struct dec_engine_stats *st = dec_engine_stats(d->eng);
	int64_t every = d->cfg->v.tick_log_every / 1000000;
	char ts[32];

	if (every <= 0 || (d->last_tick_log != DEC_T_NEVER && now - d->last_tick_log < every))
		return;
	d->last_tick_log = now;
	kl_info("TICK#%llu t=%s sources=%zu candidates=%zu evaluated=%zu exempt=%zu tracked=%zu "
		"observe=%zu soft=%zu hard=%zu block=%zu changes=%llu dry_run=%s",
		(unsigned long long)d->ticks, dec_fmt_t(now, ts, sizeof(ts)), st->sources,
		st->candidates, st->evaluated, st->exempted, st->tracked,
		st->per_level[DEC_LVL_OBSERVE], st->per_level[DEC_LVL_SOFT],
		st->per_level[DEC_LVL_HARD], st->per_level[DEC_LVL_BLOCK],
		(unsigned long long)d->changes_total, d->cfg->v.dry_run ? "true" : "false");
}

void dec_prom(const struct dec_decider *d, struct kl_prom *p)
{
	static const char *const lvl[] = { "observe", "rate_soft", "rate_hard", "block" };
	const struct dec_engine_stats *st = dec_engine_stats(d->eng);
	char label[32];

	kl_prom_add(p, "kernloom_decider_ticks_total", "counter", "Decision ticks since start.",
		    NULL, (double)d->ticks);
	kl_prom_add(p, "kernloom_decider_level_changes_total", "counter",
		    "Level changes since start (TTL refreshes not counted).", NULL,
		    (double)d->changes_total);
	for (int l = DEC_LVL_OBSERVE; l <= DEC_LVL_BLOCK; l++) {
		snprintf(label, sizeof(label), "level=\"%s\"", lvl[l - DEC_LVL_OBSERVE]);
		kl_prom_add(p, "kernloom_decider_sources", "gauge",
			    "Tracked sources by level after the last tick.", label,
			    (double)st->per_level[l]);
	}
	kl_prom_add(p, "kernloom_decider_candidates", "gauge",
		    "Sources stepped in the last tick (candidates).", NULL, (double)st->candidates);
	kl_prom_add(p, "kernloom_decider_exempt", "gauge",
		    "Sources exempt in the last tick (whitelist, feedback).", NULL,
		    (double)st->exempted);
	kl_prom_add(p, "kernloom_decider_dry_run", "gauge", "1 when decisions are only logged.",
		    NULL, d->cfg->v.dry_run ? 1 : 0);
}

/* ---- autotune glue ---- */

static int64_t ns_ms(int64_t ns)
{
	return ns <= 0 ? 0 : ns / 1000000;
}

static const char *const trig_flag[AT_NF] = { "trig-pps", "trig-syn", "trig-scan", "trig-bps" };

int dec_at_config(const struct dec_config *cfg, struct at_config *ac, struct kl_errs *errs)
{
	const struct dec_dcfg *v = &cfg->v;
	char err[256];

	at_config_defaults(ac);
	for (int f = 0; f < AT_NF; f++) {
		int ki = kl_knob_index(&dec_knobset, trig_flag[f]);
		/* A trigger given as a flag is the operator's: pinned, not tuned. */
		ac->tune[f] = v->autotune && v->trig[f] > 0.0 && ki >= 0 &&
			      cfg->r.o[ki].kind != KL_L_FLAG;
		ac->floor[f] = v->autotune_floor[f];
	}
	ac->min_samples = v->autotune_min_samples;
	ac->bootstrap = v->bootstrap;
	ac->phase1_end_ms = ns_ms(v->bootstrap_phase1_end);
	ac->phase2_end_ms = ns_ms(v->bootstrap_phase2_end);
	ac->window_ms = ns_ms(v->bootstrap_window);
	for (int p = 0; p < 3; p++)
		ac->ph[p] = (struct at_phase_cfg){ ns_ms(v->bootstrap_every[p]),
						   v->bootstrap_max_up[p], v->bootstrap_max_down[p],
						   v->bootstrap_alpha[p] };
	ac->ph[AT_STEADY] = (struct at_phase_cfg){
		ns_ms(v->bootstrap ? v->steady_every : v->autotune_every),
		v->autotune_max_change_up > 0.0 ? v->autotune_max_change_up : v->autotune_max_change,
		v->autotune_max_change_down > 0.0 ? v->autotune_max_change_down
						  : v->autotune_max_change,
		v->autotune_alpha
	};
	ac->k_start = v->bootstrap_k_start;
	ac->k_final = v->bootstrap_k_final;
	ac->k_steady = v->autotune_k;
	ac->learn_sev_gt = v->learn_sev_gt;
	ac->learn_frac_gt = v->learn_frac_gt;
	ac->learn_max_sev = v->learn_max_sev;
	ac->learn_max_drop_ratio = v->learn_max_drop_ratio;
	ac->learn_skip_if_blocks = v->learn_skip_if_blocks;
	ac->whitelist_learn = v->whitelist_learn;
	ac->feedback_learn = v->feedback_learn;
	ac->history_max = (uint32_t)v->state_history;
	/* A gap in telemetry (decider stopped, sensor gone) is not observed
	 * time: one tick never adds more than a few intervals to the clock. */
	int64_t iv5 = 5 * ns_ms(v->interval);
	ac->max_tick_ms = iv5 > 60000 ? iv5 : 60000;
	if (at_config_check(ac, err, sizeof(err)) < 0) {
		kl_errs_add(errs, "autotune: %s", err);
		return -1;
	}
	return 0;
}

/* New triggers for the engine from the next tick; rates derived from
 * trig-pps (soft/hard-rate-factor) follow them. */
static void apply_triggers(struct dec_decider *d, const double trig[AT_NF])
{
	struct dec_dcfg tmp = d->cfg->v; /* shallow view: only trig differs */

	memcpy(tmp.trig, trig, sizeof(tmp.trig));
	dec_engine_params_from_config(&tmp, &d->params);
	dec_engine_set_params(d->eng, &d->params);
}

void dec_config_changed(struct dec_decider *d)
{
	double trig[AT_NF];

	memcpy(trig, d->params.trig, sizeof(trig));
	apply_triggers(d, trig);
}

static int autotune_start(struct dec_decider *d, int64_t now, struct kl_errs *errs)
{
	const struct dec_config *cfg = d->cfg;
	const struct dec_dcfg *v = &cfg->v;
	struct at_config ac;
	struct at_triggers start;
	struct dec_state st;
	bool loaded = false, restart = false;
	char why[256], err[256];

	if (!v->autotune || d->at != NULL)
		return 0;
	if (dec_at_config(cfg, &ac, errs) < 0)
		return -1;
	/* A replay must not touch the host's state unless asked to. */
	int ki = kl_knob_index(&dec_knobset, "state-file");
	d->state_path = NULL;
	if (v->state_file[0] != '\0' &&
	    (v->replay[0] == '\0' || (ki >= 0 && cfg->r.o[ki].kind == KL_L_FLAG)))
		d->state_path = v->state_file;
	memcpy(start.v, v->trig, sizeof(start.v));
	memset(&st, 0, sizeof(st));
	if (d->state_path != NULL) {
		struct state_load_report rep;
		int r = state_load(d->state_path, now, ns_ms(v->max_state_age), &st, &rep);
		if (r >= 0) {
			loaded = true;
			restart = state_restart_reason(&st, cfg->profile->name, v->autotune_floor,
						       v->trig, why, sizeof(why));
			if (restart)
				kl_info("autotune: %s: %s; restarting the bootstrap (history kept)",
					d->state_path, why);
		}
	}
	if (loaded && !restart)
		for (int f = 0; f < AT_NF; f++)
			if (ac.tune[f] && st.trig[f] > 0.0)
				start.v[f] = st.trig[f];
	d->at = autotune_new(&ac, &start, now, err, sizeof(err));
	if (d->at == NULL) {
		dec_state_free(&st);
		kl_errs_add(errs, "autotune: %s", err);
		return -1;
	}
	if (loaded)
		autotune_restore(d->at, &st, restart);
	dec_state_free(&st);
	apply_triggers(d, start.v);

	struct at_status s;
	char obs[48], next[48];
	autotune_status(d->at, &s);
	kl_info("autotune: %s phase=%s observed=%s trig_pps %.1f trig_syn %.1f trig_scan %.1f "
		"trig_bps %.1f, next tune at %s observed, state %s",
		loaded && !restart ? "resumed" : "fresh bootstrap", at_phase_name(s.phase),
		kl_duration_format((uint64_t)s.observed_ms * 1000000ull, obs, sizeof(obs)),
		start.v[DEC_F_PPS], start.v[DEC_F_SYN], start.v[DEC_F_SCAN], start.v[DEC_F_BPS],
		kl_duration_format((uint64_t)s.next_point_ms * 1000000ull, next, sizeof(next)),
		d->state_path != NULL ? d->state_path : "not persisted");
	d->next_checkpoint = now + CHECKPOINT_EVERY_MS;
	return 0;
}

/* Load --baseline-file (or its .bak). A refused store is named with the
 * reason and the decider starts without it: baselines are an optimisation
 * of false positives, never a reason not to run. Like state.json, a
 * replay only touches a file named by a flag. */
static void baseline_start(struct dec_decider *d, int64_t now)
{
	const struct dec_dcfg *v = &d->cfg->v;
	int ki = kl_knob_index(&dec_knobset, "baseline-file"), ks = kl_knob_index(&dec_knobset, "state-file");
	char why[1024];
	bool flag = (ki >= 0 && d->cfg->r.o[ki].kind == KL_L_FLAG) ||
		    (v->baseline_file[0] == '\0' && ks >= 0 && d->cfg->r.o[ks].kind == KL_L_FLAG);

	if (d->bl == NULL || d->bl_path != NULL || (v->replay[0] != '\0' && !flag))
		return;
	if (v->baseline_file[0] != '\0') {
		d->bl_path = strdup(v->baseline_file);
	} else if (v->state_file[0] != '\0') {
		/* beside state.json, in the decider's own directory */
		const char *slash = strrchr(v->state_file, '/');
		size_t dl = slash != NULL ? (size_t)(slash - v->state_file) + 1 : 0;
		d->bl_path = malloc(dl + sizeof("baselines.json"));
		if (d->bl_path != NULL) {
			memcpy(d->bl_path, v->state_file, dl);
			memcpy(d->bl_path + dl, "baselines.json", sizeof("baselines.json"));
		}
	} else {
		return;
	}
	if (d->bl_path == NULL) {
		kl_error("baselines: out of memory; not persisted");
		return;
	}
	d->next_bl_save = now + CHECKPOINT_EVERY_MS;
	int r = dec_bl_load(d->bl, d->bl_path, now, ns_ms(v->max_state_age), why, sizeof(why));
	if (r >= 0)
		kl_info("baselines: %zu sources loaded from %s%s", dec_bl_count(d->bl), d->bl_path,
			r == 1 ? ".bak" : "");
	else if (strstr(why, ": absent;") != NULL && strstr(why, ".bak: absent") != NULL)
		kl_info("baselines: %s: none yet, learning from scratch", d->bl_path);
	else
		kl_error("baselines: store refused, starting without it: %s", why);
}

static int baseline_checkpoint(struct dec_decider *d, int64_t now, const char *why)
{
	char err[512];

	if (d->bl == NULL || d->bl_path == NULL)
		return 0;
	d->next_bl_save = now + CHECKPOINT_EVERY_MS;
	if (dec_bl_save(d->bl, d->bl_path, now, err, sizeof(err)) < 0) {
		kl_warn("baselines: cannot write %s (%s): %s", d->bl_path, why, err);
		return -1;
	}
	kl_debug("baselines: %zu sources written to %s (%s)", dec_bl_count(d->bl), d->bl_path,
		 why);
	return 0;
}

int dec_checkpoint(struct dec_decider *d, int64_t now, const char *why)
{
	char err[512];
	int brc = baseline_checkpoint(d, now, why);

	if (d->at == NULL || d->state_path == NULL)
		return brc;
	d->next_checkpoint = now + CHECKPOINT_EVERY_MS;
	if (state_save_autotune(d->state_path, d->at, d->cfg->profile->name, now, err,
				sizeof(err)) < 0) {
		kl_warn("autotune: cannot write %s (%s): %s", d->state_path, why, err);
		return -1;
	}
	kl_debug("autotune: state written to %s (%s)", d->state_path, why);
	return brc;
}

static int grow_scratch(struct dec_decider *d, size_t n)
{
	if (n <= d->at_cap)
		return 0;
	size_t nc = d->at_cap ? d->at_cap : 256;
	while (nc < n)
		nc *= 2;
	double *s = realloc(d->at_sev, nc * sizeof(*s));
	if (s == NULL)
		return -1;
	d->at_sev = s;
	uint8_t *l = realloc(d->at_level, nc);
	if (l == NULL)
		return -1;
	d->at_level = l;
	uint8_t *fl = realloc(d->at_flags, nc);
	if (fl == NULL)
		return -1;
	d->at_flags = fl;
	d->at_cap = nc;
	return 0;
}

/* After the engine's tick: show autotune what the tick looked like, tune
 * when a tune point is reached. */
static int autotune_tick(struct dec_decider *d, const struct dec_tick *t, int64_t now)
{
	const struct dec_engine_stats *es = dec_engine_stats(d->eng);
	struct at_tick_view v;
	struct at_triggers trig;
	char line[AT_LOGLINE_MAX];

	if (grow_scratch(d, t->nsrc) < 0)
		return -1;
	/* Views with one list each: which kind of exemption covers a source. */
	struct dec_exempt wl = { .wl = d->ex.wl, .now = now };
	struct dec_exempt fb = { .fb = d->ex.fb, .now = now };
	for (size_t i = 0; i < t->nsrc; i++) {
		const struct dec_src *s = dec_engine_lookup(d->eng, &t->src[i].addr);
		d->at_sev[i] = dec_severity(&d->params, &t->src[i]);
		d->at_level[i] = s != NULL ? s->level : DEC_LVL_OBSERVE;
		d->at_flags[i] = 0;
		if (d->ex.wl.n > 0 && dec_exempt_lookup(&wl, &t->src[i].addr, now) != DEC_EX_NONE)
			d->at_flags[i] |= AT_SRC_WHITELIST;
		if (d->ex.fb.n > 0 && dec_exempt_lookup(&fb, &t->src[i].addr, now) != DEC_EX_NONE)
			d->at_flags[i] |= AT_SRC_FEEDBACK;
	}
	memset(&v, 0, sizeof(v));
	v.elapsed_ms = t->elapsed_ms;
	v.m = t->src;
	v.n = t->nsrc;
	v.sev = d->at_sev;
	v.level = d->at_level;
	v.flags = d->at_flags;
	v.n_block = es->per_level[DEC_LVL_BLOCK];
	if (t->totals != NULL && t->ntotals > KL_T_DROP_RL) {
		v.has_totals = true;
		v.pkts = t->totals[KL_T_PKTS];
		/* Allow-list drops are policy, not overload: left out. */
		v.drops = t->totals[KL_T_DROP_RL] + t->totals[KL_T_DROP_DENY];
	}
	autotune_observe_tick(d->at, &v);
	memcpy(trig.v, d->params.trig, sizeof(trig.v));
	enum at_tune_rc rc = autotune_maybe_tune(d->at, now, &trig, line, sizeof(line));
	if (rc != AT_TUNE_NONE)
		kl_info("%s", line);
	if (rc == AT_TUNE_APPLIED) {
		apply_triggers(d, trig.v);
		dec_checkpoint(d, now, "tune applied");
	} else if (d->state_path != NULL && now >= d->next_checkpoint) {
		dec_checkpoint(d, now, "periodic");
	}
	return 0;
}

int dec_start(struct dec_decider *d, int64_t now, struct kl_errs *errs)
{
	const struct dec_dcfg *v = &d->cfg->v;

	if (dec_reload_exemptions(d, now, true, true, errs) < 0)
		return -1;
	if (autotune_start(d, now, errs) < 0)
		return -1;
	baseline_start(d, now);
	d->loaded = true;
	d->next_wl_check = now + v->whitelist_reload / 1000000;
	d->next_fb_check = now + v->feedback_reload / 1000000;
	return 0;
}

int dec_run_tick(struct dec_decider *d, struct dec_tick *t, struct kl_errs *errs)
{
	const struct dec_dcfg *v = &d->cfg->v;
	int64_t now = t->t_ms;

	if (!d->loaded) {
		/* First tick: the files count from here on the tick clock. */
		if (dec_start(d, now, errs) < 0)
			return -1;
	} else if (reload_requested) {
		reload_requested = 0;
		kl_info("SIGUSR1: reloading exemptions");
		dec_reload_exemptions(d, now, true, false, errs);
	} else if (d->periodic_reload) {
		if (v->whitelist_reload > 0 && now >= d->next_wl_check) {
			dec_reload_exemptions(d, now, false, false, errs);
			d->next_wl_check = now + v->whitelist_reload / 1000000;
		}
		if (v->feedback_reload > 0 && now >= d->next_fb_check) {
			dec_reload_exemptions(d, now, false, false, errs);
			d->next_fb_check = now + v->feedback_reload / 1000000;
		}
	}
	/* Replay traces may rewrite the files' contents at a tick. */
	struct kl_cidrs rel = { 0 };
	if (t->has_whitelist && t->whitelist != NULL) {
		kl_info("%s: whitelist now %zu entries", t->where ? t->where : "trace",
			t->whitelist->n);
		if (dec_exempt_set_whitelist(&d->ex, t->whitelist, now, &rel) < 0)
			return -1;
	}
	if (t->has_feedback && t->feedback != NULL) {
		kl_info("%s: feedback now %zu entries", t->where ? t->where : "trace",
			t->feedback->n);
		if (dec_exempt_set_feedback(&d->ex, t->feedback, now, &rel) < 0)
			return -1;
	}
	if (queue_releases(d, &rel) < 0)
		return -1;

	d->ex.now = now;
	d->ch.n = 0;
	if (release_approved(d, now) < 0) {
		kl_errs_add(errs, "out of memory releasing approved sources at t=%lld ms",
			    (long long)now);
		return -1;
	}
	bool any_ex = !dec_exempt_empty(&d->ex);
	if (dec_engine_tick(d->eng, now, t->src, t->nsrc, t->viol, t->nviol,
			   any_ex ? dec_exempt_cb : NULL, any_ex ? &d->ex : NULL, &d->ch) < 0) {
		kl_errs_add(errs, "out of memory in tick at t=%lld ms", (long long)now);
		return -1;
	}
	d->ticks++;
	d->last_t = now;
	dec_audit_tick(d->audit, d->ticks, &d->params, d->ch.v, d->ch.n);
	if (d->at != NULL && autotune_tick(d, t, now) < 0) {
		kl_errs_add(errs, "out of memory in autotune at t=%lld ms", (long long)now);
		return -1;
	}
	for (size_t i = 0; i < d->ch.n; i++)
		if (d->ch.v[i].reason != DEC_R_REFRESH)
			d->changes_total++;
	/* Also without changes: the enforcer sink retries what did not get
	 * through on an earlier tick. */
	if (d->sink->apply(d->sink, now, d->ch.v, d->ch.n) < 0) {
		kl_errs_add(errs, "output failed at t=%lld ms", (long long)now);
		return -1;
	}
	if (d->bl_path != NULL && now >= d->next_bl_save)
		baseline_checkpoint(d, now, "periodic");
	do_releases(d, now);
	tick_log(d, now);
	return 0;
}

int dec_replay(struct dec_decider *d, struct dec_input *in, struct kl_errs *errs)
{
	struct dec_tick t;
	int r;

	while ((r = in->next(in, &t, errs)) == 1) {
		if (dec_run_tick(d, &t, errs) < 0)
			return -1;
	}
	if (r < 0)
		return -1;
	const struct dec_engine_stats *st = dec_engine_stats(d->eng);
	kl_info("replay done: %llu ticks, %llu level changes, %zu sources tracked, %zu forgotten",
		(unsigned long long)d->ticks, (unsigned long long)d->changes_total, st->tracked,
		st->forgotten);
	return 0;
}

static void on_sigusr1(int sig)
{
	(void)sig;
	dec_request_reload();
}

int dec_run_replay(const struct dec_config *cfg)
{
	struct kl_errs errs = { 0 };
	struct dec_decider d;
	struct dec_sink *sink;
	struct dec_input *in;
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

	in = dec_input_open(cfg->v.replay, cfg->v.interval / 1000000, &errs);
	sink = dec_sink_print_new(stdout, cfg->v.decisions_json, cfg->v.dry_run);
	if (in == NULL || sink == NULL || dec_init(&d, cfg, sink, seed, false) < 0) {
		kl_errs_add(&errs, "cannot start the replay");
		goto out_nod;
	}
	kl_info("replay %s: profile %s, dry_run=%s", cfg->v.replay, cfg->profile->name,
		cfg->v.dry_run ? "true" : "false");
	if (dec_replay(&d, in, &errs) == 0)
		rc = 0;
	if (d.last_t != DEC_T_NEVER && dec_checkpoint(&d, d.last_t, "end of replay") < 0)
		rc = 1;
	dec_free(&d);
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
