# ---- rewind runtime library: kube -------------------------------------------------
# The workstation steps that talk to the Kubernetes API: draining the nodes
# before the stop, stopping the automation that would upgrade the restored
# cluster again (system-upgrade-controller), and verifying the cluster after
# the rollback; and the node check for Rancher's system agent, the other
# such automation.
#
# drain_nodes records the nodes it cordoned in the state folder ("drained"),
# so that verify_cluster, run later on the same workstation, uncordons
# exactly those and not a node an administrator had cordoned on purpose.
# suspend_upgrades records the system-upgrade-controller deployments it
# scaled to 0 ("suc-scaled": NAMESPACE NAME REPLICAS lines), so that the
# verify step and the way back name exactly those and their replicas.
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
			rw_hint "check each listed node's service log (journalctl -u $REWIND_SERVER_UNIT or $REWIND_AGENT_UNIT), run its start step again if needed, then run this script again; a node back at a newer version was upgraded again by automation (kubectl get plans.upgrade.cattle.io -A; Rancher)"
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
		*.node-password."$REWIND_BIN")
			case $_vc_plan in
			*"$_rw_nl${_vc_s%".node-password.$REWIND_BIN"}$_rw_nl"*) ;;
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

# ---- automatic upgrades: system-upgrade-controller, Rancher --------------------
# rancher/system-upgrade-controller keeps its Plans as plans.upgrade.cattle.io
# (namespaced) and runs as the Deployment system-upgrade-controller: in
# system-upgrade when installed from its manifest, in cattle-system when
# Rancher installs it. A Plan has no pause field, so the controller is scaled
# to 0. The restore brings back the snapshot's Plans and node labels, so
# whatever was suspended before the rollback is active again
# (docs/upstream-facts.md §9).

# _kube_get KUBECONFIG ARGS...: `kubectl ARGS`, read-only. Its standard
# output in _kube_out, the first line of its error output in _kube_err, its
# exit code in _kube_rc, the command (quoted) in _rw_cmd. Never fails.
_kube_get() {
	_kube_g_kc=$1
	shift
	rw_tmpdir
	rw_quote_cmd kubectl ${_kube_g_kc:+"--kubeconfig=$_kube_g_kc"} "$@"
	_kube_rc=0
	_kube_out=$(kubectl ${_kube_g_kc:+"--kubeconfig=$_kube_g_kc"} --request-timeout=30s "$@" 2>"$_rw_tmp/kube.err") ||
		_kube_rc=$?
	_kube_err=
	read -r _kube_err <"$_rw_tmp/kube.err" || true
}

# _kube_notfound: true if the last _kube_get failed because the object does
# not exist.
_kube_notfound() {
	case $_kube_err in
	*NotFound* | *"not found"*) return 0 ;;
	esac
	return 1
}

# _kube_suc KUBECONFIG: the system-upgrade-controller deployments of every
# namespace, as NAMESPACE|NAME|REPLICAS|RUNNING lines in _kube_out; stops the
# step if the API does not answer.
_kube_suc() {
	_kube_get "$1" get deployments --all-namespaces --field-selector=metadata.name=system-upgrade-controller \
		-o 'jsonpath={range .items[*]}{.metadata.namespace}{"|"}{.metadata.name}{"|"}{.spec.replicas}{"|"}{.status.replicas}{"\n"}{end}'
	if [ "$_kube_rc" -ne 0 ]; then
		if [ -z "$_rw_hint" ]; then rw_hint "run the command above by hand: the API must answer with the kubeconfig's credentials (kubectl cluster-info); when it does, run this script again"; fi
		rw_fail_cmd "$_kube_rc" "could not list the system-upgrade-controller deployments: ${_kube_err:-no answer}"
	fi
}

# _kube_plans KUBECONFIG: _kube_crd=1 and the Plans in _kube_out
# (NAMESPACE|NAME|VERSION|CHANNEL lines) when the CRD plans.upgrade.cattle.io
# exists; _kube_crd=0 when it does not. Stops the step on any other error.
_kube_plans() {
	_kube_get "$1" get crd plans.upgrade.cattle.io -o name
	if [ "$_kube_rc" -ne 0 ]; then
		if _kube_notfound; then
			_kube_crd=0
			_kube_out=
			return 0
		fi
		if [ -z "$_rw_hint" ]; then rw_hint "run the command above by hand: the API must answer with the kubeconfig's credentials (kubectl cluster-info); when it does, run this script again"; fi
		rw_fail_cmd "$_kube_rc" "could not look for the CRD plans.upgrade.cattle.io: ${_kube_err:-no answer}"
	fi
	_kube_crd=1
	_kube_get "$1" get plans.upgrade.cattle.io --all-namespaces \
		-o 'jsonpath={range .items[*]}{.metadata.namespace}{"|"}{.metadata.name}{"|"}{.spec.version}{"|"}{.spec.channel}{"\n"}{end}'
	if [ "$_kube_rc" -ne 0 ]; then
		if [ -z "$_rw_hint" ]; then rw_hint "run the command above by hand: the API must answer with the kubeconfig's credentials (kubectl cluster-info); when it does, run this script again"; fi
		rw_fail_cmd "$_kube_rc" "could not list the system-upgrade-controller Plans: ${_kube_err:-no answer}"
	fi
}

