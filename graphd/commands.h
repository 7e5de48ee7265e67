/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Operator commands on the graph (DESIGN §8): export, freeze, approve-ip,
 * deny-ip, violations. The same functions serve the offline commands
 * (`kl-graphd --graph-store FILE <command>`, on a stopped daemon's database) and
 * the live ones (`klctl graph ...` through graphd.sock): each fills an
 * answer with a status, a text for people and a JSON document for
 * scripts. No I/O here; the store is read by the callers.
 */
#ifndef KL_GRAPHD_COMMANDS_H
#define KL_GRAPHD_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graphd/graph.h"
#include "graphd/store.h"

struct gr_answer {
	int status;  /* enum kl_status (ipc/msg.h) */
	char *text;  /* malloc'd, ends with a newline unless empty */
	char *json;  /* malloc'd compact JSON, or NULL */
};
void gr_answer_free(struct gr_answer *a);

/* "2026-11-25T19:05:21.250Z"; "-" for GR_NEVER. */
const char *gr_fmt_time(int64_t t_ms, char *buf, size_t len);
/* Replay's clock: seconds with one to three decimals ("14.0", "14.25"). */
const char *gr_fmt_t(int64_t t_ms, char *buf, size_t len);

/* state: a gr_state, or -1 for every edge. JSON: {"edges": [{src, port,
 * proto, state, seen, windows, first_seen, last_seen, set_by, set_uid,
 * pkts, bytes}], "count": N, "states": {"candidate": N, ...}}, sorted by
 * source, port, protocol. */
void gr_cmd_export(const struct gr_graph *g, int state, struct gr_answer *a);

/* Freeze (or the dry run of it): what was (would be) frozen, the baseline
 * afterwards, and the candidates that are not ready with what they lack. */
void gr_cmd_freeze(struct gr_graph *g, int64_t now, bool dry_run, int32_t uid,
		   struct gr_answer *a);

/* approve-ip / deny-ip: all_ports, or the one (port, proto) edge. */
void gr_cmd_set(struct gr_graph *g, const struct kl_addr *src, bool all_ports, uint16_t port,
		uint8_t proto, enum gr_state to, int32_t uid, int64_t now, struct gr_answer *a);

/* A listing of violations (from gr_store_violations). */
void gr_cmd_violations(const struct gr_viol_row *v, size_t n, struct gr_answer *a);

/* One replay output line (no newline): {"t": 14.0, "src": ..., "port": ...,
 * "proto": "tcp", "mode": "observe"|"enforce", "action": "signal"|"block"}. */
const char *gr_viol_json(const struct gr_viol *v, char *buf, size_t len);

#endif
