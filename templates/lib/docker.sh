# ---- rewind runtime library: docker ---------------------------------------------
# RKE1 runs each Kubernetes component as a docker container named after it
# (kube-apiserver, kubelet, ...) and the pods' containers as
# k8s_<container>_<pod>_<namespace>_... . These functions find containers by
# name in `docker ps --format '{{.Names}}'` and restart only those that
# exist: the rollback guide's `docker ps | grep flannel | cut -f 1 -d " " | xargs
# docker restart` runs `docker restart` with no argument (an error) when
# nothing matches, and its grep also matches image names.

# _dk_names [-a]: sets _dk_out to the names of the running containers (all
# containers with -a), one per line, and _dk_list to the same between
# newlines, so that "$_rw_nl$name$_rw_nl" matches one whole name.
_dk_names() {
	_dk_rc=0
	_dk_out=$(docker ps ${1+"$@"} --format '{{.Names}}' 2>/dev/null) || _dk_rc=$?
	if [ "$_dk_rc" -ne 0 ]; then
		_dk_err=$(docker ps ${1+"$@"} --format '{{.Names}}' 2>&1 >/dev/null) || true
		rw_quote_cmd docker ps ${1+"$@"} --format '{{.Names}}'
		rw_hint "start docker (systemctl start docker), or run as a user allowed to use it, then run this script again"
		rw_fail_cmd "$_dk_rc" "docker does not answer: ${_dk_err:-no message}"
	fi
	_dk_list="$_rw_nl$_dk_out$_rw_nl"
}

# _dk_missing NAME...: sets _dk_miss to the NAMEs that are not running
# (after _dk_names), each preceded by a space.
_dk_missing() {
	_dk_miss=
	for _dk_m_n in "$@"; do
		case $_dk_list in
		*"$_rw_nl$_dk_m_n$_rw_nl"*) ;;
		*) _dk_miss="$_dk_miss $_dk_m_n" ;;
		esac
	done
}

# need_docker: the docker daemon answers.
need_docker() {
	rw_check_op need_docker ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	_dk_names
	rw_ok "docker answers"
}

# need_containers NAME...: every NAME is a running container.
need_containers() {
	rw_check_op need_containers ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	_dk_names
	_dk_missing "$@"
	if [ -n "$_dk_miss" ]; then
		# rke up (the workstation's step before this one) starts them.
		if rw_deferred "containers not running yet on this node:$_dk_miss (rke up, the workstation's step before this one, starts them)"; then return 0; fi
		rw_hint "rke up starts these on a node with this node's roles: read 'docker ps -a' and 'docker logs <name>', run the up step again, then this step"
		rw_fail "not running on this node:$_dk_miss"
	fi
	rw_ok "running: $*"
}

# need_no_containers NAME...: no container, running or exited, has one of
# these names.
need_no_containers() {
	rw_check_op need_no_containers ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	_dk_names -a
	_nn_found=
	for _nn_n in "$@"; do
		case $_dk_list in
		*"$_rw_nl$_nn_n$_rw_nl"*) _nn_found="$_nn_found $_nn_n" ;;
		esac
	done
	if [ -n "$_nn_found" ]; then
		rw_hint "it is left over from an earlier run of rke and would make rke read stale results: remove it with 'docker rm -f$_nn_found', then run this script again"
		rw_fail "stale container on this node:$_nn_found"
	fi
	rw_ok "no stale container: $*"
}

# restart_containers NAME...: docker restart NAME...; each must be running.
restart_containers() {
	_dk_names
	_dk_missing "$@"
	if [ -n "$_dk_miss" ] && rw_dry && rw_deferred "containers not running yet on this node:$_dk_miss (rke up, the workstation's step before this one, starts them)"; then
		rw_run docker restart "$@"
		return 0
	fi
	if [ -n "$_dk_miss" ]; then
		rw_hint "rke up starts these on a node with this node's roles: read 'docker ps -a' and 'docker logs <name>', run the up step again, then this step"
		rw_fail "not running on this node:$_dk_miss"
	fi
	rw_run docker restart "$@"
	if ! rw_dry; then rw_ok "restarted: $*"; fi
}

# restart_matching_containers WORD: docker restart of every running container
# whose name contains WORD, except pod sandboxes (k8s_POD_*: restarting one
# takes its pod's network away). None is not an error.
restart_matching_containers() {
	_rm_word=$1
	_dk_names
	set --
	_rm_rest=$_dk_out
	while [ -n "$_rm_rest" ]; do
		_rm_n=${_rm_rest%%"$_rw_nl"*}
		case $_rm_rest in
		*"$_rw_nl"*) _rm_rest=${_rm_rest#*"$_rw_nl"} ;;
		*) _rm_rest= ;;
		esac
		case $_rm_n in
		k8s_POD_*) ;;
		*"$_rm_word"*) set -- ${1+"$@"} "$_rm_n" ;;
		esac
	done
	if [ $# -eq 0 ]; then
		rw_ok "no running container matches $_rm_word: nothing to restart"
		return 0
	fi
	rw_run docker restart "$@"
	if ! rw_dry; then rw_ok "restarted $# container(s) matching $_rm_word"; fi
}
