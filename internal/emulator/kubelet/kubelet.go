// Package kubelet is the simulated kubelet of the emulator's VMs: this
// machine cannot run containers, so each VM that joins the cluster (its
// kube-env names KUBELET_BOOTSTRAP_TOKEN: masters and nodes) gets a kubelet
// stand-in that does against the real API what a kubelet does there, as
// sigs.k8s.io/kwok's fake nodes do, but under each node's own identity:
//
//   - TLS bootstrapping: a CSR for system:node:<vm> made with the bootstrap
//     token, approved and signed by the real controller-manager, the key
//     and certificate kept for the VM's life (bootstrap.go);
//   - the Node, registered and its status kept fresh as system:node:<vm>,
//     so that the real Node authorizer and NodeRestriction judge it
//     (node.go), and its Lease in kube-node-lease renewed (lease.go);
//   - the Pods bound to it reported Running with an IP from the Node's pod
//     CIDR, and finalized when deleted (pods.go).
//
// When the VM stops, so does its kubelet: the real controller-manager marks
// the Node NotReady. Extra runs one per booted VM.
package kubelet

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"time"

	"go.uber.org/zap"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	coordinationclient "k8s.io/client-go/kubernetes/typed/coordination/v1"
	coreclient "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
)

// VM is what the kubelet needs of one booted VM: what the emulator's guest
// seam hands each boot, in the kubelet's own terms.
type VM struct {
	Project, Zone, Name string
	Region              string // "": the zone's
	ID                  uint64 // a new ID under the same name is a new VM (new disk, new credential)
	InternalIP          netip.Addr
	ExternalIP          netip.Addr // invalid when the VM has none
	KubeEnv             string     // the kube-env the VM booted with
	MachineType         MachineType
	BootDiskGB          int64 // ephemeral-storage capacity (0: 100)
	// PodCIDR is the VM's alias IP range, which a real VM's startup script
	// makes its pods' CNI range: with it the network is ready, without it
	// the Node stays NotReady (the controller-manager allocates none).
	PodCIDR netip.Prefix
	// Dial opens the kubelet's connections to the API (nil: from the VM's
	// internal IP, as a VM's own connections leave it, which is also what
	// makes a master's connection to the forwarding rule come back to it).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Console is the VM's serial console (nil: none).
	Console io.Writer
}

// MachineType is the VM's size.
type MachineType struct {
	Name     string
	CPUs     int
	MemoryMB int
}

// kubelet is one VM's kubelet for one boot.
type kubelet struct {
	vm      VM
	set     *settings
	id      *identity
	log     *zap.Logger
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	bootID  string
	started time.Time
	renew   func() time.Duration // the lease renew interval (Extra may stretch it)

	tr    *http.Transport
	core  coreclient.CoreV1Interface
	coord coordinationclient.CoordinationV1Interface

	// Owned by run's goroutine once it registered.
	node     *corev1.Node // the latest the API showed
	reported *corev1.NodeStatus
	lastPost time.Time
	lease    *coordinationv1.Lease
	changed  bool // the Node changed (its pod CIDR arrived): post the status now
	pods     podIPs
	podCache map[types.UID]*corev1.Pod // the Pods bound to the node
	retryPod map[types.UID]bool        // pods whose last sync failed or wait for the network
}

func newKubelet(vm VM, set *settings, id *identity, log *zap.Logger) *kubelet {
	k := &kubelet{vm: vm, set: set, id: id, log: log, dial: vm.Dial, started: time.Now(), bootID: randomUUID(),
		renew: set.leaseRenew, podCache: map[types.UID]*corev1.Pod{}, retryPod: map[types.UID]bool{}}
	if k.dial == nil {
		d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
		if vm.InternalIP.IsValid() {
			d.LocalAddr = &net.TCPAddr{IP: vm.InternalIP.AsSlice()}
		}
		k.dial = d.DialContext
	}
	k.pods.ips = map[types.UID]netip.Addr{}
	k.pods.setCIDR(vm.PodCIDR)
	return k
}

// console writes a line to the VM's serial console, as journald forwards
// the kubelet's log there.
func (k *kubelet) console(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	k.log.Debug(msg)
	if k.vm.Console != nil {
		fmt.Fprintf(k.vm.Console, "%s kubelet[%s]: %s\n", time.Now().UTC().Format(time.StampMilli), k.vm.Name, msg)
	}
}

