# shellcheck shell=bash
# hakube-bootstrap's functions, the same in every VM's startup-script
# (internal/startup renders the rest around them). Everything the script
# writes lands under HAKUBE_ROOT (default /), which lets the tests run it in
# a temporary directory with recorders in place of the system's commands.

readonly METADATA=http://metadata.google.internal/computeMetadata/v1
ROOT=${HAKUBE_ROOT:-/}
ROOT=${ROOT%/}
readonly ROOT
readonly STATE_DIR=$ROOT/var/lib/hakube
readonly RUN_DIR=$ROOT/run/hakube-bootstrap
readonly TTY=$ROOT/dev/ttyS0
STEP=start
CHANGES=0 # how many files put_file has (re)written in this run
REPORT_WARNED=

# log() writes to the script's stdout (the journal) and the serial console
# as fd 3, so that it also works inside $(...).
exec 3>&1
log() {
	local line="hakube-bootstrap: $STEP: $*"
	printf '%s\n' "$line" >&3
	if [[ -w $TTY ]]; then
		printf '%s\n' "$line" >>"$TTY" 2>/dev/null || true
	fi
}

# fail ends the script; the EXIT trap reports "failed at <step>: <why>".
# The reason goes through a file because fail may run inside $(...).
fail() {
	printf '%s\n' "$*" >"$RUN_DIR/reason"
	log "FAILED: $*"
	exit 1
}

on_err() {
	local rc=$?
	if [[ ! -s $RUN_DIR/reason ]]; then
		printf 'exit %s from: %s\n' "$rc" "$BASH_COMMAND" >"$RUN_DIR/reason"
	fi
}

on_exit() {
	local rc=$? reason
	trap - ERR
	set +e
	if ((rc == 0)); then
		STEP='done'
		log "this VM is bootstrapped"
		report "$BOOTSTRAP_OK"
	else
		reason=$(head -c 200 "$RUN_DIR/reason" 2>/dev/null | tr '\n\t' '  ')
		reason=${reason% }
		log "failed: ${reason:-exit $rc}"
		report "$BOOTSTRAP_FAILED$STEP: ${reason:-exit $rc}"
	fi
	exit "$rc"
}

# report sets the bootstrap guest attribute. A VM whose guest attributes
# are off (enable-guest-attributes) still bootstraps: it only warns, once.
report() {
	if ! curl -fsS --retry 3 --retry-connrefused --max-time 10 -X PUT \
		-H 'Metadata-Flavor: Google' --data-binary "$1" \
		"$METADATA/instance/guest-attributes/$GUEST_ATTR" >/dev/null 2>&1; then
		if [[ -z $REPORT_WARNED ]]; then
			REPORT_WARNED=1
			log "warning: cannot set guest attribute $GUEST_ATTR (is enable-guest-attributes TRUE?)"
		fi
	fi
}

step() {
	STEP=$1
	shift
	log "$*"
	report "$BOOTSTRAP_RUNNING$STEP"
}

init() {
	umask 077
	export LC_ALL=C
	mkdir -p "$RUN_DIR" "$STATE_DIR"
	rm -f "$RUN_DIR/reason"
	trap on_err ERR
	trap on_exit EXIT
}

# metadata prints a metadata value (fails on 404: the key is absent).
metadata() {
	curl -fsS --retry 10 --retry-connrefused --retry-delay 1 --max-time 30 \
		-H 'Metadata-Flavor: Google' "$METADATA/$1"
}

fetch() { curl -fsSL --retry 5 --retry-delay 2 --retry-connrefused --connect-timeout 10 --max-time 120 "$1"; }

download() {
	curl -fsSL --retry 5 --retry-delay 2 --retry-connrefused --connect-timeout 10 --max-time 900 -o "$2" "$1"
}

