#!/usr/bin/env bash
# PID 1 of the throwaway container of 75_systemd.sh (toolchain notes 8b):
#   unshare --pid --mount --net --uts --ipc --fork bash boot.sh WT BUILD OUT
# An overlay of / with a tmpfs upper layer, checked before systemd boots on
# it (a systemd booted on the shared root would empty the host's /tmp).
# `make install` goes into the overlay; OUT is bind-mounted at /var/tmp/out
# to bring the results back. Nothing here touches the host's filesystems.
set -euo pipefail
WT=$1 BUILD=$2 OUT=$3
read -r hostpid _ </proc/self/stat # /proc is still the host's: our host pid
echo "$hostpid" >"$OUT/pid1"
mount --make-rprivate /
O=/var/tmp/kl-sd.$hostpid
echo "$O" >"$OUT/overlay"
mkdir -p "$O"
mount -t tmpfs tmpfs "$O"
mkdir -p "$O/upper" "$O/work" "$O/root"
mount -t overlay overlay -o lowerdir=/,upperdir="$O/upper",workdir="$O/work" "$O/root"
R=$O/root
[ "$(findmnt -n -o FSTYPE "$R")" = overlay ] || { echo "boot: $R is not an overlay" >&2; exit 1; }
mount -t proc proc "$R/proc"
mount --rbind /sys "$R/sys"
mount --rbind /dev "$R/dev"
mount -t tmpfs tmpfs "$R/run"
mount -t tmpfs tmpfs "$R/tmp"
mkdir -p "$R/var/tmp/out"
mount --bind "$OUT" "$R/var/tmp/out"
# A bpffs of our own (the host may have none; this one dies with us).
mount -t bpf bpf "$R/sys/fs/bpf"

# A fresh machine's view: whatever Kernloom left on the host (a deployment,
# its state, keys and configuration) stays out of the container.
rm -rf "$R/etc/kernloom" "$R/var/lib/kernloom" "$R/var/log/kernloom" "$R/run/kernloom"
make -s -C "$WT" BUILD="$BUILD" DESTDIR="$R" PREFIX=/usr/local install >"$OUT/install.log" 2>&1

# Units that would reach past the container through the shared /sys, /dev or
# the kernel (sysctl, binfmt, modules, the clock, device nodes) are masked;
# sysusers and tmpfiles run for our files only, from the test.
E=$R/etc/systemd/system
for u in systemd-sysctl.service systemd-binfmt.service proc-sys-fs-binfmt_misc.automount \
	systemd-modules-load.service kmod-static-nodes.service systemd-timesyncd.service \
	systemd-pstore.service systemd-firstboot.service systemd-repart.service \
	systemd-tmpfiles-setup-dev.service systemd-tmpfiles-setup.service \
	systemd-tmpfiles-clean.timer systemd-sysusers.service systemd-udevd.service \
	systemd-udev-trigger.service systemd-udev-settle.service systemd-random-seed.service \
	systemd-pcrphase.service systemd-pcrphase-sysinit.service getty.target \
	console-getty.service; do
	ln -sf /dev/null "$E/$u"
done
cat >"$E/kl-lab-test.service" <<UNIT
[Unit]
Description=Kernloom deployment test (runs inside the container)
After=basic.target

[Service]
Type=oneshot
ExecStart=/bin/bash $WT/tests/integration/sd/inside.sh $WT $BUILD
TimeoutStartSec=600
UNIT
exec chroot "$R" /bin/bash -c '[ "$(findmnt -n -o FSTYPE /)" = overlay ] || exit 9
	exec /lib/systemd/systemd --unit=kl-lab-test.service --log-target=journal' \
	>"$OUT/console.log" 2>&1
