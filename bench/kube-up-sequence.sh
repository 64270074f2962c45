#!/usr/bin/env bash
# kube-up's gcloud sequence for each flow of its HA guide, for the side-by-side
# benchmark (internal/cluster/sidebyside_bench_test.go). Written from the
# v1.9a scripts' behaviour (cluster/gce/util.sh, cluster/gce/gci/master-helper.sh,
# cluster/validate-cluster.sh; see ../shared/reference/kubeup-ha.md §2): each
# function below is named after the kube-up function it mirrors, keeps its
# order, its foreground/background split and its waits, and makes the same
# Compute calls with the same gcloud commands.
#
# What it leaves out, because it cannot run against the emulator or is not
# Compute: gsutil uploads, local certificate and token generation, the
# `gcloud compute ssh` calls (etcd's v2 members API on plain HTTP, which the
# rehearsal's TLS-only etcd does not serve, and metadata reads: the replica's
# kube-env is the local one), and validate-cluster's kubectl loop (its
# gcloud calls stay). kube-up's LB wait loop has no sleep; this one sleeps
# 0.1 s so that curl does not starve the emulator of CPU.
#
# usage: kube-up-sequence.sh up|down, with kube-up's variables: PROJECT,
#        KUBE_GCE_ZONE, NUM_NODES (3), KUBE_USE_EXISTING_MASTER,
#        KUBE_REPLICATE_EXISTING_MASTER, KUBE_DELETE_NODES, INSTANCE_PREFIX
#        (kubernetes); APISERVER_PORT (443); gcloud pointed at the endpoint.
#        GCLOUD_LOG, when set, gets one line per gcloud invocation.
set -o errexit -o nounset -o pipefail

: "${PROJECT:?}" "${KUBE_GCE_ZONE:?}"
ZONE=${KUBE_GCE_ZONE}
REGION=${ZONE%-*}
NUM_NODES=${NUM_NODES:-3}
INSTANCE_PREFIX=${INSTANCE_PREFIX:-kubernetes}
CLUSTER_NAME=${INSTANCE_PREFIX}
APISERVER_PORT=${APISERVER_PORT:-443}
NETWORK=${NETWORK:-default}
MASTER_NAME=${INSTANCE_PREFIX}-master
MASTER_TAG=${INSTANCE_PREFIX}-master
NODE_TAG=${INSTANCE_PREFIX}-minion
NODE_INSTANCE_PREFIX=${INSTANCE_PREFIX}-minion
CLUSTER_IP_RANGE=${CLUSTER_IP_RANGE:-10.244.0.0/14}
MASTER_SIZE=${MASTER_SIZE:-n1-standard-1}
NODE_SIZE=${NODE_SIZE:-n1-standard-2}
MASTER_DISK_SIZE=${MASTER_DISK_SIZE:-20GB}
IMAGE_FLAGS=(--image-project=cos-cloud --image-family=cos-stable)
REPLICA_REGEXP="^${MASTER_NAME}(-...)?"

WORK=$(mktemp -d)
trap 'rm -rf "${WORK}"' EXIT

g() {
  if [[ -n ${GCLOUD_LOG:-} ]]; then printf '%s\n' "$*" >>"${GCLOUD_LOG}"; fi
  gcloud --quiet --project "${PROJECT}" "$@"
}

# The master's kube-env, as create-master-instance writes it (only what the
# emulator's guest reads: a master answers HTTPS on APISERVER_PORT).
write-master-env() {
  printf 'KUBERNETES_MASTER: "true"\nAPISERVER_PORT: "%s"\n' "${APISERVER_PORT}" >"${WORK}/master-kube-env.yaml"
  printf 'KUBERNETES_MASTER: "false"\n' >"${WORK}/node-kube-env.yaml"
  printf '%s' "${CLUSTER_NAME}" >"${WORK}/cluster-name.txt"
}

# kube::util::wait-for-jobs: join every background job; one that failed
# only prints, as in v1.9a.
wait-for-jobs() {
  local fail=0 job
  for job in $(jobs -p); do
    wait "${job}" || fail=$((fail + 1))
  done
  if ((fail != 0)); then echo "${fail} commands failed." >&2; fi
}

