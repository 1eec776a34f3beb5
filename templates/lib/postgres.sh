# ---- rewind runtime library: postgres -----------------------------------------------
# RKE2 on an external PostgreSQL: checking the `pg_dump -Fc` archive and the
# user's rights, keeping a copy of the current database, and restoring the
# archive.
#
# `pg_restore --clean` alone drops only the objects that are in the archive:
# a table created after the dump would survive. `--create` with `-d postgres`
# drops and recreates the whole database instead, so it comes back exactly as
# dumped; it recreates the database named IN THE ARCHIVE, hence the name
# check. Dropping and creating a database takes a superuser, or a role with
# CREATEDB that owns the database. Such a role cannot give objects to other
# roles, so it restores with --no-owner (everything then belongs to it), nor
# replay a GRANT made by another role (the archive then says SET SESSION
# AUTHORIZATION), so such an archive is restored with --no-acl as well;
# GRANTs it made itself are replayed. The password comes from PGPASSWORD or
# ~/.pgpass (--no-password: a prompt would hang an unattended run); an empty
# HOST, PORT or USER argument leaves that to the client's default.

# check_pg_archive FILE: `pg_restore -l FILE` accepts it.
check_pg_archive() {
	rw_check_op check_pg_archive ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	rw_hint "copy the backup the plan restores ([snapshot] path: the database dump taken before the upgrade) to $1 on this host, then run this script again"
	rw_need_file "$1"
	rw_hint
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

# check_pg_restore FILE HOST PORT USER DATABASE COPY: before anything is
# dropped, the archive is of DATABASE, the folder of COPY can take the copy
# of the current database, and USER may drop and recreate DATABASE: a
# superuser, or CREATEDB and (when DATABASE exists) its owner.
check_pg_restore() {
	rw_check_op check_pg_restore ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	rw_hint "copy the backup the plan restores ([snapshot] path: the database dump taken before the upgrade) to $1 on this host, then run this script again"
	rw_need_file "$1"
	rw_hint
	rw_need_tool pg_restore "to restore the PostgreSQL archive"
	rw_need_tool psql "to check the database user's rights"
	rw_need_tool pg_dump "to keep a copy of the current database before it is dropped"
	rw_need_abs "$6"
	_cpr_rc=0
	_cpr_list=$(pg_restore -l "$1" 2>&1) || _cpr_rc=$?
	if [ "$_cpr_rc" -ne 0 ]; then
		rw_hint "the file must be a custom-format dump (pg_dump -Fc); a plain SQL dump is replayed with psql instead"
		rw_quote_cmd pg_restore -l "$1"
		rw_fail_cmd "$_cpr_rc" "$1 is not a readable pg_restore archive: ${_cpr_list%%"$_rw_nl"*}"
	fi
	_cpr_db=$(printf '%s\n' "$_cpr_list" | sed -n 's/^;[[:space:]]*dbname:[[:space:]]*//p' | sed -n 1p)
	if [ -n "$_cpr_db" ] && [ "$_cpr_db" != "$5" ]; then
		rw_hint "name the dump of database $5 in the plan, or correct [datastore] database if the cluster's database is $_cpr_db, and compile again"
		rw_fail "$1 is a dump of database $_cpr_db, not $5: pg_restore --create would recreate $_cpr_db"
	fi
	if [ -e "$6" ] || [ -L "$6" ]; then
		rw_ok "a copy of database $5 made by an earlier run is kept in $6"
	elif [ ! -d "${6%/*}/" ] || [ ! -w "${6%/*}/" ]; then
		rw_hint "the copy of the current database is written beside the dump; make ${6%/*} writable, or copy the dump to a writable folder and name it in the plan"
		rw_fail "cannot write the copy of database $5 before it is dropped: ${6%/*} is not a writable folder"
	fi
	# One row, its fields on separate lines: flags (superuser, CREATEDB,
	# database exists, owns it or is a member of its owner), the user, the owner.
	_cpr_rc=0
	_cpr_out=$(printf '%s\n' "SELECT CASE WHEN r.rolsuper THEN 's' ELSE '-' END || CASE WHEN r.rolcreatedb THEN 'c' ELSE '-' END || CASE WHEN d.oid IS NULL THEN '-' ELSE 'e' END || CASE WHEN d.oid IS NOT NULL AND pg_has_role(d.datdba, 'USAGE') THEN 'o' ELSE '-' END, current_user, COALESCE(pg_get_userbyid(d.datdba), '') FROM pg_roles r LEFT JOIN pg_database d ON d.datname = :'db' WHERE r.rolname = current_user" |
		psql -X -w -q -A -t -F "$_rw_nl" -v ON_ERROR_STOP=1 ${2:+"--host=$2"} ${3:+"--port=$3"} ${4:+"--username=$4"} \
			-v "db=$5" --dbname=postgres 2>&1) || _cpr_rc=$?
	_cpr_flags=${_cpr_out%%"$_rw_nl"*}
	case $_cpr_rc:$_cpr_flags in
	0:[s-][c-][e-][o-]) ;;
	*)
		rw_hint "check the host, port and user of the plan and the password (PGPASSWORD or ~/.pgpass); the restore connects to the database postgres"
		rw_quote_cmd psql ${2:+"--host=$2"} ${3:+"--port=$3"} ${4:+"--username=$4"} --dbname=postgres
		rw_fail_cmd "$_cpr_rc" "could not read the rights of PostgreSQL user ${4:-(default)}: ${_cpr_out%%"$_rw_nl"*}"
		;;
	esac
	_cpr_rest=${_cpr_out#*"$_rw_nl"}
	_cpr_user=${_cpr_rest%%"$_rw_nl"*}
	_cpr_owner=${_cpr_rest#*"$_rw_nl"}
	_cpr_qu=\"$(printf '%s' "$_cpr_user" | sed 's/"/""/g')\"
	_cpr_qd=\"$(printf '%s' "$5" | sed 's/"/""/g')\"
	case $_cpr_flags in
	s*)
		rw_ok "PostgreSQL user $_cpr_user is a superuser: it may drop and recreate database $5, with owners and privileges as dumped"
		return 0
		;;
	esac
	_cpr_miss=
	_cpr_fix=
	case $_cpr_flags in
	?c*) ;;
	*)
		_cpr_miss="the CREATEDB attribute"
		_cpr_fix="ALTER ROLE $_cpr_qu CREATEDB;"
		;;
	esac
	case $_cpr_flags in
	??eo | ??-?) ;;
	*)
		_cpr_miss="$_cpr_miss${_cpr_miss:+ and }the ownership of database $5 (owned by $_cpr_owner)"
		_cpr_fix="$_cpr_fix${_cpr_fix:+ }ALTER DATABASE $_cpr_qd OWNER TO $_cpr_qu;"
		;;
	esac
	if [ -n "$_cpr_miss" ]; then
		rw_hint "as a superuser: $_cpr_fix (or name a superuser as user in the plan); then run this script again"
		rw_fail "PostgreSQL user $_cpr_user lacks $_cpr_miss: the restore must drop database $5 and create it again; nothing was changed"
	fi
	rw_ok "PostgreSQL user $_cpr_user has CREATEDB and owns database $5: the restore runs with --no-owner, so every object belongs to $_cpr_user"
	_cpr_others=$(printf '%s\n' "$_cpr_list" | sed -n 's/^[0-9][0-9]*;.* \([^ ][^ ]*\)$/\1/p' | sort -u | grep -v -x -F -e "$_cpr_user" -e pg_database_owner | tr '\n' ' ') || true
	if [ -n "$_cpr_others" ]; then
		rw_warn "objects that the dump gives to other roles ( $_cpr_others) will belong to $_cpr_user: as a superuser, give them back with ALTER ... OWNER TO"
	fi
	# GRANTs made by another role than the object's owner: not replayable.
	_cpr_acl=$(printf '%s\n' "$_cpr_list" | grep '^[0-9][0-9]*; [0-9][0-9]* [0-9][0-9]* ACL ') || true
	if [ -n "$_cpr_acl" ]; then
		_cpr_rc=0
		_cpr_sql=$(printf '%s\n' "$_cpr_acl" | pg_restore -f - -L /dev/stdin "$1" 2>&1) || _cpr_rc=$?
		if [ "$_cpr_rc" -ne 0 ]; then
			rw_quote_cmd pg_restore -f - -L /dev/stdin "$1"
			rw_fail_cmd "$_cpr_rc" "could not read the GRANTs of $1: ${_cpr_sql%%"$_rw_nl"*}"
		fi
		case $_cpr_sql in
		*'SET SESSION AUTHORIZATION'*)
			rw_warn "the dump holds GRANTs made by other roles, which only a superuser can replay: the restore runs with --no-acl too, and none of its GRANTs are restored (pg_restore -l $1 lists them)"
			;;
		esac
	fi
}

