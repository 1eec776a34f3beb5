# ---- rewind runtime library: mysql ---------------------------------------------------
# RKE2 on an external MySQL or MariaDB: checking the dump and the user's
# rights, keeping a copy of the current database, and restoring the dump.
#
# Replaying a dump does not remove tables created after it, so the database
# is dropped and created first, then the dump is replayed into it. A dump
# made with --databases switches database itself (USE `name`;): that name
# must be the plan's. The password comes from MYSQL_PWD or an option file
# (~/.my.cnf), never from the command line; an empty HOST, PORT or USER
# argument leaves that to the client's default.

# check_mysql_dump FILE: a complete mysqldump/mariadb-dump file (the dump
# header in the first lines, the `-- Dump completed` trailer at the end).
check_mysql_dump() {
	rw_check_op check_mysql_dump ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	rw_hint "copy the backup the plan restores ([snapshot] path: the database dump taken before the upgrade) to $1 on this host, then run this script again"
	rw_need_file "$1"
	rw_hint "check that $1 can be read (a disk error?): copy it again, then run this script again"
	_cmd_head=$(head -n 5 "$1") || rw_fail "could not read $1"
	case "$_rw_nl$_cmd_head" in
	*"$_rw_nl-- MySQL dump"* | *"$_rw_nl-- MariaDB dump"*) ;;
	*)
		rw_hint "the file must be the plain SQL output of mysqldump or mariadb-dump (decompress it first if it is compressed)"
		rw_fail "$1 does not start like a mysqldump or mariadb-dump file"
		;;
	esac
	_cmd_tail=$(tail -n 3 "$1") || rw_fail "could not read $1"
	case "$_rw_nl$_cmd_tail" in
	*"$_rw_nl-- Dump completed"*) ;;
	*)
		rw_hint "the dump was cut short (full disk or an interrupted copy): copy it again"
		rw_fail "$1 is incomplete: it does not end with the \"-- Dump completed\" line"
		;;
	esac
	rw_ok "$1 is a complete SQL dump"
}

# check_mysql_restore FILE HOST PORT USER DATABASE COPY: before anything is
# dropped, the dump switches to no other database, the folder of COPY can
# take the copy of the current database, and SHOW GRANTS gives USER on
# DATABASE (or *.*) what the restore needs: DROP and CREATE, and to replay
# the dump and copy the database SELECT, INSERT, ALTER, LOCK TABLES (plus
# TRIGGER, CREATE VIEW and SHOW VIEW when the dump has triggers or views).
check_mysql_restore() {
	rw_check_op check_mysql_restore ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	rw_hint "copy the backup the plan restores ([snapshot] path: the database dump taken before the upgrade) to $1 on this host, then run this script again"
	rw_need_file "$1"
	rw_hint
	rw_need_tool mysql "to restore the dump"
	if ! command -v mysqldump >/dev/null 2>&1 && ! command -v mariadb-dump >/dev/null 2>&1; then
		rw_hint "install the MySQL or MariaDB client tools (mysqldump or mariadb-dump) on this host, then run this script again"
		rw_fail "neither mysqldump nor mariadb-dump is installed (needed to keep a copy of the current database before it is dropped)"
	fi
	rw_need_abs "$6"
	case $5 in
	'' | *'`'* | *\\* | *"$_rw_nl"*)
		rw_hint "this is a bug of rewind: report it with the plan"
		rw_fail "internal error: unusable database name: $5"
		;;
	esac
	_cmr_rc=0
	_cmr_use=$(grep -E '^USE ' "$1") || _cmr_rc=$?
	if [ "$_cmr_rc" -gt 1 ]; then
		rw_hint "check that $1 can be read (a disk error?): copy it again, then run this script again"
		rw_fail "could not read $1"
	fi
	while IFS= read -r _cmr_l; do
		if [ -z "$_cmr_l" ]; then continue; fi
		if [ "$_cmr_l" != "USE \`$5\`;" ]; then
			rw_hint "dump only the datastore's database (mysqldump without --databases/--all-databases, or with --databases $5 alone), or correct [datastore] database in the plan"
			rw_fail "$1 switches to another database ($_cmr_l): it is not a dump of $5 alone"
		fi
	done <<EOF_USE
