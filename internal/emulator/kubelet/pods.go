package kubelet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/watch"
)

// podIPs hands out the node's pod IPs from its VM's alias range, as the
// startup script's bridge CNI does: .2 onwards (.1 is the bridge).
type podIPs struct {
	mu   sync.Mutex
	cidr netip.Prefix
	ips  map[types.UID]netip.Addr
}

func (p *podIPs) setCIDR(pre netip.Prefix) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cidr = pre.Masked()
}

// take returns the pod's IP: the one its status shows when it is in the
// CIDR (a pod seen again after a restart), else a free one.
func (p *podIPs) take(uid types.UID, shown string) (netip.Addr, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if a, ok := p.ips[uid]; ok {
		return a, true
	}
	used := map[netip.Addr]bool{}
	for _, a := range p.ips {
		used[a] = true
	}
	if a, err := netip.ParseAddr(shown); err == nil && p.cidr.Contains(a) && !used[a] {
		p.ips[uid] = a
		return a, true
	}
	if !p.cidr.IsValid() {
		return netip.Addr{}, false
	}
	for a := p.cidr.Addr().Next().Next(); p.cidr.Contains(a); a = a.Next() {
		if !used[a] && p.cidr.Contains(a.Next()) { // not the broadcast address
			p.ips[uid] = a
			return a, true
		}
	}
	return netip.Addr{}, false
}

func (p *podIPs) release(uid types.UID) {
	p.mu.Lock()
	delete(p.ips, uid)
	p.mu.Unlock()
}

// podFollower follows the Pods bound to the node (the only ones the Node
// authorizer lets it see).
func (k *kubelet) podFollower() *follower {
	sel := fields.OneTermEqualSelector("spec.nodeName", k.vm.Name).String()
	return &follower{
		list: func(ctx context.Context) (string, error) {
			lctx, cancel := context.WithTimeout(ctx, requestTimeout)
			defer cancel()
			l, err := k.core.Pods("").List(lctx, metav1.ListOptions{FieldSelector: sel})
			if err != nil {
				return "", err
			}
			listed := map[types.UID]bool{}
			for i := range l.Items {
				listed[l.Items[i].UID] = true
				k.syncPod(ctx, &l.Items[i])
			}
			for uid := range k.podCache {
				if !listed[uid] {
					k.forgetPod(uid)
				}
			}
			return l.ResourceVersion, nil
		},
		watch: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.FieldSelector = sel
			return k.core.Pods("").Watch(ctx, opts)
		},
	}
}

func (k *kubelet) onPod(ctx context.Context, ev watch.Event) {
	p, ok := ev.Object.(*corev1.Pod)
	if !ok {
		return
	}
	if ev.Type == watch.Deleted {
		k.forgetPod(p.UID)
		return
	}
	k.syncPod(ctx, p)
}

func (k *kubelet) forgetPod(uid types.UID) {
	delete(k.podCache, uid)
	delete(k.retryPod, uid)
	k.pods.release(uid)
}

// retryPods syncs again the pods whose last sync failed or that waited for
// the network.
func (k *kubelet) retryPods(ctx context.Context) {
	for uid := range k.retryPod {
		if p := k.podCache[uid]; p != nil {
			k.syncPod(ctx, p)
		}
	}
}

// syncPod does what the kubelet does for one pod: a pod being deleted is
// finalized (its containers are gone: grace 0, as the kubelet deletes it
// once they stopped); any other pod not finished is reported Running.
func (k *kubelet) syncPod(ctx context.Context, pod *corev1.Pod) {
	k.podCache[pod.UID] = pod
	delete(k.retryPod, pod.UID)
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if pod.DeletionTimestamp != nil {
		uid := pod.UID
		err := k.core.Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64), Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			k.console("Failed to delete pod %s/%s: %v", pod.Namespace, pod.Name, err)
			k.retryPod[pod.UID] = true
		}
		return
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return
	}
	st, ok := k.runningStatus(pod, time.Now())
	if !ok {
		k.retryPod[pod.UID] = true // the network is not ready yet
		return
	}
	if !needsStatus(&pod.Status, &st) {
		return
	}
	if err := k.patchPodStatus(ctx, pod, st); err != nil && !apierrors.IsNotFound(err) {
		k.console("Failed to update status for pod %s/%s: %v", pod.Namespace, pod.Name, err)
		k.retryPod[pod.UID] = true
	}
}