# --- kube-up -------------------------------------------------------------

create-network() {
  g compute networks describe "${NETWORK}" >/dev/null 2>&1 ||
    g compute networks create "${NETWORK}" --subnet-mode=auto >/dev/null
  g compute networks list --filter="name=${NETWORK}" --format='value(x_gcloud_subnet_mode)' >/dev/null
  if ! g compute firewall-rules describe "${CLUSTER_NAME}-default-internal-master" >/dev/null 2>&1; then
    g compute firewall-rules create "${CLUSTER_NAME}-default-internal-master" --network "${NETWORK}" \
      --source-ranges 10.0.0.0/8 --allow tcp:1-2379,tcp:2382-65535,udp:1-65535,icmp --target-tags "${MASTER_TAG}" >/dev/null &
  fi
  if ! g compute firewall-rules describe "${CLUSTER_NAME}-default-internal-node" >/dev/null 2>&1; then
    g compute firewall-rules create "${CLUSTER_NAME}-default-internal-node" --network "${NETWORK}" \
      --source-ranges 10.0.0.0/8 --allow tcp:1-65535,udp:1-65535,icmp --target-tags "${NODE_TAG}" >/dev/null &
  fi
  if ! g compute firewall-rules describe "${NETWORK}-default-ssh" >/dev/null 2>&1; then
    g compute firewall-rules create "${NETWORK}-default-ssh" --network "${NETWORK}" \
      --source-ranges 0.0.0.0/0 --allow tcp:22 >/dev/null &
  fi
}

detect-subnetworks() {
  g compute networks subnets list --network="${NETWORK}" --regions="${REGION}" --limit=1 >/dev/null
}

# create-static-ip: create, then poll describe every 5 s until visible.
create-static-ip() {
  g compute addresses create "$1" --region "$2" >/dev/null
  until g compute addresses describe "$1" --region "$2" >/dev/null 2>&1; do sleep 5; done
}

create-master-instance() {
  local name=$1 address=${2:-}
  local addr=() # a replica gets an ephemeral external IP
  if [[ -n ${address} ]]; then addr=(--address "${address}"); fi
  g compute instances create "${name}" --zone "${ZONE}" --machine-type "${MASTER_SIZE}" "${IMAGE_FLAGS[@]}" \
    --tags "${MASTER_TAG}" --network "${NETWORK}" --scopes storage-ro,compute-rw,monitoring,logging-write \
    --can-ip-forward "${addr[@]}" \
    --disk "name=${name}-pd,device-name=master-pd,mode=rw,boot=no,auto-delete=no" \
    --metadata-from-file "kube-env=${WORK}/master-kube-env.yaml,cluster-name=${WORK}/cluster-name.txt" >/dev/null
}

create-master() {
  g compute firewall-rules create "${MASTER_NAME}-https" --network "${NETWORK}" --target-tags "${MASTER_TAG}" \
    --allow "tcp:${APISERVER_PORT}" >/dev/null &
  g compute disks create "${MASTER_NAME}-pd" --zone "${ZONE}" --type pd-ssd --size "${MASTER_DISK_SIZE}" >/dev/null
  if ! g compute firewall-rules describe "${MASTER_NAME}-etcd" >/dev/null 2>&1; then
    g compute firewall-rules create "${MASTER_NAME}-etcd" --network "${NETWORK}" --source-tags "${MASTER_TAG}" \
      --allow tcp:2380,tcp:2381 --target-tags "${MASTER_TAG}" >/dev/null &
  fi
  create-static-ip "${MASTER_NAME}-ip" "${REGION}"
  MASTER_RESERVED_IP=$(g compute addresses describe "${MASTER_NAME}-ip" --region "${REGION}" --format='value(address)')
  # Background below 50 nodes, as kube-up does.
  create-master-instance "${MASTER_NAME}" "${MASTER_RESERVED_IP}" &
}

