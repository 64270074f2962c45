#!/bin/bash
# hakube-bootstrap: the startup-script of master kubernetes-master-x7k.
# Rendered by hakube (internal/startup) from this VM's kube-env, which it
# checks at boot; GCE's guest agent runs it as root at every boot. Each step
# is idempotent: a second run changes nothing that is already right. Steps
# are logged to the serial console as "hakube-bootstrap: <step>: ..." and
# reported as guest attribute hakube/bootstrap. No secret is ever logged:
# keys and the bootstrap token come from metadata into files, never into
# a command line.
set -Eeuo pipefail

readonly GUEST_ATTR=hakube/bootstrap
readonly BOOTSTRAP_OK=ok BOOTSTRAP_RUNNING='running ' BOOTSTRAP_FAILED='failed at '
readonly TOKEN_KEY=KUBELET_BOOTSTRAP_TOKEN
readonly CLUSTER_IP_RANGE=10.64.0.0/14

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

read_metadata() {
	local text
	text=$(metadata instance/attributes/kube-env) || fail "cannot read metadata kube-env"
	declare -gA KUBE_ENV=() RENDERED_ENV=()
	parse_env KUBE_ENV kube-env <<<"$text"
	# What this script was rendered from: kube-env but for the token.
	parse_env RENDERED_ENV "the rendered kube-env" <<'HAKUBE_EOF'
KUBERNETES_MASTER: 'true'
INSTANCE_PREFIX: 'kubernetes'
CLUSTER_NAME: 'kubernetes'
MASTER_NAME: 'kubernetes-master'
KUBERNETES_MASTER_NAME: '34.76.10.20'
APISERVER_PORT: '443'
KUBE_VERSION: 'v1.35.4'
ETCD_VERSION: 'v3.6.16'
CA_CERT: 'LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJoYWt1YmVUZXN0Q0EKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo='
MULTIZONE: 'true'
REGION: 'europe-west1'
MASTER_ADVERTISE_ADDRESS: '34.76.10.20'
HEALTHCHECK_PORT: '3990'
ETCD_QUORUM_READ: 'true'
NUM_NODES: '3'
SERVICE_CLUSTER_IP_RANGE: '10.0.0.0/16'
CLUSTER_IP_RANGE: '10.64.0.0/14'
ZONE: 'europe-west1-c'
HOSTNAME: 'kubernetes-master-x7k'
INITIAL_ETCD_CLUSTER: 'kubernetes-master,kubernetes-master-x7k'
ETCD_INITIAL_CLUSTER: 'kubernetes-master=https://10.132.0.2:2380,kubernetes-master-x7k=https://10.132.0.5:2380'
INITIAL_ETCD_CLUSTER_STATE: 'existing'
HAKUBE_EOF
	same_env
	text=$(metadata instance/attributes/kube-master-certs) || fail "cannot read metadata kube-master-certs"
	declare -gA CERTS=()
	parse_env CERTS kube-master-certs <<<"$text"
	log "kube-env is the one this script was rendered with (${#KUBE_ENV[@]} keys)"
}

install_binaries() {
	install_packages containerd containernetworking-plugins
	# shellcheck disable=SC2016 # dpkg-query's format, not the shell's
	log "containerd $(dpkg-query -W -f='${Version}' containerd) from Debian"
	local b
	for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
		install_kube "$b" v1.35.4 https://dl.k8s.io/release/v1.35.4/bin/linux/amd64
	done
	install_etcd v3.6.16 https://github.com/etcd-io/etcd/releases/download/v3.6.16
}

configure_containerd() {
	local since=$CHANGES
	put_file 0644 "$ROOT"/etc/containerd/config.toml <<'HAKUBE_EOF'
# Written by hakube's startup-script (internal/startup): containerd for the
# kubelet, with the systemd cgroup driver the kubelet is configured with, and
# the CNI plugins where Debian's containernetworking-plugins puts them.
version = 2

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10.1"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      SystemdCgroup = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/etc/cni/net.d"

[plugins."io.containerd.internal.v1.opt"]
  path = "/var/lib/containerd/opt"
HAKUBE_EOF
	activate "$since" containerd.service
}

