/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Loading the shield object over pinned maps, attaching it to interfaces
 * through pinned bpf_links, detaching. A pinned link keeps the program on
 * the NIC while kl-enforcer is down; on restart the link is updated in
 * place to the newly loaded program, so there is no unprotected gap.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <pwd.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <jansson.h>
#include <linux/if_link.h>

#include "common/log.h"
#include "common/safefile.h"
#include "enforcer/enforcer.h"
#include "shield.maps.h"
#include "shield.skel.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char buf[1024];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	size_t n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	kl_log(level == LIBBPF_WARN ? KL_LOG_WARN : KL_LOG_DEBUG, "libbpf: %s", buf);
	return 0;
}

const char *enf_pin_mismatch(uint32_t want_type, uint32_t want_key, uint32_t want_val,
			     uint32_t want_max, uint32_t want_flags, uint32_t have_type,
			     uint32_t have_key, uint32_t have_val, uint32_t have_max,
			     uint32_t have_flags, char *buf, size_t len)
{
	if (have_type != want_type)
		snprintf(buf, len, "map type is %u in the pin, the object wants %u", have_type,
			 want_type);
	else if (have_key != want_key)
		snprintf(buf, len, "key size is %u in the pin, the object wants %u", have_key,
			 want_key);
	else if (have_val != want_val)
		snprintf(buf, len, "value size is %u in the pin, the object wants %u", have_val,
			 want_val);
	else if (have_max != want_max)
		snprintf(buf, len, "max_entries is %u in the pin, the configuration wants %u",
			 have_max, want_max);
	else if (have_flags != want_flags)
		snprintf(buf, len, "map flags are 0x%x in the pin, the object wants 0x%x", have_flags,
			 want_flags);
	else
		return NULL;
	return buf;
}

static int pin_path(char *buf, size_t len, const char *dir, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", dir, name);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static int link_pin_path(const struct enf_ctx *ctx, const char *ifname, char *buf, size_t len)
{
	char name[KL_IFNAMSIZ + 8];
	snprintf(name, sizeof(name), "link_%s", ifname);
	return pin_path(buf, len, ctx->cfg->pin_dir, name);
}

static int ensure_pin_dir(const char *dir)
{
	struct statfs fs;
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		int e = errno;
		char parent[PATH_MAX];
		snprintf(parent, sizeof(parent), "%s", dir);
		char *slash = strrchr(parent, '/');
		if (slash && slash != parent)
			*slash = '\0';
		if (slash && statfs(parent, &fs) == 0 && (unsigned long)fs.f_type != BPF_FS_MAGIC)
			kl_error("pin dir %s: cannot create: %s; %s is not a BPF filesystem (mount -t "
				 "bpf bpf %s)",
				 dir, strerror(e), parent, parent);
		else
			kl_error("pin dir %s: cannot create: %s", dir, strerror(e));
		return -1;
	}
	if (statfs(dir, &fs) < 0) {
		kl_error("pin dir %s: %s", dir, strerror(errno));
		return -1;
	}
	if ((unsigned long)fs.f_type != BPF_FS_MAGIC) {
		kl_error("pin dir %s is not on a BPF filesystem (mount -t bpf bpf /sys/fs/bpf)", dir);
		return -1;
	}
	return 0;
}

/* Each map kl-enforcer handles, as its member of the generated skeleton:
 * a map renamed or dropped in bpf/shield.bpf.c fails the build here. */
static const size_t skel_maps[ENF_M_MAX] = {
#define SKEL_MAP(id, name, ...) [id] = offsetof(struct shield, maps.name),
	ENF_MAPS(SKEL_MAP)
#undef SKEL_MAP
};

