# ---- rewind runtime library: etcd -----------------------------------------------
# The embedded-etcd snapshot integrity check (preflight); the bounded
# `rke2 server --cluster-reset` itself is in the rke2 fragment, which knows
# the unit's environment.
#
# An etcd snapshot written by `etcdctl snapshot save` (and by rke2) is the
# bbolt database followed by a 32-byte sha256 of that database. The restore
# checks it only after every node has been stopped; checking it here first
# means a damaged snapshot is found while the cluster still runs.

# check_etcd_snapshot PATH: the snapshot's sha256 trailer matches its body;
# a .zip (rke2's compressed snapshots) is tested with `unzip -t` and its
# single entry checked the same way, streamed (nothing is extracted to disk).
check_etcd_snapshot() {
	rw_check_op check_etcd_snapshot ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	_ces_f=$1
	rw_hint "copy the snapshot the plan restores ([snapshot] path: taken with $REWIND_BIN etcd-snapshot before the upgrade, on the target's minor) to $_ces_f on this host, then run this script again"
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
		*"$_rw_nl"*) rw_fail "$_ces_f holds more than one file; a $REWIND_BIN snapshot zip holds exactly one" ;;
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
