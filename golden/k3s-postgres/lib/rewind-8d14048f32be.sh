# rewind runtime library of one bundle: the plan's constants, then the code.
# Every script of the bundle sources it once its sha256 matches the one the
# script carries. Do not edit: change the plan and compile again.
# shellcheck shell=sh disable=SC2034

REWIND_CLUSTER=k3s-payments
REWIND_PLAN=b51c1379b8efed73a0257f747334157fb4eb562a473d7cbdf55693c22e9bfbb7
REWIND_PRODUCT=K3s
REWIND_BIN=k3s
REWIND_ENV=K3S
REWIND_DEFAULT_DATA_DIR=/var/lib/rancher/k3s
REWIND_SERVER_UNIT=k3s
REWIND_AGENT_UNIT=k3s-agent
REWIND_IMAGES=k3s-airgap-images
REWIND_INSTALL_URL=https://get.k3s.io

# ---- rewind runtime library: core -------------------------------------------
# The bundle's one library file (lib/rewind-<hash>.sh) is this core followed by
# every fragment; each script checks its sha256, sources it, and defines its
# own preflight() and actions(). Core holds everything that is not a step
# operation: messages and shell quoting, the failure reporter and
# the EXIT trap, the host guard, the root check, the journal and done-marker,
# the confirmation of destructive steps, dry run, rw_run (the only way an
# action changes the host), bounded waits, hashing, moving aside, and the
# temporary directory. The entry point is rw_main, called from main().
#
# Fragments may call the rw_* functions below and nothing from each other, so
# each can be read (and tested) on its own.
#
# Conventions:
# - POSIX sh, no `local`: each function keeps its state in globals named
#   _rw_<short name>_*, so a helper never clobbers its caller. Functions are
#   not reentrant.
# - Every check reports its own failure (rw_fail) rather than relying on
#   `set -e`, which shells switch off inside `if`, `&&` and `||`.
# - `${1+"$@"}` instead of "$@": posh treats "$@" with no arguments as an
#   unset parameter under `set -u`. For the same reason a script relaxes -u
#   just before its last line, `main "$@"`, and rw_main sets it again.
# - Every function that may run in a preflight starts with
#     rw_check_op NAME ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
#   so that the preflight runs every check and reports every problem at once
#   (see rw_check_op); every failure of a check sets a hint (rw_hint) that
#   says what to do.
#
# Exit codes: 0 done (or already done, or dry run finished); 1 a check or an
# action failed, or the script stopped unexpectedly; the failing command's own
# code when a command run by rw_run fails; 2 bad arguments or REWIND_* value;
# 3 wrong host; 4 not root, or the operator did not confirm; 5 the library is
# missing or not this bundle's (the script's loader, before anything ran);
# 128+N signal N.
#
# Journal: one line at start and one at finish, appended to
# $REWIND_LOG_DIR/<cluster>.log (default /var/log/rewind), fields separated by
# one space:
#   <UTC ISO-8601 time>Z cluster=<c> step=<step> host=<node> result=<r> exit=<n>
# result is start, ok, failed or skipped; exit is `-` on start lines. Dry runs
# write nothing: they print the lines they would have written.
# Done-marker: $REWIND_STATE_DIR/<cluster>/<plan sha256>/<step>.done (default
# /var/lib/rewind), written only after the actions succeeded.

_rw_nl='
'
_rw_tab='	'
_rw_reported=0
_rw_journal_open=0
_rw_phase=start
_rw_cmd=
_rw_hint=
_rw_tmp=
_rw_dry=0
_rw_preview=0
_rw_signal=
_rw_log_dir=
_rw_state_dir=
_rw_state_alt=
_rw_in_check=0
_rw_ran=0
_rw_problems=0
_rw_problem_rc=0
_rw_co_dir=

# ---- messages ---------------------------------------------------------------

# rw_say TEXT: a progress line on stdout (silent while previewing).
rw_say() {
	if [ "$_rw_preview" = 1 ]; then return 0; fi
	printf 'rewind: %s\n' "$*"
}

# rw_ok TEXT: a check passed or an action is confirmed done.
rw_ok() {
	if [ "$_rw_preview" = 1 ]; then return 0; fi
	printf 'ok: %s\n' "$*"
}

# rw_warn TEXT: something the operator should read; the step goes on.
rw_warn() {
	printf 'rewind: WARNING: %s\n' "$*" >&2
}

# rw_hint TEXT: what to do if the next failure happens (printed by the
# failure report). `rw_hint` with no text clears it.
rw_hint() {
	if [ $# -eq 0 ]; then _rw_hint=; else _rw_hint=$*; fi
}

# ---- quoting ----------------------------------------------------------------

# rw_quote WORD: sets _rw_q to WORD quoted for a POSIX shell, so that a
# printed command can be pasted back as exactly the same words.
rw_quote() {
	case $1 in
	'' | *[!A-Za-z0-9_./:=@%+,-]*)
		_rw_q_rest=$1
		_rw_q="'"
		while :; do
			case $_rw_q_rest in
			*\'*)
				_rw_q="$_rw_q${_rw_q_rest%%\'*}'\\''"
				_rw_q_rest=${_rw_q_rest#*\'}
				;;
			*)
				_rw_q="$_rw_q$_rw_q_rest'"
				break
				;;
			esac
		done
		;;
	*) _rw_q=$1 ;;
	esac
}

# rw_quote_cmd WORD...: sets _rw_cmd to the words, each quoted, joined by spaces.
rw_quote_cmd() {
	_rw_cmd=
	for _rw_qc_w in ${1+"$@"}; do
		rw_quote "$_rw_qc_w"
		_rw_cmd="$_rw_cmd${_rw_cmd:+ }$_rw_q"
	done
}

# ---- failure reporting --------------------------------------------------------

# _rw_report MESSAGE COMMAND CODE: the failure block on stderr. Inside a
# check of the preflight (rw_check_op), the problem is handed to the
# preflight instead, which prints it and goes on with the next check.
_rw_report() {
	_rw_reported=1
	if [ "$_rw_in_check" = 1 ]; then
		{
			printf '%s' "$1" >"$_rw_co_dir/msg"
			printf '%s' "$2" >"$_rw_co_dir/cmd"
			printf '%s' "$3" >"$_rw_co_dir/rc"
			printf '%s' "$_rw_hint" >"$_rw_co_dir/hint"
		} 2>/dev/null || printf 'rewind: PROBLEM: %s\n' "$1" >&2
		return 0
	fi
	if [ "$_rw_summary" != 1 ]; then
		_rw_rehearsal_note problem "$1${_rw_hint:+ (hint: $_rw_hint)}"
	fi
	{
		printf '\nrewind: FAILED: %s\n' "$1"
		printf '  step:    %s (%s)\n' "$REWIND_STEP" "$REWIND_STEP_TITLE"
		printf '  host:    %s\n' "$REWIND_NODE"
		if [ -n "$2" ]; then printf '  command: %s\n' "$2"; fi
		if [ -n "$3" ]; then printf '  exit:    %s\n' "$3"; fi
		case $_rw_phase in
		start | guard | root | dirs | preflight) printf '  changed: nothing (the step stopped before its actions)\n' ;;
		confirm) printf '  changed: nothing (not confirmed)\n' ;;
		actions) printf '  changed: what the lines starting with + above ran, up to this point\n' ;;
		esac
		if [ -n "$_rw_hint" ]; then printf '  hint:    %s\n' "$_rw_hint"; fi
		printf '  read:    %s\n' "$REWIND_README"
	} >&2
}

# rw_fail MESSAGE: report and exit 1.
rw_fail() {
	_rw_report "$*" "" ""
	exit 1
}

# rw_fail_cmd CODE MESSAGE: report the command in _rw_cmd (set by
# rw_quote_cmd) with its exit code, and exit with that code (1 if it is 0).
rw_fail_cmd() {
	_rw_fc_rc=$1
	shift
	if [ "$_rw_fc_rc" -eq 0 ] 2>/dev/null; then _rw_fc_rc=1; fi
	_rw_report "$*" "$_rw_cmd" "$_rw_fc_rc"
	exit "$_rw_fc_rc"
}

# rw_check CMD ARGS...: run a read-only command; on failure report it (with
# its exit code) and exit. Output goes where it goes; use it for checks.
rw_check() {
	_rw_ck_rc=0
	"$@" || _rw_ck_rc=$?
	if [ "$_rw_ck_rc" -ne 0 ]; then
		rw_quote_cmd "$@"
		rw_fail_cmd "$_rw_ck_rc" "a check command failed"
	fi
}

# ---- the preflight: every check, every problem --------------------------------

# rw_check_op NAME ARGS...: the first line of every function that may run in
# a preflight:
#   rw_check_op NAME ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
# During the preflight it runs the check (NAME ARGS) in a subshell and sets
# _rw_ran=1, so that the caller returns at once: a failure (rw_fail exits)
# ends only that subshell, and the preflight goes on with the next check.
# _rw_problem prints the problem with its hint and counts it; rw_main fails
# the step once, after the last check. Elsewhere (actions, a check called by
# another check) it sets _rw_ran=0 and the caller runs its body.
#
# A subshell cannot set variables for later checks, and none needs to: a
# check keeps its state in its own _<prefix>_* variables, read only by
# itself, and reports through rw_ok, rw_warn and rw_fail.
rw_check_op() {
	_rw_ran=0
	if [ "$_rw_phase" != preflight ] || [ "$_rw_in_check" = 1 ]; then return 0; fi
	_rw_ran=1
	rm -f "$_rw_co_dir/msg" "$_rw_co_dir/cmd" "$_rw_co_dir/rc" "$_rw_co_dir/hint" 2>/dev/null || :
	# Not `( … ) || …`: shells ignore set -e inside a command that is tested.
	set +e
	(_rw_check_sub "$@")
	_rw_co_rc=$?
	set -e
	if [ "$_rw_co_rc" -ne 0 ]; then _rw_problem "$_rw_co_rc"; fi
}

# _rw_check_sub NAME ARGS...: the check, in its subshell: its own
# temporary folder and hint, and an EXIT trap that reports an unexpected stop.
_rw_check_sub() {
	set -e
	_rw_in_check=1
	_rw_check_name=$1
	_rw_tmp=
	_rw_hint=
	trap '_rw_check_exit' EXIT
	"$@"
	# posh runs a subshell's EXIT trap only on an explicit exit.
	exit 0
}

# The EXIT trap of a check's subshell: a check that stopped without saying
# why is a problem too; its temporary folder is removed.
_rw_check_exit() {
	_rw_ce_rc=$?
	trap - EXIT
	set +e
	if [ "$_rw_ce_rc" -ne 0 ] && [ "$_rw_reported" = 0 ]; then
		rw_hint "this is a bug of the check; run the script with sh -x to see where it stopped, and report it"
		_rw_report "the check $_rw_check_name stopped unexpectedly (exit $_rw_ce_rc)" "" ""
	fi
	rw_tmp_cleanup
	exit "$_rw_ce_rc"
}

# _rw_problem CODE: print and count the problem a check just reported. The
# same problem found by several checks (a missing file three checks read)
# counts once.
_rw_problem() {
	_rw_pb_msg=
	_rw_pb_cmd=
	_rw_pb_rc=
	_rw_pb_hint=
	if [ -s "$_rw_co_dir/msg" ]; then
		_rw_pb_msg=$(cat "$_rw_co_dir/msg") || _rw_pb_msg=
		_rw_pb_cmd=$(cat "$_rw_co_dir/cmd") || _rw_pb_cmd=
		_rw_pb_rc=$(cat "$_rw_co_dir/rc") || _rw_pb_rc=
		_rw_pb_hint=$(cat "$_rw_co_dir/hint") || _rw_pb_hint=
	fi
	if [ -z "$_rw_pb_msg" ]; then _rw_pb_msg="a check stopped (exit $1)"; fi
	case $_rw_seen in
	*"$_rw_nl$_rw_pb_msg$_rw_nl"*) return 0 ;;
	esac
	_rw_seen="$_rw_seen$_rw_pb_msg$_rw_nl"
	_rw_problems=$((_rw_problems + 1))
	if [ "$_rw_problems" -eq 1 ]; then _rw_problem_rc=$1; fi
	{
		printf '\nrewind: PROBLEM %s: %s\n' "$_rw_problems" "$_rw_pb_msg"
		if [ -n "$_rw_pb_cmd" ]; then printf '  command: %s\n' "$_rw_pb_cmd"; fi
		if [ -n "$_rw_pb_rc" ]; then printf '  exit:    %s\n' "$_rw_pb_rc"; fi
		if [ -n "$_rw_pb_hint" ]; then printf '  hint:    %s\n' "$_rw_pb_hint"; fi
	} >&2
	_rw_rehearsal_note problem "$_rw_pb_msg${_rw_pb_hint:+ (hint: $_rw_pb_hint)}"
}
_rw_seen=$_rw_nl

# _rw_preflight: every check of the step, then one verdict: the problems
# were printed as they were found; the step fails once, with their number
# (exit 1; a single problem keeps its own exit code, as a failing command's).
# A rehearsal goes on with the actions (a dry run) to find what else would
# fail, and gives the verdict at the end.
_rw_preflight() {
	rw_tmpdir
	_rw_co_dir=$_rw_tmp
	preflight
	if [ "$_rw_problems" -eq 0 ]; then
		rw_ok preflight
		return 0
	fi
	if [ -n "${REWIND_REHEARSAL:-}" ]; then
		rw_say "preflight: $_rw_problems problem(s) above; the rehearsal goes on with the actions, as if they were fixed"
		return 0
	fi
	_rw_preflight_verdict
}
_rw_summary=0

# _rw_preflight_verdict: the one failure of a preflight that found problems.
_rw_preflight_verdict() {
	if [ "$_rw_problems" -eq 1 ]; then _rw_pf_n="1 problem"; else _rw_pf_n="$_rw_problems problems"; fi
	rw_hint
	_rw_summary=1
	_rw_phase=preflight
	_rw_report "preflight: $_rw_pf_n; nothing was changed (each problem is above, with its hint: fix them all, then run this script again)" "" ""
	if [ "$_rw_problems" -eq 1 ]; then exit "$_rw_problem_rc"; fi
	exit 1
}

# ---- rehearsal ------------------------------------------------------------------
# REWIND_REHEARSAL=FILE (set by `sh host.sh rehearse`): this dry run is one
# step of a rehearsal of a host's steps in README order. FILE collects what
# the steps rehearsed so far establish, and every problem found, one line
# each: `fact|problem <TAB> STEP <TAB> TEXT`. A check whose fact an earlier
# step of the same host establishes (its actions check it) accepts it and
# says so, instead of failing on what the host is before that step ran.

# _rw_rehearsal_note KIND TEXT: append a line to the rehearsal's file.
_rw_rehearsal_note() {
	if [ -z "${REWIND_REHEARSAL:-}" ]; then return 0; fi
	_rw_rn_t=$(printf '%s' "$2" | tr '\n\t' '  ')
	printf '%s\t%s\t%s\n' "$1" "$REWIND_STEP" "$_rw_rn_t" >>"$REWIND_REHEARSAL" 2>/dev/null ||
		printf 'rewind: WARNING: could not write to the rehearsal file %s\n' "$REWIND_REHEARSAL" >&2
}

# rw_establish FACT: this step, run for real, establishes FACT (its actions
# check it). In a rehearsal, later steps take FACT as given; says so.
rw_establish() {
	if [ -z "${REWIND_REHEARSAL:-}" ] || [ "$_rw_preview" = 1 ]; then return 0; fi
	_rw_rehearsal_note fact "$*"
	printf 'rewind: rehearsal: after step %s: %s\n' "$REWIND_STEP" "$*"
}

