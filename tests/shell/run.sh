#!/bin/sh
# Tests of rewind's runtime shell library (templates/lib/*.sh).
#
#   sh tests/shell/run.sh [SHELL...]        SHELL: dash posh yash mksh busybox bash
#
# Without arguments every one of the six shells that is installed is used
# (yash runs as `yash -o posixlycorrect`, busybox as `busybox sh`, bash as
# `bash --posix`); a missing shell is reported and skipped, or fails the run
# when REWIND_TEST_STRICT=1. Tools: shellcheck and awk are required; sqlite3,
# zip/unzip, setpriv, script, PostgreSQL 15 and MariaDB enable more tests
# (each test needing a missing tool says SKIP).
#
# Sample scripts are built from the real templates/script.sh.j2 and
# templates/lib.sh.j2 by build.awk (the compiler's quoting; the library is
# core and the fragments, beside the script, pinned by its sha256), then linted with
# `shellcheck -s sh`, parsed with -n and RUN in each shell, with stub tools
# (stubs.sh) first on PATH, REWIND_HOST set, and the journal and state in a
# temporary folder. As root the whole run happens in a private mount
# namespace (unshare -m) with tmpfs over /var/log and /var/lib, so a script
# that uses its default folders changes nothing on this machine.
# Exit status: 0 if every test passed.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LIB=$ROOT/templates/lib
TEMPLATE=$ROOT/templates/script.sh.j2

if [ "$(id -u)" = 0 ] && [ -z "${RW_TEST_NS:-}" ] && command -v unshare >/dev/null 2>&1 &&
	unshare -m true 2>/dev/null; then
	RW_TEST_NS=1 exec unshare -m sh -c '
		mount --make-rprivate / &&
		mount -t tmpfs -o mode=755 tmpfs /var/log &&
		mount -t tmpfs -o mode=755 tmpfs /var/lib &&
		exec sh "$0" "$@"' "$0" "$@"
fi
NS=${RW_TEST_NS:-0}

. "$HERE/stubs.sh"

T=$(mktemp -d "${TMPDIR:-/tmp}/rewind-shtest.XXXXXX")
chmod 755 "$T"
BGPIDS=
cleanup() {
	for p in $BGPIDS; do kill "$p" 2>/dev/null || true; done
	rm -rf "$T" || true
}
trap cleanup EXIT

PASS=0
FAILS=0
SKIPS=0
PLAN=0123abcd89ef0123456789abcdef0123456789abcdef0123456789abcdef0123