/* And its key and value size in the object's BTF, as bpf/shield.h says. */
#define MAP_SIZES(id, name, ksz, vsz, ...)                                                      \
	_Static_assert(KL_BTF_MAP_##name##_KEY == (ksz) && KL_BTF_MAP_##name##_VALUE == (vsz),  \
		       #name ": key/value size in bpf/shield.bpf.c differs from bpf/shield.h");
ENF_MAPS(MAP_SIZES)
#undef MAP_SIZES

/* The .rodata settings are written as the skeleton's struct fields; the
 * values written below are 32-bit. */
#define RODATA_U32(f) \
	_Static_assert(sizeof(((struct shield__rodata *)0)->f) == sizeof(uint32_t), #f " is a __u32")
RODATA_U32(kl_feat_flow);
RODATA_U32(kl_feat_edge);
RODATA_U32(kl_src4_mask);
RODATA_U32(kl_src6_mask);
RODATA_U32(kl_flow_mask);

static struct bpf_map *skel_map(const struct shield *s, enum enf_map_id m)
{
	return *(struct bpf_map *const *)((const char *)s + skel_maps[m]);
}

/* Open the skeleton over the ELF image `elf` (NULL: the one built in). */
static struct shield *skel_open(const void *elf, size_t len, const struct bpf_object_open_opts *oo,
				int *err)
{
	struct shield *s = calloc(1, sizeof(*s));
	if (!s) {
		*err = -ENOMEM;
		return NULL;
	}
	if ((*err = shield__create_skeleton(s)) == 0) {
		if (elf) {
			s->skeleton->data = (void *)elf;
			s->skeleton->data_sz = len;
		}
		*err = bpf_object__open_skeleton(s->skeleton, oo);
	}
	if (*err) {
		shield__destroy(s);
		return NULL;
	}
	return s;
}

/* Why `have`'s .rodata does not hold each setting of `want`'s at the same
 * offset and size (the skeleton writes them at `want`'s), or NULL. */
static const char *rodata_mismatch(const struct shield *want, const struct shield *have,
				   char *buf, size_t len)
{
	const struct btf *wb = bpf_object__btf(want->obj), *hb = bpf_object__btf(have->obj);
	int ws = wb ? btf__find_by_name_kind(wb, ".rodata", BTF_KIND_DATASEC) : -1;
	int hs = hb ? btf__find_by_name_kind(hb, ".rodata", BTF_KIND_DATASEC) : -1;
	if (ws < 0 || hs < 0) {
		snprintf(buf, len, "no BTF for its .rodata settings");
		return buf;
	}
	const struct btf_type *wt = btf__type_by_id(wb, (uint32_t)ws);
	const struct btf_type *ht = btf__type_by_id(hb, (uint32_t)hs);
	const struct btf_var_secinfo *wv = btf_var_secinfos(wt);
	for (unsigned i = 0; i < btf_vlen(wt); i++, wv++) {
		const char *name = btf__name_by_offset(wb, btf__type_by_id(wb, wv->type)->name_off);
		const struct btf_var_secinfo *hv = btf_var_secinfos(ht);
		unsigned j = 0;
		for (; j < btf_vlen(ht); j++, hv++)
			if (strcmp(btf__name_by_offset(hb, btf__type_by_id(hb, hv->type)->name_off),
				   name) == 0)
				break;
		if (j == btf_vlen(ht)) {
			snprintf(buf, len, ".rodata has no setting %s", name);
			return buf;
		}
		if (hv->offset != wv->offset || hv->size != wv->size) {
			snprintf(buf, len,
				 ".rodata setting %s is %u bytes at offset %u, kl-enforcer writes %u "
				 "bytes at %u",
				 name, hv->size, hv->offset, wv->size, wv->offset);
			return buf;
		}
	}
	return NULL;
}

const char *enf_obj_mismatch(const struct shield *want, const struct shield *have, char *buf,
			     size_t len)
{
	const struct bpf_object_skeleton *ws = want->skeleton, *hs = have->skeleton;
	for (int i = 0; i < ws->map_cnt; i++) {
		const struct bpf_map *w = *ws->maps[i].map, *h = *hs->maps[i].map;
		const char *name = ws->maps[i].name;
		if (bpf_map__type(h) != bpf_map__type(w))
			snprintf(buf, len, "map %s has type %u, kl-enforcer's has %u", name,
				 bpf_map__type(h), bpf_map__type(w));
		else if (bpf_map__key_size(h) != bpf_map__key_size(w) ||
			 bpf_map__value_size(h) != bpf_map__value_size(w))
			snprintf(buf, len, "map %s has key/value size %u/%u, kl-enforcer's has %u/%u",
				 name, bpf_map__key_size(h), bpf_map__value_size(h),
				 bpf_map__key_size(w), bpf_map__value_size(w));
		else if (bpf_map__map_flags(h) != bpf_map__map_flags(w))
			snprintf(buf, len, "map %s has flags 0x%x, kl-enforcer's has 0x%x", name,
				 bpf_map__map_flags(h), bpf_map__map_flags(w));
		else
			continue;
		return buf;
	}
	return rodata_mismatch(want, have, buf, len);
}

const char *enf_skel_spec_mismatch(const struct shield *s, char *buf, size_t len)
{
	for (int i = 0; i < ENF_M_MAX; i++) {
		const struct enf_map_spec *sp = &enf_map_specs[i];
		const struct bpf_map *m = skel_map(s, (enum enf_map_id)i);
		if (strcmp(bpf_map__name(m), sp->name) != 0)
			snprintf(buf, len, "map %d is %s in the object, %s in enf_map_specs", i,
				 bpf_map__name(m), sp->name);
		else if (sp->key_size && (bpf_map__key_size(m) != sp->key_size ||
					  bpf_map__value_size(m) != sp->value_size))
			snprintf(buf, len, "map %s has key/value size %u/%u, bpf/shield.h says %u/%u",
				 sp->name, bpf_map__key_size(m), bpf_map__value_size(m), sp->key_size,
				 sp->value_size);
		else if (sp->lpm != (bpf_map__type(m) == BPF_MAP_TYPE_LPM_TRIE))
			snprintf(buf, len, "map %s: LPM trie or not, object and enf_map_specs disagree",
				 sp->name);
		else
			continue;
		return buf;
	}
	return NULL;
}

struct shield *enf_skel_open(const void *elf, size_t len, const char *pin_dir, int *err)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = pin_dir);
	return skel_open(elf, len, &oo, err);
}

