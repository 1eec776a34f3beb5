# ---- rewind runtime library: rke2 -------------------------------------------------
# RKE2 (or K3s: the names come from the library's constants REWIND_BIN,
# REWIND_ENV and REWIND_DEFAULT_DATA_DIR) on one node: which version is installed, the config checks that
# cluster-reset and a rejoin need, stopping RKE2 without touching its data
# volumes, and starting a unit with a bounded wait.
#
# The rke2 units are Type=notify with TimeoutStartSec=0: a plain
# `systemctl start` blocks until the node is ready, possibly forever. So
# start_unit uses --no-block and polls `systemctl is-active` itself.

# check_rke2_version BIN CURRENT TARGET: BIN --version prints CURRENT, or
# TARGET ("already at the target", not an error).
check_rke2_version() {
	rw_check_op check_rke2_version ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
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
# install has not happened: only report (a rehearsal records that this step
# establishes it). In a rehearsal, a later step's check accepts what an
# earlier step of this host establishes.
check_installed_version() {
	rw_check_op check_installed_version ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	if [ "$_rw_phase" != actions ] && rw_established "$1 --version is $2"; then
		rw_ok "$1 --version is $2: established by step $_rw_est (rehearsal)"
		return 0
	fi
	rw_rke2_version "$1"
	if [ "$_rw_ver" = "$2" ]; then
		rw_ok "$1 --version is $2"
	elif rw_dry && { [ "$_rw_phase" = actions ] || [ "$_rw_phase" = confirm ]; }; then
		rw_would "check that $1 --version is $2 (it is $_rw_ver now)"
		rw_establish "$1 --version is $2"
	else
		rw_hint "install.sh does not check the version it installs: check that the artifacts (or INSTALL_${REWIND_ENV}_VERSION) are of $2, then run the install step again"
		rw_fail "installed version is $_rw_ver, not the target $2"
	fi
}

# check_no_server_entry CONFIG_DIR UNIT UNIT_ENV: no `server:` in
# config.yaml or config.yaml.d/*.yaml, and no RKE2_URL in the unit's
# environment files (cluster-reset refuses to run with one; this shell's
# RKE2_* variables are not passed to it).
# Top-level YAML keys start in column 0.
check_no_server_entry() {
	rw_check_op check_no_server_entry ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	_cns_found=
	for _cns_f in "$1/config.yaml" "$1"/config.yaml.d/*.yaml "$1"/config.yaml.d/*.yml; do
		if [ ! -e "$_cns_f" ]; then continue; fi
		if [ ! -r "$_cns_f" ]; then
			rw_hint "run the step as root (sudo sh …), or give root read access to $_cns_f, then run this script again"
			rw_fail "cannot read $_cns_f"
		fi
		_cns_rc=0
		_cns_m=$(grep -n -E -e "^(server|\"server\"|'server')[[:space:]]*:" -- "$_cns_f") || _cns_rc=$?
		if [ "$_cns_rc" -gt 1 ]; then
			rw_quote_cmd grep -n -E '^server:' -- "$_cns_f"
			rw_hint "run the command above by hand and read its error (a disk error?), then run this script again"
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
	_rke2_env_value "$2" "$3" "${REWIND_ENV}_URL"
	if [ -n "$_ev_val" ]; then
		rw_hint "this node restores the cluster: remove ${REWIND_ENV}_URL from $_ev_where, then run this script again"
		rw_fail "${REWIND_ENV}_URL is set in $_ev_where: $REWIND_BIN would take it as the server to join, and cluster-reset refuses to run"
	fi
	rw_ok "no server: entry in $1/config.yaml or config.yaml.d/, no ${REWIND_ENV}_URL for $2"
}

# ---- what rke2-server really reads ------------------------------------------
# RKE2 takes its settings from the command line, then config.yaml and
# config.yaml.d/*.yaml (the last file read wins), then the environment, which
# the unit fills from /etc/default/UNIT, /etc/sysconfig/UNIT and UNIT.env
# next to the unit file (docs/upstream-facts.md §2-3). The checks below read
# the same places, so that a refusal happens before anything is stopped.

_rke2_cr=$(printf '\r')

# _rke2_trim VALUE: sets _rt to the scalar VALUE holds: without surrounding
# blanks and a trailing carriage return; a quoted scalar unquoted ("..." with
# its \" and \\ escapes, '...' with its '' escape); an unquoted one without
# its trailing comment.
_rke2_trim() {
	_rt=${1%"$_rke2_cr"}
	while :; do
		case $_rt in
		[' 	']*) _rt=${_rt#?} ;;
		*) break ;;
		esac
	done
	case $_rt in
	\"*)
		_rq_in=${_rt#?}
		_rt=
		while [ -n "$_rq_in" ]; do
			case $_rq_in in
			\"*) break ;;
			\\?*)
				_rq_in=${_rq_in#?}
				_rt=$_rt${_rq_in%"${_rq_in#?}"}
				_rq_in=${_rq_in#?}
				;;
			*)
				_rt=$_rt${_rq_in%"${_rq_in#?}"}
				_rq_in=${_rq_in#?}
				;;
			esac
		done
		;;
	\'*)
		_rq_in=${_rt#?}
		_rt=
		while [ -n "$_rq_in" ]; do
			case $_rq_in in
			\'\'*)
				_rt="$_rt'"
				_rq_in=${_rq_in#??}
				;;
			\'*) break ;;
			*)
				_rt=$_rt${_rq_in%"${_rq_in#?}"}
				_rq_in=${_rq_in#?}
				;;
			esac
		done
		;;
	*)
		_rt=${_rt%%[' 	']#*}
		while :; do
			case $_rt in
			*[' 	']) _rt=${_rt%?} ;;
			*) break ;;
			esac
		done
		;;
	esac
	_rq_in=
}

# _rke2_config_value CONFIG_DIR KEY: the top-level KEY of config.yaml and
# config.yaml.d/*.yaml (*.yml too; read in that order, the last one wins):
# sets _cv_val and _cv_where (FILE:LINE), both empty when KEY is not set.
_rke2_config_value() {
	_cv_val=
	_cv_where=
	for _cv_f in "$1/config.yaml" "$1"/config.yaml.d/*.yaml "$1"/config.yaml.d/*.yml; do
		if [ ! -f "$_cv_f" ]; then continue; fi
		if [ ! -r "$_cv_f" ]; then
			rw_hint "run the step as root (sudo sh …), or give root read access to $_cv_f, then run this script again"
			rw_fail "cannot read $_cv_f"
		fi
		_cv_n=0
		while IFS= read -r _cv_l || [ -n "$_cv_l" ]; do
			_cv_n=$((_cv_n + 1))
			case $_cv_l in
			"$2":* | "\"$2\":"* | "'$2':"*) ;;
			*) continue ;;
			esac
			_rke2_trim "${_cv_l#*:}"
			_cv_val=$_rt
			_cv_where=$_cv_f:$_cv_n
		done <"$_cv_f"
	done
}

# _rke2_env_value UNIT UNIT_ENV NAME: NAME as the unit's environment files
# set it (/etc/default/UNIT, /etc/sysconfig/UNIT, UNIT_ENV; the last wins):
# sets _ev_val and _ev_where (FILE:LINE), both empty when not set there.
_rke2_env_value() {
	_ev_val=
	_ev_where=
	for _ev_f in "/etc/default/$1" "/etc/sysconfig/$1" "$2"; do
		if [ ! -f "$_ev_f" ]; then continue; fi
		if [ ! -r "$_ev_f" ]; then
			rw_hint "run the step as root (sudo sh …), or give root read access to $_ev_f, then run this script again"
			rw_fail "cannot read $_ev_f"
		fi
		_ev_n=0
		while IFS= read -r _ev_l || [ -n "$_ev_l" ]; do
			_ev_n=$((_ev_n + 1))
			case $_ev_l in
			"$3="*) ;;
			*) continue ;;
			esac
			_rke2_trim "${_ev_l#*=}"
			_ev_val=$_rt
			_ev_where=$_ev_f:$_ev_n
		done <"$_ev_f"
	done
}

# _rke2_setting CONFIG_DIR UNIT UNIT_ENV KEY VAR: what RKE2 uses for KEY:
# the config files, else the environment files' VAR. Sets _st_val and
# _st_where ("FILE:LINE (KEY:)" or "FILE:LINE (VAR=)"), empty when unset.
_rke2_setting() {
	_rke2_config_value "$1" "$4"
	if [ -n "$_cv_where" ]; then
		_st_val=$_cv_val
		_st_where="$_cv_where ($4:)"
		return 0
	fi
	_rke2_env_value "$2" "$3" "$5"
	_st_val=$_ev_val
	_st_where=
	if [ -n "$_ev_where" ]; then _st_where="$_ev_where ($5=)"; fi
}

# check_data_dir CONFIG_DIR UNIT UNIT_ENV DATA_DIR: the unit runs with the
# plan's data dir (data-dir: in the config files, else RKE2_DATA_DIR in the
# environment files, else /var/lib/rancher/rke2). Otherwise a restore would
# fill one folder while the unit starts on another.
check_data_dir() {
	rw_check_op check_data_dir ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	_rke2_setting "$1" "$2" "$3" data-dir "${REWIND_ENV}_DATA_DIR"
	_cdd_is=${_st_val:-$REWIND_DEFAULT_DATA_DIR}
	while :; do
		case $_cdd_is in
		?*/) _cdd_is=${_cdd_is%/} ;;
		*) break ;;
		esac
	done
	if [ "$_cdd_is" != "$4" ]; then
		if [ -n "$_st_where" ]; then
			rw_hint "correct data-dir in the plan (and compile again), or the setting in ${_st_where%% *}, so that both name the folder $REWIND_PRODUCT really uses"
			rw_fail "$2 runs with data dir $_cdd_is (set in $_st_where), but the plan says $4"
		fi
		rw_hint "add 'data-dir: $4' to $1/config.yaml if that is where $REWIND_PRODUCT's data is, or correct the plan and compile again"
		rw_fail "$2 runs with the default data dir $REWIND_DEFAULT_DATA_DIR (no data-dir: in $1/config.yaml or config.yaml.d, no ${REWIND_ENV}_DATA_DIR in its environment files), but the plan says $4"
	fi
	rw_ok "$2 uses the data dir $4${_st_where:+ (set in $_st_where)}"
}

