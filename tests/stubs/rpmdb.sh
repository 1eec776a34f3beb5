# shellcheck shell=sh
# Shared by the RPM stand-ins (rpm, dnf/yum, zypper) of the sandbox tests;
# sourced, after lib.sh. The sandbox seeds it on an RPM host as
# /usr/lib/rpm-stand-in/rpmdb.sh (tests/sandbox/seed.rs). Written from the
# documented behaviour of the real tools (docs/upstream-facts.md
# §4.3), not from their code. A host's packages:
#   /var/lib/rpm/stand-in.db              installed: "NAME VERSION-RELEASE ARCH"
#   /var/lib/rpm-stand-in/repository      what the RKE2 repositories hold:
#                                         "MINOR NAME VERSION-RELEASE ARCH",
#                                         oldest first; MINOR is 1.29... or
#                                         common
#   /etc/yum.repos.d/*.repo, /etc/zypp/repos.d/*.repo
#                                         the configured repositories: a
#                                         section [ID] whose baseurl has
#                                         /rke2/CHANNEL/MINOR/ serves the
#                                         packages of MINOR under ID
# Packages own what the real ones do: rke2-common the rke2 binary and
# scripts in /usr/bin, rke2-server and rke2-agent their unit.

RS_DB=/var/lib/rpm/stand-in.db
RS_REPO=/var/lib/rpm-stand-in/repository

# rs_installed NAME: prints "VERSION-RELEASE ARCH" of NAME, or returns 1.
rs_installed() {
	[ -f "$RS_DB" ] || return 1
	_ri=$(awk -v n="$1" '$1 == n { print $2, $3 }' "$RS_DB")
	[ -n "$_ri" ] || return 1
	printf '%s\n' "$_ri"
}

# rs_available: "REPOID NAME VERSION-RELEASE ARCH" for every package the
# configured repositories serve, oldest first.
rs_available() {
	for _ra_f in /etc/yum.repos.d/*.repo /etc/zypp/repos.d/*.repo; do
		[ -f "$_ra_f" ] || continue
		awk '
			/^\[.*\]$/ { id = substr($0, 2, length($0) - 2); next }
			/^baseurl=/ {
				n = split($0, p, "/")
				for (i = 1; i < n; i++) if (p[i] == "rke2") { print id, p[i + 2]; break }
			}' "$_ra_f"
	done | while read -r _ra_id _ra_minor; do
		awk -v id="$_ra_id" -v m="$_ra_minor" '$1 == m { print id, $2, $3, $4 }' "$RS_REPO"
	done
}

# rs_rank NAME VR: the position of NAME VR in the repository (its version
# order), or 0 if it is not there.
rs_rank() {
	awk -v n="$1" -v v="$2" '$2 == n { i++; if ($3 == v) { print i; found = 1; exit } } END { if (!found) print 0 }' "$RS_REPO"
}

# rs_resolve SPEC: sets RS_ID RS_NAME RS_VR RS_ARCH to the available package
# that SPEC names: NAME-VERSION-RELEASE, NAME-VERSION, NAME=VERSION-RELEASE,
# NAME=VERSION or NAME (the newest); returns 1 if none.
rs_resolve() {
	RS_NAME=
	_rr_out=$(rs_available | awk -v s="$1" '
		{ v = $3; ver = v; sub(/-[^-]*$/, "", ver) }
		s == $2 || s == $2 "-" v || s == $2 "-" ver || s == $2 "=" v || s == $2 "=" ver { hit = $0 }
		END { if (hit != "") print hit }')
	[ -n "$_rr_out" ] || return 1
	# shellcheck disable=SC2086 # four words
	set -- $_rr_out
	# shellcheck disable=SC2034 # for the stand-ins that print the repository
	RS_ID=$1
	RS_NAME=$2
	RS_VR=$3
	RS_ARCH=$4
}

# rs_rke2_version VR: the RKE2 version of a package version-release
# (1.29.3~rke2r1-0.el8 -> v1.29.3+rke2r1; 1.24.3~rc1~rke2r1 -> v1.24.3-rc1+rke2r1).
rs_rke2_version() {
	_rv=${1%-*}
	_rv_last=${_rv##*\~}
	_rv_head=${_rv%\~*}
	printf 'v%s+%s\n' "$(printf '%s' "$_rv_head" | tr '~' '-')" "$_rv_last"
}

# rs_apply NAME VR ARCH: installs that package (its files and its line in
# the database).
rs_apply() {
	mkdir -p "${RS_DB%/*}"
	{
		if [ -f "$RS_DB" ]; then awk -v n="$1" '$1 != n' "$RS_DB"; fi
		printf '%s %s %s\n' "$1" "$2" "$3"
	} >"$RS_DB.new"
	mv -f "$RS_DB.new" "$RS_DB"
	_ap_v=$(rs_rke2_version "$2")
	case $1 in
	rke2-common)
		sed "s/^RKE2_STUB_VERSION=.*/RKE2_STUB_VERSION=$_ap_v/" /rewind-test/stubs/rke2 >/usr/bin/rke2
		sed "s/^RKE2_STUB_VERSION=.*/RKE2_STUB_VERSION=$_ap_v/" /rewind-test/stubs/rke2-killall.sh >/usr/bin/rke2-killall.sh
		cp /rewind-test/stubs/rke2-uninstall.sh /usr/bin/rke2-uninstall.sh
		chmod 755 /usr/bin/rke2 /usr/bin/rke2-killall.sh /usr/bin/rke2-uninstall.sh
		;;
	rke2-server | rke2-agent)
		mkdir -p /usr/lib/systemd/system
		printf '[Unit]\nDescription=Rancher Kubernetes Engine v2 (%s) %s\n[Service]\nType=notify\nExecStart=/usr/bin/rke2 %s\n' \
			"${1#rke2-}" "$_ap_v" "${1#rke2-}" >"/usr/lib/systemd/system/$1.service"
		;;
	esac
}

