# ---- rewind runtime library: rke1 -------------------------------------------------
# Rancher HA on RKE1, the rke side of the Rancher HA rollback: the workstation files, the
# etcd snapshot on the nodes (checked, or put on a replaced node), the node
# list of the cluster file, and the two rke commands. rke runs on the
# workstation and reaches the nodes over SSH, so workstation scripts do not
# need root. Relative paths are relative to the folder the script is run
# from (the plan's rule: run them from the folder holding the cluster file).

# _r1_where PATH: sets _r1_at to PATH, plus the folder it was looked for in
# when it is relative (the usual mistake: running from the bundle's folder).
_r1_where() {
	case $1 in
	/*) _r1_at=$1 ;;
	*) _r1_at="$1 (looked for in ${PWD:-.})" ;;
	esac
}

# _r1_first_etcd CONFIG: sets _r1_fe to the address of the first node of
# the cluster file's `nodes:` list whose role has etcd (role: [a, b] or a
# block list), empty if none is found. The file is read on standard input:
# a name with `=` is not an awk assignment.
_r1_first_etcd() {
	_r1_fe=$(awk '
		function flush() { if (addr != "" && etcd && !done) { print addr; done = 1 } }
		/^nodes:/ { innodes = 1; next }
		innodes && /^[^ \t#-]/ { innodes = 0 }
		!innodes || done { next }
		/^[ \t]*-[ \t]+[A-Za-z_]+:/ { flush(); addr = ""; etcd = 0; inrole = 0; sub(/^[ \t]*-/, " ") }
		/^[ \t]*address:/ { v = $0; sub(/^[^:]*:[ \t]*/, "", v); sub(/[ \t]+#.*$/, "", v); gsub(/["\047]/, "", v); addr = v; inrole = 0; next }
		/^[ \t]*role:/ { if ($0 ~ /etcd/) etcd = 1; inrole = 1; next }
		inrole && /^[ \t]*-[ \t]*etcd[ \t]*$/ { etcd = 1; next }
		inrole && /^[ \t]*-[ \t]*[A-Za-z]+[ \t]*$/ { next }
		/^[ \t]*[A-Za-z_]+:/ { inrole = 0 }
		END { flush() }
	' <"$1" 2>/dev/null) || _r1_fe=
}