/*
 * kl-sensor holds no capability: after an enforcer restart it re-opens the
 * telemetry pins read-only, which bpffs allows by file mode alone. So the
 * pin directory (0750) and exactly the telemetry pins (0640) get the sensor
 * user's group; every policy pin stays 0600 root. The slot arrays (sources
 * and flows) are 0660: mmap wants a read-write fd, and they are frozen (see
 * enf_load), so write access to the pin grants no write to the map.
 */
static const struct {
	const char *name;
	mode_t mode;
} telemetry_pins[] = {
	{ KL_MAP_SRC4, 0660 },	{ KL_MAP_SRC6, 0660 },	 { KL_MAP_FLOW4, 0660 },
	{ KL_MAP_FLOW6, 0660 }, { KL_MAP_TOTALS, 0640 },
};

static bool telemetry_pin(const char *name)
{
	for (size_t i = 0; i < sizeof(telemetry_pins) / sizeof(telemetry_pins[0]); i++)
		if (strcmp(name, telemetry_pins[i].name) == 0)
			return true;
	return false;
}

/* Refuse, with the operator's next step, a pinned map libbpf could not
 * reuse; libbpf's own message ("parameter mismatch") names no field. */
static int check_pins(const struct shield *s)
{
	int bad = 0;
	for (int i = 0; i < s->skeleton->map_cnt; i++) {
		const struct bpf_map *m = *s->skeleton->maps[i].map;
		const char *path = bpf_map__pin_path(m);
		char why[160];
		if (!path || access(path, F_OK) < 0)
			continue;
		int fd = bpf_obj_get(path);
		if (fd < 0) {
			kl_error("pinned map %s: cannot open: %s", path, strerror(errno));
			bad++;
			continue;
		}
		struct bpf_map_info info;
		uint32_t ilen = sizeof(info);
		memset(&info, 0, sizeof(info));
		int rc = bpf_obj_get_info_by_fd(fd, &info, &ilen);
		close(fd);
		if (rc < 0) {
			kl_error("pinned %s is not a BPF map (%s); remove it: rm %s", path,
				 strerror(errno), path);
			bad++;
			continue;
		}
		if (enf_pin_mismatch(bpf_map__type(m), bpf_map__key_size(m), bpf_map__value_size(m),
				     bpf_map__max_entries(m), bpf_map__map_flags(m), info.type,
				     info.key_size, info.value_size, info.max_entries, info.map_flags,
				     why, sizeof(why))) {
			/* Counters only: new map_sizes, or a build whose layout
			 * changed, start them afresh (the sensor re-acquires the new
			 * map by its id). A policy map is never dropped this way. */
			if (telemetry_pin(bpf_map__name(m)) && unlink(path) == 0) {
				kl_warn("pinned telemetry map %s does not fit this build or map_sizes (%s): "
					"replaced by a new one, its counters start afresh",
					path, why);
				continue;
			}
			kl_error("pinned map %s cannot be reused: %s. Remove the pin to recreate it "
				 "(its entries are lost): rm %s, or set map_sizes back",
				 path, why, path);
			bad++;
		}
	}
	return bad ? -1 : 0;
}

static int on_event(void *arg, void *data, size_t len)
{
	struct enf_ctx *ctx = arg;
	if (len < sizeof(struct kl_event) || !ctx->ring)
		return 0;
	enf_evring_push(ctx->ring, data);
	return 0;
}

/* The object --obj names, checked against the built-in one: the maps and
 * settings kl-enforcer reaches through the skeleton must be laid out the
 * same. NULL (logged) when they are not. */
