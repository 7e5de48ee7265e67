/* SPDX-License-Identifier: MPL-2.0 */
/*
 * The decider's knob table, its profiles' precedence and cross-field
 * checks; the machinery that works on any table is common/knob.c.
 */
#include "decider/knobs.h"

#include "common/kyaml.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bpf/shield.h"
#include "common/duration.h"
#include "decider/baseline.h"

const char *const dec_action_names[] = { "observe", "rate_limit", "rate_limit_hard", "block", NULL };
const char *const dec_graph_mode_names[] = { "learn", "frozen-observe", "frozen-enforce", NULL };

#define OFF(f) offsetof(struct dec_dcfg, f)
#define STR_(x) #x
#define STR(x) STR_(x)
#define H (3600.0)
#define DAY (86400.0)

/* Groups, in help order. */
#define G_CORE "Core runtime"
#define G_PROF "Profile + persistence"
#define G_FILES "Configuration files and privileges"
#define G_REPLAY "Replay and one-shot modes"
#define G_WL "Whitelist (permanent exemptions)"
#define G_FB "Feedback (temporary exemptions)"
#define G_BOOT "Bootstrap schedule (self-tuning ramp; takes effect with autotune)"
#define G_AUTO "Autotune (Median + MAD; takes effect with autotune)"
#define G_LEARN "Clean tick gates (anti-poison)"
#define G_SEV "Severity model (triggers + weights)"
#define G_STRIKE "Strike mapping (severity -> strikes)"
#define G_LEVEL "Level thresholds (strikes -> action)"
#define G_ACT "Enforcement action parameters"
#define G_GATE "Block safety gate"
#define G_HYST "Hysteresis (anti-flap)"
#define G_NC "Non-compliance escalation"
#define G_HOUSE "Housekeeping (memory bounds)"
#define G_SPOOF "Spoofed floods (new sources not yet admitted to a slot)"
#define G_POL "Policy (PolicyPack)"
#define G_BL "Per-source baselines (PDPConfig spec.baseline)"
#define G_GRAPH "Graph (PDPConfig spec.graph; used by kl-graphd and for violations)"