create-nodes-firewall() {
  g compute firewall-rules create "${NODE_TAG}-all" --network "${NETWORK}" --source-ranges "${CLUSTER_IP_RANGE}" \
    --target-tags "${NODE_TAG}" --allow tcp,udp,icmp,esp,ah,sctp >/dev/null &
}

create-nodes-template() {
  if g compute instance-templates describe "${NODE_INSTANCE_PREFIX}-template" >/dev/null 2>&1; then
    g compute instance-templates delete "${NODE_INSTANCE_PREFIX}-template" >/dev/null
  fi
  g compute instance-templates create "${NODE_INSTANCE_PREFIX}-template" --machine-type "${NODE_SIZE}" \
    "${IMAGE_FLAGS[@]}" --tags "${NODE_TAG}" --network "${NETWORK}" --can-ip-forward \
    --scopes compute-rw,monitoring,logging-write,storage-ro \
    --metadata-from-file "kube-env=${WORK}/node-kube-env.yaml,cluster-name=${WORK}/cluster-name.txt" >/dev/null
}

create-nodes() {
  g compute instance-groups managed create "${NODE_INSTANCE_PREFIX}-group" --zone "${ZONE}" \
    --base-instance-name "${NODE_INSTANCE_PREFIX}" --size "${NUM_NODES}" \
    --template "${NODE_INSTANCE_PREFIX}-template" >/dev/null || true
  g compute instance-groups managed wait-until --stable "${NODE_INSTANCE_PREFIX}-group" --zone "${ZONE}" >/dev/null || true
}

detect-node-names() {
  local mig
  for mig in $(g compute instance-groups managed list --filter="name ~ '${NODE_INSTANCE_PREFIX}-.+' AND zone:(${ZONE})" --format='value(name)'); do
    g compute instance-groups managed list-instances "${mig}" --zone "${ZONE}" --format='value(instance)' >/dev/null
  done
}

detect-master() {
  KUBE_MASTER_IP=$(g compute addresses describe "${MASTER_NAME}-ip" --region "${REGION}" --format='value(address)')
}

# check-cluster: poll the API every 2 s (kube-up asks /api/v1/pods with the
# cluster's token; the emulator's plain master answers /healthz).
check-cluster() {
  detect-node-names
  detect-master
  until curl -sk --max-time 5 --fail "https://${KUBE_MASTER_IP}:${APISERVER_PORT}/healthz" >/dev/null; do sleep 2; done
}

# validate-cluster's gcloud calls (its kubectl loop is left out).
validate-cluster() {
  g compute zones list --filter="region=${REGION}" --format='value(name)' >/dev/null
  g compute instances list --filter="name ~ '${NODE_INSTANCE_PREFIX}.*' AND zone:(${ZONE})" --format='value(name)' >/dev/null
  g compute instances list --filter="name ~ '${REPLICA_REGEXP}'" --format='value(name)' >/dev/null
}

kube-up-fresh() {
  write-master-env
  create-network
  detect-subnetworks
  create-master
  create-nodes-firewall
  wait-for-jobs
  create-nodes-template
  create-nodes
  check-cluster
  validate-cluster
}

kube-up-existing-master() {
  detect-master
  detect-subnetworks
  create-nodes
  validate-cluster
}

get-all-replica-names() {
  g compute instances list --filter="name ~ '${REPLICA_REGEXP}'" --format='value(name)' | paste -sd, -
}

# attach-external-ip <instance> <zone> [ip]: replace the access config; no
# IP gives an ephemeral one.
attach-external-ip() {
  local name=$1 zone=$2 ip=${3:-} ac
  ac=$(g compute instances describe "${name}" --zone "${zone}" --format='value(networkInterfaces[0].accessConfigs[0].name)')
  g compute instances delete-access-config "${name}" --zone "${zone}" --access-config-name "${ac}" >/dev/null
  if [[ -z ${ip} ]]; then
    g compute instances add-access-config "${name}" --zone "${zone}" --access-config-name "${ac}" >/dev/null
  else
    g compute instances add-access-config "${name}" --zone "${zone}" --access-config-name "${ac}" --address "${ip}" >/dev/null
  fi
}

