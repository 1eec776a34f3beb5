# Emulates the compiler's rendering of templates/script.sh.j2 for the shell
# library tests: every {{ value }} is shell-quoted like src/shell.rs quote(),
# {{ library }} is replaced verbatim by core.sh plus the fragments, and each
# `{%- for op in preflight|actions %}` block by the lines of a body file
# (already shell text, one call per line, indented).
# Variables (ENVIRON): B_<NAME> for each value, B_LIBRARY (a file),
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
function body(file,    line) {
	while ((getline line < file) > 0) print line
	close(file)
}
/^\{%-? for op in preflight %\}/ { body(ENVIRON["B_PREFLIGHT"]); skip = 1; next }
/^\{%-? for op in actions %\}/ { body(ENVIRON["B_ACTIONS"]); skip = 1; next }
skip && /^\{%-? endfor %\}/ { skip = 0; next }
skip { next }
/^\{\{ library \}\}/ {
	# the library text ends in a newline; the rest of the line follows it
	while ((getline line < ENVIRON["B_LIBRARY"]) > 0) print line
	close(ENVIRON["B_LIBRARY"])
	sub(/^\{\{ library \}\}/, "")
	if ($0 == "") next
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
