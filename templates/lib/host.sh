# ---- rewind runtime library: host ---------------------------------------------
# `sh host.sh status|next|rehearse [--node NAME] [--confirmed]`: one host's
# way through the bundle. host.sh (one per bundle, at its root) lists the
# steps in README order (host_step lines) and calls host_main; the scripts of
# a host are the files of its folder, nodes/<node>/ or workstation/, so the
# step list names hosts only where their order matters (a step run one host
# at a time).
#
# - status: done / failed / started / pending for each step of this host,
#   from the done-markers and the journal (read only).
# - next: runs the first step of this host that is not done, once the step
#   before it in the README has finished on the other hosts that run it
#   (and, for a step run one host at a time, the hosts before this one have
#   finished it). host.sh cannot see other hosts: the operator confirms
#   (types yes, or --confirmed / REWIND_YES=1); with no terminal and no
#   confirmation it refuses (exit 4).
# - rehearse: dry-runs every step of this host that is not done, in order,
#   as one rehearsal (REWIND_REHEARSAL, core.sh): what an earlier step of
#   this host establishes is taken as given by the later ones, and every
#   problem found is listed at the end. Changes nothing; exit 1 if a problem
#   was found.
#
# The host is the node whose folder is named like this host (uname -n, its
# short name, or one of its addresses: the scripts' host guard), REWIND_HOST,
# or --node NAME (`--node workstation` for the workstation).

_host_title=
_host_order=
_host_p=
_host_pc=0

# host_step NN-ID COUNT TITLE [HOST...]: one step of the bundle, in README
# order, run by COUNT hosts; HOSTs, when given, run it one at a time in that
# order. Called by host.sh's
# steps(), once per listing, for the visitor in _host_visit.
host_step() {
	"$_host_visit" "$@"
}

_host_usage() {
	cat <<EOF
usage: sh $0 status|next|rehearse [--node NAME] [--confirmed]
Cluster $REWIND_CLUSTER, plan $REWIND_PLAN.
  status     each step of this host: done, failed, started or pending
  next       run this host's next step (asks to confirm that the step before
             it finished on the other hosts; --confirmed or REWIND_YES=1 says so)
  rehearse   dry-run every pending step of this host in order, as one
             rehearsal, and list every problem found (changes nothing)
  --node NAME  the node this host is (default: the node named like this
             host); --node workstation for the workstation's steps
Exit codes: 0 ok; 1 problems found (rehearse) or the step failed (next: its
own code); 2 usage; 3 this host is not a node of the bundle; 4 refused (the
order was not confirmed). Read README.md for the order of the steps.
EOF
}