# _kube_stale VERSION CHANNEL TARGET: true for a Plan that upgrades RKE2 to
# another version than TARGET: an RKE2 version other than TARGET (written
# with `+` or, as in image tags, `-` before rke2rN), or a channel and no
# version (the controller follows the channel's latest release). Plans of
# other software (Rancher's system-agent-upgrader) are not.
_kube_stale() {
	if [ -n "$1" ]; then
		case $1 in
		"$3" | "${3%%+*}-${3#*+}") return 1 ;;
		*"$REWIND_BIN"*) return 0 ;;
		esac
		return 1
	fi
	[ -n "$2" ]
}

# _kube_recorded NAMESPACE NAME: true if suspend_upgrades scaled this
# deployment to 0 (recorded in either state folder of this workstation);
# its replicas before that in _kube_replicas.
_kube_recorded() {
	for _kube_r_f in "$_rw_state_dir/suc-scaled" "$_rw_state_alt/suc-scaled"; do
		if [ ! -f "$_kube_r_f" ]; then continue; fi
		while read -r _kube_r_ns _kube_r_name _kube_r_n; do
			if [ "$_kube_r_ns" = "$1" ] && [ "$_kube_r_name" = "$2" ]; then
				_kube_replicas=$_kube_r_n
				return 0
			fi
		done <"$_kube_r_f"
	done
	return 1
}

# _kube_plan_fixes KUBECONFIG NAMESPACE NAME TARGET: prints the commands that
# delete the Plan, or pin it to TARGET.
_kube_plan_fixes() {
	rw_quote_cmd kubectl ${1:+"--kubeconfig=$1"} -n "$2" delete plans.upgrade.cattle.io "$3"
	rw_say "  delete it: $_rw_cmd"
	rw_quote_cmd kubectl ${1:+"--kubeconfig=$1"} -n "$2" patch plans.upgrade.cattle.io "$3" --type=merge \
		-p "{\"spec\":{\"version\":\"$4\"}}"
	rw_say "  or pin it to $4 (its job then runs once more on every node it selects): $_rw_cmd"
}

# check_rancher_agent MANAGED TARGET MARKER...: a node that has one of the
# MARKER paths (rancher-system-agent's unit, its config folder) is
# provisioned by Rancher, whose system agent applies the Kubernetes version
# set in Rancher again after the rollback. Refused unless MANAGED is "true"
# (the plan's `rancher-managed = true`: that version is set to TARGET).
check_rancher_agent() {
	rw_check_op check_rancher_agent ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	_cra_ack=$1
	_cra_tgt=$2
	shift 2
	_cra_found=
	for _cra_m in ${1+"$@"}; do
		if [ -e "$_cra_m" ] || [ -L "$_cra_m" ]; then _cra_found="$_cra_found${_cra_found:+, }$_cra_m"; fi
	done
	if [ -z "$_cra_found" ]; then
		if [ "$_cra_ack" = true ]; then rw_say "no Rancher system agent on this node (none of: $*)"; fi
		return 0
	fi
	if [ "$_cra_ack" = true ]; then
		rw_ok "managed by Rancher (found $_cra_found); the plan says Rancher's Kubernetes version for this cluster is $_cra_tgt (rancher-managed = true)"
		return 0
	fi
	rw_hint "in Rancher, set this cluster's Kubernetes version to $_cra_tgt (or stop Rancher from managing it), then add rancher-managed = true to [cluster] in the plan, compile it again and use the new bundle"
	rw_fail "this node is managed by Rancher (found $_cra_found): rancher-system-agent applies the Kubernetes version set in Rancher again after the rollback, and the plan does not say that was dealt with (rancher-managed = true in [cluster])"
}

