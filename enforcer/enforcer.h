/* SPDX-License-Identifier: MPL-2.0 */
/*
 * kl-enforcer's runtime state and the steps of its life: load the shield,
 * attach it, serve control requests, sweep expired entries. The request
 * handlers reach the maps only through struct enf_map_ops, so tests run
 * them against an in-memory backend (tests/unit/fakemaps.h) without
 * privileges, or against maps they create (bpf_map_create).
 */
#ifndef KL_ENFORCER_ENFORCER_H
#define KL_ENFORCER_ENFORCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "enforcer/config.h"
#include "enforcer/model.h"
#include "enforcer/policy.h"
#include "ipc/enforce.h"
#include "ipc/msg.h"

struct shield; /* build/gen/shield.skel.h */
struct ring_buffer;
struct json_t;
struct kl_audit;

/*
 * Every map the enforcer handles, once: its id, its name (the member of the
 * generated skeleton and the map in bpf/shield.bpf.c, KL_MAP_* in
 * bpf/shield.h), its key and value size by bpf/shield.h (0: a ring
 * buffer), the map_sizes entry it is sized by (-1: none) and whether it is
 * an LPM trie (no batch operations). attach.c checks the sizes against the
 * object's BTF at compile time (build/gen/shield.maps.h).
 */
#define ENF_MAPS(X)                                                                              \
	X(ENF_M_CFG, kernloom_cfg, 4, sizeof(struct kl_cfg), -1, false)                          \
	X(ENF_M_TOTALS, kernloom_totals, 4, sizeof(struct kl_totals), -1, false)                 \
	X(ENF_M_EVENTS, kernloom_events, 0, 0, -1, false)                                        \
	X(ENF_M_SRC4, kernloom_src4_stats, 4, sizeof(struct kl_src_slot), ENF_SZ_SRC, false)     \
	X(ENF_M_SRC6, kernloom_src6_stats, 4, sizeof(struct kl_src_slot), ENF_SZ_SRC, false)     \
	X(ENF_M_ALLOW4, kernloom_allow4_lpm, sizeof(struct kl_lpm4_key), sizeof(struct kl_rule),  \
	  ENF_SZ_ALLOW, true)                                                                    \
	X(ENF_M_ALLOW6, kernloom_allow6_lpm, sizeof(struct kl_lpm6_key), sizeof(struct kl_rule),  \
	  ENF_SZ_ALLOW, true)                                                                    \
	X(ENF_M_DENY4, kernloom_deny4_hash, 4, sizeof(struct kl_rule), ENF_SZ_DENY, false)       \
	X(ENF_M_DENY6, kernloom_deny6_hash, 16, sizeof(struct kl_rule), ENF_SZ_DENY, false)      \
	X(ENF_M_DENY4_LPM, kernloom_deny4_lpm, sizeof(struct kl_lpm4_key), sizeof(struct kl_rule), \
	  ENF_SZ_DENY_CIDR, true)                                                                \
	X(ENF_M_DENY6_LPM, kernloom_deny6_lpm, sizeof(struct kl_lpm6_key), sizeof(struct kl_rule), \
	  ENF_SZ_DENY_CIDR, true)                                                                \
	X(ENF_M_RL4, kernloom_rl_policy4, 4, sizeof(struct kl_rl_rule), ENF_SZ_RL, false)        \
	X(ENF_M_RL6, kernloom_rl_policy6, 16, sizeof(struct kl_rl_rule), ENF_SZ_RL, false)       \
	X(ENF_M_FLOW4, kernloom_flow4_stats, 4, sizeof(struct kl_flow_slot), ENF_SZ_FLOW, false) \
	X(ENF_M_FLOW6, kernloom_flow6_stats, 4, sizeof(struct kl_flow_slot), ENF_SZ_FLOW, false) \
	X(ENF_M_EDGE4_DENY, kernloom_edge4_deny, sizeof(struct kl_edge4_key),                    \
	  sizeof(struct kl_rule), ENF_SZ_EDGE, false)                                            \
	X(ENF_M_EDGE6_DENY, kernloom_edge6_deny, sizeof(struct kl_edge6_key),                    \
	  sizeof(struct kl_rule), ENF_SZ_EDGE, false)                                            \
	X(ENF_M_EDGE4_ALLOW, kernloom_edge4_allow, sizeof(struct kl_edge4_key),                  \
	  sizeof(struct kl_rule), ENF_SZ_EDGE, false)                                            \
	X(ENF_M_EDGE6_ALLOW, kernloom_edge6_allow, sizeof(struct kl_edge6_key),                  \
	  sizeof(struct kl_rule), ENF_SZ_EDGE, false)                                            \
	X(ENF_M_EDGE4_RL, kernloom_edge4_rl_policy, sizeof(struct kl_edge4_key),                 \
	  sizeof(struct kl_rl_rule), ENF_SZ_EDGE, false)                                         \
	X(ENF_M_EDGE6_RL, kernloom_edge6_rl_policy, sizeof(struct kl_edge6_key),                 \
	  sizeof(struct kl_rl_rule), ENF_SZ_EDGE, false)

