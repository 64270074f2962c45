#!/usr/bin/env bash
# gce-smoke: kube-up's HA guide on real Compute Engine with real VMs (their
# startup scripts install and run etcd and Kubernetes), under a prefix of its
# own, and a teardown that always runs and lists whatever it could not
# delete. It costs money (README: "Smoke test on real GCE") and is not part
# of make test.
#
#   make gce-smoke PROJECT=my-project ZONE=europe-west1-b
#   test/gce-smoke.sh PROJECT ZONE [HAKUBE_BINARY]
#
# Credentials: Application Default Credentials for hakube, gcloud's for the
# checks and the list of leftovers.
set -euo pipefail

usage() {
	echo "usage: $0 PROJECT ZONE [HAKUBE_BINARY]" >&2
	exit 2
}
PROJECT=${1:-}
ZONE=${2:-}
HAKUBE=${3:-bin/hakube}
[[ -n $PROJECT && -n $ZONE ]] || usage
REGION=${ZONE%-*}
# Short and unique: GCE names are at most 63 characters, and hakube appends
# up to 30 (<prefix>-default-internal-master).
PREFIX=hks-$(date -u +%d%H%M)-$(printf '%04x' $((RANDOM % 65536)))
NUM_NODES=2
BOOT_WAIT=20m # a fresh VM installs everything from the network
export PROJECT KUBE_GCE_INSTANCE_PREFIX=$PREFIX
export CLOUDSDK_CORE_PROJECT=$PROJECT

say() { printf '\n== %s\n' "$*"; }
die() {
	printf 'gce-smoke: %s\n' "$*" >&2
	exit 1
}
# hakube [VAR=value...] ARGS runs hakube with kube-up's variables, as CI would.
hakube() {
	local -a vars=()
	while [[ ${1:-} == [A-Z]*=* ]]; do
		vars+=("$1")
		shift
	done
	env "${vars[@]}" "$HAKUBE" "$@"
}

command -v gcloud >/dev/null || die "gcloud is not installed: the checks and the leftover listing use it"
[[ -x $HAKUBE ]] || die "no hakube binary at $HAKUBE (make gce-smoke builds it)"
gcloud auth application-default print-access-token >/dev/null 2>&1 || [[ -n ${GOOGLE_APPLICATION_CREDENTIALS:-} ]] ||
	die "no Application Default Credentials: run gcloud auth application-default login"

mapfile -t OTHER_ZONES < <(gcloud compute zones list --filter="region~/$REGION\$ AND status=UP AND name!=$ZONE" \
	--format='value(name)' --sort-by=name | head -n 2)