# parse_env NAME LABEL reads kube-env text (KEY: 'value' lines) from stdin into
# the associative array NAME exactly as vmcontract.ParseKubeEnv does: blank
# lines and # comments are skipped; the key is what precedes the first
# colon, trimmed; the value is trimmed, then unquoted when it is 'single
# quoted' ('' is a quote) or "double quoted", else taken as it is. It never
# evaluates anything (keys are only ever expanded once: ${a[$k]+set},
# never [[ -v ]]). White space is ASCII's (LC_ALL=C). LABEL names the
# input in errors.
parse_env() {
	local -n into=$1
	local line key value n=0
	while IFS= read -r line || [[ -n $line ]]; do
		n=$((n + 1))
		line=${line%$'\r'}
		value=${line#"${line%%[![:space:]]*}"}
		if [[ -z $value || $value == \#* ]]; then
			continue
		fi
		if [[ $line != *:* ]]; then
			fail "$2 line $n: want KEY: 'value'"
		fi
		key=${line%%:*}
		key=${key#"${key%%[![:space:]]*}"}
		key=${key%"${key##*[![:space:]]}"}
		if [[ -z $key ]]; then
			fail "$2 line $n: want KEY: 'value'"
		fi
		value=${line#*:}
		value=${value#"${value%%[![:space:]]*}"}
		value=${value%"${value##*[![:space:]]}"}
		if ((${#value} >= 2)) && [[ $value == \'*\' ]]; then
			value=${value:1:${#value}-2}
			value=${value//\'\'/\'}
		elif ((${#value} >= 2)) && [[ $value == \"*\" ]]; then
			value=${value:1:${#value}-2}
		fi
		# shellcheck disable=SC2034,SC2004 # a nameref to an associative array
		into[$key]=$value
	done
}

# same_env fails unless the kube-env read at boot is the one this script
# was rendered with (its units and configs come from it), but for the
# bootstrap token, which the script never holds.
same_env() {
	local k
	for k in "${!RENDERED_ENV[@]}"; do
		if [[ -z ${KUBE_ENV[$k]+set} ]]; then
			fail "kube-env lacks $k, which this startup-script was rendered with: render it again from the VM's kube-env"
		fi
		if [[ ${KUBE_ENV[$k]} != "${RENDERED_ENV[$k]}" ]]; then
			fail "kube-env $k differs from the value this startup-script was rendered with: render it again from the VM's kube-env"
		fi
	done
	for k in "${!KUBE_ENV[@]}"; do
		if [[ $k != "$TOKEN_KEY" && -z ${RENDERED_ENV[$k]+set} ]]; then
			fail "kube-env has $k, which this startup-script was not rendered with: render it again from the VM's kube-env"
		fi
	done
}

# put_file MODE PATH writes stdin to PATH with MODE, atomically, unless
# PATH already holds exactly that: a second run rewrites nothing.
# The new content waits in RUN_DIR (tmpfs on a VM), so that an unchanged
# file's directory is not touched either.
put_file() {
	local mode=$1 path=$2 next=$RUN_DIR/next new
	cat >"$next"
	if [[ -f $path ]] && cmp -s "$next" "$path" && [[ $(stat -c %a "$path") == "${mode#0}" ]]; then
		rm -f "$next"
		return 0
	fi
	mkdir -p "${path%/*}"
	new=$(mktemp "$path.hakube.XXXXXX")
	cat "$next" >"$new"
	rm -f "$next"
	chmod "$mode" "$new"
	mv -f "$new" "$path"
	CHANGES=$((CHANGES + 1))
	log "wrote ${path#"$ROOT"} ($mode)"
}

# activate SINCE UNIT... enables and starts units; when a file was
# (re)written since CHANGES was SINCE (theirs, or one they read), it reloads
# systemd and restarts them instead.
activate() {
	local since=$1 unit
	shift
	if ((CHANGES > since)); then
		systemctl daemon-reload
	fi
	for unit in "$@"; do
		systemctl enable --quiet "$unit"
		if ((CHANGES > since)); then
			systemctl restart "$unit"
			log "$unit (re)started"
		else
			systemctl start "$unit"
		fi
	done
}

# guest_agents prints the enabled units of GCE's guest agent: before 2025
# google-guest-agent, on newer images also its plugin manager.
guest_agents() {
	local unit
	for unit in google-guest-agent.service google-guest-agent-manager.service; do
		if systemctl is-enabled --quiet "$unit"; then
			printf '%s\n' "$unit"
		fi
	done
}

sha256() {
	local out
	out=$(sha256sum "$1")
	printf '%s' "${out%% *}"
}

is_sha256() { [[ $1 =~ ^[0-9a-f]{64}$ ]]; }

# installed NAME VERSION: /usr/local/bin/NAME is there with the checksum
# recorded when it was installed from a verified download.
installed() {
	local bin=$ROOT/usr/local/bin/$1 sum=$STATE_DIR/sha256/$1-$2
	[[ -f $bin && -s $sum ]] && [[ $(sha256 "$bin") == "$(<"$sum")" ]]
}

# place NAME VERSION SHA FILE moves a verified FILE to /usr/local/bin/NAME
# and records its checksum.
place() {
	local bin=$ROOT/usr/local/bin/$1
	mkdir -p "${bin%/*}" "$STATE_DIR/sha256"
	chmod 0755 "$4"
	mv -f "$4" "$bin"
	printf '%s\n' "$3" >"$STATE_DIR/sha256/$1-$2"
	log "$1 $2 installed (sha256 $3)"
}

# install_kube NAME VERSION BASE installs a Kubernetes release binary
# (BASE/NAME), checked against the .sha256 published beside it.
install_kube() {
	local name=$1 version=$2 url=$3/$1 want got part
	if installed "$name" "$version"; then
		log "$name $version present, checksum verified"
		return 0
	fi
	want=$(fetch "$url.sha256") || fail "cannot download $url.sha256"
	want=${want%%[[:space:]]*}
	is_sha256 "$want" || fail "$url.sha256 holds no SHA-256"
	part=$ROOT/usr/local/bin/.$name.part
	mkdir -p "${part%/*}"
	download "$url" "$part" || fail "cannot download $url"
	got=$(sha256 "$part")
	if [[ $got != "$want" ]]; then
		rm -f "$part"
		log "$url: sha256 $got, but $url.sha256 says $want"
		fail "$name: checksum mismatch (got ${got:0:12}, want ${want:0:12})"
	fi
	place "$name" "$version" "$want" "$part"
}

# install_etcd VERSION BASE installs etcd and etcdctl from the release's
# tarball, checked against the release's SHA256SUMS (both under BASE).
install_etcd() {
	local version=$1 base=$2 tarball=etcd-$1-linux-amd64 sums want got dir b
	if installed etcd "$version" && installed etcdctl "$version"; then
		log "etcd $version present, checksums verified"
		return 0
	fi
	sums=$(fetch "$base/SHA256SUMS") || fail "cannot download $base/SHA256SUMS"
	want=
	while read -r got b; do
		if [[ $b == "$tarball.tar.gz" ]]; then want=$got; fi
	done <<<"$sums"
	is_sha256 "$want" || fail "$base/SHA256SUMS lists no $tarball.tar.gz"
	dir=$STATE_DIR/download
	rm -rf "$dir"
	mkdir -p "$dir"
	download "$base/$tarball.tar.gz" "$dir/etcd.tar.gz" || fail "cannot download $base/$tarball.tar.gz"
	got=$(sha256 "$dir/etcd.tar.gz")
	if [[ $got != "$want" ]]; then
		rm -rf "$dir"
		log "$tarball.tar.gz: sha256 $got, but SHA256SUMS says $want"
		fail "etcd: checksum mismatch (got ${got:0:12}, want ${want:0:12})"
	fi
	tar -xzf "$dir/etcd.tar.gz" -C "$dir" --no-same-owner "$tarball/etcd" "$tarball/etcdctl"
	for b in etcd etcdctl; do
		place "$b" "$version" "$(sha256 "$dir/$tarball/$b")" "$dir/$tarball/$b"
	done
	rm -rf "$dir"
}

package_installed() {
	local status
	# shellcheck disable=SC2016 # dpkg-query's format, not the shell's
	status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
	[[ $status == "install ok installed" ]]
}

retry() {
	local n=$1 i
	shift
	for ((i = 1; ; i++)); do
		if "$@"; then return 0; fi
		if ((i >= n)); then return 1; fi
		sleep $((i * 5))
	done
}

# install_packages installs Debian packages that are missing; apt checks
# them against the archive's signatures.
install_packages() {
	local missing=() p
	for p in "$@"; do
		package_installed "$p" || missing+=("$p")
	done
	if ((${#missing[@]} == 0)); then
		log "packages present: $*"
		return 0
	fi
	log "installing ${missing[*]} from Debian's archive (apt verifies its signatures)"
	export DEBIAN_FRONTEND=noninteractive
	local apt=(apt-get -q -o DPkg::Lock::Timeout=300)
	retry 3 "${apt[@]}" update || fail "apt-get update failed"
	retry 3 "${apt[@]}" install -y --no-install-recommends "${missing[@]}" || fail "apt-get install ${missing[*]} failed"
}

# Pod networking helpers: dotted quad to integer, and whether a CIDR lies
# inside another.
ip4() {
	local IFS=. a b c d
	read -r a b c d <<<"$1"
	printf '%s' $(((10#$a << 24) | (10#$b << 16) | (10#$c << 8) | 10#$d))
}

is_cidr() {
	[[ $1 =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})/([0-9]{1,2})$ ]] || return 1
	local i
	for i in 1 2 3 4; do
		((10#${BASH_REMATCH[i]} <= 255)) || return 1
	done
	((10#${BASH_REMATCH[5]} <= 32))
}

cidr_within() {
	local inner=${1%/*} ilen=${1#*/} outer=${2%/*} olen=${2#*/} mask
	((ilen >= olen)) || return 1
	mask=$(((0xffffffff << (32 - olen)) & 0xffffffff))
	((($(ip4 "$inner") & mask) == ($(ip4 "$outer") & mask)))
}

# mount_data_disk DEVICE MOUNTPOINT NAME formats the master's data disk
# only when it holds no filesystem and reads as zeros (a new disk), then
# mounts it, by UUID in fstab: kube-up's safe_format_and_mount, never
# formatting a disk it cannot read.
mount_data_disk() {
	local dev=$ROOT$1 mnt=$2 name=$3 rc=0 fstype uuid line field fstab=$ROOT/etc/fstab i
	for ((i = 0; i < 60; i++)); do
		[[ -e $dev ]] && break
		sleep 1
	done
	[[ -e $dev ]] || fail "no data disk at $1 (device name $name)"
	fstype=$(blkid -p -s TYPE -o value "$dev") || rc=$?
	case $rc in
	0)
		[[ $fstype == ext4 ]] || fail "the data disk holds a $fstype filesystem, not ext4: not touching it"
		;;
	2)
		cmp -s -n 1048576 "$dev" "$ROOT/dev/zero" || fail "blkid finds no filesystem on the data disk, but it is not blank: not formatting it"
		log "formatting the blank data disk ext4"
		mkfs.ext4 -q -F -m 0 -E lazy_itable_init=0,lazy_journal_init=0,discard "$dev"
		;;
	*)
		fail "blkid cannot read the data disk (exit $rc)"
		;;
	esac
	uuid=$(blkid -p -s UUID -o value "$dev")
	[[ $uuid =~ ^[0-9a-fA-F-]+$ ]] || fail "the data disk's filesystem has no UUID"
	{
		if [[ -f $fstab ]]; then
			# Keep every line but an older one for this mount point.
			while IFS= read -r line || [[ -n $line ]]; do
				read -r _ field _ <<<"$line"
				if [[ $line == \#* || $field != "$mnt" ]]; then
					printf '%s\n' "$line"
				fi
			done <"$fstab"
		fi
		printf 'UUID=%s %s ext4 defaults,discard,nofail 0 2\n' "$uuid" "$mnt"
	} >"$RUN_DIR/fstab"
	put_file 0644 "$fstab" <"$RUN_DIR/fstab"
	mkdir -p "$ROOT$mnt"
	if mountpoint -q "$ROOT$mnt"; then
		log "data disk mounted at $mnt"
	else
		mount -t ext4 -o defaults,discard "$dev" "$ROOT$mnt"
		log "data disk (UUID $uuid) mounted at $mnt"
	fi
}