static const struct kl_knob knobs[] = {
	/* ---- core runtime ---- */
	{ "interval", KT_DUR, OFF(interval), "1s", .min = 0, .max = H, .flags = KF_EXCL_MIN,
	  .group = G_CORE, .help = "Poll interval and decision tick." },
	{ "top", KT_INT, OFF(top), "200", .min = 1, .max = 1e7, .group = G_CORE,
	  .help = "Evaluate top-N sources by severity per tick. Larger values = more CPU." },
	{ "min-pps", KT_FLOAT, OFF(min_pps), "10", .min = 0, .max = 1e12, .flags = KF_LIVE, .group = G_CORE,
	  .help = "Ignore sources below this PPS unless severity/DropRL/s keeps them relevant." },
	{ "min-sev", KT_FLOAT, OFF(min_sev), "0", .min = 0, .max = 1e6, .flags = KF_LIVE, .group = G_CORE,
	  .help = "Include candidates with severity >= this (0 = off)." },
	{ "dry-run", KT_BOOL, OFF(dry_run), "true", .pol = "dry_run", .group = G_CORE,
	  .help = "If true: send nothing to the enforcer, only log ACTION ... dry_run=true." },
	{ "log-level", KT_ENUM, OFF(log_level), "info", .enums = kl_log_level_names,
	  .flags = KF_LIVE, .group = G_CORE, .help = "Least severe log level written to stderr." },
	{ "tick-log-every", KT_DUR, OFF(tick_log_every), "10s", .min = 0, .max = DAY,
	  .flags = KF_LIVE, .group = G_CORE, .help = "Period of the TICK#n summary line (0 disables)." },

	/* ---- profile + persistence ---- */
	{ "profile", KT_STR, OFF(profile), "generic", .group = G_PROF,
	  .help = "Initial profile name (aliases: router, controller, internal)." },
	{ "state-file", KT_STR, OFF(state_file), "/var/lib/kernloom/decider/state.json",
	  .group = G_PROF,
	  .help = "Persist tuned triggers, bootstrap metadata, and history. Empty disables persistence." },
	{ "max-state-age", KT_DUR, OFF(max_state_age), "336h", .min = 0, .max = 3650 * DAY,
	  .group = G_PROF, .help = "Ignore persisted state older than this (0 disables)." },
	{ "state-history", KT_INT, OFF(state_history), "30", .min = 0, .max = 100000,
	  .group = G_PROF, .help = "Keep last N history entries." },

	/* ---- files and privileges ---- */
	{ "pdp-config", KT_STR, OFF(pdp_config), DEC_PDP_DEFAULT, .group = G_FILES,
	  .help = "PDPConfig YAML (thresholds, autotune, graph, enforcement); kl-graphd reads "
		  "its spec.graph too. A missing default file means none. Empty: none." },
	{ "policy", KT_STR, OFF(policy), "", .group = G_FILES,
	  .help = "PolicyPack YAML (per-level actions, rates, TTLs, block gate). Empty: none." },
	{ "policy-pubkey", KT_STR, OFF(policy_pubkey), "", .group = G_FILES,
	  .help = "File with the Ed25519 public key (base64 or hex) a PolicyPack must be signed with. "
		  "When set, an unsigned or badly signed pack is refused." },
	{ "run-dir", KT_STR, OFF(run_dir), "/run/kernloom", .group = G_FILES,
	  .help = "Root of the socket directories (ours in RUN_DIR/decider/)." },
	{ "audit-dir", KT_STR, OFF(audit_dir), "/var/log/kernloom/decider", .group = G_FILES,
	  .help = "Audit trail: a signed receipt for every decision (live mode; empty disables)." },
	{ "audit-key", KT_STR, OFF(audit_key), "/var/lib/kernloom/decider/audit.key",
	  .group = G_FILES,
	  .help = "Ed25519 key signing the audit trail, or a directory for audit.key; created at "
		  "first start (mode 0600, the decider's user), public key next to it (.pub)." },
	{ "user", KT_STR, OFF(user), "kernloom-decider", .group = G_FILES,
	  .help = "When started as root: drop to this user with no capabilities." },
	{ "sensor-user", KT_STR, OFF(sensor_user), "kernloom-sensor", .group = G_FILES,
	  .help = "User whose kl-sensor may send telemetry (RUN_DIR/decider/telemetry.sock gets its group); "
		  "root and --user always may." },
	{ "graph-user", KT_STR, OFF(graph_user), "kernloom-graph", .group = G_FILES,
	  .help = "User whose kl-graphd may send graph violations (RUN_DIR/decider/violations.sock gets "
		  "its group); root and --user always may." },
	{ "sensor-max-sources", KT_INT, OFF(sensor_max_sources), STR(KL_SRC_MAX_DEFAULT), .min = 1,
	  .max = 16777216, .group = G_FILES,
	  .help = "The enforcer's map_sizes.src: TELEMETRY frames larger than such maps can give "
		  "are refused, so a lying sensor cannot make the decider allocate more." },

	{ "metrics-file", KT_STR, OFF(metrics_file), "", .group = G_FILES,
	  .help = "Write Prometheus metrics (node_exporter textfile format) here every tick, "
		  "atomically. Empty: none." },

	/* ---- replay / one-shot ---- */
	{ "replay", KT_STR, OFF(replay), "", .group = G_REPLAY,
	  .help = "Run the engine on a trace (JSON lines or a kl-sensor --record file; '-' = stdin) "
		  "on its virtual clock and exit." },
	{ "decisions-json", KT_BOOL, OFF(decisions_json), "false", .group = G_REPLAY,
	  .help = "With --replay: one JSON object per level change on stdout instead of log lines." },
	{ "config-check", KT_BOOL, OFF(config_check), "false", .group = G_REPLAY,
	  .help = "(-n) Print the effective configuration and where each value came from; exit 0, "
		  "or 2 naming every bad key." },
	{ "policy-canonical", KT_BOOL, OFF(policy_canonical), "false", .group = G_REPLAY,
	  .help = "Print the canonical text of --policy (what its signature covers) and exit." },

	/* ---- whitelist ---- */
	{ "whitelist", KT_STR, OFF(whitelist), "/etc/kernloom/whitelist.txt", .group = G_WL,
	  .help = "IPv4/IPv6 or CIDR, one per line, # comments; empty disables." },
	{ "whitelist-reload", KT_DUR, OFF(whitelist_reload), "10s", .min = 0, .max = DAY,
	  .group = G_WL, .help = "Reload if file changed (0 disables)." },
	{ "whitelist-learn", KT_BOOL, OFF(whitelist_learn), "false", .group = G_WL,
	  .help = "If true, whitelisted sources may contribute to learning (riskier)." },

	/* ---- feedback ---- */
	{ "feedback-file", KT_STR, OFF(feedback_file), "/var/lib/kernloom/decider/feedback.json",
	  .group = G_FB, .help = "JSON array with temporary exemptions; empty disables." },
	{ "feedback-reload", KT_DUR, OFF(feedback_reload), "10s", .min = 0, .max = DAY,
	  .group = G_FB, .help = "Reload if file changed (0 disables)." },
	{ "feedback-learn", KT_BOOL, OFF(feedback_learn), "false", .group = G_FB,
	  .help = "If true, feedback-exempt sources may contribute to learning (riskier)." },
	{ "feedback-deenforce-cidr", KT_BOOL, OFF(feedback_deenforce_cidr), "true", .group = G_FB,
	  .help = "CIDR exemptions ask the enforcer to remove matching RL/deny entries." },
	{ "feedback-cidr-every", KT_DUR, OFF(feedback_cidr_every), "30s", .min = 0, .max = DAY,
	  .group = G_FB, .help = "Interval for CIDR de-enforcement passes (0 disables)." },
	{ "feedback-cidr-max", KT_INT, OFF(feedback_cidr_max), "5000", .min = 1, .max = 1e7,
	  .group = G_FB, .help = "Deletion budget per pass (bounds enforcer CPU)." },

	/* ---- bootstrap ---- */
	{ "bootstrap", KT_BOOL, OFF(bootstrap), "true", .pdp = "autotune.bootstrap.enabled",
	  .group = G_BOOT, .help = "Enable bootstrap tuning schedule." },
	{ "bootstrap-window", KT_DUR, OFF(bootstrap_window), "336h", .min = 0, .max = 3650 * DAY,
	  .flags = KF_EXCL_MIN, .pdp = "autotune.bootstrap.window", .group = G_BOOT,
	  .help = "Total bootstrap duration (recommend ~14d)." },
	{ "bootstrap-phase1-end", KT_DUR, OFF(bootstrap_phase1_end), "48h", .min = 0,
	  .max = 3650 * DAY, .flags = KF_EXCL_MIN, .pdp = "autotune.bootstrap.phase1_end",
	  .group = G_BOOT, .help = "End of phase 1 since bootstrap start." },
	{ "bootstrap-phase2-end", KT_DUR, OFF(bootstrap_phase2_end), "120h", .min = 0,
	  .max = 3650 * DAY, .flags = KF_EXCL_MIN, .pdp = "autotune.bootstrap.phase2_end",
	  .group = G_BOOT, .help = "End of phase 2 since bootstrap start." },
	{ "bootstrap-every1", KT_DUR, OFF(bootstrap_every[0]), "1h", .min = 0, .max = 365 * DAY,
	  .flags = KF_EXCL_MIN, .pdp = "autotune.bootstrap.phase1.interval", .group = G_BOOT,
	  .help = "Autotune interval during phase 1." },
	{ "bootstrap-every2", KT_DUR, OFF(bootstrap_every[1]), "6h", .min = 0, .max = 365 * DAY,
	  .flags = KF_EXCL_MIN, .pdp = "autotune.bootstrap.phase2.interval", .group = G_BOOT,
	  .help = "Autotune interval during phase 2." },
	{ "bootstrap-every3", KT_DUR, OFF(bootstrap_every[2]), "24h", .min = 0, .max = 365 * DAY,
	  .flags = KF_EXCL_MIN, .pdp = "autotune.bootstrap.phase3.interval", .group = G_BOOT,
	  .help = "Autotune interval during phase 3." },
	{ "steady-every", KT_DUR, OFF(steady_every), "84h", .min = 0, .max = 365 * DAY,
	  .flags = KF_EXCL_MIN, .pdp = "autotune.bootstrap.steady.interval", .group = G_BOOT,
	  .help = "Autotune interval after bootstrap." },
	{ "bootstrap-k-start", KT_FLOAT, OFF(bootstrap_k_start), "4.0", .min = 0, .max = 100,
	  .flags = KF_EXCL_MIN, .pdp = "autotune.bootstrap.k_start", .group = G_BOOT,
	  .help = "Higher k early = more conservative thresholds." },
	{ "bootstrap-k-final", KT_FLOAT, OFF(bootstrap_k_final), "3.5", .min = 0, .max = 100,
	  .flags = KF_EXCL_MIN, .pdp = "autotune.bootstrap.k_final", .group = G_BOOT,
	  .help = "Target k at end of bootstrap." },
	{ "bootstrap-max-up1", KT_FLOAT, OFF(bootstrap_max_up[0]), "0.10", .min = 0, .max = 10,
	  .pdp = "autotune.bootstrap.phase1.max_up", .group = G_BOOT,
	  .help = "Phase 1 max relative increase per update." },
	{ "bootstrap-max-down1", KT_FLOAT, OFF(bootstrap_max_down[0]), "0.02", .min = 0, .max = 1,
	  .pdp = "autotune.bootstrap.phase1.max_down", .group = G_BOOT,
	  .help = "Phase 1 max relative decrease per update." },
	{ "bootstrap-max-up2", KT_FLOAT, OFF(bootstrap_max_up[1]), "0.08", .min = 0, .max = 10,
	  .pdp = "autotune.bootstrap.phase2.max_up", .group = G_BOOT,
	  .help = "Phase 2 max relative increase per update." },
	{ "bootstrap-max-down2", KT_FLOAT, OFF(bootstrap_max_down[1]), "0.03", .min = 0, .max = 1,
	  .pdp = "autotune.bootstrap.phase2.max_down", .group = G_BOOT,
	  .help = "Phase 2 max relative decrease per update." },
	{ "bootstrap-max-up3", KT_FLOAT, OFF(bootstrap_max_up[2]), "0.05", .min = 0, .max = 10,
	  .pdp = "autotune.bootstrap.phase3.max_up", .group = G_BOOT,
	  .help = "Phase 3 max relative increase per update." },
	{ "bootstrap-max-down3", KT_FLOAT, OFF(bootstrap_max_down[2]), "0.05", .min = 0, .max = 1,
	  .pdp = "autotune.bootstrap.phase3.max_down", .group = G_BOOT,
	  .help = "Phase 3 max relative decrease per update." },
	{ "bootstrap-alpha1", KT_FLOAT, OFF(bootstrap_alpha[0]), "0.10", .min = 0, .max = 1,
	  .pdp = "autotune.bootstrap.phase1.alpha", .group = G_BOOT,
	  .help = "Smoothing alpha for phase 1." },
	{ "bootstrap-alpha2", KT_FLOAT, OFF(bootstrap_alpha[1]), "0.15", .min = 0, .max = 1,
	  .pdp = "autotune.bootstrap.phase2.alpha", .group = G_BOOT,
	  .help = "Smoothing alpha for phase 2." },
	{ "bootstrap-alpha3", KT_FLOAT, OFF(bootstrap_alpha[2]), "0.20", .min = 0, .max = 1,
	  .pdp = "autotune.bootstrap.phase3.alpha", .group = G_BOOT,
	  .help = "Smoothing alpha for phase 3." },

	/* ---- autotune ---- */
	{ "autotune", KT_BOOL, OFF(autotune), "true", .pdp = "autotune.enabled", .group = G_AUTO,
	  .help = "Enable learning of trig-* thresholds." },
	{ "autotune-every", KT_DUR, OFF(autotune_every), "24h", .min = 0, .max = 365 * DAY,
	  .flags = KF_EXCL_MIN, .pdp = "autotune.interval", .group = G_AUTO,
	  .help = "Tune interval when bootstrap is off." },
	{ "autotune-min-samples", KT_INT, OFF(autotune_min_samples), "5000", .min = 1, .max = 1e9,
	  .pdp = "autotune.min_samples", .group = G_AUTO,
	  .help = "Minimum samples per feature before applying." },
	{ "autotune-k", KT_FLOAT, OFF(autotune_k), "3.5", .min = 0, .max = 100, .flags = KF_EXCL_MIN,
	  .pdp = "autotune.k", .group = G_AUTO,
	  .help = "k for median + k*MAD (higher = more conservative)." },
	{ "autotune-max-change", KT_FLOAT, OFF(autotune_max_change), "0.05", .min = 0, .max = 10,
	  .pdp = "autotune.max_change", .group = G_AUTO,
	  .help = "Max relative change per update (+/-)." },
	{ "autotune-max-change-up", KT_FLOAT, OFF(autotune_max_change_up), "0", .min = 0, .max = 10,
	  .pdp = "autotune.bootstrap.steady.max_up", .group = G_AUTO,
	  .help = "Max relative increase (0 -> use max-change)." },
	{ "autotune-max-change-down", KT_FLOAT, OFF(autotune_max_change_down), "0", .min = 0,
	  .max = 1, .pdp = "autotune.bootstrap.steady.max_down", .group = G_AUTO,
	  .help = "Max relative decrease (0 -> use max-change)." },
	{ "autotune-alpha", KT_FLOAT, OFF(autotune_alpha), "0.2", .min = 0, .max = 1,
	  .pdp = "autotune.bootstrap.steady.alpha", .group = G_AUTO,
	  .help = "Smoothing alpha (0 disables smoothing)." },
	{ "autotune-floor-pps", KT_FLOAT, OFF(autotune_floor[DEC_F_PPS]), "100", .min = 0,
	  .max = 1e12, .pdp = "autotune.floors.pps", .group = G_AUTO,
	  .help = "Minimum trig-pps floor." },
	{ "autotune-floor-syn", KT_FLOAT, OFF(autotune_floor[DEC_F_SYN]), "50", .min = 0,
	  .max = 1e12, .pdp = "autotune.floors.syn", .group = G_AUTO,
	  .help = "Minimum trig-syn floor." },
	{ "autotune-floor-scan", KT_FLOAT, OFF(autotune_floor[DEC_F_SCAN]), "20", .min = 0,
	  .max = 1e12, .pdp = "autotune.floors.scan", .group = G_AUTO,
	  .help = "Minimum trig-scan floor." },
	{ "autotune-floor-bps", KT_FLOAT, OFF(autotune_floor[DEC_F_BPS]), "0", .min = 0,
	  .max = 1e15, .pdp = "autotune.floors.bps", .group = G_AUTO,
	  .help = "Minimum trig-bps floor (when the bps trigger is on)." },

	/* ---- clean tick gates ---- */
	{ "learn-sev-gt", KT_FLOAT, OFF(learn_sev_gt), "1.0", .min = 0, .max = 1e6, .group = G_LEARN,
	  .help = "A source counts as high severity if sev >= this." },
	{ "learn-frac-gt", KT_FLOAT, OFF(learn_frac_gt), "0.005", .min = 0, .max = 1,
	  .group = G_LEARN, .help = "Max fraction of high-sev sources for a tick to be clean." },
	{ "learn-max-sev", KT_FLOAT, OFF(learn_max_sev), "0.8", .min = 0, .max = 1e6,
	  .group = G_LEARN, .help = "Only learn from sources with sev <= this." },
	{ "learn-skip-if-blocks", KT_BOOL, OFF(learn_skip_if_blocks), "true", .group = G_LEARN,
	  .help = "Skip learning if any IP is currently BLOCK." },
	{ "learn-max-drop-ratio", KT_FLOAT, OFF(learn_max_drop_ratio), "0.02", .min = 0, .max = 1,
	  .group = G_LEARN, .help = "Skip learning if global drop ratio is above this (0 disables)." },

	/* ---- severity ---- */
	{ "trig-pps", KT_FLOAT, OFF(trig[DEC_F_PPS]), "0", "0", PC_TRIG_PPS, true,
	  "signal_engine.pps_trigger", .min = 0, .max = 1e12, .flags = KF_EXCL_MIN,
	  .group = G_SEV, .help = "PPS trigger (0 -> profile/state)." },
	{ "trig-syn", KT_FLOAT, OFF(trig[DEC_F_SYN]), "0", "0", PC_TRIG_SYN, true,
	  "signal_engine.syn_trigger", .min = 0, .max = 1e12, .flags = KF_EXCL_MIN,
	  .group = G_SEV, .help = "SYN/s trigger (0 -> profile/state)." },
	{ "trig-scan", KT_FLOAT, OFF(trig[DEC_F_SCAN]), "0", "0", PC_TRIG_SCAN, true,
	  "signal_engine.scan_trigger", .min = 0, .max = 1e12, .flags = KF_EXCL_MIN,
	  .group = G_SEV, .help = "scan/s trigger (0 -> profile/state)." },
	{ "trig-bps", KT_FLOAT, OFF(trig[DEC_F_BPS]), "0", "0", PC_TRIG_BPS, true,
	  "signal_engine.bps_trigger", .min = 0, .max = 1e15, .group = G_SEV,
	  .help = "bytes/s trigger (0 -> profile/state; built-in profiles: off)." },
	{ "w-pps", KT_FLOAT, OFF(w[DEC_F_PPS]), "0", "0", PC_W_PPS, false,
	  "signal_engine.weights.pps", .min = 0, .max = 100, .flags = KF_LIVE, .group = G_SEV,
	  .help = "PPS weight (0 -> profile)." },
	{ "w-syn", KT_FLOAT, OFF(w[DEC_F_SYN]), "0", "0", PC_W_SYN, false,
	  "signal_engine.weights.syn", .min = 0, .max = 100, .flags = KF_LIVE, .group = G_SEV,
	  .help = "SYN weight (0 -> profile)." },
	{ "w-scan", KT_FLOAT, OFF(w[DEC_F_SCAN]), "0", "0", PC_W_SCAN, false,
	  "signal_engine.weights.scan", .min = 0, .max = 100, .flags = KF_LIVE, .group = G_SEV,
	  .help = "scan weight (0 -> profile)." },
	{ "w-bps", KT_FLOAT, OFF(w[DEC_F_BPS]), "0", "0", PC_W_BPS, false,
	  "signal_engine.weights.bps", .min = 0, .max = 100, .flags = KF_LIVE, .group = G_SEV,
	  .help = "bytes/s weight (0 -> profile)." },
	{ "sev-cap", KT_FLOAT, OFF(sev_cap), "0", "0", PC_SEV_CAP, false,
	  "signal_engine.weights.cap", .min = 0, .max = 1000, .flags = KF_EXCL_MIN | KF_LIVE,
	  .group = G_SEV, .help = "Normalization cap (0 -> profile)." },

	/* ---- strikes ---- */
	{ "sev-step1", KT_FLOAT, OFF(sev_step[0]), "1.0", .min = 0, .max = 1e6,
	  .flags = KF_EXCL_MIN | KF_LIVE, .group = G_STRIKE, .help = "sev >= step1 adds delta1 strikes." },
	{ "sev-step2", KT_FLOAT, OFF(sev_step[1]), "2.0", .min = 0, .max = 1e6,
	  .flags = KF_EXCL_MIN | KF_LIVE, .group = G_STRIKE, .help = "sev >= step2 adds delta2 strikes." },
	{ "sev-step3", KT_FLOAT, OFF(sev_step[2]), "3.0", .min = 0, .max = 1e6,
	  .flags = KF_EXCL_MIN | KF_LIVE, .group = G_STRIKE, .help = "sev >= step3 adds delta3 strikes." },
	{ "sev-delta1", KT_INT, OFF(sev_delta[0]), "1", .min = 0, .max = 1000, .flags = KF_LIVE, .group = G_STRIKE,
	  .help = "Strikes added at step1." },
	{ "sev-delta2", KT_INT, OFF(sev_delta[1]), "2", .min = 0, .max = 1000, .flags = KF_LIVE, .group = G_STRIKE,
	  .help = "Strikes added at step2." },
	{ "sev-delta3", KT_INT, OFF(sev_delta[2]), "3", .min = 0, .max = 1000, .flags = KF_LIVE, .group = G_STRIKE,
	  .help = "Strikes added at step3." },
	{ "sev-decay-below", KT_FLOAT, OFF(sev_decay_below), "0.25", .min = 0, .max = 1e6,
	  .flags = KF_LIVE, .group = G_STRIKE, .help = "If sev < this (and no DropRL), strikes may decay." },

	/* ---- levels ---- */
	{ "soft-at", KT_INT, OFF(soft_at), "0", "0", PC_SOFT_AT, false,
	  "progressive_enforcement.soft_at", .min = 1, .max = 30000, .flags = KF_LIVE, .group = G_LEVEL,
	  .help = "strikes >= soft-at -> RATE_SOFT (0 -> profile)." },
	{ "hard-at", KT_INT, OFF(hard_at), "0", "0", PC_HARD_AT, false,
	  "progressive_enforcement.hard_at", .min = 1, .max = 30000, .flags = KF_LIVE, .group = G_LEVEL,
	  .help = "strikes >= hard-at -> RATE_HARD (0 -> profile)." },
	{ "block-at", KT_INT, OFF(block_at), "0", "0", PC_BLOCK_AT, false,
	  "progressive_enforcement.block_at", .min = 1, .max = 30000, .flags = KF_LIVE, .group = G_LEVEL,
	  .help = "strikes >= block-at -> BLOCK (0 -> profile; 999 = never in built-ins)." },

	/* ---- actions ---- */
	{ "soft-rate", KT_U64, OFF(soft_rate), "0", "0", PC_SOFT_RATE, false,
	  "enforcement.soft_rate_pps", "levels.rate_soft.rate_pps", .min = 1, .max = 1e8,
	  .flags = KF_LIVE, .group = G_ACT, .help = "SOFT rate in PPS (0 -> profile)." },
	{ "soft-burst", KT_U64, OFF(soft_burst), "0", "0", PC_SOFT_BURST, false,
	  "enforcement.soft_burst", "levels.rate_soft.burst", .min = 1, .max = 1e8,
	  .flags = KF_LIVE, .group = G_ACT, .help = "SOFT burst tokens (0 -> profile)." },
	{ "soft-ttl", KT_DUR, OFF(soft_ttl), "0", "0", PC_SOFT_TTL, false, "enforcement.ttl.soft",
	  "levels.rate_soft.ttl", .min = 1, .max = 365 * DAY, .flags = KF_LIVE, .group = G_ACT,
	  .help = "SOFT TTL (0 -> profile)." },
	{ "hard-rate", KT_U64, OFF(hard_rate), "0", "0", PC_HARD_RATE, false,
	  "enforcement.hard_rate_pps", "levels.rate_hard.rate_pps", .min = 1, .max = 1e8,
	  .flags = KF_LIVE, .group = G_ACT, .help = "HARD rate in PPS (0 -> profile)." },
	{ "hard-burst", KT_U64, OFF(hard_burst), "0", "0", PC_HARD_BURST, false,
	  "enforcement.hard_burst", "levels.rate_hard.burst", .min = 1, .max = 1e8,
	  .flags = KF_LIVE, .group = G_ACT, .help = "HARD burst tokens (0 -> profile)." },
	{ "hard-ttl", KT_DUR, OFF(hard_ttl), "0", "0", PC_HARD_TTL, false, "enforcement.ttl.hard",
	  "levels.rate_hard.ttl", .min = 1, .max = 365 * DAY, .flags = KF_LIVE, .group = G_ACT,
	  .help = "HARD TTL (0 -> profile)." },
	{ "block-ttl", KT_DUR, OFF(block_ttl), "0", "0", PC_BLOCK_TTL, false,
	  "enforcement.ttl.block", "levels.block.ttl", .min = 1, .max = 365 * DAY,
	  .flags = KF_LIVE, .group = G_ACT, .help = "BLOCK TTL (0 -> profile)." },
	{ "cooldown", KT_DUR, OFF(cooldown), "0", "0", PC_COOLDOWN, false, "enforcement.cooldown",
	  .min = 0, .max = DAY, .flags = KF_LIVE, .group = G_ACT,
	  .help = "Minimum time between level changes (0 -> profile)." },
	{ "soft-rate-factor", KT_FLOAT, OFF(soft_rate_factor), "0", .min = 0, .max = 100,
	  .pdp = "enforcement.soft_rate_factor", .flags = KF_LIVE, .group = G_ACT,
	  .help = "If > 0: SOFT rate = trig-pps x factor (overrides soft-rate)." },
	{ "hard-rate-factor", KT_FLOAT, OFF(hard_rate_factor), "0", .min = 0, .max = 100,
	  .pdp = "enforcement.hard_rate_factor", .flags = KF_LIVE, .group = G_ACT,
	  .help = "If > 0: HARD rate = trig-pps x factor (overrides hard-rate)." },

	/* ---- block gate ---- */
	{ "block-min-sev", KT_FLOAT, OFF(block_min_sev), "NaN", "NaN", PC_GATE_SEV, false,
	  "progressive_enforcement.block_min_sev", "block_gate.min_sev", .min = 0, .max = 1e6,
	  .flags = KF_LIVE, .group = G_GATE,
	  .help = "Only allow BLOCK if severity >= this (NaN -> profile; 0 disables)." },
	{ "block-min-dur", KT_DUR, OFF(block_min_dur), "-1", "-1", PC_GATE_DUR, false,
	  "progressive_enforcement.block_min_dur", "block_gate.min_dur", .min = 0, .max = DAY,
	  .flags = KF_LIVE, .group = G_GATE,
	  .help = "Require sev >= block-min-sev for this long (-1 -> profile; 0 disables)." },

	/* ---- hysteresis ---- */
	{ "up-need", KT_INT, OFF(up_need), "0", "0", PC_UP_NEED, false,
	  "progressive_enforcement.up_need", .min = 1, .max = 10000, .flags = KF_LIVE, .group = G_HYST,
	  .help = "Require N consecutive high ticks before escalating (0 -> profile)." },
	{ "down-need", KT_INT, OFF(down_need), "0", "0", PC_DOWN_NEED, false,
	  "progressive_enforcement.down_need", .min = 1, .max = 10000, .flags = KF_LIVE, .group = G_HYST,
	  .help = "Require N consecutive low ticks before stepping down (0 -> profile)." },
	{ "min-hold-soft", KT_DUR, OFF(min_hold_soft), "0", "0", PC_HOLD_SOFT, false,
	  "progressive_enforcement.min_hold_soft", .min = 0, .max = 30 * DAY, .flags = KF_LIVE, .group = G_HYST,
	  .help = "Minimum time in SOFT since the last high tick before stepping down (0 -> profile)." },
	{ "min-hold-hard", KT_DUR, OFF(min_hold_hard), "0", "0", PC_HOLD_HARD, false,
	  "progressive_enforcement.min_hold_hard", .min = 0, .max = 30 * DAY, .flags = KF_LIVE, .group = G_HYST,
	  .help = "Minimum time in HARD since the last high tick before stepping down (0 -> profile)." },

	/* ---- non-compliance ---- */
	{ "noncomp-at", KT_INT, OFF(noncomp_at), "0", "0", PC_NC_AT, false, "non_compliance.at",
	  .min = 1, .max = 100000, .flags = KF_LIVE, .group = G_NC,
	  .help = "In HARD: after N non-compliance ticks -> BLOCK sooner (0 -> profile)." },
	{ "noncomp-drop", KT_FLOAT, OFF(noncomp_drop), "0", "0", PC_NC_DROP, false,
	  "non_compliance.drop", .min = 0, .max = 1e12, .flags = KF_EXCL_MIN | KF_LIVE, .group = G_NC,
	  .help = "Count non-compliance if DropRL/s >= this (0 -> profile)." },
	{ "noncomp-sev", KT_FLOAT, OFF(noncomp_sev), "0", "0", PC_NC_SEV, false,
	  "non_compliance.sev", .min = 0, .max = 1e6, .flags = KF_EXCL_MIN | KF_LIVE, .group = G_NC,
	  .help = "Count non-compliance if severity >= this (0 -> profile)." },
	{ "noncomp-reset-below", KT_FLOAT, OFF(noncomp_reset_below), "0", "0", PC_NC_RESET, false,
	  "non_compliance.reset", .min = 0, .max = 1e6, .flags = KF_EXCL_MIN | KF_LIVE, .group = G_NC,
	  .help = "Reset counter if sev < this and DropRL/s == 0 (0 -> profile)." },

	/* ---- housekeeping ---- */
	{ "prev-ttl", KT_DUR, OFF(prev_ttl), "10m", .min = 0, .max = 30 * DAY, .flags = KF_EXCL_MIN,
	  .group = G_HOUSE,
	  .help = "Forget a source's previous counter snapshot if not seen (delta computation)." },
	{ "state-ttl", KT_DUR, OFF(state_ttl), "60m", .min = 0, .max = 30 * DAY,
	  .flags = KF_EXCL_MIN | KF_LIVE, .group = G_HOUSE,
	  .help = "Forget OBSERVE-only state if not seen for this long." },

	/* ---- spoofed floods ---- */
	{ "new-source-trigger", KT_FLOAT, OFF(new_source_trigger), "1000", .min = 0, .max = 1e12,
	  .group = G_SPOOF,
	  .help = "New sources/s (packets of sources not yet admitted) that make a spoofed flood; "
		  "0 disables the aggregate limit." },
	{ "new-source-rate", KT_INT, OFF(new_source_rate), "100", .min = 0, .max = 1e8,
	  .group = G_SPOOF,
	  .help = "Aggregate limit asked of kl-enforcer during a flood, pps (bounded by its "
		  "new_source_min_rate)." },
	{ "new-source-burst", KT_INT, OFF(new_source_burst), "200", .min = 1, .max = 1e8,
	  .group = G_SPOOF, .help = "Burst of that limit." },
	{ "new-source-ttl", KT_DUR, OFF(new_source_ttl), "60s", .min = 1, .max = DAY,
	  .group = G_SPOOF,
	  .help = "Each request's lifetime; renewed at half while the flood lasts (bounded by "
		  "new_source_max_ttl)." },

	/* ---- policy ---- */
	{ "max-action", KT_ENUM, OFF(max_action), "block", .pol = "max_action",
	  .enums = dec_action_names, .flags = KF_LIVE, .group = G_POL,
	  .help = "Strongest action ever sent; levels above it are enforced as this." },
	{ "allow-local-block", KT_BOOL, OFF(allow_local_block), "true", .pol = "allow_local_block",
	  .flags = KF_LIVE, .group = G_POL, .help = "If false, BLOCK is enforced as a hard rate limit." },
	{ "soft-action", KT_ENUM, OFF(soft_action), "rate_limit", .pol = "levels.rate_soft.action",
	  .enums = dec_action_names, .flags = KF_LIVE, .group = G_POL,
	  .help = "Action for RATE_SOFT (observe | rate_limit)." },
	{ "hard-action", KT_ENUM, OFF(hard_action), "rate_limit_hard",
	  .pol = "levels.rate_hard.action", .enums = dec_action_names, .flags = KF_LIVE, .group = G_POL,
	  .help = "Action for RATE_HARD (observe | rate_limit | rate_limit_hard)." },
	{ "block-action", KT_ENUM, OFF(block_action), "block", .pol = "levels.block.action",
	  .enums = dec_action_names, .flags = KF_LIVE, .group = G_POL, .help = "Action for BLOCK." },

	/* ---- graph ---- */
	{ "graph-enabled", KT_BOOL, OFF(graph_enabled), "false", .pdp = "graph.enabled",
	  .group = G_GRAPH, .help = "Enable the graph learner." },
	{ "graph-mode", KT_ENUM, OFF(graph_mode), "learn", .pdp = "graph.mode",
	  .enums = dec_graph_mode_names, .group = G_GRAPH,
	  .help = "learn | frozen-observe | frozen-enforce." },
	{ "graph-store", KT_STR, OFF(graph_store), "/var/lib/kernloom/graph/kliq.db",
	  .pdp = "graph.store", .group = G_GRAPH,
	  .help = "The graph learner's SQLite database (kl-graphd --graph-store)." },
	{ "graph-min-seen", KT_INT, OFF(graph_min_seen), "5", .min = 1, .max = 1e9,
	  .pdp = "graph.promotion.min_seen_count", .group = G_GRAPH,
	  .help = "Ticks an edge must be seen in before it is learned." },
	{ "graph-min-windows", KT_INT, OFF(graph_min_windows), "3", .min = 1, .max = 1e6,
	  .pdp = "graph.promotion.min_windows", .group = G_GRAPH,
	  .help = "Distinct windows an edge must be seen in." },
	{ "graph-min-age", KT_DUR, OFF(graph_min_age), "10m", .min = 0, .max = 365 * DAY,
	  .pdp = "graph.promotion.min_age", .group = G_GRAPH,
	  .help = "Minimum age of an edge before it is learned." },
	{ "graph-expire-ttl", KT_DUR, OFF(graph_expire_ttl), "720h", .min = 0, .max = 3650 * DAY,
	  .flags = KF_EXCL_MIN, .pdp = "graph.promotion.expire_ttl", .group = G_GRAPH,
	  .help = "Idle edges expire after this." },
	{ "graph-freeze-max-action", KT_ENUM, OFF(graph_freeze_max_action), "block",
	  .pdp = "graph.freeze.max_action", .enums = dec_action_names, .flags = KF_LIVE, .group = G_GRAPH,
	  .help = "Strongest level a frozen-enforce violation forces." },
	{ "graph-freeze-allow-block", KT_BOOL, OFF(graph_freeze_allow_block), "true",
	  .pdp = "graph.freeze.allow_block", .flags = KF_LIVE, .group = G_GRAPH,
	  .help = "If false, a frozen-enforce violation forces RATE_HARD at most." },
	{ "graph-freeze-min-sev", KT_FLOAT, OFF(graph_freeze_min_sev), "0", .min = 0, .max = 1e6,
	  .pdp = "graph.freeze.min_severity_for_block", .flags = KF_LIVE, .group = G_GRAPH,
	  .help = "Severity (at least sev-step1, with the block gate open) a frozen-enforce violation needs to force its level; 0 = sev-step1." },
	{ "graph-exclude-broadcast", KT_BOOL, OFF(graph_exclude_broadcast), "true",
	  .pdp = "graph.exclude.broadcast", .group = G_GRAPH,
	  .help = "Do not learn broadcast/multicast destinations." },
	{ "graph-exclude-loopback", KT_BOOL, OFF(graph_exclude_loopback), "true",
	  .pdp = "graph.exclude.loopback", .group = G_GRAPH, .help = "Do not learn loopback." },
	{ "graph-exclude-cidrs", KT_CIDRS, OFF(graph_exclude_cidrs), "",
	  .pdp = "graph.exclude.source_cidrs", .group = G_GRAPH,
	  .help = "Sources never learned from (comma-separated CIDRs)." },

	/* ---- per-source baselines ---- */
	{ "baseline", KT_BOOL, OFF(baseline), "true", .pdp = "baseline.enabled", .group = G_BL,
	  .help = "Learn each source's normal pps/SYN/scan and judge a promoted, confident source "
		  "against max(trigger, its peak x tolerance)." },
	{ "baseline-file", KT_STR, OFF(baseline_file), "", .pdp = "baseline.store", .group = G_BL,
	  .help = "Persist the baselines here (state.json's integrity rules). Empty: "
		  "baselines.json beside --state-file (none without a state file)." },
	{ "baseline-min-pps", KT_FLOAT, OFF(baseline_min_pps), "3", .min = 0, .max = 1e12,
	  .pdp = "baseline.min_pps", .group = G_BL,
	  .help = "A tick is an observation only at pps >= this." },
	{ "baseline-relevant", KT_FLOAT, OFF(baseline_relevant), "0.5", .min = 0, .max = 1,
	  .pdp = "baseline.relevant", .group = G_BL,
	  .help = "... and with some feature >= this x its trigger (below, a baseline could never "
		  "raise the trigger; 0 = learn every source)." },
	{ "baseline-promote-after", KT_INT, OFF(baseline_promote_after), "30", .min = 1,
	  .max = 1e9, .pdp = "baseline.promote_after", .group = G_BL,
	  .help = "Committed observations before a baseline is used." },
	{ "baseline-stable-after", KT_INT, OFF(baseline_stable_after), "300", .min = 1, .max = 1e9,
	  .pdp = "baseline.stable_after", .group = G_BL,
	  .help = "Observations after which the slow alpha applies." },
	{ "baseline-alpha-young", KT_FLOAT, OFF(baseline_alpha_young), "0.10", .min = 0, .max = 1,
	  .flags = KF_EXCL_MIN, .pdp = "baseline.alpha_young", .group = G_BL,
	  .help = "EWMA alpha while young." },
	{ "baseline-alpha-stable", KT_FLOAT, OFF(baseline_alpha_stable), "0.02", .min = 0, .max = 1,
	  .flags = KF_EXCL_MIN, .pdp = "baseline.alpha_stable", .group = G_BL,
	  .help = "EWMA alpha once stable." },
	{ "baseline-tolerance", KT_FLOAT, OFF(baseline_tolerance), "1.2", .min = 1, .max = 100,
	  .pdp = "baseline.tolerance", .group = G_BL,
	  .help = "Effective trigger = max(trigger, peak x this), never above trigger x this." },
	{ "baseline-min-confidence", KT_FLOAT, OFF(baseline_min_confidence), "0.5", .min = 0,
	  .max = 1, .pdp = "baseline.min_confidence", .group = G_BL,
	  .help = "Confidence (min(1, n / 2 x promote-after), halved per halflife idle) needed." },
	{ "baseline-halflife", KT_DUR, OFF(baseline_halflife), "24h", .min = 0,
	  .max = 3650 * DAY, .pdp = "baseline.confidence_halflife", .group = G_BL,
	  .help = "Confidence halves per this much time without a committed observation "
		  "(0 = never)." },
	{ "baseline-hold", KT_DUR, OFF(baseline_hold), "10s", .min = 0, .max = DAY,
	  .pdp = "baseline.hold", .group = G_BL,
	  .help = "Observations are held this long and dropped if the source turns suspicious." },
	{ "baseline-ttl", KT_DUR, OFF(baseline_ttl), "168h", .min = 0, .max = 3650 * DAY,
	  .pdp = "baseline.ttl", .group = G_BL,
	  .help = "Forget a baseline not observed for this long (0 = never)." },
	{ "baseline-max-sources", KT_INT, OFF(baseline_max_sources), "100000", .min = 1,
	  .max = 1e7, .pdp = "baseline.max_sources", .group = G_BL,
	  .help = "No new baselines beyond this many (152 B each in memory, ~150 B in the file)." },
};