enum enf_map_id {
#define ENF_MAP_ID(id, ...) id,
	ENF_MAPS(ENF_MAP_ID)
#undef ENF_MAP_ID
	ENF_M_MAX
};

/* What the enforcer expects of each map (ENF_MAPS). */
struct enf_map_spec {
	const char *name;
	uint32_t key_size;   /* 0: not checked (ring buffer) */
	uint32_t value_size; /* 0: not checked */
	int size_key;        /* enum enf_size it is sized by, or -1 */
	bool lpm;            /* LPM trie: no batch operations */
};
extern const struct enf_map_spec enf_map_specs[ENF_M_MAX];

/* Slots of the source or flow slot arrays (kernloom_src{4,6}_stats,
 * kernloom_flow{4,6}_stats) for a configured count (map_sizes src, flow):
 * the power of two >= 2 * count, at least 64. */
#define ENF_SLOTS_MAX (1u << 26) /* 16 GiB of source slots: beyond any sane config */
uint32_t enf_slots(uint32_t count);
/* Whether map m is a slot array (frozen, mmap'ed by the sensor). */
bool enf_is_slot_map(int m);

/* The two daemon links, each on its own socket (main.c). */
enum enf_link {
	ENF_LINK_DECIDER = 0,
	ENF_LINK_GRAPHD,
	ENF_LINK_MAX
};

struct enf_link_stats {
	struct enf_quota quota;
	int64_t uid;          /* the configured user's uid; -1: none */
	uint64_t batches;     /* DECISIONS / EDGE_RULES messages applied */
	uint64_t applied;     /* records applied */
	uint64_t refused[KL_ACK_REASON_MAX]; /* records refused, by reason */
	uint64_t released;    /* entries removed by RELEASE */
	/* Time share: a link may keep the enforcer busy for at most half
	 * of the time (with a burst of ENF_BUSY_BURST_NS), so a looping
	 * peer cannot starve the others or klctl. */
	int64_t busy_credit_ns;
	uint64_t busy_last_ns;   /* 0: not started */
	uint64_t busy_refused;   /* requests refused for it */
};
#define ENF_BUSY_BURST_NS 2000000000ll

/* Highest enum kl_origin + 1: entries are counted by origin. */
#define ENF_ORIGIN_SLOTS 5
/* Own interface addresses kept for the policy (more are logged, not kept). */
#define ENF_MAX_SELF 1024
/* How often they are re-read (addresses come and go: DHCP, SLAAC). */
#define ENF_SELF_EVERY_NS 1000000000ull

/* The map backend. Handles are map fds (ctx->fd[], ctx->bloom_fd); every
 * operation returns 0 or -errno. */
struct enf_map_ops {
	int (*lookup)(int fd, const void *key, void *val);
	int (*update)(int fd, const void *key, const void *val, uint64_t flags);
	int (*del)(int fd, const void *key);
	/* key NULL: the first key; -ENOENT after the last. */
	int (*next_key)(int fd, const void *key, void *next);
	/* Up to *count entries from position *in (in NULL: the start); *out
	 * is where the next call resumes. -ENOENT: that was the last batch
	 * (*count may still be > 0); -EINVAL or -ENOTSUP: the map type has
	 * no batch operations. */
	int (*lookup_batch)(int fd, const uint64_t *in, uint64_t *out, void *keys, void *vals,
			    uint32_t *count);
};
/* The kernel's (bpf(2) through libbpf). */
extern const struct enf_map_ops enf_bpf_map_ops;

struct enf_iface {
	char name[KL_IFNAMSIZ];
	int ifindex;
	int link_fd;
	uint32_t link_id;
	enum kl_xdp_mode mode; /* NATIVE or GENERIC as attached */
};

