# ---- rewind runtime library: mysql ---------------------------------------------------
# RKE2 on an external MySQL or MariaDB: checking the dump and restoring it.
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
	rw_need_file "$1"
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

# restore_mysql FILE HOST PORT USER DATABASE: drop DATABASE, create it, replay
# the dump into it, then check that table kine is not empty.
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
	rw_hint "the database $5 is now empty or partly restored: fix the cause shown above and run this script again (it starts over)"
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
