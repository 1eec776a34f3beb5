# ---- rewind runtime library: rancher ----------------------------------------------
# The Rancher deployment of an HA install on RKE1 (Rancher v2.0–v2.4 HA rollback guide): read the image
# it runs, set it to the target tag and wait for the rollout, and the final
# check of the image and the nodes. Every kubectl call names the kubeconfig
# of the plan; relative paths are relative to the folder the script is run
# from.

# _rc_kube KUBECONFIG: the kubeconfig is there.
_rc_kube() {
	if [ ! -f "$1" ]; then
		case $1 in
		/*) _rc_at=$1 ;;
		*) _rc_at="$1 (looked for in ${PWD:-.})" ;;
		esac
		rw_hint "rke up writes it beside the cluster file; run the workstation scripts from the folder that holds the cluster file"
		rw_fail "kubeconfig not found: $_rc_at"
	fi
}

# _rc_image KUBECONFIG NAMESPACE DEPLOYMENT CONTAINER: sets _rc_img to the
# image of CONTAINER in DEPLOYMENT and _rc_names to its containers. Returns 1
# (with _rc_err) when the API cannot be asked; fails when the container is
# not in the deployment.
_rc_image() {
	_rc_rc=0
	_rc_out=$(kubectl --kubeconfig "$1" -n "$2" get deployment "$3" \
		-o 'jsonpath={range .spec.template.spec.containers[*]}{.name}{"="}{.image}{"\n"}{end}' 2>&1) || _rc_rc=$?
	if [ "$_rc_rc" -ne 0 ]; then
		_rc_err=${_rc_out%%"$_rw_nl"*}
		return 1
	fi
	_rc_img=
	_rc_names=
	_rc_rest=$_rc_out
	while [ -n "$_rc_rest" ]; do
		_rc_line=${_rc_rest%%"$_rw_nl"*}
		case $_rc_rest in
		*"$_rw_nl"*) _rc_rest=${_rc_rest#*"$_rw_nl"} ;;
		*) _rc_rest= ;;
		esac
		_rc_names="$_rc_names ${_rc_line%%=*}"
		case $_rc_line in
		"$4="*) _rc_img=${_rc_line#*=} ;;
		esac
	done
	if [ -z "$_rc_img" ]; then
		rw_hint "set rke.container in the plan to one of these (cattle-server for the RKE add-on install, rancher for the helm chart) and compile again"
		rw_fail "deployment $2/$3 has no container $4 (its containers:${_rc_names:- none})"
	fi
}

# _rc_tag IMAGE: sets _rc_t to IMAGE's tag and _rc_repo to IMAGE without its
# tag or digest (a registry host:port before the first / is kept).
_rc_tag() {
	_rc_repo=${1%%@*}
	_rc_t=
	case ${_rc_repo##*/} in
	*:*)
		_rc_t=${_rc_repo##*:}
		_rc_repo=${_rc_repo%:*}
		;;
	esac
}

# rancher_check_deployment KUBECONFIG NAMESPACE DEPLOYMENT CONTAINER: the API
# answers and the deployment has CONTAINER; says which image it runs.
rancher_check_deployment() {
	rw_check_op rancher_check_deployment ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	_rc_kube "$1"
	if ! _rc_image "$1" "$2" "$3" "$4"; then
		rw_quote_cmd kubectl --kubeconfig "$1" -n "$2" get deployment "$3"
		rw_hint "the API must answer (this runs after rke up); check the kubeconfig, and the deployment name: cattle for the RKE add-on install, rancher for the helm chart"
		rw_fail_cmd "$_rc_rc" "could not read deployment $2/$3: $_rc_err"
	fi
	rw_ok "deployment $2/$3, container $4 runs $_rc_img"
}

