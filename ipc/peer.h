/* SPDX-License-Identifier: MPL-2.0 */
/* Peer admission and stale-socket handling shared by every listener. */
#ifndef KL_IPC_PEER_H
#define KL_IPC_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define KL_SP_PROBE_WAIT_MS 500

/* uid's supplementary or primary groups (from the user database) hold gid. */
bool kl_user_in_group(uid_t uid, gid_t gid);

/* Root, our own euid (read at call time), a uid of `allowed`, or a member
 * of `group` ((gid_t)-1 = no group) may connect. */
bool kl_peer_allowed(uid_t uid, gid_t gid, const uid_t *allowed, size_t n, gid_t group);

/* Knock on a socket path the way an nng peer does (the 8-byte SP header):
 * 1 an SP server answered, 0 nothing listens, -1 something else (why says
 * what; errno is connect's when connect failed, else 0). With fd_out a
 * successful probe leaves the connection open. Never hang up before the
 * header exchange ends instead: nng 1.5.2 takes that for its listener
 * closing and parks every later connection (ipc/listen.h). */
int kl_sp_probe(const char *path, int wait_ms, char *why, size_t whylen, int *fd_out);
/* The same as a peer speaking SP protocol `proto` (e.g. 0x50 PUSH0 for a
 * PULL0 socket: what the socket expects, so nng takes it as a peer). */
int kl_sp_probe_as(const char *path, uint16_t proto, int wait_ms, char *why, size_t whylen,
		   int *fd_out);

/* Remove a socket file nothing serves (it outlives a crashed daemon);
 * refuse when a server answers or the file is not a socket. */
int kl_clear_stale_socket(const char *path, char *err, size_t errlen);

#endif