static struct shield *open_obj_file(struct enf_ctx *ctx, int *err)
{
	const struct enf_config *cfg = ctx->cfg;
	char why[256];
	size_t len;
	char *buf;
	if (kl_safe_read_file(cfg->obj, ENF_OBJ_MAX, 0, &buf, &len, why, sizeof(why)) < 0) {
		kl_error("cannot read BPF object %s: %s", cfg->obj, why);
		*err = 0;
		return NULL;
	}
	struct shield *ref = enf_skel_open(NULL, 0, NULL, err);
	if (!ref) {
		free(buf);
		return NULL;
	}
	struct shield *s = enf_skel_open(buf, len, cfg->pin_dir, err);
	if (!s) {
		if (*err == -ESRCH) {
			kl_error("%s lacks a map, setting or program kl-enforcer uses (the libbpf "
				 "message above names it): built from another bpf/shield.bpf.c?",
				 cfg->obj);
			*err = 0;
		}
		shield__destroy(ref);
		free(buf);
		return NULL;
	}
	if (enf_obj_mismatch(ref, s, why, sizeof(why))) {
		kl_error("%s does not match kl-enforcer's built-in object: %s (built from another "
			 "bpf/shield.h?)",
			 cfg->obj, why);
		shield__destroy(s);
		s = NULL;
		free(buf);
		*err = 0;
	} else {
		ctx->obj_buf = buf;
	}
	shield__destroy(ref);
	return s;
}

int enf_load(struct enf_ctx *ctx)
{
	const struct enf_config *cfg = ctx->cfg;
	const char *what = cfg->obj[0] ? cfg->obj : "the built-in shield";
	struct shield *s;
	char err[256];
	int rc = 0;

	libbpf_set_print(libbpf_log);
	if (ensure_pin_dir(cfg->pin_dir) < 0)
		return -1;
	s = cfg->obj[0] ? open_obj_file(ctx, &rc) : enf_skel_open(NULL, 0, cfg->pin_dir, &rc);
	if (!s) {
		if (rc) {
			libbpf_strerror(rc, err, sizeof(err));
			kl_error("cannot open %s: %s", what, err);
		}
		return -1;
	}
	ctx->skel = s;

	s->rodata->kl_feat_flow = enf_features_flow(cfg->features);
	s->rodata->kl_feat_edge = enf_features_edge(cfg->features);
	/* The data plane's bucket masks must match the slot counts. */
	uint32_t slots = enf_slots(cfg->map_sizes[ENF_SZ_SRC]);
	s->rodata->kl_src4_mask = slots / KL_SRC_WAYS - 1;
	s->rodata->kl_src6_mask = slots / KL_SRC_WAYS - 1;
	s->rodata->kl_flow_mask = enf_slots(cfg->map_sizes[ENF_SZ_FLOW]) / KL_FLOW_WAYS - 1;

	/* Tag lines: one per bucket of the source slots. */
	int bad = 0;
	struct bpf_map *tags[] = { s->maps.kl_src_tags4, s->maps.kl_src_tags6 };
	for (size_t i = 0; i < 2; i++) {
		if (bpf_map__set_max_entries(tags[i], slots / KL_SRC_WAYS) < 0) {
			kl_error("map %s: cannot set max_entries %u", bpf_map__name(tags[i]),
				 slots / KL_SRC_WAYS);
			bad++;
		}
	}
	for (int i = 0; i < ENF_M_MAX; i++) {
		const struct enf_map_spec *sp = &enf_map_specs[i];
		if (sp->size_key < 0)
			continue;
		uint32_t want = cfg->map_sizes[sp->size_key];
		if (enf_is_slot_map(i))
			want = enf_slots(want);
		if (bpf_map__set_max_entries(skel_map(s, (enum enf_map_id)i), want) < 0) {
			kl_error("map %s: cannot set max_entries %u", sp->name, want);
			bad++;
		}
	}
	if (bad || check_pins(s) < 0)
		return -1;

	if ((rc = shield__load(s)) < 0) {
		libbpf_strerror(rc, err, sizeof(err));
		kl_error("loading %s failed: %s (the libbpf messages above say where)", what, err);
		return -1;
	}
	ctx->prog_fd = bpf_program__fd(s->progs.kl_shield);
	struct bpf_prog_info pinfo;
	uint32_t plen = sizeof(pinfo);
	memset(&pinfo, 0, sizeof(pinfo));
	if (bpf_obj_get_info_by_fd(ctx->prog_fd, &pinfo, &plen) == 0)
		ctx->prog_id = pinfo.id;
	for (int i = 0; i < ENF_M_MAX; i++) {
		struct bpf_map *m = skel_map(s, (enum enf_map_id)i);
		ctx->fd[i] = bpf_map__fd(m);
		ctx->map_max[i] = bpf_map__max_entries(m);
	}
	/* The policy summary must exist: without it the data plane would
	 * take an empty one as "no entries" for sources without a slot. */
	ctx->bloom_fd = bpf_map__fd(s->maps.kernloom_policy_bloom);
	/* The slot arrays are written by the data plane only: frozen, the
	 * kernel refuses every syscall write and writable mmap, so the
	 * sensor may hold them open read-write (needed to mmap them) and
	 * still only read. A reused pin is frozen already: the kernel then
	 * answers EPERM (a frozen map is no longer writable, not even for
	 * freezing), or EBUSY. */
	for (int i = 0; i < ENF_M_MAX; i++) {
		if (!enf_is_slot_map(i))
			continue;
		if (bpf_map_freeze(ctx->fd[i]) < 0 && errno != EBUSY && errno != EPERM) {
			kl_error("map %s: cannot freeze it: %s", enf_map_specs[i].name,
				 strerror(errno));
			return -1;
		}
	}
	ctx->rb = ring_buffer__new(ctx->fd[ENF_M_EVENTS], on_event, ctx, NULL);
	if (!ctx->rb)
		kl_warn("cannot open the event ring buffer %s: %s; `events` will stay empty",
			KL_MAP_EVENTS, strerror(errno));
	kl_info("loaded %s: program %s id %u, features %s, maps pinned in %s", what,
		bpf_program__name(s->progs.kl_shield), ctx->prog_id,
		enf_features_name(cfg->features), cfg->pin_dir);
	return 0;
}

