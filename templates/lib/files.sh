# ---- rewind runtime library: files ----------------------------------------------
# Generic preflight checks (tools, environment variables, files, folders,
# hashes, free space) and the one generic action, move_aside. The checks are
# read-only and report everything they find missing at once, so that the
# operator fixes a host in one go.

# need_tools TOOL...: every tool is on PATH.
need_tools() {
	rw_check_op need_tools ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	_nt_missing=
	for _nt_t in ${1+"$@"}; do
		if ! command -v "$_nt_t" >/dev/null 2>&1; then
			_nt_missing="$_nt_missing $_nt_t"
		fi
	done
	if [ -n "$_nt_missing" ]; then
		rw_hint "install them, or put the folder that holds them on PATH, and run this script again"
		rw_fail "missing tools:$_nt_missing"
	fi
	rw_ok "tools present: $*"
}

# need_env VAR...: every variable is set and not empty. Values are secrets
# (S3 keys, database passwords): only names are ever printed.
need_env() {
	rw_check_op need_env ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	_ne_missing=
	for _ne_v in ${1+"$@"}; do
		case $_ne_v in
		'' | [0-9]* | *[!A-Za-z0-9_]*)
			rw_hint "this is a bug of rewind: report it with the plan"
			rw_fail "internal error: not a variable name: $_ne_v"
			;;
		esac
		eval "_ne_val=\${$_ne_v:-}"
		if [ -z "$_ne_val" ]; then _ne_missing="$_ne_missing $_ne_v"; fi
	done
	_ne_val=
	if [ -n "$_ne_missing" ]; then
		rw_hint "export them in this shell (they are read at run time and never written anywhere), then run this script again"
		rw_fail "environment variables not set:$_ne_missing"
	fi
	rw_ok "environment variables set: $*"
}

# need_file PATH: a readable regular file.
need_file() {
	rw_check_op need_file ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	rw_need_file "$1"
	rw_ok "file present: $1"
}

# need_dir PATH: a directory.
need_dir() {
	rw_check_op need_dir ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	if [ ! -d "$1" ]; then
		rw_hint "create or copy the folder the plan names at $1 on this host (the README's section of this step says what it holds), then run this script again"
		rw_fail "folder not found: $1"
	fi
	rw_ok "folder present: $1"
}

# check_sha256 PATH HEX: the file's sha256 is HEX.
check_sha256() {
	rw_check_op check_sha256 ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	rw_need_file "$1"
	rw_lower "$2"
	_cs_want=$_rw_lc
	rw_say "computing the sha256 of $1"
	rw_hint "check that $1 can be read (cat $1 >/dev/null): a disk error or a file being written; copy it again, then run this script again"
	rw_sha256 "$1" || rw_fail "could not read $1 to compute its sha256"
	if [ "$_rw_sha" != "$_cs_want" ]; then
		rw_hint "the file is damaged or is not the one named in the plan: copy it again and compare with the hash in the plan"
		rw_fail "sha256 mismatch for $1: expected $_cs_want, got $_rw_sha"
	fi
	rw_ok "sha256 of $1 matches"
}

# check_room FILE DIR: DIR's filesystem has room for a copy of FILE. DIR may
# not exist yet: its nearest existing parent is measured.
check_room() {
	rw_check_op check_room ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	# $1 and $2 are replaced by the fields of df's line below.
	_cr_src=$1
	_cr_to=$2
	rw_hint "measure it by hand (du -sk $1; df -Pk $2) and free room if needed; a read error means the file or disk is damaged"
	if [ -d "$1" ]; then
		_cr_need=$(du -sk "$1" 2>/dev/null) || rw_fail "could not measure $1 (du -sk)"
		_cr_need=${_cr_need%%[!0-9]*}
	else
		rw_need_file "$1"
		_cr_bytes=$(wc -c <"$1" | tr -d ' \t')
		case $_cr_bytes in
		'' | *[!0-9]*) rw_fail "could not measure $1" ;;
		esac
		_cr_need=$(((_cr_bytes + 1023) / 1024))
	fi
	_cr_dir=$2
	while [ ! -d "$_cr_dir" ]; do
		case $_cr_dir in
		*/*) _cr_dir=${_cr_dir%/*} ;;
		*) _cr_dir=. ;;
		esac
		if [ -z "$_cr_dir" ]; then _cr_dir=/; fi
	done
	# -P: one line per filesystem even with a long device name.
	_cr_df=$(df -Pk "$_cr_dir" 2>/dev/null | sed -n '2p') || _cr_df=
	set -f
	# shellcheck disable=SC2086 # split df's line into its fields
	set -- $_cr_df
	set +f
	_cr_avail=${4:-}
	case $_cr_avail in
	'' | *[!0-9]*) rw_fail "could not read the free space of $_cr_dir (df -Pk)" ;;
	esac
	if [ "$_cr_avail" -lt "$_cr_need" ]; then
		rw_hint "free some space on that filesystem (do not delete the backups), then run this script again"
		rw_fail "not enough room on the filesystem of $_cr_dir: need $_cr_need KiB for $_cr_src, $_cr_avail KiB free"
	fi
	rw_ok "room for $_cr_src in $_cr_to ($_cr_need KiB needed, $_cr_avail KiB free)"
}

# move_aside PATH SUFFIX: rename PATH to PATH.SUFFIX; a re-run after the move
# says so instead of failing.
move_aside() {
	rw_move_aside "$1" "$1.$2"
}
