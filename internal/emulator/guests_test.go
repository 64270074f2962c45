package emulator_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hakube/hakube/internal/emulator"
	"github.com/hakube/hakube/internal/emulator/guest"
	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/googleapi"
)

// recordingExtras stands in for the SSH server and the kubelet: it records
// every boot it is started for and serves a banner on the VM's SSH port.
type recordingExtras struct {
	mu     sync.Mutex
	boots  []guest.BootInfo
	stops  []int    // Boot numbers, in stop order
	forgot []string // instances forgotten
	next   chan guest.BootInfo
}

func newRecordingExtras() *recordingExtras {
	return &recordingExtras{next: make(chan guest.BootInfo, 16)}
}

func (r *recordingExtras) Boot(ctx context.Context, b guest.BootInfo) (func(), error) {
	r.mu.Lock()
	r.boots = append(r.boots, b)
	r.mu.Unlock()
	w := b.Console("test-extra")
	fmt.Fprintf(w, "boot %d of %s\n", b.Boot, b.Name)
	_ = w.Close()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(b.InternalIP, uint16(b.SSHPort)).String())
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "SSH-2.0-test-"+b.Name+"\r\n")
			_ = c.Close()
		}
	}()
	r.next <- b
	return func() {
		_ = ln.Close()
		r.mu.Lock()
		r.stops = append(r.stops, b.Boot)
		r.mu.Unlock()
	}, nil
}

func (r *recordingExtras) Forget(project, zone, name string, id uint64) {
	r.mu.Lock()
	r.forgot = append(r.forgot, fmt.Sprintf("%s/%s/%s/%d", project, zone, name, id))
	r.mu.Unlock()
}

func (r *recordingExtras) forgotten() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.forgot...)
}

func (r *recordingExtras) wait(t *testing.T, boot int) guest.BootInfo {
	t.Helper()
	for {
		select {
		case b := <-r.next:
			if b.Boot == boot {
				return b
			}
			if b.Boot > boot {
				t.Fatalf("boot %d started, waiting for boot %d", b.Boot, boot)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("boot %d never started its extras", boot)
		}
	}
}

func (r *recordingExtras) stopped() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.stops...)
}