# check_node_name CONFIG_DIR UNIT UNIT_ENV NAME: the node registers in
# Kubernetes as NAME, the name the drain and verify steps use: node-name: in
# the config files, else RKE2_NODE_NAME in the environment files, else the
# host name in lowercase (as RKE2 does).
check_node_name() {
	rw_check_op check_node_name ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	_rke2_setting "$1" "$2" "$3" node-name "${REWIND_ENV}_NODE_NAME"
	_cnn_is=$_st_val
	if [ -z "$_cnn_is" ]; then
		_cnn_is=$(uname -n | tr 'ABCDEFGHIJKLMNOPQRSTUVWXYZ' 'abcdefghijklmnopqrstuvwxyz')
	fi
	if [ "$_cnn_is" != "$4" ]; then
		rw_hint "set node-name = \"$_cnn_is\" on this node in the plan (and compile again), so that the drain and verify steps look for the node Kubernetes knows"
		rw_fail "this node registers in Kubernetes as $_cnn_is${_st_where:+ (set in $_st_where)}, but the plan knows it as $4"
	fi
	rw_ok "this node is $4 in Kubernetes${_st_where:+ (set in $_st_where)}"
}

# check_server_entry CONFIG_DIR UNIT UNIT_ENV: a server that rejoins has the
# address of a server to join (server: in the config files, or RKE2_URL in
# its environment files), and says which. Without one, a server started with
# an empty db/etcd starts a new cluster of its own: split brain.
check_server_entry() {
	rw_check_op check_server_entry ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	_rke2_setting "$1" "$2" "$3" server "${REWIND_ENV}_URL"
	if [ -z "$_st_val" ]; then
		rw_hint "add 'server: https://<init server>:9345' to $1/config.yaml (the address it joined through before), then run this script again"
		rw_fail "no server: entry in $1/config.yaml or config.yaml.d, and no ${REWIND_ENV}_URL in the environment files of $2: with its etcd data moved aside, this server would start a second cluster of its own (split brain)"
	fi
	rw_ok "this server joins through $_st_val (set in $_st_where)"
}