# rw_deferred TEXT: in a rehearsal, what a step of ANOTHER host establishes
# before this step (rke up on the workstation starts a node's containers) is
# neither taken as given nor a problem of this host: it is listed apart,
# to be checked when this step runs for real. True in a rehearsal.
rw_deferred() {
	if [ -z "${REWIND_REHEARSAL:-}" ]; then return 1; fi
	_rw_rehearsal_note later "$*"
	printf 'rewind: rehearsal: not checked here (a step of another host before this one sees to it): %s\n' "$*"
}

# rw_established FACT: true in a rehearsal when an earlier step established
# FACT (rw_establish); sets _rw_est to that step.
rw_established() {
	_rw_est=
	if [ -z "${REWIND_REHEARSAL:-}" ] || [ ! -f "$REWIND_REHEARSAL" ]; then return 1; fi
	while IFS= read -r _rw_es_l || [ -n "$_rw_es_l" ]; do
		case $_rw_es_l in
		"fact$_rw_tab"*"$_rw_tab$*")
			_rw_est=${_rw_es_l#"fact$_rw_tab"}
			_rw_est=${_rw_est%%"$_rw_tab"*}
			;;
		esac
	done <"$REWIND_REHEARSAL"
	[ -n "$_rw_est" ]
}

# Exit code 4: refused (not root, not confirmed). Not a failure of the step.
_rw_refuse() {
	printf '\nrewind: REFUSED: %s\n' "$1" >&2
	printf '  step:    %s (%s)\n  host:    %s\n  changed: nothing\n' \
		"$REWIND_STEP" "$REWIND_STEP_TITLE" "$REWIND_NODE" >&2
	_rw_reported=1
	exit 4
}

_rw_on_signal() {
	_rw_signal=$1
	exit "$2"
}

# The EXIT trap: report an unexpected stop, journal the failure, clean up.
# Every command here ends in `|| true`: a failing command inside an EXIT trap
# aborts the trap under `set -e` in every shell.
_rw_on_exit() {
	_rw_x_rc=$?
	trap - EXIT
	set +e
	if [ "$_rw_x_rc" -ne 0 ] && [ "$_rw_reported" = 0 ]; then
		if [ -n "$_rw_signal" ]; then
			_rw_x_msg="interrupted by SIG$_rw_signal (exit $_rw_x_rc)"
		else
			_rw_x_msg="the script stopped unexpectedly (exit $_rw_x_rc)"
		fi
		if [ "$_rw_phase" = actions ] && [ -n "$_rw_cmd" ]; then
			_rw_report "$_rw_x_msg; the last command started was shown below" "$_rw_cmd" "" || true
		else
			_rw_report "$_rw_x_msg" "" "" || true
		fi
	fi
	if [ "$_rw_journal_open" = 1 ]; then
		if [ "$_rw_x_rc" -eq 0 ]; then _rw_x_res=ok; else _rw_x_res=failed; fi
		_rw_journal "$_rw_x_res" "$_rw_x_rc" || true
	fi
	rw_tmp_cleanup || true
	exit "$_rw_x_rc"
}

# ---- dry run and rw_run -----------------------------------------------------

# rw_dry: true in a dry run (and while previewing the actions for the
# confirmation): functions then skip what only makes sense after a change.
rw_dry() {
	[ "$_rw_dry" = 1 ]
}

# rw_previewing: true while the actions are previewed for the confirmation
# (a dry run that prints the command list): functions skip queries then.
rw_previewing() {
	[ "$_rw_preview" = 1 ]
}

# rw_would TEXT: in a dry run, say what would be done besides running a
# command (a wait, a check of the result).
rw_would() {
	if [ "$_rw_preview" = 1 ]; then
		printf '      then %s\n' "$*"
	elif [ "$_rw_dry" = 1 ]; then
		printf '[dry-run] would %s\n' "$*"
	fi
}

# rw_run CMD ARGS...: the only way an action changes the host. Prints the
# command, runs it with stdin from /dev/null (nothing may wait for a
# keyboard), and on failure reports it with its exit code and exits with it.
# In a dry run, prints what would run instead.
rw_run() {
	rw_quote_cmd "$@"
	if [ "$_rw_preview" = 1 ]; then
		printf '    %s\n' "$_rw_cmd"
		return 0
	fi
	if [ "$_rw_dry" = 1 ]; then
		printf '[dry-run] would run: %s\n' "$_rw_cmd"
		return 0
	fi
	printf '+ %s\n' "$_rw_cmd"
	_rw_run_rc=0
	"$@" </dev/null || _rw_run_rc=$?
	if [ "$_rw_run_rc" -ne 0 ]; then
		rw_fail_cmd "$_rw_run_rc" "a command failed"
	fi
	rw_hint
}

# rw_run_stdin FILE CMD ARGS...: rw_run with stdin from FILE.
rw_run_stdin() {
	_rw_rs_in=$1
	shift
	rw_quote_cmd "$@"
	rw_quote "$_rw_rs_in"
	_rw_cmd="$_rw_cmd < $_rw_q"
	if [ "$_rw_preview" = 1 ]; then
		printf '    %s\n' "$_rw_cmd"
		return 0
	fi
	if [ "$_rw_dry" = 1 ]; then
		printf '[dry-run] would run: %s\n' "$_rw_cmd"
		return 0
	fi
	printf '+ %s\n' "$_rw_cmd"
	_rw_rs_rc=0
	"$@" <"$_rw_rs_in" || _rw_rs_rc=$?
	if [ "$_rw_rs_rc" -ne 0 ]; then
		rw_fail_cmd "$_rw_rs_rc" "a command failed"
	fi
	rw_hint
}

# rw_run_logged LOG CMD ARGS...: rw_run that also keeps the command's output
# (stdout and stderr) in LOG, shown as it comes. Sets _rw_rl_rc to the
# command's exit code and returns 0: the caller decides what success is.
rw_run_logged() {
	_rw_rl_log=$1
	shift
	rw_quote_cmd "$@"
	if [ "$_rw_preview" = 1 ]; then
		printf '    %s\n' "$_rw_cmd"
		_rw_rl_rc=0
		return 0
	fi
	if [ "$_rw_dry" = 1 ]; then
		printf '[dry-run] would run: %s\n' "$_rw_cmd"
		_rw_rl_rc=0
		return 0
	fi
	rw_tmpdir
	printf '+ %s\n' "$_rw_cmd"
	printf 'rewind: its output is also kept in %s\n' "$_rw_rl_log"
	_rw_rl_um=$(umask)
	umask 077
	# No pipefail in POSIX sh: the command's status travels through a file.
	_rw_rl_tee=0
	{
		_rw_rl_c=0
		"$@" </dev/null 2>&1 || _rw_rl_c=$?
		printf '%s\n' "$_rw_rl_c" >"$_rw_tmp/rc"
	} | tee "$_rw_rl_log" || _rw_rl_tee=$?
	umask "$_rw_rl_um"
	_rw_rl_rc=
	if [ -f "$_rw_tmp/rc" ]; then read -r _rw_rl_rc <"$_rw_tmp/rc" || _rw_rl_rc=; fi
	rm -f "$_rw_tmp/rc" || true
	case $_rw_rl_rc in
	'' | *[!0-9]*) rw_fail_cmd 1 "could not get the exit code of the command" ;;
	esac
	if [ "$_rw_rl_tee" -ne 0 ]; then
		rw_fail_cmd "$_rw_rl_rc" "could not keep the output in $_rw_rl_log (tee exit $_rw_rl_tee)"
	fi
}

# ---- temporary files ----------------------------------------------------------

# rw_tmpdir: sets _rw_tmp to a private directory, removed at exit. It only
# ever holds plain files that this library names.
rw_tmpdir() {
	if [ -n "$_rw_tmp" ]; then return 0; fi
	if [ "$_rw_preview" = 1 ]; then
		_rw_tmp=${TMPDIR:-/tmp}/rewind.XXXXXX
		return 0
	fi
	_rw_tmp=$(mktemp -d "${TMPDIR:-/tmp}/rewind.XXXXXX") || {
		_rw_tmp=
		rw_hint "make ${TMPDIR:-/tmp} writable with room left (df -h ${TMPDIR:-/tmp}), or set TMPDIR to a folder that is, then run this script again"
		rw_fail "could not create a temporary directory under ${TMPDIR:-/tmp}"
	}
}

rw_tmp_cleanup() {
	if [ -z "$_rw_tmp" ] || [ "$_rw_preview" = 1 ] || [ ! -d "$_rw_tmp" ]; then
		return 0
	fi
	for _rw_tc_f in "$_rw_tmp"/* "$_rw_tmp"/.[!.]*; do
		if [ -f "$_rw_tc_f" ] || [ -L "$_rw_tc_f" ]; then rm -f "$_rw_tc_f" || true; fi
	done
	rmdir "$_rw_tmp" 2>/dev/null || true
	_rw_tmp=
}

# ---- small checks used by several fragments --------------------------------

# rw_need_tool NAME WHY: NAME must be on PATH.
rw_need_tool() {
	if ! command -v "$1" >/dev/null 2>&1; then
		rw_hint "install $1 (or put the folder that holds it on PATH), then run this script again"
		rw_fail "$1 is not installed or not on PATH (needed $2)"
	fi
}

# rw_need_file PATH: a readable regular file. A caller that knows what the
# file is sets the hint first (where it comes from); otherwise the hint is
# the generic one.
rw_need_file() {
	if [ -f "$1" ] && [ -r "$1" ]; then return 0; fi
	if [ -z "$_rw_hint" ]; then
		rw_hint "put the file the plan names at $1 on this host (the README's section of this step says what it is), then run this script again"
	fi
	if [ ! -e "$1" ]; then
		rw_fail "file not found: $1"
	elif [ ! -f "$1" ]; then
		rw_fail "not a regular file: $1"
	else
		rw_hint "run the step as root (sudo sh …), or give root read access to $1, then run this script again"
		rw_fail "file not readable (permissions?): $1"
	fi
}

# rw_need_abs PATH: refuse a relative path where the library moves data.
rw_need_abs() {
	case $1 in
	/*) ;;
	*)
		rw_hint "this is a bug of rewind: report it with the plan; nothing was changed by this check"
		rw_fail "internal error: expected an absolute path, got: $1"
		;;
	esac
}

# rw_sha256 FILE: sets _rw_sha to the file's sha256 (lowercase hex); returns
# non-zero if the file cannot be read.
rw_sha256() {
	if command -v sha256sum >/dev/null 2>&1; then
		_rw_sha=$(sha256sum <"$1") || return 1
	elif command -v shasum >/dev/null 2>&1; then
		_rw_sha=$(shasum -a 256 <"$1") || return 1
	else
		rw_hint "install coreutils (sha256sum) or perl (shasum), then run this script again"
		rw_fail "neither sha256sum nor shasum is installed"
	fi
	_rw_sha=${_rw_sha%%[ 	]*}
	case $_rw_sha in
	[0-9a-f]*) ;;
	*) return 1 ;;
	esac
}

# rw_sha256_pipe: a filter printing the sha256 of its stdin (for pipelines).
rw_sha256_pipe() {
	if command -v sha256sum >/dev/null 2>&1; then
		sha256sum
	else
		shasum -a 256
	fi
}

# rw_rke2_version BIN: sets _rw_ver to field 3 of line 1 of `BIN --version`
# ("rke2 version v1.27.10+rke2r1 (915672bd...)"). A hint the caller set is
# kept when the binary does not run.
rw_rke2_version() {
	if [ ! -e "$1" ] && ! command -v "$1" >/dev/null 2>&1; then
		rw_hint "find where ${REWIND_BIN:-rke2} is installed here (command -v ${REWIND_BIN:-rke2}; /opt/rke2/bin or /opt/bin when /usr/local is read-only); if it is elsewhere, correct the plan's install method or paths and compile again"
		rw_fail "$1 not found: ${REWIND_BIN:-rke2} is not installed where the plan's install method puts it"
	fi
	_rw_rv_rc=0
	_rw_rv_out=$("$1" --version 2>&1) || _rw_rv_rc=$?
	if [ "$_rw_rv_rc" -ne 0 ]; then
		rw_quote_cmd "$1" --version
		if [ -z "$_rw_hint" ]; then rw_hint "run $1 --version by hand and read its error: the binary may be damaged or of another architecture; reinstall it, then run this script again"; fi
		rw_fail_cmd "$_rw_rv_rc" "could not ask ${REWIND_BIN:-rke2} its version"
	fi
	set -f
	# shellcheck disable=SC2086 # split the first line into its fields
	set -- ${_rw_rv_out%%"$_rw_nl"*}
	set +f
	_rw_ver=${3:-}
	if [ -z "$_rw_ver" ]; then
		rw_hint "run $1 --version by hand: its first line must read \"${REWIND_BIN:-rke2} version vX.Y.Z+${REWIND_BIN:-rke2}... ...\"; if $1 is not ${REWIND_BIN:-rke2}, correct the plan's install method or paths"
		rw_fail "could not read a version in the output of $1 --version"
	fi
}

# rw_lower TEXT: sets _rw_lc to TEXT in lowercase (for hex from a plan).
rw_lower() {
	_rw_lc=$(printf '%s' "$1" | tr 'ABCDEF' 'abcdef')
}

# rw_seconds NAME DEFAULT: sets _rw_secs to the integer in variable NAME
# (or DEFAULT when unset or empty); refuses anything else.
rw_seconds() {
	eval "_rw_secs=\${$1:-}"
	if [ -z "$_rw_secs" ]; then _rw_secs=$2; fi
	case $_rw_secs in
	'' | *[!0-9]*)
		rw_hint "set $1 to a whole number of seconds (e.g. $1=$2), or unset it for the default ($2)"
		rw_fail "$1 must be a whole number of seconds, not '$_rw_secs'"
		;;
	esac
}

# rw_deadline SECONDS: start a bounded wait. rw_deadline_passed is true once
# SECONDS have passed; _rw_elapsed holds the seconds waited so far.
rw_deadline() {
	_rw_dl_len=$1
	_rw_dl_start=$(date +%s)
	_rw_elapsed=0
}

rw_deadline_passed() {
	_rw_dl_now=$(date +%s)
	_rw_elapsed=$((_rw_dl_now - _rw_dl_start))
	[ "$_rw_elapsed" -ge "$_rw_dl_len" ]
}

# rw_poll_sleep: wait one poll interval (5 s; REWIND_POLL_INTERVAL may set
# another, for tests).
rw_poll_sleep() {
	rw_seconds REWIND_POLL_INTERVAL 5
	sleep "$_rw_secs"
}

# ---- moving aside (never deleting) --------------------------------------------

# rw_move_aside SRC DEST: rename SRC to DEST. Idempotent: SRC gone and DEST
# present means an earlier run moved it; SRC and DEST both present stops the
# step, because moving would lose one of two different copies. A missing SRC
# (and DEST) is only reported: there is nothing to keep.
rw_move_aside() {
	rw_need_abs "$1"
	rw_need_abs "$2"
	if [ -e "$1" ] || [ -L "$1" ]; then
		if [ -e "$2" ] || [ -L "$2" ]; then
			rw_hint "compare the two, keep the one you need under another name, then run this script again"
			rw_fail "both $1 and $2 exist: moving $1 aside would lose one of them"
		fi
		rw_run mv "$1" "$2"
	elif [ -e "$2" ] || [ -L "$2" ]; then
		rw_say "already moved aside: $1 -> $2"
	else
		rw_say "nothing to move aside: $1 does not exist"
	fi
}

# rw_move_into DIR SUFFIX NAME: move DIR/NAME into DIR.SUFFIX/ (created when
# needed), with the same rules as rw_move_aside.
rw_move_into() {
	rw_need_abs "$1"
	_rw_mi_dest=$1.$2
	if [ -e "$_rw_mi_dest" ] && [ ! -d "$_rw_mi_dest" ]; then
		rw_fail "$_rw_mi_dest exists and is not a directory: cannot move files from $1 into it"
	fi
	if [ ! -d "$_rw_mi_dest" ] && [ "$_rw_mi_dest" != "$_rw_mi_made" ]; then
		rw_run mkdir -p "$_rw_mi_dest"
		# In a dry run the folder is not made: do not say so twice.
		_rw_mi_made=$_rw_mi_dest
	fi
	rw_move_aside "$1/$3" "$_rw_mi_dest/$3"
}
_rw_mi_made=

# ---- host guard, root, state directories ------------------------------------

# _rw_script_dir: the folder this script is in (for messages).
_rw_script_dir() {
	case $0 in
	*/*) _rw_sd=${0%/*} ;;
	*) _rw_sd=. ;;
	esac
}

# _rw_addr_here: true if one of REWIND_NODE_ADDRESSES is configured here.
_rw_addr_here() {
	if [ -z "$REWIND_NODE_ADDRESSES" ]; then return 1; fi
	_rw_ah_list=
	if command -v ip >/dev/null 2>&1; then
		_rw_ah_list=$(ip -o addr show 2>/dev/null | sed -n 's/.* inet6* \([^ /]*\).*/\1/p') || _rw_ah_list=
	elif command -v hostname >/dev/null 2>&1; then
		_rw_ah_list=$(hostname -I 2>/dev/null) || _rw_ah_list=
	fi
	_rw_ah_list=" $(printf '%s' "$_rw_ah_list" | tr '\n\t' '  ') "
	set -f
	for _rw_ah_a in $REWIND_NODE_ADDRESSES; do
		case $_rw_ah_list in
		*" $_rw_ah_a "*)
			set +f
			_rw_ah_found=$_rw_ah_a
			return 0
			;;
		esac
	done
	set +f
	return 1
}