#define NKNOBS (sizeof(knobs) / sizeof(knobs[0]))
_Static_assert(NKNOBS <= KL_KNOB_MAX, "raise KL_KNOB_MAX");

const struct kl_knob *dec_knobs(size_t *n)
{
	*n = NKNOBS;
	return knobs;
}

const struct kl_knobset dec_knobset = {
	.prog = "kl-decider", .k = knobs, .n = NKNOBS, .size = sizeof(struct dec_dcfg),
};

void dec_layer_from_tuned(struct kl_layer *L, const double trig[DEC_F_COUNT], const char *file)
{
	static const char *const names[DEC_F_COUNT] = { "trig-pps", "trig-syn", "trig-scan", "trig-bps" };

	free(L->file);
	L->file = file != NULL ? strdup(file) : NULL;
	for (int f = 0; f < DEC_F_COUNT; f++) {
		int ki = kl_knob_index(&dec_knobset, names[f]);
		if (ki < 0 || !(trig[f] > 0.0) || !isfinite(trig[f]))
			continue;
		kl_layer_set_float(L, ki, trig[f]);
	}
}

/* ---- resolution ---- */

static int ki_(const char *name)
{
	return kl_knob_index(&dec_knobset, name);
}

static void cross_le(const struct dec_config *c, const char *a, const char *b, double va,
		     double vb, struct kl_errs *errs)
{
	char x[320], y[320];

	if (va <= vb)
		return;
	kl_where_of(&c->r, ki_(a), x, sizeof(x));
	kl_where_of(&c->r, ki_(b), y, sizeof(y));
	kl_errs_add(errs, "%s must not be above %s", x, y);
}