create-loadbalancer() {
  detect-master
  if g compute forwarding-rules describe "${MASTER_NAME}" --region "${REGION}" >/dev/null 2>&1; then
    echo "Load balancer already exists" >&2
    return
  fi
  local existing zone
  existing=$(get-all-replica-names)
  zone=$(g compute instances list "${existing}" --format='value(zone)')
  attach-external-ip "${existing}" "${zone}"
  g compute target-pools create "${MASTER_NAME}" --region "${REGION}" >/dev/null
  g compute target-pools add-instances "${MASTER_NAME}" --instances "${existing}" --instances-zone "${zone}" --region "${REGION}" >/dev/null
  g compute forwarding-rules create "${MASTER_NAME}" --region "${REGION}" --target-pool "${MASTER_NAME}" \
    --address "${KUBE_MASTER_IP}" --ports "${APISERVER_PORT}" >/dev/null
  until curl -sk -m1 "https://${KUBE_MASTER_IP}:${APISERVER_PORT}" >/dev/null; do sleep 0.1; done
}

set-replica-name() {
  local suffix
  g compute instances list --filter="name ~ '${REPLICA_REGEXP}'" --format='value(name)' >/dev/null
  suffix=$(tr -dc 'a-z0-9' </dev/urandom | head -c 3 || true)
  REPLICA_NAME=${MASTER_NAME}-${suffix}
}

set-existing-master() {
  g compute instances list --filter="name ~ '${REPLICA_REGEXP}'" --format='value(name,zone)' | head -n1 >/dev/null
}

replicate-master() {
  set-replica-name
  set-existing-master
  # add-replica-to-etcd 2379 2380 and 4002 2381: gcloud compute ssh (left out)
  g compute disks create "${REPLICA_NAME}-pd" --zone "${ZONE}" --type pd-ssd --size "${MASTER_DISK_SIZE}" >/dev/null
  get-all-replica-names >/dev/null
  # replicate-master-instance: six get-metadata ssh calls (left out), then
  create-master-instance "${REPLICA_NAME}"
  g compute target-pools add-instances "${MASTER_NAME}" --instances "${REPLICA_NAME}" --instances-zone "${ZONE}" --region "${REGION}" >/dev/null
}

kube-up-replicate() {
  write-master-env
  create-loadbalancer
  replicate-master
  validate-cluster
}

# --- kube-down -----------------------------------------------------------

get-template() {
  g compute instance-templates list --filter="name ~ '${NODE_INSTANCE_PREFIX}-template(-.*)?'" --format='value(name)'
}

delete-nodes() {
  local mig tpl
  detect-node-names
  local templates
  templates=$(get-template)
  for mig in $(g compute instance-groups managed list --filter="name ~ '${NODE_INSTANCE_PREFIX}-.+' AND zone:(${ZONE})" --format='value(name)'); do
    if g compute instance-groups managed describe "${mig}" --zone "${ZONE}" >/dev/null 2>&1; then
      g compute instance-groups managed delete "${mig}" --zone "${ZONE}" >/dev/null &
    fi
  done
  wait-for-jobs
  for tpl in ${templates}; do
    if g compute instance-templates describe "${tpl}" >/dev/null 2>&1; then
      # Fails while another zone's group uses it; kube-down ignores that.
      g compute instance-templates delete "${tpl}" >/dev/null 2>&1 || true
    fi
  done
}

delete-firewall-rules() {
  local fw
  for fw in "$@"; do
    if g compute firewall-rules describe "${fw}" >/dev/null 2>&1; then
      g compute firewall-rules delete "${fw}" >/dev/null &
    fi
  done
  wait-for-jobs
}