struct enf_ctx {
	const struct enf_config *cfg;
	struct enf_policy policy; /* points into protect[] */
	struct kl_addr protect[ENF_MAX_PROTECT];
	/* This host's own addresses (policy.self), re-read every second. */
	struct kl_addr self[ENF_MAX_SELF];
	uint64_t self_read_ns;
	bool self_failed; /* the last read failed (said once) */
	const struct enf_map_ops *maps; /* enf_bpf_map_ops unless a test swaps it */
	int fd[ENF_M_MAX];
	uint32_t map_max[ENF_M_MAX]; /* max_entries, for status */

	struct shield *skel;
	void *obj_buf; /* --obj: the file's bytes, which the object points into */
	int bloom_fd; /* kernloom_policy_bloom; -1 in tests without the object */
	int prog_fd;
	uint32_t prog_id;
	struct ring_buffer *rb;

	struct enf_iface ifaces[ENF_MAX_IFACES];
	size_t n_ifaces;

	struct enf_evring *ring;
	/* sweep state: per map, the last key visited (resume point) */
	uint8_t sweep_key[ENF_M_MAX][40];
	bool sweep_has_key[ENF_M_MAX];

	/* CLOCK_BOOTTIME in ns; tests may replace it */
	uint64_t (*now)(void);

	/* Entries in the policy maps (deny, deny CIDR, rate-limit and edge
	 * maps; not the allowlist) by origin: counted at start and after a
	 * reset, kept up to date by every write and delete in between. The
	 * per-role total caps are checked against it. */
	uint64_t origin_count[ENF_ORIGIN_SLOTS];
	/* Entries of any origin per counted map, kept the same way: a daemon
	 * may not add to a map past max_entries minus the operator's reserve
	 * (enf_operator_reserve). */
	uint64_t map_count[ENF_M_MAX];
	struct enf_link_stats links[ENF_LINK_MAX];
	uint64_t cap_sweep_ns; /* last sweep a full total quota asked for */
	/* klctl requests answered, by enum kl_status (metrics). */
	uint64_t ctl_requests[KL_STATUS_MAX];
	struct kl_audit *audit; /* NULL: no audit trail (tests) */
};

struct enf_actor {
	enum kl_role role;
	uid_t uid;
	pid_t pid;
};

/* The result of one request: status, a one-line text, a JSON document. */
#define ENF_TEXT_LEN 512
struct enf_result {
	int status; /* enum kl_status */
	char text[ENF_TEXT_LEN];
	struct json_t *json; /* owned; may be NULL */
};

uint64_t enf_boottime_ns(void);
void enf_ctx_init(struct enf_ctx *ctx, const struct enf_config *cfg, struct enf_evring *ring);

/* ---- maps.c: map access and generic walking ---- */
/* One entry of map m through ctx->maps; 0 or -errno (-EBADF: no map).
 * Writes are BPF_ANY. */
int enf_map_lookup(const struct enf_ctx *ctx, enum enf_map_id m, const void *key, void *val);
int enf_map_update(const struct enf_ctx *ctx, enum enf_map_id m, const void *key, const void *val);
int enf_map_delete(const struct enf_ctx *ctx, enum enf_map_id m, const void *key);
int enf_map_next_key(const struct enf_ctx *ctx, enum enf_map_id m, const void *key, void *next);
/* Visit every entry; cb returns non-zero to stop. Uses batch lookups where
 * the map type has them. Returns 0 or -errno. */
typedef int (*enf_visit_fn)(const void *key, const void *val, void *arg);
int enf_map_foreach(const struct enf_ctx *ctx, enum enf_map_id m, enf_visit_fn cb, void *arg);
/* Delete every entry for which pred (NULL: all) returns true. Returns the
 * number deleted, or -errno. */
typedef bool (*enf_pred_fn)(const void *key, const void *val, void *arg);
long enf_map_delete_if(const struct enf_ctx *ctx, enum enf_map_id m, enf_pred_fn pred,
		       void *arg);
long enf_map_count(const struct enf_ctx *ctx, enum enf_map_id m);
int enf_cfg_read(const struct enf_ctx *ctx, struct kl_cfg *c);
int enf_cfg_write(const struct enf_ctx *ctx, const struct kl_cfg *c);
/* Read-modify-write of kernloom_cfg: policy_gen += 1. */
int enf_gen_bump(const struct enf_ctx *ctx);
/* Policy summary (shield.h, KL_POL_BLOOM_WORDS): call before writing an
 * entry to map m under key; sets the key's source bit when m is an
 * exact-source map (deny, RL override, edge). Returns 0 or -errno; a
 * caller that gets an error must not write the entry. */