# ---- shells -------------------------------------------------------------------
shell_cmd() {
	case $1 in
	dash) echo dash ;;
	posh) echo posh ;;
	yash) echo "yash -o posixlycorrect" ;;
	mksh) echo mksh ;;
	busybox) echo "busybox sh" ;;
	bash) echo "bash --posix" ;;
	*) echo "$1" ;;
	esac
}
if [ $# -eq 0 ]; then set -- dash posh yash mksh busybox bash; fi
SHELLS=
for s in "$@"; do
	c=$(shell_cmd "$s")
	if command -v "${c%% *}" >/dev/null 2>&1; then
		SHELLS="$SHELLS $s"
	elif [ "${REWIND_TEST_STRICT:-0}" = 1 ]; then
		echo "FAIL: shell $s is not installed" >&2
		exit 1
	else
		echo "SKIP: shell $s is not installed"
	fi
done
command -v shellcheck >/dev/null 2>&1 || {
	echo "FAIL: shellcheck is not installed" >&2
	exit 1
}

# ---- building and running -------------------------------------------------------
# setup NAME: a fresh case folder $C with stubs, default values, empty bodies.
setup() {
	CASE=$1
	C=$T/$CASE.$SHN
	mkdir -p "$C/bin" "$C/log" "$C/state" "$C/data"
	chmod -R 755 "$C"
	make_stubs "$C/bin"
	JOURNAL=$C/journal
	: >"$JOURNAL"
	B_PLAN_SHA256=$PLAN
	B_CLUSTER=prod-east
	B_SUFFIX=rewind-0123abcd
	B_STEP=05-restore
	B_NUMBER=5
	B_TOTAL=9
	B_TITLE='Restore etcd from the snapshot'
	B_HOST=node1
	B_ADDRESSES=
	B_NEEDS_ROOT=1
	B_DESTRUCTIVE=0
	B_README=README.md#step-05-restore
	FRAGS="etcd files host install kube mysql postgres rke2 sqlite token"
	# The library constants of an RKE2 plan (src/plan/rke2.rs); k3s_constants
	# switches a case to K3s's.
	printf '%s\n' REWIND_PRODUCT=RKE2 REWIND_BIN=rke2 REWIND_ENV=RKE2 \
		REWIND_DEFAULT_DATA_DIR=/var/lib/rancher/rke2 REWIND_SERVER_UNIT=rke2-server \
		REWIND_AGENT_UNIT=rke2-agent REWIND_IMAGES=rke2-images \
		REWIND_INSTALL_URL=https://get.rke2.io >"$C/constants"
	KEEP_MARKER=0
	: >"$C/pre"
	: >"$C/act"
}
pre() { for l in "$@"; do printf '\t%s\n' "$l" >>"$C/pre"; done; }
act() { for l in "$@"; do printf '\t%s\n' "$l" >>"$C/act"; done; }

# build: $C/s.sh and its library $C/lib.sh from the templates, as the
# compiler lays out a bundle (the compiler joins fragments with "\n").
build() {
	cat "$LIB/core.sh" >"$C/code"
	for f in $FRAGS; do
		printf '\n' >>"$C/code"
		cat "$LIB/$f.sh" >>"$C/code"
	done
	B_CODE=$C/code B_CONSTANTS=$C/constants B_CLUSTER=$B_CLUSTER B_PLAN_SHA256=$B_PLAN_SHA256 \
		awk -f "$HERE/build.awk" "$ROOT/templates/lib.sh.j2" >"$C/lib.sh"
	B_LIBRARY_SHA256=$(sha256sum <"$C/lib.sh" | cut -d ' ' -f 1)
	B_LIBRARY=lib.sh B_LIBRARY_SHA256=$B_LIBRARY_SHA256 B_PREFLIGHT=$C/pre B_ACTIONS=$C/act \
		B_STEP=$B_STEP B_TITLE=$B_TITLE B_HOST=$B_HOST B_ADDRESSES=$B_ADDRESSES \
		B_NEEDS_ROOT=$B_NEEDS_ROOT B_DESTRUCTIVE=$B_DESTRUCTIVE \
		awk -f "$HERE/build.awk" "$TEMPLATE" >"$C/s.sh"
	chmod 755 "$C/s.sh"
}

# run [VAR=VALUE...]: run $C/s.sh in the current shell with the test
# environment; sets RC, output in $C/out and $C/err (and $C/all). The
# done-marker of an earlier run is removed unless KEEP_MARKER=1.
run() {
	RC=0
	if [ "$KEEP_MARKER" != 1 ]; then rm -f "$(MARKER)"; fi
	(
		cd "$C"
		env JOURNAL="$JOURNAL" PATH="$C/bin:$PATH" REWIND_HOST=node1 \
			REWIND_LOG_DIR="$C/log" REWIND_STATE_DIR="$C/state" REWIND_POLL_INTERVAL=1 \
			REWIND_YES= REWIND_FORCE= REWIND_DRY_RUN= HOME="$C/home" XDG_STATE_HOME= \
			"$@" $SH "$C/s.sh" </dev/null >"$C/out" 2>"$C/err"
	) || RC=$?
	cat "$C/out" "$C/err" >"$C/all"
}

# ---- assertions ----------------------------------------------------------------
CASE_FAILED=0
fail() {
	FAILS=$((FAILS + 1))
	CASE_FAILED=1
	printf 'FAIL [%s] %s: %s\n' "$SHN" "$CASE" "$*"
	if [ -f "$C/all" ]; then sed 's/^/    | /' "$C/all" | tail -n 25; fi
}
expect_rc() { [ "$RC" = "$1" ] || fail "exit $RC, expected $1"; }
expect_out() { grep -q -F -e "$1" "$C/all" || fail "output lacks: $1"; }
expect_err() { grep -q -F -e "$1" "$C/err" || fail "stderr lacks: $1"; }
expect_not_out() { if grep -q -F -e "$1" "$C/all"; then fail "output has: $1"; fi; }
expect_file() { [ -e "$1" ] || fail "missing file: $1"; }
expect_no_file() { if [ -e "$1" ]; then fail "unexpected file: $1"; fi; }
expect_called() { grep -q -x -F -e "$1" "$JOURNAL" || fail "not called: $1 (calls: $(tr '\n' ';' <"$JOURNAL"))"; }
expect_not_called() { if grep -q -F -e "$1" "$JOURNAL"; then fail "called: $1"; fi; }
expect_log() { # RESULT EXIT: a journal line with these
	grep -q -E "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z cluster=$B_CLUSTER step=$B_STEP host=$B_HOST result=$1 exit=$2\$" \
		"$C/log/$B_CLUSTER.log" 2>/dev/null || fail "no journal line result=$1 exit=$2 in $(cat "$C/log/$B_CLUSTER.log" 2>/dev/null)"
}
skip() {
	SKIPS=$((SKIPS + 1))
	printf 'SKIP [%s] %s: %s\n' "$SHN" "$CASE" "$*"
}
MARKER() { echo "$C/state/$B_CLUSTER/$PLAN/$B_STEP.done"; }

# ---- static checks (once) ---------------------------------------------------------
static_checks() {
	SHN=static
	# Every fragment alone with core, and all together, lint clean.
	for set in "" etcd files host install k3s kube mysql postgres rke2 sqlite token \
		"etcd files host install k3s kube mysql postgres rke2 sqlite token"; do
		setup "lint-${set%% *}"
		FRAGS=$set
		pre 'need_tools sh'
		act ':'
		build
		if ! shellcheck -s sh "$C/s.sh" >"$C/all" 2>&1; then fail "shellcheck -s sh with fragments [$set]"; fi
		for s in $SHELLS; do
			if ! $(shell_cmd "$s") -n "$C/s.sh" >"$C/all" 2>&1; then fail "$s -n with fragments [$set]"; fi
		done
	done
	# A fragment calls only core (rw_*) and its own functions.
	CASE=fragments
	for f in "$LIB"/*.sh; do
		n=${f##*/}
		sed -n 's/^\([a-z_][a-z0-9_]*\)() {$/\1/p' "$f" >"$T/defs.$n"
	done
	for f in "$LIB"/*.sh; do
		n=${f##*/}
		[ "$n" = core.sh ] && continue
		for g in "$LIB"/*.sh; do
			m=${g##*/}
			[ "$m" = "$n" ] && continue
			[ "$m" = core.sh ] && continue
			# Declared in src/plan/ops.rs (Func::calls): the library then
			# holds both fragments.
			[ "$n:$m" = capture.sh:etcd.sh ] && continue
			while read -r fn; do
				if grep -v '^[[:space:]]*#' "$f" | grep -q -w -e "$fn"; then
					fail "$n calls $fn from $m"
				fi
			done <"$T/defs.$m"
		done
		# the RKE2 fragments define their ops.rs functions, and private
		# helpers only under their own prefix (_rke2_* in rke2.sh)
		case " etcd.sh files.sh host.sh install.sh k3s.sh kube.sh mysql.sh postgres.sh rke2.sh sqlite.sh token.sh " in
		*" $n "*)
			if grep -v -x -E "[a-z][a-z0-9_]*|_${n%.sh}_[a-z0-9_]*" "$T/defs.$n" | grep -q .; then fail "$n defines a helper outside _${n%.sh}_*"; fi
			;;
		esac
	done
	# The contract (src/plan/ops.rs, Func::name and Func::fragment) of the
	# RKE2 fragments: each function is defined in its fragment.
	for pair in files:need_tools files:need_env files:need_file files:need_dir files:check_sha256 \
		files:check_room files:move_aside etcd:check_etcd_snapshot rke2:cluster_reset \
		rke2:check_rke2_version rke2:check_installed_version rke2:stop_rke2 rke2:start_unit \
		rke2:check_no_server_entry rke2:check_server_entry rke2:check_data_dir rke2:check_token_source \
		rke2:check_node_name rke2:check_data_mounts rke2:stop_leftovers rke2:enable_unit rke2:move_pod_manifests_aside token:check_token token:put_token install:check_artifacts \
		install:install_online install:install_airgap install:move_images_aside \
		install:check_rpm_target install:install_rpm install:check_rpm_versions \
		install:move_manifests_aside postgres:check_pg_archive postgres:restore_postgres \
		mysql:check_mysql_dump mysql:restore_mysql sqlite:check_sqlite_db sqlite:restore_sqlite \
		kube:drain_nodes kube:verify_cluster kube:check_rancher_agent kube:suspend_upgrades \
		kube:check_upgrades k3s:check_bin_dir k3s:check_unit_files k3s:keep_unit_files \
		k3s:put_back_unit_files k3s:check_k3s_artifacts k3s:install_k3s; do
		grep -q -x -e "${pair#*:}" "$T/defs.${pair%%:*}.sh" || fail "${pair#*:} is not defined in ${pair%%:*}.sh"
		if [ -f "$ROOT/src/plan/ops.rs" ] && ! grep -q -e "=> \"${pair#*:}\"," "$ROOT/src/plan/ops.rs"; then
			fail "${pair#*:} is no longer a Func::name() in src/plan/ops.rs"
		fi
	done
	# Every failure of a check (a function that starts with the rw_check_op
	# hook) or of a fragment's helper sets a hint first: the preflight prints
	# each problem with what to do (issue 16, item 1).
	CASE=hints
	awk '
		/^[a-z_][a-z0-9_]*\(\) \{$/ { fn = substr($1, 1, index($1, "(") - 1); hinted = 0; check = 0; first = 1; next }
		fn != "" && first { first = 0; if ($0 ~ /rw_check_op /) check = 1 }
		/^}/ { fn = ""; next }
		/rw_hint "/ || /_hint "/ { hinted = 1 }
		/rw_hint$/ { hinted = 0 }
		/rw_fail/ && fn != "" && !hinted && (check || fn ~ /^_[a-z0-9]+_/) && fn !~ /^_rw_/ { print FILENAME ":" FNR ": " fn }
	' "$LIB"/*.sh >"$T/nohint"
	if [ -s "$T/nohint" ]; then fail "a failure without a hint (rw_hint \"what to do\" before it): $(cat "$T/nohint")"; fi
	# The check hook names its own function.
	awk '/^[a-z_][a-z0-9_]*\(\) \{$/ { fn = substr($1, 1, index($1, "(") - 1); next }
		/^\trw_check_op [a-z]/ { if ($2 != fn) print FILENAME ":" FNR ": " fn " calls rw_check_op " $2 }' "$LIB"/*.sh >"$T/hook"
	if [ -s "$T/hook" ]; then fail "$(cat "$T/hook")"; fi
	# No `local`, no rm -rf in the library.
	if grep -n -E '^[[:space:]]*local |rm -rf|rm -fr' "$LIB"/*.sh >"$T/grep" 2>&1; then
		CASE=lib-grep fail "local or rm -rf in the library: $(cat "$T/grep")"
	fi
}

# ---- the tests (each runs in every shell) ----------------------------------------

t_ok_and_done() {
	setup ok-done
	KEEP_MARKER=1
	pre 'need_file /etc/hostname'
	act "move_aside $C/data/etcd rewind-0123abcd"
	mkdir "$C/data/etcd"
	build
	run
	expect_rc 0
	expect_out "ok: preflight"
	expect_out "+ mv $C/data/etcd $C/data/etcd.rewind-0123abcd"
	expect_file "$C/data/etcd.rewind-0123abcd"
	expect_file "$(MARKER)"
	expect_log start -
	expect_log ok 0
	# re-run: already done
	run
	expect_rc 0
	expect_out "already done"
	expect_log skipped 0
	# REWIND_FORCE=1: runs again; the move says "already moved"
	run REWIND_FORCE=1
	expect_rc 0
	expect_out "REWIND_FORCE=1"
	expect_out "already moved aside"
	# both exist: refuse
	mkdir "$C/data/etcd"
	run REWIND_FORCE=1
	expect_rc 1
	expect_err "both $C/data/etcd and $C/data/etcd.rewind-0123abcd exist"
	expect_file "$C/data/etcd"
	expect_log failed 1
}

t_wrong_host() {
	setup wrong-host
	act "move_aside $C/data/x rewind-0123abcd"
	touch "$C/data/x"
	build
	run REWIND_HOST=node2
	expect_rc 3
	expect_err "WRONG HOST"
	expect_err "node1"
	expect_err "node2"
	expect_file "$C/data/x"
	expect_no_file "$C/log/prod-east.log"
	# no REWIND_HOST: this machine's name is not node1
	run REWIND_HOST=
	expect_rc 3
	expect_err "this host's name is '$(uname -n | tr 'A-Z' 'a-z')'"
	# the short name of the host is accepted
	B_HOST=$(uname -n | cut -d. -f1)
	build
	run REWIND_HOST=
	expect_rc 0
	# an address of the node configured here (stub ip)
	B_HOST=node1
	B_ADDRESSES='10.9.9.9 10.0.0.7'
	build
	run REWIND_HOST= STUB_IP_ADDRS='192.168.1.1 10.0.0.7'
	expect_rc 0
	expect_out "address 10.0.0.7"
	run REWIND_HOST= STUB_IP_ADDRS='10.0.0.77'
	expect_rc 3
	# workstation scripts have no guard
	B_HOST=workstation
	B_NEEDS_ROOT=0
	build
	run REWIND_HOST=
	expect_rc 0
}

t_not_root() {
	setup not-root
	if ! command -v setpriv >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
		skip "needs root and setpriv"
		return 0
	fi
	act "move_aside $C/data/x rewind-0123abcd"
	touch "$C/data/x"
	build
	RC=0
	(cd "$C" && env PATH="$C/bin:$PATH" REWIND_HOST=node1 REWIND_LOG_DIR="$C/log" REWIND_STATE_DIR="$C/state" \
		JOURNAL=/dev/null setpriv --reuid=65534 --regid=65534 --clear-groups $SH "$C/s.sh" </dev/null >"$C/out" 2>"$C/err") || RC=$?
	cat "$C/out" "$C/err" >"$C/all"
	expect_rc 4
	expect_err "must run as root"
	expect_file "$C/data/x"
	expect_no_file "$C/log/prod-east.log"
}

t_confirm_no_tty() {
	setup confirm
	B_DESTRUCTIVE=1
	act "stop_rke2 $C/data rke2-server $C/bin/rke2"
	build
	run
	expect_rc 4
	expect_err "REWIND_YES=1"
	expect_out "systemctl stop rke2-server"
	expect_not_called "systemctl <stop>"
	expect_no_file "$(MARKER)"
	expect_log failed 4
	run REWIND_YES=1 REWIND_STOP_TIMEOUT=2
	expect_rc 0
	expect_called "systemctl <stop> <rke2-server>"
	expect_called "systemctl <disable> <rke2-server>"
	expect_out "ok: no process of RKE2 left"
	expect_file "$(MARKER)"
	expect_file "$C/state/prod-east/$PLAN/data-mounts"
	grep -q -x enabled "$C/state/prod-east/$PLAN/rke2-server.enabled" || fail "rke2-server.enabled not recorded"
}

t_confirm_tty() {
	setup confirm-tty
	if ! command -v script >/dev/null 2>&1; then
		skip "needs script(1)"
		return 0
	fi
	B_DESTRUCTIVE=1
	act "move_aside $C/data/x rewind-0123abcd"
	touch "$C/data/x"
	build
	cat >"$C/tty.sh" <<EOF
cd "$C" && env JOURNAL="$JOURNAL" PATH="$C/bin:\$PATH" REWIND_HOST=node1 REWIND_LOG_DIR="$C/log" \
	REWIND_STATE_DIR="$C/state" $SH "$C/s.sh"
echo "rc=\$?"
EOF
	RC=0
	printf 'prod-west\n' | script -q -e -c "sh $C/tty.sh" /dev/null >"$C/all" 2>&1 || RC=$?
	expect_out "Type the cluster name (prod-east)"
	expect_out "not confirmed"
	expect_out "rc=4"
	expect_file "$C/data/x"
	printf 'prod-east\n' | script -q -e -c "sh $C/tty.sh" /dev/null >"$C/all" 2>&1 || RC=$?
	expect_out "rc=0"
	expect_file "$C/data/x.rewind-0123abcd"
}

t_dry_run() {
	setup dry-run
	B_DESTRUCTIVE=1
	pre "need_file $C/data/snap"
	act "stop_rke2 $C/data rke2-server $C/bin/rke2" \
		"move_aside $C/data/etcd rewind-0123abcd" \
		"put_token $C/data/saved-token $C/data/server/token rewind-0123abcd" \
		"cluster_reset $C/bin/rke2 $C/data/snap $C/data/saved-token rke2-server $C/etc/rke2-server.env --etcd-s3=false" \
		"start_unit rke2-server" \
		"check_installed_version $C/bin/rke2 v1.26.9+rke2r1"
	mkdir -p "$C/data/etcd" "$C/data/server"
	echo secret-token-A >"$C/data/saved-token"
	echo secret-token-B >"$C/data/server/token"
	echo snap >"$C/data/snap"
	build
	find "$C/data" "$C/state" "$C/log" -exec ls -ld {} + >"$C/before" 2>&1
	run REWIND_DRY_RUN=1
	expect_rc 0
	expect_out "[dry-run] would run: systemctl stop rke2-server"
	expect_out "[dry-run] would run: systemctl disable rke2-server"
	expect_out "[dry-run] would run: mv $C/data/etcd $C/data/etcd.rewind-0123abcd"
	expect_out "[dry-run] would run: cp $C/data/saved-token $C/data/server/token"
	expect_out "[dry-run] would run: timeout 1800 $C/bin/rke2 server --cluster-reset --cluster-reset-restore-path=$C/data/snap --etcd-s3=false"
	expect_out "[dry-run] would run: systemctl start --no-block rke2-server"
	expect_out "[dry-run] would check that $C/bin/rke2 --version is v1.26.9+rke2r1"
	expect_not_out "secret-token"
	expect_not_out "Type the cluster name"
	find "$C/data" "$C/state" "$C/log" -exec ls -ld {} + >"$C/after" 2>&1
	cmp -s "$C/before" "$C/after" || fail "the dry run changed files: $(diff "$C/before" "$C/after")"
	grep -v -e '--version' -e 'is-active' -e 'is-enabled' "$JOURNAL" >"$C/changing" || true
	[ -s "$C/changing" ] && fail "the dry run ran: $(cat "$C/changing")"
	# --dry-run as argument too
	run REWIND_DRY_RUN=yes
	expect_rc 2
	expect_err "REWIND_DRY_RUN must be 1 or 0"
}

t_failure_report() {
	setup failure
	B_DESTRUCTIVE=1
	act "stop_rke2 $C/data rke2-server $C/bin/rke2"
	build
	run REWIND_YES=1 STUB_RC_systemctl=7
	expect_rc 7
	expect_err "FAILED: a command failed"
	expect_err "step:    05-restore (Restore etcd from the snapshot)"
	expect_err "host:    node1"
	expect_err "command: systemctl stop rke2-server"
	expect_err "exit:    7"
	expect_err "read:    README.md#step-05-restore"
	expect_log failed 7
	expect_no_file "$(MARKER)"
	# a failing preflight check changes nothing and says so
	setup failure-pre
	pre "need_file $C/data/missing" 'need_tools sh no-such-tool-1 no-such-tool-2'
	act "move_aside $C/data/x rewind-0123abcd"
	touch "$C/data/x"
	build
	run
	expect_rc 1
	expect_err "file not found: $C/data/missing"
	expect_err "changed: nothing"
	expect_file "$C/data/x"
	expect_log failed 1
	# an unexpected `set -e` abort (a raw failing command) still reports
	setup failure-abort
	act 'false'
	build
	run
	expect_rc 1
	expect_err "stopped unexpectedly (exit 1)"
	expect_err "read:    README.md#step-05-restore"
	expect_log failed 1
}

t_quoting() {
	setup quoting
	# one directory name with spaces, quotes, $(...), backquotes, ; and a newline
	weird="$C/data/a b'c\"d \$(touch $C/pwned) \`touch $C/pwned2\`; e
f"
	mkdir -p "$weird"
	q=$(printf '%s' "$weird" | sed "s/'/'\"'\"'/g")
	act "move_aside '$q' rewind-0123abcd" "cluster_reset $C/bin/rke2 '$q/snap' '' rke2-server $C/etc/rke2-server.env --etcd-s3=false"
	build
	run REWIND_YES=1
	expect_rc 0
	expect_file "$weird.rewind-0123abcd"
	expect_no_file "$C/pwned"
	expect_no_file "$C/pwned2"
	n=$(grep -c '^rke2 <server> <--cluster-reset> ' "$JOURNAL" || true)
	[ "$n" = 1 ] || fail "rke2 called $n times"
	grep -q -F -e "<--cluster-reset-restore-path=$C/data/a b'c\"d \$(touch $C/pwned)" "$JOURNAL" ||
		fail "restore path not passed as one word: $(cat "$JOURNAL")"
	expect_out "ok: snapshot restored"
	# printed commands can be pasted back: the quoted form evaluates to the word
	# (each path holds one newline: the printed command spans three lines)
	line=$(sed -n '/^+ mv /{N;N;p;}' "$C/out")
	line=${line#+ }
	n=$( (eval "set -- $line" && [ "$#" = 3 ] && [ "$2" = "$weird" ] && echo same) 2>&1) || true
	[ "$n" = same ] || fail "printed mv command does not quote back: $line"
}

t_cluster_reset() {
	setup reset
	mkdir -p "$C/etc"
	printf 'K10abc::server:saved-secret\n' >"$C/data/saved-token"
	printf '# the unit env\nRKE2_FROM_UNIT="from the unit file"\nNOT A VARIABLE\n' >"$C/etc/rke2-server.env"
	act "cluster_reset $C/bin/rke2 $C/data/snap $C/data/saved-token rke2-server $C/etc/rke2-server.env --etcd-s3=false"
	build
	run RKE2_TOKEN=from-the-shell RKE2_URL=https://elsewhere:9345
	expect_rc 0
	expect_out "ok: snapshot restored"
	expect_called "rke2 env: RKE2_TOKEN is set"
	expect_called "rke2 env: RKE2_FROM_UNIT=from the unit file"
	expect_out "not passed to rke2 (the unit does not see this shell's variables): "
	expect_out " RKE2_TOKEN "
	expect_out " RKE2_URL "
	expect_out "RKE2_TOKEN is set from the saved token $C/data/saved-token (not shown)"
	expect_not_out "saved-secret"
	expect_not_out "from-the-shell"
	ls "$C/state/prod-east/$PLAN/"*.cluster-reset.*.log >/dev/null 2>&1 || fail "no reset log"
	# exit 0 without the message: not confirmed
	rm -f "$(MARKER)"
	run STUB_RKE2_RESET_MSG=
	expect_rc 1
	expect_err "did not print \"restart without --cluster-reset flag now\""
	expect_err ".cluster-reset."
	# failure exit
	run STUB_RC_rke2=1
	expect_rc 1
	expect_err "the cluster-reset failed"
	# timeout
	run STUB_RKE2_SLEEP=5 REWIND_RESET_TIMEOUT=1
	[ "$RC" != 0 ] || fail "timeout not detected"
	expect_err "did not finish within 1 s"
	# a secret flag is refused
	setup reset-secret
	act "cluster_reset $C/bin/rke2 snap '' rke2-server $C/etc/rke2-server.env --etcd-s3 --etcd-s3-secret-key=s3cr3tKEY"
	build
	run
	expect_rc 1
	expect_err "internal error: --etcd-s3-secret-key"
	expect_not_out "s3cr3tKEY"
	expect_not_called "rke2 <server>"
	# rke2-server running: refused
	setup reset-running
	act "cluster_reset $C/bin/rke2 $C/data/snap '' rke2-server $C/etc/rke2-server.env"
	build
	run STUB_SYSTEMCTL_QUIET_RC=0
	expect_rc 1
	expect_err "rke2-server is running"
}

t_start_unit() {
	setup start
	act 'start_unit rke2-server'
	build
	run STUB_SYSTEMCTL_STATES='activating failed activating active' REWIND_POLL_INTERVAL=0
	expect_rc 0
	expect_called "systemctl <start> <--no-block> <rke2-server>"
	expect_out "ok: rke2-server is active"
	setup start-timeout
	act 'start_unit rke2-agent'
	build
	run STUB_SYSTEMCTL_STATES='activating' REWIND_START_TIMEOUT=2
	expect_rc 1
	expect_err "rke2-agent is not active after"
	expect_err "journalctl -u rke2-agent"
}

t_stop_left() {
	setup stop-left
	# RKE2's processes: executables under the data dir, with a child; and
	# a process that only looks like RKE2's (Docker's shim, another etcd).
	mkdir -p "$C/data/data/v1/bin" "$C/p"
	cp "$(command -v sleep)" "$C/data/data/v1/bin/containerd-shim-runc-v2"
	cp "$(command -v sleep)" "$C/p/etcd"
	cp "$(command -v sleep)" "$C/p/containerd-shim-runc-v2"
	"$C/data/data/v1/bin/containerd-shim-runc-v2" 60 &
	mine=$!
	"$C/p/etcd" 60 &
	other=$!
	"$C/p/containerd-shim-runc-v2" 60 &
	shim=$!
	BGPIDS="$BGPIDS $mine $other $shim"
	B_DESTRUCTIVE=0
	act "stop_rke2 $C/data rke2-server $C/bin/rke2"
	build
	run REWIND_STOP_TIMEOUT=5
	expect_rc 0
	expect_out "+ kill -KILL $mine"
	expect_out "ok: no process of RKE2 left"
	kill -0 "$other" 2>/dev/null || fail "a process outside the data dir (etcd) was killed"
	kill -0 "$shim" 2>/dev/null || fail "a containerd-shim outside the data dir was killed"
	wait "$mine" 2>/dev/null || true
	kill "$other" "$shim" 2>/dev/null || true
	wait "$other" "$shim" 2>/dev/null || true
	# a process that cannot be killed in time: a zombie-free survivor is
	# simulated by a disabled kill (the check reads /proc, not kill's status)
	setup stop-leftovers
	cp "$(command -v sleep)" "$C/rke2"
	"$C/rke2" 60 &
	pid=$!
	BGPIDS="$BGPIDS $pid"
	act "stop_leftovers $C/data $C/rke2"
	build
	run REWIND_STOP_TIMEOUT=5
	expect_rc 0
	expect_out "processes of RKE2 still run"
	expect_out "+ kill -KILL $pid"
	wait "$pid" 2>/dev/null || true
}

t_config() {
	setup config
	mkdir -p "$C/etc/config.yaml.d"
	printf 'K10abc::server:saved-secret\n' >"$C/data/saved-token"
	printf 'data-dir: "%s/data" # where it is\nserver: https://10.0.0.1:9345\ntoken: saved-secret\n' "$C" >"$C/etc/config.yaml"
	pre "check_data_dir $C/etc rke2-server $C/etc/rke2-server.env $C/data" \
		"check_server_entry $C/etc rke2-server $C/etc/rke2-server.env" \
		"check_token_source $C/etc rke2-server $C/etc/rke2-server.env $C/data/saved-token"
	build
	run
	expect_rc 0
	expect_out "ok: rke2-server uses the data dir $C/data (set in $C/etc/config.yaml:1 (data-dir:))"
	expect_out "ok: this server joins through https://10.0.0.1:9345 (set in $C/etc/config.yaml:2 (server:))"
	expect_out "ok: the token set in $C/etc/config.yaml:3 (token:) matches the saved token"
	expect_not_out "saved-secret"
	# a drop-in wins; quoted with an escaped quote
	printf "token: 'other''s secret'\n" >"$C/etc/config.yaml.d/50-token.yaml"
	run
	expect_rc 1
	expect_err "the token set in $C/etc/config.yaml.d/50-token.yaml:1 (token:) is not the saved token"
	expect_not_out "other's secret"
	rm "$C/etc/config.yaml.d/50-token.yaml"
	# the environment file: a token file wins over a token
	printf 'K10zz::server:saved-secret\n' >"$C/data/same-key"
	printf 'RKE2_TOKEN_FILE=%s/data/same-key\n' "$C" >"$C/etc/rke2-server.env"
	printf 'data-dir: %s/data\nserver: https://10.0.0.1:9345\n' "$C" >"$C/etc/config.yaml"
	run
	expect_rc 0
	expect_out "ok: the token file $C/data/same-key named in $C/etc/rke2-server.env:1 (RKE2_TOKEN_FILE=) matches"
	# no server: entry; another data dir
	printf 'data-dir: /elsewhere\n' >"$C/etc/config.yaml"
	run
	expect_rc 1
	expect_err "rke2-server runs with data dir /elsewhere (set in $C/etc/config.yaml:1 (data-dir:)), but the plan says $C/data"
	setup config-none
	mkdir -p "$C/etc"
	printf 'write-kubeconfig-mode: "0600"\n' >"$C/etc/config.yaml"
	pre "check_server_entry $C/etc rke2-server $C/etc/rke2-server.env"
	build
	run
	expect_rc 1
	expect_err "no server: entry in $C/etc/config.yaml or config.yaml.d"
	expect_err "split brain"
}

t_units() {
	setup units
	B_DESTRUCTIVE=0
	mkdir -p "$C/data/pm"
	touch "$C/data/pm/kube-proxy.yaml" "$C/data/pm/etcd.yaml"
	act "move_pod_manifests_aside $C/data/pm rewind-0123abcd" "enable_unit rke2-agent"
	build
	run STUB_SYSTEMCTL_ENABLED=disabled
	expect_rc 0
	expect_file "$C/data/pm.rewind-0123abcd/kube-proxy.yaml"
	expect_file "$C/data/pm.rewind-0123abcd/etcd.yaml"
	expect_called "systemctl <enable> <rke2-agent>"
	# recorded as not enabled before the rollback: left so
	mkdir -p "$C/state/prod-east/$PLAN"
	echo disabled >"$C/state/prod-east/$PLAN/rke2-agent.enabled"
	: >"$JOURNAL"
	run STUB_SYSTEMCTL_ENABLED=disabled
	expect_rc 0
	expect_out "rke2-agent was disabled before the rollback: left so"
	expect_not_called "systemctl <enable>"
}

t_versions() {
	setup versions
	pre "check_rke2_version $C/bin/rke2 v1.28.3+rke2r1 v1.27.10+rke2r1"
	build
	run
	expect_rc 0
	expect_out "already v1.27.10+rke2r1, the target"
	run STUB_RKE2_VERSION=v1.28.3+rke2r1 REWIND_FORCE=1
	expect_rc 0
	expect_out "is v1.28.3+rke2r1 (the version being rolled back)"
	run STUB_RKE2_VERSION=v1.29.0+rke2r1 REWIND_FORCE=1
	expect_rc 1
	expect_err "installed version is v1.29.0+rke2r1"
	setup installed
	pre "check_installed_version $C/bin/rke2 v1.27.10+rke2r1"
	build
	run STUB_RKE2_VERSION=v1.28.3+rke2r1
	expect_rc 1
	expect_err "installed version is v1.28.3+rke2r1, not the target v1.27.10+rke2r1"
	run
	expect_rc 0
	expect_out "ok: $C/bin/rke2 --version is v1.27.10+rke2r1"
}

t_server_entry() {
	setup server-entry
	mkdir -p "$C/etc/config.yaml.d"
	printf 'token-file: /x\n# server: https://commented\nnode-label:\n  - "server: no"\n' >"$C/etc/config.yaml"
	pre "check_no_server_entry $C/etc rke2-server $C/etc/rke2-server.env"
	build
	run
	expect_rc 0
	expect_out "ok: no server: entry"
	printf 'write-kubeconfig-mode: "0600"\nserver: https://10.0.0.1:9345\n' >"$C/etc/config.yaml.d/50-join.yaml"
	run
	expect_rc 1
	expect_err "$C/etc/config.yaml.d/50-join.yaml:2"
}

t_etcd_snapshot() {
	setup snapshot
	head -c 20480 /dev/urandom >"$C/data/body"
	# byte 100 is 'A' here and 'X' in bad.db: a random byte there would be
	# 'X' once in 256 runs, and bad.db would then be a good snapshot
	printf 'A' | dd of="$C/data/body" bs=1 seek=100 conv=notrunc 2>/dev/null
	# the snapshot: body + its binary sha256
	h=$(sha256sum <"$C/data/body" | cut -d' ' -f1)
	{
		cat "$C/data/body"
		while [ -n "$h" ]; do
			p=${h%"${h#??}"}
			h=${h#??}
			# shellcheck disable=SC2059
			printf "$(printf '\\%03o' "$((0x$p))")"
		done
	} >"$C/data/snap.db"
	cp "$C/data/snap.db" "$C/data/bad.db"
	printf 'X' | dd of="$C/data/bad.db" bs=1 seek=100 conv=notrunc 2>/dev/null
	printf 'tiny' >"$C/data/tiny.db"
	pre "check_etcd_snapshot $C/data/snap.db"
	build
	run
	expect_rc 0
	expect_out "sha256 trailer matches"
	setup snapshot-bad
	cp "$T/snapshot.$SHN/data/bad.db" "$C/data/bad.db"
	pre "check_etcd_snapshot $C/data/bad.db"
	build
	run
	expect_rc 1
	expect_err "trailer does not match"
	setup snapshot-tiny
	printf 'tiny' >"$C/data/tiny.db"
	pre "check_etcd_snapshot $C/data/tiny.db"
	build
	run
	expect_rc 1
	expect_err "too small"
	setup snapshot-zip
	if ! command -v zip >/dev/null 2>&1 || ! command -v unzip >/dev/null 2>&1; then
		skip "needs zip and unzip"
		return 0
	fi
	cp "$T/snapshot.$SHN/data/snap.db" "$C/data/on-demand-node1-1700000000"
	(cd "$C/data" && zip -q on-demand-node1-1700000000.zip on-demand-node1-1700000000)
	cp "$T/snapshot.$SHN/data/bad.db" "$C/data/bad-entry"
	(cd "$C/data" && zip -q bad.zip bad-entry && zip -q two.zip bad-entry on-demand-node1-1700000000)
	pre "check_etcd_snapshot $C/data/on-demand-node1-1700000000.zip"
	build
	run
	expect_rc 0
	expect_out "trailer matches"
	: >"$C/pre"
	pre "check_etcd_snapshot $C/data/bad.zip"
	build
	run
	expect_rc 1
	expect_err "trailer does not match"
	: >"$C/pre"
	pre "check_etcd_snapshot $C/data/two.zip"
	build
	run
	expect_rc 1
	expect_err "more than one file"
	ls "$C/data" | grep -q rewind && fail "files left beside the zip: $(ls "$C/data")"
	return 0
}

t_sha_room() {
	setup sha-room
	printf 'hello\n' >"$C/data/f"
	h=$(sha256sum <"$C/data/f" | cut -d' ' -f1)
	H=$(printf '%s' "$h" | tr a-f A-F)
	pre "check_sha256 $C/data/f $H" "check_room $C/data/f $C/data/not/yet" 'need_env HOME PATH' "need_dir $C/data"
	build
	run
	expect_rc 0
	expect_out "ok: sha256 of $C/data/f matches"
	expect_out "ok: room for"
	: >"$C/pre"
	pre "check_sha256 $C/data/f 0000000000000000000000000000000000000000000000000000000000000000"
	build
	run
	expect_rc 1
	expect_err "sha256 mismatch for $C/data/f"
	: >"$C/pre"
	pre 'need_env REWIND_T_SECRET REWIND_T_UNSET'
	build
	run REWIND_T_SECRET=hunter2
	expect_rc 1
	expect_err "environment variables not set: REWIND_T_UNSET"
	expect_not_out hunter2
}

t_token() {
	setup token
	printf 'K10abc::server:s3cr3t\n' >"$C/data/saved"
	h=$(sha256sum <"$C/data/saved" | cut -d' ' -f1)
	mkdir -p "$C/data/server"
	printf 'K10other::server:0ther\n' >"$C/data/server/token"
	pre "check_token $C/data/saved $h"
	act "put_token $C/data/saved $C/data/server/token rewind-0123abcd"
	build
	run
	expect_rc 0
	cmp -s "$C/data/saved" "$C/data/server/token" || fail "token not put in place"
	grep -q 0ther "$C/data/server/token.rewind-0123abcd" || fail "old token not moved aside"
	[ "$(ls -l "$C/data/server/token" | cut -c1-10)" = "-rw-------" ] || fail "token mode: $(ls -l "$C/data/server/token")"
	expect_not_out s3cr3t
	expect_not_out 0ther
	run REWIND_FORCE=1
	expect_rc 0
	expect_out "already holds the saved token"
	: >"$C/pre"
	pre "check_token $C/data/saved 1111111111111111111111111111111111111111111111111111111111111111"
	: >"$C/act"
	build
	run REWIND_FORCE=1
	expect_rc 1
	expect_err "does not match the sha256 in the plan"
	expect_not_out s3cr3t
}

t_artifacts() {
	setup artifacts
	A=$C/art
	mkdir -p "$A"
	echo '#!/bin/sh' >"$A/install.sh"
	echo tar >"$A/rke2.linux-amd64.tar.gz"
	echo img >"$A/rke2-images.linux-amd64.tar.zst"
	(cd "$A" && sha256sum rke2.linux-amd64.tar.gz rke2-images.linux-amd64.tar.zst >sha256sum-amd64.txt &&
		echo "0000000000000000000000000000000000000000000000000000000000000000  rke2.linux-arm64.tar.gz" >>sha256sum-amd64.txt)
	pre "check_artifacts $A amd64"
	echo cilium >"$A/rke2-images-cilium.linux-amd64.tar.zst"
	(cd "$A" && sha256sum rke2-images-cilium.linux-amd64.tar.zst >>sha256sum-amd64.txt &&
		echo "1111111111111111111111111111111111111111111111111111111111111111  rke2-images-calico.linux-amd64.tar.zst" >>sha256sum-amd64.txt)
	act "move_images_aside $C/data/images rewind-0123abcd" "install_airgap $A amd64 agent $C/data/images" \
		"install_images $A amd64 $C/data/images"
	mkdir -p "$C/data/images"
	echo new >"$C/data/images/rke2-images.linux-amd64.tar.zst"
	echo '{}' >"$C/data/images/.cache.json"
	build
	run
	expect_rc 0
	expect_out "ok: air-gap artifacts in $A: 3 files match"
	expect_file "$C/data/images.rewind-0123abcd/rke2-images.linux-amd64.tar.zst"
	expect_file "$C/data/images.rewind-0123abcd/.cache.json"
	expect_out "+ env INSTALL_RKE2_ARTIFACT_PATH=$A INSTALL_RKE2_TYPE=agent INSTALL_RKE2_AGENT_IMAGES_DIR=$C/data/images sh $A/install.sh"
	# the install.sh stub installs nothing: rewind copies every listed archive
	cmp -s "$A/rke2-images-cilium.linux-amd64.tar.zst" "$C/data/images/rke2-images-cilium.linux-amd64.tar.zst" ||
		fail "the Cilium archive was not installed"
	cmp -s "$A/rke2-images.linux-amd64.tar.zst" "$C/data/images/rke2-images.linux-amd64.tar.zst" ||
		fail "the main archive was not installed"
	expect_out "rke2-images-calico.linux-amd64.tar.zst is listed in sha256sum-amd64.txt but was not copied"
	expect_out "ok: 2 image archive(s) of the target in $C/data/images"
	# check_images: a damaged installed archive is found
	setup images-check
	A=$C/art
	mkdir -p "$A" "$C/data/images"
	echo cilium >"$A/rke2-images-cilium.linux-amd64.tar.zst"
	(cd "$A" && sha256sum rke2-images-cilium.linux-amd64.tar.zst >sha256sum-amd64.txt)
	echo damaged >"$C/data/images/rke2-images-cilium.linux-amd64.tar.zst"
	pre "check_images $A amd64 $C/data/images"
	build
	run
	expect_rc 1
	expect_err "missing from $C/data/images or not matching sha256sum-amd64.txt: rke2-images-cilium.linux-amd64.tar.zst"
	cp "$A/rke2-images-cilium.linux-amd64.tar.zst" "$C/data/images/"
	run
	expect_rc 0
	expect_out "ok: 1 image archive(s) of the target in $C/data/images match"
	setup artifacts-again
	A=$C/art
	mkdir -p "$A"
	echo '#!/bin/sh' >"$A/install.sh"
	echo tar >"$A/rke2.linux-amd64.tar.gz"
	echo img >"$A/rke2-images.linux-amd64.tar.zst"
	(cd "$A" && sha256sum rke2.linux-amd64.tar.gz rke2-images.linux-amd64.tar.zst >sha256sum-amd64.txt)
	pre "check_artifacts $A amd64"
	build
	# unlisted image archive: refused
	echo calico >"$A/rke2-images-calico.linux-amd64.tar.zst"
	run REWIND_FORCE=1
	expect_rc 1
	expect_err "not listed in $A/sha256sum-amd64.txt: rke2-images-calico.linux-amd64.tar.zst"
	rm "$A/rke2-images-calico.linux-amd64.tar.zst"
	# damaged tarball
	echo damaged >"$A/rke2.linux-amd64.tar.gz"
	run REWIND_FORCE=1
	expect_rc 1
	expect_err "sha256 mismatch in $A for: rke2.linux-amd64.tar.gz"
}

t_install_online() {
	setup online
	printf '#!/bin/sh\necho "installer ran: $INSTALL_RKE2_VERSION $INSTALL_RKE2_TYPE $INSTALL_RKE2_METHOD"\n' >"$C/get.sh"
	act 'install_online v1.27.10+rke2r1 server tar' "move_manifests_aside $C/data/manifests $C/data rewind-0123abcd"
	mkdir -p "$C/data/manifests" "$C/data/data/v1.28.3-rke2r1-0123/charts"
	printf 'kind: HelmChart\n' >"$C/data/data/v1.28.3-rke2r1-0123/charts/rke2-canal.yaml"
	printf 'kind: HelmChart\n' >"$C/data/data/v1.28.3-rke2r1-0123/charts/rke2-traefik.yaml"
	printf 'kind: HelmChart\n' >"$C/data/manifests/rke2-canal.yaml"
	printf 'kind: HelmChart\n' >"$C/data/manifests/rke2-traefik.yaml"
	printf 'kind: HelmChartConfig\n' >"$C/data/manifests/rke2-canal-config.yaml"
	echo b >"$C/data/manifests/mine.yaml"
	build
	# the curl stub fails: the failure names the URL
	run STUB_RC_curl=6 REWIND_INSTALL_SCRIPT_URL="file://$C/get.sh"
	expect_rc 6
	expect_err "command: curl -sSfL --retry 3 -o"
	# real curl with a file:// URL
	rm "$C/bin/curl"
	run REWIND_INSTALL_SCRIPT_URL="file://$C/get.sh" INSTALL_RKE2_CHANNEL=stable
	expect_rc 0
	expect_out "installer ran: v1.27.10+rke2r1 server tar"
	expect_err "INSTALL_RKE2_CHANNEL"
	expect_file "$C/data/manifests.rewind-0123abcd/rke2-canal.yaml"
	expect_file "$C/data/manifests.rewind-0123abcd/rke2-traefik.yaml"
	expect_file "$C/data/manifests/mine.yaml"
	expect_file "$C/data/manifests/rke2-canal-config.yaml"
	# no charts folder: RKE2's are the rke2-*.yaml of kind HelmChart
	setup manifests-fallback
	mkdir -p "$C/data/manifests"
	printf 'apiVersion: helm.cattle.io/v1\nkind: HelmChart\n' >"$C/data/manifests/rke2-coredns.yaml"
	printf 'kind: HelmChartConfig\n' >"$C/data/manifests/rke2-cilium-config.yaml"
	act "move_manifests_aside $C/data/manifests $C/data rewind-0123abcd"
	build
	run REWIND_YES=1
	expect_rc 0
	expect_file "$C/data/manifests.rewind-0123abcd/rke2-coredns.yaml"
	expect_file "$C/data/manifests/rke2-cilium-config.yaml"
}

# rpm_stubs: rpm, dnf and zypper stand-ins in $C/bin. rpm prints $C/rpm.out
# and exits with $C/rpm.rc; `dnf list` / `zypper search` print
# $C/list.<name> (none: no match); a downgrade or install copies
# $C/rpm.after over $C/rpm.out (and .rc) and exits STUB_RC_<tool>.
rpm_stubs() {
	_h='#!/bin/sh
{ printf "%s" "${0##*/}"; for a in "$@"; do printf " <%s>" "$a"; done; printf "\n"; } >>"$JOURNAL"
'
	printf '%scat "%s/rpm.out"\nexit "$(cat "%s/rpm.rc")"\n' "$_h" "$C" "$C" >"$C/bin/rpm"
	for _t in dnf yum zypper; do
		printf '%s%s\n' "$_h" 'C='"$C"'
