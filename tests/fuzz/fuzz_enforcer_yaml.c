/* SPDX-License-Identifier: MPL-2.0 */
/*
 * enforcer.yaml: the parser kl-enforcer runs on the file's text
 * (enf_config_load_file reads the file and calls enf_config_parse_yaml).
 * Beyond "does not crash or leak": errors are counted and kept within
 * their cap; an accepted file goes through the whole-config checks, and
 * its `-n` report is itself a config that parses without error back to
 * the same values (the property the report promises).
 *
 * Input: the file's text.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enforcer/config.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static void same_values(const struct enf_config *a, const struct enf_config *b)
{
	CHECK(a->n_ifaces == b->n_ifaces);
	for (size_t i = 0; i < a->n_ifaces; i++)
		CHECK(strcmp(a->ifaces[i], b->ifaces[i]) == 0);
	CHECK(strcmp(a->obj, b->obj) == 0);
	CHECK(strcmp(a->pin_dir, b->pin_dir) == 0);
	CHECK(strcmp(a->run_dir, b->run_dir) == 0);
	CHECK(a->xdp_mode == b->xdp_mode);
	CHECK(a->features == b->features);
	CHECK(a->n_protect == b->n_protect);
	for (size_t i = 0; i < a->n_protect; i++)
		CHECK(memcmp(&a->protect[i].cidr, &b->protect[i].cidr, sizeof(a->protect[i].cidr)) ==
		      0);
	CHECK(memcmp(a->map_sizes, b->map_sizes, sizeof(a->map_sizes)) == 0);
	CHECK(a->ephemeral_min == b->ephemeral_min);
	CHECK(strcmp(a->decider_user, b->decider_user) == 0);
	CHECK(strcmp(a->graph_user, b->graph_user) == 0);
	CHECK(strcmp(a->sensor_user, b->sensor_user) == 0);
	CHECK(a->decider_rate == b->decider_rate && a->decider_max == b->decider_max);
	CHECK(a->graph_rate == b->graph_rate && a->graph_max == b->graph_max);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Big structs (paths, the error list): static, not on the stack. */
	static struct enf_config c, again;
	static struct enf_diag d;
	char *text = malloc(size ? size : 1);
	CHECK(text != NULL);
	memcpy(text, data, size);

	enf_config_defaults(&c);
	memset(&d, 0, sizeof(d));
	unsigned n = enf_config_parse_yaml(&c, text, size, "fuzz.yaml", &d);
	CHECK(d.n <= ENF_MAX_ERRORS);
	CHECK(n == d.n + d.dropped);
	for (unsigned i = 0; i < d.n; i++)
		CHECK(d.msg[i][0] != '\0');
	if (n == 0) {
		enf_config_validate(&c, &d);
		char *out = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&out, &len);
		CHECK(m != NULL);
		enf_config_render(&c, m);
		CHECK(fclose(m) == 0);
		enf_config_defaults(&again);
		memset(&d, 0, sizeof(d));
		CHECK(enf_config_parse_yaml(&again, out, len, "n.yaml", &d) == 0);
		same_values(&c, &again);
		free(out);
	}
	free(text);
	return 0;
}
