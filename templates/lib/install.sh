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