# _rw_guard_list_nodes: the plan's nodes (the folders beside this script's),
# up to 40 of them on lines of their own, then how many more.
_rw_guard_list_nodes() {
	_rw_gl_n=0
	for _rw_gl_d in "$_rw_g_nodes"/*/; do
		[ -d "$_rw_gl_d" ] || continue
		_rw_gl_n=$((_rw_gl_n + 1))
		_rw_gl_d=${_rw_gl_d%/}
		if [ "$_rw_gl_n" -le 40 ]; then printf '    %s/\n' "$_rw_gl_d"; fi
	done
	if [ "$_rw_gl_n" -gt 40 ]; then
		printf '    ... %s nodes in all: ls %s\n' "$_rw_gl_n" "$_rw_g_nodes"
	elif [ "$_rw_gl_n" = 0 ]; then
		printf '    (no node folders beside this one: copy the whole bundle to the host)\n'
	fi
}

_rw_guard() {
	if [ "$REWIND_NODE" = workstation ]; then return 0; fi
	_rw_script_dir
	_rw_g_host=$(uname -n 2>/dev/null) || _rw_g_host=
	# Host names are case-insensitive (RFC 4343) and the plan's are lowercase:
	# a host that reports SERVER-1 is server-1.
	_rw_g_host=$(printf '%s' "$_rw_g_host" | tr 'ABCDEFGHIJKLMNOPQRSTUVWXYZ' 'abcdefghijklmnopqrstuvwxyz')
	_rw_g_short=${_rw_g_host%%.*}
	if [ -n "${REWIND_HOST:-}" ]; then
		if [ "$REWIND_HOST" = "$REWIND_NODE" ]; then
			rw_say "host guard: REWIND_HOST=$REWIND_HOST names this script's node (host name here: $_rw_g_host)"
			return 0
		fi
		_rw_g_why="REWIND_HOST is set to '$REWIND_HOST'"
		_rw_g_is="REWIND_HOST names"
		_rw_g_cands=
	elif [ "$_rw_g_host" = "$REWIND_NODE" ] || [ "$_rw_g_short" = "$REWIND_NODE" ]; then
		return 0
	elif _rw_addr_here; then
		rw_say "host guard: this host has address $_rw_ah_found of node $REWIND_NODE"
		return 0
	else
		_rw_g_why="this host's name is '$_rw_g_host'"
		_rw_g_is="this is host"
		# The folders this host's guard accepts: its whole name, or its
		# first label (a plan never has both: rewind check rejects it).
		_rw_g_cands="$_rw_g_host $_rw_g_short"
	fi
	# The bundle's nodes/ folder, as a path from here: the parent of this
	# script's folder.
	case $_rw_sd in
	*/*) _rw_g_nodes=${_rw_sd%/*} ;;
	.) _rw_g_nodes=.. ;;
	*) _rw_g_nodes=. ;;
	esac
	_rw_g_other=
	if [ -n "${REWIND_HOST:-}" ] && [ -d "$_rw_g_nodes/$REWIND_HOST" ]; then _rw_g_other=$REWIND_HOST; fi
	set -f
	for _rw_g_c in $_rw_g_cands; do
		if [ -z "$_rw_g_other" ] && [ -d "$_rw_g_nodes/$_rw_g_c" ]; then _rw_g_other=$_rw_g_c; fi
	done
	set +f
	{
		printf '\nrewind: WRONG HOST: this script is for node %s, but %s.\n' "$REWIND_NODE" "$_rw_g_why"
		printf '  script:  %s (bundle folder nodes/%s/)\n' "$0" "$REWIND_NODE"
		if [ -z "$_rw_g_other" ]; then
			printf '  run it on %s. The plan has no node named like this host; its nodes are:\n' "$REWIND_NODE"
			_rw_guard_list_nodes
		elif [ -f "$_rw_g_nodes/$_rw_g_other/${0##*/}" ]; then
			printf '  %s %s: run %s instead.\n' "$_rw_g_is" "$_rw_g_other" "$_rw_g_nodes/$_rw_g_other/${0##*/}"
		else
			printf '  %s %s: this step has no script for it (its scripts are in %s/).\n' "$_rw_g_is" "$_rw_g_other" "$_rw_g_nodes/$_rw_g_other"
		fi
		printf '  If this host is %s under another name, run it with REWIND_HOST=%s.\n' "$REWIND_NODE" "$REWIND_NODE"
		printf '  changed: nothing\n'
	} >&2
	_rw_reported=1
	exit 3
}

_rw_check_root() {
	if [ "$REWIND_NEEDS_ROOT" != 1 ]; then return 0; fi
	_rw_cr_uid=$(id -u) || rw_fail "could not run id -u"
	if [ "$_rw_cr_uid" != 0 ]; then
		_rw_refuse "this step must run as root (id -u is $_rw_cr_uid): run it with sudo, e.g. sudo env REWIND_YES=... sh $0"
	fi
}

# _rw_dirs_ok LOGDIR STATEDIR: both exist (created if needed) and are
# writable. In a dry run nothing is created.
_rw_dirs_ok() {
	if [ "$_rw_dry" = 1 ]; then
		[ -d "$1" ] && [ -w "$1" ]
		return
	fi
	mkdir -p "$1" "$2" 2>/dev/null && [ -w "$1" ] && [ -w "$2" ] &&
		{ [ ! -e "$1/$REWIND_CLUSTER.log" ] || [ -w "$1/$REWIND_CLUSTER.log" ]; }
}

_rw_dirs() {
	_rw_d_log=${REWIND_LOG_DIR:-/var/log/rewind}
	_rw_d_state=${REWIND_STATE_DIR:-/var/lib/rewind}/$REWIND_CLUSTER/$REWIND_PLAN
	_rw_d_base=${XDG_STATE_HOME:-${HOME:-/nonexistent}/.local/state}/rewind
	_rw_d_flog=$_rw_d_base/log
	_rw_d_fstate=$_rw_d_base/state/$REWIND_CLUSTER/$REWIND_PLAN
	if _rw_dirs_ok "$_rw_d_log" "$_rw_d_state"; then
		_rw_log_dir=$_rw_d_log
		_rw_state_dir=$_rw_d_state
		_rw_state_alt=$_rw_d_fstate
		return 0
	fi
	if [ "$_rw_dry" = 1 ]; then
		# A dry run creates nothing; it only looks for the done-marker.
		if [ "$REWIND_NEEDS_ROOT" != 1 ] && [ -d "$_rw_d_flog" ]; then
			_rw_log_dir=$_rw_d_flog
			_rw_state_dir=$_rw_d_fstate
			_rw_state_alt=$_rw_d_state
		else
			_rw_log_dir=$_rw_d_log
			_rw_state_dir=$_rw_d_state
			_rw_state_alt=$_rw_d_fstate
		fi
		return 0
	fi
	if [ "$REWIND_NEEDS_ROOT" = 1 ]; then
		rw_fail "cannot create or write $_rw_d_log and $_rw_d_state (journal and done-marker)"
	fi
	if ! _rw_dirs_ok "$_rw_d_flog" "$_rw_d_fstate"; then
		rw_fail "cannot write the journal and state: neither $_rw_d_log nor $_rw_d_flog is usable"
	fi
	_rw_log_dir=$_rw_d_flog
	_rw_state_dir=$_rw_d_fstate
	_rw_state_alt=$_rw_d_state
	rw_say "note: $_rw_d_log or ${REWIND_STATE_DIR:-/var/lib/rewind} is not writable here; journal and state go to $_rw_d_base"
}

# _rw_journal RESULT EXIT: append one journal line (printed instead in a dry run).
_rw_journal() {
	_rw_j_line="$(date -u +%Y-%m-%dT%H:%M:%SZ) cluster=$REWIND_CLUSTER step=$REWIND_STEP host=$REWIND_NODE result=$1 exit=$2"
	if [ "$_rw_dry" = 1 ]; then
		return 0
	fi
	printf '%s\n' "$_rw_j_line" >>"$_rw_log_dir/$REWIND_CLUSTER.log"
}

_rw_check_done() {
	_rw_marker=$_rw_state_dir/$REWIND_STEP.done
	_rw_cd_found=$_rw_marker
	if [ ! -f "$_rw_cd_found" ]; then
		# A workstation step may have run as another user (the other folder).
		_rw_cd_found=$_rw_state_alt/$REWIND_STEP.done
		if [ "$REWIND_NEEDS_ROOT" = 1 ] || [ ! -f "$_rw_cd_found" ]; then return 0; fi
	fi
	_rw_cd_when=
	read -r _rw_cd_when <"$_rw_cd_found" || true
	if [ "${REWIND_FORCE:-0}" = 1 ]; then
		rw_say "REWIND_FORCE=1: this step was already done ($_rw_cd_when); running it again"
		return 0
	fi
	rw_say "step $REWIND_STEP is already done on $REWIND_NODE ($_rw_cd_when); nothing to do."
	rw_say "(marker: $_rw_cd_found; REWIND_FORCE=1 runs the step again)"
	if [ "$_rw_dry" != 1 ]; then
		_rw_journal skipped 0 || rw_warn "could not write the journal $_rw_log_dir/$REWIND_CLUSTER.log"
	fi
	exit 0
}

_rw_write_marker() {
	_rw_wm_tmp=$_rw_marker.tmp.$$
	if printf 'finished=%s host=%s plan=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$REWIND_NODE" "$REWIND_PLAN" >"$_rw_wm_tmp" &&
		mv -f "$_rw_wm_tmp" "$_rw_marker"; then
		return 0
	fi
	rm -f "$_rw_wm_tmp" 2>/dev/null || true
	rw_warn "the step succeeded, but its done-marker $_rw_marker could not be written: a re-run will do the step again"
}

# ---- confirmation -------------------------------------------------------------

# _rw_confirm: destructive steps ask for the cluster name. The actions are
# first run in preview mode (in a subshell, output captured) to list the
# commands they would run.
_rw_confirm() {
	_rw_cf_rc=0
	_rw_cf_list=$(
		_rw_preview=1
		_rw_dry=1
		actions 2>/dev/null
	) || _rw_cf_rc=$?
	printf '\nrewind: step %s changes this host (%s):\n' "$REWIND_STEP" "$REWIND_NODE"
	printf '  %s\n' "$REWIND_STEP_TITLE"
	if [ "$_rw_cf_rc" -eq 0 ] && [ -n "$_rw_cf_list" ]; then
		printf '  It will run:\n%s\n' "$_rw_cf_list"
	else
		printf '  (the commands could not be listed in advance; they are printed as they run)\n'
	fi
	printf '  Files it replaces on this host are moved aside with the suffix .%s, not deleted.\n' "$REWIND_SUFFIX"
	if [ "${REWIND_YES:-0}" = 1 ]; then
		printf 'rewind: REWIND_YES=1: going on without asking.\n'
		return 0
	fi
	if [ ! -t 0 ]; then
		_rw_refuse "this step is destructive and asks for confirmation, but standard input is not a terminal; run it from a terminal, or set REWIND_YES=1 to confirm in advance"
	fi
	printf 'Type the cluster name (%s) and press Enter to go on; anything else stops here: ' "$REWIND_CLUSTER"
	_rw_cf_answer=
	read -r _rw_cf_answer || _rw_cf_answer=
	if [ "$_rw_cf_answer" != "$REWIND_CLUSTER" ]; then
		_rw_refuse "not confirmed (the answer was not the cluster name $REWIND_CLUSTER)"
	fi
}

# ---- main -----------------------------------------------------------------

_rw_usage() {
	cat <<EOF
usage: sh $0 [--dry-run]
Step $REWIND_STEP of cluster $REWIND_CLUSTER: $REWIND_STEP_TITLE
Environment:
  REWIND_DRY_RUN=1   run the checks, print the commands, change nothing (= --dry-run)
  REWIND_YES=1       answer yes to the confirmation of a destructive step
  REWIND_FORCE=1     run the step again although it is marked done
  REWIND_HOST=NAME   assert that this host is node NAME (when its name differs)
  REWIND_LOG_DIR     journal folder (default /var/log/rewind)
  REWIND_STATE_DIR   done-markers (default /var/lib/rewind)
  REWIND_RESET_TIMEOUT (1800), REWIND_START_TIMEOUT (900), REWIND_VERIFY_TIMEOUT (900),
  REWIND_STOP_TIMEOUT (30)  bounds of the waits, in seconds
If it fails, read $REWIND_README.
To dry-run all of this host's steps in order, as one rehearsal, and list
every problem: sh host.sh rehearse (in the bundle's folder).
EOF
}

# _rw_flag NAME: the variable must be unset, empty, 0 or 1. A typo such as
# REWIND_DRY_RUN=yes must not mean "run for real".
_rw_flag() {
	_rw_fl_v=
	eval "_rw_fl_v=\${$1:-0}"
	case $_rw_fl_v in
	0 | 1) ;;
	*)
		printf 'rewind: %s must be 1 or 0, not %s\n' "$1" "$_rw_fl_v" >&2
		_rw_reported=1
		exit 2
		;;
	esac
}

