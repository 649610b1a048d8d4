#!/usr/bin/env bash
# Installs the Debian 12 packages the build and the tests need, only those
# missing, so a second run costs nothing.
set -euo pipefail

packages=(
	build-essential pkg-config meson ninja-build clang-format
	clang libclang-rt-dev clang-tidy clang-tools
	libjansson-dev libsqlite3-dev libmicrohttpd-dev
	libarchive-dev liblz4-dev libzstd-dev zlib1g-dev libcmocka-dev
	bats bats-assert bats-support bats-file
	python3 curl util-linux procps sqlite3 file bc
	openjdk-17-jdk-headless golang-go python3-torch
	redis-server redis-tools memcached nginx postgresql-15 postgresql-client-15 nftables
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
