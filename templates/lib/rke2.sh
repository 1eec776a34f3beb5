# ---- rewind runtime library: rke2 -------------------------------------------------
# RKE2 on one node: which version is installed, the config check that
# cluster-reset needs, stopping everything (rke2-killall.sh plus a check that
# nothing survived) and starting a unit with a bounded wait.
#
# The rke2 units are Type=notify with TimeoutStartSec=0: a plain
# `systemctl start` blocks until the node is ready, possibly forever. So
# start_unit uses --no-block and polls `systemctl is-active` itself.

# check_rke2_version BIN CURRENT TARGET: BIN --version prints CURRENT, or
# TARGET ("already at the target", not an error).
check_rke2_version() {
	rw_rke2_version "$1"
	if [ "$_rw_ver" = "$2" ]; then
		rw_ok "$1 --version is $2 (the version being rolled back)"
	elif [ "$_rw_ver" = "$3" ]; then
		rw_ok "$1 --version is already $3, the target version: this node was rolled back already (or never upgraded)"
	else
		rw_hint "the plan's current and target versions must match what the nodes run; correct the plan and compile again"
		rw_fail "installed version is $_rw_ver; the plan expects $2 (current) or $3 (target)"
	fi
}

# check_installed_version BIN TARGET: BIN --version prints exactly TARGET.
# In a dry run of the actions, or their preview before the confirmation, the
# install has not happened: only report.
check_installed_version() {
	rw_rke2_version "$1"
	if [ "$_rw_ver" = "$2" ]; then
		rw_ok "$1 --version is $2"
	elif rw_dry && { [ "$_rw_phase" = actions ] || [ "$_rw_phase" = confirm ]; }; then
		rw_would "check that $1 --version is $2 (it is $_rw_ver now)"
	else
		rw_hint "install.sh does not check the version it installs: check that the artifacts (or INSTALL_RKE2_VERSION) are of $2, then run the install step again"
		rw_fail "installed version is $_rw_ver, not the target $2"
	fi
}