write_certs() {
	local key path dir pem=$RUN_DIR/pem
	for dir in "$ROOT"/etc/kubernetes/pki "$ROOT"/etc/kubernetes/pki/etcd ; do
		mkdir -p "$dir"
		chmod 0700 "$dir"
	done
	while read -r key path; do
		[[ -n ${CERTS[$key]:-} ]] || fail "kube-master-certs lacks $key"
		base64 -d <<<"${CERTS[$key]}" >"$pem" 2>/dev/null || fail "kube-master-certs $key is not base64"
		put_file 0600 "$ROOT$path" <"$pem"
	done <<'HAKUBE_EOF'
CA_CERT /etc/kubernetes/pki/ca.crt
CA_KEY /etc/kubernetes/pki/ca.key
ETCD_CA_CERT /etc/kubernetes/pki/etcd/ca.crt
ETCD_CA_KEY /etc/kubernetes/pki/etcd/ca.key
FRONT_PROXY_CA_CERT /etc/kubernetes/pki/front-proxy-ca.crt
FRONT_PROXY_CA_KEY /etc/kubernetes/pki/front-proxy-ca.key
SERVICE_ACCOUNT_KEY /etc/kubernetes/pki/sa.key
SERVICE_ACCOUNT_PUB /etc/kubernetes/pki/sa.pub
MASTER_CERT /etc/kubernetes/pki/apiserver.crt
MASTER_KEY /etc/kubernetes/pki/apiserver.key
ETCD_PEER_CERT /etc/kubernetes/pki/etcd/peer.crt
ETCD_PEER_KEY /etc/kubernetes/pki/etcd/peer.key
ETCD_SERVER_CERT /etc/kubernetes/pki/etcd/server.crt
ETCD_SERVER_KEY /etc/kubernetes/pki/etcd/server.key
APISERVER_ETCD_CLIENT_CERT /etc/kubernetes/pki/apiserver-etcd-client.crt
APISERVER_ETCD_CLIENT_KEY /etc/kubernetes/pki/apiserver-etcd-client.key
APISERVER_KUBELET_CLIENT_CERT /etc/kubernetes/pki/apiserver-kubelet-client.crt
APISERVER_KUBELET_CLIENT_KEY /etc/kubernetes/pki/apiserver-kubelet-client.key
FRONT_PROXY_CLIENT_CERT /etc/kubernetes/pki/front-proxy-client.crt
FRONT_PROXY_CLIENT_KEY /etc/kubernetes/pki/front-proxy-client.key
CONTROLLER_MANAGER_CERT /etc/kubernetes/pki/controller-manager.crt
CONTROLLER_MANAGER_KEY /etc/kubernetes/pki/controller-manager.key
SCHEDULER_CERT /etc/kubernetes/pki/scheduler.crt
SCHEDULER_KEY /etc/kubernetes/pki/scheduler.key
HAKUBE_EOF
	rm -f "$pem"
	[[ ${KUBE_ENV[CA_CERT]:-} == "${CERTS[CA_CERT]}" ]] || fail "kube-env CA_CERT is not kube-master-certs' CA_CERT"
	# The controller-manager's and scheduler's kubeconfigs: paths only.
	put_file 0600 "$ROOT"/etc/kubernetes/controller-manager.conf <<'HAKUBE_EOF'
apiVersion: v1
clusters:
- cluster:
    certificate-authority: /etc/kubernetes/pki/ca.crt
    server: https://127.0.0.1:443
  name: local
contexts:
- context:
    cluster: local
    user: system:kube-controller-manager
  name: default
current-context: default
kind: Config
users:
- name: system:kube-controller-manager
  user:
    client-certificate: /etc/kubernetes/pki/controller-manager.crt
    client-key: /etc/kubernetes/pki/controller-manager.key
HAKUBE_EOF
	put_file 0600 "$ROOT"/etc/kubernetes/scheduler.conf <<'HAKUBE_EOF'
apiVersion: v1
clusters:
- cluster:
    certificate-authority: /etc/kubernetes/pki/ca.crt
    server: https://127.0.0.1:443
  name: local
contexts:
- context:
    cluster: local
    user: system:kube-scheduler
  name: default
current-context: default
kind: Config
users:
- name: system:kube-scheduler
  user:
    client-certificate: /etc/kubernetes/pki/scheduler.crt
    client-key: /etc/kubernetes/pki/scheduler.key
HAKUBE_EOF
}

