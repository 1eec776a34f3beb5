# Stub tools for the shell library tests (sourced by run.sh). Each stub
# appends its argv to $JOURNAL as `name <arg> <arg>...` 
# and behaves as the STUB_* variables say.
# make_stubs DIR: writes the stubs into DIR.
make_stubs() {
	_d=$1
	mkdir -p "$_d"
	_hdr='#!/bin/sh
{ printf "%s" "${0##*/}"; for a in "$@"; do printf " <%s>" "$a"; done; printf "\n"; } >>"$JOURNAL"
'
	# generic: exit with STUB_RC_<name> (non-alphanumerics as _)
	for _t in rke2-killall.sh pg_restore psql mysql curl wget; do
		printf '%s%s\n' "$_hdr" 'eval "rc=\${STUB_RC_$(printf %s "${0##*/}" | tr -c "A-Za-z0-9\n" _):-0}"
exit "$rc"' >"$_d/$_t"
	done
	printf '%s%s\n' "$_hdr" '
case "${1:-}" in
--version)
	printf "rke2 version %s (0123abcd)\ngo version go1.20.13\n" "${STUB_RKE2_VERSION:-v1.27.10+rke2r1}"
	exit 0 ;;
server)
	printf "level=info msg=\"Starting rke2\"\n"
	if [ -n "${RKE2_TOKEN:-}" ]; then echo "rke2 env: RKE2_TOKEN is set" >>"$JOURNAL"; fi
	if [ -n "${RKE2_FROM_UNIT:-}" ]; then echo "rke2 env: RKE2_FROM_UNIT=$RKE2_FROM_UNIT" >>"$JOURNAL"; fi
	if [ -n "${STUB_RKE2_SLEEP:-}" ]; then sleep "$STUB_RKE2_SLEEP"; fi
	if [ -n "${STUB_RKE2_RESET_MSG-x}" ]; then
		printf "%s\n" "${STUB_RKE2_RESET_MSG:-level=info msg=\"Managed etcd cluster membership has been reset, restart without --cluster-reset flag now. Backup and delete \${datadir}/server/db on each peer etcd server and rejoin the nodes\"}"
	fi
	exit "${STUB_RC_rke2:-0}" ;;
esac
exit 0' >"$_d/rke2"
	# systemctl: is-active prints the next word of STUB_SYSTEMCTL_STATES
	# (the last one repeats); is-active --quiet exits STUB_SYSTEMCTL_QUIET_RC;
	# is-enabled prints STUB_SYSTEMCTL_ENABLED (default enabled).
	printf '%s%s\n' "$_hdr" '
if [ "${1:-}" = is-active ]; then
	if [ "${2:-}" = --quiet ]; then exit "${STUB_SYSTEMCTL_QUIET_RC:-3}"; fi
	n=0; [ -f "$JOURNAL.sc" ] && n=$(cat "$JOURNAL.sc"); n=$((n + 1)); echo "$n" >"$JOURNAL.sc"
	set -- ${STUB_SYSTEMCTL_STATES:-active}
	i=1; s=$1
	for w in "$@"; do s=$w; [ "$i" -ge "$n" ] && break; i=$((i + 1)); done
	echo "$s"
	[ "$s" = active ]; exit
fi
if [ "${1:-}" = is-enabled ]; then
	echo "${STUB_SYSTEMCTL_ENABLED:-enabled}"
	[ "${STUB_SYSTEMCTL_ENABLED:-enabled}" = enabled ]; exit
fi
exit "${STUB_RC_systemctl:-0}"' >"$_d/systemctl"
	# kubectl: canned answers from files
	printf '%s%s\n' "$_hdr" '
for a in "$@"; do
	case $a in
	--raw=/readyz) exit "${STUB_KUBE_API_RC:-0}" ;;
	drain) exit "${STUB_RC_kubectl_drain:-0}" ;;
	uncordon) exit 0 ;;
	secrets) cat "${STUB_KUBE_SECRETS:-/dev/null}"; exit 0 ;;
	nodes) cat "${STUB_KUBE_NODES:-/dev/null}"; exit 0 ;;
	node) printf "%s" "${STUB_KUBE_UNSCHED:-}"; exit 0 ;;
	esac
done
exit 0' >"$_d/kubectl"
	# ip: pretends to have the addresses in STUB_IP_ADDRS
	printf '%s%s\n' "$_hdr" '
i=2
for a in ${STUB_IP_ADDRS:-127.0.0.1}; do
	printf "%s: eth0    inet %s/24 brd 10.0.0.255 scope global eth0\\       valid_lft forever preferred_lft forever\n" "$i" "$a"
	i=$((i + 1))
done' >"$_d/ip"
	chmod 755 "$_d"/*
}
