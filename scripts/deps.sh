#!/usr/bin/env bash
# Install the Debian packages Kernloom needs to build, test and run its lab.
# Idempotent and quiet when everything is present; needs root (or sudo) to install.
set -euo pipefail

PKGS=(
	make gcc clang llvm libc6-dev linux-libc-dev pkg-config
	libbpf-dev bpftool libelf-dev zlib1g-dev
	libcap-dev libseccomp-dev libyaml-dev libnng-dev libcmocka-dev
	libjansson-dev libsodium-dev libsystemd-dev libpcap-dev libsqlite3-dev
	libclang-rt-14-dev
	iproute2 iputils-ping procps util-linux jq
	curl python3
	# the man pages: groff checks them (tests/man/run.sh), man -l reads them
	groff-base man-db
	# the units' checks (systemd-analyze) and the real-systemd container test
	systemd
	# the lab of `make demo` and the scenario suite: a real web server, a real
	# SYN flood and a real port scan
	nginx-light hping3 nmap
)

missing=()
for p in "${PKGS[@]}"; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[[ "$st" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