control_plane() {
	local since=$1
	put_file 0644 "$ROOT"/etc/systemd/system/etcd.service <<'HAKUBE_EOF'
# Written by hakube's startup-script (internal/startup) at every boot: edits here do not last.
[Unit]
Description=hakube: etcd
Documentation=https://github.com/hakube/hakube/blob/main/docs/vm-contract.md
After=network-online.target
Wants=network-online.target
RequiresMountsFor=/mnt/disks/master-pd

[Service]
ExecStart=/usr/local/bin/etcd \
  --name=kubernetes-master-x7k \
  --data-dir=/mnt/disks/master-pd/etcd \
  --listen-peer-urls=https://10.132.0.5:2380 \
  --initial-advertise-peer-urls=https://10.132.0.5:2380 \
  --listen-client-urls=https://127.0.0.1:2379 \
  --advertise-client-urls=https://127.0.0.1:2379 \
  --initial-cluster=kubernetes-master=https://10.132.0.2:2380,kubernetes-master-x7k=https://10.132.0.5:2380 \
  --initial-cluster-state=existing \
  --initial-cluster-token=kubernetes \
  --cert-file=/etc/kubernetes/pki/etcd/server.crt \
  --key-file=/etc/kubernetes/pki/etcd/server.key \
  --trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt \
  --client-cert-auth=true \
  --peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt \
  --peer-key-file=/etc/kubernetes/pki/etcd/peer.key \
  --peer-trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt \
  --peer-client-cert-auth=true
Restart=always
RestartSec=5
LimitNOFILE=1048576

[Install]
WantedBy=multi-user.target
HAKUBE_EOF
	put_file 0644 "$ROOT"/etc/systemd/system/kube-apiserver.service <<'HAKUBE_EOF'
# Written by hakube's startup-script (internal/startup) at every boot: edits here do not last.
[Unit]
Description=hakube: kube-apiserver
Documentation=https://github.com/hakube/hakube/blob/main/docs/vm-contract.md
After=etcd.service

[Service]
ExecStart=/usr/local/bin/kube-apiserver \
  --advertise-address=10.132.0.5 \
  --bind-address=0.0.0.0 \
  --secure-port=443 \
  --allow-privileged=true \
  --authorization-mode=Node,RBAC \
  --enable-admission-plugins=NodeRestriction \
  --enable-bootstrap-token-auth=true \
  --client-ca-file=/etc/kubernetes/pki/ca.crt \
  --tls-cert-file=/etc/kubernetes/pki/apiserver.crt \
  --tls-private-key-file=/etc/kubernetes/pki/apiserver.key \
  --etcd-servers=https://127.0.0.1:2379 \
  --etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt \
  --etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt \
  --etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key \
  --kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt \
  --kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key \
  --kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname \
  --proxy-client-cert-file=/etc/kubernetes/pki/front-proxy-client.crt \
  --proxy-client-key-file=/etc/kubernetes/pki/front-proxy-client.key \
  --requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt \
  --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User \
  --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file=/etc/kubernetes/pki/sa.pub \
  --service-account-signing-key-file=/etc/kubernetes/pki/sa.key \
  --service-cluster-ip-range=10.0.0.0/16 \
  --endpoint-reconciler-type=lease
Restart=always
RestartSec=5
LimitNOFILE=1048576

[Install]
WantedBy=multi-user.target
HAKUBE_EOF
	put_file 0644 "$ROOT"/etc/systemd/system/kube-controller-manager.service <<'HAKUBE_EOF'
# Written by hakube's startup-script (internal/startup) at every boot: edits here do not last.
[Unit]
Description=hakube: kube-controller-manager
Documentation=https://github.com/hakube/hakube/blob/main/docs/vm-contract.md
After=kube-apiserver.service

[Service]
ExecStart=/usr/local/bin/kube-controller-manager \
  --kubeconfig=/etc/kubernetes/controller-manager.conf \
  --authentication-kubeconfig=/etc/kubernetes/controller-manager.conf \
  --authorization-kubeconfig=/etc/kubernetes/controller-manager.conf \
  --bind-address=127.0.0.1 \
  --secure-port=10257 \
  --leader-elect=true \
  --use-service-account-credentials=true \
  --controllers=*,bootstrapsigner,tokencleaner \
  --client-ca-file=/etc/kubernetes/pki/ca.crt \
  --requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt \
  --root-ca-file=/etc/kubernetes/pki/ca.crt \
  --service-account-private-key-file=/etc/kubernetes/pki/sa.key \
  --cluster-signing-cert-file=/etc/kubernetes/pki/ca.crt \
  --cluster-signing-key-file=/etc/kubernetes/pki/ca.key \
  --cluster-name=kubernetes \
  --allocate-node-cidrs=false \
  --cluster-cidr=10.64.0.0/14 \
  --service-cluster-ip-range=10.0.0.0/16
Restart=always
RestartSec=5
LimitNOFILE=1048576

[Install]
WantedBy=multi-user.target
HAKUBE_EOF
	put_file 0644 "$ROOT"/etc/systemd/system/kube-scheduler.service <<'HAKUBE_EOF'
# Written by hakube's startup-script (internal/startup) at every boot: edits here do not last.
[Unit]
Description=hakube: kube-scheduler
Documentation=https://github.com/hakube/hakube/blob/main/docs/vm-contract.md
After=kube-apiserver.service

[Service]
ExecStart=/usr/local/bin/kube-scheduler \
  --kubeconfig=/etc/kubernetes/scheduler.conf \
  --authentication-kubeconfig=/etc/kubernetes/scheduler.conf \
  --authorization-kubeconfig=/etc/kubernetes/scheduler.conf \
  --bind-address=127.0.0.1 \
  --secure-port=10259 \
  --leader-elect=true
Restart=always
RestartSec=5
LimitNOFILE=1048576

[Install]
WantedBy=multi-user.target
HAKUBE_EOF
	activate "$since" etcd.service kube-apiserver.service kube-controller-manager.service kube-scheduler.service
}

