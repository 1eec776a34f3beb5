# rewind runtime library of one bundle: the plan's constants, then the code.
# Every script of the bundle sources it once its sha256 matches the one the
# script carries. Do not edit: change the plan and compile again.
# shellcheck shell=sh disable=SC2034

REWIND_CLUSTER=rancher
REWIND_PLAN=b571211b89e6d34423220994f8cdbb11fc3cdbe3f5ec61fda25fd3dd0abb8685

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

# ---- rewind runtime library: rke1 -------------------------------------------------
# Rancher HA on RKE1, the rke side of the Rancher HA rollback: the workstation files, the
# etcd snapshot on the nodes (checked, or put on a replaced node), the node
# list of the cluster file, and the two rke commands. rke runs on the
# workstation and reaches the nodes over SSH, so workstation scripts do not
# need root. Relative paths are relative to the folder the script is run
# from (the plan's rule: run them from the folder holding the cluster file).

# _r1_where PATH: sets _r1_at to PATH, plus the folder it was looked for in
# when it is relative (the usual mistake: running from the bundle's folder).
_r1_where() {
	case $1 in
	/*) _r1_at=$1 ;;
	*) _r1_at="$1 (looked for in ${PWD:-.})" ;;
	esac
}

# _r1_first_etcd CONFIG: sets _r1_fe to the address of the first node of
# the cluster file's `nodes:` list whose role has etcd (role: [a, b] or a
# block list), empty if none is found. The file is read on standard input:
# a name with `=` is not an awk assignment.
_r1_first_etcd() {
	_r1_fe=$(awk '
		function flush() { if (addr != "" && etcd && !done) { print addr; done = 1 } }
		/^nodes:/ { innodes = 1; next }
		innodes && /^[^ \t#-]/ { innodes = 0 }
		!innodes || done { next }
		/^[ \t]*-[ \t]+[A-Za-z_]+:/ { flush(); addr = ""; etcd = 0; inrole = 0; sub(/^[ \t]*-/, " ") }
		/^[ \t]*address:/ { v = $0; sub(/^[^:]*:[ \t]*/, "", v); sub(/[ \t]+#.*$/, "", v); gsub(/["\047]/, "", v); addr = v; inrole = 0; next }
		/^[ \t]*role:/ { if ($0 ~ /etcd/) etcd = 1; inrole = 1; next }
		inrole && /^[ \t]*-[ \t]*etcd[ \t]*$/ { etcd = 1; next }
		inrole && /^[ \t]*-[ \t]*[A-Za-z]+[ \t]*$/ { next }
		/^[ \t]*[A-Za-z_]+:/ { inrole = 0 }
		END { flush() }
	' <"$1" 2>/dev/null) || _r1_fe=
}