int dec_config_resolve(struct dec_config *c, const struct kl_layer *flag,
		      const struct kl_layer *pdp, const struct kl_layer *policy,
		      const struct kl_layer *state, struct kl_errs *errs)
{
	struct kl_layer prof;
	const struct kl_layer *order[KL_L_COUNT];
	size_t nl = 0;
	size_t before = errs->n;
	int rc = 0;

	memset(c, 0, sizeof(*c));
	c->r.ks = &dec_knobset;
	c->r.v = &c->v;
	if (kl_layer_init(&prof, &dec_knobset, KL_L_PROFILE, NULL) < 0) {
		kl_layer_free(&prof);
		kl_errs_add(errs, "out of memory");
		return -1;
	}

	/* Precedence, highest first. */
	order[nl++] = flag;
	order[nl++] = pdp;
	order[nl++] = policy;
	order[nl++] = state;
	order[nl++] = &prof;

	/* The profile is itself a knob: find which layer names it first. */
	int pk = ki_("profile");
	const char *pname = "generic";
	for (size_t l = 0; l < nl; l++) {
		if (order[l] != NULL && order[l] != &prof && order[l]->set[pk]) {
			pname = ((const struct dec_dcfg *)order[l]->v)->profile;
			break;
		}
	}
	c->profile = dec_profile_find(pname);
	if (c->profile == NULL) {
		char qb[96];
		kl_errs_add(errs, "unknown profile '%s' (valid: %s)", kl_printable(pname, qb, sizeof(qb)),
			    dec_profile_names());
		c->profile = dec_profile_find("generic");
	}
	c->r.profile = c->profile->name;
	for (size_t i = 0; i < NKNOBS; i++) {
		if (knobs[i].pcol == PC_NONE)
			continue;
		char where[96];
		snprintf(where, sizeof(where), "profile %s: %s", c->profile->name, knobs[i].name);
		kl_layer_set(&prof, (int)i, c->profile->v[knobs[i].pcol], 0, where, true, errs);
	}
	if (kl_resolve(&c->r, order, nl, errs) < 0)
		rc = -1;
	kl_layer_free(&prof);

	/* Cross-field rules. */
	const struct dec_dcfg *v = &c->v;
	cross_le(c, "soft-at", "hard-at", (double)v->soft_at, (double)v->hard_at, errs);
	cross_le(c, "hard-at", "block-at", (double)v->hard_at, (double)v->block_at, errs);
	cross_le(c, "sev-step1", "sev-step2", v->sev_step[0], v->sev_step[1], errs);
	cross_le(c, "sev-step2", "sev-step3", v->sev_step[1], v->sev_step[2], errs);
	cross_le(c, "sev-decay-below", "sev-step1", v->sev_decay_below, v->sev_step[0], errs);
	cross_le(c, "bootstrap-phase1-end", "bootstrap-phase2-end",
		 (double)v->bootstrap_phase1_end, (double)v->bootstrap_phase2_end, errs);
	cross_le(c, "bootstrap-phase2-end", "bootstrap-window", (double)v->bootstrap_phase2_end,
		 (double)v->bootstrap_window, errs);
	if (v->soft_action > DEC_LVL_SOFT || v->hard_action > DEC_LVL_HARD) {
		char x[320];
		int ki = v->soft_action > DEC_LVL_SOFT ? ki_("soft-action") : ki_("hard-action");
		kl_where_of(&c->r, ki, x, sizeof(x));
		kl_errs_add(errs, "%s is stronger than its level", x);
	}
	if (v->decisions_json && v->replay[0] == '\0') {
		kl_errs_add(errs, "--decisions-json only applies to --replay");
	}
	if (v->policy_canonical && v->policy[0] == '\0')
		kl_errs_add(errs, "--policy-canonical needs --policy FILE");
	if (errs->n > before)
		rc = -1;
	return rc;
}

