package guest

import (
	"context"
	"io"
	"net"
	"net/netip"

	"github.com/hakube/hakube/internal/vmcontract"
)

// Extras is what else every VM runs besides a master's processes: the SSH
// server and the kubelet stand-in (packages sshd and kubelet), which the
// emulator hands the guests in its Options. Boot is called at each boot of
// every VM (masters and nodes, with Kubernetes on or off), once the guest
// wrote its files and started its processes; stop is called when that boot
// ends (stop, halt, reboot, reset, zone DOWN, delete), before the next one
// starts. ctx ends at the same moment. An error is written to the VM's
// console and reported in its status; the VM keeps running without it.
type Extras interface {
	Boot(ctx context.Context, b BootInfo) (stop func(), err error)
}

// Forgetter is what Extras may also be: told when an instance is gone
// (deleted, or its project reset), after its last boot ended, to drop what
// it kept across the boots (host keys, a kubelet's credentials).
type Forgetter interface {
	Forget(project, zone, name string, id uint64)
}

// ExtrasList runs several Extras at each boot, in order; they stop in
// reverse order.
type ExtrasList []Extras

// Forget tells every one that is a Forgetter.
func (l ExtrasList) Forget(project, zone, name string, id uint64) {
	for _, e := range l {
		if f, ok := e.(Forgetter); ok {
			f.Forget(project, zone, name, id)
		}
	}
}

// Boot starts every one; the first error stops those already started.
func (l ExtrasList) Boot(ctx context.Context, b BootInfo) (func(), error) {
	var stops []func()
	stopAll := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	for _, e := range l {
		stop, err := e.Boot(ctx, b)
		if err != nil {
			stopAll()
			return nil, err
		}
		if stop != nil {
			stops = append(stops, stop)
		}
	}
	return stopAll, nil
}

// BootInfo is one boot of one VM, as the extras see it.
type BootInfo struct {
	Project, Zone, Name string
	ID                  uint64 // the instance's id: a VM re-created under its name has another
	// Boot counts the instance's boots in this emulator, from 1.
	Boot       int
	InternalIP netip.Addr   // nic0's
	ExternalIP []netip.Addr // every access config's NAT IP at boot
	// PodCIDR is nic0's first alias IP range at boot (zero when it has
	// none): the range GCE routes to the VM for its pods, which the
	// kubelet stand-in gives its Node's pods their IPs from, as a real
	// VM's CNI network does (docs/vm-contract.md, pod networking).
	PodCIDR netip.Prefix
	// KubeEnv is the kube-env this boot read (nil when the VM has none or
	// it does not parse); MasterCerts its kube-master-certs (nil on nodes).
	KubeEnv     *vmcontract.KubeEnv
	MasterCerts vmcontract.Certs
	// The machine type's name and size.
	MachineType string
	CPUs        int64
	MemoryMB    int64
	// SSHPort is where the VM's SSH server listens, on InternalIP only
	// (the emulator's Options.SSHPort, gce-emulator --ssh-port): the data
	// plane forwards the same port of every external IP there, as GCE's NAT
	// does, and holds those addresses itself.
	SSHPort int
	// StateDir is a directory of the instance's own, kept across its boots
	// and removed with it (a kubelet's certificate goes there).
	StateDir string
	// Metadata reads the instance's metadata and its project's common
	// metadata as they are now (ssh-keys is read at every connection).
	Metadata func(ctx context.Context) (instance, project map[string]string, err error)
	// SetGuestAttribute writes a guest attribute, as a guest agent's PUT
	// to the metadata server does (the SSH host keys: namespace hostkeys);
	// it fails as GCE refuses when guest attributes are not enabled.
	SetGuestAttribute func(ctx context.Context, namespace, key, value string) error
	// Halt and Reboot are the guest's own shutdowns (sudo halt, sudo
	// poweroff, sudo reboot): Halt makes the instance TERMINATED without an
	// operation, as on GCE; Reboot ends this boot and starts the next. Both
	// return at once; a call from a boot that already ended does nothing.
	Halt, Reboot func()
	// Console returns a writer of whole lines to the VM's serial console,
	// each prefixed with "<component>: ".
	Console func(component string) io.WriteCloser
	// Dial connects from InternalIP as the network would (nil when the
	// host has no Options.Dial: the extra opens a socket of its own).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// VMRef names one boot of an instance to the emulator's callbacks.
type VMRef struct {
	Link string
	ID   uint64
	Key  BootKey
}

// BootKey tells boots apart: the instance's lastStartTimestamp (a start)
// and its count of reboots and resets since.
type BootKey struct {
	Start   string
	Reboots uint64
}

// Power is a shutdown the guest asks of the emulator.
type Power int

// Powers.
const (
	PowerHalt Power = iota + 1
	PowerReboot
)