for a in "$@"; do last=$a; done
case " $* " in
*" list "* | *" search "*)
	if [ -f "$C/list.$last" ]; then cat "$C/list.$last"; exit 0; fi
	if [ "${0##*/}" = zypper ]; then echo "No matching items found."; exit 104; fi
	echo "Error: No matching Packages to list" >&2; exit 1 ;;
esac
if [ -f "$C/rpm.after" ]; then cp "$C/rpm.after" "$C/rpm.out"; cp "$C/rpm.rc.after" "$C/rpm.rc"; fi
eval "exit \${STUB_RC_${0##*/}:-0}"' >"$C/bin/$_t"
	done
	chmod 755 "$C/bin/rpm" "$C/bin/dnf" "$C/bin/yum" "$C/bin/zypper"
}

t_rpm() {
	V=1.29.3~rke2r1
	# step 1 on an EL 8 server: installed at the current version, the target
	# in the repository (a long name wrapped on two lines, an epoch)
	setup rpm-check
	B_STEP=01-preflight
	rpm_stubs
	rm "$C/bin/zypper" "$C/bin/yum"
	printf 'rke2-server 1.29.4~rke2r1-0.el8\npackage rke2-agent is not installed\nrke2-common 1.29.4~rke2r1-0.el8\nrke2-selinux 0.18-1.el8\n' >"$C/rpm.out"
	echo 1 >"$C/rpm.rc"
	printf 'Available Packages\nrke2-server.x86_64     1.29.3~rke2r1-0.el8     rancher-rke2-1.29-stable\nrke2-server.x86_64     1.29.4~rke2r1-0.el8     rancher-rke2-1.29-stable\n' >"$C/list.rke2-server"
	printf 'Available Packages\nrke2-common.x86_64\n                 0:1.29.3~rke2r1-0.el8     rancher-rke2-1.29-stable\n' >"$C/list.rke2-common"
	pre "check_rpm_target server $V"
	build
	run
	expect_rc 0
	expect_out "installed: rke2-server 1.29.4~rke2r1-0.el8, rke2-common 1.29.4~rke2r1-0.el8, rke2-selinux 0.18-1.el8"
	expect_out "ok: available from the configured repositories (dnf): rke2-server-$V-0.el8 (rancher-rke2-1.29-stable), rke2-common-$V-0.el8 (rancher-rke2-1.29-stable)"
	expect_called "rpm <-q> <--qf> <%{NAME} %{VERSION}-%{RELEASE}\n> <rke2-server> <rke2-agent> <rke2-common> <rke2-selinux>"
	expect_called "dnf <-q> <list> <--showduplicates> <--available> <rke2-common>"
	# the target missing from the repositories: refused, nothing changed
	rm "$C/list.rke2-common"
	run
	expect_rc 1
	expect_err "not available from the repositories configured here (dnf): rke2-common-$V"
	expect_err "dnf makecache"
	expect_err "changed: nothing"
	# rke2-common not installed: not an RPM install
	printf 'rke2-server 1.29.4~rke2r1-0.el8\npackage rke2-agent is not installed\npackage rke2-common is not installed\nrke2-selinux 0.18-1.el8\n' >"$C/rpm.out"
	echo 2 >"$C/rpm.rc"
	run
	expect_rc 1
	expect_err "rke2-common is not installed (rpm -q)"
	expect_err "set install-method in the plan"
	# two versions of a package (an interrupted transaction)
	printf 'rke2-server 1.29.4~rke2r1-0.el8\nrke2-server 1.29.3~rke2r1-0.el8\npackage rke2-agent is not installed\nrke2-common 1.29.4~rke2r1-0.el8\nrke2-selinux 0.18-1.el8\n' >"$C/rpm.out"
	echo 1 >"$C/rpm.rc"
	run
	expect_rc 1
	expect_err "two versions of rke2-server are installed: 1.29.4~rke2r1-0.el8 and 1.29.3~rke2r1-0.el8"
	# rpm itself failing: its command and exit code
	echo 'error: rpmdb open failed' >"$C/rpm.out"
	echo 7 >"$C/rpm.rc"
	run
	expect_rc 7
	expect_err "could not ask rpm which rke2 packages are installed"
	# already at the target
	printf 'rke2-server %s-0.el8\npackage rke2-agent is not installed\nrke2-common %s-0.el8\npackage rke2-selinux is not installed\n' "$V" "$V" >"$C/rpm.out"
	echo 2 >"$C/rpm.rc"
	: >"$JOURNAL"
	run
	expect_rc 0
	expect_out "ok: the rke2 packages are already at $V"
	expect_not_called "dnf"

	# the install step on a SUSE agent: zypper with --oldpackage, one
	# transaction, NAME=VERSION-RELEASE; then rpm -q
	setup rpm-zypper
	B_STEP=04-install
	B_DESTRUCTIVE=1
	rpm_stubs
	rm "$C/bin/dnf" "$C/bin/yum"
	printf 'package rke2-server is not installed\nrke2-agent 1.29.4~rke2r1-0.sle\nrke2-common 1.29.4~rke2r1-0.sle\nrke2-selinux 0.18-1.sle\n' >"$C/rpm.out"
	echo 1 >"$C/rpm.rc"
	printf 'package rke2-server is not installed\nrke2-agent %s-0.sle\nrke2-common %s-0.sle\nrke2-selinux 0.18-1.sle\n' "$V" "$V" >"$C/rpm.after"
	echo 1 >"$C/rpm.rc.after"
	for p in rke2-agent rke2-common; do
		printf 'Loading repository data...\nReading installed packages...\n\nS  | Name | Type | Version | Arch | Repository\n---+------+------+---------+------+-----------\ni+ | %s | package | 1.29.4~rke2r1-0.sle | x86_64 | Rancher RKE2 1.29 (stable)\nv  | %s | package | %s-0.sle | x86_64 | Rancher RKE2 1.29 (stable)\n' "$p" "$p" "$V" >"$C/list.$p"
	done
	act "install_rpm agent $V" "check_rpm_versions agent $V"
	build
	run REWIND_DRY_RUN=1
	expect_rc 0
	expect_out "[dry-run] would run: zypper --non-interactive install --oldpackage 'rke2-agent=$V-0.sle' 'rke2-common=$V-0.sle'"
	expect_out "[dry-run] would check with rpm -q that rke2-agent rke2-common are at $V"
	expect_not_called "zypper <--non-interactive> <install>"
	run REWIND_YES=1
	expect_rc 0
	expect_called "zypper <--non-interactive> <install> <--oldpackage> <rke2-agent=$V-0.sle> <rke2-common=$V-0.sle>"
	expect_out "ok: rpm -q: rke2-agent $V-0.sle, rke2-common $V-0.sle, rke2-selinux 0.18-1.sle"
	# the package manager says it is done but nothing changed: refused
	printf 'package rke2-server is not installed\nrke2-agent 1.29.4~rke2r1-0.sle\nrke2-common 1.29.4~rke2r1-0.sle\nrke2-selinux 0.18-1.sle\n' >"$C/rpm.out"
	cp "$C/rpm.out" "$C/rpm.after"
	run REWIND_YES=1
	expect_rc 1
	expect_err "rpm -q: not every rke2 package is at $V"
	# the package manager failing: its command and exit code
	run REWIND_YES=1 STUB_RC_zypper=8
	expect_rc 8
	expect_err "command: zypper --non-interactive install --oldpackage"

	# EL 7: yum downgrade
	setup rpm-yum
	B_STEP=04-install
	B_DESTRUCTIVE=1
	rpm_stubs
	rm "$C/bin/dnf" "$C/bin/zypper"
	printf 'rke2-server 1.29.4~rke2r1-0.el7\nrke2-agent 1.29.4~rke2r1-0.el7\nrke2-common 1.29.4~rke2r1-0.el7\nrke2-selinux 0.18-1.el7\n' >"$C/rpm.out"
	echo 0 >"$C/rpm.rc"
	for p in rke2-server rke2-agent rke2-common; do
		printf 'Available Packages\n%s.x86_64   %s-0.el7   rancher-rke2-1.29-stable\n' "$p" "$V" >"$C/list.$p"
	done
	act "install_rpm server $V"
	build
	run REWIND_YES=1
	expect_rc 0
	expect_called "yum <downgrade> <-y> <rke2-server-$V-0.el7> <rke2-agent-$V-0.el7> <rke2-common-$V-0.el7>"
}

