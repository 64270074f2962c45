package kubelet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/hakube/hakube/internal/vmcontract"
)

// What the node's runtime reports (a GCE image with containerd).
const (
	osImage          = "Debian GNU/Linux 12 (bookworm)"
	kernelVersion    = "6.1.0-37-cloud-amd64"
	containerRuntime = "containerd://2.1.4"
)

// registerNode is the Node the kubelet registers: its name is the VM's,
// with the labels a kubelet may set on itself (NodeRestriction refuses
// role labels: hakube sets those), the control-plane taint on a master
// (--register-with-taints), and its first status.
func (k *kubelet) registerNode() *corev1.Node {
	labels := map[string]string{
		corev1.LabelHostname:           k.vm.Name,
		corev1.LabelOSStable:           "linux",
		corev1.LabelArchStable:         "amd64",
		"beta.kubernetes.io/os":        "linux",
		"beta.kubernetes.io/arch":      "amd64",
		corev1.LabelTopologyZone:       k.vm.Zone,
		corev1.LabelTopologyRegion:     k.vm.Region,
		corev1.LabelInstanceTypeStable: k.vm.MachineType.Name,
	}
	for key, v := range labels {
		if v == "" {
			delete(labels, key)
		}
	}
	for key, v := range k.set.labels {
		labels[key] = v
	}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: k.vm.Name, Labels: labels,
			Annotations: map[string]string{"volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
		Spec: corev1.NodeSpec{Taints: append([]corev1.Taint(nil), k.set.taints...)},
	}
	if k.vm.Project != "" {
		n.Spec.ProviderID = vmcontract.ProviderID(k.vm.Project, k.vm.Zone, k.vm.Name)
	}
	n.Status = k.status(n, time.Now())
	return n
}

// register creates the Node, or takes the one a previous boot registered.
func (k *kubelet) register(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	n, err := k.core.Nodes().Create(ctx, k.registerNode(), metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		n, err = k.core.Nodes().Get(ctx, k.vm.Name, metav1.GetOptions{})
	}
	if err != nil {
		k.console("Unable to register node %q with API server: %v", k.vm.Name, err)
		return err
	}
	k.console("Successfully registered node %s", k.vm.Name)
	k.setNode(n)
	return nil
}

// setNode keeps the latest Node the API showed.
func (k *kubelet) setNode(n *corev1.Node) {
	if n == nil {
		return
	}
	if k.node == nil {
		k.changed = true
	}
	k.node = n
}

// nodeFollower follows the kubelet's own Node, as its node informer does.
func (k *kubelet) nodeFollower() *follower {
	sel := fields.OneTermEqualSelector("metadata.name", k.vm.Name).String()
	return &follower{
		list: func(ctx context.Context) (string, error) {
			ctx, cancel := context.WithTimeout(ctx, requestTimeout)
			defer cancel()
			l, err := k.core.Nodes().List(ctx, metav1.ListOptions{FieldSelector: sel})
			if err != nil {
				return "", err
			}
			for i := range l.Items {
				k.setNode(&l.Items[i])
			}
			return l.ResourceVersion, nil
		},
		watch: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.FieldSelector = sel
			return k.core.Nodes().Watch(ctx, opts)
		},
	}
}

func (k *kubelet) onNode(ev watch.Event) {
	if n, ok := ev.Object.(*corev1.Node); ok && ev.Type != watch.Deleted {
		k.setNode(n)
	}
}

