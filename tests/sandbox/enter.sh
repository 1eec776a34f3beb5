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
# Inputs (environment): RW_HOST, RW_HOSTNAME, RW_TEST, RW_USER, RW_ADDRESSES.
set -eu
R=$RW_HOST/root
mount -t overlay rewind -o "lowerdir=/,upperdir=$RW_HOST/upper,workdir=$RW_HOST/work" "$R"
mount -t proc proc "$R/proc"
mount --bind /dev "$R/dev"
mount --bind "$RW_TEST" "$R/rewind-test"
hostname "$RW_HOSTNAME"
if [ -n "${RW_ADDRESSES:-}" ]; then
	ip link set lo up
	for a in $RW_ADDRESSES; do ip addr add "$a/32" dev lo; done
fi
if [ -n "${RW_USER:-}" ]; then
	exec chroot --userspec="$RW_USER" "$R" "$@"
fi
exec chroot "$R" "$@"