t_kube() {
	setup drain
	B_HOST=workstation
	B_NEEDS_ROOT=0
	B_STEP=02-drain
	act 'drain_nodes "" 120s agent1 server1 gone1'
	build
	run STUB_KUBE_API_RC=1
	expect_rc 0
	expect_out "API not reachable; skipping drain (the stop step kills workloads)"
	expect_not_called "kubectl <drain>"
	run REWIND_FORCE=1
	expect_rc 0
	expect_called "kubectl <drain> <--ignore-daemonsets> <--delete-emptydir-data> <--timeout=120s> <agent1>"
	expect_called "kubectl <drain> <--ignore-daemonsets> <--delete-emptydir-data> <--timeout=120s> <server1>"
	d=$C/state/prod-east/$PLAN/drained
	[ "$(cat "$d" 2>/dev/null | tr '\n' ' ')" = "agent1 server1 gone1 " ] || fail "drained file: $(cat "$d" 2>/dev/null)"
	# verify in the same state folder
	printf 'agent1|True|v1.27.10+rke2r1\nserver1|True|v1.27.10+rke2r1\nold9|False|v1.28.3+rke2r1\n' >"$C/nodes"
	printf 'agent1.node-password.rke2\nold9.node-password.rke2\nother\n' >"$C/secrets"
	: >"$C/act"
	B_STEP=09-verify
	act 'verify_cluster "" v1.27.10+rke2r1 agent1 server1'
	build
	run STUB_KUBE_NODES="$C/nodes" STUB_KUBE_SECRETS="$C/secrets"
	expect_rc 0
	expect_out "ok: 2 nodes Ready at v1.27.10+rke2r1"
	expect_called "kubectl <uncordon> <agent1>"
	expect_called "kubectl <uncordon> <server1>"
	expect_out "node objects not in the plan (restored from the snapshot?): old9"
	expect_out "old9.node-password.rke2"
	expect_not_out "agent1.node-password.rke2"
	# not ready in time
	printf 'agent1|True|v1.28.3+rke2r1\nserver1|Unknown|v1.27.10+rke2r1\n' >"$C/nodes"
	run STUB_KUBE_NODES="$C/nodes" REWIND_VERIFY_TIMEOUT=1 REWIND_FORCE=1
	expect_rc 1
	expect_err "not Ready at v1.27.10+rke2r1 after"
	expect_err "agent1 server1"
	# a node cordoned before the drain is not recorded
	setup drain-cordoned
	B_HOST=workstation
	B_NEEDS_ROOT=0
	act "drain_nodes $C/kubeconfig 60s n1"
	echo kc >"$C/kubeconfig"
	build
	run STUB_KUBE_UNSCHED=true
	expect_rc 0
	expect_called "kubectl <--kubeconfig=$C/kubeconfig> <drain> <--ignore-daemonsets> <--delete-emptydir-data> <--timeout=60s> <n1>"
	expect_out "was cordoned before this step"
	expect_no_file "$C/state/prod-east/$PLAN/drained"
}