$_cmr_use
EOF_USE
	if [ -e "$6" ] || [ -L "$6" ]; then
		rw_ok "a copy of database $5 made by an earlier run is kept in $6"
	elif [ ! -d "${6%/*}/" ] || [ ! -w "${6%/*}/" ]; then
		rw_hint "the copy of the current database is written beside the dump; make ${6%/*} writable, or copy the dump to a writable folder and name it in the plan"
		rw_fail "cannot write the copy of database $5 before it is dropped: ${6%/*} is not a writable folder"
	fi
	_cmr_need="SELECT INSERT CREATE DROP ALTER LOCK_TABLES"
	if grep -q -E '^/\*!50003 CREATE\*/ .*TRIGGER' "$1"; then _cmr_need="$_cmr_need TRIGGER"; fi
	if grep -q -E '^/\*!50001 VIEW' "$1"; then _cmr_need="$_cmr_need CREATE_VIEW SHOW_VIEW"; fi
	_cmr_rc=0
	_cmr_out=$(mysql ${2:+"--host=$2"} ${3:+"--port=$3"} ${4:+"--user=$4"} -N -B -r \
		-e 'SELECT CURRENT_USER(); SHOW GRANTS' 2>&1) || _cmr_rc=$?
	if [ "$_cmr_rc" -ne 0 ]; then
		rw_hint "check the host, port and user of the plan and the password (MYSQL_PWD or ~/.my.cnf)"
		rw_quote_cmd mysql ${2:+"--host=$2"} ${3:+"--port=$3"} ${4:+"--user=$4"} -e 'SHOW GRANTS'
		rw_fail_cmd "$_cmr_rc" "could not read the grants of MySQL user ${4:-(default)}: ${_cmr_out%%"$_rw_nl"*}"
	fi
	_cmr_me=${_cmr_out%%"$_rw_nl"*}
	# Privileges granted on *.* or on a database pattern that matches
	# DATABASE (`_` and `%` are wildcards there, `\` escapes them).
	_cmr_have=,
	_cmr_roles=
	while IFS= read -r _cmr_l; do
		case $_cmr_l in
		'GRANT '*' ON '*' TO '*) ;;
		'GRANT '*' TO '*)
			_cmr_roles="$_cmr_roles ${_cmr_l#GRANT }"
			_cmr_roles=${_cmr_roles%% TO *}
			continue
			;;
		*) continue ;;
		esac
		_cmr_p=${_cmr_l#GRANT }
		_cmr_p=${_cmr_p%% ON *}
		_cmr_t=${_cmr_l#* ON }
		case $_cmr_t in
		'*.* '*) ;;
		'`'*)
			_cmr_n=
			_cmr_r=${_cmr_t#?}
			while [ -n "$_cmr_r" ]; do
				case $_cmr_r in
				'``'*)
					_cmr_n="$_cmr_n\`"
					_cmr_r=${_cmr_r#??}
					;;
				'`'*)
					_cmr_r=${_cmr_r#?}
					break
					;;
				*)
					_cmr_n="$_cmr_n${_cmr_r%"${_cmr_r#?}"}"
					_cmr_r=${_cmr_r#?}
					;;
				esac
			done
			case $_cmr_r in
			'.* '*) ;;
			*) continue ;;
			esac
			# The LIKE pattern as a shell pattern; characters other than
			# letters, digits, `_` and `-` match any one character.
			_cmr_g=
			while [ -n "$_cmr_n" ]; do
				_cmr_c=${_cmr_n%"${_cmr_n#?}"}
				_cmr_n=${_cmr_n#?}
				case $_cmr_c in
				%) _cmr_g="$_cmr_g*" ;;
				_) _cmr_g="$_cmr_g?" ;;
				\\)
					_cmr_c=${_cmr_n%"${_cmr_n#?}"}
					_cmr_n=${_cmr_n#?}
					case $_cmr_c in
					[A-Za-z0-9_%-]) _cmr_g="$_cmr_g$_cmr_c" ;;
					*) _cmr_g="$_cmr_g?" ;;
					esac
					;;
				[A-Za-z0-9-]) _cmr_g="$_cmr_g$_cmr_c" ;;
				*) _cmr_g="$_cmr_g?" ;;
				esac
			done
			# shellcheck disable=SC2254 # the pattern is meant to match
			case $5 in
			$_cmr_g) ;;
			*) continue ;;
			esac
			;;
		*) continue ;;
		esac
		case $_cmr_p in
		'ALL PRIVILEGES' | ALL) _cmr_p=$(printf '%s' "$_cmr_need" | tr ' ' ,) ;;
		esac
		_cmr_have="$_cmr_have$(printf '%s' "$_cmr_p" | sed 's/, /,/g; s/ /_/g'),"
	done <<EOF_GRANTS
