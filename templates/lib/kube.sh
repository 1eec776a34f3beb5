# ---- rewind runtime library: kube -------------------------------------------------
# The two workstation steps that talk to the Kubernetes API: draining the
# nodes before the stop, and verifying the cluster after the rollback.
#
# drain_nodes records the nodes it cordoned in the state folder ("drained"),
# so that verify_cluster, run later on the same workstation, uncordons
# exactly those and not a node an administrator had cordoned on purpose.
# kubectl is given --kubeconfig only when the plan names a file; otherwise it
# uses $KUBECONFIG or its default.

# drain_nodes KUBECONFIG TIMEOUT NODE...: if the API answers, cordon and drain
# each node in the given order; if not, say so and succeed.
drain_nodes() {
	_dn_kc=$1
	_dn_to=$2
	shift 2
	if [ -n "$_dn_kc" ]; then rw_need_file "$_dn_kc"; fi
	_dn_rc=0
	kubectl ${_dn_kc:+"--kubeconfig=$_dn_kc"} --request-timeout=10s get --raw=/readyz >/dev/null 2>&1 || _dn_rc=$?
	if [ "$_dn_rc" -ne 0 ]; then
		rw_say "API not reachable; skipping drain (the stop step kills workloads)"
		return 0
	fi
	rw_ok "the Kubernetes API answers"
	_dn_file=$_rw_state_dir/drained
	for _dn_n in ${1+"$@"}; do
		_dn_rc=0
		_dn_u=$(kubectl ${_dn_kc:+"--kubeconfig=$_dn_kc"} --request-timeout=30s get node "$_dn_n" \
			-o 'jsonpath={.spec.unschedulable}' 2>&1) || _dn_rc=$?
		if [ "$_dn_rc" -ne 0 ]; then
			case $_dn_u in
			*NotFound* | *"not found"*)
				rw_warn "node $_dn_n is not in the cluster: not drained"
				continue
				;;
			esac
			rw_quote_cmd kubectl ${_dn_kc:+"--kubeconfig=$_dn_kc"} get node "$_dn_n"
			rw_fail_cmd "$_dn_rc" "could not read node $_dn_n: $_dn_u"
		fi
		_dn_known=0
		if [ -f "$_dn_file" ] && grep -q -x -F -e "$_dn_n" -- "$_dn_file"; then _dn_known=1; fi
		if [ "$_dn_u" = true ] && [ "$_dn_known" = 0 ]; then
			rw_say "node $_dn_n was cordoned before this step: it is drained, but the verify step will leave it cordoned"
		elif [ "$_dn_known" = 0 ] && ! rw_dry; then
			# Recorded before the drain: a drain that times out has cordoned already.
			printf '%s\n' "$_dn_n" >>"$_dn_file" ||
				rw_warn "could not record $_dn_n in $_dn_file: uncordon it yourself after the rollback"
		fi
		rw_hint "a pod that cannot be evicted (PodDisruptionBudget) stops the drain at the timeout: delete it by hand and run again, or go on to the stop step, which kills workloads anyway"
		rw_run kubectl ${_dn_kc:+"--kubeconfig=$_dn_kc"} drain --ignore-daemonsets --delete-emptydir-data \
			"--timeout=$_dn_to" "$_dn_n"
	done
	if ! rw_dry; then rw_ok "nodes drained: ${*:-none} (recorded in $_dn_file)"; fi
}

# verify_cluster KUBECONFIG TARGET NODE...: wait (REWIND_VERIFY_TIMEOUT,
# default 900 s) until every NODE is Ready with kubelet version TARGET;
# uncordon what drain_nodes drained; list node objects and node-password
# secrets that do not belong to the plan (advice only: nothing is deleted).
verify_cluster() {
	_vc_kc=$1
	_vc_tgt=$2
	shift 2
	if [ -n "$_vc_kc" ]; then rw_need_file "$_vc_kc"; fi
	rw_seconds REWIND_VERIFY_TIMEOUT 900
	_vc_to=$_rw_secs
	_vc_plan=$_rw_nl
	for _vc_n in ${1+"$@"}; do _vc_plan="$_vc_plan$_vc_n$_rw_nl"; done
	_vc_jp='jsonpath={range .items[*]}{.metadata.name}{"|"}{range .status.conditions[?(@.type=="Ready")]}{.status}{end}{"|"}{.status.nodeInfo.kubeletVersion}{"\n"}{end}'
	rw_say "waiting until $# nodes are Ready at $_vc_tgt (up to $_vc_to s, REWIND_VERIFY_TIMEOUT)"
	rw_deadline "$_vc_to"
	_vc_last=
	while :; do
		_vc_rc=0
		_vc_out=$(kubectl ${_vc_kc:+"--kubeconfig=$_vc_kc"} --request-timeout=10s get nodes -o "$_vc_jp" 2>&1) || _vc_rc=$?
		_vc_good=$_rw_nl
		_vc_extra=
		_vc_seen=
		if [ "$_vc_rc" -eq 0 ]; then
			while IFS='|' read -r _vc_a _vc_b _vc_c; do
				if [ -z "$_vc_a" ]; then continue; fi
				case $_vc_plan in
				*"$_rw_nl$_vc_a$_rw_nl"*)
					_vc_seen="$_vc_seen $_vc_a(Ready=${_vc_b:-?},${_vc_c:-?})"
					if [ "$_vc_b" = True ] && [ "$_vc_c" = "$_vc_tgt" ]; then
						_vc_good="$_vc_good$_vc_a$_rw_nl"
					fi
					;;
				*) _vc_extra="$_vc_extra $_vc_a" ;;
				esac
			done <<EOF