# suc_kubectl: a kubectl stub for the automatic-upgrade functions, answering
# from $C/k8s: suc (NAMESPACE|NAME|REPLICAS|RUNNING lines), crd (present:
# the CRD exists), plans (NAMESPACE|NAME|VERSION|CHANNEL lines), rancher
# (present: cattle-system/cattle-cluster-agent exists). STUB_RC_kubectl_get
# fails every get, STUB_RC_kubectl_scale every scale.
suc_kubectl() {
	mkdir -p "$C/k8s"
	: >"$C/k8s/suc"
	: >"$C/k8s/plans"
	cat >"$C/bin/kubectl" <<'KUBECTL'
#!/bin/sh
{ printf "%s" "${0##*/}"; for a in "$@"; do printf " <%s>" "$a"; done; printf "\n"; } >>"$JOURNAL"
K=${0%/bin/kubectl}/k8s
case " $* " in
*" scale "*) exit "${STUB_RC_kubectl_scale:-0}" ;;
esac
if [ -n "${STUB_RC_kubectl_get:-}" ]; then
	echo "The connection to the server was refused" >&2
	exit "$STUB_RC_kubectl_get"
fi
case " $* " in
*" deployments "*) cat "$K/suc" ;;
*" crd "*)
	if [ ! -f "$K/crd" ]; then
		echo 'Error from server (NotFound): customresourcedefinitions.apiextensions.k8s.io "plans.upgrade.cattle.io" not found' >&2
		exit 1
	fi
	echo customresourcedefinition.apiextensions.k8s.io/plans.upgrade.cattle.io
	;;