${_cmr_out#*"$_rw_nl"}
EOF_GRANTS
	_cmr_miss=
	for _cmr_w in $_cmr_need; do
		case $_cmr_have in
		*",$_cmr_w,"*) ;;
		*) _cmr_miss="$_cmr_miss${_cmr_miss:+, }$(printf '%s' "$_cmr_w" | tr _ ' ')" ;;
		esac
	done
	if [ -n "$_cmr_miss" ]; then
		_cmr_qu=$_cmr_me
		case $_cmr_me in
		*@*) _cmr_qu="'${_cmr_me%@*}'@'${_cmr_me##*@}'" ;;
		esac
		rw_hint "as an administrator: GRANT $_cmr_miss ON \`$5\`.* TO $_cmr_qu; (privileges that come only through roles${_cmr_roles:+ such as$_cmr_roles} are not counted); then run this script again"
		rw_fail "MySQL user $_cmr_me lacks $_cmr_miss on database $5: the restore drops it, creates it again and replays the dump; nothing was changed"
	fi
	rw_ok "MySQL user $_cmr_me may drop, create and restore database $5"
}

# save_mysql HOST PORT USER DATABASE COPY: keep a copy of the current DATABASE
# in COPY (mysqldump or mariadb-dump --single-transaction, mode 0600,
# through COPY.partial, checked like the backup before the rename). An
# existing COPY is an earlier run's copy of the database before anything was
# dropped: it is kept, never overwritten. No database, nothing to keep.
save_mysql() {
	rw_need_abs "$5"
	case $4 in
	'' | *'`'* | *\\* | *"$_rw_nl"*) rw_fail "internal error: unusable database name: $4" ;;
	esac
	if [ -e "$5" ] || [ -L "$5" ]; then
		rw_say "keeping the copy of database $4 made by an earlier run: $5 (not overwritten)"
		return 0
	fi
	# The name has no backslash (refused above): doubling ' quotes it.
	_smy_q=$(printf '%s' "$4" | sed "s/'/''/g")
	_smy_sql="SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE CAST(SCHEMA_NAME AS BINARY) = CAST('$_smy_q' AS BINARY)"
	_smy_rc=0
	_smy_n=$(mysql ${1:+"--host=$1"} ${2:+"--port=$2"} ${3:+"--user=$3"} -N -B -e "$_smy_sql" 2>&1) || _smy_rc=$?
	case $_smy_rc:$_smy_n in
	0:0)
		rw_say "database $4 does not exist: there is no current database to keep a copy of"
		return 0
		;;
	0:1) ;;
	*)
		rw_quote_cmd mysql ${1:+"--host=$1"} ${2:+"--port=$2"} ${3:+"--user=$3"} -N -B -e "$_smy_sql"
		rw_fail_cmd "$_smy_rc" "could not tell whether database $4 exists: ${_smy_n%%"$_rw_nl"*}"
		;;
	esac
	_smy_dump=mysqldump
	if ! command -v mysqldump >/dev/null 2>&1; then _smy_dump=mariadb-dump; fi
	_smy_tmp=$5.partial
	if [ -e "$_smy_tmp" ] || [ -L "$_smy_tmp" ]; then
		# An interrupted earlier copy: never renamed, so never complete.
		rw_run rm -f "$_smy_tmp"
	fi
	rw_hint "nothing was dropped: the copy of the current database could not be made (room in ${5%/*}? rights to read every table?)"
	_smy_um=$(umask)
	umask 077
	rw_run "$_smy_dump" ${1:+"--host=$1"} ${2:+"--port=$2"} ${3:+"--user=$3"} --single-transaction --routines --triggers \
		--no-tablespaces --comments --dump-date "--result-file=$_smy_tmp" -- "$4"
	umask "$_smy_um"
	if rw_dry; then
		rw_would "check the copy like the backup (dump header, \"-- Dump completed\" trailer)"
	else
		_smy_head=$(head -n 5 "$_smy_tmp") || _smy_head=
		_smy_tail=$(tail -n 3 "$_smy_tmp") || _smy_tail=
		case "$_rw_nl$_smy_head" in
		*"$_rw_nl-- MySQL dump"* | *"$_rw_nl-- MariaDB dump"*) ;;
		*) rw_fail "the copy $_smy_tmp of database $4 does not start like a dump; nothing was dropped" ;;
		esac
		case "$_rw_nl$_smy_tail" in
		*"$_rw_nl-- Dump completed"*) ;;
		*) rw_fail "the copy $_smy_tmp of database $4 is incomplete (no \"-- Dump completed\" line); nothing was dropped" ;;
		esac
	fi
	rw_run mv "$_smy_tmp" "$5"
	rw_ok "database $4 as it was before the rollback is kept in $5"
}