# suspend_upgrades KUBECONFIG TARGET MANAGED: stop system-upgrade-controller
# from upgrading the restored cluster again, before the other nodes start:
# scale every deployment named system-upgrade-controller (any namespace) to
# 0, recording each in the state folder first; list the Plans with their
# version or channel, warning about those that target another RKE2 version
# than TARGET; without the CRD plans.upgrade.cattle.io, say so and succeed.
# Reports Rancher's cluster agent (cattle-system/cattle-cluster-agent),
# with a warning unless MANAGED is "true".
suspend_upgrades() {
	_su_kc=$1
	_su_tgt=$2
	_su_ack=$3
	if [ -n "$_su_kc" ]; then rw_need_file "$_su_kc"; fi
	_su_file=$_rw_state_dir/suc-scaled
	rw_hint "the API of the first server does not answer (yet?): wait a minute and run this step again; do not start the other servers or the agents before it has succeeded"
	_kube_suc "$_su_kc"
	rw_hint
	_su_list=$_kube_out
	# Every command first, for the hint if the API refuses one of them.
	_su_cmds=
	_su_n=0
	while IFS='|' read -r _su_ns _su_name _su_spec _su_st; do
		if [ -z "$_su_name" ]; then continue; fi
		_su_n=$((_su_n + 1))
		rw_say "system-upgrade-controller: deployment $_su_ns/$_su_name, ${_su_spec:-1} replicas (${_su_st:-0} running)"
		if [ "${_su_spec:-1}" != 0 ]; then
			rw_quote_cmd kubectl ${_su_kc:+"--kubeconfig=$_su_kc"} -n "$_su_ns" scale deployment "$_su_name" --replicas=0
			_su_cmds="$_su_cmds${_su_cmds:+; }$_rw_cmd"
		fi
	done <<EOF
$_su_list
EOF
	if [ "$_su_n" = 0 ]; then
		rw_say "no system-upgrade-controller deployment in any namespace"
	fi
	_su_done=0
	while IFS='|' read -r _su_ns _su_name _su_spec _su_st; do
		if [ -z "$_su_name" ]; then continue; fi
		if [ "${_su_spec:-1}" = 0 ]; then
			if _kube_recorded "$_su_ns" "$_su_name"; then
				rw_say "$_su_ns/$_su_name is scaled to 0 already (by this step; it had $_kube_replicas)"
			else
				rw_say "$_su_ns/$_su_name had 0 replicas before this step: left as it is, not recorded"
			fi
			continue
		fi
		if ! rw_dry && ! _kube_recorded "$_su_ns" "$_su_name"; then
			# Recorded before the scale: a scale that fails half-way is recorded too.
			printf '%s %s %s\n' "$_su_ns" "$_su_name" "${_su_spec:-1}" >>"$_su_file" ||
				rw_warn "could not record $_su_ns/$_su_name in $_su_file: it had ${_su_spec:-1} replicas; scale it back yourself later"
		fi
		rw_hint "if the API refuses (permissions, an admission webhook), stop the controller by hand with a cluster-admin kubeconfig before any other node starts: $_su_cmds"
		rw_run kubectl ${_su_kc:+"--kubeconfig=$_su_kc"} -n "$_su_ns" scale deployment "$_su_name" --replicas=0
		_su_done=$((_su_done + 1))
	done <<EOF
$_su_list
EOF

	_kube_plans "$_su_kc"
	if [ "$_kube_crd" = 0 ]; then
		rw_ok "the CRD plans.upgrade.cattle.io does not exist: no system-upgrade-controller Plan can upgrade this cluster"
	else
		_su_p=0
		_su_stale=0
		while IFS='|' read -r _su_ns _su_name _su_v _su_ch; do
			if [ -z "$_su_name" ]; then continue; fi
			_su_p=$((_su_p + 1))
			if [ -n "$_su_v" ]; then _su_what="version $_su_v"; else _su_what="channel ${_su_ch:-(none)}"; fi
			if _kube_stale "$_su_v" "$_su_ch" "$_su_tgt"; then
				_su_stale=$((_su_stale + 1))
				rw_warn "Plan $_su_ns/$_su_name: $_su_what, not the rollback target $_su_tgt: it upgrades the cluster again as soon as the controller runs"
				_kube_plan_fixes "$_su_kc" "$_su_ns" "$_su_name" "$_su_tgt"
			else
				rw_say "Plan $_su_ns/$_su_name: $_su_what"
			fi
		done <<EOF
$_kube_out
EOF
		if [ "$_su_p" = 0 ]; then rw_say "no Plan (plans.upgrade.cattle.io) in any namespace"; fi
		if [ "$_su_stale" -gt 0 ]; then
			rw_say "fix those Plans before you scale the controller back up (the verify step lists them again)"
		fi
	fi

	_kube_get "$_su_kc" -n cattle-system get deployment cattle-cluster-agent -o name
	if [ "$_kube_rc" -eq 0 ]; then
		if [ "$_su_ack" = true ]; then
			rw_say "Rancher manages this cluster (cattle-system/cattle-cluster-agent); the plan says its Kubernetes version in Rancher is $_su_tgt (rancher-managed = true)"
		else
			rw_warn "Rancher manages this cluster (cattle-system/cattle-cluster-agent), and the plan does not say so: Rancher applies the Kubernetes version set for the cluster again and may scale system-upgrade-controller back up. Set that version to $_su_tgt in Rancher, then add rancher-managed = true to [cluster] in the plan"
		fi
	elif ! _kube_notfound; then
		rw_fail_cmd "$_kube_rc" "could not look for Rancher's cluster agent: ${_kube_err:-no answer}"
	fi
	if [ "$_su_done" -gt 0 ] && ! rw_dry; then
		rw_ok "system-upgrade-controller stopped: $_su_done deployment(s) scaled to 0 (recorded in $_su_file)"
	fi
}