# _rke2_token_key TEXT: sets _tk to the part of a server token that keys the
# datastore's bootstrap data: the password after "K10<ca-hash>::<user>:", or
# the whole text for a bare secret (as RKE2's token normalisation does).
_rke2_token_key() {
	_tk=$1
	case $_tk in
	K10*::*:*)
		_tk=${_tk#*::}
		_tk=${_tk#*:}
		;;
	esac
}

# _rke2_key_sha FILE: sets _ks to the sha256 of the token key in FILE (its
# first line), read through a here-document: neither the token nor its key
# is ever an argument of a command (visible in ps) or printed.
_rke2_key_sha() {
	_ks_line=
	{ IFS= read -r _ks_line <"$1" || [ -n "$_ks_line" ]; } 2>/dev/null || {
		rw_hint "run the step as root (sudo sh …), or give root read access to $1, then run this script again"
		rw_fail "cannot read $1"
	}
	_rke2_trim "$_ks_line"
	_rke2_token_key "$_rt"
	_ks=$(rw_sha256_pipe <<EOF
$_tk
EOF
)
	_ks=${_ks%%[ 	]*}
	_ks_line=
	_rt=
	_tk=
}

# check_token_source CONFIG_DIR UNIT UNIT_ENV SAVED: the token this server
# would really use is the saved one. RKE2 reads server/token only when no
# token is configured; token: or token-file: in the config files, or
# RKE2_TOKEN or RKE2_TOKEN_FILE in the environment files, win (a token file
# wins over a token). The keys are compared by hash; neither token is shown.
check_token_source() {
	rw_check_op check_token_source ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	rw_hint "copy the server token saved with the snapshot (the cluster's server/token file, $REWIND_DEFAULT_DATA_DIR/server/token by default, as it was when the snapshot was taken) to $4 on this host, readable by root only; then run this script again"
	rw_need_file "$4"
	rw_hint
	_rke2_key_sha "$4"
	_cts_want=$_ks
	_rke2_setting "$1" "$2" "$3" token-file "${REWIND_ENV}_TOKEN_FILE"
	_cts_from=
	if [ -n "$_st_val" ]; then
		_cts_where=$_st_where
		rw_need_file "$_st_val"
		_rke2_key_sha "$_st_val"
		_cts_from="the token file $_st_val named in $_cts_where"
	else
		_rke2_setting "$1" "$2" "$3" token "${REWIND_ENV}_TOKEN"
		if [ -n "$_st_val" ]; then
			_cts_where=$_st_where
			_rke2_token_key "$_st_val"
			_ks=$(rw_sha256_pipe <<EOF
$_tk
EOF
)
			_ks=${_ks%%[ 	]*}
			_tk=
			_cts_from="the token set in $_cts_where"
		fi
	fi
	_st_val=
	if [ -z "$_cts_from" ]; then
		rw_ok "no token configured for $2: it uses server/token, which the rollback sets to the saved token $4"
		return 0
	fi
	if [ "$_ks" != "$_cts_want" ]; then
		rw_hint "$REWIND_PRODUCT decrypts the restored datastore with this token, not with server/token: make ${_cts_where%% *} hold the saved token (the content of $4), or remove that setting so that the saved token is used; then run this script again"
		rw_fail "$_cts_from is not the saved token $4 (compared without the K10<ca-hash>::server: prefix; neither is shown): the restored cluster would not start (\"bootstrap data already found and encrypted with different token\")"
	fi
	rw_ok "$_cts_from matches the saved token $4 (neither is shown)"
}

# ---- stopping RKE2 -----------------------------------------------------------
# rewind stops RKE2 itself instead of running rke2-killall.sh: every killall
# up to v1.27.16+rke2r1, v1.28.12, v1.29.7 and v1.30.3 unmounts every mount
# under the data dir, and from v1.24.12/v1.25.8/v1.26.3 on it then removes
# each mount point recursively (`rm` with --one-file-system), even when the
# unmount failed (rancher/rke2#6557, #6571; docs/upstream-facts.md §1): a
# dedicated volume for server/db or the data dir is then either out of
# sight (the restore finds no snapshot) or,
# when busy, emptied. What killall does that matters to a rollback is done
# here, scoped to RKE2 (docs/upstream-facts.md): stop the unit, kill every
# process whose executable lies under the data dir or /run/k3s (containerd,
# kubelet, containerd-shim and runc of RKE2) or is the rke2 binary, with all
# their descendants (the pods), and unmount only the runtime mounts: /run/k3s,
# kubelet's pod volumes and /run/netns/cni-*. Network interfaces and iptables
# rules are left to the target version, which sets them up again at start.

# _rke2_data_mounts DATA_DIR: sets _dm_list to the mount points at or under
# DATA_DIR, /var/lib/rancher/rke2 and /var/lib/kubelet (kubelet's pod volumes
# aside), one per line, between newlines.
_rke2_data_mounts() {
	_dm_list=$_rw_nl
	if [ ! -r /proc/self/mountinfo ]; then
		rw_hint "mount /proc (mount -t proc proc /proc), then run this script again"
		rw_fail "cannot read /proc/self/mountinfo (is /proc mounted?)"
	fi
	while read -r _dm_id _dm_parent _dm_dev _dm_root _dm_mp _dm_rest; do
		case $_dm_mp in
		/var/lib/kubelet/pods/*) continue ;;
		"$1" | "$1"/* | "$REWIND_DEFAULT_DATA_DIR" | "$REWIND_DEFAULT_DATA_DIR"/* | /var/lib/kubelet | /var/lib/kubelet/*) ;;
		*) continue ;;
		esac
		case $_dm_list in
		*"$_rw_nl$_dm_mp$_rw_nl"*) ;;
		*) _dm_list="$_dm_list$_dm_mp$_rw_nl" ;;
		esac
	done </proc/self/mountinfo
}

# check_data_mounts DATA_DIR: lists the data volumes (mounts at or under the
# data dir, /var/lib/rancher/rke2 and /var/lib/kubelet); once the stop step
# has recorded them, fails if one of them is no longer mounted (a reboot
# without it, an unmount by hand or by an old rke2-killall.sh): RKE2 would
# then write etcd to the empty folder below it.
check_data_mounts() {
	rw_check_op check_data_mounts ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	_rke2_data_mounts "$1"
	_cdm_rec=$_rw_state_dir/data-mounts
	if [ -f "$_cdm_rec" ]; then
		_cdm_gone=
		while IFS= read -r _cdm_m || [ -n "$_cdm_m" ]; do
			if [ -z "$_cdm_m" ]; then continue; fi
			case $_dm_list in
			*"$_rw_nl$_cdm_m$_rw_nl"*) ;;
			*) _cdm_gone="$_cdm_gone $_cdm_m" ;;
			esac
		done <"$_cdm_rec"
		if [ -n "$_cdm_gone" ]; then
			rw_hint "mount each one again (mount -a if it is in /etc/fstab), check that its content is there, then run this script again; never start $REWIND_BIN on the empty folder below a data volume"
			rw_fail "not mounted any more, although mounted when the stop step ran (recorded in $_cdm_rec):$_cdm_gone"
		fi
	fi
	if [ "$_dm_list" = "$_rw_nl" ]; then
		if [ "$1" = "$REWIND_DEFAULT_DATA_DIR" ]; then
			rw_ok "no separate volume at or under $1 or /var/lib/kubelet"
		else
			rw_ok "no separate volume at or under $1, $REWIND_DEFAULT_DATA_DIR or /var/lib/kubelet"
		fi
	else
		_cdm_show=$(printf '%s' "$_dm_list" | tr '\n' ' ')
		rw_ok "data volumes mounted (the stop step leaves them mounted):${_cdm_show% }"
	fi
}

# _rke2_procs DATA_DIR BIN: sets _rp_pids to " PID PID ... " of RKE2's
# processes: those whose executable is under DATA_DIR/ or /run/k3s/, or is
# BIN, and all their descendants (the pods below containerd-shim). Matching
# on the executable, not the name, leaves alone Docker's containerd-shim
# and any etcd that is not RKE2's. Zombies have no executable: skipped.
_rke2_procs() {
	_rp_dd=$1
	_rp_bin=$2
	_rp_pids=' '
	_rp_tree=
	for _rp_p in /proc/[0-9]*; do
		_rp_pid=${_rp_p#/proc/}
		if [ "$_rp_pid" = "$$" ]; then continue; fi
		_rp_st=
		{ read -r _rp_st <"$_rp_p/stat"; } 2>/dev/null || continue
		# "PID (comm) STATE PPID ...": comm may hold spaces and parentheses.
		_rp_st=${_rp_st##*) }
		set -f
		# shellcheck disable=SC2086 # split the fields after comm
		set -- $_rp_st
		set +f
		_rp_tree="$_rp_tree$_rp_pid ${2:-0}$_rw_nl"
		if [ "${1:-}" = Z ]; then continue; fi
		_rp_exe=$(readlink "$_rp_p/exe" 2>/dev/null) || continue
		case $_rp_exe in
		"$_rp_dd"/* | /run/k3s/* | "$_rp_bin" | "$_rp_bin (deleted)") _rp_pids="$_rp_pids$_rp_pid " ;;
		esac
	done
	if [ "$_rp_pids" = ' ' ]; then return 0; fi
	while :; do
		_rp_more=0
		while read -r _rp_a _rp_b; do
			if [ -z "$_rp_a" ]; then continue; fi
			case $_rp_pids in *" $_rp_a "*) continue ;; esac
			case $_rp_pids in
			*" $_rp_b "*)
				_rp_pids="$_rp_pids$_rp_a "
				_rp_more=1
				;;
			esac
		done <<EOF
$_rp_tree
EOF
		if [ "$_rp_more" = 0 ]; then break; fi
	done
}

# _rke2_runtime_mounts: sets _rm_list to the runtime mounts that a stop
# removes (/run/k3s and below, kubelet's pod volumes, /run/netns/cni-*),
# deepest first (the reverse of mount order).
_rke2_runtime_mounts() {
	_rm_list=
	while read -r _rm_id _rm_parent _rm_dev _rm_root _rm_mp _rm_rest; do
		case $_rm_mp in
		/run/k3s | /run/k3s/* | /var/lib/kubelet/pods/* | /run/netns/cni-*)
			_rm_list="$_rm_mp$_rw_nl$_rm_list"
			;;
		esac
	done </proc/self/mountinfo
}

# stop_rke2 DATA_DIR UNIT BIN: stop RKE2 on this node without rke2-killall.sh
# (see above). Records the data volumes and whether UNIT was enabled (in the
# state folder, at the first run), stops and disables UNIT (a reboot before
# this node's start step must not start RKE2 on half-restored data; the start
# step enables it again), kills RKE2's processes and waits until none is
# left (REWIND_STOP_TIMEOUT, default 30 s), unmounts the runtime mounts, and
# checks that every data volume is still mounted.
stop_rke2() {
	_sr_dd=$1
	_sr_unit=$2
	_sr_bin=$3
	rw_seconds REWIND_STOP_TIMEOUT 30
	_sr_to=$_rw_secs
	# A working directory inside a data volume keeps it busy; never stand in one.
	cd / || rw_fail "cannot change to /"
	_rke2_data_mounts "$_sr_dd"
	if ! rw_dry && [ ! -f "$_rw_state_dir/data-mounts" ]; then
		{ printf '%s' "${_dm_list#"$_rw_nl"}" >"$_rw_state_dir/data-mounts.tmp" &&
			mv -f "$_rw_state_dir/data-mounts.tmp" "$_rw_state_dir/data-mounts"; } ||
			rw_fail "could not record the data volumes in $_rw_state_dir/data-mounts"
	fi
	# The confirmation's preview asks nothing of the host: it lists the
	# disable, which the step runs only for an enabled unit.
	_sr_en=enabled
	if ! rw_previewing; then
		_sr_en=$(systemctl is-enabled "$_sr_unit" 2>/dev/null) || :
	fi
	if ! rw_dry && [ ! -f "$_rw_state_dir/$_sr_unit.enabled" ]; then
		printf '%s\n' "${_sr_en:-unknown}" >"$_rw_state_dir/$_sr_unit.enabled" ||
			rw_fail "could not record in $_rw_state_dir whether $_sr_unit was enabled"
	fi
	rw_hint "read: systemctl status $_sr_unit; then run this script again"
	rw_run systemctl stop "$_sr_unit"
	if [ "$_sr_en" = enabled ]; then
		rw_run systemctl disable "$_sr_unit"
	fi
	_rke2_kill "$_sr_dd" "$_sr_bin" "$_sr_to"
	_rke2_runtime_mounts
	while IFS= read -r _sr_m; do
		if [ -z "$_sr_m" ]; then continue; fi
		rw_hint "something still uses $_sr_m (fuser -vm $_sr_m); stop it, then run this script again"
		rw_run umount "$_sr_m"
	done <<EOF
$_rm_list
EOF
	rw_hint
	check_data_mounts "$_sr_dd"
	if rw_dry; then
		rw_establish "$_sr_unit is stopped"
		rw_establish "no process of $REWIND_PRODUCT is left ($_sr_dd, $_sr_bin)"
	fi
}

# move_pod_manifests_aside DIR SUFFIX: move the static pod manifests
# (*.yaml) of the newer version from DIR into DIR.SUFFIX/, so that the
# target's kubelet does not run them before rke2 writes its own
# (rke2-killall.sh before v1.26.10, v1.27.7 and v1.28.3 left kube-proxy.yaml;
# rancher/rancher#42895).
move_pod_manifests_aside() {
	_mpm_n=0
	if [ -d "$1" ]; then
		for _mpm_f in "$1"/*.yaml; do
			if [ ! -e "$_mpm_f" ] && [ ! -L "$_mpm_f" ]; then continue; fi
			rw_move_into "$1" "$2" "${_mpm_f##*/}"
			_mpm_n=$((_mpm_n + 1))
		done
	fi
	if [ "$_mpm_n" -eq 0 ]; then
		if [ -d "$1.$2" ]; then
			rw_ok "static pod manifests already moved aside into $1.$2/"
		else
			rw_ok "no static pod manifest in $1: nothing to move aside"
		fi
	fi
}