# rke1_check_workstation BIN CONFIG STATE KUBECONFIG SOURCE S3: the rke
# binary runs, the cluster file and its state file are readable (everything
# missing is reported at once); a missing kubeconfig is only reported: rke
# up writes it. The cluster file has services.etcd.backup_config
# .s3backupconfig exactly when S3 is 1 (then rke pulls the snapshot from S3
# on every etcd node, and the local copies do not matter); when SOURCE is
# given, it is the first etcd node of the cluster file, the one whose copy
# rke restores from (and the one step 1 checked).
rke1_check_workstation() {
	rw_check_op rke1_check_workstation ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	_r1w_bad=
	case $1 in
	*/*)
		_r1_where "$1"
		if [ ! -f "$1" ]; then
			_r1w_bad="$_r1w_bad$_rw_nl  rke binary not found: $_r1_at"
		elif [ ! -x "$1" ]; then
			_r1w_bad="$_r1w_bad$_rw_nl  rke binary not executable (chmod +x): $_r1_at"
		fi
		;;
	*)
		if ! command -v "$1" >/dev/null 2>&1; then
			_r1w_bad="$_r1w_bad$_rw_nl  rke binary $1 is not on PATH"
		fi
		;;
	esac
	for _r1w_f in "$2" "$3"; do
		_r1_where "$_r1w_f"
		if [ ! -f "$_r1w_f" ]; then
			_r1w_bad="$_r1w_bad$_rw_nl  not found: $_r1_at"
		elif [ ! -r "$_r1w_f" ]; then
			_r1w_bad="$_r1w_bad$_rw_nl  not readable: $_r1_at"
		fi
	done
	if [ -n "$_r1w_bad" ]; then
		rw_hint "run the workstation scripts from the folder that holds the cluster file (relative paths in the plan are relative to it); the .rkestate must sit beside the cluster file under its name"
		rw_fail "the workstation is not ready:$_r1w_bad"
	fi
	_r1w_rc=0
	_r1w_v=$("$1" --version 2>&1) || _r1w_rc=$?
	if [ "$_r1w_rc" -ne 0 ]; then
		rw_quote_cmd "$1" --version
		rw_hint "use the rke binary for this machine's system (rke_linux-amd64, rke_darwin-amd64, ...), the one that performed the upgrade"
		rw_fail_cmd "$_r1w_rc" "the rke binary does not run: ${_r1w_v%%"$_rw_nl"*}"
	fi
	rw_ok "rke runs: ${_r1w_v%%"$_rw_nl"*}"
	rw_ok "cluster file $2 and its state file $3 present"
	if grep -q -E '^[[:space:]]*s3backupconfig:' <"$2"; then
		if [ "${6:-0}" != 1 ]; then
			rw_hint "set s3-backup = true under [rke] in the plan and compile again: then no node is asked for a local copy, and the snapshot's name is the one in the bucket"
			rw_fail "$2 has s3backupconfig: rke etcd snapshot-restore pulls the snapshot from S3 itself and ignores the local copies this bundle checked"
		fi
		rw_ok "$2 has s3backupconfig: rke pulls the snapshot from S3 itself"
	elif [ "${6:-0}" = 1 ]; then
		rw_hint "add the s3backupconfig of the upgrade's snapshot to $2, or set s3-backup = false in the plan (then the first etcd node must hold a local copy) and compile again"
		rw_fail "the plan says $2 has s3backupconfig, but it has none: rke would restore a local copy that no step checked"
	fi
	if [ -n "${5:-}" ]; then
		_r1_first_etcd "$2"
		if [ -z "$_r1_fe" ]; then
			rw_hint "give at least one node of $2 the etcd role (role: [etcd, ...]) as in the cluster the snapshot was taken of, then run this script again"
			rw_fail "no node with the etcd role found in the nodes: list of $2"
		elif [ "$_r1_fe" != "$5" ]; then
			rw_hint "list the nodes in the plan in the cluster file's order (or reorder the cluster file), so that the copy step 1 checked is the one rke uses; then compile again"
			rw_fail "rke restores from the first etcd node of $2, $_r1_fe, but the plan's first etcd node is $5"
		fi
		rw_ok "rke restores from $_r1_fe, the first etcd node of $2 and of the plan"
	fi
	if [ -f "$4" ]; then
		rw_ok "kubeconfig present: $4"
	else
		_r1_where "$4"
		rw_warn "kubeconfig not found: $_r1_at; rke up writes it again, and the kubectl steps after it need it"
	fi
}

# rke1_check_snapshot DIR NAME HEX MODE: DIR/NAME.zip (or the uncompressed
# DIR/NAME) is a non-empty file hashing to HEX (empty HEX: not checked). MODE
# source: the copy the restore uses, so a missing or different file fails.
# MODE peer: rke replaces this node's copy with the source's, so a missing or
# different file is only reported.
rke1_check_snapshot() {
	rw_check_op rke1_check_snapshot ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	_r1s_dir=$1
	_r1s_name=$2
	_r1s_hex=$3
	_r1s_mode=$4
	if [ -f "$_r1s_dir/$_r1s_name.zip" ]; then
		_r1s_f=$_r1s_dir/$_r1s_name.zip
	elif [ -f "$_r1s_dir/$_r1s_name" ]; then
		_r1s_f=$_r1s_dir/$_r1s_name
	elif [ "$_r1s_mode" = source ]; then
		rw_hint "copy the snapshot taken before the upgrade into $_r1s_dir/ on this node (from the etcd node or the S3 bucket where it was saved), then run this script again"
		rw_fail "snapshot $_r1s_name not found: neither $_r1s_dir/$_r1s_name.zip nor $_r1s_dir/$_r1s_name exists, and the restore takes it from this node"
	else
		rw_say "note: no copy of snapshot $_r1s_name in $_r1s_dir; rke copies it here from the etcd node that holds it"
		return 0
	fi
	rw_need_file "$_r1s_f"
	if [ ! -s "$_r1s_f" ]; then
		if [ "$_r1s_mode" = source ]; then
			rw_hint "the copy is empty (an interrupted download or copy): copy the snapshot again, then run this script again"
			rw_fail "snapshot $_r1s_f is empty"
		fi
		rw_warn "snapshot $_r1s_f is empty; rke replaces it with the copy of the etcd node it restores from"
		return 0
	fi
	if [ -z "$_r1s_hex" ]; then
		rw_ok "snapshot present: $_r1s_f (the plan has no sha256 to check it against)"
		return 0
	fi
	rw_lower "$_r1s_hex"
	_r1s_want=$_rw_lc
	rw_say "computing the sha256 of $_r1s_f"
	rw_sha256 "$_r1s_f" || rw_fail "could not read $_r1s_f to compute its sha256"
	if [ "$_rw_sha" = "$_r1s_want" ]; then
		rw_ok "snapshot $_r1s_f: sha256 matches the plan"
	elif [ "$_r1s_mode" = source ]; then
		rw_hint "this node's copy is not the snapshot named in the plan: copy the right one here (or correct the plan's sha256 and compile again)"
		rw_fail "sha256 mismatch for $_r1s_f: expected $_r1s_want, got $_rw_sha"
	else
		rw_warn "$_r1s_f is not the plan's copy (sha256 $_rw_sha): each etcd node saves its own; rke replaces it with the copy of the etcd node it restores from"
	fi
}

# rke1_check_cluster_nodes CONFIG FAILED REPLACEMENT BLOCK: the cluster file
# has an `address:` REPLACEMENT and none FAILED (commented lines do not
# count). Otherwise prints BLOCK, the nodes list to paste, and fails.
rke1_check_cluster_nodes() {
	rw_check_op rke1_check_cluster_nodes ${1+"$@"}; if [ "$_rw_ran" = 1 ]; then return 0; fi
	_r1_where "$1"
	if [ ! -f "$1" ] || [ ! -r "$1" ]; then
		rw_hint "run the workstation scripts from the folder that holds the cluster file"
		rw_fail "cluster file not found or not readable: $_r1_at"
	fi
	# Block-style YAML: `- address: X` or `address: X` on its own line; the
	# value may be quoted and followed by a comment.
	_r1c_rc=0
	_r1c_list=$(awk -v q="'" '
		{
			sub(/\r$/, "")
			line = $0
			sub(/^[ \t]*/, "", line)
			if (substr(line, 1, 1) == "#") next
			if (substr(line, 1, 1) == "-") {
				line = substr(line, 2)
				sub(/^[ \t]*/, "", line)
			}
			if (line !~ /^address[ \t]*:/) next
			sub(/^address[ \t]*:[ \t]*/, "", line)
			sub(/[ \t]+#.*$/, "", line)
			sub(/[ \t]+$/, "", line)
			n = length(line)
			if (n >= 2) {
				f = substr(line, 1, 1)
				l = substr(line, n, 1)
				if ((f == "\"" && l == "\"") || (f == q && l == q)) line = substr(line, 2, n - 2)
			}
			print line
		}' <"$1") || _r1c_rc=$? # stdin: a name with `=` is not an assignment
	if [ "$_r1c_rc" -ne 0 ]; then
		rw_quote_cmd awk '<address entries>' "$1"
		rw_fail_cmd "$_r1c_rc" "could not read the node addresses of $1"
	fi
	_r1c_list="$_rw_nl$_r1c_list$_rw_nl"
	_r1c_bad=
	case $_r1c_list in
	*"$_rw_nl$3$_rw_nl"*) ;;
	*) _r1c_bad="$_r1c_bad$_rw_nl  the new node $3 is not listed" ;;
	esac
	case $_r1c_list in
	*"$_rw_nl$2$_rw_nl"*) _r1c_bad="$_r1c_bad$_rw_nl  the failed node $2 is still listed" ;;
	esac
	if [ -n "$_r1c_bad" ]; then
		{
			printf '\nrewind: %s must list the new node instead of the failed one:%s\n' "$1" "$_r1c_bad"
			printf 'rewind: replace its nodes: list with this block (then save and run this script again):\n\n'
			printf '%s\n' "$4"
		} >&2
		rw_hint "edit $1 as shown above, keeping each node's other keys; a dead node in the file stops rke"
		rw_fail "$1 does not list the nodes of the plan"
	fi
	rw_ok "$1 lists $3 and not $2"
}

