#!/bin/sh
# Builds the root of one sandboxed host and runs a command in it. Run by the
# sandbox harness (host.rs) as
#   unshare --mount --uts --pid --fork --kill-child sh enter.sh CMD...
# so every mount below is private to this run (unshare makes them private)
# and is gone when the run ends.
#
# The host is a folder, $RW_HOST:
#   upper/  the host's disk: the upper layer of an overlay whose lower layer
#           is this machine's / (read-only). Reads see the real system (sh,
#           coreutils, sha256sum...); every write lands in upper/, which
#           persists between runs; this machine's files are never written.
#           overlayfs refuses an upper layer on the filesystem of its lower
#           layer: $RW_HOST is on another one (a tmpfs; host.rs checks).
#   work/   overlayfs work folder (same filesystem as upper/).
#   root/   the mount point of that overlay: the host's /.
# Each run also mounts a fresh /proc (own PID namespace: `ps` and /proc see
# only this run), /dev, and the test's shared folder at /rewind-test (the
# bundle, stand-ins, journal, faults, fake cluster; its mount point was made
# with the host), sets the host name and chroots, as RW_USER (uid:gid) when
# set, to run CMD. Every process costs here (it runs thousands of times), so
# this script does nothing else.
#
# With RW_ADDRESSES (run with unshare --net), the run's network namespace
# has those addresses on its loopback interface: an RKE1 node known by its
# address only is recognised by it, as on the real host.
#
# Inputs (environment): RW_HOST, RW_HOSTNAME, RW_TEST, RW_USER, RW_ADDRESSES;
# the files mounts and procs of $RW_HOST (see below).
set -eu
R=$RW_HOST/root
mount -t overlay rewind -o "lowerdir=/,upperdir=$RW_HOST/upper,workdir=$RW_HOST/work" "$R"
mount -t proc proc "$R/proc"
mount --bind /dev "$R/dev"
mount --bind "$RW_TEST" "$R/rewind-test"
# Data volumes (host.rs, Host::add_volume): "N ABS" lines, the folder vols/N
# bind-mounted at ABS, unless a stand-in unmounted ABS (listed in
# $RW_TEST/unmounted/<host name>): like a real host, it then stays unmounted.
if [ -s "$RW_HOST/mounts" ]; then
	while read -r n m; do
		if [ -f "$RW_TEST/unmounted/$RW_HOSTNAME" ] && grep -qxF -e "$m" "$RW_TEST/unmounted/$RW_HOSTNAME"; then
			continue
		fi
		mkdir -p "$R$m"
		mount --bind "$RW_HOST/vols/$n" "$R$m"
	done <"$RW_HOST/mounts"
fi
hostname "$RW_HOSTNAME"
if [ -n "${RW_ADDRESSES:-}" ]; then
	ip link set lo up
	for a in $RW_ADDRESSES; do ip addr add "$a/32" dev lo; done
fi
# Processes already running on the host (Host::add_process): one command per
# line, started in the host's root; they are the run's children, killed
# with it.
if [ -s "$RW_HOST/procs" ]; then
	while read -r line; do
		# shellcheck disable=SC2086 # one word per argument
		chroot "$R" $line </dev/null >/dev/null 2>&1 &
	done <"$RW_HOST/procs"
fi
if [ -n "${RW_USER:-}" ]; then
	exec chroot --userspec="$RW_USER" "$R" "$@"
fi
exec chroot "$R" "$@"
