/* SPDX-License-Identifier: MPL-2.0 */
#include "ipc/enflink.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ipc/chan.h"

struct clink {
	struct kl_enf_link l;
	struct kl_client *c;
	enum kl_role self;
	int timeout_ms;
	char path[];
};

static int clink_connect(struct kl_enf_link *l, char *err, size_t errlen)
{
	struct clink *k = (struct clink *)l;

	if (k->c != NULL)
		return 0;
	if (kl_client_open(&k->c, k->path, k->self, k->timeout_ms, err, errlen) < 0) {
		k->c = NULL;
		return -1;
	}
	l->reconnected = true;
	return 1;
}

static int clink_call(struct kl_enf_link *l, unsigned type, const uint8_t *p, size_t len,
		      struct kl_msg *reply, void **reply_buf, char *err, size_t errlen)
{
	struct clink *k = (struct clink *)l;

	*reply_buf = NULL;
	if (clink_connect(l, err, errlen) < 0)
		return -1;
	uint64_t before = kl_client_rehellos(k->c);
	if (kl_client_call(k->c, type, p, len, reply, reply_buf, err, errlen) < 0) {
		/* Start over with a fresh connection (and HELLO) next time. */
		kl_client_close(k->c);
		k->c = NULL;
		return -1;
	}
	if (kl_client_rehellos(k->c) != before)
		l->reconnected = true;
	return 0;
}

static void clink_close(struct kl_enf_link *l)
{
	struct clink *k = (struct clink *)l;

	if (k == NULL)
		return;
	kl_client_close(k->c);
	free(k);
}

struct kl_enf_link *kl_enf_link_client(const char *path, enum kl_role self, int timeout_ms)
{
	size_t n = strlen(path) + 1;
	struct clink *k = calloc(1, sizeof(*k) + n);

	if (k == NULL)
		return NULL;
	*k = (struct clink){
		.l = { .call = clink_call, .connect = clink_connect, .close = clink_close },
		.self = self, .timeout_ms = timeout_ms,
	};
	memcpy(k->path, path, n);
	return &k->l;
}

int kl_enf_link_connect(struct kl_enf_link *l, char *err, size_t errlen)
{
	return l->connect != NULL ? l->connect(l, err, errlen) : 0;
}
