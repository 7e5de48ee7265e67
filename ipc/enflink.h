/* SPDX-License-Identifier: MPL-2.0 */
/*
 * A daemon's link to kl-enforcer (the decider's and graphd's): one
 * request, one answer, connected on first use and again after any failed
 * call. Abstract, so that unit tests can play the enforcer.
 */
#ifndef KL_IPC_ENFLINK_H
#define KL_IPC_ENFLINK_H

#include <stdbool.h>
#include <stddef.h>

#include "ipc/msg.h"

struct kl_enf_link {
	/* 0 with the answer (*reply points into *reply_buf, free() it), or
	 * -1 when the enforcer could not be asked or did not answer (err). */
	int (*call)(struct kl_enf_link *l, unsigned type, const uint8_t *p, size_t len,
		    struct kl_msg *reply, void **reply_buf, char *err, size_t errlen);
	/* Connect now if not connected: 1 a new connection, 0 connected
	 * already, -1 (err). NULL: always connected. */
	int (*connect)(struct kl_enf_link *l, char *err, size_t errlen);
	void (*close)(struct kl_enf_link *l);
	/* Set when a connection was (re-)established since the owner last
	 * cleared it: the enforcer may have restarted, and what it holds may
	 * have changed; the owner reconciles before its next batch. */
	bool reconnected;
};

/* A kl_client (ipc/chan.h) to `path` speaking as `self`; timeout_ms
 * bounds each call. */
struct kl_enf_link *kl_enf_link_client(const char *path, enum kl_role self, int timeout_ms);

/* l->connect, when the link has one. */
int kl_enf_link_connect(struct kl_enf_link *l, char *err, size_t errlen);

#endif
