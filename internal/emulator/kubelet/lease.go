package kubelet

import (
	"context"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// leaseNamespace holds the nodes' heartbeats.
const leaseNamespace = corev1.NamespaceNodeLease

// syncLease renews the node's Lease (creating it the first time), owned by
// its Node, as the kubelet's lease controller does: an update from the last
// copy it has, a fresh read after a conflict.
func (k *kubelet) syncLease(ctx context.Context) {
	for attempt := 0; attempt < 2; attempt++ {
		err := k.renewLease(ctx)
		if err == nil {
			return
		}
		k.lease = nil
		if ctx.Err() != nil {
			return
		}
		if attempt == 1 || !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			k.console("Failed to update lease: %v", err)
			return
		}
	}
}

func (k *kubelet) renewLease(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	leases := k.coord.Leases(leaseNamespace)
	cur := k.lease
	if cur == nil {
		l, err := leases.Get(ctx, k.vm.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			l, err = leases.Create(ctx, k.newLease(nil), metav1.CreateOptions{})
			if err == nil {
				k.lease = l
			}
			return err
		case err != nil:
			return err
		}
		cur = l
	}
	l, err := leases.Update(ctx, k.newLease(cur), metav1.UpdateOptions{})
	if err != nil {
		return err
	}
	k.lease = l
	return nil
}

// newLease is base renewed now, held by the node for the lease duration.
func (k *kubelet) newLease(base *coordinationv1.Lease) *coordinationv1.Lease {
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: k.vm.Name, Namespace: leaseNamespace}}
	if base != nil {
		l = base.DeepCopy()
	}
	holder := k.vm.Name
	secs := int32(k.leaseDuration() / time.Second)
	now := metav1.NewMicroTime(time.Now())
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = &holder, &secs, &now
	// Owned by the Node, so that the Node's deletion collects it; the UID is
	// known once the Node is registered.
	if n := k.node; len(l.OwnerReferences) == 0 && n != nil && n.UID != "" {
		l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: n.Name, UID: n.UID}}
	}
	return l
}

// leaseDuration keeps the duration four renew intervals long when Extra
// stretches the interval for a large fleet.
func (k *kubelet) leaseDuration() time.Duration {
	return max(k.set.leaseDuration, time.Duration(float64(k.renew())/leaseRenewFraction))
}