# _r1_put_prepare DIR FILE HEX: create DIR; sets _r1p_dest (DIR/FILE) and
# _r1p_tmp (the name the new copy arrives under). Sets _r1p_done=1 when the
# right copy is already in place; a different file there is moved aside.
_r1_put_prepare() {
	rw_need_abs "$1"
	_r1p_dest=$1/$2
	_r1p_tmp=$1/.$2.rewind-partial
	_r1p_done=0
	if [ ! -d "$1" ]; then
		rw_run mkdir -p "$1"
	fi
	if [ -f "$_r1p_dest" ]; then
		if [ -z "$3" ]; then
			rw_ok "snapshot already in place: $_r1p_dest (the plan has no sha256 to check it against)"
			_r1p_done=1
			return 0
		fi
		rw_lower "$3"
		rw_sha256 "$_r1p_dest" || {
		rw_hint "check that $_r1p_dest can be read (a disk error?); move it away and run this script again to fetch it anew"
		rw_fail "could not read $_r1p_dest to compute its sha256"
	}
		if [ "$_rw_sha" = "$_rw_lc" ]; then
			rw_ok "snapshot already in place: $_r1p_dest (sha256 matches the plan)"
			_r1p_done=1
			return 0
		fi
		rw_say "$_r1p_dest is another file (sha256 $_rw_sha): moving it aside"
		rw_move_aside "$_r1p_dest" "$_r1p_dest.$REWIND_SUFFIX"
	fi
	# A partial copy of an interrupted earlier run: only ever a copy.
	if [ -e "$_r1p_tmp" ]; then
		rw_run rm -f "$_r1p_tmp"
	fi
}