// run is the kubelet of one boot, until ctx ends.
func (k *kubelet) run(ctx context.Context) {
	if len(k.set.ignored) > 0 {
		k.console("Flags the simulated kubelet does not model, ignored: %v", k.set.ignored)
	}
	if !k.id.valid(k.set.caPEM, time.Now()) {
		k.console("No valid client certificate: TLS bootstrapping with the bootstrap token against %s", k.set.server)
		if err := k.bootstrap(ctx, k.id); err != nil {
			return
		}
	}
	if err := k.connect(); err != nil {
		k.console("Cannot make the API client: %v", err)
		return
	}
	defer k.tr.CloseIdleConnections()
	if err := retry(ctx, func() error { return k.register(ctx) }); err != nil {
		return
	}
	k.loop(ctx)
}

// connect makes the clients that act as system:node:<name>.
func (k *kubelet) connect() error {
	c, err := k.id.tlsCertificate()
	if err != nil {
		return err
	}
	if k.tr, err = newTransport(k.set.caPEM, c, k.dial); err != nil {
		return err
	}
	// Protobuf, as the kubelet speaks it: cheaper to decode on both ends.
	cfg := &rest.Config{Host: k.set.server, Transport: k.tr, UserAgent: userAgent, QPS: 20, Burst: 50,
		ContentConfig: rest.ContentConfig{ContentType: runtime.ContentTypeProtobuf, AcceptContentTypes: runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON}}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	if k.core, err = coreclient.NewForConfigAndClient(cfg, hc); err != nil {
		return err
	}
	k.coord, err = coordinationclient.NewForConfigAndClient(cfg, hc)
	return err
}

// requestTimeout bounds each of the kubelet's requests but its watches.
const requestTimeout = 30 * time.Second

// loop is the kubelet after registration, on one goroutine: it renews the
// lease, keeps the Node's status fresh and follows its own Node (the pod
// CIDR the controller-manager allocates) and the Pods bound to it. The
// status is looked at every --node-status-update-frequency and posted when
// it changed or --node-status-report-frequency passed, and at once when the
// Node changed (its pod CIDR arrived: the network is ready), as the
// kubelet's fast status update at start does.
func (k *kubelet) loop(ctx context.Context) {
	nodes, pods := k.nodeFollower(), k.podFollower()
	defer nodes.stop()
	defer pods.stop()
	k.syncLease(ctx)
	k.syncStatus(ctx, true)
	leaseT := time.NewTimer(jitter(k.renew(), 0.04))
	statusT := time.NewTimer(k.set.statusUpdate)
	defer leaseT.Stop()
	defer statusT.Stop()
	for ctx.Err() == nil {
		now := time.Now()
		nodes.open(ctx, now)
		pods.open(ctx, now)
		if k.changed {
			k.changed = false
			k.syncStatus(ctx, false)
			k.retryPods(ctx)
		}
		select {
		case <-ctx.Done():
		case ev, ok := <-nodes.events():
			if !ok {
				nodes.ended()
			} else if nodes.seen(ev) {
				k.onNode(ev)
			}
		case ev, ok := <-pods.events():
			if !ok {
				pods.ended()
			} else if pods.seen(ev) {
				k.onPod(ctx, ev)
			}
		case <-leaseT.C:
			k.syncLease(ctx)
			leaseT.Reset(jitter(k.renew(), 0.04))
		case <-statusT.C:
			k.syncStatus(ctx, false)
			k.retryPods(ctx)
			statusT.Reset(k.set.statusUpdate)
		case <-reopen(nodes, pods):
			// A follower whose open failed is tried again on this pass.
		}
	}
}

// reopen fires when a follower whose list or watch failed may try again;
// nil (never) while both watch.
func reopen(fs ...*follower) <-chan time.Time {
	var at time.Time
	for _, f := range fs {
		if f.w == nil && (at.IsZero() || f.retryAt.Before(at)) {
			at = f.retryAt
		}
	}
	if at.IsZero() {
		return nil
	}
	return time.After(max(time.Until(at), 0))
}

// jitter returns d plus up to frac of it, at random (wait.Jitter).
func jitter(d time.Duration, frac float64) time.Duration {
	return d + time.Duration(rand.Float64()*frac*float64(d))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func randomUUID() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(rand.UintN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