rw_main() {
	set -eu
	# Derived here rather than carried by each of a bundle's scripts.
	REWIND_SUFFIX=rewind-${REWIND_PLAN%"${REWIND_PLAN#????????}"}
	REWIND_README=README.md#step-$REWIND_STEP
	for _rw_m_arg in ${1+"$@"}; do
		case $_rw_m_arg in
		-n | --dry-run) REWIND_DRY_RUN=1 ;;
		-h | --help)
			_rw_usage
			exit 0
			;;
		*)
			printf 'rewind: unknown argument: %s (try --help)\n' "$_rw_m_arg" >&2
			exit 2
			;;
		esac
	done
	_rw_flag REWIND_DRY_RUN
	_rw_flag REWIND_YES
	_rw_flag REWIND_FORCE
	# A rehearsal is always a dry run.
	if [ "${REWIND_DRY_RUN:-0}" = 1 ] || [ -n "${REWIND_REHEARSAL:-}" ]; then _rw_dry=1; fi
	trap '_rw_on_exit' EXIT
	trap '_rw_on_signal INT 130' INT
	trap '_rw_on_signal TERM 143' TERM
	trap '_rw_on_signal HUP 129' HUP

	if [ -n "${REWIND_REHEARSAL:-}" ]; then
		rw_say "DRY RUN (rehearsal): checks run, commands are printed, nothing is changed; what earlier steps of this host establish is taken as given"
	elif [ "$_rw_dry" = 1 ]; then
		rw_say "DRY RUN: checks run, commands are printed, nothing is changed"
	fi
	rw_say "step $REWIND_STEP: $REWIND_STEP_TITLE"
	rw_say "cluster $REWIND_CLUSTER, node $REWIND_NODE, plan $REWIND_PLAN"
	_rw_phase=guard
	_rw_guard
	_rw_phase=root
	_rw_check_root
	_rw_phase=dirs
	_rw_dirs
	_rw_check_done
	if [ "$_rw_dry" != 1 ]; then
		_rw_journal start - || rw_fail "cannot write the journal $_rw_log_dir/$REWIND_CLUSTER.log"
		_rw_journal_open=1
	fi

	_rw_phase=preflight
	rw_say "preflight (read-only checks)"
	_rw_preflight

	if [ "$REWIND_DESTRUCTIVE" = 1 ] && [ "$_rw_dry" != 1 ]; then
		_rw_phase=confirm
		_rw_confirm
	fi

	_rw_phase=actions
	rw_say "actions"
	actions
	_rw_cmd=

	_rw_phase=finish
	if [ "$_rw_problems" -gt 0 ]; then _rw_preflight_verdict; fi
	if [ "$_rw_dry" = 1 ]; then
		rw_say "DRY RUN finished: nothing was changed (no journal line, no done-marker)"
		return 0
	fi
	_rw_write_marker
	_rw_journal_open=0
	_rw_journal ok 0 || rw_warn "could not write the journal $_rw_log_dir/$REWIND_CLUSTER.log"
	_rw_phase=complete
	rw_say "step $REWIND_STEP done on $REWIND_NODE."
}

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

# ---- rewind runtime library: files ----------------------------------------------
# Generic preflight checks (tools, environment variables, files, folders,
# hashes, free space) and the one generic action, move_aside. The checks are
# read-only and report everything they find missing at once, so that the
# operator fixes a host in one go.

# need_tools TOOL...: every tool is on PATH.
need_tools() {
	rw_check_op need_tools ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	_nt_missing=
	for _nt_t in ${1+"$@"}; do
		if ! command -v "$_nt_t" >/dev/null 2>&1; then
			_nt_missing="$_nt_missing $_nt_t"
		fi
	done
	if [ -n "$_nt_missing" ]; then
		rw_hint "install them, or put the folder that holds them on PATH, and run this script again"
		rw_fail "missing tools:$_nt_missing"
	fi
	rw_ok "tools present: $*"
}

# need_env VAR...: every variable is set and not empty. Values are secrets
# (S3 keys, database passwords): only names are ever printed.
need_env() {
	rw_check_op need_env ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	_ne_missing=
	for _ne_v in ${1+"$@"}; do
		case $_ne_v in
		'' | [0-9]* | *[!A-Za-z0-9_]*)
			rw_hint "this is a bug of rewind: report it with the plan"
			rw_fail "internal error: not a variable name: $_ne_v"
			;;
		esac
		eval "_ne_val=\${$_ne_v:-}"
		if [ -z "$_ne_val" ]; then _ne_missing="$_ne_missing $_ne_v"; fi
	done
	_ne_val=
	if [ -n "$_ne_missing" ]; then
		rw_hint "export them in this shell (they are read at run time and never written anywhere), then run this script again"
		rw_fail "environment variables not set:$_ne_missing"
	fi
	rw_ok "environment variables set: $*"
}

# need_file PATH: a readable regular file.
need_file() {
	rw_check_op need_file ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	rw_need_file "$1"
	rw_ok "file present: $1"
}

# need_dir PATH: a directory.
need_dir() {
	rw_check_op need_dir ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	if [ ! -d "$1" ]; then
		rw_hint "create or copy the folder the plan names at $1 on this host (the README's section of this step says what it holds), then run this script again"
		rw_fail "folder not found: $1"
	fi
	rw_ok "folder present: $1"
}

# check_sha256 PATH HEX: the file's sha256 is HEX.
check_sha256() {
	rw_check_op check_sha256 ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	rw_need_file "$1"
	rw_lower "$2"
	_cs_want=$_rw_lc
	rw_say "computing the sha256 of $1"
	rw_hint "check that $1 can be read (cat $1 >/dev/null): a disk error or a file being written; copy it again, then run this script again"
	rw_sha256 "$1" || rw_fail "could not read $1 to compute its sha256"
	if [ "$_rw_sha" != "$_cs_want" ]; then
		rw_hint "the file is damaged or is not the one named in the plan: copy it again and compare with the hash in the plan"
		rw_fail "sha256 mismatch for $1: expected $_cs_want, got $_rw_sha"
	fi
	rw_ok "sha256 of $1 matches"
}

# check_room FILE DIR: DIR's filesystem has room for a copy of FILE. DIR may
# not exist yet: its nearest existing parent is measured.
check_room() {
	rw_check_op check_room ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	# $1 and $2 are replaced by the fields of df's line below.
	_cr_src=$1
	_cr_to=$2
	rw_hint "measure it by hand (du -sk $1; df -Pk $2) and free room if needed; a read error means the file or disk is damaged"
	if [ -d "$1" ]; then
		_cr_need=$(du -sk "$1" 2>/dev/null) || rw_fail "could not measure $1 (du -sk)"
		_cr_need=${_cr_need%%[!0-9]*}
	else
		rw_need_file "$1"
		_cr_bytes=$(wc -c <"$1" | tr -d ' \t')
		case $_cr_bytes in
		'' | *[!0-9]*) rw_fail "could not measure $1" ;;
		esac
		_cr_need=$(((_cr_bytes + 1023) / 1024))
	fi
	_cr_dir=$2
	while [ ! -d "$_cr_dir" ]; do
		case $_cr_dir in
		*/*) _cr_dir=${_cr_dir%/*} ;;
		*) _cr_dir=. ;;
		esac
		if [ -z "$_cr_dir" ]; then _cr_dir=/; fi
	done
	# -P: one line per filesystem even with a long device name.
	_cr_df=$(df -Pk "$_cr_dir" 2>/dev/null | sed -n '2p') || _cr_df=
	set -f
	# shellcheck disable=SC2086 # split df's line into its fields
	set -- $_cr_df
	set +f
	_cr_avail=${4:-}
	case $_cr_avail in
	'' | *[!0-9]*) rw_fail "could not read the free space of $_cr_dir (df -Pk)" ;;
	esac
	if [ "$_cr_avail" -lt "$_cr_need" ]; then
		rw_hint "free some space on that filesystem (do not delete the backups), then run this script again"
		rw_fail "not enough room on the filesystem of $_cr_dir: need $_cr_need KiB for $_cr_src, $_cr_avail KiB free"
	fi
	rw_ok "room for $_cr_src in $_cr_to ($_cr_need KiB needed, $_cr_avail KiB free)"
}

# move_aside PATH SUFFIX: rename PATH to PATH.SUFFIX; a re-run after the move
# says so instead of failing.
move_aside() {
	rw_move_aside "$1" "$1.$2"
}

# ---- rewind runtime library: install ----------------------------------------------
# Installing the target RKE2 version: the air-gap artifacts check, the online
# and air-gap runs of the upstream install.sh, the RPM downgrade, and moving
# the newer version's image archives and packaged manifests aside.
#
# What install.sh does NOT check (observed): with INSTALL_RKE2_ARTIFACT_PATH
# it ignores INSTALL_RKE2_VERSION, it verifies only the tarball against
# sha256sum-ARCH.txt, and it silently skips an image archive that is present
# but not listed there. Hence check_artifacts below, and the version check
# that the planner puts after the install.

# check_artifacts DIR ARCH [TARGET]: install.sh, rke2.linux-ARCH.tar.gz and
# sha256sum-ARCH.txt are present; every file listed in the sums file that is
# present in DIR matches its hash (line by line: busybox sha256sum has no
# --ignore-missing); an rke2-images*.linux-ARCH* archive that is present but
# not listed is refused, because install.sh would skip it without a word.
# With TARGET, the rke2 inside the tarball must say it is TARGET: artifacts
# of another release pass their own sums file, and install.sh installs
# whatever it is given.
check_artifacts() {
	rw_check_op check_artifacts ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	_ca_dir=$1
	_ca_arch=$2
	_ca_sums=$_ca_dir/sha256sum-$_ca_arch.txt
	_ca_tar=rke2.linux-$_ca_arch.tar.gz
	rw_hint "copy install.sh, rke2.linux-$_ca_arch.tar.gz, sha256sum-$_ca_arch.txt and the rke2-images archives of the target release into $_ca_dir on this host (the same folder on every node), then run this script again"
	if [ ! -d "$_ca_dir" ]; then rw_fail "artifacts folder not found: $_ca_dir"; fi
	rw_need_file "$_ca_dir/install.sh"
	rw_need_file "$_ca_sums"
	rw_need_file "$_ca_dir/$_ca_tar"
	_ca_listed=$_rw_nl
	_ca_bad=
	_ca_n=0
	while IFS= read -r _ca_line || [ -n "$_ca_line" ]; do
		# "<hex>  <name>" or "<hex> *<name>" (binary mode)
		_ca_hex=${_ca_line%%[ 	]*}
		_ca_name=${_ca_line#"$_ca_hex"}
		while :; do
			case $_ca_name in
			[\ \	*]*) _ca_name=${_ca_name#?} ;;
			*) break ;;
			esac
		done
		case $_ca_hex in
		'' | *[!0-9A-Fa-f]*) continue ;;
		esac
		if [ -z "$_ca_name" ]; then continue; fi
		_ca_listed="$_ca_listed$_ca_name$_rw_nl"
		if [ ! -f "$_ca_dir/$_ca_name" ]; then continue; fi
		rw_say "checking the sha256 of $_ca_name"
		rw_sha256 "$_ca_dir/$_ca_name" || {
			rw_hint "copy $_ca_name again from the release into $_ca_dir (a read error means a damaged file or disk), then run this script again"
			rw_fail "could not read $_ca_dir/$_ca_name"
		}
		rw_lower "$_ca_hex"
		if [ "$_rw_sha" != "$_rw_lc" ]; then
			_ca_bad="$_ca_bad $_ca_name"
		fi
		_ca_n=$((_ca_n + 1))
	done <"$_ca_sums"
	if [ -n "$_ca_bad" ]; then
		rw_hint "an artifact was damaged in transfer or is of another version: copy it again from the release and run this script again"
		rw_fail "sha256 mismatch in $_ca_dir for:$_ca_bad"
	fi
	case $_ca_listed in
	*"$_rw_nl$_ca_tar$_rw_nl"*) ;;
	*)
		rw_hint "copy the sha256sum-$_ca_arch.txt of the same release as $_ca_tar into $_ca_dir, then run this script again"
		rw_fail "$_ca_tar is not listed in $_ca_sums: install.sh would refuse it (are both files of the same release?)"
		;;
	esac
	_ca_unlisted=
	_ca_images=0
	for _ca_f in "$_ca_dir"/rke2-images*.linux-"$_ca_arch"*; do
		if [ ! -e "$_ca_f" ]; then continue; fi
		_ca_images=$((_ca_images + 1))
		case $_ca_listed in
		*"$_rw_nl${_ca_f##*/}$_rw_nl"*) ;;
		*) _ca_unlisted="$_ca_unlisted ${_ca_f##*/}" ;;
		esac
	done
	if [ -n "$_ca_unlisted" ]; then
		rw_hint "use the sha256sum-$_ca_arch.txt of the same release as the archives, or remove the archives it does not list from $_ca_dir"
		rw_fail "image archives not listed in $_ca_sums:$_ca_unlisted (install.sh would skip them without a word)"
	fi
	if [ "$_ca_images" -eq 0 ]; then
		rw_warn "no rke2-images*.linux-$_ca_arch* archive in $_ca_dir: the nodes must pull the images from a registry"
	fi
	rw_ok "air-gap artifacts in $_ca_dir: $_ca_n files match sha256sum-$_ca_arch.txt"
	# The sums file only proves the files belong together, not that they are
	# the target's: ask the rke2 inside the tarball (install.sh does not).
	if [ -n "${3:-}" ]; then
		rw_need_tool tar "to read the version inside $_ca_dir/$_ca_tar"
		rw_tmpdir
		if ! rw_previewing; then
			_ca_rc=0
			_ca_out=$(tar -xzf "$_ca_dir/$_ca_tar" -C "$_rw_tmp" bin/rke2 2>&1) || _ca_rc=$?
			if [ "$_ca_rc" -ne 0 ]; then
				rw_quote_cmd tar -xzf "$_ca_dir/$_ca_tar" -C "$_rw_tmp" bin/rke2
				rw_hint "$_ca_tar is damaged or is not an rke2 release tarball, or ${TMPDIR:-/tmp} is full: copy it again from the release (or set TMPDIR), then run this script again"
				rw_fail_cmd "$_ca_rc" "could not take bin/rke2 out of $_ca_dir/$_ca_tar: ${_ca_out%%"$_rw_nl"*}"
			fi
			rw_hint "if ${TMPDIR:-/tmp} is mounted noexec, set TMPDIR to a folder where programs may run, then run this script again"
			rw_rke2_version "$_rw_tmp/bin/rke2"
			rw_hint
			rm -f "$_rw_tmp/bin/rke2" || :
			rmdir "$_rw_tmp/bin" 2>/dev/null || :
			if [ "$_rw_ver" != "$3" ]; then
				rw_hint "copy the artifacts of $3 (install.sh, rke2.linux-$_ca_arch.tar.gz, the images and sha256sum-$_ca_arch.txt of that release) into $_ca_dir, then run this script again"
				rw_fail "the artifacts in $_ca_dir are of $_rw_ver, not of the target $3 (bin/rke2 --version in $_ca_tar)"
			fi
			rw_ok "$_ca_tar holds rke2 $3, the target"
		fi
	fi
}

