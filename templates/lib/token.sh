# ---- rewind runtime library: token ----------------------------------------------
# The server token saved with the backup. It encrypts the bootstrap data
# (CA keys, secrets) inside the datastore: a restore with another token is
# unreadable ("bootstrap data already found and encrypted with different
# token"). The token is a secret: it is only ever compared by hash, never
# printed, never on a command line.

# check_token FILE [HEX]: the saved token exists, is not empty, and hashes to
# HEX when given.
check_token() {
	rw_check_op check_token ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	rw_hint "copy the server token saved with the snapshot (the cluster's server/token file, /var/lib/rancher/rke2/server/token by default, as it was when the snapshot was taken) to $1 on this host, readable by root only; then run this script again"
	rw_need_file "$1"
	if [ ! -s "$1" ]; then
		rw_fail "the saved token $1 is empty"
	fi
	if [ -n "${2:-}" ]; then
		rw_lower "$2"
		rw_sha256 "$1" || rw_fail "could not read the saved token $1"
		if [ "$_rw_sha" != "$_rw_lc" ]; then
			rw_hint "copy the token that was saved with this backup (the server/token file of the time), then run this script again"
			rw_fail "the saved token $1 does not match the sha256 in the plan (the token itself is not shown)"
		fi
		rw_ok "saved token $1 present, sha256 matches (token not shown)"
	else
		rw_ok "saved token $1 present (token not shown)"
	fi
}

# put_token SAVED DEST SUFFIX: make DEST hold the saved token. A DEST with
# another token is moved aside to DEST.SUFFIX; the copy is made readable by
# root only (umask 077, then chmod 600).
put_token() {
	_pt_src=$1
	_pt_dest=$2
	rw_need_file "$_pt_src"
	if [ ! -s "$_pt_src" ]; then
		rw_fail "the saved token $_pt_src is empty"
	fi
	rw_sha256 "$_pt_src" || rw_fail "could not read the saved token $_pt_src"
	_pt_want=$_rw_sha
	if [ -f "$_pt_dest" ]; then
		rw_sha256 "$_pt_dest" || rw_fail "could not read $_pt_dest"
		if [ "$_rw_sha" = "$_pt_want" ]; then
			rw_ok "$_pt_dest already holds the saved token (not shown)"
			return 0
		fi
		rw_say "$_pt_dest holds another token: it is moved aside"
	fi
	if [ -e "$_pt_dest" ] || [ -e "$_pt_dest.$3" ]; then
		rw_move_aside "$_pt_dest" "$_pt_dest.$3"
	fi
	case $_pt_dest in
	*/*)
		if [ ! -d "${_pt_dest%/*}" ]; then rw_run mkdir -p "${_pt_dest%/*}"; fi
		;;
	esac
	_pt_umask=$(umask)
	umask 077
	rw_run cp "$_pt_src" "$_pt_dest"
	umask "$_pt_umask"
	rw_run chmod 600 "$_pt_dest"
	if rw_dry; then return 0; fi
	rw_sha256 "$_pt_dest" || rw_fail "could not read $_pt_dest back"
	if [ "$_rw_sha" != "$_pt_want" ]; then
		rw_fail "$_pt_dest does not hold the saved token after the copy (full disk?)"
	fi
	rw_ok "$_pt_dest holds the saved token (not shown)"
}