# rancher_set_image KUBECONFIG NAMESPACE DEPLOYMENT CONTAINER TAG: set the
# container's image to its current repository at TAG (a private registry's
# copy stays), then wait for the rollout (REWIND_ROLLOUT_TIMEOUT, default 600 s).
rancher_set_image() {
	rancher_check_deployment "$1" "$2" "$3" "$4"
	_rc_tag "$_rc_img"
	_rsi_new=$_rc_repo:$5
	if [ "$_rc_img" = "$_rsi_new" ]; then
		rw_say "the container already has $_rsi_new (the restored deployment); setting it again is harmless"
	fi
	rw_seconds REWIND_ROLLOUT_TIMEOUT 600
	rw_hint "kubectl names the problem; check the deployment name and container in the plan"
	rw_run kubectl --kubeconfig "$1" -n "$2" set image "deployment/$3" "$4=$_rsi_new"
	rw_hint "read 'kubectl -n $2 get pods' and the pods' events (ImagePullBackOff: the nodes cannot pull $_rsi_new); raise REWIND_ROLLOUT_TIMEOUT if they are only slow"
	rw_run kubectl --kubeconfig "$1" -n "$2" rollout status "deployment/$3" "--timeout=${_rw_secs}s"
	if ! rw_dry; then rw_ok "deployment $2/$3 runs $_rsi_new"; fi
}

# _rv_check NODE...: one pass of rancher_verify, on the deployment named by
# _rv_kc, _rv_ns, _rv_dep, _rv_ct and the tag _rv_tag. Sets _rv_bad to what
# is not right yet (empty: all good), _rv_extra to the cluster's nodes that no
# NODE names, _rv_kubelet to the nodes' kubelet version.
_rv_check() {
	_rv_bad=
	_rv_extra=
	_rv_kubelet=
	if ! _rc_image "$_rv_kc" "$_rv_ns" "$_rv_dep" "$_rv_ct"; then
		_rv_bad="$_rv_bad$_rw_nl  the API does not answer: $_rc_err"
		return 0
	fi
	_rc_tag "$_rc_img"
	if [ "$_rc_t" != "$_rv_tag" ]; then
		_rv_bad="$_rv_bad$_rw_nl  $_rv_dep/$_rv_ct has image $_rc_img, not tag $_rv_tag"
	fi
	_rv_rc=0
	_rv_out=$(kubectl --kubeconfig "$_rv_kc" -n "$_rv_ns" get deployment "$_rv_dep" \
		-o 'jsonpath={.metadata.generation}/{.status.observedGeneration}/{.spec.replicas}/{.status.updatedReplicas}/{.status.availableReplicas}' 2>&1) || _rv_rc=$?
	# A `/` separator keeps empty fields (no available replica yet) in place.
	IFS=/ read -r _rv_gen _rv_obs _rv_rep _rv_upd _rv_av <<EOF || true
$_rv_out
EOF
	if [ "$_rv_rc" -ne 0 ]; then
		_rv_bad="$_rv_bad$_rw_nl  could not read the rollout of $_rv_dep: ${_rv_out%%"$_rw_nl"*}"
	elif [ "$_rv_obs" != "$_rv_gen" ] || [ "$_rv_upd" != "$_rv_rep" ] || [ "$_rv_av" != "$_rv_rep" ]; then
		_rv_bad="$_rv_bad$_rw_nl  the rollout of $_rv_dep is not complete ($_rv_rep wanted, ${_rv_upd:-0} updated, ${_rv_av:-0} available)"
	fi
	_rv_rc=0
	_rv_nodes=$(kubectl --kubeconfig "$_rv_kc" get nodes \
		-o 'jsonpath={range .items[*]}{" "}{.metadata.name}{" "}{range .status.addresses[*]}{.address}{" "}{end}{"|"}{range .status.conditions[?(@.type=="Ready")]}{.status}{end}{"|"}{.status.nodeInfo.kubeletVersion}{"\n"}{end}' 2>&1) || _rv_rc=$?
	if [ "$_rv_rc" -ne 0 ]; then
		_rv_bad="$_rv_bad$_rw_nl  could not list the nodes: ${_rv_nodes%%"$_rw_nl"*}"
		return 0
	fi
	_rv_seen=
	for _rv_spec in ${1+"$@"}; do
		_rv_found=
		_rv_rest=$_rv_nodes
		while [ -n "$_rv_rest" ]; do
			_rv_line=${_rv_rest%%"$_rw_nl"*}
			case $_rv_rest in
			*"$_rw_nl"*) _rv_rest=${_rv_rest#*"$_rw_nl"} ;;
			*) _rv_rest= ;;
			esac
			_rv_ids="${_rv_line%%"|"*} "
			_rv_ids_rest=$_rv_spec,
			while [ -n "$_rv_ids_rest" ]; do
				_rv_id=${_rv_ids_rest%%,*}
				_rv_ids_rest=${_rv_ids_rest#*,}
				case $_rv_ids in
				*" $_rv_id "*)
					_rv_found=$_rv_line
					break
					;;
				esac
			done
			if [ -n "$_rv_found" ]; then break; fi
		done
		if [ -z "$_rv_found" ]; then
			_rv_bad="$_rv_bad$_rw_nl  node $_rv_spec is not in the cluster"
			continue
		fi
		_rv_seen="$_rv_seen$_rw_nl$_rv_found"
		_rv_tail=${_rv_found#*"|"}
		_rv_ready=${_rv_tail%%"|"*}
		_rv_ver=${_rv_tail#*"|"}
		if [ "$_rv_ready" != True ]; then
			_rv_bad="$_rv_bad$_rw_nl  node $_rv_spec is not Ready (${_rv_ready:-no Ready condition})"
		fi
		if [ -z "$_rv_kubelet" ]; then
			_rv_kubelet=$_rv_ver
		elif [ "$_rv_ver" != "$_rv_kubelet" ]; then
			_rv_bad="$_rv_bad$_rw_nl  node $_rv_spec runs kubelet $_rv_ver, another node $_rv_kubelet (not every node was rolled back)"
		fi
	done
	_rv_rest=$_rv_nodes
	while [ -n "$_rv_rest" ]; do
		_rv_line=${_rv_rest%%"$_rw_nl"*}
		case $_rv_rest in
		*"$_rw_nl"*) _rv_rest=${_rv_rest#*"$_rw_nl"} ;;
		*) _rv_rest= ;;
		esac
		case "$_rv_seen$_rw_nl" in
		*"$_rw_nl$_rv_line$_rw_nl"*) ;;
		*)
			_rv_name=${_rv_line# }
			_rv_extra="$_rv_extra ${_rv_name%% *}"
			;;
		esac
	done
}