health_agent() {
	local since=$1
	put_file 0644 "$ROOT"/usr/local/lib/hakube/health-agent.py <<'HAKUBE_EOF'
#!/usr/bin/python3
"""hakube's health agent on a master: what the load balancer's legacy HTTP
health check probes (plain HTTP, GET /healthz every second).

It answers 200 "ok" when this master's own apiserver says it is ready
(GET /readyz over TLS, verified with the cluster CA, answers 200), else 503
with what /readyz said, so a master whose etcd lost quorum leaves the
target pool. Standard library only: Debian's python3 is on the image.
"""

import argparse
import http.server
import ssl
import sys
import urllib.error
import urllib.request


def probe(url, context, timeout):
    """Returns (ready, text) for one GET of the apiserver's /readyz."""
    try:
        with urllib.request.urlopen(url, context=context, timeout=timeout) as resp:
            body = resp.read(4096).decode("utf-8", "replace")
            return resp.status == 200, body
    except urllib.error.HTTPError as e:  # the apiserver answered, not ready
        return False, e.read(4096).decode("utf-8", "replace") or str(e)
    except (OSError, ValueError) as e:  # refused, timed out, TLS failed
        return False, "apiserver %s: %s\n" % (url, e)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", default="0.0.0.0")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--readyz", required=True, help="the apiserver's /readyz URL")
    p.add_argument("--ca", required=True, help="the cluster CA's certificate")
    # The health check times out after 1 s: answer before it does.
    p.add_argument("--timeout", type=float, default=0.8)
    a = p.parse_args()
    context = ssl.create_default_context(cafile=a.ca)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.split("?", 1)[0] != "/healthz":
                self.answer(404, "not found: only /healthz is served\n")
                return
            ready, text = probe(a.readyz, context, a.timeout)
            if ready:
                self.answer(200, "ok")
            else:
                self.answer(503, text)

        def answer(self, code, text):
            body = text.encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass  # a probe a second would flood the journal

    server = http.server.ThreadingHTTPServer((a.listen, a.port), Handler)
    host, port = server.server_address[:2]
    print("hakube health agent on %s:%d, ready when %s is" % (host, port, a.readyz), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
HAKUBE_EOF
	put_file 0644 "$ROOT"/etc/systemd/system/hakube-health-agent.service <<'HAKUBE_EOF'
# Written by hakube's startup-script (internal/startup) at every boot: edits here do not last.
[Unit]
Description=hakube: the load balancer's health check of this master
Documentation=https://github.com/hakube/hakube/blob/main/docs/vm-contract.md
After=kube-apiserver.service

[Service]
ExecStart=/usr/bin/python3 \
  /usr/local/lib/hakube/health-agent.py \
  --listen=0.0.0.0 \
  --port=3990 \
  --readyz=https://127.0.0.1:443/readyz \
  --ca=/etc/kubernetes/pki/ca.crt
Restart=always
RestartSec=5
LimitNOFILE=1048576

[Install]
WantedBy=multi-user.target
HAKUBE_EOF
	activate "$since" hakube-health-agent.service
}

