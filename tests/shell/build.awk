# Emulates the compiler's rendering of templates/script.sh.j2 and
# templates/lib.sh.j2 for the shell library tests: every {{ value }} is
# shell-quoted like src/shell.rs quote(), a line `{{ code }}` is replaced
# verbatim by core.sh plus the fragments (the file B_CODE), and each
# `{%- for op in preflight|actions %}` block by the lines of a body file
# (already shell text, one call per line, indented), and the
# `{% for c in constants %}` block by the lines of B_CONSTANTS.
# Variables (ENVIRON): B_<NAME> for each value, B_CODE, B_CONSTANTS,
# B_PREFLIGHT and B_ACTIONS (files).
function quote(s,    out, i, c) {
	if (s != "" && s ~ /^[A-Za-z0-9@%+=:,.\/_-]+$/) return s
	out = "'"
	for (i = 1; i <= length(s); i++) {
		c = substr(s, i, 1)
		if (c == "'") out = out "'\"'\"'"
		else out = out c
	}
	return out "'"
}
function body(file,    line, n) {
	n = 0
	while ((getline line < file) > 0) { print line; n++ }
	close(file)
	# the template's {% else %}: an empty body is `:`
	if (n == 0) print "\t:"
}
# the library's constants (lib.sh.j2): the lines of B_CONSTANTS, as they are
/^\{% for c in constants %\}/ {
	while ((getline line < ENVIRON["B_CONSTANTS"]) > 0) print line
	close(ENVIRON["B_CONSTANTS"])
	skip = 1
	next
}
/^\{%-? for op in preflight %\}/ { body(ENVIRON["B_PREFLIGHT"]); skip = 1; next }
/^\{%-? for op in actions %\}/ { body(ENVIRON["B_ACTIONS"]); skip = 1; next }
skip && /^\{%-? endfor %\}/ { skip = 0; next }
skip { next }
/^\{\{ code \}\}$/ {
	while ((getline line < ENVIRON["B_CODE"]) > 0) print line
	close(ENVIRON["B_CODE"])
	next
}
{
	out = ""
	rest = $0
	while (match(rest, /\{\{ [a-z_0-9]+ \}\}/)) {
		name = substr(rest, RSTART + 3, RLENGTH - 6)
		key = "B_" toupper(name)
		if (!(key in ENVIRON)) { print "build.awk: no value for " name > "/dev/stderr"; exit 2 }
		out = out substr(rest, 1, RSTART - 1) quote(ENVIRON[key])
		rest = substr(rest, RSTART + RLENGTH)
	}
	print out rest
}