void dec_config_free(struct dec_config *c)
{
	kl_resolved_free(&c->r);
	memset(c, 0, sizeof(*c));
}

void dec_config_print(const struct dec_config *c, FILE *f)
{
	char head[160];

	snprintf(head, sizeof(head),
		 "# kl-decider effective configuration (profile %s)\n"
		 "# precedence: flag > pdp > policy > state > profile > default\n",
		 c->profile->name);
	kl_config_print_table(&c->r, head, f);
}

void dec_help(FILE *f, const char *prog)
{
	char usage[1024];

	snprintf(usage, sizeof(usage),
		 "Usage: %s [flags]                  run (needs kl-sensor and kl-enforcer)\n"
		 "       %s --replay FILE [flags]    run the engine on a trace and print decisions\n"
		 "       %s -n [flags]               print the effective configuration and exit\n"
		 "       %s --help-markdown          the flag reference as Markdown\n"
		 "       %s --help-man | --help-man-file   kl-decider(8) | kernloom-pdp(5) (roff)\n"
		 "\nBooleans: --x or --x=true|false. Durations: 500ms, 30s, 2m, 336h.\n"
		 "Precedence: flag > --pdp-config > --policy > state file > --profile > default.\n"
		 "Exit status: 0 ok, 1 failure, 2 usage or configuration error.\n",
		 prog, prog, prog, prog, prog);
	kl_knob_help(&dec_knobset, usage, f);
}