# install_online VERSION TYPE METHOD [PREFIX]: fetch the upstream install
# script (REWIND_INSTALL_SCRIPT_URL overrides https://get.rke2.io) to a
# temporary file and run it with INSTALL_RKE2_VERSION, INSTALL_RKE2_TYPE,
# INSTALL_RKE2_METHOD and INSTALL_RKE2_TAR_PREFIX. An empty TYPE, METHOD or
# PREFIX is not passed.
install_online() {
	_io_url=${REWIND_INSTALL_SCRIPT_URL:-https://get.rke2.io}
	rw_tmpdir
	_io_file=$_rw_tmp/rke2-install.sh
	rw_hint "check that this node reaches $_io_url (proxy?), or install from artifacts"
	if command -v curl >/dev/null 2>&1; then
		rw_run curl -sSfL --retry 3 -o "$_io_file" "$_io_url"
	elif command -v wget >/dev/null 2>&1; then
		rw_run wget -q -O "$_io_file" "$_io_url"
	else
		rw_fail "neither curl nor wget is installed: cannot fetch $_io_url"
	fi
	if ! rw_dry; then
		_io_head=
		{ read -r _io_head <"$_io_file"; } 2>/dev/null || :
		case $_io_head in
		'#!'*) ;;
		*) rw_fail "$_io_url did not return a shell script (a proxy or captive portal page?)" ;;
		esac
	fi
	_io_vars=$(env | sed -n 's/^\(INSTALL_RKE2_[A-Za-z0-9_]*\)=.*/\1/p' | tr '\n' ' ')
	if [ -n "$_io_vars" ]; then
		rw_warn "install.sh also reads these variables from your environment: $_io_vars"
	fi
	rw_hint "read install.sh's [ERROR] line above; the script can be run again"
	rw_run env "INSTALL_RKE2_VERSION=$1" ${2:+"INSTALL_RKE2_TYPE=$2"} ${3:+"INSTALL_RKE2_METHOD=$3"} \
		${4:+"INSTALL_RKE2_TAR_PREFIX=$4"} sh "$_io_file"
}

# install_airgap ARTIFACTS ARCH TYPE IMAGES_DIR [PREFIX]: `sh
# ARTIFACTS/install.sh` with INSTALL_RKE2_ARTIFACT_PATH, INSTALL_RKE2_TYPE,
# INSTALL_RKE2_AGENT_IMAGES_DIR and INSTALL_RKE2_TAR_PREFIX (no network is
# used). install.sh's own
# default images folder is /var/lib/rancher/rke2/agent/images whatever the
# data dir, and it installs only the main images archive (install_images
# adds the others).
install_airgap() {
	rw_need_file "$1/install.sh"
	rw_need_file "$1/rke2.linux-$2.tar.gz"
	_ia_vars=$(env | sed -n 's/^\(INSTALL_RKE2_[A-Za-z0-9_]*\)=.*/\1/p' | tr '\n' ' ')
	if [ -n "$_ia_vars" ]; then
		rw_warn "install.sh also reads these variables from your environment: $_ia_vars"
	fi
	rw_hint "read install.sh's [ERROR] line above (a sha256 mismatch means a damaged tarball); the script can be run again"
	rw_run env "INSTALL_RKE2_ARTIFACT_PATH=$1" ${3:+"INSTALL_RKE2_TYPE=$3"} \
		${4:+"INSTALL_RKE2_AGENT_IMAGES_DIR=$4"} ${5:+"INSTALL_RKE2_TAR_PREFIX=$5"} sh "$1/install.sh"
}

# _install_image_names ARTIFACTS ARCH: sets _iin to the image archives
# listed in ARTIFACTS/sha256sum-ARCH.txt, "NAME HEX" per line (image lists
# such as .txt files are not archives: left out).
_install_image_names() {
	_iin=
	while IFS= read -r _iin_l || [ -n "$_iin_l" ]; do
		_iin_hex=${_iin_l%%[ 	]*}
		_iin_name=${_iin_l#"$_iin_hex"}
		while :; do
			case $_iin_name in
			[\ \	*]*) _iin_name=${_iin_name#?} ;;
			*) break ;;
			esac
		done
		case $_iin_hex in '' | *[!0-9A-Fa-f]*) continue ;; esac
		case $_iin_name in
		*/*) continue ;;
		"$REWIND_IMAGES"*.linux-"$2".tar | "$REWIND_IMAGES"*.linux-"$2".tar.*) ;;
		"$REWIND_IMAGES"*.linux-"$2"-*.tar | "$REWIND_IMAGES"*.linux-"$2"-*.tar.*) ;;
		"$REWIND_IMAGES"-"$2".tar | "$REWIND_IMAGES"-"$2".tar.*) ;;
		*) continue ;;
		esac
		rw_lower "$_iin_hex"
		_iin="$_iin$_iin_name $_rw_lc$_rw_nl"
	done <"$1/sha256sum-$2.txt"
}

# _install_image_ok DIR NAME HEX ARCH: true when DIR holds NAME with sha256
# HEX, or, for the main .tar.gz archive, the .tar that install.sh unpacks
# it into.
_install_image_ok() {
	if [ -f "$1/$2" ]; then
		rw_sha256 "$1/$2" || return 1
		[ "$_rw_sha" = "$3" ]
		return
	fi
	[ "$2" = "rke2-images.linux-$4.tar.gz" ] && [ -f "$1/rke2-images.linux-$4.tar" ]
}

# install_images ARTIFACTS ARCH IMAGES_DIR: copy every image archive of the
# target that sha256sum-ARCH.txt lists and ARTIFACTS holds (the Canal,
# Calico, Cilium and split core archives too) into IMAGES_DIR, through a
# temporary name, checking each copy against its hash. An archive that
# install.sh already moved there is only checked. Listed archives that were
# never copied to this node are not needed.
install_images() {
	_install_image_names "$1" "$2"
	_ii_n=0
	while read -r _ii_name _ii_hex; do
		if [ -z "$_ii_name" ]; then continue; fi
		if _install_image_ok "$3" "$_ii_name" "$_ii_hex" "$2"; then
			rw_ok "$3/$_ii_name is there and matches sha256sum-$2.txt"
			_ii_n=$((_ii_n + 1))
			continue
		fi
		case $_ii_name in
		rke2-images.linux-"$2".tar.zst | rke2-images.linux-"$2".tar.gz)
			if rw_dry && [ -f "$1/$_ii_name" ]; then
				rw_would "check $3/$_ii_name, which install.sh moves there"
				continue
			fi
			;;
		esac
		if [ ! -f "$1/$_ii_name" ]; then
			if rw_dry; then continue; fi
			if [ -e "$3/$_ii_name" ]; then
				rw_fail "$3/$_ii_name does not match sha256sum-$2.txt, and $1 holds no copy to replace it with"
			fi
			rw_say "$_ii_name is listed in sha256sum-$2.txt but was not copied to $1: not installed"
			continue
		fi
		if [ ! -d "$3" ]; then rw_run mkdir -p "$3"; fi
		rw_hint "copy the archive again from the release into $1, then run this script again"
		rw_run cp "$1/$_ii_name" "$3/.$_ii_name.$REWIND_SUFFIX"
		if ! rw_dry; then
			rw_sha256 "$3/.$_ii_name.$REWIND_SUFFIX" || rw_fail "could not read the copy $3/.$_ii_name.$REWIND_SUFFIX"
			if [ "$_rw_sha" != "$_ii_hex" ]; then
				rw_fail "the copy $3/.$_ii_name.$REWIND_SUFFIX does not match sha256sum-$2.txt (full disk? damaged archive?)"
			fi
		fi
		rw_run mv -f "$3/.$_ii_name.$REWIND_SUFFIX" "$3/$_ii_name"
		_ii_n=$((_ii_n + 1))
	done <<EOF
$_iin
EOF
	rw_hint
	if ! rw_dry; then
		rw_ok "$_ii_n image archive(s) of the target in $3"
	else
		rw_establish "the image archives of the target in $1 are in $3"
	fi
}

# check_images ARTIFACTS ARCH IMAGES_DIR: every image archive of the target
# that ARTIFACTS holds, or that install.sh moved, is in IMAGES_DIR and
# matches its hash: an air-gapped restore pulls nothing.
check_images() {
	rw_check_op check_images ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	if rw_established "the image archives of the target in $1 are in $3"; then
		rw_ok "the image archives of the target in $1 are in $3: established by step $_rw_est (rehearsal)"
		return 0
	fi
	rw_need_file "$1/sha256sum-$2.txt"
	_install_image_names "$1" "$2"
	_ci_missing=
	_ci_n=0
	while read -r _ci_name _ci_hex; do
		if [ -z "$_ci_name" ]; then continue; fi
		if _install_image_ok "$3" "$_ci_name" "$_ci_hex" "$2"; then
			_ci_n=$((_ci_n + 1))
		elif [ -f "$1/$_ci_name" ] || [ -e "$3/$_ci_name" ]; then
			_ci_missing="$_ci_missing $_ci_name"
		fi
	done <<EOF
$_iin
EOF
	if [ -n "$_ci_missing" ]; then
		rw_hint "run the install step on this node again (REWIND_FORCE=1): it copies the archives in and checks them"
		rw_fail "image archives of the target missing from $3 or not matching sha256sum-$2.txt:$_ci_missing"
	fi
	rw_ok "$_ci_n image archive(s) of the target in $3 match sha256sum-$2.txt"
}

# move_images_aside IMAGES_DIR SUFFIX: move rke2-images* archives and
# .cache.json from IMAGES_DIR into IMAGES_DIR.SUFFIX/, so that the newer
# version's images are not imported by the older one.
move_images_aside() {
	_mia_n=0
	if [ -d "$1" ]; then
		for _mia_f in "$1"/"$REWIND_IMAGES"* "$1/.cache.json"; do
			if [ ! -e "$_mia_f" ] && [ ! -L "$_mia_f" ]; then continue; fi
			# A run of this step that failed after install.sh: the newer
			# archive is aside already, this one is the target's.
			if [ -e "$1.$2/${_mia_f##*/}" ]; then
				rw_say "kept ${_mia_f##*/}: installed by an earlier run of this step (the newer one is in $1.$2/)"
				continue
			fi
			rw_move_into "$1" "$2" "${_mia_f##*/}"
			_mia_n=$((_mia_n + 1))
		done
	fi
	if [ "$_mia_n" -eq 0 ]; then
		if [ -d "$1.$2" ]; then
			rw_ok "image archives already moved aside into $1.$2/"
		else
			rw_ok "no $REWIND_IMAGES* archive in $1: nothing to move aside"
		fi
	fi
}

# move_manifests_aside MANIFESTS_DIR DATA_DIR SUFFIX: move into
# MANIFESTS_DIR.SUFFIX/ the chart manifests that RKE2 wrote there: the files
# named like a chart of an installed version (DATA_DIR/data/*/charts/;
# RKE2 copies those over server/manifests at every start and never removes
# one the running version does not ship). Never a HelmChartConfig: users
# keep their settings for the packaged charts (rke2-canal-config.yaml,
# rke2-cilium-config.yaml...) in the same folder. Without a charts folder,
# the rke2-*.yaml files of kind HelmChart are RKE2's.
move_manifests_aside() {
	_mma_names=$_rw_nl
	for _mma_c in "$2"/data/*/charts/*.yaml "$2"/data/*/charts/*.yml; do
		if [ -f "$_mma_c" ]; then _mma_names="$_mma_names${_mma_c##*/}$_rw_nl"; fi
	done
	_mma_n=0
	if [ -d "$1" ]; then
		for _mma_f in "$1"/*.yaml "$1"/*.yml; do
			if [ ! -f "$_mma_f" ]; then continue; fi
			_mma_b=${_mma_f##*/}
			if [ "$_mma_names" = "$_rw_nl" ]; then
				case $_mma_b in rke2-*) ;; *) continue ;; esac
				grep -q -E '^kind:[[:space:]]*HelmChart[[:space:]]*$' <"$_mma_f" || continue
			else
				case $_mma_names in
				*"$_rw_nl$_mma_b$_rw_nl"*) ;;
				*) continue ;;
				esac
			fi
			if grep -q -E '^kind:[[:space:]]*HelmChartConfig' <"$_mma_f"; then
				rw_say "kept $_mma_b: a HelmChartConfig (settings for a packaged chart)"
				continue
			fi
			rw_move_into "$1" "$3" "$_mma_b"
			_mma_n=$((_mma_n + 1))
		done
	fi
	if [ "$_mma_n" -eq 0 ]; then
		if [ -d "$1.$3" ]; then
			rw_ok "packaged chart manifests already moved aside into $1.$3/"
		else
			rw_ok "no chart manifest written by RKE2 in $1: nothing to move aside"
		fi
	fi
}

# ---- RPM installs ---------------------------------------------------------------
# With install-method = "rpm" rewind does not run install.sh: its rpm method
# names one package and passes no downgrade flag (`yum install -y
# rke2-TYPE-VER`, `zypper install -y ...`), which zypper and EL7 yum do not
# downgrade, and it leaves out rke2-common, which rke2-server and rke2-agent
# require at exactly their own version-release. The package manager of the
# host is run instead, with the exact version-release of every rke2 package
# in one transaction. The VER argument of these functions is the RPM form of
# the version: without the leading v, + and - turned into ~ (1.29.3~rke2r1).
# rke2-selinux has its own versions and is kept.

# _install_rpm_detect: sets _rpm_pm to the package manager this host has (dnf, else
# zypper, else yum: EL7) and _rpm_tu to 1 when packages change only in a new
# snapshot (/usr/sbin/transactional-update: SLE Micro, openSUSE MicroOS).
_install_rpm_detect() {
	rw_need_tool rpm "to read the rke2 packages (the plan's install method is rpm)"
	if command -v dnf >/dev/null 2>&1; then
		_rpm_pm=dnf
	elif command -v zypper >/dev/null 2>&1; then
		_rpm_pm=zypper
	elif command -v yum >/dev/null 2>&1; then
		_rpm_pm=yum
	else
		rw_hint "this host has no package manager rewind knows: install the rke2 packages of the target by hand, or change the plan's install-method to tar and compile again"
		rw_fail "none of dnf, zypper and yum is installed: cannot change the rke2 packages (the plan's install method is rpm)"
	fi
	_rpm_tu=0
	if [ -x /usr/sbin/transactional-update ]; then _rpm_tu=1; fi
}

# _install_rpm_available NAME VER: sets _rpm_avr to the VERSION-RELEASE of package
# NAME at version VER in the repositories configured here (the last one
# listed when several releases are), and _rpm_arepo to its repository;
# returns 1 when there is none. Reads only (the package manager may refresh
# its metadata cache).
_install_rpm_available() {
	_rpm_avr=
	_rpm_arepo=
	_rpa_name=$1
	_rpa_ver=$2
	case $_rpm_pm in
	dnf) set -- dnf -q list --showduplicates --available "$1" ;;
	yum) set -- yum -q list --showduplicates available "$1" ;;
	*) set -- zypper --non-interactive search -s --match-exact -t package "$1" ;;
	esac
	_rpa_rc=0
	_rpa_out=$("$@" 2>&1) || _rpa_rc=$?
	if [ "$_rpa_rc" -ne 0 ]; then
		# No match: dnf and yum exit 1, zypper 104.
		case $_rpm_pm:$_rpa_rc:$_rpa_out in
		dnf:1:*[Nn]o\ matching\ [Pp]ackages* | yum:1:*[Nn]o\ matching\ [Pp]ackages* | zypper:104:*) return 1 ;;
		esac
		printf '%s\n' "$_rpa_out" >&2
		rw_quote_cmd "$@"
		rw_hint "the package manager could not read the repositories (network? proxy? expired GPG key?): fix what it says above, then run this script again"
		rw_fail_cmd "$_rpa_rc" "could not list the versions of $_rpa_name in the configured repositories"
	fi
	if [ "$_rpm_pm" = zypper ]; then
		# S | Name | Type | Version | Arch | Repository
		_rpa_out=$(printf '%s\n' "$_rpa_out" | sed -n 's/^[^|]*|[[:space:]]*\([^|[:space:]]*\)[[:space:]]*|[^|]*|[[:space:]]*\([^|[:space:]]*\)[[:space:]]*|[^|]*|[[:space:]]*\(.*[^[:space:]]\)[[:space:]]*$/\1 \2 \3/p')
	fi
	_rpa_wrap=0
	while read -r _rpa_a _rpa_b _rpa_c; do
		if [ "$_rpm_pm" = zypper ]; then
			if [ "$_rpa_a" != "$_rpa_name" ] || [ "$_rpa_c" = "(System Packages)" ]; then continue; fi
		elif [ "$_rpa_wrap" = 1 ]; then
			# dnf and yum print a long NAME.ARCH alone on its line.
			_rpa_wrap=0
			_rpa_c=$_rpa_b
			_rpa_b=$_rpa_a
		else
			case $_rpa_a in
			"$_rpa_name".*) ;;
			*) continue ;;
			esac
			if [ -z "$_rpa_b" ]; then
				_rpa_wrap=1
				continue
			fi
		fi
		_rpa_b=${_rpa_b#*:}
		case $_rpa_b in
		"$_rpa_ver"-*)
			_rpm_avr=$_rpa_b
			_rpm_arepo=$_rpa_c
			;;
		esac
	done <<EOF
