# ---- rewind runtime library: capture --------------------------------------------
# The capture bundle of `rewind prepare`, run BEFORE an upgrade: take the
# datastore backup, save the server token beside it, and write what the host
# really is (version, data dir, `server:` entry, token source, backup path,
# size and sha256) into a small JSON facts file, from which
# `rewind plan --from-facts` writes the rollback plan (docs/prepare.md).
# RKE2 and K3s alike: the product's names come from the library's constants
# (REWIND_PRODUCT, REWIND_BIN, REWIND_ENV) or the operations' arguments.
#
# A capture script keeps the facts it gathers in _capture_json (the text of
# one JSON object without its closing brace), begun by capture_start with
# what the plan says about the host, and written by capture_finish. Every
# value it adds was read on the host; no secret is ever added (the token is
# only hashed). Actions only: they run one after the other in one shell.

# _capture_str TEXT: sets _capture_s to TEXT as a JSON string (quotes
# included). Refuses a control character: facts hold paths and versions only.
_capture_str() {
	case $1 in
	*"$_rw_nl"*)
		rw_hint "a path or version with a line break cannot be a fact: rename the file (or correct the plan's path) and run this script again"
		rw_fail "refusing to record a value with a newline in the facts file"
		;;
	esac
	_capture_s=$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')
	_capture_s="\"$_capture_s\""
}

# _capture_add KEY JSON: add "KEY": JSON to the facts.
_capture_add() {
	_capture_json="$_capture_json,\"$1\":$2"
}

# _capture_size FILE: sets _capture_n to the size of FILE in bytes.
_capture_size() {
	_capture_n=$(wc -c <"$1" | tr -d ' \t')
	case $_capture_n in
	'' | *[!0-9]*)
		rw_hint "check that $1 is a readable file (ls -l $1), then run this script again"
		rw_fail "could not measure $1"
		;;
	esac
}

# capture_start DIR FILE HEAD: create DIR (the capture folder, root only) and
# the folder of FILE, and begin the facts with HEAD (what the plan says about
# this host, as the start of a JSON object, written by rewind prepare).
capture_start() {
	_capture_file=$2
	_capture_json=$3
	_capture_umask=$(umask)
	umask 077
	if [ ! -d "$1" ]; then rw_run mkdir -p "$1"; fi
	if [ ! -d "${2%/*}" ]; then rw_run mkdir -p "${2%/*}"; fi
	umask "$_capture_umask"
	rw_ok "capture folder $1 (root only)"
}

# capture_version BIN: record the version BIN --version prints.
capture_version() {
	rw_rke2_version "$1"
	_capture_str "$_rw_ver"
	_capture_add version "$_capture_s"
	rw_ok "$1 --version: $_rw_ver"
}

# _capture_grep KEY FILE...: sets _capture_at to the first FILE:LINE where the
# top-level YAML KEY is set (empty: none).
_capture_grep() {
	_capture_key=$1
	shift
	_capture_at=
	for _capture_f in "$@"; do
		if [ ! -f "$_capture_f" ]; then continue; fi
		if [ ! -r "$_capture_f" ]; then
			rw_hint "run the step as root (sudo sh …), or give root read access to $_capture_f, then run this script again"
			rw_fail "cannot read $_capture_f"
		fi
		_capture_m=$(grep -n -E -e "^(${_capture_key}|\"${_capture_key}\"|'${_capture_key}')[[:space:]]*:" -- "$_capture_f") || _capture_m=
		if [ -n "$_capture_m" ]; then
			_capture_at=$_capture_f:${_capture_m%%:*}
		fi
	done
}

# _capture_env VAR FILE...: sets _capture_at to the last FILE that sets VAR.
_capture_env() {
	_capture_var=$1
	shift
	_capture_at=
	for _capture_f in "$@"; do
		if [ ! -f "$_capture_f" ]; then continue; fi
		if grep -q -E -e "^[[:space:]]*(export[[:space:]]+)?${_capture_var}=" -- "$_capture_f"; then
			_capture_at=$_capture_f
		fi
	done
}