*" plans.upgrade.cattle.io "*) cat "$K/plans" ;;
*" cattle-cluster-agent "*)
	if [ ! -f "$K/rancher" ]; then
		echo 'Error from server (NotFound): deployments.apps "cattle-cluster-agent" not found' >&2
		exit 1
	fi
	echo deployment.apps/cattle-cluster-agent
	;;
esac
exit 0
KUBECTL
	chmod 755 "$C/bin/kubectl"
}

t_suc() {
	setup suc-none
	B_HOST=workstation
	B_NEEDS_ROOT=0
	B_STEP=07-suspend-upgrades
	suc_kubectl
	act 'suspend_upgrades "" v1.28.9+rke2r1 false'
	build
	run
	expect_rc 0
	expect_out "no system-upgrade-controller deployment in any namespace"
	expect_out "ok: the CRD plans.upgrade.cattle.io does not exist"
	expect_not_called "<scale>"
	expect_no_file "$C/state/prod-east/$PLAN/suc-scaled"
	# the API does not answer: the step stops with the command
	run STUB_RC_kubectl_get=7
	expect_rc 7
	expect_err "could not list the system-upgrade-controller deployments"
	expect_err "kubectl get deployments --all-namespaces --field-selector=metadata.name=system-upgrade-controller"
	expect_err "do not start the other servers"

	setup suc
	B_HOST=workstation
	B_NEEDS_ROOT=0
	B_STEP=07-suspend-upgrades
	suc_kubectl
	printf 'system-upgrade|system-upgrade-controller|1|1\ncattle-system|system-upgrade-controller|0|\n' >"$C/k8s/suc"
	: >"$C/k8s/crd"
	: >"$C/k8s/rancher"
	printf '%s\n' 'system-upgrade|rke2-server|v1.29.4+rke2r1|' \
		'system-upgrade|rke2-agent||https://update.rke2.io/v1-release/channels/stable' \
		'system-upgrade|pinned|v1.28.9-rke2r1|' 'cattle-system|system-agent-upgrader|v0.3.6|' >"$C/k8s/plans"
	echo kc >"$C/kubeconfig"
	act "suspend_upgrades $C/kubeconfig v1.28.9+rke2r1 false"
	build
	# a dry run scales nothing and records nothing
	run REWIND_DRY_RUN=1
	expect_rc 0
	expect_out "[dry-run] would run: kubectl --kubeconfig=$C/kubeconfig -n system-upgrade scale deployment system-upgrade-controller --replicas=0"
	expect_not_called "<scale>"
	expect_no_file "$C/state/prod-east/$PLAN/suc-scaled"
	run
	expect_rc 0
	expect_called "kubectl <--kubeconfig=$C/kubeconfig> <-n> <system-upgrade> <scale> <deployment> <system-upgrade-controller> <--replicas=0>"
	expect_not_called "<cattle-system> <scale>"
	expect_out "cattle-system/system-upgrade-controller had 0 replicas before this step: left as it is, not recorded"
	[ "$(cat "$C/state/prod-east/$PLAN/suc-scaled" 2>/dev/null)" = "system-upgrade system-upgrade-controller 1" ] ||
		fail "suc-scaled: $(cat "$C/state/prod-east/$PLAN/suc-scaled" 2>/dev/null)"
	expect_out "ok: system-upgrade-controller stopped: 1 deployment(s) scaled to 0"
	expect_err "Plan system-upgrade/rke2-server: version v1.29.4+rke2r1, not the rollback target v1.28.9+rke2r1"
	expect_err "Plan system-upgrade/rke2-agent: channel https://update.rke2.io/v1-release/channels/stable, not the rollback target"
	expect_out "delete it: kubectl --kubeconfig=$C/kubeconfig -n system-upgrade delete plans.upgrade.cattle.io rke2-server"
	expect_out "Plan system-upgrade/pinned: version v1.28.9-rke2r1"
	expect_out "Plan cattle-system/system-agent-upgrader: version v0.3.6"
	expect_not_out "system-agent-upgrader: version v0.3.6, not"
	expect_err "Rancher manages this cluster (cattle-system/cattle-cluster-agent), and the plan does not say so"
	# run again (after a failure, say): recorded once, with the replicas it had
	printf 'system-upgrade|system-upgrade-controller|0|\n' >"$C/k8s/suc"
	: >"$JOURNAL"
	run
	expect_rc 0
	expect_out "system-upgrade/system-upgrade-controller is scaled to 0 already (by this step; it had 1)"
	expect_not_called "<scale>"
	[ "$(wc -l <"$C/state/prod-east/$PLAN/suc-scaled")" -eq 1 ] || fail "recorded twice"
	# the API refuses the scale: the step stops with the commands to run by hand
	printf 'system-upgrade|system-upgrade-controller|2|2\n' >"$C/k8s/suc"
	run STUB_RC_kubectl_scale=5
	expect_rc 5
	expect_err "command: kubectl --kubeconfig=$C/kubeconfig -n system-upgrade scale deployment system-upgrade-controller --replicas=0"
	expect_err "stop the controller by hand with a cluster-admin kubeconfig"

	# verify: the controller scaled to 0 by the step, stale Plans listed
	: >"$C/act"
	B_STEP=10-verify
	act "check_upgrades $C/kubeconfig v1.28.9+rke2r1"
	printf 'system-upgrade|system-upgrade-controller|0|\ncattle-system|system-upgrade-controller|0|\n' >"$C/k8s/suc"
	build
	run
	expect_rc 0
	expect_out "once the Plans are right, scale it back: kubectl --kubeconfig=$C/kubeconfig -n system-upgrade scale deployment system-upgrade-controller --replicas=1"
	expect_out "cattle-system/system-upgrade-controller has 0 replicas"
	expect_err "Plan system-upgrade/rke2-server targets version v1.29.4+rke2r1, not v1.28.9+rke2r1"
	expect_out "ok: no system-upgrade-controller replica runs; fix the Plans listed above"
	# running again with stale Plans: fails, saying how to stop it
	printf 'system-upgrade|system-upgrade-controller|1|1\n' >"$C/k8s/suc"
	run
	expect_rc 1
	expect_err "system-upgrade-controller runs: system-upgrade/system-upgrade-controller(1 replicas, 1 running), and Plans target another version than v1.28.9+rke2r1: system-upgrade/rke2-server system-upgrade/rke2-agent"
	expect_err "kubectl --kubeconfig=$C/kubeconfig -n system-upgrade scale deployment system-upgrade-controller --replicas=0"
	# running with every Plan at the target: fine
	printf 'system-upgrade|rke2-server|v1.28.9+rke2r1|\n' >"$C/k8s/plans"
	run
	expect_rc 0
	expect_out "ok: system-upgrade-controller runs: system-upgrade/system-upgrade-controller(1 replicas, 1 running); no Plan targets another RKE2 version"

	# the node check for Rancher's system agent
	setup rancher-agent
	mkdir -p "$C/etc/rancher/agent"
	act ':'
	pre "check_rancher_agent false v1.28.9+rke2r1 $C/etc/rancher-system-agent.service $C/etc/rancher/agent"
	build
	run
	expect_rc 1
	expect_err "this node is managed by Rancher (found $C/etc/rancher/agent)"
	expect_err "rancher-managed = true"
	expect_err "set this cluster's Kubernetes version to v1.28.9+rke2r1"
	expect_err "changed: nothing"
	: >"$C/pre"
	pre "check_rancher_agent true v1.28.9+rke2r1 $C/etc/rancher-system-agent.service $C/etc/rancher/agent"
	build
	run
	expect_rc 0
	expect_out "ok: managed by Rancher (found $C/etc/rancher/agent)"
	: >"$C/pre"
	pre "check_rancher_agent false v1.28.9+rke2r1 $C/etc/none.service $C/etc/none"
	build
	run
	expect_rc 0
	expect_not_out "Rancher"
}

t_sqlite() {
	setup sqlite
	if ! command -v sqlite3 >/dev/null 2>&1; then
		skip "needs sqlite3"
		return 0
	fi
	db=$C/data/server/db/state.db
	mkdir -p "$C/data/server/db" "$C/bk"
	sqlite3 "$C/bk/backup.db" 'CREATE TABLE kine(id integer primary key, name text); INSERT INTO kine(name) VALUES ("a"),("b"),("c");'
	sqlite3 "$db" 'PRAGMA journal_mode=WAL; CREATE TABLE kine(id integer primary key, name text); INSERT INTO kine(name) VALUES ("newer");' >/dev/null
	echo wal >"$db-wal"
	echo shm >"$db-shm"
	B_DESTRUCTIVE=1
	pre "check_sqlite_db $C/bk/backup.db" "check_room $C/bk/backup.db $C/data/server/db"
	act "restore_sqlite $C/bk/backup.db $db rewind-0123abcd"
	build
	run REWIND_YES=1
	expect_rc 0
	expect_out "ok: integrity_check: ok"
	expect_out "ok: state.db restored; kine has 3 rows"
	cmp -s "$C/bk/backup.db" "$db" || fail "state.db is not the backup"
	expect_file "$db.rewind-0123abcd"
	expect_file "$db-wal.rewind-0123abcd"
	expect_file "$db-shm.rewind-0123abcd"
	expect_no_file "$db-wal"
	expect_no_file "$C/bk/backup.db-shm"
	run REWIND_YES=1 REWIND_FORCE=1
	expect_rc 0
	expect_out "already a copy of"
	# a damaged backup is refused in preflight
	setup sqlite-bad
	mkdir -p "$C/bk"
	head -c 8192 /dev/urandom >"$C/bk/backup.db"
	pre "check_sqlite_db $C/bk/backup.db"
	build
	run
	expect_rc 1
	expect_err "fails PRAGMA integrity_check"
}

