// Package emulatortest starts an in-process GCE emulator for tests and hands
// out official Compute clients pointed at it.
package emulatortest

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"net/netip"
	"os"
	"path"
	"testing"
	"time"

	"github.com/hakube/hakube/internal/emulator"
	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/option"
)

// Emulator is a running in-process emulator.
type Emulator struct {
	Server   *emulator.Server
	HTTP     *httptest.Server
	Endpoint string // http://127.0.0.1:PORT/compute/v1/
	Control  *emulator.Control
}

// Start runs an emulator for the test's lifetime. Projects default to
// "test-project"; latency defaults to "none".
func Start(t testing.TB, opts emulator.Options) *Emulator {
	t.Helper()
	if len(opts.Projects) == 0 {
		opts.Projects = []string{"test-project"}
	}
	if opts.Latency == "" {
		opts.Latency = emulator.LatencyNone
	}
	if opts.DataPlane && !opts.ExternalRange.IsValid() && !opts.InternalRange.IsValid() {
		opts.ExternalRange, opts.InternalRange = ClaimRanges(t)
	}
	srv, err := emulator.New(opts)
	if err != nil {
		t.Fatalf("start emulator: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
	})
	return &Emulator{Server: srv, HTTP: hs, Endpoint: hs.URL + "/compute/v1/", Control: emulator.NewControl(hs.URL)}
}

// Compute returns an unmodified official client talking to the emulator.
func (e *Emulator) Compute(t testing.TB) *compute.Service {
	t.Helper()
	svc, err := compute.NewService(context.Background(), option.WithEndpoint(e.Endpoint), option.WithoutAuthentication())
	if err != nil {
		t.Fatalf("compute client: %v", err)
	}
	return svc
}

// WaitOp waits with the operations' wait method until op is DONE (at most
// 10 s) and returns it; the caller checks op.Error.
func WaitOp(t testing.TB, svc *compute.Service, project string, op *compute.Operation) *compute.Operation {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for op.Status != "DONE" {
		if time.Now().After(deadline) {
			t.Fatalf("operation %s still %s", op.Name, op.Status)
		}
		var err error
		switch {
		case op.Zone != "":
			op, err = svc.ZoneOperations.Wait(project, path.Base(op.Zone), op.Name).Do()
		case op.Region != "":
			op, err = svc.RegionOperations.Wait(project, path.Base(op.Region), op.Name).Do()
		default:
			op, err = svc.GlobalOperations.Wait(project, op.Name).Do()
		}
		if err != nil {
			t.Fatalf("wait for operation: %v", err)
		}
	}
	return op
}

// ClaimRanges reserves loopback ranges for one data-plane emulator, unique
// across every test process on the machine: Go runs packages' tests in
// parallel, and two emulators binding the same IP would answer for each
// other. A range is held by listening on a sentinel address inside it until
// the test ends (the claim is released after the emulator's own cleanup,
// which Start registers later). Slot k gives external 127.(64+k).0.0/16 and
// internal 127.(128+2k).0.0/15, which splits into /20 region subnets.
func ClaimRanges(t testing.TB) (external, internal netip.Prefix) {
	t.Helper()
	start := os.Getpid() % claimSlots
	for i := 0; i < claimSlots; i++ {
		k := (start + i) % claimSlots
		l, err := net.Listen("tcp", fmt.Sprintf("127.%d.255.254:%d", 64+k, claimPort))
		if err != nil {
			continue // another emulator holds this slot
		}
		t.Cleanup(func() { l.Close() })
		return netip.MustParsePrefix(fmt.Sprintf("127.%d.0.0/16", 64+k)), netip.MustParsePrefix(fmt.Sprintf("127.%d.0.0/15", 128+2*k))
	}
	t.Fatalf("no free loopback range: %d data-plane emulators already run on this machine", claimSlots)
	return
}

const (
	claimSlots = 64
	claimPort  = 65001
)