# check_no_server_entry CONFIG_DIR: no `server:` in config.yaml or
# config.yaml.d/*.yaml (cluster-reset refuses to run with one). Top-level
# YAML keys start in column 0.
check_no_server_entry() {
	_cns_found=
	for _cns_f in "$1/config.yaml" "$1"/config.yaml.d/*.yaml; do
		if [ ! -e "$_cns_f" ]; then continue; fi
		if [ ! -r "$_cns_f" ]; then rw_fail "cannot read $_cns_f"; fi
		_cns_rc=0
		_cns_m=$(grep -n -E -e "^(server|\"server\"|'server')[[:space:]]*:" -- "$_cns_f") || _cns_rc=$?
		if [ "$_cns_rc" -gt 1 ]; then
			rw_quote_cmd grep -n -E '^server:' "$_cns_f"
			rw_fail_cmd "$_cns_rc" "could not read $_cns_f"
		fi
		if [ -n "$_cns_m" ]; then
			_cns_found="$_cns_found $_cns_f:${_cns_m%%:*}"
		fi
	done
	if [ -n "$_cns_found" ]; then
		rw_hint "this node restores the cluster, so it must not join another: comment out the server: line(s), then run this script again"
		rw_fail "a server: entry is set in:$_cns_found (cluster-reset refuses to run with one)"
	fi
	if [ -n "${RKE2_URL:-}" ]; then
		rw_hint "unset RKE2_URL in this shell, then run this script again"
		rw_fail "RKE2_URL is set in the environment: rke2 would take it as the server to join, and cluster-reset refuses to run"
	fi
	rw_ok "no server: entry in $1/config.yaml or $1/config.yaml.d/"
}

# stop_rke2 KILLALL DATA_DIR: run rke2-killall.sh with RKE2_DATA_DIR (older
# scripts ignored a custom data dir otherwise), then fail if any rke2, etcd,
# kube-apiserver or containerd-shim process is left. Killed processes take a
# moment to go: the check retries for up to 30 s (REWIND_STOP_TIMEOUT).
stop_rke2() {
	_sr_killall=$1
	rw_need_file "$_sr_killall"
	rw_hint "rke2-killall.sh is safe to run twice: read its trace above, then run this script again"
	rw_seconds REWIND_STOP_TIMEOUT 30
	_sr_to=$_rw_secs
	rw_run env "RKE2_DATA_DIR=$2" "$_sr_killall"
	rw_deadline "$_sr_to"
	while :; do
		_sr_left=
		if [ -r /proc/self/comm ]; then
			for _sr_p in /proc/[0-9]*; do
				_sr_c=
				{ read -r _sr_c <"$_sr_p/comm"; } 2>/dev/null || continue
				case $_sr_c in
				rke2 | etcd | kube-apiserver | containerd-shim*) _sr_left="$_sr_left ${_sr_p#/proc/}:$_sr_c" ;;
				esac
			done
		else
			_sr_ps=$(ps -e -o pid= -o comm=) || rw_fail "could not list processes (ps -e)"
			while read -r _sr_pid _sr_c; do
				case $_sr_c in
				rke2 | etcd | kube-apiserver | containerd-shim*) _sr_left="$_sr_left $_sr_pid:$_sr_c" ;;
				esac
			done <<EOF
$_sr_ps
EOF
		fi
		if [ -z "$_sr_left" ]; then break; fi
		if rw_dry; then
			rw_would "check that no rke2, etcd or containerd-shim process is left (running now, pid:name:$_sr_left)"
			return 0
		fi
		if rw_deadline_passed; then
			rw_hint "find out why they survived (ps -o pid,ppid,args -p PID) and stop them before going on: do not restore while etcd runs; then run this script again"
			rw_fail "processes left after rke2-killall.sh (pid:name):$_sr_left"
		fi
		sleep 1
	done
	if rw_dry; then
		rw_would "check that no rke2, etcd or containerd-shim process is left (none runs now)"
		return 0
	fi
	rw_ok "no rke2, etcd or containerd-shim process left"
}

# start_unit UNIT: `systemctl start --no-block UNIT`, then poll
# `systemctl is-active` until active (REWIND_START_TIMEOUT, default 900 s).
# A unit that fails is restarted by systemd (Restart=always), so "failed" and
# "activating" are both waited through.
start_unit() {
	_su_u=$1
	rw_seconds REWIND_START_TIMEOUT 900
	_su_to=$_rw_secs
	rw_hint "read: systemctl status $_su_u; journalctl -u $_su_u -n 100"
	rw_run systemctl start --no-block "$_su_u"
	if rw_dry; then
		rw_would "wait until $_su_u is active (up to $_su_to s, REWIND_START_TIMEOUT)"
		return 0
	fi
	rw_say "waiting until $_su_u is active (up to $_su_to s, REWIND_START_TIMEOUT)"
	rw_deadline "$_su_to"
	_su_last=
	_su_said=0
	while :; do
		_su_state=$(systemctl is-active "$_su_u" 2>/dev/null) || :
		if [ "$_su_state" = active ]; then break; fi
		if rw_deadline_passed; then
			rw_hint "systemd keeps trying to start it: read journalctl -u $_su_u -n 100; when it is active, run this script again (or raise REWIND_START_TIMEOUT)"
			rw_fail "$_su_u is not active after $_rw_elapsed s (state: ${_su_state:-unknown})"
		fi
		if [ "$_su_state" != "$_su_last" ]; then
			rw_say "$_su_u: ${_su_state:-unknown} (after $_rw_elapsed s)"
			_su_last=$_su_state
			_su_said=$_rw_elapsed
		elif [ $((_rw_elapsed - _su_said)) -ge 60 ]; then
			rw_say "still waiting for $_su_u: ${_su_state:-unknown} (after $_rw_elapsed s)"
			_su_said=$_rw_elapsed
		fi
		rw_poll_sleep
	done
	rw_hint
	rw_ok "$_su_u is active"
}
