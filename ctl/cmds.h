/* SPDX-License-Identifier: MPL-2.0 */
/*
 * klctl's command table: every command (and every seed alias) with the
 * daemon it talks to, its argument spec, help, the request it builds and
 * how its answer is printed. Parsing and printing are pure functions.
 */
#ifndef KL_CTL_CMDS_H
#define KL_CTL_CMDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ipc/msg.h"

struct json_t;

/* Daemons klctl can talk to. */
enum ctl_daemon { CTL_D_ENFORCER = 0, CTL_D_DECIDER, CTL_D_GRAPHD, CTL_D_MAX };
const char *ctl_daemon_name(enum ctl_daemon d);    /* "kl-enforcer", "kl-decider", "kl-graphd" */
const char *ctl_daemon_socket(enum ctl_daemon d);  /* "enforcer.sock", "decider.sock", ... */
/* Whose run directory (sandbox/rundir.h) holds that socket. */
enum kl_role ctl_daemon_role(enum ctl_daemon d);

enum ctl_field {
	F_NONE = 0,
	F_ADDR_HOST,  /* single address */
	F_ADDR_CIDR,  /* address or prefix */
	F_TTL,        /* duration -> ttl_ms */
	F_RATE,
	F_BURST,
	F_COUNT,
	F_TOPBY,      /* pkts|bytes|drops|droprl -> mode */
	F_IFNAME,
	F_XDPMODE,    /* native|generic|auto -> mode */
	F_FORCE,      /* boolean flag */
	F_PORT,
	F_PROTO,      /* tcp|udp|icmp|icmpv6|number */
	F_MASK,       /* sampling mask -> count */
	F_ONOFF,      /* on|off -> mode */
	F_EDGEMODE,   /* off|deny|allow -> mode */
	F_OBJ,        /* accepted and ignored, with a note */
	F_JSON,       /* boolean flag: print the JSON answer (as the global --json) */
	F_DRYRUN,     /* boolean flag: mode = 1 */
	F_GSTATE,     /* graph edge state name -> mode = 1 + enum gr_state */
	F_UNTIL,      /* RFC 3339 time -> mode = 1, ttl_ms = Unix ms (whitelist add) */
	F_FIELD_COUNT
};

struct ctl_arg {
	const char *name; /* "--ttl", "-iface" (flag) or "IP" (positional) */
	const char *alt;  /* another spelling of the same flag, or NULL */
	enum ctl_field field;
	bool required;
};

#define CTL_MAX_ARGS 6

struct ctl_cmd {
	const char *words[2];   /* {"deny", "add"} or {"stats", NULL} */
	const char *alias_of;   /* for seed aliases: the command it spells */
	uint16_t cmd;           /* enum kl_ctl_cmd: names the daemon it goes to */
	struct ctl_arg args[CTL_MAX_ARGS];
	const char *usage;      /* arguments after the name */
	const char *help;
	const char *example;
	void (*print)(struct json_t *doc, const char *text, FILE *out);
	uint64_t default_count; /* count when not given */
	bool detach_all_if_no_iface; /* detach-xdp without -iface */
};

/* The daemon that serves c (from the command table in ipc/msg.h). */
enum ctl_daemon ctl_cmd_daemon(const struct ctl_cmd *c);

extern const struct ctl_cmd ctl_cmds[];
extern const size_t ctl_n_cmds;

/* Commands klctl runs itself rather than one daemon's table entry (status,
 * top, trace, audit). */
struct ctl_offline_opt {
	const char *name; /* "--interval DUR" */
	const char *help;
};
struct ctl_offline {
	const char *usage; /* "trace dump FILE [--json]" */
	const char *help;
	struct ctl_offline_opt opts[6];
};
extern const struct ctl_offline ctl_offline[];
extern const size_t ctl_n_offline;

/* A parsed invocation. */
struct ctl_call {
	const struct ctl_cmd *cmd;
	struct kl_ctl_req req;
	bool help;       /* `COMMAND --help` */
	bool detach_all; /* detach every attached interface (detach-xdp) */
	bool json;       /* `COMMAND --json` (F_JSON) */
	char note[256];  /* printed to stderr before the request, e.g. -obj */
};

/* Global options before the command. */
struct ctl_global {
	const char *run_dir;
	bool json;
	bool help;
	bool help_man; /* --help-man: print klctl(8) */
	uint64_t timeout_ms;
	int cmd_index; /* argv index of the command word */
};