/* ---- interfaces ---- */

static const char *mode_of(uint8_t attach_mode)
{
	switch (attach_mode) {
	case XDP_ATTACHED_DRV: return "native";
	case XDP_ATTACHED_SKB: return "generic";
	case XDP_ATTACHED_HW: return "offload";
	case XDP_ATTACHED_MULTI: return "multi";
	default: return "none";
	}
}

static struct enf_iface *find_iface(struct enf_ctx *ctx, const char *ifname)
{
	for (size_t i = 0; i < ctx->n_ifaces; i++)
		if (strcmp(ctx->ifaces[i].name, ifname) == 0)
			return &ctx->ifaces[i];
	return NULL;
}

static void drop_iface(struct enf_ctx *ctx, struct enf_iface *ifc)
{
	if (ifc->link_fd >= 0)
		close(ifc->link_fd);
	size_t i = (size_t)(ifc - ctx->ifaces);
	memmove(&ctx->ifaces[i], &ctx->ifaces[i + 1], (ctx->n_ifaces - i - 1) * sizeof(*ifc));
	ctx->n_ifaces--;
}

static int link_info(int lfd, struct bpf_link_info *info)
{
	uint32_t len = sizeof(*info);
	memset(info, 0, sizeof(*info));
	return bpf_obj_get_info_by_fd(lfd, info, &len);
}

static void add_iface(struct enf_ctx *ctx, const char *ifname, int ifindex, int lfd)
{
	struct enf_iface *ifc = &ctx->ifaces[ctx->n_ifaces++];
	struct bpf_link_info li;
	memset(ifc, 0, sizeof(*ifc));
	snprintf(ifc->name, sizeof(ifc->name), "%s", ifname);
	ifc->ifindex = ifindex;
	ifc->link_fd = lfd;
	if (link_info(lfd, &li) == 0)
		ifc->link_id = li.id;
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	if (bpf_xdp_query(ifindex, 0, &q) == 0)
		ifc->mode = q.attach_mode == XDP_ATTACHED_SKB ? KL_XDP_GENERIC : KL_XDP_NATIVE;
}

/* Remove whatever XDP program sits on ifindex: through its bpf_link when it
 * has one (netlink cannot detach those), else by netlink in its mode. */
static int detach_foreign(int ifindex, const struct bpf_xdp_query_opts *q, char *msg, size_t len)
{
	uint32_t id = 0;
	while (bpf_link_get_next_id(id, &id) == 0) {
		int fd = bpf_link_get_fd_by_id(id);
		struct bpf_link_info li;
		if (fd < 0)
			continue;
		if (link_info(fd, &li) == 0 && li.type == BPF_LINK_TYPE_XDP &&
		    (int)li.xdp.ifindex == ifindex && li.prog_id == q->prog_id) {
			int rc = bpf_link_detach(fd);
			int e = errno;
			close(fd);
			if (rc < 0) {
				snprintf(msg, len, "cannot detach bpf_link %u: %s", id, strerror(e));
				return -1;
			}
			kl_info("--force: detached foreign bpf_link %u (program %u)", id, q->prog_id);
			return 0;
		}
		close(fd);
	}
	if (errno == EPERM) {
		/* Walking link ids needs CAP_SYS_ADMIN, which the sandbox dropped. */
		kl_debug("cannot list bpf_links (EPERM); trying netlink detach");
	}
	int rc = 0;
	if (q->drv_prog_id)
		rc |= bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, NULL);
	if (q->skb_prog_id)
		rc |= bpf_xdp_detach(ifindex, XDP_FLAGS_SKB_MODE, NULL);
	LIBBPF_OPTS(bpf_xdp_query_opts, after);
	if (rc < 0 || (bpf_xdp_query(ifindex, 0, &after) == 0 && after.prog_id)) {
		snprintf(msg, len,
			 "cannot detach program %u: it is held by a bpf_link kl-enforcer cannot "
			 "reach after dropping privileges (restart kl-enforcer with --force --iface)",
			 q->prog_id);
		return -1;
	}
	kl_info("--force: detached foreign XDP program %u (%s mode)", q->prog_id,
		mode_of(q->attach_mode));
	return 0;
}


