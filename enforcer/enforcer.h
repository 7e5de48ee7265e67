/* SPDX-License-Identifier: MPL-2.0 */
/*
 * kl-enforcer's runtime state and the steps of its life: load the shield,
 * attach it, serve control requests, sweep expired entries. The request
 * handlers work on map fds only, so tests can run them against maps they
 * create themselves (bpf_map_create) without loading any program.
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
#include "ipc/msg.h"

struct bpf_object;
struct ring_buffer;
struct json_t;

enum enf_map_id {
	ENF_M_CFG = 0,
	ENF_M_TOTALS,
	ENF_M_EVENTS,
	ENF_M_SRC4,
	ENF_M_SRC6,
	ENF_M_ALLOW4,
	ENF_M_ALLOW6,
	ENF_M_DENY4,
	ENF_M_DENY6,
	ENF_M_DENY4_LPM,
	ENF_M_DENY6_LPM,
	ENF_M_RL4,
	ENF_M_RL6,
	ENF_M_FLOW4,
	ENF_M_FLOW6,
	ENF_M_EDGE4_DENY,
	ENF_M_EDGE6_DENY,
	ENF_M_EDGE4_ALLOW,
	ENF_M_EDGE6_ALLOW,
	ENF_M_EDGE4_RL,
	ENF_M_EDGE6_RL,
	ENF_M_MAX
};

/* What the enforcer expects of each map: the ABI in bpf/shield.h. */
struct enf_map_spec {
	const char *name;
	uint32_t key_size;   /* 0: not checked (ring buffer) */
	uint32_t value_size; /* 0: not checked */
	int size_key;        /* enum enf_size it is sized by, or -1 */
	bool lpm;            /* LPM trie: no batch operations */
};
extern const struct enf_map_spec enf_map_specs[ENF_M_MAX];

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
	int fd[ENF_M_MAX];
	uint32_t map_max[ENF_M_MAX]; /* max_entries, for status */

	struct bpf_object *obj;
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

/* ---- maps.c: generic map walking ---- */
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
int enf_totals_read(const struct enf_ctx *ctx, uint64_t out[KL_T_MAX]);

/* ---- ops.c: requests, commit, startup sync, sweep ---- */
void enf_result_set(struct enf_result *res, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void enf_result_free(struct enf_result *res);

/* Decode-checked request -> policy check -> apply -> commit. */
void enf_handle(struct enf_ctx *ctx, const struct enf_actor *who, const struct kl_ctl_req *r,
		struct enf_result *res);
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
/* Delete expired deny/rl/edge entries, visiting at most `budget` entries
 * per map from where the last sweep stopped. Returns the number deleted. */
long enf_sweep(struct enf_ctx *ctx, unsigned budget);

/* ---- attach.c: object, links ---- */
/* Open the object with pins under cfg->pin_dir, set features and sizes,
 * check pinned maps, load, fill ctx->fd. Returns 0 or -1 (logged). */
int enf_load(struct enf_ctx *ctx);
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

#endif
