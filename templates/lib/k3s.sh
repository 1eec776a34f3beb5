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
