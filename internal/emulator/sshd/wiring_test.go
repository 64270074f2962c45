package sshd_test

// A test-only stand-in for the guest seam (package guest, being built on
// another branch): it boots sshd.Extra on every RUNNING VM of an in-process
// emulator and stops it when the VM leaves RUNNING, with the emulator's
// metadata server behind Metadata and PublishHostKey and its guest
// shutdown behind Halt. When the seam lands, the wiring is its few lines.

import (
	"context"
	"net"
	"net/http/httptest"
	"net/netip"
	"path"
	"sync"
	"testing"
	"time"

	"github.com/hakube/hakube/internal/emulator"
	"github.com/hakube/hakube/internal/emulator/emulatortest"
	"github.com/hakube/hakube/internal/emulator/sshd"
	"github.com/hakube/hakube/internal/vmcontract"
	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/option"
)

// emu is an in-process emulator whose links resolve to itself (gcloud
// follows operations' selfLinks), on loopback ranges this process holds.
type emu struct {
	srv      *emulator.Server
	endpoint string
	svc      *compute.Service
}

func startEmu(t *testing.T, project string) *emu {
	t.Helper()
	ext, internal := emulatortest.ClaimRanges(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + ln.Addr().String() + "/compute/v1/"
	srv, err := emulator.New(emulator.Options{Projects: []string{project}, Latency: emulator.LatencyFast,
		LinkBase: endpoint, ExternalRange: ext, InternalRange: internal, WaitCap: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv.Handler())
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
	})
	svc, err := compute.NewService(context.Background(), option.WithEndpoint(endpoint), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	return &emu{srv: srv, endpoint: endpoint, svc: svc}
}

// booted is one VM's running sshd, as the seam would track it.
type booted struct {
	id   uint64
	stop func()
}

// attachSSH runs x on the emulator's VMs until the test ends.
func attachSSH(t *testing.T, e *emu, project string, x *sshd.Extra) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		running := map[string]*booted{}
		defer func() {
			for _, b := range running {
				b.stop()
			}
		}()
		for ctx.Err() == nil {
			seen := map[string]bool{}
			list, err := e.svc.Instances.AggregatedList(project).Context(ctx).Do()
			if err == nil {
				for _, scoped := range list.Items {
					for _, in := range scoped.Instances {
						if in.Status != "RUNNING" {
							continue
						}
						seen[in.SelfLink] = true
						if b := running[in.SelfLink]; b != nil && b.id == in.Id {
							continue
						}
						if stop, err := x.Boot(sshVM(e, project, in)); err == nil {
							running[in.SelfLink] = &booted{id: in.Id, stop: stop}
						} else {
							t.Errorf("boot sshd on %s: %v", in.Name, err)
						}
					}
				}
				for link, b := range running {
					if !seen[link] {
						b.stop()
						delete(running, link)
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// sshVM is what the seam hands sshd.Extra for one boot of in.
func sshVM(e *emu, project string, in *compute.Instance) sshd.VM {
	ref := emulator.GuestRef{Project: project, Zone: path.Base(in.Zone), Name: in.Name, ID: in.Id}
	local := netip.MustParseAddr(in.NetworkInterfaces[0].NetworkIP)
	return sshd.VM{
		Project: project, Zone: ref.Zone, Name: in.Name, ID: in.Id,
		Listen: []netip.Addr{local}, Local: local,
		Metadata: func(context.Context) (sshd.Metadata, error) {
			md, err := e.srv.GuestMetadata(ref)
			return sshd.Metadata{Instance: md.Instance, Project: md.Project}, err
		},
		PublishHostKey: func(keyType, value string) error {
			return e.srv.SetGuestAttribute(ref, vmcontract.GuestAttributesHostKeys, keyType, value)
		},
		Halt:   func() { _ = e.srv.GuestShutdown(ref) },
		Reboot: func() {},
	}
}