# enable_unit UNIT: enable UNIT again if it was enabled before the stop step
# disabled it (recorded in the state folder; no record: enable it).
enable_unit() {
	_eu_was=
	if [ -f "$_rw_state_dir/$1.enabled" ]; then
		{ read -r _eu_was <"$_rw_state_dir/$1.enabled"; } 2>/dev/null || _eu_was=
	fi
	case $_eu_was in
	'' | enabled)
		_eu_now=$(systemctl is-enabled "$1" 2>/dev/null) || :
		if [ "$_eu_now" = enabled ]; then
			rw_ok "$1 is enabled"
		else
			rw_run systemctl enable "$1"
		fi
		;;
	*) rw_say "$1 was $_eu_was before the rollback: left so" ;;
	esac
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

# stop_leftovers DATA_DIR BIN: a cluster-reset stopped by its time limit
# leaves containerd, kubelet and the etcd pod running (timeout ends rke2
# only): kill what is left of RKE2 before the next try.
stop_leftovers() {
	rw_seconds REWIND_STOP_TIMEOUT 30
	if rw_established "no process of $REWIND_PRODUCT is left ($1, $2)"; then
		rw_ok "no process of $REWIND_PRODUCT left: established by step $_rw_est (rehearsal)"
		return 0
	fi
	_rke2_procs "$1" "$2"
	if [ "$_rp_pids" = ' ' ]; then
		rw_ok "no process of $REWIND_PRODUCT running"
		return 0
	fi
	rw_say "processes of $REWIND_PRODUCT still run (an earlier cluster-reset stopped by its time limit?)"
	_rke2_kill "$1" "$2" "$_rw_secs"
}

