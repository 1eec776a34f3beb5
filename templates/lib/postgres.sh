# ---- rewind runtime library: postgres -----------------------------------------------
# RKE2 on an external PostgreSQL: checking the `pg_dump -Fc` archive and
# restoring it.
#
# `pg_restore --clean` alone drops only the objects that are in the archive:
# a table created after the dump would survive. `--create` with `-d postgres`
# drops and recreates the whole database instead, so it comes back exactly as
# dumped; it recreates the database named IN THE ARCHIVE, hence the name
# check. The password comes from PGPASSWORD or ~/.pgpass (--no-password: a
# prompt would hang an unattended run); an empty HOST, PORT or USER argument
# leaves that to the client's default.

# check_pg_archive FILE: `pg_restore -l FILE` accepts it.
check_pg_archive() {
	rw_need_file "$1"
	rw_need_tool pg_restore "to read the PostgreSQL archive"
	_cpa_rc=0
	_cpa_out=$(pg_restore -l "$1" 2>&1) || _cpa_rc=$?
	if [ "$_cpa_rc" -ne 0 ]; then
		rw_hint "the file must be a custom-format dump (pg_dump -Fc); a plain SQL dump is replayed with psql instead"
		rw_quote_cmd pg_restore -l "$1"
		rw_fail_cmd "$_cpa_rc" "$1 is not a readable pg_restore archive: ${_cpa_out%%"$_rw_nl"*}"
	fi
	# -l reads only the table of contents: a cut or damaged archive passes it.
	# Converting the whole archive to SQL (no server involved) reads and
	# decompresses every data block.
	_cpa_rc=0
	_cpa_out2=$(pg_restore -f /dev/null "$1" 2>&1) || _cpa_rc=$?
	if [ "$_cpa_rc" -ne 0 ]; then
		rw_hint "the archive is incomplete or damaged (an interrupted copy?): copy it again, or choose another dump in the plan"
		rw_quote_cmd pg_restore -f /dev/null "$1"
		rw_fail_cmd "$_cpa_rc" "$1 cannot be read to the end: ${_cpa_out2%%"$_rw_nl"*}"
	fi
	_cpa_db=$(printf '%s\n' "$_cpa_out" | sed -n 's/^;[[:space:]]*dbname:[[:space:]]*//p' | sed -n 1p)
	rw_ok "$1 is a pg_restore archive${_cpa_db:+ of database $_cpa_db}"
}

# restore_postgres FILE HOST PORT USER DATABASE: drop and recreate DATABASE
# from the archive, then check that table kine is not empty.
restore_postgres() {
	rw_need_file "$1"
	rw_need_tool pg_restore "to restore the PostgreSQL archive"
	rw_need_tool psql "to check the restored database"
	_rp_rc=0
	_rp_list=$(pg_restore -l "$1" 2>&1) || _rp_rc=$?
	if [ "$_rp_rc" -ne 0 ]; then
		rw_quote_cmd pg_restore -l "$1"
		rw_fail_cmd "$_rp_rc" "$1 is not a readable pg_restore archive: ${_rp_list%%"$_rw_nl"*}"
	fi
	_rp_db=$(printf '%s\n' "$_rp_list" | sed -n 's/^;[[:space:]]*dbname:[[:space:]]*//p' | sed -n 1p)
	if [ -n "$_rp_db" ] && [ "$_rp_db" != "$5" ]; then
		rw_fail "$1 is a dump of database $_rp_db, not $5: pg_restore --create would recreate $_rp_db"
	fi
	rw_hint "pg_restore stopped at the first error (above). Every rke2 server must be stopped (a connected client blocks DROP DATABASE); the password comes from PGPASSWORD or ~/.pgpass"
	rw_run pg_restore --clean --if-exists --create --exit-on-error --no-password \
		${2:+"--host=$2"} ${3:+"--port=$3"} ${4:+"--username=$4"} -d postgres "$1"
	if rw_dry; then
		rw_would "check that table kine in database $5 is not empty"
		return 0
	fi
	_rp_rc=0
	_rp_n=$(psql -X -w -A -t -v ON_ERROR_STOP=1 ${2:+"--host=$2"} ${3:+"--port=$3"} ${4:+"--username=$4"} \
		"--dbname=$5" -c 'SELECT count(*) FROM kine' 2>&1) || _rp_rc=$?
	case $_rp_n in
	'' | *[!0-9]*)
		rw_quote_cmd psql ${2:+"--host=$2"} ${3:+"--port=$3"} ${4:+"--username=$4"} "--dbname=$5" -c 'SELECT count(*) FROM kine'
		rw_fail_cmd "$_rp_rc" "could not count the rows of table kine: ${_rp_n%%"$_rw_nl"*}"
		;;
	esac
	if [ "$_rp_n" -eq 0 ]; then
		rw_fail "table kine in database $5 is empty after the restore: this dump holds no cluster data"
	fi
	rw_ok "database restored; kine has $_rp_n rows"
}
