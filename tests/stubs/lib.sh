# shellcheck shell=sh
# Shared by the stand-ins of the sandbox tests (tests/sandbox/). Sourced, not
# run. Every stand-in records each call in one journal shared by all hosts of
# a test, takes its exit code from the fault file the test writes, and keeps
# what the fake cluster knows in /rewind-test/cluster. Inside a sandboxed
# host:
#   /rewind-test/journal   one line per call, from every host, in call order:
#                          HOST <tab> TOOL <tab> ARGS <tab> ENV <tab> EXIT
#                          ARGS and ENV are hex of the words, each followed by
#                          a NUL byte, so an argument with spaces, quotes or
#                          newlines is kept exactly; ENV holds NAME=value, or
#                          NAME=<set> for a secret (a secret value is never
#                          written), and notes such as stdin-sha256=HEX.
#   /rewind-test/faults    lines "HOST TOOL ARGS EXIT": a call of TOOL on HOST
#                          (or *) whose ARGS (as in the journal, with the
#                          library's /rewind.XXXXXX temporary folders named
#                          so; - for none, * for any) match fails with EXIT.
#   /rewind-test/cluster/  the fake cluster: units/<host>/<unit> (systemd
#                          state), nodes/<host> ("Ready|version"),
#                          cordoned/<host>, facts (datastore, init server).
#   /rewind-test/stubs/    these files; /rewind-test/fixtures/ the test data.
#   /rewind-test/hostnames "HOSTNAME NODE" lines: the node a host name is
#                          (nodes known by their address run under a name).

RW_T=/rewind-test

# stub_hexall WORD...: the words, each followed by a NUL byte, in lowercase
# hex (one pass: the stand-ins run thousands of times).
stub_hexall() {
	if [ $# -gt 0 ]; then printf '%s\0' "$@"; fi | od -An -v -tx1 | tr -d ' \n'
}

# stub_begin TOOL ARGS...: start recording a call.
stub_begin() {
	STUB_TOOL=$1
	shift
	STUB_HOST=$(uname -n)
	# A node known by its address runs under another host name.
	if [ -s "$RW_T/hostnames" ]; then
		_sb_n=$(sed -n "s/^$STUB_HOST //p" "$RW_T/hostnames")
		if [ -n "$_sb_n" ]; then STUB_HOST=$_sb_n; fi
	fi
	STUB_ARGS=$(stub_hexall ${1+"$@"})
	STUB_VARS=
	STUB_SECRETS=
	STUB_NOTES=
	STUB_RC=0
}

# stub_env NAME...: record these variables (when set) with their values.
stub_env() {
	STUB_VARS="$STUB_VARS $*"
}

# stub_env_secret NAME...: record only that these variables are set.
stub_env_secret() {
	STUB_SECRETS="$STUB_SECRETS $*"
}

# stub_note TEXT: record a fact about the call (e.g. what was read on stdin);
# TEXT holds no newline.
stub_note() {
	STUB_NOTES="$STUB_NOTES$1
"
}

# stub_fault: set STUB_RC from the fault file, and STUB_MATCHED=1 if a line
# matched (a line with EXIT 0 only asks the fault shim to record the call).
# shellcheck disable=SC2034 # STUB_MATCHED is read by the fault shim
stub_fault() {
	STUB_RC=0
	STUB_MATCHED=0
	if [ ! -s "$RW_T/faults" ]; then return 0; fi
	# The library's temporary folders (/rewind.XXXXXX) have random names:
	# faults name them with XXXXXX.
	_sf_m=$(printf '%s' "$STUB_ARGS" | sed 's/2f726577696e642e[0-9a-f]\{12\}/2f726577696e642e585858585858/g')
	_sf_m=${_sf_m:--}
	while read -r _sf_h _sf_t _sf_a _sf_rc; do
		if [ "$_sf_h" != '*' ] && [ "$_sf_h" != "$STUB_HOST" ]; then continue; fi
		if [ "$_sf_t" != "$STUB_TOOL" ]; then continue; fi
		if [ "$_sf_a" != '*' ] && [ "$_sf_a" != "$_sf_m" ]; then continue; fi
		STUB_RC=$_sf_rc
		STUB_MATCHED=1
		return 0
	done <"$RW_T/faults"
}

# stub_log: append the call to the journal (one write, so that lines from
# different processes never mix).
stub_log() {
	_sl_env=$(
		{
			for _sl_n in $STUB_VARS; do
				eval "_sl_set=\${$_sl_n+x}"
				if [ -n "$_sl_set" ]; then eval "printf '%s=%s\\0' \"\$_sl_n\" \"\${$_sl_n}\""; fi
			done
			for _sl_n in $STUB_SECRETS; do
				eval "_sl_set=\${$_sl_n:+x}"
				if [ -n "$_sl_set" ]; then printf '%s=<set>\0' "$_sl_n"; fi
			done
			printf '%s' "$STUB_NOTES" | tr '\n' '\0'
		} | od -An -v -tx1 | tr -d ' \n'
	)
	printf '%s\t%s\t%s\t%s\t%s\n' "$STUB_HOST" "$STUB_TOOL" "$STUB_ARGS" "$_sl_env" "$STUB_RC" >>"$RW_T/journal"
}

# stub_enter: look up the fault, log the call, and exit if it is to fail.
stub_enter() {
	stub_fault
	stub_log
	if [ "$STUB_RC" != 0 ]; then
		printf '%s: failing on purpose (fault injected by the test): exit %s\n' "$STUB_TOOL" "$STUB_RC" >&2
		exit "$STUB_RC"
	fi
}

# stub_dist: sets STUB_DIST to the product of the fake cluster (rke2, or
# k3s for a K3s plan), STUB_SERVER and STUB_AGENT to its units.
# shellcheck disable=SC2034 # STUB_SERVER and STUB_AGENT are read by the stand-ins that call it
stub_dist() {
	STUB_DIST=rke2
	STUB_SERVER=rke2-server
	STUB_AGENT=rke2-agent
	if [ "$(stub_fact distribution)" = k3s ]; then
		STUB_DIST=k3s
		STUB_SERVER=k3s
		STUB_AGENT=k3s-agent
	fi
}

# stub_data_dir: the data dir of this host (config.yaml, else default).
stub_data_dir() {
	stub_dist
	STUB_DATA=
	if [ -f "/etc/rancher/$STUB_DIST/config.yaml" ]; then
		STUB_DATA=$(sed -n 's/^data-dir:[[:space:]]*//p' "/etc/rancher/$STUB_DIST/config.yaml" | tr -d "\"'" | sed -n 1p)
	fi
	if [ -z "$STUB_DATA" ]; then STUB_DATA=/var/lib/rancher/$STUB_DIST; fi
}

# stub_fact NAME: a fact about the fake cluster (empty when unknown).
stub_fact() {
	sed -n "s/^$1=//p" "$RW_T/cluster/facts" 2>/dev/null | sed -n 1p
}

# shellcheck disable=SC2034 # STUB_VER is read by the stand-in that calls it
# stub_rke2_version: the version of the rke2 installed on this host (empty
# if none), read from the stand-in binary itself.
stub_rke2_version() {
	STUB_VER=
	for _sv_b in /usr/local/bin/rke2 /usr/bin/rke2 /opt/rke2/bin/rke2 /usr/local/bin/k3s; do
		if [ -f "$_sv_b" ]; then
			STUB_VER=$(sed -n 's/^RKE2_STUB_VERSION=//p' "$_sv_b" | sed -n 1p)
			return 0
		fi
	done
}