# _rke2_kill DATA_DIR BIN SECONDS: kill -KILL RKE2's processes (see
# _rke2_procs) and wait up to SECONDS until none is left.
_rke2_kill() {
	_rke2_procs "$1" "$2"
	if [ "$_rp_pids" != ' ' ]; then
		if rw_dry; then
			rw_would "kill -KILL the processes of $REWIND_PRODUCT and their pods (now:${_rp_pids% })"
			return 0
		fi
		_rk_pids=$_rp_pids
		set -f
		# shellcheck disable=SC2086 # one word per pid
		set -- "$1" "$2" "$3" $_rk_pids
		set +f
		_rk_dd=$1
		_rk_bin=$2
		_rk_to=$3
		shift 3
		printf '+ kill -KILL %s\n' "$*"
		# A process may end on its own meanwhile: kill's complaint is no failure.
		kill -KILL "$@" 2>/dev/null || :
		set -- "$_rk_dd" "$_rk_bin" "$_rk_to"
	fi
	if rw_dry; then return 0; fi
	rw_deadline "$3"
	while :; do
		_rke2_procs "$1" "$2"
		if [ "$_rp_pids" = ' ' ]; then break; fi
		if rw_deadline_passed; then
			rw_hint "find out what keeps them (ps -o pid,ppid,stat,args -p PID) and stop them before going on: never restore while etcd runs; then run this script again"
			rw_fail "$REWIND_PRODUCT processes left after kill -KILL (pids):${_rp_pids% }"
		fi
		sleep 1
	done
	rw_ok "no process of $REWIND_PRODUCT left (executables under $1 or /run/k3s, $2, and their pods)"
}