# _host_find NODE: sets _host_node, _host_dir (its folder) and
# REWIND_NEEDS_ROOT; NODE empty: the node this host is.
_host_find() {
	_host_node=$1
	if [ -z "$_host_node" ] && [ -n "${REWIND_HOST:-}" ]; then _host_node=$REWIND_HOST; fi
	if [ -z "$_host_node" ]; then
		_host_h=$(uname -n 2>/dev/null) || _host_h=
		_host_h=$(printf '%s' "$_host_h" | tr 'ABCDEFGHIJKLMNOPQRSTUVWXYZ' 'abcdefghijklmnopqrstuvwxyz')
		if [ -n "$_host_h" ] && [ -d "$_host_b/nodes/$_host_h" ]; then
			_host_node=$_host_h
		elif [ -n "$_host_h" ] && [ -d "$_host_b/nodes/${_host_h%%.*}" ]; then
			_host_node=${_host_h%%.*}
		else
			# An RKE1 node known by its address has a folder of that name
			# (the only nodes whose guard accepts an address).
			REWIND_NODE_ADDRESSES=
			for _host_f in "$_host_b"/nodes/*[0-9].[0-9]* "$_host_b"/nodes/*:*; do
				if [ -d "$_host_f" ]; then REWIND_NODE_ADDRESSES="$REWIND_NODE_ADDRESSES ${_host_f##*/}"; fi
			done
			if _rw_addr_here; then _host_node=$_rw_ah_found; fi
		fi
	fi
	if [ -z "$_host_node" ]; then
		{
			printf 'rewind: this host (%s) is none of the nodes of this bundle (nodes/).\n' "${_host_h:-no name}"
			printf '  On a node whose host name differs from the plan'"'"'s: sh %s %s --node NODE (or REWIND_HOST=NODE).\n' "$0" "$_host_cmd"
			printf '  On the workstation: sh %s %s --node workstation\n' "$0" "$_host_cmd"
		} >&2
		_rw_reported=1
		exit 3
	fi
	case $_host_node in
	workstation)
		_host_dir=$_host_b/workstation
		_host_rel=workstation
		REWIND_NEEDS_ROOT=0
		;;
	*/* | . | ..)
		printf 'rewind: not a node name: %s\n' "$_host_node" >&2
		_rw_reported=1
		exit 2
		;;
	*)
		_host_dir=$_host_b/nodes/$_host_node
		_host_rel=nodes/$_host_node
		REWIND_NEEDS_ROOT=1
		;;
	esac
	if [ ! -d "$_host_dir" ]; then
		printf 'rewind: the bundle has no folder %s/: %s runs no step of this plan\n' "$_host_rel" "$_host_node" >&2
		_rw_reported=1
		exit 3
	fi
	REWIND_NODE=$_host_node
}

# _host_marker STEP: true if STEP is done on this host; _host_when holds its
# marker's first line.
_host_marker() {
	_host_when=
	for _host_m in "$_rw_state_dir/$1.done" "$_rw_state_alt/$1.done"; do
		if [ -f "$_host_m" ]; then
			{ read -r _host_when <"$_host_m"; } 2>/dev/null || _host_when=
			_host_when=${_host_when%% host=*}
			_host_when=${_host_when#finished=}
			return 0
		fi
		if [ "$REWIND_NEEDS_ROOT" = 1 ]; then break; fi
	done
	return 1
}

# _host_journal STEP: _host_last is the last journal line of STEP on this
# host (empty: none); _host_res and _host_exit its result and exit code.
_host_journal() {
	# The workstation may have kept its journal in either folder. Lines start
	# with an ISO time (compared as text); of lines of the same second, the
	# later one in the file wins (a start and its failure).
	_host_last=$(
		for _host_l in "$_rw_d_log/$REWIND_CLUSTER.log" "$_rw_d_flog/$REWIND_CLUSTER.log"; do
			if [ -f "$_host_l" ]; then grep -F -e " step=$1 host=$REWIND_NODE " -- "$_host_l" || :; fi
		done | awk '$1 >= t { t = $1; l = $0 } END { if (l != "") print l }'
	) || _host_last=
	_host_res=${_host_last##* result=}
	_host_res=${_host_res%% *}
	_host_exit=${_host_last##* exit=}
}

# The visitors of host_step (one listing of the steps each).

# Collects this host's steps (_host_mine) and the step before each
# (_host_prev_<n>: the one before it in the README, on any host).
_host_collect() {
	_host_id=$1
	_host_nn=${1%%-*}
	case $_host_nn in
	'' | *[!0-9]*)
		printf 'rewind: host.sh lists a step %s that is not NN-id\n' "$1" >&2
		exit 2
		;;
	esac
	eval "_host_count_$_host_nn=\$2"
	if [ -f "$_host_dir/$1.sh" ]; then
		_host_mine="$_host_mine $1"
		eval "_host_before_$_host_nn=\$_host_prev"
		eval "_host_title_$_host_nn=\$3"
		shift 3
		eval "_host_serial_$_host_nn=\$*"
	fi
	_host_prev=$_host_id
}

_host_list_steps() {
	_host_mine=
	_host_prev=
	_host_visit=_host_collect
	steps
}

# _host_others STEP: _host_names lists the hosts other than this one that
# run STEP (their folders, the workstation), shortened past a dozen;
# _host_count is their number.
_host_others() {
	_host_names=
	_host_count=0
	_host_first=
	_host_lastname=
	if [ "$REWIND_NODE" != workstation ] && [ -f "$_host_b/workstation/$1.sh" ]; then
		_host_count=1
		_host_names=workstation
	fi
	for _host_f in "$_host_b"/nodes/*/"$1.sh"; do
		if [ ! -f "$_host_f" ]; then continue; fi
		_host_n=${_host_f%/*}
		_host_n=${_host_n##*/}
		if [ "$_host_n" = "$REWIND_NODE" ]; then continue; fi
		_host_count=$((_host_count + 1))
		if [ "$_host_count" -le 3 ]; then
			_host_first="$_host_first${_host_first:+, }$_host_n"
		fi
		if [ "$_host_count" -le 12 ]; then
			_host_names="$_host_names${_host_names:+, }$_host_n"
		fi
		_host_lastname=$_host_n
	done
	if [ "$_host_count" -gt 12 ]; then
		_host_names="$_host_first, … $_host_lastname ($_host_count hosts)"
	fi
}

