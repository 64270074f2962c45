package emulator

import (
	"context"
	"io"
	"net/netip"

	"go.uber.org/zap"

	"github.com/hakube/hakube/internal/emulator/guest"
	"github.com/hakube/hakube/internal/emulator/kubelet"
	"github.com/hakube/hakube/internal/emulator/sshd"
	"github.com/hakube/hakube/internal/vmcontract"
)

// vmExtras is what every VM of a Kubernetes emulator runs beside its
// guest's processes, as a real VM runs sshd and a kubelet: the SSH server
// (hakube's etcd tunnel, gcloud compute ssh) and the kubelet stand-in.
type vmExtras struct {
	ssh     *sshd.Extra
	kubelet *kubelet.Extra
}

// defaultExtras are the extras of Options.Kubernetes when none are given.
func defaultExtras(sshPort int, log *zap.Logger) guest.Extras {
	return vmExtras{
		ssh:     sshd.NewExtra(sshd.ExtraConfig{Port: sshPort, PortFlag: "--ssh-port", Log: log.Named("sshd")}),
		kubelet: kubelet.NewExtra(kubelet.Config{Log: log.Named("kubelet")}),
	}
}

// Boot starts both for one boot of a VM; they stop in reverse order.
func (x vmExtras) Boot(ctx context.Context, b guest.BootInfo) (func(), error) {
	var consoles []io.Closer
	console := func(name string) io.Writer {
		w := b.Console(name)
		consoles = append(consoles, w)
		return w
	}
	closeConsoles := func() {
		for _, c := range consoles {
			_ = c.Close()
		}
	}
	stopSSH, err := x.ssh.Boot(sshd.VM{
		Project: b.Project, Zone: b.Zone, Name: b.Name, ID: b.ID,
		Listen: []netip.Addr{b.InternalIP}, Local: b.InternalIP,
		Metadata: func(ctx context.Context) (sshd.Metadata, error) {
			instance, project, err := b.Metadata(ctx)
			return sshd.Metadata{Instance: instance, Project: project}, err
		},
		PublishHostKey: func(keyType, value string) error {
			return b.SetGuestAttribute(ctx, vmcontract.GuestAttributesHostKeys, keyType, value)
		},
		Halt: b.Halt, Reboot: b.Reboot, Console: console("sshd"),
	})
	if err != nil {
		closeConsoles()
		return nil, err
	}
	vm := kubelet.VM{
		Project: b.Project, Zone: b.Zone, Name: b.Name, ID: b.ID, InternalIP: b.InternalIP,
		MachineType: kubelet.MachineType{Name: b.MachineType, CPUs: int(b.CPUs), MemoryMB: int(b.MemoryMB)},
		PodCIDR:     b.PodCIDR,
		Console:     console("kubelet"),
		Dial:        b.Dial,
	}
	if len(b.ExternalIP) > 0 {
		vm.ExternalIP = b.ExternalIP[0]
	}
	if b.KubeEnv != nil {
		vm.KubeEnv = b.KubeEnv.String()
	}
	stopKubelet, err := x.kubelet.Boot(vm)
	if err != nil {
		stopSSH()
		closeConsoles()
		return nil, err
	}
	return func() {
		stopKubelet()
		stopSSH()
		closeConsoles()
	}, nil
}

// Forget drops what both keep for a VM's life (host key, kubelet
// credential) once it is gone.
func (x vmExtras) Forget(project, zone, name string, id uint64) {
	x.ssh.Forget(project, zone, name, id)
	x.kubelet.Forget(project, zone, name, id)
}