# _rke2_unit_env UNIT UNIT_ENV: export what the unit's environment files set
# (/etc/default/UNIT, /etc/sysconfig/UNIT, UNIT_ENV, in systemd's order; no
# expansion, as systemd reads them), and drop this shell's other RKE2_*
# variables, so that a command run by hand sees what the unit sees. Prints
# the variables' names only: values may be secrets.
_rke2_unit_env() {
	# The unit does not see this shell's RKE2_* variables: neither does rke2.
	_ue_shell=$(env | sed -n "s/^\\(${REWIND_ENV}_[A-Za-z0-9_]*\\)=.*/\\1/p" | tr '\n' ' ')
	if [ -n "$_ue_shell" ]; then
		rw_say "not passed to $REWIND_BIN (the unit does not see this shell's variables): $_ue_shell"
		if ! rw_dry; then
			for _ue_n in $_ue_shell; do unset "$_ue_n"; done
		fi
	fi
	_ue_names=
	for _ue_f in "/etc/default/$1" "/etc/sysconfig/$1" "$2"; do
		if [ ! -f "$_ue_f" ]; then continue; fi
		if [ ! -r "$_ue_f" ]; then
			rw_hint "run the step as root (sudo sh …), or give root read access to $_ue_f, then run this script again"
			rw_fail "cannot read $_ue_f"
		fi
		while IFS= read -r _ue_l || [ -n "$_ue_l" ]; do
			case $_ue_l in
			[A-Za-z_]*=*) ;;
			*) continue ;;
			esac
			_ue_n=${_ue_l%%=*}
			case $_ue_n in *[!A-Za-z0-9_]*) continue ;; esac
			_rke2_trim "${_ue_l#*=}"
			if ! rw_dry; then export "$_ue_n=$_rt"; fi
			_ue_names="$_ue_names $_ue_n"
		done <"$_ue_f"
	done
	_rt=
	if [ -n "$_ue_names" ]; then
		rw_say "$REWIND_BIN runs with the environment of $1 (variables:$_ue_names; values not shown)"
	fi
}