# rke1_check_workstation BIN CONFIG STATE KUBECONFIG SOURCE S3: the rke
# binary runs, the cluster file and its state file are readable (everything
# missing is reported at once); a missing kubeconfig is only reported: rke
# up writes it. The cluster file has services.etcd.backup_config
# .s3backupconfig exactly when S3 is 1 (then rke pulls the snapshot from S3
# on every etcd node, and the local copies do not matter); when SOURCE is
# given, it is the first etcd node of the cluster file, the one whose copy
# rke restores from (and the one step 1 checked).
rke1_check_workstation() {
	rw_check_op rke1_check_workstation ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	_r1w_bad=
	case $1 in
	*/*)
		_r1_where "$1"
		if [ ! -f "$1" ]; then
			_r1w_bad="$_r1w_bad$_rw_nl  rke binary not found: $_r1_at"
		elif [ ! -x "$1" ]; then
			_r1w_bad="$_r1w_bad$_rw_nl  rke binary not executable (chmod +x): $_r1_at"
		fi
		;;
	*)
		if ! command -v "$1" >/dev/null 2>&1; then
			_r1w_bad="$_r1w_bad$_rw_nl  rke binary $1 is not on PATH"
		fi
		;;
	esac
	for _r1w_f in "$2" "$3"; do
		_r1_where "$_r1w_f"
		if [ ! -f "$_r1w_f" ]; then
			_r1w_bad="$_r1w_bad$_rw_nl  not found: $_r1_at"
		elif [ ! -r "$_r1w_f" ]; then
			_r1w_bad="$_r1w_bad$_rw_nl  not readable: $_r1_at"
		fi
	done
	if [ -n "$_r1w_bad" ]; then
		rw_hint "run the workstation scripts from the folder that holds the cluster file (relative paths in the plan are relative to it); the .rkestate must sit beside the cluster file under its name"
		rw_fail "the workstation is not ready:$_r1w_bad"
	fi
	_r1w_rc=0
	_r1w_v=$("$1" --version 2>&1) || _r1w_rc=$?
	if [ "$_r1w_rc" -ne 0 ]; then
		rw_quote_cmd "$1" --version
		rw_hint "use the rke binary for this machine's system (rke_linux-amd64, rke_darwin-amd64, ...), the one that performed the upgrade"
		rw_fail_cmd "$_r1w_rc" "the rke binary does not run: ${_r1w_v%%"$_rw_nl"*}"
	fi
	rw_ok "rke runs: ${_r1w_v%%"$_rw_nl"*}"
	rw_ok "cluster file $2 and its state file $3 present"
	if grep -q -E '^[[:space:]]*s3backupconfig:' <"$2"; then
		if [ "${6:-0}" != 1 ]; then
			rw_hint "set s3-backup = true under [rke] in the plan and compile again: then no node is asked for a local copy, and the snapshot's name is the one in the bucket"
			rw_fail "$2 has s3backupconfig: rke etcd snapshot-restore pulls the snapshot from S3 itself and ignores the local copies this bundle checked"
		fi
		rw_ok "$2 has s3backupconfig: rke pulls the snapshot from S3 itself"
	elif [ "${6:-0}" = 1 ]; then
		rw_hint "add the s3backupconfig of the upgrade's snapshot to $2, or set s3-backup = false in the plan (then the first etcd node must hold a local copy) and compile again"
		rw_fail "the plan says $2 has s3backupconfig, but it has none: rke would restore a local copy that no step checked"
	fi
	if [ -n "${5:-}" ]; then
		_r1_first_etcd "$2"
		if [ -z "$_r1_fe" ]; then
			rw_hint "give at least one node of $2 the etcd role (role: [etcd, ...]) as in the cluster the snapshot was taken of, then run this script again"
			rw_fail "no node with the etcd role found in the nodes: list of $2"
		elif [ "$_r1_fe" != "$5" ]; then
			rw_hint "list the nodes in the plan in the cluster file's order (or reorder the cluster file), so that the copy step 1 checked is the one rke uses; then compile again"
			rw_fail "rke restores from the first etcd node of $2, $_r1_fe, but the plan's first etcd node is $5"
		fi
		rw_ok "rke restores from $_r1_fe, the first etcd node of $2 and of the plan"
	fi
	if [ -f "$4" ]; then
		rw_ok "kubeconfig present: $4"
	else
		_r1_where "$4"
		rw_warn "kubeconfig not found: $_r1_at; rke up writes it again, and the kubectl steps after it need it"
	fi
}

# rke1_check_snapshot DIR NAME HEX MODE: DIR/NAME.zip (or the uncompressed
# DIR/NAME) is a non-empty file hashing to HEX (empty HEX: not checked). MODE
# source: the copy the restore uses, so a missing or different file fails.
# MODE peer: rke replaces this node's copy with the source's, so a missing or
# different file is only reported.
rke1_check_snapshot() {
	rw_check_op rke1_check_snapshot ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	_r1s_dir=$1
	_r1s_name=$2
	_r1s_hex=$3
	_r1s_mode=$4
	if [ -f "$_r1s_dir/$_r1s_name.zip" ]; then
		_r1s_f=$_r1s_dir/$_r1s_name.zip
	elif [ -f "$_r1s_dir/$_r1s_name" ]; then
		_r1s_f=$_r1s_dir/$_r1s_name
	elif [ "$_r1s_mode" = source ]; then
		rw_hint "copy the snapshot taken before the upgrade into $_r1s_dir/ on this node (from the etcd node or the S3 bucket where it was saved), then run this script again"
		rw_fail "snapshot $_r1s_name not found: neither $_r1s_dir/$_r1s_name.zip nor $_r1s_dir/$_r1s_name exists, and the restore takes it from this node"
	else
		rw_say "note: no copy of snapshot $_r1s_name in $_r1s_dir; rke copies it here from the etcd node that holds it"
		return 0
	fi
	rw_need_file "$_r1s_f"
	if [ ! -s "$_r1s_f" ]; then
		if [ "$_r1s_mode" = source ]; then
			rw_hint "the copy is empty (an interrupted download or copy): copy the snapshot again, then run this script again"
			rw_fail "snapshot $_r1s_f is empty"
		fi
		rw_warn "snapshot $_r1s_f is empty; rke replaces it with the copy of the etcd node it restores from"
		return 0
	fi
	if [ -z "$_r1s_hex" ]; then
		rw_ok "snapshot present: $_r1s_f (the plan has no sha256 to check it against)"
		return 0
	fi
	rw_lower "$_r1s_hex"
	_r1s_want=$_rw_lc
	rw_say "computing the sha256 of $_r1s_f"
	rw_sha256 "$_r1s_f" || rw_fail "could not read $_r1s_f to compute its sha256"
	if [ "$_rw_sha" = "$_r1s_want" ]; then
		rw_ok "snapshot $_r1s_f: sha256 matches the plan"
	elif [ "$_r1s_mode" = source ]; then
		rw_hint "this node's copy is not the snapshot named in the plan: copy the right one here (or correct the plan's sha256 and compile again)"
		rw_fail "sha256 mismatch for $_r1s_f: expected $_r1s_want, got $_rw_sha"
	else
		rw_warn "$_r1s_f is not the plan's copy (sha256 $_rw_sha): each etcd node saves its own; rke replaces it with the copy of the etcd node it restores from"
	fi
}

# rke1_check_cluster_nodes CONFIG FAILED REPLACEMENT BLOCK: the cluster file
# has an `address:` REPLACEMENT and none FAILED (commented lines do not
# count). Otherwise prints BLOCK, the nodes list to paste, and fails.
rke1_check_cluster_nodes() {
	rw_check_op rke1_check_cluster_nodes ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	_r1_where "$1"
	if [ ! -f "$1" ] || [ ! -r "$1" ]; then
		rw_hint "run the workstation scripts from the folder that holds the cluster file"
		rw_fail "cluster file not found or not readable: $_r1_at"
	fi
	# Block-style YAML: `- address: X` or `address: X` on its own line; the
	# value may be quoted and followed by a comment.
	_r1c_rc=0
	_r1c_list=$(awk -v q="'" '
		{
			sub(/\r$/, "")
			line = $0
			sub(/^[ \t]*/, "", line)
			if (substr(line, 1, 1) == "#") next
			if (substr(line, 1, 1) == "-") {
				line = substr(line, 2)
				sub(/^[ \t]*/, "", line)
			}
			if (line !~ /^address[ \t]*:/) next
			sub(/^address[ \t]*:[ \t]*/, "", line)
			sub(/[ \t]+#.*$/, "", line)
			sub(/[ \t]+$/, "", line)
			n = length(line)
			if (n >= 2) {
				f = substr(line, 1, 1)
				l = substr(line, n, 1)
				if ((f == "\"" && l == "\"") || (f == q && l == q)) line = substr(line, 2, n - 2)
			}
			print line
		}' <"$1") || _r1c_rc=$? # stdin: a name with `=` is not an assignment
	if [ "$_r1c_rc" -ne 0 ]; then
		rw_quote_cmd awk '<address entries>' "$1"
		rw_fail_cmd "$_r1c_rc" "could not read the node addresses of $1"
	fi
	_r1c_list="$_rw_nl$_r1c_list$_rw_nl"
	_r1c_bad=
	case $_r1c_list in
	*"$_rw_nl$3$_rw_nl"*) ;;
	*) _r1c_bad="$_r1c_bad$_rw_nl  the new node $3 is not listed" ;;
	esac
	case $_r1c_list in
	*"$_rw_nl$2$_rw_nl"*) _r1c_bad="$_r1c_bad$_rw_nl  the failed node $2 is still listed" ;;
	esac
	if [ -n "$_r1c_bad" ]; then
		{
			printf '\nrewind: %s must list the new node instead of the failed one:%s\n' "$1" "$_r1c_bad"
			printf 'rewind: replace its nodes: list with this block (then save and run this script again):\n\n'
			printf '%s\n' "$4"
		} >&2
		rw_hint "edit $1 as shown above, keeping each node's other keys; a dead node in the file stops rke"
		rw_fail "$1 does not list the nodes of the plan"
	fi
	rw_ok "$1 lists $3 and not $2"
}