$_rpa_out
EOF
	[ -n "$_rpm_avr" ]
}

# _install_rpm_packages TYPE VER: asks rpm (once) which rke2 packages are installed
# and sets _rpm_pkgs to those that move together (rke2-TYPE, the other of
# rke2-server/rke2-agent if installed too, rke2-common), _rpm_now to what is
# installed (rke2-selinux too), and _rpm_done to 1 when every one of
# _rpm_pkgs is at VER. Fails when rke2-TYPE or rke2-common is not
# installed, or a package is installed in two versions.
_install_rpm_packages() {
	_rpp_rc=0
	_rpp_out=$(rpm -q --qf '%{NAME} %{VERSION}-%{RELEASE}\n' rke2-server rke2-agent rke2-common rke2-selinux 2>&1) || _rpp_rc=$?
	# rpm -q exits with the number of packages not installed.
	_rpp_missing=0
	_rpp_odd=
	while IFS= read -r _rpp_l; do
		case $_rpp_l in
		'' | 'rke2-'*' '*) ;;
		'package '*' is not installed') _rpp_missing=$((_rpp_missing + 1)) ;;
		*) _rpp_odd=1 ;;
		esac
	done <<EOF
$_rpp_out
EOF
	if [ "$_rpp_rc" -ne "$_rpp_missing" ] || [ -n "$_rpp_odd" ]; then
		printf '%s\n' "$_rpp_out" >&2
		rw_quote_cmd rpm -q --qf '%{NAME} %{VERSION}-%{RELEASE}\n' rke2-server rke2-agent rke2-common rke2-selinux
		rw_hint "run the command above by hand and read rpm's error (a locked or damaged rpm database: rpm --rebuilddb), then run this script again"
		rw_fail_cmd "$_rpp_rc" "could not ask rpm which rke2 packages are installed"
	fi
	_rpm_pkgs=
	_rpm_now=
	_rpm_done=1
	for _rpp_n in rke2-server rke2-agent rke2-common rke2-selinux; do
		_rpp_v=
		while read -r _rpp_a _rpp_b; do
			if [ "$_rpp_a" != "$_rpp_n" ]; then continue; fi
			if [ -n "$_rpp_v" ]; then
				rw_hint "an interrupted transaction leaves two versions installed: finish or undo it (dnf history, yum-complete-transaction, zypper verify), then run this script again"
				rw_fail "two versions of $_rpp_n are installed: $_rpp_v and $_rpp_b"
			fi
			_rpp_v=$_rpp_b
		done <<EOF
$_rpp_out
EOF
		if [ "$_rpp_n" = rke2-selinux ]; then
			_rpm_now="$_rpm_now, rke2-selinux ${_rpp_v:-(not installed)}"
			continue
		fi
		if [ -z "$_rpp_v" ]; then
			case $_rpp_n in
			rke2-common | "rke2-$1")
				rw_hint "set install-method in the plan to the way rke2 was installed on the nodes (tar: /usr/local/bin/rke2), then compile again"
				rw_fail "$_rpp_n is not installed (rpm -q): this node's rke2 does not come from the RPM packages that the plan's install method names"
				;;
			esac
			continue
		fi
		_rpm_pkgs="$_rpm_pkgs $_rpp_n"
		_rpm_now="$_rpm_now${_rpm_now:+, }$_rpp_n $_rpp_v"
		case $_rpp_v in
		"$2"-*) ;;
		*) _rpm_done=0 ;;
		esac
	done
}

# _install_rpm_repo_hint VER: the hint for packages of VER missing from the
# repositories: which rancher-rke2 repository file is configured, and for
# which minor.
_install_rpm_repo_hint() {
	_rrh_rest=${1#*.}
	_rrh_want=${1%%.*}.${_rrh_rest%%.*}
	_rrh_file=
	_rrh_have=
	for _rrh_f in /etc/yum.repos.d/rancher-rke2*.repo /etc/zypp/repos.d/rancher-rke2*.repo; do
		if [ ! -f "$_rrh_f" ]; then continue; fi
		_rrh_file=$_rrh_f
		_rrh_have=$(sed -n 's#^[[:space:]]*baseurl[[:space:]]*=.*/rke2/[^/]*/\([0-9][0-9]*\.[0-9][0-9]*\)/.*#\1#p' "$_rrh_f" | sed -n 1p) || _rrh_have=
		break
	done
	case $_rpm_pm in
	zypper) _rrh_refresh="zypper refresh" ;;
	*) _rrh_refresh="$_rpm_pm makecache" ;;
	esac
	if [ -z "$_rrh_file" ]; then
		rw_hint "no rancher-rke2 repository is configured (/etc/yum.repos.d, /etc/zypp/repos.d): add the RKE2 repository of $_rrh_want (rewind does not run install.sh, which writes it), run $_rrh_refresh, then run this script again"
	elif [ -n "$_rrh_have" ] && [ "$_rrh_have" != "$_rrh_want" ]; then
		rw_hint "$_rrh_file is the RKE2 $_rrh_have repository, which holds no $_rrh_want packages: point it at $_rrh_want (sed -i 's#/$_rrh_have/#/$_rrh_want/#' $_rrh_file), run $_rrh_refresh, then run this script again"
	else
		rw_hint "the repository in $_rrh_file does not list this version: check the plan's target version and the repository's channel (release candidates are in the testing repository), run $_rrh_refresh, then run this script again"
	fi
}

# check_rpm_target TYPE VER: (read-only) rke2-TYPE and rke2-common are
# installed from RPMs (their versions printed, rke2-selinux's too), and the
# rke2 packages installed here are available at VER from the repositories
# configured now; nothing rewrites them before the install step. Already at
# VER: says so.
check_rpm_target() {
	rw_check_op check_rpm_target ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	_install_rpm_detect
	_install_rpm_packages "$1" "$2"
	rw_say "installed: $_rpm_now"
	if [ "$_rpm_done" = 1 ]; then
		rw_ok "the rke2 packages are already at $2"
		return 0
	fi
	_crt_missing=
	_crt_found=
	for _crt_p in $_rpm_pkgs; do
		if _install_rpm_available "$_crt_p" "$2"; then
			_crt_found="$_crt_found${_crt_found:+, }$_crt_p-$_rpm_avr ($_rpm_arepo)"
		else
			_crt_missing="$_crt_missing $_crt_p-$2"
		fi
	done
	if [ -n "$_crt_missing" ]; then
		_install_rpm_repo_hint "$2"
		rw_fail "not available from the repositories configured here ($_rpm_pm):$_crt_missing"
	fi
	rw_ok "available from the configured repositories ($_rpm_pm): $_crt_found"
	if [ "$_rpm_tu" = 1 ]; then
		rw_warn "this host changes packages only in a new snapshot (transactional-update): the install step prints the command to run, and the node must be rebooted before the step is run again"
	fi
}

# install_rpm TYPE VER: downgrade every rke2 package installed here (see
# _install_rpm_packages) to VER, with the release found in the repositories, in one
# transaction: `dnf downgrade -y`, EL7 `yum downgrade -y`, or `zypper
# --non-interactive install --oldpackage NAME=VER-REL...`. On a
# transactional host, stops with the command to run there. Already at VER:
# nothing to do.
install_rpm() {
	_irp_ver=$2
	_install_rpm_detect
	_install_rpm_packages "$1" "$2"
	if [ "$_rpm_done" = 1 ]; then
		rw_ok "the rke2 packages are already at $_irp_ver ($_rpm_now)"
		return 0
	fi
	rw_say "installed: $_rpm_now"
	_irp_specs=
	for _irp_p in $_rpm_pkgs; do
		if ! _install_rpm_available "$_irp_p" "$_irp_ver"; then
			_install_rpm_repo_hint "$_irp_ver"
			rw_fail "$_irp_p-$_irp_ver is not available from the repositories configured here ($_rpm_pm)"
		fi
		if [ "$_rpm_pm" = zypper ]; then
			_irp_specs="$_irp_specs $_irp_p=$_rpm_avr"
		else
			_irp_specs="$_irp_specs $_irp_p-$_rpm_avr"
		fi
	done
	set -f
	# shellcheck disable=SC2086 # one word per package (names and versions have no blanks)
	set -- $_irp_specs
	set +f
	if [ "$_rpm_tu" = 1 ]; then
		rw_quote_cmd transactional-update --no-selfupdate -d run zypper --non-interactive install --oldpackage "$@"
		rw_hint "run: $_rw_cmd; then reboot this node (rke2 stays stopped: the stop step disabled its unit) and run this step again: it finds the packages at $_irp_ver and goes on"
		_rw_cmd=
		rw_fail "this host changes packages only in a new snapshot (transactional-update): the downgrade must be run there and takes effect after a reboot"
	fi
	rw_hint "read the package manager's error above; if it names rke2-selinux (or another package) as a conflict, run the same command by hand with that package at the version the target needs added, then run this step again"
	case $_rpm_pm in
	dnf) rw_run dnf downgrade -y "$@" ;;
	yum) rw_run yum downgrade -y "$@" ;;
	*) rw_run zypper --non-interactive install --oldpackage "$@" ;;
	esac
}

# check_rpm_versions TYPE VER: `rpm -q` shows every rke2 package installed
# here at VER (rke2-selinux printed). In a dry run of the actions, or their
# preview, the install has not happened: only report.
check_rpm_versions() {
	rw_check_op check_rpm_versions ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	_install_rpm_detect
	_install_rpm_packages "$1" "$2"
	if [ "$_rpm_done" = 1 ]; then
		rw_ok "rpm -q: $_rpm_now"
	elif rw_dry && { [ "$_rw_phase" = actions ] || [ "$_rw_phase" = confirm ]; }; then
		rw_would "check with rpm -q that$_rpm_pkgs are at $2 (now: $_rpm_now)"
	else
		rw_hint "the package manager did not downgrade every package (read its output above): run this step again, or downgrade them by hand in one command with their exact versions"
		rw_fail "rpm -q: not every rke2 package is at $2: $_rpm_now"
	fi
}

# ---- rewind runtime library: k3s --------------------------------------------------
# What K3s's install differs in from RKE2's (docs/upstream-facts.md, "K3s"):
# one binary (k3s, k3s-arm64, k3s-s390x) put in /usr/local/bin, or /opt/bin
# when root cannot write /usr/local/bin; and an install script that, on
# every run, deletes and rewrites the unit (/etc/systemd/system/k3s.service
# or k3s-agent.service) and its .env file from the variables of its own
# environment. Run with only a version, it would drop the unit's ExecStart
# flags and K3S_URL/K3S_TOKEN. So the install step keeps a copy of both
# files before it runs the script, and puts them back byte for byte after
# it: the reinstalled node runs exactly as it was configured, only with the
# target's binary. Everything else (config checks, stop, restore, start)
# is the RKE2 fragment's, named by the library's constants.

# _k3s_binary ARCH: sets _kb to the name of the K3s binary of ARCH in a
# release (`k3s` for amd64, `k3s-ARCH` otherwise).
_k3s_binary() {
	case $1 in
	amd64) _kb=k3s ;;
	*) _kb=k3s-$1 ;;
	esac
}

# _k3s_listed SUMS NAME: sets _kl to the lowercase sha256 that SUMS lists
# for NAME ("<hex>  <name>" or "<hex> *<name>"), empty if not listed.
_k3s_listed() {
	_kl=
	while IFS= read -r _kl_line || [ -n "$_kl_line" ]; do
		_kl_hex=${_kl_line%%[ 	]*}
		_kl_name=${_kl_line#"$_kl_hex"}
		while :; do
			case $_kl_name in
			[\ \	*]*) _kl_name=${_kl_name#?} ;;
			*) break ;;
			esac
		done
		case $_kl_hex in '' | *[!0-9A-Fa-f]*) continue ;; esac
		if [ "$_kl_name" = "$2" ]; then
			rw_lower "$_kl_hex"
			_kl=$_rw_lc
			return 0
		fi
	done <"$1"
}