# save_postgres HOST PORT USER DATABASE COPY: keep a copy of the current
# DATABASE in COPY (`pg_dump -Fc`, mode 0600, through COPY.partial, checked
# like the backup before the rename). An existing COPY is an earlier run's
# copy of the database before anything was dropped: it is kept, never
# overwritten. No database, nothing to keep.
save_postgres() {
	rw_need_abs "$5"
	if [ -e "$5" ] || [ -L "$5" ]; then
		rw_say "keeping the copy of database $4 made by an earlier run: $5 (not overwritten)"
		return 0
	fi
	_spg_rc=0
	_spg_n=$(printf '%s\n' "SELECT count(*) FROM pg_database WHERE datname = :'db'" |
		psql -X -w -q -A -t -v ON_ERROR_STOP=1 ${1:+"--host=$1"} ${2:+"--port=$2"} ${3:+"--username=$3"} \
			-v "db=$4" --dbname=postgres 2>&1) || _spg_rc=$?
	case $_spg_rc:$_spg_n in
	0:0) rw_say "database $4 does not exist: there is no current database to keep a copy of"; return 0 ;;
	0:1) ;;
	*)
		rw_quote_cmd psql ${1:+"--host=$1"} ${2:+"--port=$2"} ${3:+"--username=$3"} --dbname=postgres
		rw_fail_cmd "$_spg_rc" "could not tell whether database $4 exists: ${_spg_n%%"$_rw_nl"*}"
		;;
	esac
	_spg_tmp=$5.partial
	if [ -e "$_spg_tmp" ] || [ -L "$_spg_tmp" ]; then
		# An interrupted earlier copy: never renamed, so never complete.
		rw_run rm -f "$_spg_tmp"
	fi
	rw_hint "nothing was dropped: the copy of the current database could not be made (room in ${5%/*}? rights to read every table?)"
	_spg_um=$(umask)
	umask 077
	rw_run pg_dump -Fc --no-password ${1:+"--host=$1"} ${2:+"--port=$2"} ${3:+"--username=$3"} "--file=$_spg_tmp" "--dbname=$4"
	umask "$_spg_um"
	if rw_dry; then
		rw_would "check the copy like the backup (pg_restore -l, pg_restore -f /dev/null)"
	else
		_spg_rc=0
		rw_quote_cmd pg_restore -l "$_spg_tmp"
		_spg_out=$(pg_restore -l "$_spg_tmp" 2>&1) || _spg_rc=$?
		if [ "$_spg_rc" -eq 0 ]; then
			rw_quote_cmd pg_restore -f /dev/null "$_spg_tmp"
			_spg_out=$(pg_restore -f /dev/null "$_spg_tmp" 2>&1) || _spg_rc=$?
		fi
		if [ "$_spg_rc" -ne 0 ]; then
			rw_fail_cmd "$_spg_rc" "the copy $_spg_tmp of database $4 is not a complete archive (${_spg_out%%"$_rw_nl"*}); nothing was dropped"
		fi
	fi
	rw_run mv "$_spg_tmp" "$5"
	rw_ok "database $4 as it was before the rollback is kept in $5"
}