int enf_bloom_note(const struct enf_ctx *ctx, enum enf_map_id m, const void *key);
/* Recomputes the summary from the maps (at start: drops the bits of
 * deleted entries, and covers pins written by an older enforcer). */
int enf_bloom_rebuild(const struct enf_ctx *ctx);
int enf_totals_read(const struct enf_ctx *ctx, uint64_t out[KL_T_MAX]);

/* ---- ops.c: requests, commit, startup sync, sweep ---- */
void enf_result_set(struct enf_result *res, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void enf_result_free(struct enf_result *res);

/* Decode-checked request -> policy check -> apply -> commit. */
void enf_handle(struct enf_ctx *ctx, const struct enf_actor *who, const struct kl_ctl_req *r,
		struct enf_result *res);
/* Whether the enforcer serves control command cmd (a handler in its table). */
bool enf_ctl_served(unsigned cmd);
/* The one place every state change is recorded: bumps policy_gen when the
 * change touched verdict state (bump), and logs who asked what and how it
 * went. (The audit file record will be written from here too.) */
void enforcer_commit(struct enf_ctx *ctx, const struct enf_actor *who, const char *action,
		     const char *detail, int result, bool bump);

/* First start on fresh maps: zero config, sampling 1023; every start:
 * ephemeral_min from the config. Then a policy_gen bump. */
int enf_cfg_init(struct enf_ctx *ctx);
/* Insert the configured protected CIDRs into the allow LPMs (origin
 * PROTECTED) and remove PROTECTED entries that are no longer configured. */
int enf_sync_protected(struct enf_ctx *ctx);
/* Re-read this host's own interface addresses into ctx->self (the
 * policy's anti-lockout default) when ENF_SELF_EVERY_NS has passed, or at
 * once with force. Logs what changed. A failed read keeps the last list. */
void enf_self_refresh(struct enf_ctx *ctx, bool force);
/* Delete expired deny/rl/edge entries, visiting at most `budget` entries
 * per map from where the last sweep stopped. Returns the number deleted. */
long enf_sweep(struct enf_ctx *ctx, unsigned budget);

/* ---- metrics.c: the --metrics-file page ---- */
/* The Prometheus page (node_exporter textfile format): klctl requests by
 * status, the links' records applied and refused (by reason), entries per
 * policy map and by origin, max_entries of every map, and the XDP
 * counters of kernloom_totals summed over CPUs (verdicts apart). */
struct kl_prom;
void enf_metrics_page(const struct enf_ctx *ctx, struct kl_prom *p, double now_s);

/* ---- links.c: the decider's and graphd's requests ---- */
/* The origin stamped on entries a role causes. */
uint32_t enf_origin_of(enum kl_role role);
/* The link a role talks on, or -1 (klctl and anyone else). */
int enf_link_of(enum kl_role role);
/* Does this map hold counted policy entries (struct kl_rule / kl_rl_rule
 * with an origin)? */
bool enf_map_counted(enum enf_map_id m);
uint32_t enf_val_origin(enum enf_map_id m, const void *val);
uint64_t enf_val_expires(enum enf_map_id m, const void *val);
/* One entry changed hands: old origin (0: there was none) -> new origin
 * (0: deleted). */
void enf_count_note(struct enf_ctx *ctx, enum enf_map_id m, uint32_t old_origin,
		    uint32_t new_origin);
/* Count the entries of every origin from the maps. Returns 0 or -errno. */
int enf_count_origins(struct enf_ctx *ctx);

/* Apply n decoded records, one answer each. Bumps policy_gen once and
 * logs one CHANGE line for the batch (refused records at debug level). */
void enf_decisions_apply(struct enf_ctx *ctx, const struct enf_actor *who,
			 const struct kl_decision *d, uint32_t n, struct kl_ack *acks);
void enf_edge_rules_apply(struct enf_ctx *ctx, const struct enf_actor *who,
			  const struct kl_edge_rule *e, uint32_t n, struct kl_ack *acks);
/* Remove the sender's rate-limit overrides and exact denies inside the
 * prefix, at most r->budget of them. Returns 0 or -errno. */
int enf_release(struct enf_ctx *ctx, const struct enf_actor *who, const struct kl_release *r,
		struct kl_release_ack *out);
/* Live entries of the asker's origin, at most max; *out is malloc'ed. */
int enf_state(struct enf_ctx *ctx, const struct enf_actor *who, uint32_t max,
	      struct kl_state_rec **out, uint32_t *n, bool *truncated);

/* One request from a link, its header already checked by the channel:
 * role, payload decode, apply, and the answer to send. */
struct enf_reply {
	unsigned type;   /* the answer's message type; KL_MSG_RESULT on refusal */
	uint8_t *buf;    /* payload (malloc'ed) unless type is KL_MSG_RESULT */
	size_t len;
	int status;      /* for KL_MSG_RESULT */
	char text[ENF_TEXT_LEN];
};
void enf_link_handle(struct enf_ctx *ctx, const struct enf_actor *who, unsigned type,
		     const uint8_t *payload, size_t len, struct enf_reply *out);
void enf_reply_free(struct enf_reply *r);
/* The "links" object of STATUS. */
struct json_t *enf_links_json(const struct enf_ctx *ctx);

/* ---- attach.c: object, links ---- */
/* Open the shield (the object built into kl-enforcer, or cfg->obj checked
 * against it) with pins under cfg->pin_dir, set features and sizes, check
 * pinned maps, load, fill ctx->fd. Returns 0 or -1 (logged). */
int enf_load(struct enf_ctx *ctx);
/* Largest --obj file read. */
#define ENF_OBJ_MAX (64u << 20)
/* Open (not load) the skeleton over the ELF image elf (NULL: the built-in
 * one), pins under pin_dir (NULL: none). NULL with *err (-errno). */
struct shield *enf_skel_open(const void *elf, size_t len, const char *pin_dir, int *err);
/* Pure: why `have` cannot stand in for `want` (a map's type, key or value
 * size or flags, or a .rodata setting's place differ), or NULL. */
const char *enf_obj_mismatch(const struct shield *want, const struct shield *have, char *buf,
			     size_t len);
/* Pure: why the skeleton's maps disagree with enf_map_specs (the sizes of
 * bpf/shield.h as kl-enforcer was compiled), or NULL. */
const char *enf_skel_spec_mismatch(const struct shield *s, char *buf, size_t len);
/* Open the telemetry pins to the sensor user's group (read-only by mode). */
int enf_share_telemetry(struct enf_ctx *ctx);
/* Started as root: make the pin directory and every pin in it owned by
 * uid (groups unchanged), so the enforcer started later as that user
 * (systemd) can reopen them read-write (bpffs applies DAC, toolchain
 * notes §7). Through the directory's fd, never following a link.
 * 0, or -1 (logged). */
int enf_give_pins(const char *dir, uid_t uid);
/* Attach to (or update the pinned link on) one interface. */
int enf_attach(struct enf_ctx *ctx, const char *ifname, enum kl_xdp_mode mode, bool force,
	       char *msg, size_t msglen);
/* Detach one interface and remove its link pin (maps stay). 1 if it was not
 * attached, 0 if detached, -1 on error. */
int enf_detach(struct enf_ctx *ctx, const char *ifname, char *msg, size_t msglen);
/* Adopt links pinned by an earlier run for interfaces not in --iface. */
void enf_adopt_links(struct enf_ctx *ctx);
void enf_close(struct enf_ctx *ctx, bool detach);
/* Status of the attached interfaces as a JSON array. */
struct json_t *enf_ifaces_json(const struct enf_ctx *ctx);

/* Pure: why a pinned map cannot be reused, or NULL. */
const char *enf_pin_mismatch(uint32_t want_type, uint32_t want_key, uint32_t want_val,
			     uint32_t want_max, uint32_t want_flags, uint32_t have_type,
			     uint32_t have_key, uint32_t have_val, uint32_t have_max,
			     uint32_t have_flags, char *buf, size_t len);

/* ---- audit.c: the audit records (common/audit.h) ---- */
/* A request's outcome: "change" when it changed state, "refused" when it
 * was turned down, with the peer's role, uid and pid. Flushes. */
void enf_audit_request(struct enf_ctx *ctx, const struct enf_actor *who, const char *action,
		       const char *detail, int result);
/* One entry of a DECISIONS or EDGE_RULES batch, applied or refused. */
void enf_audit_entry(struct enf_ctx *ctx, const struct enf_actor *who, const char *what,
		     const struct kl_addr *a, const char *extra, uint8_t reason, const char *why);
/* A message refused before it was handled (`what`: its type); at most a few
 * a second, the next one counts those left out. */
void enf_audit_refusal(struct enf_ctx *ctx, const struct enf_actor *who, const char *what,
		       int status, const char *why);

#endif
