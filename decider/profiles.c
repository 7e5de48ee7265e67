/* SPDX-License-Identifier: MPL-2.0 */
/*
 * Built-in profiles (profiles.md). Values are written in the knobs' own
 * flag syntax and go through the same parser as a flag would, so a typo
 * here fails the unit test that loads every profile.
 */
#include "decider/knobs.h"

#include <stdio.h>
#include <string.h>

/* Shared by every built-in: severity cap, bps off, cooldown, rates. */
#define COMMON                                                             \
	[PC_TRIG_BPS] = "0", [PC_W_BPS] = "0", [PC_SEV_CAP] = "3.0",        \
	[PC_COOLDOWN] = "5s", [PC_SOFT_RATE] = "20", [PC_SOFT_BURST] = "40", \
	[PC_HARD_RATE] = "5", [PC_HARD_BURST] = "10"

#define TRIG(p, s, c) [PC_TRIG_PPS] = p, [PC_TRIG_SYN] = s, [PC_TRIG_SCAN] = c
#define W(p, s, c) [PC_W_PPS] = p, [PC_W_SYN] = s, [PC_W_SCAN] = c
#define AT(s, h, b) [PC_SOFT_AT] = s, [PC_HARD_AT] = h, [PC_BLOCK_AT] = b
#define TTL(s, h, b) [PC_SOFT_TTL] = s, [PC_HARD_TTL] = h, [PC_BLOCK_TTL] = b
#define GATE(s, d) [PC_GATE_SEV] = s, [PC_GATE_DUR] = d
#define NEED(u, d) [PC_UP_NEED] = u, [PC_DOWN_NEED] = d
#define HOLD(s, h) [PC_HOLD_SOFT] = s, [PC_HOLD_HARD] = h
#define NC(a, d, s, r) [PC_NC_AT] = a, [PC_NC_DROP] = d, [PC_NC_SEV] = s, [PC_NC_RESET] = r

