/* SPDX-License-Identifier: MPL-2.0 */
/*
 * `klctl trace dump FILE [--json]` and
 * `klctl trace from-pcap CAPTURE [--interval DUR] [--obj PATH]`.
 *
 * Both work on files, not on daemons, so they are not CONTROL requests:
 * klctl's command table hands `trace ...` to ctl_trace_main. argv[0] is
 * "trace" (or the subcommand itself); a global `--json` given before the
 * command may be passed on as an extra "--json" argument.
 * Exit codes: 0 done (a torn last record is reported on stderr and is not
 * an error), 1 failed, 2 usage.
 *
 * JSON-lines output (DESIGN §6.6), one tick per line:
 *   {"t": 0.0, "sources": [{"ip": "198.18.0.1", "pps": 200, "bps": 16000,
 *    "syn": 0, "scan": 0, "droprl": 0}], "flows": [{"src": "198.18.0.1",
 *    "port": 9, "proto": "udp", "pkts": 200, "bytes": 16000}]}
 * t: seconds since the first frame of the trace (from-pcap: since the end
 * of the capture's first tick), printed with at least one decimal. Every
 * number is printed with up to three decimals, trailing zeros removed
 * ("%.3f" trimmed), so output is byte-identical for identical input.
 * Sources are sorted by address (IPv4 first), flows by source, port,
 * protocol. proto is "tcp", "udp", "icmp", "icmpv6" or the number as a
 * string ("47").
 */
#ifndef KL_CTL_TRACE_H
#define KL_CTL_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

int ctl_trace_main(int argc, char **argv);

/* ---- pieces, public for tests ---- */

/* "%.3f" without trailing zeros ("200", "33.333", "0"); with_decimal keeps
 * one (for t: "12.0"). Returns buf. */
const char *ctl_trace_num(double v, bool with_decimal, char *buf, size_t len);

struct ctl_tick_printer;
/* Collects the frames of one tick (TELEMETRY and FLOWS with the same tick)
 * and prints a line (JSON) or a block (table) when the tick changes. */
struct ctl_tick_printer *ctl_tick_printer_new(FILE *out, bool json);
/* Feed one wire message; -1 with err set when it does not decode. */
int ctl_tick_printer_add(struct ctl_tick_printer *p, const uint8_t *msg, size_t len, char *err,
			 size_t errlen);
/* Print what is pending; returns the number of ticks printed in total. */
uint64_t ctl_tick_printer_finish(struct ctl_tick_printer *p);
void ctl_tick_printer_free(struct ctl_tick_printer *p);

#endif
