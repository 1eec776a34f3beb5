#!/bin/sh
# Stand-in for rke2-killall.sh: refuses non-root like the real one, stops both
# units through systemctl (errors ignored, as the real one does) and records
# RKE2_DATA_DIR. It deletes nothing: config, token, db and snapshots are
# never touched by the real one either.
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
exit 0