# _r1_put_prepare DIR FILE HEX: create DIR; sets _r1p_dest (DIR/FILE) and
# _r1p_tmp (the name the new copy arrives under). Sets _r1p_done=1 when the
# right copy is already in place; a different file there is moved aside.
_r1_put_prepare() {
	rw_need_abs "$1"
	_r1p_dest=$1/$2
	_r1p_tmp=$1/.$2.rewind-partial
	_r1p_done=0
	if [ ! -d "$1" ]; then
		rw_run mkdir -p "$1"
	fi
	if [ -f "$_r1p_dest" ]; then
		if [ -z "$3" ]; then
			rw_ok "snapshot already in place: $_r1p_dest (the plan has no sha256 to check it against)"
			_r1p_done=1
			return 0
		fi
		rw_lower "$3"
		rw_sha256 "$_r1p_dest" || {
		rw_hint "check that $_r1p_dest can be read (a disk error?); move it away and run this script again to fetch it anew"
		rw_fail "could not read $_r1p_dest to compute its sha256"
	}
		if [ "$_rw_sha" = "$_rw_lc" ]; then
			rw_ok "snapshot already in place: $_r1p_dest (sha256 matches the plan)"
			_r1p_done=1
			return 0
		fi
		rw_say "$_r1p_dest is another file (sha256 $_rw_sha): moving it aside"
		rw_move_aside "$_r1p_dest" "$_r1p_dest.$REWIND_SUFFIX"
	fi
	# A partial copy of an interrupted earlier run: only ever a copy.
	if [ -e "$_r1p_tmp" ]; then
		rw_run rm -f "$_r1p_tmp"
	fi
}

