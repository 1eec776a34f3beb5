# ---- rewind runtime library: sqlite -------------------------------------------------
# RKE2 with SQLite (kine, single server): checking the backup and putting it
# in place of server/db/state.db.
#
# The swap (with rke2 stopped): copy the backup next to the database, move
# the database and its -wal/-shm/-journal side files aside (stale side files
# of the newer database would be replayed into the old one), rename the copy
# into place (same filesystem, atomic), then check it. The checks open the
# file as an `immutable=1` URI, so that sqlite3 creates no -wal/-shm files
# beside a backup.

# check_sqlite_db FILE: `PRAGMA integrity_check` prints `ok` (when sqlite3 is
# present; otherwise says it could not check).
check_sqlite_db() {
	rw_check_op check_sqlite_db ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	rw_hint "copy the backup the plan restores ([snapshot] path: the copy of server/db/state.db taken before the upgrade) to $1 on this host, then run this script again"
	rw_need_file "$1"
	rw_hint
	if ! command -v sqlite3 >/dev/null 2>&1; then
		rw_warn "sqlite3 is not installed: $1 could not be checked (PRAGMA integrity_check)"
		return 0
	fi
	_csd_uri=$(printf '%s' "$1" | sed 's/%/%25/g; s/?/%3f/g; s/#/%23/g')
	_csd_rc=0
	_csd_out=$(sqlite3 "file:$_csd_uri?immutable=1" 'PRAGMA integrity_check;' 2>&1) || _csd_rc=$?
	if [ "$_csd_rc" -ne 0 ] || [ "$_csd_out" != ok ]; then
		rw_hint "the backup is damaged or is not an SQLite database: copy it again, or choose another backup in the plan"
		rw_fail "$1 fails PRAGMA integrity_check (sqlite3 exit $_csd_rc): ${_csd_out%%"$_rw_nl"*}"
	fi
	rw_ok "$1: integrity_check: ok"
}

# restore_sqlite BACKUP DB SUFFIX: move DB and its -wal/-shm/-journal aside
# (to <name>.SUFFIX), copy BACKUP in through a temporary name, check the copy.
restore_sqlite() {
	_rsq_b=$1
	_rsq_db=$2
	_rsq_sfx=$3
	rw_need_file "$_rsq_b"
	rw_need_abs "$_rsq_db"
	_rsq_new=$_rsq_db.$_rsq_sfx.new
	if [ -f "$_rsq_db" ] && cmp -s "$_rsq_b" "$_rsq_db" && [ ! -e "$_rsq_db-wal" ] &&
		[ ! -e "$_rsq_db-shm" ] && [ ! -e "$_rsq_db-journal" ]; then
		rw_say "$_rsq_db is already a copy of $_rsq_b"
	else
		if [ ! -d "${_rsq_db%/*}" ]; then rw_run mkdir -p "${_rsq_db%/*}"; fi
		rw_hint "nothing was moved yet: free space on that filesystem, then run this script again"
		_rsq_umask=$(umask)
		umask 077
		rw_run cp "$_rsq_b" "$_rsq_new"
		umask "$_rsq_umask"
		if ! rw_dry && ! cmp -s "$_rsq_b" "$_rsq_new"; then
			rw_fail "the copy $_rsq_new differs from $_rsq_b (full disk?); nothing was moved yet"
		fi
		rw_hint
		for _rsq_s in '' -wal -shm -journal; do
			rw_move_aside "$_rsq_db$_rsq_s" "$_rsq_db$_rsq_s.$_rsq_sfx"
		done
		rw_hint "the previous database is in $_rsq_db.$_rsq_sfx; to undo, move it back under its name"
		rw_run mv "$_rsq_new" "$_rsq_db"
	fi
	if rw_dry; then
		rw_would "check the restored database (PRAGMA integrity_check = ok, kine has rows)"
		return 0
	fi
	if ! command -v sqlite3 >/dev/null 2>&1; then
		rw_warn "sqlite3 is not installed: the restored database is a byte-identical copy of the backup, but was not opened"
		rw_ok "${_rsq_db##*/} restored"
		return 0
	fi
	_rsq_uri=$(printf '%s' "$_rsq_db" | sed 's/%/%25/g; s/?/%3f/g; s/#/%23/g')
	_rsq_rc=0
	_rsq_out=$(sqlite3 "file:$_rsq_uri?immutable=1" 'PRAGMA integrity_check;' 2>&1) || _rsq_rc=$?
	if [ "$_rsq_rc" -ne 0 ] || [ "$_rsq_out" != ok ]; then
		rw_fail "the restored $_rsq_db fails PRAGMA integrity_check (sqlite3 exit $_rsq_rc): ${_rsq_out%%"$_rw_nl"*}"
	fi
	rw_ok "integrity_check: ok"
	_rsq_rc=0
	_rsq_out=$(sqlite3 "file:$_rsq_uri?immutable=1" 'SELECT count(*) FROM kine;' 2>&1) || _rsq_rc=$?
	case $_rsq_out in
	'' | *[!0-9]*) rw_fail "could not count the rows of table kine in $_rsq_db (sqlite3 exit $_rsq_rc): ${_rsq_out%%"$_rw_nl"*}" ;;
	esac
	if [ "$_rsq_out" -eq 0 ]; then
		rw_fail "table kine in the restored $_rsq_db is empty: this backup holds no cluster data"
	fi
	rw_ok "${_rsq_db##*/} restored; kine has $_rsq_out rows"
}