pod_network() {
	local range rule p cfg=$ROOT/etc/default/instance_configs.cfg since=$CHANGES
	range=$(metadata instance/network-interfaces/0/ip-aliases/0) ||
		fail "no alias IP range (metadata instance/network-interfaces/0/ip-aliases/0): every VM's first NIC needs a /24 of CLUSTER_IP_RANGE for its pods"
	is_cidr "$range" || fail "alias IP range '$range' is not an IPv4 CIDR"
	cidr_within "$range" "$CLUSTER_IP_RANGE" || fail "alias IP range $range is not inside CLUSTER_IP_RANGE $CLUSTER_IP_RANGE"
	log "pods get $range, this VM's alias IP range"
	for p in bridge host-local portmap loopback; do
		[[ -x $ROOT/usr/lib/cni/$p ]] || fail "no CNI plugin /usr/lib/cni/$p (package containernetworking-plugins)"
	done
	put_file 0644 "$ROOT/etc/modules-load.d/hakube.conf" <<'HAKUBE_EOF'
br_netfilter
overlay
HAKUBE_EOF
	modprobe -a br_netfilter overlay
	put_file 0644 "$ROOT/etc/sysctl.d/99-hakube.conf" <<'HAKUBE_EOF'
# hakube: this VM routes its pods' traffic, and bridged pod traffic passes
# through iptables (kube-proxy). 99- so it wins over the image's settings.
net.ipv4.ip_forward = 1
net.bridge.bridge-nf-call-iptables = 1
HAKUBE_EOF
	sysctl -q -p "$ROOT/etc/sysctl.d/99-hakube.conf"
	# The pods' bridge owns the alias range; containerd brings up each
	# pod's loopback itself, with the loopback plugin.
	put_file 0644 "$ROOT/etc/cni/net.d/10-hakube.conflist" <<HAKUBE_EOF
{
  "cniVersion": "1.0.0",
  "name": "hakube",
  "plugins": [
    {
      "bridge": "cbr0",
      "hairpinMode": true,
      "ipMasq": false,
      "ipam": {
        "ranges": [
          [
            {
              "subnet": "$range"
            }
          ]
        ],
        "routes": [
          {
            "dst": "0.0.0.0/0"
          }
        ],
        "type": "host-local"
      },
      "isGateway": true,
      "type": "bridge"
    },
    {
      "capabilities": {
        "portMappings": true
      },
      "type": "portmap"
    }
  ]
}
HAKUBE_EOF
	# Pod traffic leaving the pods' range leaves as this VM: GCE's NAT
	# knows only its primary address.
	rule=(POSTROUTING -s "$range" ! -d "$CLUSTER_IP_RANGE" -m comment --comment "hakube: pod traffic leaving the pod range" -j MASQUERADE)
	if ! iptables -w -t nat -C "${rule[@]}" 2>/dev/null; then
		iptables -w -t nat -A "${rule[@]}"
		log "masquerading traffic from $range that leaves $CLUSTER_IP_RANGE"
	fi
	# The guest agent routes alias ranges to the VM itself (a local route),
	# which would swallow the pods' traffic: it must leave them to the bridge.
	# It keeps routing the forwarding rule's IP (target_instance_ips).
	if ! grep -qsF '# hakube: pods own this VM'\''s alias IP range (CNI bridge), not a local route' "$cfg"; then
		{
			if [[ -f $cfg ]]; then cat "$cfg"; fi
			printf '%s\n' '# hakube: pods own this VM'\''s alias IP range (CNI bridge), not a local route' '[IpForwarding]' 'ip_aliases = false'
		} >"$RUN_DIR/instance_configs.cfg"
		put_file 0644 "$cfg" <"$RUN_DIR/instance_configs.cfg"
		for p in $(guest_agents); do
			systemctl restart "$p"
		done
	fi
	if [[ -n $(ip -4 route show table local exact "$range") ]]; then
		ip -4 route del local "$range" table local
		log "removed the guest agent's local route for $range"
	fi
	if ((CHANGES > since)); then
		log "pod networking configured"
	fi
}