void dec_help_markdown(FILE *f)
{
	kl_knob_help_markdown(&dec_knobset, f);
}

static const struct kl_manpage man8 = {
	.name = "kl-decider",
	.section = 8,
	.summary = "Kernloom policy decision point: severity, strikes and levels per source",
	.synopsis = ".B kl-decider\n.RI [ flags ]\n.br\n.B kl-decider \\-\\-replay\n.I TRACE\n"
		    ".RI [ flags ]\n.br\n.B kl-decider \\-n\n.RI [ flags ]\n",
	.description =
		"Reads per-source telemetry from kl-sensor, scores each source (triggers, weights, "
		"learned baselines), turns severity into strikes and strikes into levels "
		"(observe, soft and hard rate limits, block) with hysteresis, and sends the "
		"decisions to kl-enforcer. Thresholds are learned (autotune) from clean ticks.\n"
		".PP\nSettings come, lowest precedence first, from the built-in defaults, the "
		"profile (\\fB\\-\\-profile\\fR), the persisted state (tuned triggers), the "
		"PolicyPack (\\fB\\-\\-policy\\fR), the PDPConfig (\\fB\\-\\-pdp\\-config\\fR) "
		"and the command line. The files are described in \\fBkernloom\\-pdp\\fR(5). "
		"SIGHUP re-reads the whitelist, the feedback file and the PDPConfig.",
	.files = ".TP\n.I /etc/kernloom/pdp.yaml\nPDPConfig (\\fB\\-\\-pdp\\-config\\fR).\n"
		 ".TP\n.I /etc/kernloom/policy.yaml\nPolicyPack (\\fB\\-\\-policy\\fR).\n"
		 ".TP\n.I /etc/kernloom/whitelist.txt\nPermanent exemptions.\n"
		 ".TP\n.I /var/lib/kernloom/decider/\nstate.json, feedback.json, baselines, "
		 "the audit key.\n",
	.exit_status = "0 ok, 1 failure, 2 usage or configuration error (every bad key named with "
		       "file, line and key).",
	.see_also = "\\fBkernloom\\-pdp\\fR(5), \\fBkl\\-enforcer\\fR(8), "
		    "\\fBkl\\-sensor\\fR(8), \\fBkl\\-graphd\\fR(8), \\fBklctl\\fR(8)",
};