/* The pin directory, never through a link at its last component: a bpffs
 * directory owned by root, us or the user we drop to (kl_safe_set_user).
 * Root changes it and its pins only through this descriptor: after an
 * earlier run it belongs to our user, who could swap any name in it for a
 * link between two calls by path. fd, or -1 after logging. */
static int open_pin_dir(const char *dir)
{
	char err[PATH_MAX + 128];
	struct statfs sfs;
	int dfd = kl_safe_opendir(dir, KL_SAFE_OWNED, err, sizeof(err));

	if (dfd < 0) {
		kl_error("pin dir %s", err);
		return -1;
	}
	if (fstatfs(dfd, &sfs) < 0 || (unsigned long)sfs.f_type != BPF_FS_MAGIC) {
		kl_error("pin dir %s: not a directory on a BPF filesystem; refusing it", dir);
		close(dfd);
		return -1;
	}
	return dfd;
}

int enf_share_telemetry(struct enf_ctx *ctx)
{
	const struct enf_config *cfg = ctx->cfg;
	struct passwd *pw = getpwnam(cfg->sensor_user);
	char err[PATH_MAX + 128];
	int rc = -1;

	if (!pw) {
		if (enf_config_given(cfg, "sensor-user")) {
			kl_error("sensor user %s does not exist", cfg->sensor_user);
			return -1;
		}
		kl_info("no user %s: the telemetry pins stay root-only", cfg->sensor_user);
		return 0;
	}
	int dfd = open_pin_dir(cfg->pin_dir);
	if (dfd < 0)
		return -1;
	if (fchown(dfd, (uid_t)-1, pw->pw_gid) < 0 || fchmod(dfd, 0750) < 0) {
		kl_error("pin dir %s: cannot open it to group %u: %s", cfg->pin_dir,
			 (unsigned)pw->pw_gid, strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < sizeof(telemetry_pins) / sizeof(telemetry_pins[0]); i++) {
		const char *name = telemetry_pins[i].name;
		mode_t mode = telemetry_pins[i].mode;
		int fd = kl_safe_openat(dfd, name, O_PATH, 0, KL_SAFE_OWNED, err, sizeof(err));
		if (fd < 0) {
			kl_error("pin dir %s: %s", cfg->pin_dir, err);
			goto out;
		}
		int r = kl_safe_fchown_mode(fd, name, (uid_t)-1, pw->pw_gid, mode, err, sizeof(err));
		close(fd);
		if (r < 0) {
			kl_error("pin dir %s: %s", cfg->pin_dir, err);
			goto out;
		}
	}
	kl_info("telemetry pins readable by group %u (user %s)", (unsigned)pw->pw_gid,
		cfg->sensor_user);
	rc = 0;
out:
	close(dfd);
	return rc;
}

int enf_give_pins(const char *dir, uid_t uid)
{
	struct stat st;
	int rc = -1;
	int dfd = open_pin_dir(dir);
	if (dfd < 0)
		return -1;
	/* /sys/fs/bpf is world-writable (sticky): the directory must be one
	 * we (root) or the target user own, not one planted. */
	if (fstat(dfd, &st) < 0 || (st.st_uid != 0 && st.st_uid != uid)) {
		kl_error("pin dir %s: not owned by root or uid %u; not handing it over", dir,
			 (unsigned)uid);
		goto out;
	}
	if (fchown(dfd, uid, (gid_t)-1) < 0) {
		kl_error("pin dir %s: chown to uid %u: %s", dir, (unsigned)uid, strerror(errno));
		goto out;
	}
	int lfd = dup(dfd);
	DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;
	if (!d) {
		if (lfd >= 0)
			close(lfd);
		kl_error("pin dir %s: %s", dir, strerror(errno));
		goto out;
	}
	struct dirent *de;
	rc = 0;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fchownat(dfd, de->d_name, uid, (gid_t)-1, AT_SYMLINK_NOFOLLOW) < 0) {
			kl_error("pin %s/%s: chown to uid %u: %s", dir, de->d_name, (unsigned)uid,
				 strerror(errno));
			rc = -1;
		}
	}
	closedir(d);
out:
	close(dfd);
	return rc;
}