# check_bin_dir BIN: BIN is an executable, and its folder is where K3s's
# install script writes (it tries /usr/local/bin and falls back to /opt/bin
# when root cannot write there): the reinstall then replaces this very
# binary, and the unit's ExecStart keeps naming it.
check_bin_dir() {
	rw_check_op check_bin_dir ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	_cbd_dir=${1%/*}
	if [ ! -f "$1" ] || [ ! -x "$1" ]; then
		rw_hint "find the k3s binary (command -v k3s; K3s's install script puts it in /opt/bin when /usr/local/bin is read-only); rewind installs the target into $_cbd_dir only: on such a node, roll back by hand"
		rw_fail "$1 not found or not executable"
	fi
	if [ ! -w "$_cbd_dir" ]; then
		rw_hint "make $_cbd_dir writable for root (it is where the current k3s is), then run this script again"
		rw_fail "$_cbd_dir is not writable: K3s's install script would put the target in /opt/bin and leave $1 as it is"
	fi
	rw_ok "$1 is installed, and $_cbd_dir is where K3s's install script puts the target"
}

# check_unit_files UNIT UNIT_FILE ENV_FILE: UNIT_FILE is a readable unit
# with an ExecStart line, and ENV_FILE is readable if it is there: what the
# install step keeps and puts back.
check_unit_files() {
	rw_check_op check_unit_files ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	rw_hint "this node's $1 was not installed by K3s's install script where the plan expects it (systemctl cat $1 shows where it is); roll this node back by hand"
	rw_need_file "$2"
	_cuf_exec=
	while IFS= read -r _cuf_l || [ -n "$_cuf_l" ]; do
		case $_cuf_l in ExecStart=*) _cuf_exec=${_cuf_l#ExecStart=} ;; esac
	done <"$2"
	if [ -z "$_cuf_exec" ]; then
		rw_fail "$2 has no ExecStart line"
	fi
	if [ -e "$3" ]; then
		rw_need_file "$3"
		rw_hint
		rw_ok "$2 and $3 are there: the install step keeps both and puts them back after K3s's install script"
	else
		rw_hint
		rw_ok "$2 is there ($3 is not): the install step keeps the unit and puts it back after K3s's install script"
	fi
}

# keep_unit_files UNIT_FILE ENV_FILE SUFFIX: copy each file to
# FILE.SUFFIX (or, if it is not there, mark that with FILE.SUFFIX.absent),
# unless an earlier run of this step already did: that copy is the
# original, and the files now may be the install script's.
keep_unit_files() {
	for _kuf_f in "$1" "$2"; do
		if [ -e "$_kuf_f.$3" ] || [ -e "$_kuf_f.$3.absent" ]; then
			rw_ok "$_kuf_f: the copy made by an earlier run of this step is kept (the original)"
			continue
		fi
		if [ -f "$_kuf_f" ]; then
			rw_run cp -p "$_kuf_f" "$_kuf_f.$3"
		else
			rw_run touch "$_kuf_f.$3.absent"
		fi
	done
}

# put_back_unit_files UNIT_FILE ENV_FILE SUFFIX: make each file byte-equal
# to the copy keep_unit_files made (through a temporary name), remove the
# one the install script wrote where there was none, then
# `systemctl daemon-reload`.
put_back_unit_files() {
	for _pbu_f in "$1" "$2"; do
		if [ -e "$_pbu_f.$3.absent" ]; then
			if [ -e "$_pbu_f" ]; then
				rw_run rm -f "$_pbu_f"
			fi
			continue
		fi
		if [ ! -f "$_pbu_f.$3" ]; then
			if rw_dry; then
				# A dry run made no copy: list what the real run runs.
				if [ -e "$_pbu_f" ]; then
					rw_run cp -p "$_pbu_f.$3" "$_pbu_f.$3.new"
					rw_run mv -f "$_pbu_f.$3.new" "$_pbu_f"
				else
					rw_run rm -f "$_pbu_f"
				fi
				continue
			fi
			rw_hint "the install step keeps this copy before it runs K3s's install script: run the whole install step again"
			rw_fail "$_pbu_f.$3 is missing: cannot put back $_pbu_f as it was"
		fi
		_pbu_same=0
		if [ -f "$_pbu_f" ] && rw_sha256 "$_pbu_f"; then
			_pbu_now=$_rw_sha
			if rw_sha256 "$_pbu_f.$3" && [ "$_rw_sha" = "$_pbu_now" ]; then _pbu_same=1; fi
		fi
		if [ "$_pbu_same" = 1 ]; then
			rw_ok "$_pbu_f is as it was before the install"
			continue
		fi
		rw_run cp -p "$_pbu_f.$3" "$_pbu_f.$3.new"
		rw_run mv -f "$_pbu_f.$3.new" "$_pbu_f"
		if ! rw_dry; then
			rw_sha256 "$_pbu_f" || rw_fail "cannot read $_pbu_f"
			_pbu_now=$_rw_sha
			rw_sha256 "$_pbu_f.$3" || rw_fail "cannot read $_pbu_f.$3"
			if [ "$_rw_sha" != "$_pbu_now" ]; then
				rw_fail "$_pbu_f differs from the copy kept before the install"
			fi
			rw_ok "$_pbu_f is as it was before the install (ExecStart, ${REWIND_ENV}_URL, ${REWIND_ENV}_TOKEN kept)"
		fi
	done
	rw_run systemctl daemon-reload
}

# check_k3s_artifacts DIR ARCH TARGET: install.sh, the K3s binary of ARCH
# and sha256sum-ARCH.txt are in DIR; every file the sums file lists that is
# in DIR matches its hash; the binary is listed and says it is TARGET; an
# image archive (k3s-airgap-images-ARCH.tar*) in DIR is listed.
check_k3s_artifacts() {
	rw_check_op check_k3s_artifacts ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	_k3s_binary "$2"
	_cka_sums=$1/sha256sum-$2.txt
	rw_hint "copy install.sh, $_kb, sha256sum-$2.txt and the $REWIND_IMAGES-$2 archive of the target release into $1 on this host (the same folder on every node), then run this script again"
	if [ ! -d "$1" ]; then rw_fail "artifacts folder not found: $1"; fi
	rw_need_file "$1/install.sh"
	rw_need_file "$_cka_sums"
	rw_need_file "$1/$_kb"
	_cka_n=0
	for _cka_f in "$1/$_kb" "$1/$REWIND_IMAGES-$2".tar*; do
		if [ ! -f "$_cka_f" ]; then continue; fi
		_k3s_listed "$_cka_sums" "${_cka_f##*/}"
		if [ -z "$_kl" ]; then
			rw_hint "use the sha256sum-$2.txt of the same release as ${_cka_f##*/}, or remove the files it does not list from $1"
			rw_fail "${_cka_f##*/} is not listed in $_cka_sums"
		fi
		rw_say "checking the sha256 of ${_cka_f##*/}"
		rw_sha256 "$_cka_f" || rw_fail "could not read $_cka_f"
		if [ "$_rw_sha" != "$_kl" ]; then
			rw_hint "an artifact was damaged in transfer or is of another version: copy it again from the release and run this script again"
			rw_fail "sha256 mismatch in $1 for ${_cka_f##*/}"
		fi
		_cka_n=$((_cka_n + 1))
	done
	if [ "$_cka_n" -lt 2 ]; then
		rw_warn "no $REWIND_IMAGES-$2.tar* archive in $1: the nodes must pull the images from a registry"
	fi
	rw_hint
	rw_ok "air-gap artifacts in $1: $_cka_n files match sha256sum-$2.txt"
	if rw_previewing; then return 0; fi
	rw_tmpdir
	rw_hint "if ${TMPDIR:-/tmp} is mounted noexec, set TMPDIR to a folder where programs may run, then run this script again"
	_cka_rc=0
	cp "$1/$_kb" "$_rw_tmp/k3s" 2>/dev/null || _cka_rc=$?
	if [ "$_cka_rc" -ne 0 ] || ! chmod 0755 "$_rw_tmp/k3s" 2>/dev/null; then
		rw_fail "could not copy $1/$_kb into $_rw_tmp to ask its version (is ${TMPDIR:-/tmp} full?)"
	fi
	rw_rke2_version "$_rw_tmp/k3s"
	rw_hint
	rm -f "$_rw_tmp/k3s" || :
	if [ "$_rw_ver" != "$3" ]; then
		rw_hint "copy the artifacts of $3 (install.sh, $_kb, the images and sha256sum-$2.txt of that release) into $1, then run this script again"
		rw_fail "the artifacts in $1 are of $_rw_ver, not of the target $3 ($_kb --version)"
	fi
	rw_ok "$_kb is k3s $3, the target"
}

# install_k3s VERSION TYPE BIN [ARTIFACTS] [ARCH]: run K3s's install script
# with INSTALL_K3S_EXEC=TYPE (server or agent: the unit's name),
# INSTALL_K3S_BIN_DIR (BIN's folder), INSTALL_K3S_SKIP_ENABLE=true and
# INSTALL_K3S_SKIP_START=true (the unit stays disabled and stopped until its
# start step). Online: the script is fetched (REWIND_INSTALL_SCRIPT_URL
# overrides the product's default) and given INSTALL_K3S_VERSION=VERSION.
# With ARTIFACTS: the binary of ARCH is copied to BIN through a temporary
# name and checked against sha256sum-ARCH.txt, then ARTIFACTS/install.sh
# runs with INSTALL_K3S_SKIP_DOWNLOAD=true (no network is used).
install_k3s() {
	_ik_dir=${3%/*}
	_ik_vars=$(env | sed -n 's/^\(INSTALL_K3S_[A-Za-z0-9_]*\)=.*/\1/p' | tr '\n' ' ')
	if [ -n "$_ik_vars" ]; then
		rw_warn "install.sh also reads these variables from your environment: $_ik_vars"
	fi
	if [ -n "${4:-}" ]; then
		_k3s_binary "$5"
		rw_need_file "$4/install.sh"
		rw_need_file "$4/$_kb"
		_k3s_listed "$4/sha256sum-$5.txt" "$_kb"
		if [ -z "$_kl" ]; then
			rw_fail "$_kb is not listed in $4/sha256sum-$5.txt"
		fi
		rw_hint "copy $_kb again from the release into $4 (or free room in $_ik_dir), then run this script again"
		rw_run cp "$4/$_kb" "$3.$REWIND_SUFFIX.new"
		if ! rw_dry; then
			rw_sha256 "$3.$REWIND_SUFFIX.new" || rw_fail "could not read $3.$REWIND_SUFFIX.new"
			if [ "$_rw_sha" != "$_kl" ]; then
				rw_fail "the copy $3.$REWIND_SUFFIX.new does not match sha256sum-$5.txt (full disk? damaged binary?)"
			fi
		fi
		rw_run chmod 0755 "$3.$REWIND_SUFFIX.new"
		rw_run mv -f "$3.$REWIND_SUFFIX.new" "$3"
		rw_hint "read install.sh's [ERROR] line above; the script can be run again"
		rw_run env INSTALL_K3S_SKIP_DOWNLOAD=true "INSTALL_K3S_BIN_DIR=$_ik_dir" "INSTALL_K3S_EXEC=$2" \
			INSTALL_K3S_SKIP_ENABLE=true INSTALL_K3S_SKIP_START=true sh "$4/install.sh"
		return 0
	fi
	_ik_url=${REWIND_INSTALL_SCRIPT_URL:-$REWIND_INSTALL_URL}
	rw_tmpdir
	_ik_file=$_rw_tmp/k3s-install.sh
	rw_hint "check that this node reaches $_ik_url (proxy?), or install from artifacts"
	if command -v curl >/dev/null 2>&1; then
		rw_run curl -sSfL --retry 3 -o "$_ik_file" "$_ik_url"
	elif command -v wget >/dev/null 2>&1; then
		rw_run wget -q -O "$_ik_file" "$_ik_url"
	else
		rw_fail "neither curl nor wget is installed: cannot fetch $_ik_url"
	fi
	if ! rw_dry; then
		_ik_head=
		{ read -r _ik_head <"$_ik_file"; } 2>/dev/null || :
		case $_ik_head in
		'#!'*) ;;
		*) rw_fail "$_ik_url did not return a shell script (a proxy or captive portal page?)" ;;
		esac
	fi
	rw_hint "read install.sh's [ERROR] line above; the script can be run again"
	rw_run env "INSTALL_K3S_VERSION=$1" "INSTALL_K3S_BIN_DIR=$_ik_dir" "INSTALL_K3S_EXEC=$2" \
		INSTALL_K3S_SKIP_ENABLE=true INSTALL_K3S_SKIP_START=true sh "$_ik_file"
}

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

# ---- rewind runtime library: postgres -----------------------------------------------
# RKE2 on an external PostgreSQL: checking the `pg_dump -Fc` archive and the
# user's rights, keeping a copy of the current database, and restoring the
# archive.
#
# `pg_restore --clean` alone drops only the objects that are in the archive:
# a table created after the dump would survive. `--create` with `-d postgres`
# drops and recreates the whole database instead, so it comes back exactly as
# dumped; it recreates the database named IN THE ARCHIVE, hence the name
# check. Dropping and creating a database takes a superuser, or a role with
# CREATEDB that owns the database. Such a role cannot give objects to other
# roles, so it restores with --no-owner (everything then belongs to it), nor
# replay a GRANT made by another role (the archive then says SET SESSION
# AUTHORIZATION), so such an archive is restored with --no-acl as well;
# GRANTs it made itself are replayed. The password comes from PGPASSWORD or
# ~/.pgpass (--no-password: a prompt would hang an unattended run); an empty
# HOST, PORT or USER argument leaves that to the client's default.

# check_pg_archive FILE: `pg_restore -l FILE` accepts it.
check_pg_archive() {
	rw_check_op check_pg_archive ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	rw_hint "copy the backup the plan restores ([snapshot] path: the database dump taken before the upgrade) to $1 on this host, then run this script again"
	rw_need_file "$1"
	rw_hint
	rw_need_tool pg_restore "to read the PostgreSQL archive"
	_cpa_rc=0
	_cpa_out=$(pg_restore -l "$1" 2>&1) || _cpa_rc=$?
	if [ "$_cpa_rc" -ne 0 ]; then
		rw_hint "the file must be a custom-format dump (pg_dump -Fc); a plain SQL dump is replayed with psql instead"
		rw_quote_cmd pg_restore -l "$1"
		rw_fail_cmd "$_cpa_rc" "$1 is not a readable pg_restore archive: ${_cpa_out%%"$_rw_nl"*}"
	fi
	# -l reads only the table of contents: a cut or damaged archive passes it.
	# Converting the whole archive to SQL (no server involved) reads and
	# decompresses every data block.
	_cpa_rc=0
	_cpa_out2=$(pg_restore -f /dev/null "$1" 2>&1) || _cpa_rc=$?
	if [ "$_cpa_rc" -ne 0 ]; then
		rw_hint "the archive is incomplete or damaged (an interrupted copy?): copy it again, or choose another dump in the plan"
		rw_quote_cmd pg_restore -f /dev/null "$1"
		rw_fail_cmd "$_cpa_rc" "$1 cannot be read to the end: ${_cpa_out2%%"$_rw_nl"*}"
	fi
	_cpa_db=$(printf '%s\n' "$_cpa_out" | sed -n 's/^;[[:space:]]*dbname:[[:space:]]*//p' | sed -n 1p)
	rw_ok "$1 is a pg_restore archive${_cpa_db:+ of database $_cpa_db}"
}