# rs_transaction OLDOK SPEC...: resolves every SPEC, refuses the whole
# transaction when a package would break rke2-server's or rke2-agent's
# requirement of rke2-common at exactly its own version-release, and
# applies it. Each package older than the installed one is kept back (and
# reported on stderr) unless OLDOK is 1. Prints "NAME VR ARCH" of what it
# changed; returns 2 for an unknown package, 3 for a broken requirement.
rs_transaction() {
	_rt_old=$1
	shift
	_rt_plan=
	for _rt_s in "$@"; do
		if ! rs_resolve "$_rt_s"; then
			printf 'No package %s available.\n' "$_rt_s" >&2
			return 2
		fi
		_rt_have=$(rs_installed "$RS_NAME" | awk '{ print $1 }')
		if [ -n "$_rt_have" ]; then
			if [ "$_rt_have" = "$RS_VR" ]; then continue; fi
			if [ "$(rs_rank "$RS_NAME" "$RS_VR")" -lt "$(rs_rank "$RS_NAME" "$_rt_have")" ] && [ "$_rt_old" != 1 ]; then
				printf 'older: %s-%s (installed: %s)\n' "$RS_NAME" "$RS_VR" "$_rt_have" >&2
				continue
			fi
		fi
		_rt_plan="$_rt_plan$RS_NAME $RS_VR $RS_ARCH
"
	done
	# The requirement, on the state after the transaction.
	_rt_after=$(
		{
			printf '%s' "$_rt_plan"
			if [ -f "$RS_DB" ]; then cat "$RS_DB"; fi
		} | awk '!seen[$1]++'
	)
	_rt_bad=$(printf '%s\n' "$_rt_after" | awk '
		{ v[$1] = $2 }
		END {
			for (p in v) if ((p == "rke2-server" || p == "rke2-agent") && v["rke2-common"] != v[p])
				printf "package %s-%s requires rke2-common = %s, but none of the providers can be installed\n", p, v[p], v[p]
		}')
	if [ -n "$_rt_bad" ]; then
		printf 'Problem: %s\n' "$_rt_bad" >&2
		return 3
	fi
	printf '%s' "$_rt_plan" | while read -r _rt_n _rt_v _rt_a; do
		[ -n "$_rt_n" ] || continue
		rs_apply "$_rt_n" "$_rt_v" "$_rt_a"
		printf '%s %s %s\n' "$_rt_n" "$_rt_v" "$_rt_a"
	done
}