/* Parse the options before the command. env_run_dir is KERNLOOM_RUN_DIR
 * (or NULL). Returns 0, or -1 with a usage error in err. */
int ctl_global_parse(int argc, char **argv, const char *env_run_dir, struct ctl_global *g,
		     char *err, size_t errlen);

/* Find the command named by argv[0..] (one or two words); *used gets the
 * number of words consumed. NULL if unknown. */
const struct ctl_cmd *ctl_find(int argc, char **argv, int *used);

/* Parse a whole command line (argv[0] is the command word). Returns 0, or
 * -1 with a usage error naming the argument at fault in err. */
int ctl_parse(int argc, char **argv, struct ctl_call *call, char *err, size_t errlen);

/* `klctl top [-n N] [--interval DUR] [--count K] [--json]`: a live view
 * redrawn every interval (the decider's sources, the shield's counters)
 * until Ctrl+C, or K frames. */
struct ctl_top_opts {
	uint32_t n;           /* sources shown (default 15) */
	uint64_t interval_ns; /* default 1 s */
	uint64_t count;       /* frames; 0 = until interrupted */
	bool json;            /* one JSON object per frame and line */
};
/* argv[0] is "top". Returns 0, or -1 with a usage error in err. */
int ctl_top_parse(int argc, char **argv, struct ctl_top_opts *o, char *err, size_t errlen);

/* `klctl status [--expect LIST] [--json]`: the four daemons, in this
 * order. A daemon left out of --expect (one not deployed, e.g. no graphd)
 * is "off" when it does not run and does not fail the exit status. */
enum ctl_unit { CTL_U_ENFORCER = 0, CTL_U_SENSOR, CTL_U_DECIDER, CTL_U_GRAPHD, CTL_U_MAX };
const char *ctl_unit_name(enum ctl_unit u); /* "kl-enforcer", ... */
struct ctl_status_opts {
	unsigned expect; /* bit (1u << enum ctl_unit) per daemon expected up; default all */
	bool json;
	bool help;
};
/* argv[0] is "status". Returns 0, or -1 with a usage error in err. */
int ctl_status_parse(int argc, char **argv, struct ctl_status_opts *o, char *err, size_t errlen);
/* A daemon's state word: "up"; "down" (expected, not running: exit 1);
 * "off" (not expected, not running); "unknown" (UNTOLD: its socket keeps
 * klctl out or does not answer, so whether it runs cannot be told: exit 1
 * as well). */
enum ctl_unit_state { CTL_ST_UP, CTL_ST_DOWN, CTL_ST_OFF, CTL_ST_UNKNOWN };
enum ctl_unit_state ctl_unit_state(bool up, bool untold, bool expected);
const char *ctl_unit_state_name(enum ctl_unit_state s);

/* `klctl events --follow`: of an answer holding the newest N events out
 * of TOTAL received, those not printed yet when LAST_TOTAL had been seen.
 * Returns the index of the first new entry; *missed counts the new events
 * that fell out of the answer (the ring moved on faster than we asked). */
size_t ctl_events_new(uint64_t last_total, uint64_t total, size_t n, uint64_t *missed);

/* "deny add" */
const char *ctl_cmd_name(const struct ctl_cmd *c, char *buf, size_t len);
void ctl_print_usage(FILE *out);
/* `klctl help trace`: usage, meaning and options of every command klctl
 * runs itself whose name starts with WORD ("status", "top", "trace",
 * "audit"); returns how many. */
int ctl_print_offline_help(const char *word, FILE *out);
/* klctl(8) in man(7) format, from the same tables (`klctl --help-man`). */
void ctl_print_man(FILE *out);
void ctl_print_cmd_help(const struct ctl_cmd *c, FILE *out);
/* `klctl help deny`: the help of every "deny ..." command; returns how many. */
int ctl_print_group_help(const char *word, FILE *out);

/* Print a successful answer in text form (the command's printer, or the
 * result text when it has none). */
void ctl_print_result(const struct ctl_cmd *c, struct json_t *doc, const char *text, FILE *out);

/* Printers, exposed for tests. */
void ctl_print_stats(struct json_t *doc, const char *text, FILE *out);
void ctl_print_sources(struct json_t *doc, const char *text, FILE *out);
void ctl_print_tune(struct json_t *doc, const char *text, FILE *out);

#endif