# check_upgrades KUBECONFIG TARGET: after the rollback, no
# system-upgrade-controller replica may run while a Plan targets another
# RKE2 version than TARGET (it would upgrade the cluster again): that fails
# with the commands that stop it. Lists such Plans (a warning, with the
# commands to delete or pin each) and the deployments suspend_upgrades
# scaled to 0, with the command that scales each back.
check_upgrades() {
	rw_check_op check_upgrades ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	_cu_kc=$1
	_cu_tgt=$2
	if [ -n "$_cu_kc" ]; then rw_need_file "$_cu_kc"; fi
	_kube_suc "$_cu_kc"
	_cu_list=$_kube_out
	_kube_plans "$_cu_kc"
	_cu_stale=
	while IFS='|' read -r _cu_ns _cu_name _cu_v _cu_ch; do
		if [ -z "$_cu_name" ]; then continue; fi
		if _kube_stale "$_cu_v" "$_cu_ch" "$_cu_tgt"; then
			_cu_stale="$_cu_stale $_cu_ns/$_cu_name"
			if [ -n "$_cu_v" ]; then _cu_what="version $_cu_v"; else _cu_what="channel $_cu_ch"; fi
			rw_warn "Plan $_cu_ns/$_cu_name targets $_cu_what, not $_cu_tgt"
			_kube_plan_fixes "$_cu_kc" "$_cu_ns" "$_cu_name" "$_cu_tgt"
		fi
	done <<EOF
$_kube_out
EOF
	_cu_run=
	_cu_cmds=
	while IFS='|' read -r _cu_ns _cu_name _cu_spec _cu_st; do
		if [ -z "$_cu_name" ]; then continue; fi
		if [ "${_cu_spec:-1}" != 0 ] || [ "${_cu_st:-0}" != 0 ]; then
			_cu_run="$_cu_run $_cu_ns/$_cu_name(${_cu_spec:-1} replicas, ${_cu_st:-0} running)"
			rw_quote_cmd kubectl ${_cu_kc:+"--kubeconfig=$_cu_kc"} -n "$_cu_ns" scale deployment "$_cu_name" --replicas=0
			_cu_cmds="$_cu_cmds${_cu_cmds:+; }$_rw_cmd"
		elif _kube_recorded "$_cu_ns" "$_cu_name"; then
			rw_quote_cmd kubectl ${_cu_kc:+"--kubeconfig=$_cu_kc"} -n "$_cu_ns" scale deployment "$_cu_name" "--replicas=$_kube_replicas"
			rw_say "system-upgrade-controller $_cu_ns/$_cu_name is scaled to 0 (by the suspend step); once the Plans are right, scale it back: $_rw_cmd"
		else
			rw_say "system-upgrade-controller $_cu_ns/$_cu_name has 0 replicas"
		fi
	done <<EOF
$_cu_list
EOF
	if [ -n "$_cu_run" ] && [ -n "$_cu_stale" ]; then
		rw_hint "stop it ($_cu_cmds), delete or pin the Plans listed above, then run this step again"
		rw_fail "system-upgrade-controller runs:$_cu_run, and Plans target another version than $_cu_tgt:$_cu_stale: it will upgrade the cluster again"
	fi
	if [ -n "$_cu_run" ]; then
		rw_ok "system-upgrade-controller runs:$_cu_run; no Plan targets another $REWIND_PRODUCT version than $_cu_tgt"
	elif [ -n "$_cu_stale" ]; then
		rw_ok "no system-upgrade-controller replica runs; fix the Plans listed above before you scale it back up"
	else
		rw_ok "no system-upgrade-controller replica runs, and no Plan targets another $REWIND_PRODUCT version than $_cu_tgt"
	fi
}
