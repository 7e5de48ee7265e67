/* SPDX-License-Identifier: MPL-2.0 */
/*
 * kl-hostile: what a hostile local peer does to our sockets, for the
 * integration tests:
 *
 *   kl-hostile [--push] SOCKET...
 *
 * On each socket: 3 rounds of 20 bare connect+close, then garbage, half an
 * SP header, a header and gone, half a message, a HELLO with a wrong role
 * (tests/unit/hostile.h). --push speaks PUSH0 (the sensor's streams)
 * instead of REQ0. Prints how many connections it made per socket; exit 0
 * when it could connect at all to every socket, 1 otherwise.
 */
#include <stdio.h>
#include <string.h>

#include "../unit/hostile.h"

int main(int argc, char **argv)
{
	uint8_t proto = HOSTILE_REQ0;
	int rc = 0, i = 1;

	if (i < argc && strcmp(argv[i], "--push") == 0) {
		proto = HOSTILE_PUSH0;
		i++;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: kl-hostile [--push] SOCKET...\n");
		return 2;
	}
	for (; i < argc; i++) {
		int made = hostile_attack(argv[i], proto, KL_ROLE_SENSOR);
		printf("%s: %d connections\n", argv[i], made);
		if (made == 0)
			rc = 1;
	}
	return rc;
}