((${#OTHER_ZONES[@]} == 2)) || die "region $REGION needs two more zones UP besides $ZONE"
ZONE2=${OTHER_ZONES[0]} ZONE3=${OTHER_ZONES[1]}
STARTED=$(date +%s)

# leftovers lists what the cluster left in the project; it fails if anything.
leftovers() {
	local kind names found=0
	local -a kinds=("instances" "disks" "addresses" "forwarding-rules" "target-pools" "http-health-checks"
		"instance-templates" "instance-groups managed" "firewall-rules")
	for kind in "${kinds[@]}"; do
		# shellcheck disable=SC2086 # "instance-groups managed" is two words
		if ! names=$(gcloud compute $kind list --filter="name~^$PREFIX-" --format='value(name)' 2>&1); then
			printf '   could not list %s: %s\n' "$kind" "$names"
			found=1
		elif [[ -n $names ]]; then
			printf '   left behind (%s): %s\n' "$kind" "${names//$'\n'/ }"
			found=1
		fi
	done
	# The network's shared SSH rule carries the marker of the cluster that made it.
	names=$(gcloud compute firewall-rules list --filter="description~hakube-cluster=$PREFIX" --format='value(name)' 2>&1) || true
	if [[ -n $names ]]; then
		printf '   left behind (firewall-rules): %s\n' "${names//$'\n'/ }"
		found=1
	fi
	return "$found"
}

teardown() {
	local rc=$?
	trap - EXIT
	# Ignored here and so in hakube down: the teardown runs to its end.
	trap '' INT TERM
	say "Tear down $PREFIX (whatever happened: exit $rc so far; Ctrl-C is ignored until it is done)"
	if ! hakube KUBE_GCE_ZONE="$ZONE" down --yes; then
		echo "   hakube down failed; what is left:"
	fi
	if leftovers; then
		echo "   the project holds nothing of $PREFIX"
	else
		echo "   delete the above by hand (gcloud compute ... delete): they cost money"
		rc=1
	fi
	say "gce-smoke $( ((rc == 0)) && echo passed || echo FAILED) in $((($(date +%s) - STARTED) / 60)) min"
	exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

# every_vm_bootstrapped wants guest attribute hakube/bootstrap = ok on each
# of the cluster's VMs (what their startup scripts report).
every_vm_bootstrapped() {
	local name zone value bad=0
	while read -r name zone; do
		value=$(gcloud compute instances get-guest-attributes "$name" --zone "${zone##*/}" \
			--query-path=hakube/bootstrap --format='value(value)' 2>/dev/null || true)
		printf '   %s: %s\n' "$name" "${value:-no hakube/bootstrap attribute}"
		[[ $value == ok ]] || bad=1
	done < <(gcloud compute instances list --filter="labels.hakube-cluster=$PREFIX" --format='value(name,zone)')
	return "$bad"
}

validate() {
	say "Validate: the API, every master, every Node Ready, etcd healthy ($1)"
	hakube KUBE_GCE_ZONE="$ZONE" validate --wait "$BOOT_WAIT"
	every_vm_bootstrapped || die "a VM did not bootstrap (its serial console says why: gcloud compute instances get-serial-port-output)"
}

say "Cluster $PREFIX in $PROJECT: masters in $ZONE, $ZONE2, $ZONE3; $NUM_NODES nodes in $ZONE"
say "Create the first master and its nodes in $ZONE"
hakube MULTIZONE=true ENABLE_ETCD_QUORUM_READ=true NUM_NODES=$NUM_NODES KUBE_GCE_ZONE="$ZONE" up --yes
validate "first master"

say "Add a master replica in $ZONE2 (builds the load balancer, moves the IP)"
hakube KUBE_REPLICATE_EXISTING_MASTER=true KUBE_GCE_ZONE="$ZONE2" up --yes
validate "two masters"

say "Add a master replica in $ZONE3"
hakube KUBE_REPLICATE_EXISTING_MASTER=true KUBE_GCE_ZONE="$ZONE3" up --yes
validate "three masters"
hakube KUBE_GCE_ZONE="$ZONE" status

say "Halt the replica in $ZONE3: the static IP keeps serving"
replica=$(gcloud compute instances list --filter="labels.hakube-cluster=$PREFIX AND labels.hakube-role=master AND zone:$ZONE3" --format='value(name)')
[[ -n $replica ]] || die "no master in $ZONE3"
gcloud compute instances stop "$replica" --zone "$ZONE3" --quiet
for ((i = 0; ; i++)); do
	if hakube KUBE_GCE_ZONE="$ZONE" status -o json | tr -d ' \n' | grep -q '"serving":true'; then break; fi
	((i < 60)) || die "the static IP stopped serving with $replica halted"
	sleep 5
done
echo "   the static IP serves with $replica halted"
gcloud compute instances start "$replica" --zone "$ZONE3" --quiet
validate "the halted replica is back"

say "Remove the replicas in $ZONE3 and $ZONE2 (the IP goes back to the last master)"
hakube KUBE_DELETE_NODES=false KUBE_GCE_ZONE="$ZONE3" down --yes
hakube KUBE_DELETE_NODES=false KUBE_GCE_ZONE="$ZONE2" down --yes
validate "one master again"
# teardown (the EXIT trap) removes the rest and checks nothing is left.