// runningStatus is a pod whose containers all run: ok is false while the
// node's network is not ready for a pod that needs an IP of its own.
func (k *kubelet) runningStatus(pod *corev1.Pod, now time.Time) (corev1.PodStatus, bool) {
	hostIP := k.vm.InternalIP.String()
	podIP := hostIP
	if !pod.Spec.HostNetwork {
		a, ok := k.pods.take(pod.UID, pod.Status.PodIP)
		if !ok {
			return corev1.PodStatus{}, false
		}
		podIP = a.String()
	}
	start := metav1.NewTime(now)
	if pod.Status.StartTime != nil {
		start = *pod.Status.StartTime
	}
	st := corev1.PodStatus{Phase: corev1.PodRunning, HostIP: hostIP, HostIPs: []corev1.HostIP{{IP: hostIP}},
		PodIP: podIP, PodIPs: []corev1.PodIP{{IP: podIP}}, StartTime: &start, QOSClass: pod.Status.QOSClass}
	ready := corev1.ConditionTrue
	for _, g := range pod.Spec.ReadinessGates {
		if !podCondition(&pod.Status, g.ConditionType, corev1.ConditionTrue) {
			ready = corev1.ConditionFalse
		}
	}
	for _, t := range []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		s := corev1.ConditionTrue
		if t == corev1.PodReady {
			s = ready
		}
		st.Conditions = append(st.Conditions, corev1.PodCondition{Type: t, Status: s, LastTransitionTime: start})
	}
	// The kubelet reports PodScheduled too (a pod bound without the
	// scheduler has none); the scheduler's own is kept.
	scheduled := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: start}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionTrue {
			scheduled = c
		}
	}
	st.Conditions = append(st.Conditions, scheduled)
	for _, c := range pod.Spec.InitContainers {
		st.InitContainerStatuses = append(st.InitContainerStatuses, corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: imageID(c.Image),
			ContainerID: containerID(pod.UID, c.Name), Ready: true,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: start, FinishedAt: start}}})
	}
	started := true
	for _, c := range pod.Spec.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: imageID(c.Image),
			ContainerID: containerID(pod.UID, c.Name), Ready: true, Started: &started,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: start}}})
	}
	return st, true
}

func podCondition(st *corev1.PodStatus, t corev1.PodConditionType, want corev1.ConditionStatus) bool {
	for _, c := range st.Conditions {
		if c.Type == t {
			return c.Status == want
		}
	}
	return false
}

// needsStatus reports whether the pod's status is not what a running pod's is.
func needsStatus(cur, want *corev1.PodStatus) bool {
	if cur.Phase != want.Phase || cur.PodIP != want.PodIP || len(cur.ContainerStatuses) != len(want.ContainerStatuses) {
		return true
	}
	for _, c := range want.Conditions {
		if !podCondition(cur, c.Type, c.Status) {
			return true
		}
	}
	for _, c := range cur.ContainerStatuses {
		if !c.Ready || c.State.Running == nil {
			return true
		}
	}
	return false
}

// patchPodStatus sends the two-way strategic merge patch of the status,
// with the pod's UID as precondition, as the kubelet's status manager does.
func (k *kubelet) patchPodStatus(ctx context.Context, pod *corev1.Pod, st corev1.PodStatus) error {
	oldJSON, err := json.Marshal(corev1.Pod{Status: pod.Status})
	if err != nil {
		return err
	}
	// Conditions the kubelet does not own (PodScheduled, readiness gates)
	// are kept.
	for _, c := range pod.Status.Conditions {
		if !hasCondition(&st, c.Type) {
			st.Conditions = append(st.Conditions, c)
		}
	}
	newJSON, err := json.Marshal(corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: pod.UID}, Status: st})
	if err != nil {
		return err
	}
	patch, err := strategicpatch.CreateTwoWayMergePatch(oldJSON, newJSON, corev1.Pod{})
	if err != nil {
		return err
	}
	_, err = k.core.Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	return err
}

func hasCondition(st *corev1.PodStatus, t corev1.PodConditionType) bool {
	for _, c := range st.Conditions {
		if c.Type == t {
			return true
		}
	}
	return false
}

// imageID and containerID are what containerd would report, stable per
// image and per pod container.
func imageID(image string) string {
	h := sha256.Sum256([]byte(image))
	return image + "@sha256:" + hex.EncodeToString(h[:])
}

func containerID(uid types.UID, name string) string {
	h := sha256.Sum256([]byte(string(uid) + "/" + name))
	return "containerd://" + hex.EncodeToString(h[:])
}