void dec_help_man(FILE *f)
{
	kl_knob_help_man(&dec_knobset, &man8, f);
}

static const struct kl_manpage man5 = {
	.name = "kernloom-pdp",
	.section = 5,
	.summary = "PDPConfig and PolicyPack files of kl-decider and kl-graphd",
};

void dec_help_man_file(FILE *f)
{
	kl_man_page_header(&man5, f);
	fputs(".SH SYNOPSIS\n/etc/kernloom/pdp.yaml, /etc/kernloom/policy.yaml\n"
	      ".SH DESCRIPTION\n"
	      "A PDPConfig says how the decider works (thresholds, autotune, baselines, graph); "
	      "kl\\-graphd reads its \\fBspec.graph\\fR from the same file. A PolicyPack says "
	      "what may be enforced (actions per level, rates, TTLs, the block gate) and may be "
	      "signed with Ed25519 (\\fBsignature: {alg: ed25519, value: BASE64}\\fR over the "
	      "text \\fBkl\\-decider \\-\\-policy FILE \\-\\-policy\\-canonical\\fR prints).\n"
	      ".PP\nBoth are one YAML document: \\fBapiVersion: " KL_API_VERSION "\\fR, "
	      "\\fBkind: PDPConfig\\fR or \\fBPolicyPack\\fR, \\fBmetadata\\fR (name, "
	      "description, version, labels) and \\fBspec\\fR. Unknown keys, duplicate keys, "
	      "wrong types, out\\-of\\-range values, anchors and aliases are refused, each named "
	      "with file, line and key. A command\\-line flag overrides the file.\n", f);
	fputs(".SH PDPCONFIG KEYS\n", f);
	kl_knob_man_keys(&dec_knobset, KL_KP_PDP, "spec", "spec.", f);
	fputs(".SH POLICYPACK KEYS\n", f);
	kl_knob_man_keys(&dec_knobset, KL_KP_POL, "spec", "spec.", f);
	fputs(".SH SEE ALSO\n\\fBkl\\-decider\\fR(8), \\fBkl\\-graphd\\fR(8)\n", f);
}

