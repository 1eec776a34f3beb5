#!/bin/sh
# Stand-in for the upstream RKE2 install script fetched over the network
# (the sandbox serves it with REWIND_INSTALL_SCRIPT_URL=file://...). It
# installs the rke2 stand-in of INSTALL_RKE2_VERSION: with the tar method
# into /usr/local (units in /usr/local/lib/systemd/system), with the rpm
# method into /usr/bin (units in /usr/lib/systemd/system), as the packages do.
# Root only; without INSTALL_RKE2_VERSION it refuses (the real one would
# install the latest release).
# K3s's install variables: the K3s install script's stand-in answers.
if [ -n "${INSTALL_K3S_EXEC:-}" ]; then exec sh /rewind-test/stubs/k3s-install.sh ${1+"$@"}; fi
# shellcheck source=lib.sh
. /rewind-test/stubs/lib.sh
stub_begin rke2-install.sh ${1+"$@"}
stub_env INSTALL_RKE2_VERSION INSTALL_RKE2_TYPE INSTALL_RKE2_METHOD INSTALL_RKE2_CHANNEL \
	INSTALL_RKE2_ARTIFACT_PATH INSTALL_RKE2_TAR_PREFIX
stub_enter

if [ "$(id -u)" != 0 ]; then
	echo "[ERROR]  You need to be root to perform this install" >&2
	exit 1
fi
v=${INSTALL_RKE2_VERSION:-}
if [ -z "$v" ]; then
	echo "[ERROR]  stand-in: no INSTALL_RKE2_VERSION: the real script would install the latest release" >&2
	exit 1
fi
case ${INSTALL_RKE2_METHOD:-tar} in
rpm)
	bin=/usr/bin
	units=/usr/lib/systemd/system
	;;
*)
	bin=${INSTALL_RKE2_TAR_PREFIX:-/usr/local}/bin
	units=${INSTALL_RKE2_TAR_PREFIX:-/usr/local}/lib/systemd/system
	# Another prefix: install.sh moves the units to /etc/systemd/system.
	if [ "${INSTALL_RKE2_TAR_PREFIX:-/usr/local}" != /usr/local ]; then units=/etc/systemd/system; fi
	;;
esac
printf '[INFO]  installing rke2 %s (%s) into %s\n' "$v" "${INSTALL_RKE2_TYPE:-server}" "$bin"
mkdir -p "$bin" "$units"
sed "s/^RKE2_STUB_VERSION=.*/RKE2_STUB_VERSION=$v/" /rewind-test/stubs/rke2 >"$bin/rke2"
cp /rewind-test/stubs/rke2-killall.sh "$bin/rke2-killall.sh"
cp /rewind-test/stubs/rke2-uninstall.sh "$bin/rke2-uninstall.sh"
chmod 755 "$bin/rke2" "$bin/rke2-killall.sh" "$bin/rke2-uninstall.sh"
for u in rke2-server rke2-agent; do
	printf '[Unit]\nDescription=Rancher Kubernetes Engine v2 (%s) %s\n[Service]\nType=notify\nExecStart=%s/rke2 %s\n' \
		"${u#rke2-}" "$v" "$bin" "${u#rke2-}" >"$units/$u.service"
done
systemctl daemon-reload
printf '[INFO]  install complete\n'