# _r1_put_finish HEX: check the new copy and rename it into place.
_r1_put_finish() {
	if rw_dry; then
		rw_would "check $_r1p_tmp (not empty${1:+, sha256 $1}), then:"
		rw_run mv "$_r1p_tmp" "$_r1p_dest"
		return 0
	fi
	if [ ! -s "$_r1p_tmp" ]; then
		rw_run rm -f "$_r1p_tmp"
		rw_hint "the source holds an empty file (rancher/rke2#6281 shows empty downloads happen): check the object or file, then run this script again"
		rw_fail "the copied snapshot is empty"
	fi
	if [ -n "$1" ]; then
		rw_lower "$1"
		rw_say "computing the sha256 of the new copy"
		rw_sha256 "$_r1p_tmp" || rw_fail "could not read $_r1p_tmp to compute its sha256"
		if [ "$_rw_sha" != "$_rw_lc" ]; then
			_r1p_got=$_rw_sha
			rw_run rm -f "$_r1p_tmp"
			rw_hint "the source is not the snapshot named in the plan, or the transfer damaged it: find the right snapshot before going on"
			rw_fail "sha256 mismatch for the new copy of $_r1p_dest: expected $_rw_lc, got $_r1p_got"
		fi
	fi
	rw_run mv "$_r1p_tmp" "$_r1p_dest"
	rw_ok "snapshot in place: $_r1p_dest"
}

# rke1_snapshot_from_s3 DIR FILE URL ENDPOINT REGION HEX: s3cmd get URL into
# DIR/FILE. The keys come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or
# s3cmd's configuration file (REWIND_S3CFG names another one); they never
# appear on a command line.
rke1_snapshot_from_s3() {
	rw_need_tool s3cmd "to download the snapshot"
	if [ -n "${REWIND_S3CFG:-}" ] && [ ! -r "$REWIND_S3CFG" ]; then
		rw_fail "REWIND_S3CFG names $REWIND_S3CFG, which is not a readable file"
	fi
	_r1g_url=$3
	_r1g_ep=$4
	_r1g_region=$5
	_r1g_hex=$6
	_r1_put_prepare "$1" "$2" "$_r1g_hex"
	if [ "$_r1p_done" = 1 ]; then return 0; fi
	set -- s3cmd
	if [ -n "${REWIND_S3CFG:-}" ]; then set -- "$@" -c "$REWIND_S3CFG"; fi
	if [ -n "$_r1g_ep" ]; then set -- "$@" "--host=$_r1g_ep" "--host-bucket=$_r1g_ep"; fi
	if [ -n "$_r1g_region" ]; then set -- "$@" "--region=$_r1g_region"; fi
	rw_hint "s3cmd exit 77 is a refused key (export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or set REWIND_S3CFG); exit 64 a wrong bucket, folder or name"
	rw_run "$@" --no-progress get "$_r1g_url" "$_r1p_tmp"
	_r1_put_finish "$_r1g_hex"
}

