# ---- rewind runtime library: etcd -----------------------------------------------
# The embedded-etcd restore: the snapshot integrity check (preflight) and the
# bounded `rke2 server --cluster-reset` (action).
#
# An etcd snapshot written by `etcdctl snapshot save` (and by rke2) is the
# bbolt database followed by a 32-byte sha256 of that database. The restore
# checks it only after every node has been stopped; checking it here first
# means a damaged snapshot is found while the cluster still runs.

# check_etcd_snapshot PATH: the snapshot's sha256 trailer matches its body;
# a .zip (rke2's compressed snapshots) is tested with `unzip -t` and its
# single entry checked the same way, streamed (nothing is extracted to disk).
check_etcd_snapshot() {
	_ces_f=$1
	rw_need_file "$_ces_f"
	rw_hint "the snapshot is damaged or is not an etcd snapshot (a raw copy of member/snap/db has no trailer); copy it again or choose another snapshot in the plan"
	case $_ces_f in
	*.zip | *.ZIP)
		rw_need_tool unzip "to read the compressed snapshot $_ces_f"
		rw_say "testing the zip archive $_ces_f"
		rw_check unzip -tqq "$_ces_f"
		_ces_list=$(unzip -Z1 "$_ces_f" 2>/dev/null) || _ces_list=
		if [ -z "$_ces_list" ]; then
			# Not Info-ZIP (busybox unzip has no -Z): read the names from -l,
			# between the two dashed lines; the name is the 4th column on.
			_ces_list=$(unzip -l "$_ces_f" 2>/dev/null |
				sed -n '/^ *-----/,/^ *-----/{/^ *-----/d;s/^ *[0-9][0-9]* *[^ ]* *[^ ]* *//p;}') || _ces_list=
		fi
		case $_ces_list in
		'') rw_fail "could not list the entries of $_ces_f" ;;
		*"$_rw_nl"*) rw_fail "$_ces_f holds more than one file; an rke2 snapshot zip holds exactly one" ;;
		esac
		rw_say "checking the sha256 trailer of $_ces_list inside $_ces_f"
		# No pipefail: a broken pipe shows up as a trailer that does not match.
		_ces_tail=$(unzip -p "$_ces_f" "$_ces_list" | tail -c 32 | od -An -v -tx1 | tr -d ' \n')
		_ces_body=$(unzip -p "$_ces_f" "$_ces_list" | head -c -32 | rw_sha256_pipe)
		;;
	*)
		_ces_size=$(wc -c <"$_ces_f" | tr -d ' \t')
		case $_ces_size in
		'' | *[!0-9]*) rw_fail "could not measure $_ces_f" ;;
		esac
		if [ "$_ces_size" -le 32 ]; then
			rw_fail "$_ces_f is $_ces_size bytes: too small to be an etcd snapshot with its sha256 trailer"
		fi
		rw_say "checking the sha256 trailer of $_ces_f ($_ces_size bytes)"
		_ces_tail=$(tail -c 32 "$_ces_f" | od -An -v -tx1 | tr -d ' \n')
		_ces_body=$(head -c -32 "$_ces_f" | rw_sha256_pipe)
		;;
	esac
	_ces_body=${_ces_body%%[ 	]*}
	if [ "${#_ces_tail}" -ne 64 ]; then
		rw_fail "$_ces_f: could not read a 32-byte sha256 trailer (is the file complete?)"
	fi
	if [ "$_ces_tail" != "$_ces_body" ]; then
		rw_fail "$_ces_f: the snapshot's sha256 trailer does not match its content"
	fi
	rw_hint
	rw_ok "etcd snapshot $_ces_f: sha256 trailer matches its content"
}

# cluster_reset BIN RESTORE_PATH FLAG...: `BIN server --cluster-reset
# --cluster-reset-restore-path=RESTORE_PATH FLAG...` under `timeout`
# (REWIND_RESET_TIMEOUT, default 1800 s). Its output is shown and kept in a
# log under the state folder. Success is exit 0 AND the message rke2 prints
# once etcd runs as a new single-member cluster; older versions word the
# start of that line differently, so only its end is matched.
cluster_reset() {
	_cre_bin=$1
	_cre_path=$2
	shift 2
	for _cre_flag in ${1+"$@"}; do
		case $_cre_flag in
		--token | --token=* | --agent-token* | --etcd-s3-access-key* | --etcd-s3-secret-key* | --etcd-s3-session-token*)
			rw_fail "internal error: ${_cre_flag%%=*} on the rke2 command line would show a secret; rke2 reads it from the environment"
			;;
		esac
	done
	rw_seconds REWIND_RESET_TIMEOUT 1800
	_cre_to=$_rw_secs
	rw_need_tool timeout "to bound the cluster-reset"
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet rke2-server 2>/dev/null; then
		rw_hint "run the stop step on this node first"
		rw_fail "rke2-server is running on this node: a cluster-reset needs it stopped"
	fi
	_cre_log=$_rw_state_dir/$REWIND_STEP.cluster-reset.$(date -u +%Y%m%dT%H%M%SZ).log
	rw_say "restoring etcd from $_cre_path (this can take long for a large snapshot; limit ${_cre_to} s, REWIND_RESET_TIMEOUT)"
	rw_run_logged "$_cre_log" timeout "$_cre_to" "$_cre_bin" server --cluster-reset \
		"--cluster-reset-restore-path=$_cre_path" ${1+"$@"}
	if rw_dry; then
		rw_would "keep its output in a log under $_rw_state_dir and require exit 0 and \"restart without --cluster-reset flag now\""
		return 0
	fi
	case $_rw_rl_rc in
	0) ;;
	124 | 137 | 143)
		rw_hint "large snapshots take long: raise REWIND_RESET_TIMEOUT and run again (a restore always starts over); rke2's output is in $_cre_log"
		rw_fail_cmd "$_rw_rl_rc" "the cluster-reset did not finish within $_cre_to s and was stopped"
		;;
	*)
		rw_hint "rke2's output is in $_cre_log; its last lines name the cause"
		rw_fail_cmd "$_rw_rl_rc" "the cluster-reset failed"
		;;
	esac
	if ! grep -q -e 'restart without --cluster-reset flag now' -- "$_cre_log"; then
		rw_hint "rke2's output is in $_cre_log"
		_rw_report "rke2 exited 0 but did not print \"restart without --cluster-reset flag now\": the restore is not confirmed" "$_rw_cmd" 0
		exit 1
	fi
	rw_ok "snapshot restored (rke2's output: $_cre_log)"
}