# ---- status ------------------------------------------------------------------

_host_status() {
	_host_list_steps
	rw_say "cluster $REWIND_CLUSTER, plan $REWIND_PLAN"
	rw_say "steps of $REWIND_NODE ($_host_rel/), from its done-markers and journal:"
	_host_next=
	for _host_s in $_host_mine; do
		eval "_host_title=\$_host_title_${_host_s%%-*}"
		if _host_marker "$_host_s"; then
			printf '  %-22s %-8s %s (finished %s)\n' "$_host_s" 'done' "$_host_title" "$_host_when"
			continue
		fi
		if [ -z "$_host_next" ]; then _host_next=$_host_s; fi
		_host_journal "$_host_s"
		case $_host_last in
		'') printf '  %-22s %-8s %s\n' "$_host_s" pending "$_host_title" ;;
		*result=failed*) printf '  %-22s %-8s %s (failed %s, exit %s: README.md#step-%s)\n' "$_host_s" FAILED "$_host_title" "${_host_last%% *}" "$_host_exit" "$_host_s" ;;
		*result=start*) printf '  %-22s %-8s %s (started %s and not finished: running now, or stopped without a trace)\n' "$_host_s" started "$_host_title" "${_host_last%% *}" ;;
		*) printf '  %-22s %-8s %s (the journal says %s at %s, but this plan has no done-marker)\n' "$_host_s" pending "$_host_title" "$_host_res" "${_host_last%% *}" ;;
		esac
	done
	if [ -n "$_host_next" ]; then
		rw_say "next on $REWIND_NODE: step $_host_next: sh $0 next (or sh $_host_rel/$_host_next.sh)"
	else
		rw_say "every step of $REWIND_NODE is done"
	fi
}

# ---- next --------------------------------------------------------------------

_host_next() {
	_host_list_steps
	_host_s=
	for _host_t in $_host_mine; do
		if ! _host_marker "$_host_t"; then
			_host_s=$_host_t
			break
		fi
	done
	if [ -z "$_host_s" ]; then
		rw_say "every step of $REWIND_NODE is done; nothing to run (sh $0 status lists them)"
		return 0
	fi
	# What the README order asks before this step, that this host cannot see.
	_host_ask=
	eval "_host_p=\$_host_before_${_host_s%%-*}"
	if [ -n "$_host_p" ]; then
		# How many other hosts run it: from the step list, since a host may
		# hold only its own folder; their names from the folders present.
		eval "_host_pc=\$_host_count_${_host_p%%-*}"
		if [ -f "$_host_dir/$_host_p.sh" ]; then _host_pc=$((_host_pc - 1)); fi
		if [ "$_host_pc" -gt 0 ]; then
			_host_others "$_host_p"
			if [ "$_host_count" -ne "$_host_pc" ]; then
				_host_names="$_host_pc other host(s) (the README's table of steps names them)"
			fi
			_host_ask="step $_host_p must have finished on $_host_names"
		fi
	fi
	eval "_host_order=\$_host_serial_${_host_s%%-*}"
	_host_ahead=
	for _host_o in $_host_order; do
		if [ "$_host_o" = "$REWIND_NODE" ]; then break; fi
		_host_ahead="$_host_ahead${_host_ahead:+, }$_host_o"
	done
	if [ -n "$_host_ahead" ]; then
		_host_ask="$_host_ask${_host_ask:+, and }step $_host_s must have finished on $_host_ahead (one host at a time, in this order)"
	fi
	if [ -n "$_host_ask" ]; then
		_host_confirm "Before step $_host_s on $REWIND_NODE: $_host_ask first (README.md, table of steps)."
	fi
	rw_say "next on $REWIND_NODE: step $_host_s: sh $_host_rel/$_host_s.sh"
	_host_rc=0
	sh "$_host_dir/$_host_s.sh" || _host_rc=$?
	_rw_reported=1
	exit "$_host_rc"
}

