#!/bin/sh
# Stand-in for RKE2's install.sh in an air-gap artifacts folder, doing what the
# real one was observed to do with INSTALL_RKE2_ARTIFACT_PATH
# (docs/upstream-facts.md §4), in its own words:
# - root only; no network; INSTALL_RKE2_VERSION is ignored;
# - the tarball's sha256 must match its line in sha256sum-<arch>.txt;
# - it unpacks into INSTALL_RKE2_TAR_PREFIX (default /usr/local);
# - rke2-images.linux-<arch>.tar.zst (or .tar.gz), when listed in the sums
#   file, is moved into INSTALL_RKE2_AGENT_IMAGES_DIR (default
#   /var/lib/rancher/rke2/agent/images, whatever the data dir); an archive
#   that is present but not listed is skipped silently; the other
#   rke2-images-* archives (Canal, Calico, Cilium, split core) are NOT
#   installed, as by install.sh before v1.31.0 (docs/upstream-facts.md §4.1);
# - systemctl daemon-reload unless INSTALL_RKE2_SKIP_RELOAD.
# shellcheck source=lib.sh
. /rewind-test/stubs/lib.sh
stub_begin install.sh ${1+"$@"}
stub_env INSTALL_RKE2_ARTIFACT_PATH INSTALL_RKE2_TYPE INSTALL_RKE2_VERSION INSTALL_RKE2_METHOD \
	INSTALL_RKE2_TAR_PREFIX INSTALL_RKE2_AGENT_IMAGES_DIR
stub_enter

info() { printf '[INFO]  %s\n' "$*"; }
if [ "$(id -u)" != 0 ]; then
	echo "[ERROR]  You need to be root to perform this install" >&2
	exit 1
fi
art=${INSTALL_RKE2_ARTIFACT_PATH:-}
if [ -z "$art" ]; then
	echo "[ERROR]  stand-in: no INSTALL_RKE2_ARTIFACT_PATH, and there is no network here" >&2
	exit 1
fi
case $(uname -m) in
aarch64 | arm64) arch=arm64 ;;
s390x) arch=s390x ;;
*) arch=amd64 ;;
esac
sums=$art/sha256sum-$arch.txt
tarball=$art/rke2.linux-$arch.tar.gz
info "staging local checksums from $sums"
if [ ! -f "$sums" ]; then
	echo "cp: cannot stat '$sums': No such file or directory" >&2
	exit 1
fi
info "staging tarball from $tarball"
if [ ! -f "$tarball" ]; then
	echo "cp: cannot stat '$tarball': No such file or directory" >&2
	exit 1
fi
info "verifying tarball"
want=$(grep "rke2.linux-$arch.tar.gz" "$sums" | awk '{print $1}')
got=$(sha256sum "$tarball" | awk '{print $1}')
if [ "$want" != "$got" ]; then
	echo "[ERROR]  download sha256 does not match $want, got $got" >&2
	exit 1
fi
prefix=${INSTALL_RKE2_TAR_PREFIX:-/usr/local}
info "unpacking tarball file to $prefix"
mkdir -p "$prefix"
tar xzf "$tarball" -C "$prefix"
# As install.sh does for another prefix (docs/upstream-facts.md §4.2): the
# units and rke2-uninstall.sh name the prefix, and the units move to
# /etc/systemd/system; their .env files stay under the prefix.
if [ "$prefix" != /usr/local ]; then
	for f in "$prefix"/lib/systemd/system/rke2-*.service "$prefix/bin/rke2-uninstall.sh"; do
		sed "s|/usr/local|$prefix|" "$f" >"$f.tmp" && cat "$f.tmp" >"$f" && rm -f "$f.tmp"
	done
	info "moving systemd units to /etc/systemd/system"
	mkdir -p /etc/systemd/system
	mv -f "$prefix"/lib/systemd/system/rke2-*.service /etc/systemd/system/
fi
images=${INSTALL_RKE2_AGENT_IMAGES_DIR:-/var/lib/rancher/rke2/agent/images}
for f in "$art/rke2-images.linux-$arch.tar.zst" "$art/rke2-images.linux-$arch.tar.gz"; do
	if [ -f "$f" ] && grep -q " ${f##*/}\$" "$sums"; then
		info "staging air-gap image tarball from $f"
		mkdir -p "$images"
		mv "$f" "$images/"
	fi
done
if [ -z "${INSTALL_RKE2_SKIP_RELOAD:-}" ]; then
	systemctl daemon-reload
fi
info "install complete"