t_workstation_dirs() {
	setup ws-dirs
	if [ "$NS" != 1 ] || ! command -v setpriv >/dev/null 2>&1; then
		skip "needs the private mount namespace and setpriv"
		return 0
	fi
	B_HOST=workstation
	B_NEEDS_ROOT=0
	B_STEP=09-verify
	build
	mkdir -p "$C/home"
	chown 65534 "$C/home"
	RC=0
	(cd "$C" && env -u REWIND_LOG_DIR -u REWIND_STATE_DIR PATH="$C/bin:$PATH" HOME="$C/home" JOURNAL=/dev/null \
		setpriv --reuid=65534 --regid=65534 --clear-groups $SH "$C/s.sh" </dev/null >"$C/out" 2>"$C/err") || RC=$?
	cat "$C/out" "$C/err" >"$C/all"
	expect_rc 0
	expect_out "journal and state go to $C/home/.local/state/rewind"
	expect_file "$C/home/.local/state/rewind/log/prod-east.log"
	expect_file "$C/home/.local/state/rewind/state/prod-east/$PLAN/09-verify.done"
	# a root node script uses /var/log/rewind and /var/lib/rewind (tmpfs here)
	setup default-dirs
	build
	RC=0
	(cd "$C" && env -u REWIND_LOG_DIR -u REWIND_STATE_DIR PATH="$C/bin:$PATH" REWIND_HOST=node1 JOURNAL=/dev/null \
		$SH "$C/s.sh" </dev/null >"$C/out" 2>"$C/err") || RC=$?
	cat "$C/out" "$C/err" >"$C/all"
	expect_rc 0
	expect_file /var/log/rewind/prod-east.log
	expect_file "/var/lib/rewind/prod-east/$PLAN/05-restore.done"
	rm -rf /var/log/rewind /var/lib/rewind
}