# _host_confirm TEXT: the operator confirms what host.sh cannot check.
_host_confirm() {
	printf 'rewind: %s\n' "$1"
	if [ "$_host_confirmed" = 1 ]; then
		rw_say "confirmed with --confirmed"
		return 0
	fi
	if [ "${REWIND_YES:-0}" = 1 ]; then
		rw_say "confirmed with REWIND_YES=1"
		return 0
	fi
	if [ ! -t 0 ]; then
		printf '\nrewind: REFUSED: the order of the steps is not confirmed, and standard input is not a terminal\n' >&2
		printf '  host:    %s\n  changed: nothing\n' "$REWIND_NODE" >&2
		printf '  hint:    check it (sh %s status on those hosts), then run: sh %s next --confirmed\n' "$0" "$0" >&2
		_rw_reported=1
		exit 4
	fi
	printf 'Type yes if it has, and press Enter; anything else stops here: '
	_host_answer=
	read -r _host_answer || _host_answer=
	if [ "$_host_answer" != yes ]; then
		printf '\nrewind: REFUSED: not confirmed (the answer was not yes)\n  host:    %s\n  changed: nothing\n' "$REWIND_NODE" >&2
		_rw_reported=1
		exit 4
	fi
}

# ---- rehearse ----------------------------------------------------------------