# restore_mysql FILE HOST PORT USER DATABASE [COPY]: drop DATABASE, create it,
# replay the dump into it, then check that table kine is not empty. COPY is
# where save_mysql kept the database as it was (for the hint).
restore_mysql() {
	rw_need_file "$1"
	rw_need_tool mysql "to restore the dump"
	case $5 in
	'' | *'`'* | *\\* | *"$_rw_nl"*) rw_fail "internal error: unusable database name: $5" ;;
	esac
	_rm_rc=0
	_rm_use=$(grep -E -e '^USE ' -- "$1") || _rm_rc=$?
	if [ "$_rm_rc" -gt 1 ]; then rw_fail "could not read $1"; fi
	while IFS= read -r _rm_l; do
		if [ -z "$_rm_l" ]; then continue; fi
		if [ "$_rm_l" != "USE \`$5\`;" ]; then
			rw_fail "$1 switches to another database ($_rm_l): it is not a dump of $5 alone"
		fi
	done <<EOF_USE
$_rm_use
EOF_USE
	rw_hint "every rke2 server must be stopped; the password comes from MYSQL_PWD or ~/.my.cnf"
	rw_run mysql ${2:+"--host=$2"} ${3:+"--port=$3"} ${4:+"--user=$4"} \
		-e "DROP DATABASE IF EXISTS \`$5\`; CREATE DATABASE \`$5\`"
	rw_hint "the database $5 is now empty or partly restored: fix the cause shown above and run this script again (it starts over)${6:+; the database as it was before the rollback is kept in $6}"
	rw_run_stdin "$1" mysql ${2:+"--host=$2"} ${3:+"--port=$3"} ${4:+"--user=$4"} "--database=$5"
	rw_hint
	if rw_dry; then
		rw_would "check that table kine in database $5 is not empty"
		return 0
	fi
	_rm_rc=0
	_rm_n=$(mysql ${2:+"--host=$2"} ${3:+"--port=$3"} ${4:+"--user=$4"} "--database=$5" -N -B \
		-e 'SELECT count(*) FROM kine' 2>&1) || _rm_rc=$?
	case $_rm_n in
	'' | *[!0-9]*)
		rw_quote_cmd mysql ${2:+"--host=$2"} ${3:+"--port=$3"} ${4:+"--user=$4"} "--database=$5" -N -B -e 'SELECT count(*) FROM kine'
		rw_fail_cmd "$_rm_rc" "could not count the rows of table kine: ${_rm_n%%"$_rw_nl"*}"
		;;
	esac
	if [ "$_rm_n" -eq 0 ]; then
		rw_fail "table kine in database $5 is empty after the restore: this dump holds no cluster data"
	fi
	rw_ok "database restored; kine has $_rm_n rows"
}
