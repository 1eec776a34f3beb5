# ---- rewind runtime library: install ----------------------------------------------
# Installing the target RKE2 version: the air-gap artifacts check, the online
# and air-gap runs of the upstream install.sh, and moving the newer version's
# image archives and packaged manifests aside.
#
# What install.sh does NOT check (observed): with INSTALL_RKE2_ARTIFACT_PATH
# it ignores INSTALL_RKE2_VERSION, it verifies only the tarball against
# sha256sum-ARCH.txt, and it silently skips an image archive that is present
# but not listed there. Hence check_artifacts below, and the version check
# that the planner puts after the install.

# check_artifacts DIR ARCH: install.sh, rke2.linux-ARCH.tar.gz and
# sha256sum-ARCH.txt are present; every file listed in the sums file that is
# present in DIR matches its hash (line by line: busybox sha256sum has no
# --ignore-missing); an rke2-images*.linux-ARCH* archive that is present but
# not listed is refused, because install.sh would skip it without a word.
check_artifacts() {
	_ca_dir=$1
	_ca_arch=$2
	_ca_sums=$_ca_dir/sha256sum-$_ca_arch.txt
	_ca_tar=rke2.linux-$_ca_arch.tar.gz
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
		rw_sha256 "$_ca_dir/$_ca_name" || rw_fail "could not read $_ca_dir/$_ca_name"
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
	*) rw_fail "$_ca_tar is not listed in $_ca_sums: install.sh would refuse it (are both files of the same release?)" ;;
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
}

# install_online VERSION TYPE METHOD: fetch the upstream install script
# (REWIND_INSTALL_SCRIPT_URL overrides https://get.rke2.io) to a temporary
# file and run it with INSTALL_RKE2_VERSION, INSTALL_RKE2_TYPE and
# INSTALL_RKE2_METHOD. An empty TYPE or METHOD is not passed.
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
	rw_run env "INSTALL_RKE2_VERSION=$1" ${2:+"INSTALL_RKE2_TYPE=$2"} ${3:+"INSTALL_RKE2_METHOD=$3"} sh "$_io_file"
}

# install_airgap ARTIFACTS ARCH TYPE IMAGES_DIR: `sh ARTIFACTS/install.sh`
# with INSTALL_RKE2_ARTIFACT_PATH, INSTALL_RKE2_TYPE and
# INSTALL_RKE2_AGENT_IMAGES_DIR (no network is used). install.sh's own
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
		${4:+"INSTALL_RKE2_AGENT_IMAGES_DIR=$4"} sh "$1/install.sh"
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
		rke2-images*.linux-"$2".tar | rke2-images*.linux-"$2".tar.*) ;;
		rke2-images*.linux-"$2"-*.tar | rke2-images*.linux-"$2"-*.tar.*) ;;
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
	fi
}

# check_images ARTIFACTS ARCH IMAGES_DIR: every image archive of the target
# that ARTIFACTS holds, or that install.sh moved, is in IMAGES_DIR and
# matches its hash: an air-gapped restore pulls nothing.
check_images() {
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
		for _mia_f in "$1"/rke2-images* "$1/.cache.json"; do
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
			rw_ok "no rke2-images* archive in $1: nothing to move aside"
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