_host_rehearse() {
	_host_list_steps
	rw_tmpdir
	_host_file=$_rw_tmp/rehearsal
	: >"$_host_file"
	_host_n=0
	_host_bad=
	_host_nbad=0
	for _host_s in $_host_mine; do
		if _host_marker "$_host_s"; then
			rw_say "step $_host_s is done on $REWIND_NODE (finished $_host_when): not rehearsed"
			continue
		fi
		_host_n=$((_host_n + 1))
		printf '\n==== rehearsal of step %s on %s (%s/%s.sh, dry run) ====\n' "$_host_s" "$REWIND_NODE" "$_host_rel" "$_host_s"
		_host_rc=0
		REWIND_DRY_RUN=1 REWIND_REHEARSAL=$_host_file sh "$_host_dir/$_host_s.sh" || _host_rc=$?
		case $_host_rc in
		0) ;;
		2 | 3 | 4 | 5)
			# Not a problem of the step: the rehearsal cannot go on here.
			printf '\nrewind: the rehearsal stopped at step %s (exit %s): see above\n' "$_host_s" "$_host_rc" >&2
			_rw_reported=1
			exit "$_host_rc"
			;;
		*)
			_host_bad="$_host_bad $_host_s"
			_host_nbad=$((_host_nbad + 1))
			;;
		esac
	done
	printf '\n'
	# One line per fact, per deferred check and per problem; a problem found
	# by several steps (the same file missing) once, with its steps.
	_host_summary=$(awk -F '\t' '
		$1 == "fact" { f = f "  after step " $2 ": " $3 "\n" }
		$1 == "later" { l = l "  " $2 ": " $3 "\n" }
		$1 == "problem" {
			if (!($3 in at)) { order[++n] = $3; at[$3] = $2 } else { at[$3] = at[$3] ", " $2 }
		}
		END {
			printf "%d\n", n
			if (f != "") printf "rewind: established along the way (taken as given by the later steps):\n%s", f
			if (l != "") printf "rewind: not checked here: steps of other hosts before these see to them (check when the step runs):\n%s", l
			for (i = 1; i <= n; i++) printf "P  %s: %s\n", at[order[i]], order[i]
		}' "$_host_file") || _host_summary=0
	_host_np=${_host_summary%%"$_rw_nl"*}
	_host_summary=${_host_summary#*"$_rw_nl"}
	if [ "$_host_summary" = "$_host_np" ]; then _host_summary=; fi
	if [ -n "$_host_summary" ]; then printf '%s\n' "$_host_summary" | grep -v '^P  ' || :; fi
	_host_again="sh $0 rehearse${_host_want_node:+ --node $_host_want_node}"
	if [ -z "$_host_bad" ] && [ "$_host_np" = 0 ]; then
		rw_say "REHEARSAL of $REWIND_NODE: $_host_n step(s) rehearsed, no problem found; nothing was changed"
		return 0
	fi
	{
		printf 'rewind: REHEARSAL of %s: %s problem(s) in %s of %s step(s) rehearsed (%s); nothing was changed\n' \
			"$REWIND_NODE" "$_host_np" "$_host_nbad" "$_host_n" "${_host_bad# }"
		printf '%s\n' "$_host_summary" | sed -n 's/^P  /  /p'
		printf '  fix them, then rehearse again: %s\n' "$_host_again"
	} >&2
	_rw_reported=1
	exit 1
}

# ---- entry -----------------------------------------------------------------

# host_main ARGS...: the entry point of host.sh.
host_main() {
	set -eu
	_host_cmd=
	_host_want_node=
	_host_confirmed=0
	while [ $# -gt 0 ]; do
		case $1 in
		status | next | rehearse)
			if [ -n "$_host_cmd" ]; then
				printf 'rewind: one command at a time, not %s and %s (try --help)\n' "$_host_cmd" "$1" >&2
				exit 2
			fi
			_host_cmd=$1
			;;
		--node)
			if [ $# -lt 2 ]; then
				printf 'rewind: --node needs a node name (try --help)\n' >&2
				exit 2
			fi
			_host_want_node=$2
			shift
			;;
		--node=*) _host_want_node=${1#--node=} ;;
		--confirmed) _host_confirmed=1 ;;
		-h | --help)
			_host_usage
			exit 0
			;;
		*)
			printf 'rewind: unknown argument: %s (try --help)\n' "$1" >&2
			exit 2
			;;
		esac
		shift
	done
	if [ -z "$_host_cmd" ]; then
		_host_usage >&2
		exit 2
	fi
	_rw_flag REWIND_YES
	_rw_flag REWIND_FORCE
	_rw_flag REWIND_DRY_RUN
	case $0 in
	*/*) _host_b=${0%/*} ;;
	*) _host_b=. ;;
	esac
	REWIND_STEP=host
	REWIND_STEP_TITLE="sh host.sh $_host_cmd"
	REWIND_NODE=
	REWIND_NODE_ADDRESSES=
	REWIND_README=README.md
	REWIND_SUFFIX=rewind-${REWIND_PLAN%"${REWIND_PLAN#????????}"}
	trap '_rw_on_exit' EXIT
	trap '_rw_on_signal INT 130' INT
	trap '_rw_on_signal TERM 143' TERM
	trap '_rw_on_signal HUP 129' HUP
	_host_find "$_host_want_node"
	# Where this host keeps its journal and markers, read without creating
	# anything (as a dry run does).
	_rw_dry=1
	_rw_dirs
	_rw_dry=0
	case $_host_cmd in
	status) _host_status ;;
	next) _host_next ;;
	rehearse) _host_rehearse ;;
	esac
}