// status is the NodeStatus the kubelet reports now: capacity from the
// machine type, addresses, and the four conditions. Ready waits for the
// pod CIDR, as the runtime's network (kube-up's kubenet-style CNI config)
// is not ready before it.
func (k *kubelet) status(n *corev1.Node, now time.Time) corev1.NodeStatus {
	mem := int64(k.vm.MachineType.MemoryMB) << 20
	disk := k.vm.BootDiskGB
	if disk == 0 {
		disk = 100
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewQuantity(int64(k.vm.MachineType.CPUs), resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(mem, resource.BinarySI),
		corev1.ResourcePods:             *resource.NewQuantity(int64(k.set.maxPods), resource.DecimalSI),
		corev1.ResourceEphemeralStorage: *resource.NewQuantity(disk<<30, resource.BinarySI),
		"hugepages-1Gi":                 *resource.NewQuantity(0, resource.DecimalSI),
		"hugepages-2Mi":                 *resource.NewQuantity(0, resource.DecimalSI),
	}
	allocatable := capacity.DeepCopy()
	// The kubelet's default hard eviction thresholds: memory.available<100Mi,
	// nodefs.available<10%.
	allocatable[corev1.ResourceMemory] = *resource.NewQuantity(max(mem-100<<20, 0), resource.BinarySI)
	allocatable[corev1.ResourceEphemeralStorage] = *resource.NewQuantity(disk<<30/10*9, resource.BinarySI)
	st := corev1.NodeStatus{
		Capacity: capacity, Allocatable: allocatable,
		Addresses:       k.addresses(),
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: vmcontract.KubeletPort}},
		NodeInfo: corev1.NodeSystemInfo{MachineID: k.machineID(), SystemUUID: k.machineID(), BootID: k.bootID,
			KernelVersion: kernelVersion, OSImage: osImage, ContainerRuntimeVersion: containerRuntime,
			KubeletVersion: vmcontract.KubeVersion, OperatingSystem: "linux", Architecture: "amd64"},
	}
	prev := map[corev1.NodeConditionType]corev1.NodeCondition{}
	if n != nil {
		for _, c := range n.Status.Conditions {
			prev[c.Type] = c
		}
	}
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		c := corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg,
			LastHeartbeatTime: metav1.NewTime(now), LastTransitionTime: metav1.NewTime(now)}
		if p, ok := prev[t]; ok && p.Status == s {
			c.LastTransitionTime = p.LastTransitionTime
		}
		return c
	}
	ready := cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status")
	if !k.vm.PodCIDR.IsValid() {
		ready = cond(corev1.NodeReady, corev1.ConditionFalse, "KubeletNotReady",
			"container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized")
	}
	st.Conditions = []corev1.NodeCondition{
		cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
		cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
		cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
		ready,
	}
	return st
}

func (k *kubelet) addresses() []corev1.NodeAddress {
	var out []corev1.NodeAddress
	if k.vm.InternalIP.IsValid() {
		out = append(out, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: k.vm.InternalIP.String()})
	}
	if k.vm.ExternalIP.IsValid() {
		out = append(out, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: k.vm.ExternalIP.String()})
	}
	return append(out, corev1.NodeAddress{Type: corev1.NodeHostName, Address: k.vm.Name})
}

// machineID is stable for the VM's life (/etc/machine-id on its boot disk).
func (k *kubelet) machineID() string {
	h := sha256.Sum256([]byte(k.vm.Project + "/" + k.vm.Zone + "/" + k.vm.Name + "/" + strconv.FormatUint(k.vm.ID, 10)))
	return hex.EncodeToString(h[:16])
}

// syncStatus posts the Node's status when it changed, when the report
// frequency passed, or always (at boot).
func (k *kubelet) syncStatus(ctx context.Context, always bool) {
	n := k.node
	if n == nil {
		return
	}
	now := time.Now()
	st := k.status(n, now)
	if !always && k.reported != nil && now.Sub(k.lastPost) < k.set.statusReport && !statusChanged(k.reported, &st) {
		return
	}
	patched, err := k.patchStatus(ctx, n, st)
	if err != nil {
		k.console("Error updating node status, will retry: %v", err)
		return
	}
	k.reported, k.lastPost = &st, now
	k.setNode(patched)
}

// statusChanged ignores heartbeat times, as the kubelet's own comparison does.
func statusChanged(old, cur *corev1.NodeStatus) bool {
	strip := func(s *corev1.NodeStatus) *corev1.NodeStatus {
		c := s.DeepCopy()
		for i := range c.Conditions {
			c.Conditions[i].LastHeartbeatTime = metav1.Time{}
		}
		return c
	}
	return !apiequality.Semantic.DeepEqual(strip(old), strip(cur))
}

// patchStatus sends the two-way strategic merge patch from the Node's
// status to st, with its UID as precondition (nodeutil.PatchNodeStatus).
func (k *kubelet) patchStatus(ctx context.Context, n *corev1.Node, st corev1.NodeStatus) (*corev1.Node, error) {
	oldJSON, err := json.Marshal(corev1.Node{Status: n.Status})
	if err != nil {
		return nil, err
	}
	newJSON, err := json.Marshal(corev1.Node{ObjectMeta: metav1.ObjectMeta{UID: n.UID}, Status: st})
	if err != nil {
		return nil, err
	}
	patch, err := strategicpatch.CreateTwoWayMergePatch(oldJSON, newJSON, corev1.Node{})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return k.core.Nodes().Patch(ctx, k.vm.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
}
