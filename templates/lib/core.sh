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
