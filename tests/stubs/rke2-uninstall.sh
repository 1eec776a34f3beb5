#!/bin/sh
# Stand-in for rke2-uninstall.sh. A rollback must never run it (it deletes the
# data dir with its snapshots): any call is recorded and fails.
# shellcheck source=lib.sh
. /rewind-test/stubs/lib.sh
stub_begin rke2-uninstall.sh ${1+"$@"}
stub_enter
echo "rke2-uninstall.sh: a rollback must never run this" >&2
exit 99