# cluster_reset BIN RESTORE_PATH TOKEN_FILE UNIT UNIT_ENV FLAG...: `BIN server
# --cluster-reset --cluster-reset-restore-path=RESTORE_PATH FLAG...` under
# `timeout` (REWIND_RESET_TIMEOUT, default 1800 s), in the unit's world: with
# the variables of UNIT's environment files, and with RKE2_TOKEN set from
# TOKEN_FILE (when given), so that the token that decrypts the snapshot's
# bootstrap data is the saved one, whatever server/token holds (a
# --token-file alone does not pass rke2's restore check; a token on the
# command line would show in ps). Its output is shown and kept in a log
# under the state folder. Success is exit 0 AND the message rke2 prints once
# etcd runs as a new single-member cluster; older versions word the start of
# that line differently, so only its end is matched.
cluster_reset() {
	_cre_bin=$1
	_cre_path=$2
	_cre_token=$3
	_cre_unit=$4
	_cre_env=$5
	shift 5
	for _cre_flag in ${1+"$@"}; do
		case $_cre_flag in
		--token | --token=* | --agent-token* | --etcd-s3-access-key* | --etcd-s3-secret-key* | --etcd-s3-session-token*)
			rw_fail "internal error: ${_cre_flag%%=*} on the $REWIND_BIN command line would show a secret; $REWIND_BIN reads it from the environment"
			;;
		esac
	done
	rw_seconds REWIND_RESET_TIMEOUT 1800
	_cre_to=$_rw_secs
	rw_need_tool timeout "to bound the cluster-reset"
	if rw_established "$_cre_unit is stopped"; then
		rw_ok "$_cre_unit is stopped: established by step $_rw_est (rehearsal)"
	elif command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$_cre_unit" 2>/dev/null; then
		rw_hint "run the stop step on this node first"
		rw_fail "$_cre_unit is running on this node: a cluster-reset needs it stopped"
	fi
	_rke2_unit_env "$_cre_unit" "$_cre_env"
	if [ -n "$_cre_token" ]; then
		rw_need_file "$_cre_token"
		if ! rw_dry; then
			_cre_t=
			{ IFS= read -r _cre_t <"$_cre_token" || [ -n "$_cre_t" ]; } 2>/dev/null || rw_fail "cannot read $_cre_token"
			_rke2_trim "$_cre_t"
			export "${REWIND_ENV}_TOKEN=$_rt"
			_cre_t=
			_rt=
		fi
		rw_say "${REWIND_ENV}_TOKEN is set from the saved token $_cre_token (not shown)"
	fi
	_cre_log=$_rw_state_dir/$REWIND_STEP.cluster-reset.$(date -u +%Y%m%dT%H%M%SZ).log
	rw_say "restoring etcd from $_cre_path (this can take long for a large snapshot; limit ${_cre_to} s, REWIND_RESET_TIMEOUT)"
	rw_run_logged "$_cre_log" timeout "$_cre_to" "$_cre_bin" server --cluster-reset \
		"--cluster-reset-restore-path=$_cre_path" ${1+"$@"}
	if rw_dry; then
		rw_would "keep its output in a log under $_rw_state_dir and require exit 0 and \"restart without --cluster-reset flag now\""
		return 0
	fi
	case $_rw_rl_rc in
	0) ;;
	124 | 137 | 143)
		rw_hint "large snapshots take long: raise REWIND_RESET_TIMEOUT and run again (a restore always starts over, after stopping what this one left running); rke2's output is in $_cre_log"
		rw_fail_cmd "$_rw_rl_rc" "the cluster-reset did not finish within $_cre_to s and was stopped"
		;;
	*)
		rw_hint "$REWIND_BIN's output is in $_cre_log; its last lines name the cause"
		rw_fail_cmd "$_rw_rl_rc" "the cluster-reset failed"
		;;
	esac
	if ! grep -q -e 'restart without --cluster-reset flag now' -- "$_cre_log"; then
		rw_hint "$REWIND_BIN's output is in $_cre_log"
		_rw_report "$REWIND_BIN exited 0 but did not print \"restart without --cluster-reset flag now\": the restore is not confirmed" "$_rw_cmd" 0
		exit 1
	fi
	rw_ok "snapshot restored ($REWIND_BIN's output: $_cre_log)"
}