# check_pg_restore FILE HOST PORT USER DATABASE COPY: before anything is
# dropped, the archive is of DATABASE, the folder of COPY can take the copy
# of the current database, and USER may drop and recreate DATABASE: a
# superuser, or CREATEDB and (when DATABASE exists) its owner.
check_pg_restore() {
	rw_check_op check_pg_restore ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	rw_hint "copy the backup the plan restores ([snapshot] path: the database dump taken before the upgrade) to $1 on this host, then run this script again"
	rw_need_file "$1"
	rw_hint
	rw_need_tool pg_restore "to restore the PostgreSQL archive"
	rw_need_tool psql "to check the database user's rights"
	rw_need_tool pg_dump "to keep a copy of the current database before it is dropped"
	rw_need_abs "$6"
	_cpr_rc=0
	_cpr_list=$(pg_restore -l "$1" 2>&1) || _cpr_rc=$?
	if [ "$_cpr_rc" -ne 0 ]; then
		rw_hint "the file must be a custom-format dump (pg_dump -Fc); a plain SQL dump is replayed with psql instead"
		rw_quote_cmd pg_restore -l "$1"
		rw_fail_cmd "$_cpr_rc" "$1 is not a readable pg_restore archive: ${_cpr_list%%"$_rw_nl"*}"
	fi
	_cpr_db=$(printf '%s\n' "$_cpr_list" | sed -n 's/^;[[:space:]]*dbname:[[:space:]]*//p' | sed -n 1p)
	if [ -n "$_cpr_db" ] && [ "$_cpr_db" != "$5" ]; then
		rw_hint "name the dump of database $5 in the plan, or correct [datastore] database if the cluster's database is $_cpr_db, and compile again"
		rw_fail "$1 is a dump of database $_cpr_db, not $5: pg_restore --create would recreate $_cpr_db"
	fi
	if [ -e "$6" ] || [ -L "$6" ]; then
		rw_ok "a copy of database $5 made by an earlier run is kept in $6"
	elif [ ! -d "${6%/*}/" ] || [ ! -w "${6%/*}/" ]; then
		rw_hint "the copy of the current database is written beside the dump; make ${6%/*} writable, or copy the dump to a writable folder and name it in the plan"
		rw_fail "cannot write the copy of database $5 before it is dropped: ${6%/*} is not a writable folder"
	fi
	# One row, its fields on separate lines: flags (superuser, CREATEDB,
	# database exists, owns it or is a member of its owner), the user, the owner.
	_cpr_rc=0
	_cpr_out=$(printf '%s\n' "SELECT CASE WHEN r.rolsuper THEN 's' ELSE '-' END || CASE WHEN r.rolcreatedb THEN 'c' ELSE '-' END || CASE WHEN d.oid IS NULL THEN '-' ELSE 'e' END || CASE WHEN d.oid IS NOT NULL AND pg_has_role(d.datdba, 'USAGE') THEN 'o' ELSE '-' END, current_user, COALESCE(pg_get_userbyid(d.datdba), '') FROM pg_roles r LEFT JOIN pg_database d ON d.datname = :'db' WHERE r.rolname = current_user" |
		psql -X -w -q -A -t -F "$_rw_nl" -v ON_ERROR_STOP=1 ${2:+"--host=$2"} ${3:+"--port=$3"} ${4:+"--username=$4"} \
			-v "db=$5" --dbname=postgres 2>&1) || _cpr_rc=$?
	_cpr_flags=${_cpr_out%%"$_rw_nl"*}
	case $_cpr_rc:$_cpr_flags in
	0:[s-][c-][e-][o-]) ;;
	*)
		rw_hint "check the host, port and user of the plan and the password (PGPASSWORD or ~/.pgpass); the restore connects to the database postgres"
		rw_quote_cmd psql ${2:+"--host=$2"} ${3:+"--port=$3"} ${4:+"--username=$4"} --dbname=postgres
		rw_fail_cmd "$_cpr_rc" "could not read the rights of PostgreSQL user ${4:-(default)}: ${_cpr_out%%"$_rw_nl"*}"
		;;
	esac
	_cpr_rest=${_cpr_out#*"$_rw_nl"}
	_cpr_user=${_cpr_rest%%"$_rw_nl"*}
	_cpr_owner=${_cpr_rest#*"$_rw_nl"}
	_cpr_qu=\"$(printf '%s' "$_cpr_user" | sed 's/"/""/g')\"
	_cpr_qd=\"$(printf '%s' "$5" | sed 's/"/""/g')\"
	case $_cpr_flags in
	s*)
		rw_ok "PostgreSQL user $_cpr_user is a superuser: it may drop and recreate database $5, with owners and privileges as dumped"
		return 0
		;;
	esac
	_cpr_miss=
	_cpr_fix=
	case $_cpr_flags in
	?c*) ;;
	*)
		_cpr_miss="the CREATEDB attribute"
		_cpr_fix="ALTER ROLE $_cpr_qu CREATEDB;"
		;;
	esac
	case $_cpr_flags in
	??eo | ??-?) ;;
	*)
		_cpr_miss="$_cpr_miss${_cpr_miss:+ and }the ownership of database $5 (owned by $_cpr_owner)"
		_cpr_fix="$_cpr_fix${_cpr_fix:+ }ALTER DATABASE $_cpr_qd OWNER TO $_cpr_qu;"
		;;
	esac
	if [ -n "$_cpr_miss" ]; then
		rw_hint "as a superuser: $_cpr_fix (or name a superuser as user in the plan); then run this script again"
		rw_fail "PostgreSQL user $_cpr_user lacks $_cpr_miss: the restore must drop database $5 and create it again; nothing was changed"
	fi
	rw_ok "PostgreSQL user $_cpr_user has CREATEDB and owns database $5: the restore runs with --no-owner, so every object belongs to $_cpr_user"
	_cpr_others=$(printf '%s\n' "$_cpr_list" | sed -n 's/^[0-9][0-9]*;.* \([^ ][^ ]*\)$/\1/p' | sort -u | grep -v -x -F -e "$_cpr_user" -e pg_database_owner | tr '\n' ' ') || true
	if [ -n "$_cpr_others" ]; then
		rw_warn "objects that the dump gives to other roles ( $_cpr_others) will belong to $_cpr_user: as a superuser, give them back with ALTER ... OWNER TO"
	fi
	# GRANTs made by another role than the object's owner: not replayable.
	_cpr_acl=$(printf '%s\n' "$_cpr_list" | grep '^[0-9][0-9]*; [0-9][0-9]* [0-9][0-9]* ACL ') || true
	if [ -n "$_cpr_acl" ]; then
		_cpr_rc=0
		_cpr_sql=$(printf '%s\n' "$_cpr_acl" | pg_restore -f - -L /dev/stdin "$1" 2>&1) || _cpr_rc=$?
		if [ "$_cpr_rc" -ne 0 ]; then
			rw_quote_cmd pg_restore -f - -L /dev/stdin "$1"
			rw_fail_cmd "$_cpr_rc" "could not read the GRANTs of $1: ${_cpr_sql%%"$_rw_nl"*}"
		fi
		case $_cpr_sql in
		*'SET SESSION AUTHORIZATION'*)
			rw_warn "the dump holds GRANTs made by other roles, which only a superuser can replay: the restore runs with --no-acl too, and none of its GRANTs are restored (pg_restore -l $1 lists them)"
			;;
		esac
	fi
}

# save_postgres HOST PORT USER DATABASE COPY: keep a copy of the current
# DATABASE in COPY (`pg_dump -Fc`, mode 0600, through COPY.partial, checked
# like the backup before the rename). An existing COPY is an earlier run's
# copy of the database before anything was dropped: it is kept, never
# overwritten. No database, nothing to keep.
save_postgres() {
	rw_need_abs "$5"
	if [ -e "$5" ] || [ -L "$5" ]; then
		rw_say "keeping the copy of database $4 made by an earlier run: $5 (not overwritten)"
		return 0
	fi
	_spg_rc=0
	_spg_n=$(printf '%s\n' "SELECT count(*) FROM pg_database WHERE datname = :'db'" |
		psql -X -w -q -A -t -v ON_ERROR_STOP=1 ${1:+"--host=$1"} ${2:+"--port=$2"} ${3:+"--username=$3"} \
			-v "db=$4" --dbname=postgres 2>&1) || _spg_rc=$?
	case $_spg_rc:$_spg_n in
	0:0) rw_say "database $4 does not exist: there is no current database to keep a copy of"; return 0 ;;
	0:1) ;;
	*)
		rw_quote_cmd psql ${1:+"--host=$1"} ${2:+"--port=$2"} ${3:+"--username=$3"} --dbname=postgres
		rw_fail_cmd "$_spg_rc" "could not tell whether database $4 exists: ${_spg_n%%"$_rw_nl"*}"
		;;
	esac
	_spg_tmp=$5.partial
	if [ -e "$_spg_tmp" ] || [ -L "$_spg_tmp" ]; then
		# An interrupted earlier copy: never renamed, so never complete.
		rw_run rm -f "$_spg_tmp"
	fi
	rw_hint "nothing was dropped: the copy of the current database could not be made (room in ${5%/*}? rights to read every table?)"
	_spg_um=$(umask)
	umask 077
	rw_run pg_dump -Fc --no-password ${1:+"--host=$1"} ${2:+"--port=$2"} ${3:+"--username=$3"} "--file=$_spg_tmp" "--dbname=$4"
	umask "$_spg_um"
	if rw_dry; then
		rw_would "check the copy like the backup (pg_restore -l, pg_restore -f /dev/null)"
	else
		_spg_rc=0
		rw_quote_cmd pg_restore -l "$_spg_tmp"
		_spg_out=$(pg_restore -l "$_spg_tmp" 2>&1) || _spg_rc=$?
		if [ "$_spg_rc" -eq 0 ]; then
			rw_quote_cmd pg_restore -f /dev/null "$_spg_tmp"
			_spg_out=$(pg_restore -f /dev/null "$_spg_tmp" 2>&1) || _spg_rc=$?
		fi
		if [ "$_spg_rc" -ne 0 ]; then
			rw_fail_cmd "$_spg_rc" "the copy $_spg_tmp of database $4 is not a complete archive (${_spg_out%%"$_rw_nl"*}); nothing was dropped"
		fi
	fi
	rw_run mv "$_spg_tmp" "$5"
	rw_ok "database $4 as it was before the rollback is kept in $5"
}

# restore_postgres FILE HOST PORT USER DATABASE [COPY]: drop and recreate
# DATABASE from the archive (as a superuser with owners and privileges, else
# with --no-owner, and --no-acl when the archive holds GRANTs made by other
# roles), then check that table kine is not empty. COPY
# is where save_postgres kept the database as it was (for the hint).
restore_postgres() {
	rw_need_file "$1"
	rw_need_tool pg_restore "to restore the PostgreSQL archive"
	rw_need_tool psql "to check the restored database"
	_rp_rc=0
	_rp_list=$(pg_restore -l "$1" 2>&1) || _rp_rc=$?
	if [ "$_rp_rc" -ne 0 ]; then
		rw_quote_cmd pg_restore -l "$1"
		rw_fail_cmd "$_rp_rc" "$1 is not a readable pg_restore archive: ${_rp_list%%"$_rw_nl"*}"
	fi
	_rp_db=$(printf '%s\n' "$_rp_list" | sed -n 's/^;[[:space:]]*dbname:[[:space:]]*//p' | sed -n 1p)
	if [ -n "$_rp_db" ] && [ "$_rp_db" != "$5" ]; then
		rw_fail "$1 is a dump of database $_rp_db, not $5: pg_restore --create would recreate $_rp_db"
	fi
	_rp_rc=0
	_rp_su=$(psql -X -w -q -A -t -v ON_ERROR_STOP=1 ${2:+"--host=$2"} ${3:+"--port=$3"} ${4:+"--username=$4"} \
		--dbname=postgres -c 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user' 2>&1) || _rp_rc=$?
	case $_rp_rc:$_rp_su in
	0:t)
		_rp_own=
		_rp_acl=
		;;
	0:f)
		_rp_own=1
		# As in check_pg_restore: GRANTs made by other roles need --no-acl.
		_rp_acl=
		_rp_g=$(printf '%s\n' "$_rp_list" | grep '^[0-9][0-9]*; [0-9][0-9]* [0-9][0-9]* ACL ') || true
		if [ -n "$_rp_g" ]; then
			_rp_rc=0
			_rp_g=$(printf '%s\n' "$_rp_g" | pg_restore -f - -L /dev/stdin "$1" 2>&1) || _rp_rc=$?
			if [ "$_rp_rc" -ne 0 ]; then
				rw_quote_cmd pg_restore -f - -L /dev/stdin "$1"
				rw_fail_cmd "$_rp_rc" "could not read the GRANTs of $1: ${_rp_g%%"$_rw_nl"*}"
			fi
			case $_rp_g in
			*'SET SESSION AUTHORIZATION'*) _rp_acl=1 ;;
			esac
		fi
		;;
	*)
		rw_quote_cmd psql ${2:+"--host=$2"} ${3:+"--port=$3"} ${4:+"--username=$4"} --dbname=postgres -c 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user'
		rw_fail_cmd "$_rp_rc" "could not tell whether PostgreSQL user ${4:-(default)} is a superuser: ${_rp_su%%"$_rw_nl"*}"
		;;
	esac
	rw_hint "pg_restore stopped at the first error (above). Every rke2 server must be stopped (a connected client blocks DROP DATABASE); the password comes from PGPASSWORD or ~/.pgpass.${6:+ The database as it was before the rollback is kept in $6.}"
	rw_run pg_restore --clean --if-exists --create --exit-on-error --no-password ${_rp_own:+--no-owner} ${_rp_acl:+--no-acl} \
		${2:+"--host=$2"} ${3:+"--port=$3"} ${4:+"--username=$4"} -d postgres "$1"
	if rw_dry; then
		rw_would "check that table kine in database $5 is not empty"
		return 0
	fi
	_rp_rc=0
	_rp_n=$(psql -X -w -A -t -v ON_ERROR_STOP=1 ${2:+"--host=$2"} ${3:+"--port=$3"} ${4:+"--username=$4"} \
		"--dbname=$5" -c 'SELECT count(*) FROM kine' 2>&1) || _rp_rc=$?
	case $_rp_n in
	'' | *[!0-9]*)
		rw_quote_cmd psql ${2:+"--host=$2"} ${3:+"--port=$3"} ${4:+"--username=$4"} "--dbname=$5" -c 'SELECT count(*) FROM kine'
		rw_fail_cmd "$_rp_rc" "could not count the rows of table kine: ${_rp_n%%"$_rw_nl"*}"
		;;
	esac
	if [ "$_rp_n" -eq 0 ]; then
		rw_fail "table kine in database $5 is empty after the restore: this dump holds no cluster data"
	fi
	rw_ok "database restored; kine has $_rp_n rows"
}

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

# ---- rewind runtime library: token ----------------------------------------------
# The server token saved with the backup. It encrypts the bootstrap data
# (CA keys, secrets) inside the datastore: a restore with another token is
# unreadable ("bootstrap data already found and encrypted with different
# token"). The token is a secret: it is only ever compared by hash, never
# printed, never on a command line.

# check_token FILE [HEX]: the saved token exists, is not empty, and hashes to
# HEX when given.
check_token() {
	rw_check_op check_token ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	rw_hint "copy the server token saved with the snapshot (the cluster's server/token file, /var/lib/rancher/rke2/server/token by default, as it was when the snapshot was taken) to $1 on this host, readable by root only; then run this script again"
	rw_need_file "$1"
	if [ ! -s "$1" ]; then
		rw_fail "the saved token $1 is empty"
	fi
	if [ -n "${2:-}" ]; then
		rw_lower "$2"
		rw_sha256 "$1" || rw_fail "could not read the saved token $1"
		if [ "$_rw_sha" != "$_rw_lc" ]; then
			rw_hint "copy the token that was saved with this backup (the server/token file of the time), then run this script again"
			rw_fail "the saved token $1 does not match the sha256 in the plan (the token itself is not shown)"
		fi
		rw_ok "saved token $1 present, sha256 matches (token not shown)"
	else
		rw_ok "saved token $1 present (token not shown)"
	fi
}

# put_token SAVED DEST SUFFIX: make DEST hold the saved token. A DEST with
# another token is moved aside to DEST.SUFFIX; the copy is made readable by
# root only (umask 077, then chmod 600).
put_token() {
	_pt_src=$1
	_pt_dest=$2
	rw_need_file "$_pt_src"
	if [ ! -s "$_pt_src" ]; then
		rw_fail "the saved token $_pt_src is empty"
	fi
	rw_sha256 "$_pt_src" || rw_fail "could not read the saved token $_pt_src"
	_pt_want=$_rw_sha
	if [ -f "$_pt_dest" ]; then
		rw_sha256 "$_pt_dest" || rw_fail "could not read $_pt_dest"
		if [ "$_rw_sha" = "$_pt_want" ]; then
			rw_ok "$_pt_dest already holds the saved token (not shown)"
			return 0
		fi
		rw_say "$_pt_dest holds another token: it is moved aside"
	fi
	if [ -e "$_pt_dest" ] || [ -e "$_pt_dest.$3" ]; then
		rw_move_aside "$_pt_dest" "$_pt_dest.$3"
	fi
	case $_pt_dest in
	*/*)
		if [ ! -d "${_pt_dest%/*}" ]; then rw_run mkdir -p "${_pt_dest%/*}"; fi
		;;
	esac
	_pt_umask=$(umask)
	umask 077
	rw_run cp "$_pt_src" "$_pt_dest"
	umask "$_pt_umask"
	rw_run chmod 600 "$_pt_dest"
	if rw_dry; then return 0; fi
	rw_sha256 "$_pt_dest" || rw_fail "could not read $_pt_dest back"
	if [ "$_rw_sha" != "$_pt_want" ]; then
		rw_fail "$_pt_dest does not hold the saved token after the copy (full disk?)"
	fi
	rw_ok "$_pt_dest holds the saved token (not shown)"
}