$_vc_out
EOF
		else
			_vc_seen=" (API not answering: ${_vc_out%%"$_rw_nl"*})"
		fi
		_vc_bad=
		for _vc_n in ${1+"$@"}; do
			case $_vc_good in
			*"$_rw_nl$_vc_n$_rw_nl"*) ;;
			*) _vc_bad="$_vc_bad $_vc_n" ;;
			esac
		done
		if [ -z "$_vc_bad" ]; then break; fi
		if rw_dry; then
			rw_would "wait until these nodes are Ready at $_vc_tgt:$_vc_bad (now:$_vc_seen)"
			break
		fi
		if rw_deadline_passed; then
			rw_hint "check each listed node's service log (journalctl -u rke2-server or rke2-agent), run its start step again if needed, then run this script again"
			rw_fail "not Ready at $_vc_tgt after $_rw_elapsed s:$_vc_bad (seen:$_vc_seen)"
		fi
		if [ "$_vc_seen" != "$_vc_last" ]; then
			rw_say "waiting for:$_vc_bad (seen:$_vc_seen; after $_rw_elapsed s)"
			_vc_last=$_vc_seen
		fi
		rw_poll_sleep
	done
	if [ -z "$_vc_bad" ]; then rw_ok "$# nodes Ready at $_vc_tgt"; fi

	# The drain step ran on this workstation, as this user or as root.
	_vc_done=$_rw_nl
	for _vc_f in "$_rw_state_dir/drained" "$_rw_state_alt/drained"; do
		if [ ! -f "$_vc_f" ]; then continue; fi
		while IFS= read -r _vc_n; do
			if [ -z "$_vc_n" ]; then continue; fi
			case $_vc_done in *"$_rw_nl$_vc_n$_rw_nl"*) continue ;; esac
			_vc_done="$_vc_done$_vc_n$_rw_nl"
			rw_run kubectl ${_vc_kc:+"--kubeconfig=$_vc_kc"} uncordon "$_vc_n"
		done <"$_vc_f"
	done
	if [ "$_vc_done" = "$_rw_nl" ]; then
		rw_say "no drained nodes recorded on this workstation: nothing to uncordon"
	fi

	if [ -n "$_vc_extra" ]; then
		rw_say "node objects not in the plan (restored from the snapshot?):$_vc_extra"
		rw_say "  if such a host no longer exists: kubectl delete node NAME"
	fi
	_vc_rc=0
	_vc_out=$(kubectl ${_vc_kc:+"--kubeconfig=$_vc_kc"} --request-timeout=10s -n kube-system get secrets \
		-o 'jsonpath={range .items[*]}{.metadata.name}{"\n"}{end}' 2>/dev/null) || _vc_rc=$?
	if [ "$_vc_rc" -ne 0 ]; then
		rw_warn "could not list the node-password secrets in kube-system"
		return 0
	fi
	_vc_stale=
	while IFS= read -r _vc_s; do
		case $_vc_s in
		*.node-password.rke2)
			case $_vc_plan in
			*"$_rw_nl${_vc_s%.node-password.rke2}$_rw_nl"*) ;;
			*) _vc_stale="$_vc_stale $_vc_s" ;;
			esac
			;;
		esac
	done <<EOF
$_vc_out
EOF
	if [ -n "$_vc_stale" ]; then
		rw_say "node-password secrets of nodes not in the plan:$_vc_stale"
		rw_say "  a host that joins again under such a name is rejected until: kubectl -n kube-system delete secret NAME"
	fi
}