# capture_config CONFIG_DIR UNIT UNIT_ENV: record whether a `server:` entry
# (or <ENV>_URL: RKE2_URL, K3S_URL) is set, and where the token the product
# uses comes from: a token-file or token setting in the config files or the
# unit's environment files (<ENV>_TOKEN_FILE, <ENV>_TOKEN), else
# server/token. Values are never read, only where they are set.
capture_config() {
	set -- "$1" "$2" "$3" "$1/config.yaml" "$1"/config.yaml.d/*.yaml "$1"/config.yaml.d/*.yml
	_capture_cfg=$1
	_capture_unit=$2
	_capture_uenv=$3
	shift 3
	_capture_grep server "$@"
	_capture_srv=$_capture_at
	if [ -z "$_capture_srv" ]; then
		_capture_env "${REWIND_ENV}_URL" "/etc/default/$_capture_unit" "/etc/sysconfig/$_capture_unit" "$_capture_uenv"
		_capture_srv=$_capture_at
	fi
	if [ -n "$_capture_srv" ]; then
		_capture_add server-entry true
		rw_ok "a server: entry (or ${REWIND_ENV}_URL) is set in $_capture_srv"
	else
		_capture_add server-entry false
		rw_ok "no server: entry in $_capture_cfg and no ${REWIND_ENV}_URL for $_capture_unit"
	fi
	_capture_src=server/token
	_capture_grep token "$@"
	if [ -n "$_capture_at" ]; then _capture_src=config:token; fi
	_capture_grep token-file "$@"
	if [ -n "$_capture_at" ]; then _capture_src=config:token-file; fi
	if [ "$_capture_src" = server/token ]; then
		_capture_env "${REWIND_ENV}_TOKEN" "/etc/default/$_capture_unit" "/etc/sysconfig/$_capture_unit" "$_capture_uenv"
		if [ -n "$_capture_at" ]; then _capture_src=env:${REWIND_ENV}_TOKEN; fi
		_capture_env "${REWIND_ENV}_TOKEN_FILE" "/etc/default/$_capture_unit" "/etc/sysconfig/$_capture_unit" "$_capture_uenv"
		if [ -n "$_capture_at" ]; then _capture_src=env:${REWIND_ENV}_TOKEN_FILE; fi
	fi
	_capture_add token-source "\"$_capture_src\""
	rw_ok "the token $_capture_unit uses comes from $_capture_src (not shown)"
}

# _capture_keep FILE SUFFIX: an existing FILE (an older backup or token, or
# an earlier capture's) is moved aside to FILE.SUFFIX, never overwritten.
_capture_keep() {
	if [ -e "$1" ] || [ -L "$1" ]; then
		rw_say "$1 exists: it is kept as $1.$2"
		rw_move_aside "$1" "$1.$2"
	fi
}

# capture_token TOKEN SAVED SUFFIX: copy the server token TOKEN to SAVED,
# readable by root only, and record SAVED and its sha256 (an existing SAVED
# is moved aside to SAVED.SUFFIX). The token is never printed.
capture_token() {
	rw_hint "this server has no $1: is it a $REWIND_PRODUCT server that has started once? Check the plan's data-dir and the node's role"
	rw_need_file "$1"
	rw_hint
	if [ ! -s "$1" ]; then rw_fail "the server token $1 is empty"; fi
	_capture_umask=$(umask)
	umask 077
	if [ ! -d "${2%/*}" ]; then rw_run mkdir -p "${2%/*}"; fi
	rw_run cp "$1" "$2.partial"
	umask "$_capture_umask"
	rw_run chmod 600 "$2.partial"
	_capture_keep "$2" "$3"
	rw_run mv "$2.partial" "$2"
	if rw_dry; then
		rw_would "record the sha256 of $2 (the token is never shown)"
		return 0
	fi
	if ! cmp -s "$1" "$2"; then rw_fail "the copy $2 differs from $1 (full disk?)"; fi
	if ! rw_sha256 "$2"; then
		rw_hint "check that $2 is readable and that sha256sum (or shasum) works on this host, then run this script again"
		rw_fail "could not read $2"
	fi
	_capture_str "$2"
	_capture_add token "{\"file\":$_capture_s,\"sha256\":\"$_rw_sha\"}"
	rw_ok "server token saved to $2 (root only; sha256 $_rw_sha; token not shown)"
}

# _capture_record KIND FILE: record FILE as this host's backup, with its size
# and sha256.
_capture_record() {
	_capture_size "$2"
	if ! rw_sha256 "$2"; then
		rw_hint "check that $2 is readable and that sha256sum (or shasum) works on this host, then run this script again"
		rw_fail "could not read $2"
	fi
	_capture_str "$2"
	_capture_add backup "{\"kind\":\"$1\",\"path\":$_capture_s,\"size\":$_capture_n,\"sha256\":\"$_rw_sha\"}"
	rw_ok "backup $2: $_capture_n bytes, sha256 $_rw_sha"
}

# capture_backup KIND FILE: record FILE (a backup another function wrote, or
# an RKE1 snapshot on an etcd node) as this host's backup of KIND.
capture_backup() {
	if rw_dry; then
		rw_would "record the size and sha256 of $2"
		return 0
	fi
	rw_need_file "$2"
	_capture_record "$1" "$2"
}

# capture_etcd BIN DATA_DIR NAME UNIT FLAG...: take an on-demand etcd
# snapshot named NAME (`BIN etcd-snapshot save FLAG...`, which asks the
# server running as UNIT: rke2-server, or k3s; FLAG: the S3 upload, its keys
# from the environment), find the file it wrote in
# DATA_DIR/server/db/snapshots (NAME-<node>-<time>, .zip when compressed; the
# latest if a re-run took another), check its sha256 trailer, and record it.
capture_etcd() {
	_capture_bin=$1
	_capture_dd=$2
	_capture_dir=$2/server/db/snapshots
	_capture_name=$3
	_capture_unit=$4
	shift 4
	rw_hint "$_capture_unit must be running on this host to take the snapshot: start it (systemctl start $_capture_unit), then run this script again"
	rw_run "$_capture_bin" etcd-snapshot save --data-dir "$_capture_dd" --name "$_capture_name" ${1+"$@"}
	if rw_dry; then
		rw_would "find $_capture_dir/$_capture_name-*, check its sha256 trailer and record it"
		return 0
	fi
	_capture_snap=
	for _capture_f in "$_capture_dir/$_capture_name"-*; do
		if [ ! -f "$_capture_f" ]; then continue; fi
		# The glob is sorted: the last is the latest time (same digits).
		_capture_snap=$_capture_f
	done
	if [ -z "$_capture_snap" ]; then
		rw_hint "look for the snapshot with: $_capture_bin etcd-snapshot ls; a custom etcd-snapshot-dir is not read by this capture"
		rw_fail "no snapshot named $_capture_name-* in $_capture_dir after $_capture_bin etcd-snapshot save"
	fi
	check_etcd_snapshot "$_capture_snap"
	_capture_record etcd "$_capture_snap"
}

# capture_sqlite DB COPY SUFFIX: a consistent online copy of the SQLite
# database DB (`sqlite3 DB .backup`, never a cp of a live file) into COPY,
# root only, checked with PRAGMA integrity_check, then recorded (an existing
# COPY is moved aside to COPY.SUFFIX).
capture_sqlite() {
	rw_need_tool sqlite3 "to copy the live database $1 consistently (.backup)"
	rw_need_file "$1"
	case $2 in
	*"'"*) rw_fail "the copy's path $2 holds a single quote, which sqlite3's .backup cannot take" ;;
	esac
	_capture_umask=$(umask)
	umask 077
	if [ ! -d "${2%/*}" ]; then rw_run mkdir -p "${2%/*}"; fi
	rw_run sqlite3 "$1" ".backup '$2.partial'"
	umask "$_capture_umask"
	if rw_dry; then
		rw_would "check $2 (PRAGMA integrity_check = ok) and record it"
		return 0
	fi
	_capture_rc=0
	_capture_out=$(sqlite3 "$2.partial" 'PRAGMA integrity_check;' 2>&1) || _capture_rc=$?
	if [ "$_capture_rc" -ne 0 ] || [ "$_capture_out" != ok ]; then
		rw_fail "the copy $2.partial fails PRAGMA integrity_check (sqlite3 exit $_capture_rc): ${_capture_out%%"$_rw_nl"*}"
	fi
	rw_ok "$2.partial: integrity_check: ok"
	_capture_keep "$2" "$3"
	rw_run mv "$2.partial" "$2"
	_capture_record sqlite "$2"
}

# capture_rke1_snapshot BIN CONFIG NAME: `BIN etcd snapshot-save --name NAME
# --config CONFIG` (each etcd node keeps /opt/rke/etcd-snapshots/NAME.zip,
# which its own capture script then records).
capture_rke1_snapshot() {
	rw_hint "rke could not take the snapshot: check that every etcd node is up and reachable over SSH, then run this script again"
	rw_run "$1" etcd snapshot-save --name "$3" --config "$2"
}

# capture_rke1_file DIR NAME: record DIR/NAME.zip (or DIR/NAME), the RKE1
# snapshot `rke etcd snapshot-save` left on this etcd node.
capture_rke1_file() {
	if rw_dry; then
		rw_would "record the size and sha256 of $1/$2.zip"
		return 0
	fi
	_capture_snap=$1/$2.zip
	if [ ! -f "$_capture_snap" ] && [ -f "$1/$2" ]; then _capture_snap=$1/$2; fi
	rw_hint "run the workstation's snapshot step first (rke etcd snapshot-save), then run this script again"
	rw_need_file "$_capture_snap"
	rw_hint
	_capture_record rke1 "$_capture_snap"
}

# capture_finish: write the facts file (through a temporary name).
capture_finish() {
	if rw_dry; then
		rw_would "write the facts file $_capture_file"
		return 0
	fi
	printf '%s}\n' "$_capture_json" >"$_capture_file.partial" ||
		rw_fail "could not write $_capture_file.partial"
	rw_run mv "$_capture_file.partial" "$_capture_file"
	rw_ok "facts written to $_capture_file: copy it (and the backup, and the saved token) off this host"
}
