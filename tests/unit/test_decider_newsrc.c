/* SPDX-License-Identifier: MPL-2.0 */
/* When the decider asks for the aggregate new-source limit (decider/newsrc.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "decider/newsrc.h"

static const struct dec_newsrc_cfg cfg = { .trigger = 1000, .rate = 100, .burst = 200,
					  .ttl_ms = 60000 };

static void test_flood_asks_and_renews(void **state)
{
	(void)state;
	struct dec_newsrc s = { 0 };
	bool st, en;

	/* Quiet: nothing asked. */
	assert_false(dec_newsrc_step(&s, &cfg, 999, 1000, &st, &en));
	assert_false(st || en);
	/* A flood: asked at once, once granted not again until half the TTL. */
	assert_true(dec_newsrc_step(&s, &cfg, 5600, 2000, &st, &en));
	assert_true(st);
	dec_newsrc_granted(&s, &cfg, 2000);
	assert_false(dec_newsrc_step(&s, &cfg, 5600, 3000, &st, &en));
	assert_false(st);
	assert_false(dec_newsrc_step(&s, &cfg, 5600, 2000 + 30000, &st, &en));
	assert_true(dec_newsrc_step(&s, &cfg, 5600, 2000 + 30001, &st, &en));
	/* A refused request (no grant) is asked again next tick. */
	assert_true(dec_newsrc_step(&s, &cfg, 5600, 2000 + 31000, &st, &en));
	dec_newsrc_granted(&s, &cfg, 33000);
	/* Over: not renewed, the grant lapses on its own. */
	assert_false(dec_newsrc_step(&s, &cfg, 10, 34000, &st, &en));
	assert_true(en);
	assert_false(dec_newsrc_step(&s, &cfg, 10, 200000, &st, &en));
	assert_false(en);
	assert_int_equal(s.floods, 1);
	/* A second flood after the grant lapsed: asked again. */
	assert_true(dec_newsrc_step(&s, &cfg, 2000, 300000, &st, &en));
	assert_true(st);
	assert_int_equal(s.floods, 2);
}

static void test_trigger_off(void **state)
{
	(void)state;
	struct dec_newsrc_cfg off = cfg;
	struct dec_newsrc s = { 0 };
	bool st, en;

	off.trigger = 0;
	assert_false(dec_newsrc_step(&s, &off, 1e9, 1000, &st, &en));
	assert_false(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flood_asks_and_renews),
		cmocka_unit_test(test_trigger_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