# _r1_put_finish HEX: check the new copy and rename it into place.
_r1_put_finish() {
	if rw_dry; then
		rw_would "check $_r1p_tmp (not empty${1:+, sha256 $1}), then:"
		rw_run mv "$_r1p_tmp" "$_r1p_dest"
		return 0
	fi
	if [ ! -s "$_r1p_tmp" ]; then
		rw_run rm -f "$_r1p_tmp"
		rw_hint "the source holds an empty file (rancher/rke2#6281 shows empty downloads happen): check the object or file, then run this script again"
		rw_fail "the copied snapshot is empty"
	fi
	if [ -n "$1" ]; then
		rw_lower "$1"
		rw_say "computing the sha256 of the new copy"
		rw_sha256 "$_r1p_tmp" || rw_fail "could not read $_r1p_tmp to compute its sha256"
		if [ "$_rw_sha" != "$_rw_lc" ]; then
			_r1p_got=$_rw_sha
			rw_run rm -f "$_r1p_tmp"
			rw_hint "the source is not the snapshot named in the plan, or the transfer damaged it: find the right snapshot before going on"
			rw_fail "sha256 mismatch for the new copy of $_r1p_dest: expected $_rw_lc, got $_r1p_got"
		fi
	fi
	rw_run mv "$_r1p_tmp" "$_r1p_dest"
	rw_ok "snapshot in place: $_r1p_dest"
}

# rke1_snapshot_from_s3 DIR FILE URL ENDPOINT REGION HEX: s3cmd get URL into
# DIR/FILE. The keys come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or
# s3cmd's configuration file (REWIND_S3CFG names another one); they never
# appear on a command line.
rke1_snapshot_from_s3() {
	rw_need_tool s3cmd "to download the snapshot"
	if [ -n "${REWIND_S3CFG:-}" ] && [ ! -r "$REWIND_S3CFG" ]; then
		rw_fail "REWIND_S3CFG names $REWIND_S3CFG, which is not a readable file"
	fi
	_r1g_url=$3
	_r1g_ep=$4
	_r1g_region=$5
	_r1g_hex=$6
	_r1_put_prepare "$1" "$2" "$_r1g_hex"
	if [ "$_r1p_done" = 1 ]; then return 0; fi
	set -- s3cmd
	if [ -n "${REWIND_S3CFG:-}" ]; then set -- "$@" -c "$REWIND_S3CFG"; fi
	if [ -n "$_r1g_ep" ]; then set -- "$@" "--host=$_r1g_ep" "--host-bucket=$_r1g_ep"; fi
	if [ -n "$_r1g_region" ]; then set -- "$@" "--region=$_r1g_region"; fi
	rw_hint "s3cmd exit 77 is a refused key (export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or set REWIND_S3CFG); exit 64 a wrong bucket, folder or name"
	rw_run "$@" --no-progress get "$_r1g_url" "$_r1p_tmp"
	_r1_put_finish "$_r1g_hex"
}