int enf_attach(struct enf_ctx *ctx, const char *ifname, enum kl_xdp_mode mode, bool force,
	       char *msg, size_t msglen)
{
	char path[PATH_MAX];
	int ifindex = (int)if_nametoindex(ifname);
	if (ifindex == 0) {
		snprintf(msg, msglen, "no interface %s in kl-enforcer's network namespace", ifname);
		return -1;
	}
	if (link_pin_path(ctx, ifname, path, sizeof(path)) < 0) {
		snprintf(msg, msglen, "pin path for %s is too long", ifname);
		return -1;
	}
	struct enf_iface *ifc = find_iface(ctx, ifname);
	if (ifc) {
		struct bpf_link_info li;
		if (link_info(ifc->link_fd, &li) == 0 && (int)li.xdp.ifindex == ifindex) {
			snprintf(msg, msglen, "%s already attached (%s, program %u)", ifname,
				 ifc->mode == KL_XDP_GENERIC ? "generic" : "native", ctx->prog_id);
			return 0;
		}
		/* The interface went away (and maybe came back): start over. */
		drop_iface(ctx, ifc);
		unlink(path);
	}
	if (ctx->n_ifaces == ENF_MAX_IFACES) {
		snprintf(msg, msglen, "cannot attach %s: already on %d interfaces", ifname,
			 ENF_MAX_IFACES);
		return -1;
	}

	/* A link pinned by an earlier run: swap in the new program in place. */
	int lfd = bpf_obj_get(path);
	if (lfd >= 0) {
		struct bpf_link_info li;
		if (link_info(lfd, &li) == 0 && li.type == BPF_LINK_TYPE_XDP &&
		    (int)li.xdp.ifindex == ifindex) {
			if (bpf_link_update(lfd, ctx->prog_fd, NULL) == 0) {
				add_iface(ctx, ifname, ifindex, lfd);
				snprintf(msg, msglen, "%s: pinned link %u updated to program %u (%s)",
					 ifname, li.id, ctx->prog_id,
					 ctx->ifaces[ctx->n_ifaces - 1].mode == KL_XDP_GENERIC
						 ? "generic"
						 : "native");
				return 0;
			}
			kl_warn("%s: cannot update pinned link %u: %s; replacing it", ifname, li.id,
				strerror(errno));
			bpf_link_detach(lfd);
		} else {
			kl_warn("%s: stale link pin %s (its interface is gone); removing it", ifname,
				path);
		}
		close(lfd);
		unlink(path);
	}

	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	if (bpf_xdp_query(ifindex, 0, &q) == 0 && q.attach_mode != XDP_ATTACHED_NONE) {
		if (!force) {
			snprintf(msg, msglen,
				 "refused: %s already has XDP program %u attached (%s mode); use "
				 "--force to replace it",
				 ifname, q.prog_id ? q.prog_id : (q.drv_prog_id ? q.drv_prog_id : q.skb_prog_id),
				 mode_of(q.attach_mode));
			return -2;
		}
		if (detach_foreign(ifindex, &q, msg, msglen) < 0)
			return -1;
	}

	static const uint32_t drv[] = { XDP_FLAGS_DRV_MODE }, skb[] = { XDP_FLAGS_SKB_MODE },
			      both[] = { XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE };
	const uint32_t *tries = mode == KL_XDP_NATIVE ? drv : mode == KL_XDP_GENERIC ? skb : both;
	size_t n_tries = mode == KL_XDP_AUTO ? 2 : 1;
	int e = 0;
	lfd = -1;
	for (size_t i = 0; i < n_tries && lfd < 0; i++) {
		LIBBPF_OPTS(bpf_link_create_opts, lo, .flags = tries[i]);
		lfd = bpf_link_create(ctx->prog_fd, ifindex, BPF_XDP, &lo);
		if (lfd < 0) {
			e = errno;
			if (i + 1 < n_tries)
				kl_info("%s: native XDP failed (%s); falling back to generic", ifname,
					strerror(e));
		}
	}
	if (lfd < 0) {
		snprintf(msg, msglen, "cannot attach to %s (%s mode): %s", ifname,
			 enf_xdp_mode_name(mode), strerror(e));
		return -1;
	}
	if (bpf_obj_pin(lfd, path) < 0) {
		e = errno;
		bpf_link_detach(lfd);
		close(lfd);
		snprintf(msg, msglen, "cannot pin the link of %s at %s: %s", ifname, path, strerror(e));
		return -1;
	}
	add_iface(ctx, ifname, ifindex, lfd);
	struct enf_iface *now = &ctx->ifaces[ctx->n_ifaces - 1];
	snprintf(msg, msglen, "%s attached (%s, program %u, link %u pinned at %s)", ifname,
		 now->mode == KL_XDP_GENERIC ? "generic" : "native", ctx->prog_id, now->link_id, path);
	return 0;
}