static const struct dec_profile profiles[] = {
	{ "generic", "balanced defaults; never blocks",
	  { COMMON, TRIG("5000", "500", "50"), W(".50", ".30", ".20"), AT("3", "7", "999"),
	    TTL("60s", "5m", "30m"), GATE("0", "0s"), NEED("3", "10"), HOLD("30s", "2m"),
	    NC("999", "999", "999", ".30") } },
	{ "ziti-router", "OpenZiti router, steady state: high PPS tolerance, gated blocking",
	  { COMMON, TRIG("8000", "200", "30"), W(".60", ".25", ".15"), AT("2", "5", "12"),
	    TTL("30s", "2m", "10m"), GATE("3.0", "60s"), NEED("2", "8"), HOLD("20s", "45s"),
	    NC("20", "20", "2.5", ".30") } },
	{ "ziti-router-bootstrap", "OpenZiti router, onboarding: very tolerant, never blocks",
	  { COMMON, TRIG("25000", "600", "120"), W(".60", ".25", ".15"), AT("3", "8", "999"),
	    TTL("45s", "3m", "10m"), GATE("0", "0s"), NEED("3", "10"), HOLD("30s", "60s"),
	    NC("40", "50", "2.5", ".30") } },
	{ "ziti-controller", "OpenZiti controller, steady state: SYN-sensitive, gated blocking",
	  { COMMON, TRIG("80", "20", "5"), W(".35", ".40", ".25"), AT("1", "3", "9"),
	    TTL("60s", "10m", "30m"), GATE("2.0", "15s"), NEED("2", "6"), HOLD("15s", "30s"),
	    NC("8", "1.0", "1.5", ".30") } },
	{ "ziti-controller-bootstrap", "OpenZiti controller, onboarding: tolerant, never blocks",
	  { COMMON, TRIG("400", "120", "30"), W(".35", ".45", ".20"), AT("2", "6", "999"),
	    TTL("90s", "10m", "30m"), GATE("0", "0s"), NEED("3", "8"), HOLD("30s", "60s"),
	    NC("12", "2.0", "1.5", ".30") } },
	{ "public-web", "public website: tolerates browsing bursts",
	  { COMMON, TRIG("1200", "250", "20"), W(".55", ".30", ".15"), AT("2", "5", "12"),
	    TTL("60s", "10m", "10m"), GATE("2.8", "30s"), NEED("2", "8"), HOLD("20s", "45s"),
	    NC("15", "10", "2.0", ".30") } },
	{ "public-api", "public JSON/API endpoint: burstier machine clients",
	  { COMMON, TRIG("2500", "500", "30"), W(".55", ".30", ".15"), AT("2", "4", "10"),
	    TTL("60s", "10m", "15m"), GATE("2.8", "25s"), NEED("2", "8"), HOLD("20s", "45s"),
	    NC("12", "15", "2.0", ".30") } },
	{ "idp", "identity / login / token endpoints: SYN-sensitive, strict limits",
	  { COMMON, TRIG("350", "180", "10"), W(".30", ".55", ".15"), AT("1", "3", "8"),
	    TTL("2m", "15m", "30m"), GATE("2.5", "30s"), NEED("2", "8"), HOLD("30s", "60s"),
	    NC("10", "1.0", "1.8", ".30") } },
	{ "internal-app", "internal east-west services: scan-weighted, never blocks",
	  { COMMON, TRIG("800", "150", "8"), W(".25", ".20", ".55"), AT("3", "6", "999"),
	    TTL("3m", "15m", "10m"), GATE("0", "0s"), NEED("2", "10"), HOLD("45s", "2m"),
	    NC("999", "999", "999", ".30") } },
	{ "nas", "NAS / file services: SYN- and scan-sensitive, long blocks",
	  { COMMON, TRIG("1500", "30", "8"), W(".30", ".35", ".35"), AT("2", "5", "14"),
	    TTL("2m", "15m", "24h"), GATE("2.5", "30s"), NEED("2", "8"), HOLD("60s", "5m"),
	    NC("10", "2.0", "1.8", ".30") } },
	{ "nas-bootstrap", "NAS onboarding: tolerant, never blocks",
	  { COMMON, TRIG("4000", "100", "30"), W(".30", ".40", ".30"), AT("3", "7", "999"),
	    TTL("3m", "20m", "24h"), GATE("0", "0s"), NEED("3", "10"), HOLD("2m", "10m"),
	    NC("999", "999", "999", ".30") } },
	{ "ssh-bastion", "SSH entry points: low thresholds, fast reaction, gated blocking",
	  { COMMON, TRIG("60", "25", "5"), W(".30", ".55", ".15"), AT("1", "2", "6"),
	    TTL("5m", "30m", "60m"), GATE("2.0", "30s"), NEED("2", "10"), HOLD("60s", "5m"),
	    NC("6", "0.5", "1.5", ".30") } },
};

static const struct {
	const char *alias, *name;
} aliases[] = {
	{ "router", "ziti-router" },
	{ "controller", "ziti-controller" },
	{ "internal", "internal-app" },
};

const struct dec_profile *dec_profiles(size_t *n)
{
	*n = sizeof(profiles) / sizeof(profiles[0]);
	return profiles;
}

const struct dec_profile *dec_profile_find(const char *name)
{
	size_t n = sizeof(profiles) / sizeof(profiles[0]);

	if (name == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++) {
		if (strcmp(name, aliases[i].alias) == 0) {
			name = aliases[i].name;
			break;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(name, profiles[i].name) == 0)
			return &profiles[i];
	}
	return NULL;
}

const char *dec_profile_names(void)
{
	static char buf[512];

	if (buf[0] == '\0') {
		size_t o = 0;
		for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++)
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", i ? ", " : "",
					      profiles[i].name);
		snprintf(buf + o, sizeof(buf) - o,
			 "; aliases: router, controller, internal");
	}
	return buf;
}