# rke1_snapshot_from_file DIR FILE SOURCE HEX: copy SOURCE into DIR/FILE.
rke1_snapshot_from_file() {
	_r1f_src=$3
	_r1f_hex=$4
	rw_need_file "$_r1f_src"
	_r1_put_prepare "$1" "$2" "$_r1f_hex"
	if [ "$_r1p_done" = 1 ]; then return 0; fi
	rw_run cp "$_r1f_src" "$_r1p_tmp"
	_r1_put_finish "$_r1f_hex"
}

# rke1_snapshot_by_hand DIR NAME HEX: create DIR; DIR/NAME.zip (or DIR/NAME)
# must have been copied there by the operator, and hash to HEX.
rke1_snapshot_by_hand() {
	rw_need_abs "$1"
	if [ ! -d "$1" ]; then
		rw_run mkdir -p "$1"
	fi
	if rw_dry && [ ! -f "$1/$2.zip" ] && [ ! -f "$1/$2" ]; then
		rw_would "check that you copied $1/$2.zip here${3:+ (sha256 $3)}"
		return 0
	fi
	rke1_check_snapshot "$1" "$2" "$3" source
}

# _r1_rke WHAT BIN ARGS...: run rke, showing its output and keeping it in a
# log under the state folder (named in the failure report). Sets _r1_rc to
# rke's exit code; the caller decides what failure means.
_r1_rke() {
	_r1k_log=$_rw_state_dir/$REWIND_STEP.$1.$(date -u +%Y%m%dT%H%M%SZ).log
	shift
	rw_run_logged "$_r1k_log" "$@"
	_r1_rc=$_rw_rl_rc
	if rw_dry; then
		rw_would "keep rke's output in a log under $_rw_state_dir"
	fi
}

# rke1_snapshot_save BIN CONFIG NAME: rke etcd snapshot-save of the cluster as
# it is now. If etcd cannot be saved (the upgrade broke it), warn and go on:
# there is nothing left to keep, and the restore must not wait for it.
rke1_snapshot_save() {
	_r1_rke snapshot-save "$1" etcd snapshot-save --name "$3" --config "$2"
	if rw_dry; then return 0; fi
	if [ "$_r1_rc" -eq 0 ]; then
		rw_ok "current etcd saved as $3 (in /opt/rke/etcd-snapshots/ on the etcd nodes)"
	else
		rw_warn "rke could not save the current etcd (exit $_r1_rc; its output is in $_r1k_log): the rollback goes on without a copy of the current state"
	fi
}

# rke1_snapshot_restore BIN CONFIG NAME: rke etcd snapshot-restore.
rke1_snapshot_restore() {
	_r1_rke snapshot-restore "$1" etcd snapshot-restore --name "$3" --config "$2"
	if [ "$_r1_rc" -ne 0 ]; then
		rw_hint "rke's last lines name the node and the cause (its output is in $_r1k_log); running the restore again is safe"
		rw_fail_cmd "$_r1_rc" "rke etcd snapshot-restore failed"
	fi
	if ! rw_dry; then rw_ok "snapshot $3 restored"; fi
}

# rke1_up BIN CONFIG: rke up.
rke1_up() {
	_r1_rke up "$1" up --config "$2"
	if [ "$_r1_rc" -ne 0 ]; then
		rw_hint "rke's last lines name the node and the component (its output is in $_r1k_log); rke up is safe to run again"
		rw_fail_cmd "$_r1_rc" "rke up failed"
	fi
	if ! rw_dry; then rw_ok "rke up finished"; fi
}