setup_kubelet() {
	local since=$CHANGES token=${KUBE_ENV[$TOKEN_KEY]:-}
	[[ -f $ROOT/sys/fs/cgroup/cgroup.controllers ]] || fail "no cgroup v2 at /sys/fs/cgroup: kubelet v1.35.4 refuses cgroup v1"
	[[ $token =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]] || fail "kube-env $TOKEN_KEY is not a bootstrap token (6 and 16 lowercase letters or digits)"
	printf '%s' "$token" >"$RUN_DIR/token"
	put_file 0600 "$ROOT"/etc/kubernetes/bootstrap-token <"$RUN_DIR/token"
	rm -f "$RUN_DIR/token"
	kubelet_env
	put_file 0644 "$ROOT"/var/lib/kubelet/config.yaml <<'HAKUBE_EOF'
apiVersion: kubelet.config.k8s.io/v1beta1
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
authorization:
  mode: Webhook
cgroupDriver: systemd
clusterDomain: cluster.local
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
kind: KubeletConfiguration
registerWithTaints:
- effect: NoSchedule
  key: node-role.kubernetes.io/control-plane
rotateCertificates: true
HAKUBE_EOF
	put_file 0600 "$ROOT"/etc/kubernetes/bootstrap-kubelet.conf <<'HAKUBE_EOF'
apiVersion: v1
clusters:
- cluster:
    certificate-authority: /etc/kubernetes/pki/ca.crt
    server: https://127.0.0.1:443
  name: cluster
contexts:
- context:
    cluster: cluster
    user: kubelet-bootstrap
  name: default
current-context: default
kind: Config
users:
- name: kubelet-bootstrap
  user:
    tokenFile: /etc/kubernetes/bootstrap-token
HAKUBE_EOF
	put_file 0644 "$ROOT"/etc/systemd/system/kubelet.service <<'HAKUBE_EOF'
# Written by hakube's startup-script (internal/startup) at every boot: edits here do not last.
[Unit]
Description=hakube: the kubelet
Documentation=https://github.com/hakube/hakube/blob/main/docs/vm-contract.md
After=containerd.service
Wants=containerd.service

[Service]
EnvironmentFile=/etc/kubernetes/kubelet.env
ExecStart=/usr/local/bin/kubelet \
  --config=/var/lib/kubelet/config.yaml \
  --kubeconfig=/etc/kubernetes/kubelet.conf \
  --bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf \
  --cert-dir=/var/lib/kubelet/pki \
  --node-labels=${KUBELET_NODE_LABELS} \
  --provider-id=${KUBELET_PROVIDER_ID}
Restart=always
RestartSec=5
LimitNOFILE=1048576

[Install]
WantedBy=multi-user.target
HAKUBE_EOF
	activate "$since" kubelet.service
}