# rancher_verify KUBECONFIG NAMESPACE DEPLOYMENT CONTAINER TAG NODE...: wait
# (REWIND_VERIFY_TIMEOUT, default 900 s) until the container's image has TAG
# with the rollout complete and every NODE (NAME[,NAME]: its address and host
# name, matched against node names and addresses) is Ready, all at the same
# kubelet version. Node objects not in the plan are listed, not deleted.
rancher_verify() {
	_rc_kube "$1"
	rw_seconds REWIND_VERIFY_TIMEOUT 900
	if rw_dry; then
		rw_would "wait up to ${_rw_secs}s until $3/$4 runs tag $5 and the nodes are Ready"
		return 0
	fi
	_rv_kc=$1
	_rv_ns=$2
	_rv_dep=$3
	_rv_ct=$4
	_rv_tag=$5
	shift 5
	rw_deadline "$_rw_secs"
	while :; do
		_rv_check ${1+"$@"}
		if [ -z "$_rv_bad" ]; then break; fi
		if rw_deadline_passed; then
			rw_hint "read the lines above; a NotReady node: 'docker logs kubelet' on it, then run the restart step there again"
			rw_fail "after ${_rw_elapsed}s, still:$_rv_bad"
		fi
		rw_say "waiting (${_rw_elapsed}s of ${_rw_secs}s):$_rv_bad"
		rw_poll_sleep
	done
	if [ -n "$_rv_extra" ]; then
		rw_warn "node objects not in the plan (from the snapshot, or the failed node):$_rv_extra; delete them with kubectl delete node once you are sure they are gone"
	fi
	rw_ok "Rancher runs $_rv_tag ($_rc_img); $# node(s) Ready, kubelet $_rv_kubelet"
}