# ---- real databases (started once, shared by all shells) ---------------------------
PGBIN=
for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && PGBIN=$d; done
PGDIR=
MYDIR=
start_postgres() {
	[ -n "$PGBIN" ] && [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1 || return 1
	PGDIR=$T/pg
	mkdir -p "$PGDIR"
	chown postgres "$PGDIR"
	runuser -u postgres -- "$PGBIN/initdb" -D "$PGDIR/data" -U postgres -A trust -E UTF8 --no-sync >/dev/null 2>&1 || return 1
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w -t 30 \
		-o "-k $PGDIR -p 5432 -c listen_addresses='' -c fsync=off" start >/dev/null 2>&1 || return 1
	BGPIDS="$BGPIDS $(head -n 1 "$PGDIR/data/postmaster.pid")"
	P="$PGBIN/psql -h $PGDIR -p 5432 -U postgres -X -q -v ON_ERROR_STOP=1"
	$P -d postgres -c 'CREATE DATABASE rancher' &&
		$P -d rancher -c "CREATE TABLE kine(id bigserial PRIMARY KEY, name text);
		INSERT INTO kine(name) SELECT 'k'||g FROM generate_series(1,100) g;" &&
		"$PGBIN/pg_dump" -h "$PGDIR" -p 5432 -U postgres -Fc -f "$PGDIR/rancher.dump" rancher
}
start_mariadb() {
	command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || return 1
	[ "$(id -u)" = 0 ] && id mysql >/dev/null 2>&1 || return 1
	MYDIR=$T/my
	mkdir -p "$MYDIR"
	chown mysql "$MYDIR"
	mariadb-install-db --no-defaults --user=mysql --datadir="$MYDIR/data" --auth-root-authentication-method=normal \
		--skip-test-db >/dev/null 2>&1 || return 1
	/usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$MYDIR/data" --socket="$MYDIR/sock" \
		--pid-file="$MYDIR/pid" --log-error="$MYDIR/err" --skip-networking >/dev/null 2>&1 &
	BGPIDS="$BGPIDS $!"
	i=0
	until mariadb-admin --no-defaults --socket="$MYDIR/sock" -uroot ping >/dev/null 2>&1; do
		i=$((i + 1))
		[ "$i" -lt 100 ] || return 1
		sleep 0.1
	done
	M="mariadb --no-defaults --socket=$MYDIR/sock -uroot"
	$M -e "CREATE DATABASE rke; CREATE TABLE rke.kine(id bigint AUTO_INCREMENT PRIMARY KEY, name varchar(100));
		INSERT INTO rke.kine(name) SELECT CONCAT('k',seq) FROM rke.seq_1_to_100;" &&
		mariadb-dump --no-defaults --socket="$MYDIR/sock" -uroot --databases rke >"$MYDIR/rke.sql"
}

t_postgres() {
	setup postgres
	if [ -z "$PGDIR" ]; then
		skip "needs PostgreSQL (initdb) and root"
		return 0
	fi
	P="$PGBIN/psql -h $PGDIR -p 5432 -U postgres -X -q -v ON_ERROR_STOP=1"
	{ "$PGBIN/pg_restore" -h "$PGDIR" -p 5432 -U postgres --clean --if-exists --create -d postgres "$PGDIR/rancher.dump" &&
		$P -d rancher -c 'DELETE FROM kine WHERE id > 10; CREATE TABLE junk(a int);'; } || fail "could not prepare the database"
	ln -sf "$PGBIN/pg_restore" "$C/bin/pg_restore"
	ln -sf "$PGBIN/psql" "$C/bin/psql"
	B_DESTRUCTIVE=1
	pre "check_pg_archive $PGDIR/rancher.dump"
	act "restore_postgres $PGDIR/rancher.dump $PGDIR 5432 postgres rancher"
	build
	run REWIND_YES=1
	expect_rc 0
	expect_out "ok: $PGDIR/rancher.dump is a pg_restore archive of database rancher"
	expect_out "ok: database restored; kine has 100 rows"
	[ "$($P -d rancher -Atc "SELECT count(*) FROM pg_tables WHERE tablename='junk'")" = 0 ] || fail "table junk survived"
	: >"$C/act"
	act "restore_postgres $PGDIR/rancher.dump $PGDIR '' postgres other"
	build
	run REWIND_YES=1 REWIND_FORCE=1
	expect_rc 1
	expect_err "is a dump of database rancher, not other"
	setup postgres-garbage
	ln -sf "$PGBIN/pg_restore" "$C/bin/pg_restore"
	echo garbage >"$C/data/x.dump"
	pre "check_pg_archive $C/data/x.dump"
	build
	run
	expect_rc 1
	expect_err "is not a readable pg_restore archive"
}

t_mysql() {
	setup mysql
	if [ -z "$MYDIR" ]; then
		skip "needs MariaDB and root"
		return 0
	fi
	M="mariadb --no-defaults --socket=$MYDIR/sock -uroot"
	# start from the dumped state (an earlier failed run may have left none)
	{ $M -e "DROP DATABASE IF EXISTS rke" && $M <"$MYDIR/rke.sql" &&
		$M -e "DELETE FROM rke.kine WHERE id > 10; CREATE TABLE rke.junk(a int);"; } || fail "could not prepare the database"
	rm -f "$C/bin/mysql"
	# the client with the socket and no option files, as an option file would
	printf '#!/bin/sh\nexec mariadb --no-defaults --socket=%s "$@"\n' "$MYDIR/sock" >"$C/bin/mysql"
	chmod 755 "$C/bin/mysql"
	B_DESTRUCTIVE=1
	pre "check_mysql_dump $MYDIR/rke.sql"
	act "restore_mysql $MYDIR/rke.sql '' '' root rke"
	build
	run REWIND_YES=1
	expect_rc 0
	expect_out "ok: $MYDIR/rke.sql is a complete SQL dump"
	expect_out "ok: database restored; kine has 100 rows"
	[ "$($M -N -B -e "SELECT count(*) FROM information_schema.tables WHERE table_schema='rke' AND table_name='junk'")" = 0 ] ||
		fail "table junk survived"
	: >"$C/act"
	act "restore_mysql $MYDIR/rke.sql '' '' root other"
	build
	run REWIND_YES=1 REWIND_FORCE=1
	expect_rc 1
	expect_err "switches to another database"
	setup mysql-cut
	head -n 20 "$MYDIR/rke.sql" >"$C/data/cut.sql"
	pre "check_mysql_dump $C/data/cut.sql"
	build
	run
	expect_rc 1
	expect_err "is incomplete"
}

t_fixtures() {
	setup fixtures
	F=$ROOT/tests/fixtures
	if [ ! -f "$F/etcd/snapshot.db" ]; then
		skip "no tests/fixtures"
		return 0
	fi
	pre "check_etcd_snapshot $F/etcd/snapshot.db" "check_sqlite_db $F/sqlite/state.db" \
		"check_mysql_dump $F/mysql/kine.sql" "check_token $F/token $(sha256sum <"$F/token" | cut -d' ' -f1)"
	if command -v unzip >/dev/null 2>&1; then pre "check_etcd_snapshot $F/etcd/snapshot.zip"; fi
	if [ -n "$PGBIN" ]; then
		ln -sf "$PGBIN/pg_restore" "$C/bin/pg_restore"
		pre "check_pg_archive $F/postgres/rke2.dump"
	fi
	build
	run
	expect_rc 0
	expect_out "ok: etcd snapshot $F/etcd/snapshot.db: sha256 trailer matches its content"
	if command -v unzip >/dev/null 2>&1; then expect_out "ok: etcd snapshot $F/etcd/snapshot.zip"; fi
	if [ -n "$PGBIN" ]; then expect_out "pg_restore archive of database rke2"; fi
	# the token's password part is a canary
	pw=$(sed -n 's/.*::server://p' "$F/token")
	[ -n "$pw" ] && expect_not_out "$pw"
	ls "$F/sqlite" | grep -q -v '^state.db$' && fail "files created beside the fixture database: $(ls "$F/sqlite")"
	return 0
}

# A cluster file named like an awk assignment, or like an option, is read
# as a file (issue 11, item 8): before, awk took `a=b.yml` for an assignment,
# read stdin and found no node.
t_awk_operands() {
	setup awk-operands
	FRAGS="rke1"
	printf 'nodes:\n  - address: 4.4.4.4\n    user: root\n' >"$C/a=b.yml"
	cp "$C/a=b.yml" "$C/-v.yml"
	pre "rke1_check_cluster_nodes a=b.yml 3.3.3.3 4.4.4.4 BLOCK" "rke1_check_cluster_nodes -v.yml 3.3.3.3 4.4.4.4 BLOCK"
	build
	run
	expect_rc 0
	expect_out "a=b.yml lists 4.4.4.4 and not 3.3.3.3"
	expect_out "-v.yml lists 4.4.4.4 and not 3.3.3.3"
	printf '  - address: 3.3.3.3\n' >>"$C/a=b.yml"
	run
	expect_rc 1
	expect_err "the failed node 3.3.3.3 is still listed"
}

# The preflight runs every check and reports every problem at once (issue 16,
# item 1): each with its hint, the same problem found by two checks once,
# then one verdict; a single problem keeps its command's exit code; a check
# that stops unexpectedly is a problem too; checks leave no temporary folder.
t_preflight_all() {
	setup preflight-all
	pre "need_file $C/data/missing" \
		"check_sha256 $C/data/missing 0000000000000000000000000000000000000000000000000000000000000000" \
		'need_tools sh no-such-tool-1' \
		"check_token $C/data/no-token" \
		"need_file $C/data/present"
	act "move_aside $C/data/x rewind-0123abcd"
	touch "$C/data/x" "$C/data/present"
	mkdir -p "$C/tmp"
	build
	run TMPDIR="$C/tmp"
	expect_rc 1
	expect_err "PROBLEM 1: file not found: $C/data/missing"
	expect_err "hint:    put the file the plan names at $C/data/missing on this host"
	expect_err "PROBLEM 2: missing tools: no-such-tool-1"
	expect_err "PROBLEM 3: file not found: $C/data/no-token"
	expect_err "hint:    copy the server token saved with the snapshot"
	expect_not_out "PROBLEM 4"
	expect_out "ok: file present: $C/data/present"
	expect_err "FAILED: preflight: 3 problems; nothing was changed"
	expect_err "changed: nothing"
	expect_err "read:    README.md#step-05-restore"
	expect_not_out "ok: preflight"
	expect_not_out "rewind: actions"
	expect_file "$C/data/x"
	expect_log failed 1
	[ -z "$(ls -A "$C/tmp")" ] || fail "temporary files left: $(ls -A "$C/tmp")"
	# the same in a dry run
	run TMPDIR="$C/tmp" REWIND_DRY_RUN=1
	expect_rc 1
	expect_err "FAILED: preflight: 3 problems; nothing was changed"
	# one problem: the exit code of its command, as before
	setup preflight-one
	printf '#!/bin/sh\necho "cannot execute" >&2\nexit 6\n' >"$C/bin/broken-rke2"
	chmod 755 "$C/bin/broken-rke2"
	pre "check_installed_version $C/bin/broken-rke2 v1.27.10+rke2r1" 'need_tools sh'
	build
	run
	expect_rc 6
	expect_err "PROBLEM 1: could not ask rke2 its version"
	expect_err "command: $C/bin/broken-rke2 --version"
	expect_err "exit:    6"
	expect_err "FAILED: preflight: 1 problem; nothing was changed"
	expect_out "ok: tools present: sh"
	expect_log failed 6
	# a check that stops unexpectedly (set -e), and one that made a
	# temporary folder before failing
	setup preflight-abort
	mkdir -p "$C/tmp"
	pre 'mk() { rw_tmpdir; : >"$_rw_tmp/x"; rw_hint "a hint"; rw_fail "failed after rw_tmpdir"; }' \
		'ok_tmp() { rw_tmpdir; : >"$_rw_tmp/y"; rw_ok "made a temporary file"; }' \
		'rw_check_op false' 'rw_check_op mk' 'rw_check_op ok_tmp' 'need_tools sh'
	build
	run TMPDIR="$C/tmp"
	expect_out "ok: made a temporary file"
	expect_rc 1
	expect_err "PROBLEM 1: the check false stopped unexpectedly (exit 1)"
	expect_err "PROBLEM 2: failed after rw_tmpdir"
	expect_err "hint:    a hint"
	expect_out "ok: tools present: sh"
	expect_err "FAILED: preflight: 2 problems"
	[ -z "$(ls -A "$C/tmp")" ] || fail "temporary files left: $(ls -A "$C/tmp")"
}

# A rehearsal (REWIND_REHEARSAL=FILE, issue 16 item 3) is a dry run; what a
# step's actions establish is recorded, and a later step's check takes it as
# given and says so; without the rehearsal file the check fails as before.
t_rehearsal() {
	setup rehearsal
	B_STEP=04-install
	act "move_aside $C/data/x rewind-0123abcd" \
		"check_installed_version $C/bin/rke2 v1.27.10+rke2r1"
	touch "$C/data/x"
	build
	run STUB_RKE2_VERSION=v1.28.3+rke2r1 REWIND_REHEARSAL="$C/rehearsal"
	expect_rc 0
	expect_out "DRY RUN (rehearsal)"
	expect_out "[dry-run] would run: mv $C/data/x $C/data/x.rewind-0123abcd"
	expect_out "rewind: rehearsal: after step 04-install: $C/bin/rke2 --version is v1.27.10+rke2r1"
	expect_file "$C/data/x"
	expect_no_file "$C/log/prod-east.log"
	grep -q -F -x "fact	04-install	$C/bin/rke2 --version is v1.27.10+rke2r1" "$C/rehearsal" ||
		fail "no fact recorded: $(cat "$C/rehearsal" 2>/dev/null)"
	B_STEP=06-start
	: >"$C/pre"
	: >"$C/act"
	pre "check_installed_version $C/bin/rke2 v1.27.10+rke2r1" "need_file $C/data/missing"
	build
	run STUB_RKE2_VERSION=v1.28.3+rke2r1 REWIND_REHEARSAL="$C/rehearsal"
	expect_rc 1
	expect_out "ok: $C/bin/rke2 --version is v1.27.10+rke2r1: established by step 04-install (rehearsal)"
	expect_err "PROBLEM 1: file not found: $C/data/missing"
	expect_err "preflight: 1 problem"
	grep -q -F "problem	06-start	file not found: $C/data/missing (hint: " "$C/rehearsal" ||
		fail "no problem recorded: $(cat "$C/rehearsal")"
	run STUB_RKE2_VERSION=v1.28.3+rke2r1 REWIND_DRY_RUN=1
	expect_rc 1
	expect_err "installed version is v1.28.3+rke2r1, not the target v1.27.10+rke2r1"
	expect_err "preflight: 2 problems"
}

# k3s_constants: this case's library is a K3s plan's (src/plan/rke2.rs).
k3s_constants() {
	printf '%s\n' REWIND_PRODUCT=K3s REWIND_BIN=k3s REWIND_ENV=K3S \
		REWIND_DEFAULT_DATA_DIR=/var/lib/rancher/k3s REWIND_SERVER_UNIT=k3s \
		REWIND_AGENT_UNIT=k3s-agent REWIND_IMAGES=k3s-airgap-images \
		REWIND_INSTALL_URL=https://get.k3s.io >"$C/constants"
}

# K3s's install rewrites the unit and its .env file (k3s-io/k3s install.sh):
# the install step keeps both, runs the script with nothing enabled or
# started, puts both back byte for byte; a second run keeps the first copy.
t_k3s_install() {
	setup k3s-install
	k3s_constants
	FRAGS="files install k3s rke2"
	B_STEP=04-install
	u=$C/etc/k3s.service
	e=$C/etc/k3s.service.env
	a=$C/artifacts
	mkdir -p "$C/etc" "$a" "$C/usr/bin"
	printf '[Service]\nExecStart=/usr/local/bin/k3s \\\n    server \\\n\t--cluster-init \\\n\t--disable=traefik\n' >"$u"
	printf 'K3S_TOKEN=K10abc::server:secret\nK3S_KUBECONFIG_MODE=644\n' >"$e"
	cp "$u" "$C/unit.orig"
	cp "$e" "$C/env.orig"
	# The release's binary and an install script that rewrites the unit
	# from its own environment, as the upstream one does.
	printf '#!/bin/sh\necho "k3s version v1.28.9+k3s1 (abc)"\n' >"$a/k3s"
	{
		printf '#!/bin/sh\n'
		printf 'printf "%%s\\n" "$INSTALL_K3S_EXEC $INSTALL_K3S_SKIP_DOWNLOAD $INSTALL_K3S_SKIP_ENABLE $INSTALL_K3S_SKIP_START $INSTALL_K3S_BIN_DIR" >"%s"\n' "$C/install.args"
		printf 'printf "[Service]\\nExecStart=%%s/k3s %%s\\n" "$INSTALL_K3S_BIN_DIR" "$INSTALL_K3S_EXEC" >"%s"\n' "$u"
		printf ': >"%s"\n' "$e"
	} >"$a/install.sh"
	(cd "$a" && sha256sum k3s >sha256sum-amd64.txt)
	act "keep_unit_files $u $e rewind-0123abcd" \
		"install_k3s v1.28.9+k3s1 server $C/usr/bin/k3s $a amd64" \
		"put_back_unit_files $u $e rewind-0123abcd" \
		"check_installed_version $C/usr/bin/k3s v1.28.9+k3s1"
	build
	run
	expect_rc 0
	cmp -s "$u" "$C/unit.orig" || fail "the unit is not the original: $(cat "$u")"
	cmp -s "$e" "$C/env.orig" || fail "the env file is not the original: $(cat "$e")"
	cmp -s "$u.rewind-0123abcd" "$C/unit.orig" || fail "no copy of the original unit"
	[ "$(cat "$C/install.args")" = "server true true true $C/usr/bin" ] || fail "install.sh ran with: $(cat "$C/install.args")"
	expect_called "systemctl <daemon-reload>"
	expect_out "ok: $C/usr/bin/k3s --version is v1.28.9+k3s1"
	expect_out "is as it was before the install (ExecStart, K3S_URL, K3S_TOKEN kept)"
	# Run again (the script rewrote the unit meanwhile): the first copy wins.
	printf '[Service]\nExecStart=/usr/local/bin/k3s server\n' >"$u"
	run REWIND_FORCE=1
	expect_rc 0
	expect_out "the copy made by an earlier run of this step is kept (the original)"
	cmp -s "$u" "$C/unit.orig" || fail "second run: the unit is not the original: $(cat "$u")"
	# A binary that does not match the sums file is not installed.
	setup k3s-install-bad
	k3s_constants
	FRAGS="files install k3s rke2"
	B_STEP=04-install
	mkdir -p "$C/artifacts" "$C/usr/bin"
	printf 'not k3s\n' >"$C/artifacts/k3s"
	printf '#!/bin/sh\nexit 0\n' >"$C/artifacts/install.sh"
	printf '%064d  k3s\n' 0 >"$C/artifacts/sha256sum-amd64.txt"
	act "install_k3s v1.28.9+k3s1 agent $C/usr/bin/k3s $C/artifacts amd64"
	build
	run
	expect_rc 1
	expect_err "does not match sha256sum-amd64.txt"
	expect_no_file "$C/usr/bin/k3s"
}

# K3s's preflight: the artifacts (binary listed, matching, of the target),
# the binary's folder, the unit files; the RKE2 checks read K3S_* names.
t_k3s_checks() {
	setup k3s-checks
	k3s_constants
	FRAGS="files install k3s rke2"
	a=$C/artifacts
	mkdir -p "$a" "$C/usr/bin" "$C/etc/k3s" "$C/units"
	printf '#!/bin/sh\necho "k3s version v1.28.9+k3s1 (abc)"\n' >"$a/k3s"
	printf '#!/bin/sh\n' >"$a/install.sh"
	printf 'images\n' >"$a/k3s-airgap-images-amd64.tar.zst"
	(cd "$a" && sha256sum k3s k3s-airgap-images-amd64.tar.zst >sha256sum-amd64.txt)
	printf '#!/bin/sh\necho "k3s version v1.29.4+k3s1 (abc)"\n' >"$C/usr/bin/k3s"
	chmod 755 "$C/usr/bin/k3s"
	printf '[Service]\nExecStart=/usr/local/bin/k3s agent\n' >"$C/units/k3s-agent.service"
	printf 'K3S_URL=https://server-1:6443\n' >"$C/units/k3s-agent.service.env"
	pre "check_k3s_artifacts $a amd64 v1.28.9+k3s1" \
		"check_bin_dir $C/usr/bin/k3s" \
		"check_unit_files k3s-agent $C/units/k3s-agent.service $C/units/k3s-agent.service.env" \
		"check_server_entry $C/etc/k3s k3s-agent $C/units/k3s-agent.service.env"
	build
	run
	expect_rc 0
	expect_out "ok: air-gap artifacts in $a: 2 files match sha256sum-amd64.txt"
	expect_out "ok: k3s is k3s v1.28.9+k3s1, the target"
	expect_out "ok: $C/usr/bin/k3s is installed"
	expect_out "are there: the install step keeps both"
	expect_out "K3S_URL"
	# Artifacts of another release, a unit without ExecStart, no K3S_URL.
	printf '#!/bin/sh\necho "k3s version v1.29.4+k3s1 (abc)"\n' >"$a/k3s"
	(cd "$a" && sha256sum k3s k3s-airgap-images-amd64.tar.zst >sha256sum-amd64.txt)
	printf '[Service]\n' >"$C/units/k3s-agent.service"
	: >"$C/units/k3s-agent.service.env"
	run
	expect_rc 1
	expect_err "the artifacts in $a are of v1.29.4+k3s1, not of the target v1.28.9+k3s1"
	expect_err "has no ExecStart line"
	expect_err "no K3S_URL in the environment files"
}

TESTS="t_preflight_all t_rehearsal t_awk_operands t_fixtures t_ok_and_done t_wrong_host t_not_root t_confirm_no_tty t_confirm_tty t_dry_run t_failure_report
t_quoting t_cluster_reset t_start_unit t_stop_left t_config t_units t_versions t_server_entry t_etcd_snapshot t_sha_room
t_token t_artifacts t_install_online t_rpm t_kube t_suc t_sqlite t_workstation_dirs t_postgres t_mysql
t_k3s_install t_k3s_checks"

# ---- main ---------------------------------------------------------------------
static_checks
start_postgres || PGDIR=
start_mariadb || MYDIR=
for SHN in $SHELLS; do
	SH=$(shell_cmd "$SHN")
	for t in $TESTS; do
		if [ -n "${REWIND_TEST_ONLY:-}" ]; then
			case " $REWIND_TEST_ONLY " in *" $t "*) ;; *) continue ;; esac
		fi
		CASE_FAILED=0
		$t
		if [ "$CASE_FAILED" = 0 ]; then PASS=$((PASS + 1)); fi
	done
	printf '%s: done\n' "$SHN"
done
if [ -n "$PGDIR" ]; then runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop >/dev/null 2>&1 || true; fi
printf 'shell library tests: %s passed, %s failures, %s skipped (shells:%s; namespace: %s)\n' \
	"$PASS" "$FAILS" "$SKIPS" "$SHELLS" "$NS"
[ "$FAILS" = 0 ]