# restore_postgres FILE HOST PORT USER DATABASE [COPY]: drop and recreate
# DATABASE from the archive (as a superuser with owners and privileges, else
# with --no-owner, and --no-acl when the archive holds GRANTs made by other
# roles), then check that table kine is not empty. COPY
# is where save_postgres kept the database as it was (for the hint).
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
	_rp_rc=0
	_rp_su=$(psql -X -w -q -A -t -v ON_ERROR_STOP=1 ${2:+"--host=$2"} ${3:+"--port=$3"} ${4:+"--username=$4"} \
		--dbname=postgres -c 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user' 2>&1) || _rp_rc=$?
	case $_rp_rc:$_rp_su in
	0:t)
		_rp_own=
		_rp_acl=
		;;
	0:f)
		_rp_own=1
		# As in check_pg_restore: GRANTs made by other roles need --no-acl.
		_rp_acl=
		_rp_g=$(printf '%s\n' "$_rp_list" | grep '^[0-9][0-9]*; [0-9][0-9]* [0-9][0-9]* ACL ') || true
		if [ -n "$_rp_g" ]; then
			_rp_rc=0
			_rp_g=$(printf '%s\n' "$_rp_g" | pg_restore -f - -L /dev/stdin "$1" 2>&1) || _rp_rc=$?
			if [ "$_rp_rc" -ne 0 ]; then
				rw_quote_cmd pg_restore -f - -L /dev/stdin "$1"
				rw_fail_cmd "$_rp_rc" "could not read the GRANTs of $1: ${_rp_g%%"$_rw_nl"*}"
			fi
			case $_rp_g in
			*'SET SESSION AUTHORIZATION'*) _rp_acl=1 ;;
			esac
		fi
		;;
	*)
		rw_quote_cmd psql ${2:+"--host=$2"} ${3:+"--port=$3"} ${4:+"--username=$4"} --dbname=postgres -c 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user'
		rw_fail_cmd "$_rp_rc" "could not tell whether PostgreSQL user ${4:-(default)} is a superuser: ${_rp_su%%"$_rw_nl"*}"
		;;
	esac
	rw_hint "pg_restore stopped at the first error (above). Every rke2 server must be stopped (a connected client blocks DROP DATABASE); the password comes from PGPASSWORD or ~/.pgpass.${6:+ The database as it was before the rollback is kept in $6.}"
	rw_run pg_restore --clean --if-exists --create --exit-on-error --no-password ${_rp_own:+--no-owner} ${_rp_acl:+--no-acl} \
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
