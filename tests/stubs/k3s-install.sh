#!/bin/sh
# Stand-in for K3s's install script (online, fetched through
# REWIND_INSTALL_SCRIPT_URL, or install.sh of an air-gap artifacts folder),
# doing what the real one does (docs/upstream-facts.md, "K3s"), in its own
# words:
# - root only; the command is the first word of INSTALL_K3S_EXEC, else
#   agent when K3S_URL is set, else server; the unit is k3s (server) or
#   k3s-<command>, in /etc/systemd/system;
# - INSTALL_K3S_BIN_DIR (default /usr/local/bin);
# - with INSTALL_K3S_SKIP_DOWNLOAD=true the binary must already be
#   executable there; otherwise INSTALL_K3S_VERSION is installed (the k3s
#   stand-in of that version; without it, refused: the real one would take
#   the latest release);
# - writes k3s-killall.sh and k3s-<unit>-uninstall.sh next to the binary;
# - deletes and rewrites the unit (ExecStart from the command only) and its
#   .env file (from this environment's K3S_* variables): what the install
#   step must put back;
# - enables the unit unless INSTALL_K3S_SKIP_ENABLE=true, starts it unless
#   INSTALL_K3S_SKIP_ENABLE or INSTALL_K3S_SKIP_START is true.
# shellcheck source=lib.sh
. /rewind-test/stubs/lib.sh
stub_begin k3s-install.sh ${1+"$@"}
stub_env INSTALL_K3S_VERSION INSTALL_K3S_EXEC INSTALL_K3S_BIN_DIR INSTALL_K3S_SKIP_DOWNLOAD \
	INSTALL_K3S_SKIP_ENABLE INSTALL_K3S_SKIP_START
stub_enter

if [ "$(id -u)" != 0 ]; then
	echo "[ERROR]  You need to be root to perform this install" >&2
	exit 1
fi
cmd=${INSTALL_K3S_EXEC:-}
cmd=${cmd%% *}
if [ -z "$cmd" ]; then
	if [ -n "${K3S_URL:-}" ]; then cmd=agent; else cmd=server; fi
fi
if [ "$cmd" = server ]; then name=k3s; else name=k3s-$cmd; fi
bin=${INSTALL_K3S_BIN_DIR:-/usr/local/bin}
units=/etc/systemd/system
mkdir -p "$bin" "$units"
if [ "${INSTALL_K3S_SKIP_DOWNLOAD:-}" = true ]; then
	printf '[INFO]  Skipping k3s download and verify\n'
	if [ ! -x "$bin/k3s" ]; then
		echo "[ERROR]  Executable k3s binary not found at $bin/k3s" >&2
		exit 1
	fi
else
	v=${INSTALL_K3S_VERSION:-}
	if [ -z "$v" ]; then
		echo "[ERROR]  stand-in: no INSTALL_K3S_VERSION: the real script would install the latest release" >&2
		exit 1
	fi
	printf '[INFO]  Using %s as release\n' "$v"
	sed -e "s/^RKE2_STUB_VERSION=.*/RKE2_STUB_VERSION=$v/" -e 's/^stub_begin rke2 /stub_begin k3s /' \
		-e 's#/etc/rancher/rke2#/etc/rancher/k3s#g' -e 's/RKE2_TOKEN/K3S_TOKEN/g' \
		-e "s/'rke2 version /'k3s version /" /rewind-test/stubs/rke2 >"$bin/k3s"
	chmod 755 "$bin/k3s"
fi
sed -e 's/rke2-killall.sh/k3s-killall.sh/g' /rewind-test/stubs/rke2-killall.sh >"$bin/k3s-killall.sh"
sed -e 's/rke2-uninstall.sh/k3s-uninstall.sh/g' /rewind-test/stubs/rke2-uninstall.sh >"$bin/$name-uninstall.sh"
chmod 755 "$bin/k3s-killall.sh" "$bin/$name-uninstall.sh"
systemctl disable "$name" >/dev/null 2>&1 || :
rm -f "$units/$name.service" "$units/$name.service.env"
env | sed -n 's/^\(K3S_[A-Za-z0-9_]*=.*\)/\1/p' >"$units/$name.service.env"
printf '[Unit]\nDescription=Lightweight Kubernetes\n[Service]\nType=notify\nEnvironmentFile=-%s\nExecStart=%s/k3s \\\n    %s\n' \
	"$units/$name.service.env" "$bin" "$cmd" >"$units/$name.service"
if [ "${INSTALL_K3S_SKIP_ENABLE:-}" != true ]; then
	systemctl enable "$name"
	systemctl daemon-reload
	if [ "${INSTALL_K3S_SKIP_START:-}" != true ]; then systemctl restart "$name"; fi
fi
printf '[INFO]  install complete\n'