# kubelet_env writes what the kubelet is told about this VM, which the
# script (one for all the VMs of a pool) reads from the metadata server:
# the labels GCE's cloud provider used to set and the provider ID. The
# kubelet's unit passes them as --node-labels and --provider-id.
kubelet_env() {
	local zone type project name
	zone=$(metadata instance/zone) || fail "cannot read metadata instance/zone"
	type=$(metadata instance/machine-type) || fail "cannot read metadata instance/machine-type"
	project=$(metadata project/project-id) || fail "cannot read metadata project/project-id"
	name=$(metadata instance/name) || fail "cannot read metadata instance/name"
	zone=${zone##*/} type=${type##*/}
	[[ $zone =~ ^[a-z]+-[a-z]+[0-9]+-[a-z]$ ]] || fail "metadata instance/zone: $zone is not a zone"
	[[ $type =~ ^[a-z0-9][-a-z0-9]*$ ]] || fail "metadata instance/machine-type: $type is not a machine type"
	[[ $project =~ ^[a-z][-a-z0-9.:]*$ ]] || fail "metadata project/project-id: $project is not a project ID"
	[[ $name =~ ^[a-z]([-a-z0-9]*[a-z0-9])?$ ]] || fail "metadata instance/name: $name is not an instance name"
	printf '%s=%s\n' \
		KUBELET_NODE_LABELS "node.kubernetes.io/instance-type=$type,topology.kubernetes.io/region=${zone%-*},topology.kubernetes.io/zone=$zone" \
		KUBELET_PROVIDER_ID "gce://$project/$zone/$name" >"$RUN_DIR/kubelet.env"
	put_file 0644 "$ROOT"/etc/kubernetes/kubelet.env <"$RUN_DIR/kubelet.env"
}

setup_kube_proxy() {
	local since=$CHANGES
	put_file 0600 "$ROOT"/etc/kubernetes/kube-proxy.conf <<'HAKUBE_EOF'
apiVersion: v1
clusters:
- cluster:
    certificate-authority: /etc/kubernetes/pki/ca.crt
    server: https://127.0.0.1:443
  name: cluster
contexts:
- context:
    cluster: cluster
    user: kube-proxy
  name: default
current-context: default
kind: Config
users:
- name: kube-proxy
  user:
    client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem
    client-key: /var/lib/kubelet/pki/kubelet-client-current.pem
HAKUBE_EOF
	put_file 0644 "$ROOT"/etc/systemd/system/kube-proxy.service <<'HAKUBE_EOF'
# Written by hakube's startup-script (internal/startup) at every boot: edits here do not last.
[Unit]
Description=hakube: kube-proxy
Documentation=https://github.com/hakube/hakube/blob/main/docs/vm-contract.md
After=kubelet.service

[Service]
ExecStart=/usr/local/bin/kube-proxy \
  --kubeconfig=/etc/kubernetes/kube-proxy.conf \
  --proxy-mode=iptables \
  --cluster-cidr=10.64.0.0/14
Restart=always
RestartSec=5
LimitNOFILE=1048576

[Install]
WantedBy=multi-user.target
HAKUBE_EOF
	activate "$since" kube-proxy.service
}

guest_agent() {
	local agents
	agents=$(guest_agents)
	if [[ -n $agents ]]; then
		log "${agents//$'\n'/, } enabled: it routes the forwarding rule's IP to this VM, whose apiserver listens on 0.0.0.0"
	else
		log "warning: google-guest-agent is not enabled: the load balancer's forwarding rule IP will not reach this master's apiserver"
	fi
}

main() {
	init
	step metadata "reading this VM's kube-env and kube-master-certs"
	read_metadata
	step install "Kubernetes v1.35.4, etcd v3.6.16, containerd and the CNI plugins"
	install_binaries
	step containerd "containerd with the systemd cgroup driver"
	configure_containerd
	local since=$CHANGES
	step certs "certificates and keys from kube-master-certs under /etc/kubernetes/pki, the components' kubeconfigs"
	write_certs
	step disk "etcd's data disk (/dev/disk/by-id/google-master-pd) at /mnt/disks/master-pd"
	mount_data_disk /dev/disk/by-id/google-master-pd /mnt/disks/master-pd master-pd
	step control-plane "etcd, kube-apiserver, kube-controller-manager, kube-scheduler"
	control_plane "$since"
	step health-agent "GET /healthz on port 3990: ok when the apiserver is ready"
	health_agent "$since"
	step network "pod networking on this VM's alias IP range"
	pod_network
	step kubelet "the kubelet, TLS-bootstrapping against https://127.0.0.1:443"
	setup_kubelet
	step kube-proxy "kube-proxy in iptables mode"
	setup_kube_proxy
	step guest-agent "the guest agent, which routes the forwarding rule's IP here"
	guest_agent
}

main "$@"