int enf_detach(struct enf_ctx *ctx, const char *ifname, char *msg, size_t msglen)
{
	char path[PATH_MAX];
	if (link_pin_path(ctx, ifname, path, sizeof(path)) < 0) {
		snprintf(msg, msglen, "pin path for %s is too long", ifname);
		return -1;
	}
	struct enf_iface *ifc = find_iface(ctx, ifname);
	int lfd = ifc ? dup(ifc->link_fd) : bpf_obj_get(path);
	if (lfd < 0) {
		if (ifc)
			drop_iface(ctx, ifc);
		snprintf(msg, msglen, "%s was not attached; nothing to do", ifname);
		return 1;
	}
	int rc = bpf_link_detach(lfd);
	int e = errno;
	close(lfd);
	if (rc < 0 && e != ENOLINK) {
		snprintf(msg, msglen, "cannot detach %s: %s", ifname, strerror(e));
		return -1;
	}
	if (unlink(path) < 0 && errno != ENOENT)
		kl_warn("%s: cannot remove link pin %s: %s", ifname, path, strerror(errno));
	if (ifc)
		drop_iface(ctx, ifc);
	snprintf(msg, msglen, "%s detached (maps stay pinned in %s)", ifname, ctx->cfg->pin_dir);
	return 0;
}

void enf_adopt_links(struct enf_ctx *ctx)
{
	DIR *d = opendir(ctx->cfg->pin_dir);
	struct dirent *de;
	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "link_", 5) != 0)
			continue;
		const char *ifname = de->d_name + 5;
		char why[128], path[PATH_MAX];
		if (enf_check_ifname(ifname, why, sizeof(why)) < 0 || find_iface(ctx, ifname))
			continue;
		if (pin_path(path, sizeof(path), ctx->cfg->pin_dir, de->d_name) < 0)
			continue;
		int lfd = bpf_obj_get(path);
		struct bpf_link_info li;
		if (lfd < 0)
			continue;
		int ifindex = (int)if_nametoindex(ifname);
		if (link_info(lfd, &li) < 0 || li.type != BPF_LINK_TYPE_XDP || li.xdp.ifindex == 0) {
			kl_warn("removing stale link pin %s (its interface is gone)", path);
			close(lfd);
			unlink(path);
			continue;
		}
		if (ifindex == 0 || (int)li.xdp.ifindex != ifindex) {
			/* Probably another network namespace's interface. */
			kl_warn("link pin %s is not for %s in this network namespace; left alone", path,
				ifname);
			close(lfd);
			continue;
		}
		if (ctx->n_ifaces == ENF_MAX_IFACES || bpf_link_update(lfd, ctx->prog_fd, NULL) < 0) {
			kl_warn("%s: cannot update pinned link %u: %s", ifname, li.id, strerror(errno));
			close(lfd);
			continue;
		}
		add_iface(ctx, ifname, ifindex, lfd);
		kl_info("%s: adopted pinned link %u from an earlier run, now running program %u "
			"(not in --iface; `klctl detach %s` removes it)",
			ifname, li.id, ctx->prog_id, ifname);
	}
	closedir(d);
}

json_t *enf_ifaces_json(const struct enf_ctx *ctx)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < ctx->n_ifaces; i++) {
		const struct enf_iface *ifc = &ctx->ifaces[i];
		LIBBPF_OPTS(bpf_xdp_query_opts, q);
		uint32_t prog = 0;
		const char *mode = "none";
		if (bpf_xdp_query(ifc->ifindex, 0, &q) == 0) {
			prog = q.prog_id ? q.prog_id : (q.drv_prog_id ? q.drv_prog_id : q.skb_prog_id);
			mode = mode_of(q.attach_mode);
		}
		json_array_append_new(arr, json_pack("{s:s, s:i, s:s, s:I, s:I, s:b}", "name",
						     ifc->name, "ifindex", ifc->ifindex, "mode", mode,
						     "prog_id", (json_int_t)prog, "link_id",
						     (json_int_t)ifc->link_id, "ours",
						     prog != 0 && prog == ctx->prog_id));
	}
	return arr;
}

void enf_close(struct enf_ctx *ctx, bool detach)
{
	while (ctx->n_ifaces) {
		struct enf_iface *ifc = &ctx->ifaces[ctx->n_ifaces - 1];
		if (detach) {
			char msg[256];
			char name[KL_IFNAMSIZ];
			snprintf(name, sizeof(name), "%s", ifc->name);
			if (enf_detach(ctx, name, msg, sizeof(msg)) < 0)
				kl_warn("%s", msg);
			else
				kl_info("%s", msg);
		} else {
			drop_iface(ctx, ifc);
		}
	}
	if (ctx->rb) {
		ring_buffer__free(ctx->rb);
		ctx->rb = NULL;
	}
	shield__destroy(ctx->skel);
	ctx->skel = NULL;
	free(ctx->obj_buf);
	ctx->obj_buf = NULL;
	for (int i = 0; i < ENF_M_MAX; i++)
		ctx->fd[i] = -1;
	ctx->prog_fd = -1;
}