// sshBanner reads the first line the VM's SSH port answers with at addr.
func sshBanner(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// TestGuestExtrasAndPower runs the extras seam end to end with the static
// guests: the extras start at each boot with what the VM is, get the SSH
// listener (reached on the external IP through the NAT), read the current
// metadata, and the guest's own reboot and halt do what they do on GCE; a
// reset is a new boot; everything shows on the serial console.
func TestGuestExtrasAndPower(t *testing.T) {
	t.Parallel()
	rec := newRecordingExtras()
	const sshPort = 2222
	e := startDPWith(t, 0.2, func(o *emulator.Options) { o.Extras, o.SSHPort = rec, sshPort })
	op := e.startVM(t, vmSpec{name: "n1", natIP: "ephemeral"})
	e.waitOp(t, op, nil)
	n1 := e.instance(t, dpZone, "n1")
	b1 := rec.wait(t, 1)
	if b1.Name != "n1" || b1.Zone != dpZone || b1.Project != dpProject || b1.ID != n1.Id || b1.InternalIP.String() != internalOf(n1) ||
		len(b1.ExternalIP) != 1 || b1.ExternalIP[0].String() != externalOf(n1) || b1.CPUs != 2 || b1.MemoryMB != 2048 {
		t.Errorf("boot info %+v does not describe n1 (%s, %s)", b1, internalOf(n1), externalOf(n1))
	}
	if b1.KubeEnv == nil || b1.KubeEnv.Get("KUBERNETES_MASTER") != "false" || b1.MasterCerts != nil || b1.StateDir == "" || b1.SSHPort != sshPort {
		t.Errorf("boot info kube-env %v, certs %v, state dir %q, SSH port %d", b1.KubeEnv, b1.MasterCerts, b1.StateDir, b1.SSHPort)
	}
	if err := b1.SetGuestAttribute(context.Background(), "hostkeys", "ssh-ed25519", "AAAA"); err == nil {
		t.Errorf("a guest attribute written without enable-guest-attributes")
	}
	for _, ip := range []string{internalOf(n1), externalOf(n1)} {
		// The external IP's NAT listener opens at the data plane's next
		// pass, which may come just after the extras' boot.
		var got string
		var err error
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if got, err = sshBanner(net.JoinHostPort(ip, fmt.Sprint(sshPort))); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil || got != "SSH-2.0-test-n1" {
			t.Errorf("SSH port on %s: %q, %v", ip, got, err)
		}
	}

	// Metadata is read as it is now, not as it was at boot.
	fp := n1.Metadata.Fingerprint
	op, err := e.svc.Instances.SetMetadata(dpProject, dpZone, "n1", &compute.Metadata{Fingerprint: fp,
		Items: append(n1.Metadata.Items, &compute.MetadataItems{Key: "ssh-keys", Value: googleapi.String("alice:ssh-ed25519 AAAA alice")})}).Do()
	e.waitOp(t, op, err)
	inst, proj, err := b1.Metadata(context.Background())
	if err != nil || inst["ssh-keys"] != "alice:ssh-ed25519 AAAA alice" || proj == nil {
		t.Errorf("metadata: instance %v, project %v, %v", inst, proj, err)
	}

	// The guest's own reboot: a new boot, the instance RUNNING throughout,
	// no operation.
	ops := func() int {
		l, err := e.svc.ZoneOperations.List(dpProject, dpZone).Do()
		if err != nil {
			t.Fatal(err)
		}
		return len(l.Items)
	}
	before := ops()
	b1.Reboot()
	rec.wait(t, 2)
	if st := e.instance(t, dpZone, "n1").Status; st != "RUNNING" {
		t.Errorf("status after a guest reboot: %s", st)
	}
	b1.Halt() // from a boot that is over: nothing happens
	b1.Reboot()
	op, err = e.svc.Instances.Reset(dpProject, dpZone, "n1").Do()
	e.waitOp(t, op, err)
	b3 := rec.wait(t, 3)
	if after := ops(); after != before+1 {
		t.Errorf("%d operations after two guest reboots, a stale halt and a reset; want %d (the reset's)", after, before+1)
	}
	b3.Halt()
	eventually(t, 3*time.Second, "n1 TERMINATED by its guest's halt", func() bool {
		return e.instance(t, dpZone, "n1").Status == "TERMINATED"
	})
	if after := ops(); after != before+1 {
		t.Errorf("a guest halt made an operation: %d, want %d", after, before+1)
	}
	eventually(t, 3*time.Second, "boot 3's extras stopped", func() bool { return len(rec.stopped()) == 3 })
	if got := rec.stopped(); fmt.Sprint(got) != "[1 2 3]" {
		t.Errorf("extras stopped in order %v", got)
	}
	op, err = e.svc.Instances.Start(dpProject, dpZone, "n1").Do()
	e.waitOp(t, op, err)
	rec.wait(t, 4)

	checkSerialConsole(t, e, n1)

	// Deleted, the instance is forgotten by the extras, once its last
	// boot stopped.
	op, err = e.svc.Instances.Delete(dpProject, dpZone, "n1").Do()
	e.waitOp(t, op, err)
	want := fmt.Sprintf("%s/%s/n1/%d", dpProject, dpZone, n1.Id)
	eventually(t, 3*time.Second, "the extras told n1 is gone", func() bool { return fmt.Sprint(rec.forgotten()) == "["+want+"]" })
	if got := rec.stopped(); len(got) != 4 {
		t.Errorf("stops %v before the instance was forgotten", got)
	}
}

// checkSerialConsole reads n1's console, through the API and the control
// API: the guest's lines and the extras', GCE's positions.
func checkSerialConsole(t *testing.T, e *dpEnv, n1 *compute.Instance) {
	out, err := e.svc.Instances.GetSerialPortOutput(dpProject, dpZone, "n1").Port(1).Do()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"hakube-guest: boot 1 of n1", "hakube-guest: not a master: serving nothing",
		"test-extra: boot 1 of n1", "hakube-guest: shutting down (SIGKILL)", "test-extra: boot 4 of n1"} {
		if !strings.Contains(out.Contents, want) {
			t.Errorf("serial console lacks %q:\n%s", want, out.Contents)
		}
	}
	if out.Start != 0 || out.Next != int64(len(out.Contents)) || out.Kind != "compute#serialPortOutput" || out.SelfLink != n1.SelfLink+"/serialPort" {
		t.Errorf("serial port output: start %d next %d (%d bytes) kind %q selfLink %q", out.Start, out.Next, len(out.Contents), out.Kind, out.SelfLink)
	}
	tail, err := e.svc.Instances.GetSerialPortOutput(dpProject, dpZone, "n1").Start(out.Next - 10).Do()
	if err != nil || tail.Start != out.Next-10 || !strings.HasPrefix(out.Contents[out.Next-10:], tail.Contents) {
		t.Errorf("from %d: %+v, %v", out.Next-10, tail, err)
	}
	ctl, err := e.Control.Console(context.Background(), dpProject, dpZone, "n1", -12)
	if err != nil || len(ctl.Contents) != 12 || ctl.Instance != n1.SelfLink {
		t.Errorf("control console: %+v, %v", ctl, err)
	}
	if _, err := e.svc.Instances.GetSerialPortOutput(dpProject, dpZone, "n1").Port(5).Do(); !isHTTP(err, 400) {
		t.Errorf("port 5: %v, want 400", err)
	}

}

func isHTTP(err error, code int) bool {
	ge, ok := err.(*googleapi.Error)
	return ok && ge.Code == code
}

func TestKubernetesOptions(t *testing.T) {
	for _, tt := range []struct {
		opts emulator.Options
		want string
	}{
		{emulator.Options{Projects: []string{dpProject}, Kubernetes: true}, "the Kubernetes guests need the data plane"},
		{emulator.Options{Projects: []string{dpProject}, Kubernetes: true, DataPlane: true}, "no Kubernetes binary: build it with `make rehearsal`"},
		{emulator.Options{Projects: []string{dpProject}, Kubernetes: true, DataPlane: true, KubeBinary: "/nonexistent"}, "build it with `make rehearsal`"},
		{emulator.Options{Projects: []string{dpProject}, SSHPort: -1}, "SSH port -1 is not a port"},
	} {
		s, err := emulator.New(tt.opts)
		if err == nil {
			s.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v): %v, want %q", tt.opts, err, tt.want)
		}
	}
}
