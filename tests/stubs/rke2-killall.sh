#!/bin/sh
# Stand-in for rke2-killall.sh of one version (the sandbox writes the version
# of the rke2 it installs into the copy, as for the rke2 stand-in). Refuses
# non-root like the real one, stops both units through systemctl (errors
# ignored, as the real one does) and records RKE2_DATA_DIR.
#
# Like the real scripts of the affected releases (docs/upstream-facts.md,
# rancher/rke2#6557, #6571), written from those facts: v1.24.12-v1.24.17,
# v1.25.8-v1.25.16, v1.26.3-v1.26.15, v1.27.1-v1.27.15, v1.28.1-v1.28.11,
# v1.29.0-v1.29.6 and v1.30.0-v1.30.2 unmount every mount at or under
# /var/lib/rancher/rke2 (v1.27.16, v1.28.12, v1.29.7 and v1.30.3: under
# $RKE2_DATA_DIR) and then remove each mount point with
# `rm -rf --one-file-system`, whether the unmount worked or not. A mount
# that holds the working directory of the caller is busy: its unmount fails
# and the rm empties it. An unmount is recorded in
# /rewind-test/unmounted/<host> so that it lasts, as on a real host.
# Earlier releases unmount them without the rm; later ones touch no data
# mount.
RKE2_STUB_VERSION=@VERSION@
# shellcheck source=lib.sh
. /rewind-test/stubs/lib.sh
stub_begin rke2-killall.sh ${1+"$@"}
stub_env RKE2_DATA_DIR
stub_enter
if [ "$(id -u)" != 0 ]; then
	echo "$0: must be run as root" >&2
	exit 1
fi
systemctl stop rke2-server.service || true
systemctl stop rke2-agent.service || true

# The release's "minor.patch", and which path its killall empties (if any).
v=${RKE2_STUB_VERSION#v1.}
v=${v%%+*}
minor=${v%%.*}
patch=${v#*.}
patch=${patch%%-*}
case $minor in *[!0-9]* | '') minor=0 ;; esac
case $patch in *[!0-9]* | '') patch=0 ;; esac
wipes=
remove=1
in_range() { [ "$minor" -eq "$1" ] && [ "$patch" -ge "$2" ] && [ "$patch" -le "$3" ]; }
if in_range 24 12 17 || in_range 25 8 16 || in_range 26 3 15 || in_range 27 1 15 ||
	in_range 28 1 11 || in_range 29 0 6 || in_range 30 0 2; then
	wipes=/var/lib/rancher/rke2
elif in_range 27 16 16 || in_range 28 12 12 || in_range 29 7 7 || in_range 30 3 3; then
	wipes=${RKE2_DATA_DIR:-/var/lib/rancher/rke2}
elif [ "$minor" -le 23 ] || in_range 24 0 11 || in_range 25 0 7 || in_range 26 0 2; then
	# Earlier releases unmount without removing.
	wipes=/var/lib/rancher/rke2
	remove=0
fi
if [ -n "$wipes" ]; then
	cwd=$(readlink "/proc/$PPID/cwd" 2>/dev/null) || cwd=/
	mounts=$(sed -n 's/^[^ ]* \([^ ]*\) .*/\1/p' /proc/self/mounts | grep -e "^$wipes" | sort -r)
	for m in $mounts; do
		case $cwd/ in
		"$m"/*) echo "umount: $m: target is busy." >&2 ;;
		*)
			umount "$m" && {
				mkdir -p /rewind-test/unmounted
				printf '%s\n' "$m" >>"/rewind-test/unmounted/$(uname -n)"
			}
			;;
		esac
		if [ "$remove" = 1 ]; then rm -rf --one-file-system "$m"; fi
	done
fi
exit 0