# The replica section of kube-down, then what a last master takes with it.
remove-replica() {
  local replica remaining
  replica=${KUBE_REPLICA_NAME:-$(g compute instances list --filter="name ~ '${REPLICA_REGEXP}' AND zone:(${ZONE})" --format='value(name)' | head -n1)}
  set-existing-master
  # remove-replica-from-etcd 2379 and 4002: gcloud compute ssh (left out)
  if [[ -n ${replica} ]] && g compute instances describe "${replica}" --zone "${ZONE}" >/dev/null 2>&1; then
    if g compute target-pools describe "${MASTER_NAME}" --region "${REGION}" >/dev/null 2>&1; then
      g compute target-pools remove-instances "${MASTER_NAME}" --instances "${replica}" --instances-zone "${ZONE}" --region "${REGION}" >/dev/null
    fi
    g compute instances delete "${replica}" --zone "${ZONE}" --delete-disks all >/dev/null
  fi
  if g compute disks describe "${replica:-${MASTER_NAME}}-pd" --zone "${ZONE}" >/dev/null 2>&1; then
    g compute disks delete "${replica:-${MASTER_NAME}}-pd" --zone "${ZONE}" >/dev/null
  fi
  remaining=$(g compute instances list --filter="name ~ '${REPLICA_REGEXP}'" --format='value(name)' | wc -l)
  if ((remaining == 1)) && g compute forwarding-rules describe "${MASTER_NAME}" --region "${REGION}" >/dev/null 2>&1; then
    detect-master
    local last zone
    last=$(get-all-replica-names)
    zone=$(g compute instances list "${last}" --format='value(zone)')
    g compute forwarding-rules delete "${MASTER_NAME}" --region "${REGION}" >/dev/null
    attach-external-ip "${last}" "${zone}" "${KUBE_MASTER_IP}"
    g compute target-pools delete "${MASTER_NAME}" --region "${REGION}" >/dev/null
  fi
  if ((remaining == 0)); then
    delete-firewall-rules "${MASTER_NAME}-https" "${MASTER_NAME}-etcd" "${NODE_TAG}-all"
    if g compute addresses describe "${MASTER_NAME}-ip" --region "${REGION}" >/dev/null 2>&1; then
      g compute addresses delete "${MASTER_NAME}-ip" --region "${REGION}" >/dev/null
    fi
  fi
  REMAINING_MASTER_COUNT=${remaining}
}

delete-leftover-nodes() {
  local nodes
  nodes=$(g compute instances list --filter="name ~ '${NODE_INSTANCE_PREFIX}-.+' AND zone:(${ZONE})" --format='value(name)')
  if [[ -n ${nodes} ]]; then
    # shellcheck disable=SC2086 # a list of names
    g compute instances delete --zone "${ZONE}" --delete-disks boot ${nodes} >/dev/null
  fi
}

kube-down() {
  local delete_nodes=${KUBE_DELETE_NODES:-true}
  if [[ ${delete_nodes} != false ]]; then
    delete-nodes
  else
    detect-node-names
  fi
  remove-replica
  if [[ ${delete_nodes} != false ]]; then
    delete-leftover-nodes
  fi
  if ((REMAINING_MASTER_COUNT == 0)); then
    g compute routes list --filter="name ~ '${INSTANCE_PREFIX:0:26}-.{8}-.{4}-.{4}-.{4}-.{12}'" --format='value(name)' >/dev/null
    g compute disks describe "${INSTANCE_PREFIX}-influxdb-pd" --zone "${ZONE}" >/dev/null 2>&1 || true
    delete-firewall-rules "${CLUSTER_NAME}-default-internal-master" "${CLUSTER_NAME}-default-internal-node" \
      "${NETWORK}-default-ssh" "${NETWORK}-default-internal"
  else
    validate-cluster
  fi
}

# kube-up.sh and kube-down.sh: the flow follows kube-up's variables.
case ${1:-} in
up)
  if [[ ${KUBE_REPLICATE_EXISTING_MASTER:-} == true ]]; then
    kube-up-replicate
  elif [[ ${KUBE_USE_EXISTING_MASTER:-} == true ]]; then
    kube-up-existing-master
  else
    kube-up-fresh
  fi
  ;;
down) kube-down ;;
*)
  echo "usage: $0 up|down (kube-up's variables choose the flow)" >&2
  exit 2
  ;;
esac