# rke1_snapshot_from_file DIR FILE SOURCE HEX: copy SOURCE into DIR/FILE.
rke1_snapshot_from_file() {
	_r1f_src=$3
	_r1f_hex=$4
	rw_need_file "$_r1f_src"
	_r1_put_prepare "$1" "$2" "$_r1f_hex"
	if [ "$_r1p_done" = 1 ]; then return 0; fi
	rw_run cp "$_r1f_src" "$_r1p_tmp"
	_r1_put_finish "$_r1f_hex"
}

# rke1_snapshot_by_hand DIR NAME HEX: create DIR; DIR/NAME.zip (or DIR/NAME)
# must have been copied there by the operator, and hash to HEX.
rke1_snapshot_by_hand() {
	rw_need_abs "$1"
	if [ ! -d "$1" ]; then
		rw_run mkdir -p "$1"
	fi
	if rw_dry && [ ! -f "$1/$2.zip" ] && [ ! -f "$1/$2" ]; then
		rw_would "check that you copied $1/$2.zip here${3:+ (sha256 $3)}"
		return 0
	fi
	rke1_check_snapshot "$1" "$2" "$3" source
}

# _r1_rke WHAT BIN ARGS...: run rke, showing its output and keeping it in a
# log under the state folder (named in the failure report). Sets _r1_rc to
# rke's exit code; the caller decides what failure means.
_r1_rke() {
	_r1k_log=$_rw_state_dir/$REWIND_STEP.$1.$(date -u +%Y%m%dT%H%M%SZ).log
	shift
	rw_run_logged "$_r1k_log" "$@"
	_r1_rc=$_rw_rl_rc
	if rw_dry; then
		rw_would "keep rke's output in a log under $_rw_state_dir"
	fi
}

# rke1_snapshot_save BIN CONFIG NAME: rke etcd snapshot-save of the cluster as
# it is now. If etcd cannot be saved (the upgrade broke it), warn and go on:
# there is nothing left to keep, and the restore must not wait for it.
rke1_snapshot_save() {
	_r1_rke snapshot-save "$1" etcd snapshot-save --name "$3" --config "$2"
	if rw_dry; then return 0; fi
	if [ "$_r1_rc" -eq 0 ]; then
		rw_ok "current etcd saved as $3 (in /opt/rke/etcd-snapshots/ on the etcd nodes)"
	else
		rw_warn "rke could not save the current etcd (exit $_r1_rc; its output is in $_r1k_log): the rollback goes on without a copy of the current state"
	fi
}

# rke1_snapshot_restore BIN CONFIG NAME: rke etcd snapshot-restore.
rke1_snapshot_restore() {
	_r1_rke snapshot-restore "$1" etcd snapshot-restore --name "$3" --config "$2"
	if [ "$_r1_rc" -ne 0 ]; then
		rw_hint "rke's last lines name the node and the cause (its output is in $_r1k_log); running the restore again is safe"
		rw_fail_cmd "$_r1_rc" "rke etcd snapshot-restore failed"
	fi
	if ! rw_dry; then rw_ok "snapshot $3 restored"; fi
}

# rke1_up BIN CONFIG: rke up.
rke1_up() {
	_r1_rke up "$1" up --config "$2"
	if [ "$_r1_rc" -ne 0 ]; then
		rw_hint "rke's last lines name the node and the component (its output is in $_r1k_log); rke up is safe to run again"
		rw_fail_cmd "$_r1_rc" "rke up failed"
	fi
	if ! rw_dry; then rw_ok "rke up finished"; fi
}