/* ---- engine parameters ---- */

static int64_t ms(int64_t ns)
{
	return ns <= 0 ? 0 : ns / 1000000;
}

static uint64_t factor_rate(double trig, double factor, uint64_t fallback)
{
	if (!(factor > 0.0))
		return fallback;
	double r = trig * factor;
	if (r < 1.0)
		return 1;
	if (r > 1e8)
		return 100000000ull;
	return (uint64_t)llround(r);
}

static unsigned umin(unsigned a, unsigned b)
{
	return a < b ? a : b;
}

void dec_bl_params_from_config(const struct dec_dcfg *v, struct dec_bl_params *bp)
{
	memset(bp, 0, sizeof(*bp));
	bp->enabled = v->baseline;
	bp->min_pps = v->baseline_min_pps;
	bp->relevant = v->baseline_relevant;
	bp->promote_after = (uint32_t)v->baseline_promote_after;
	bp->stable_after = (uint32_t)v->baseline_stable_after;
	bp->alpha_young = v->baseline_alpha_young;
	bp->alpha_stable = v->baseline_alpha_stable;
	bp->tolerance = v->baseline_tolerance;
	bp->min_confidence = v->baseline_min_confidence;
	bp->halflife_ms = v->baseline_halflife / 1000000;
	bp->hold_ms = v->baseline_hold / 1000000;
	bp->ttl_ms = v->baseline_ttl / 1000000;
	bp->max_sources = (uint32_t)v->baseline_max_sources;
	bp->whitelist_learn = v->whitelist_learn;
	bp->feedback_learn = v->feedback_learn;
}

void dec_engine_params_from_config(const struct dec_dcfg *v, struct dec_engine_params *p)
{
	memset(p, 0, sizeof(*p));
	for (int f = 0; f < DEC_F_COUNT; f++) {
		p->trig[f] = v->trig[f];
		p->w[f] = v->w[f];
	}
	p->sev_cap = v->sev_cap;
	for (int i = 0; i < 3; i++) {
		p->step[i] = v->sev_step[i];
		p->delta[i] = (int)v->sev_delta[i];
	}
	p->decay_below = v->sev_decay_below;
	p->at[DEC_LVL_SOFT] = (int)v->soft_at;
	p->at[DEC_LVL_HARD] = (int)v->hard_at;
	p->at[DEC_LVL_BLOCK] = (int)v->block_at;
	p->up_need = (int)v->up_need;
	p->down_need = (int)v->down_need;
	p->min_hold_ms[DEC_LVL_SOFT] = ms(v->min_hold_soft);
	p->min_hold_ms[DEC_LVL_HARD] = ms(v->min_hold_hard);
	p->ttl_ms[DEC_LVL_SOFT] = ms(v->soft_ttl);
	p->ttl_ms[DEC_LVL_HARD] = ms(v->hard_ttl);
	p->ttl_ms[DEC_LVL_BLOCK] = ms(v->block_ttl);
	p->rate[DEC_LVL_SOFT] = factor_rate(v->trig[DEC_F_PPS], v->soft_rate_factor, v->soft_rate);
	p->burst[DEC_LVL_SOFT] = v->soft_burst;
	p->rate[DEC_LVL_HARD] = factor_rate(v->trig[DEC_F_PPS], v->hard_rate_factor, v->hard_rate);
	p->burst[DEC_LVL_HARD] = v->hard_burst;
	p->cooldown_ms = ms(v->cooldown);
	p->block_min_sev = isnan(v->block_min_sev) ? 0.0 : v->block_min_sev;
	p->block_min_dur_ms = ms(v->block_min_dur);
	p->noncomp_at = (int)v->noncomp_at;
	p->noncomp_drop = v->noncomp_drop;
	p->noncomp_sev = v->noncomp_sev;
	p->noncomp_reset_below = v->noncomp_reset_below;
	p->min_pps = v->min_pps;
	p->min_sev = v->min_sev;
	p->top = (uint32_t)v->top;
	p->state_ttl_ms = ms(v->state_ttl);

	unsigned cap = (unsigned)v->max_action;
	unsigned block_as = umin((unsigned)v->block_action, v->allow_local_block ? DEC_LVL_BLOCK
									      : DEC_LVL_HARD);
	p->action[DEC_LVL_OBSERVE] = DEC_LVL_OBSERVE;
	p->action[DEC_LVL_SOFT] = (uint8_t)umin(umin((unsigned)v->soft_action, DEC_LVL_SOFT), cap);
	p->action[DEC_LVL_HARD] = (uint8_t)umin(umin((unsigned)v->hard_action, DEC_LVL_HARD), cap);
	p->action[DEC_LVL_BLOCK] = (uint8_t)umin(block_as, cap);

	unsigned vl = (unsigned)v->graph_freeze_max_action;
	if (!v->graph_freeze_allow_block && vl > DEC_LVL_HARD)
		vl = DEC_LVL_HARD;
	p->viol_level = (uint8_t)vl;
	p->viol_min_sev = v->graph_freeze_min_sev;
}
