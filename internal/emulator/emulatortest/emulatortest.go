// Package emulatortest starts an in-process GCE emulator for tests and hands
// out official Compute clients pointed at it.
package emulatortest

import (
	"context"
	"net/http/httptest"
	"testing"

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
