#!/bin/bash
# Trace the daemons' real syscalls under load: run integration scenarios
# with every daemon wrapped in `strace -f` (all threads) and write one
# sorted "name count" list per role to sandbox/traced/<role>.txt. The
# seccomp allow-lists (sandbox/seccomp.c) must stay within these sets plus
# extras documented one by one (tests/unit/test_sandbox_allow.c).
#
#   scripts/trace-syscalls.sh BUILD-DIR [SCENARIO...]
#
# BUILD-DIR holds a release build (make BUILD=build/rel all + tools). Trace a
# build whose daemons do not kill what they are not allowed: the commit
# before the sandbox, with that commit's tests/integration (the committed
# traces were made so). Needs root, as the scenarios do.
# The enforcer's bpf() and epoll_wait are left out after its first
# scenario (millions of sweep calls slow it past the scenarios' deadlines).
set -eu
BUILD=$(realpath "$1")
shift
SCEN=("$@")
[ ${#SCEN[@]} -gt 0 ] || SCEN=(35_enforcer_links 40_sensor 50_decider 60_graphd 30_shield_lifecycle)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d /tmp/kl-trace.XXXXXX)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/build/bin" "$W/out"
# a scenario may start a daemon as nobody: strace runs as that user then
chmod 0755 "$W" && chmod 1777 "$W/out"
ln -s "$BUILD/tools" "$W/build/tools"
ln -s "$BUILD/bpf" "$W/build/bpf"
ln -s "$BUILD/bin/klctl" "$W/build/bin/klctl"
first=1
for s in "${SCEN[@]}"; do
	for r in enforcer sensor decider graphd; do
		filt=""
		[ "$r" = enforcer ] && [ $first = 0 ] && filt="--seccomp-bpf -e trace=!bpf,epoll_wait"
		cat >"$W/build/bin/kl-$r" <<EOT
#!/bin/sh
exec strace -D -f -qq $filt -o $W/out/$r.\$\$ -- $BUILD/bin/kl-$r "\$@"
EOT
		chmod +x "$W/build/bin/kl-$r"
	done
	first=0
	BUILD=$W/build bash "$ROOT/tests/integration/$s.sh" >"$W/$s.log" 2>&1 ||
		echo "note: $s failed under strace (slower); its traces still count" >&2
done
mkdir -p "$ROOT/sandbox/traced"
for r in enforcer sensor decider graphd; do
	{
		echo "# kl-$r: syscalls seen under load (strace -f, every thread), with counts;"
		echo "# scripts/trace-syscalls.sh over: ${SCEN[*]}"
		cat "$W"/out/$r.* 2>/dev/null |
			sed -nE 's/^[0-9]+ +([a-z0-9_]+)\(.*/\1/p; s/^[0-9]+ +<\.\.\. ([a-z0-9_]+) resumed>.*/\1/p' |
			sort | uniq -c | awk '{ print $2, $1 }' | sort
		echo "# arguments of the filtered ones:"
		cat "$W"/out/$r.* 2>/dev/null |
			sed -nE 's/^[0-9]+ +(socket)\(([A-Z_]+),.*/# \1 \2/p; s/^[0-9]+ +(prctl)\(([A-Z_]+),.*/# \1 \2/p; s/^[0-9]+ +(bpf)\((BPF_[A-Z_]+),.*/# \1 \2/p; s/^[0-9]+ +(chown)\("[^"]*", (-?[0-9]+),.*/# \1 owner=\2/p' |
			sort -u
	} >"$ROOT/sandbox/traced/$r.txt"
done
echo "wrote $ROOT/sandbox/traced/{enforcer,sensor,decider,graphd}.txt"
