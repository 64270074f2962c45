package gce_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	compute "google.golang.org/api/compute/v1"

	"github.com/hakube/hakube/internal/emulator"
	"github.com/hakube/hakube/internal/gce"
)

// notFound answers every request as GCE answers a get of a missing resource.
var notFound = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	fmt.Fprint(w, `{"error":{"code":404,"message":"not found","errors":[{"reason":"notFound","message":"not found"}]}}`)
})

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestUnreachableEndpointFailsFast points the client at endpoints that
// cannot work and checks the error comes after the attempts the failure
// deserves (one for what cannot succeed, refusedAttempts for a port nothing
// listens on) and names the endpoint and what to check.
func TestUnreachableEndpointFailsFast(t *testing.T) {
	plain := httptest.NewServer(notFound)
	defer plain.Close()
	untrusted := httptest.NewUnstartedServer(notFound)
	untrusted.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	untrusted.StartTLS()
	defer untrusted.Close()
	closed := closedAddr(t)
	// DNS answers NXDOMAIN for this host (a resolver of our own, so the
	// test does not depend on the machine's DNS).
	nxdomain := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}}}
	tests := []struct {
		name     string
		endpoint string
		client   *http.Client
		attempts int
		say      []string
	}{
		{"https to a plain HTTP server", "https://" + plain.Listener.Addr().String() + "/compute/v1/", nil, 1,
			[]string{plain.Listener.Addr().String(), "plain HTTP", "http://", "--endpoint"}},
		{"nothing listens", "http://" + closed + "/compute/v1/", nil, 3,
			[]string{closed, "connection refused", "--endpoint", "refused 3 times"}},
		{"untrusted certificate", "https://" + untrusted.Listener.Addr().String() + "/compute/v1/", nil, 1,
			[]string{untrusted.Listener.Addr().String(), "certificate", "--endpoint"}},
		{"unknown host", "http://compute.example.invalid/compute/v1/", nxdomain, 1,
			[]string{"compute.example.invalid", "DNS", "--endpoint"}},
		{"invalid port", "http://127.0.0.1:99999/compute/v1/", nil, 1,
			[]string{"127.0.0.1:99999", "not a valid URL", "--endpoint"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := gce.New(context.Background(), gce.Options{Project: project, Endpoint: tt.endpoint, HTTPClient: tt.client,
				RetryInitial: time.Millisecond, RetryMax: 2 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.GetAddress(context.Background(), gce.RegionalKey("us-central1", "ip1"))
			if err == nil {
				t.Fatal("the call succeeded")
			}
			if got := c.Stats().Snapshot()["addresses.get"]; got != tt.attempts {
				t.Errorf("attempts = %d, want %d (err: %v)", got, tt.attempts, err)
			}
			for _, want := range tt.say {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

// TestRefusedAfterAnswerGetsTheFullBudget: once the endpoint has answered, a
// refused connection is a blip worth the full retry budget, and from the
// third attempt on each retry is announced at warning level (shown by
// default), naming the host and the attempt.
func TestRefusedAfterAnswerGetsTheFullBudget(t *testing.T) {
	srv := httptest.NewServer(notFound)
	host := srv.Listener.Addr().String()
	core, logs := observer.New(zapcore.WarnLevel)
	c, err := gce.New(context.Background(), gce.Options{Project: project, Endpoint: srv.URL + "/compute/v1/",
		Logger: zap.New(core), RetryInitial: time.Millisecond, RetryMax: 2 * time.Millisecond, RetryAttempts: 5})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.GetAddress(ctx, gce.RegionalKey("us-central1", "ip1")); !gce.IsNotFound(err) {
		t.Fatalf("first get: %v, want a 404", err)
	}
	srv.Close()
	if _, err := c.GetAddress(ctx, gce.RegionalKey("us-central1", "ip1")); err == nil || !strings.Contains(err.Error(), host) {
		t.Fatalf("get after the server went: %v, want an error naming %s", err, host)
	}
	if got := c.Stats().Snapshot()["addresses.get"]; got != 1+5 {
		t.Errorf("attempts = %d, want 1 + 5", got)
	}
	var got []string
	for _, e := range logs.All() {
		msg, _, _ := strings.Cut(e.Message, ": ")
		_, tail, _ := strings.Cut(e.Message, "; ")
		got = append(got, msg+" … "+tail)
	}
	want := []string{
		"Compute API unreachable at " + host + " … retrying (attempt 3 of 5)",
		"Compute API unreachable at " + host + " … retrying (attempt 4 of 5)",
		"Compute API unreachable at " + host + " … retrying (attempt 5 of 5)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

// TestParallelCallsShareTheirWarnings: calls that fail alike at once (a
// cluster's observation reads eight things in parallel) say so in one line
// per attempt, not one per call.
func TestParallelCallsShareTheirWarnings(t *testing.T) {
	srv := httptest.NewServer(notFound)
	core, logs := observer.New(zapcore.WarnLevel)
	c, err := gce.New(context.Background(), gce.Options{Project: project, Endpoint: srv.URL + "/compute/v1/",
		Logger: zap.New(core), RetryInitial: time.Millisecond, RetryMax: 2 * time.Millisecond, RetryAttempts: 4})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.GetAddress(ctx, gce.RegionalKey("us-central1", "ip1")); !gce.IsNotFound(err) {
		t.Fatalf("first get: %v, want a 404", err)
	}
	srv.Close()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = c.GetAddress(ctx, gce.RegionalKey("us-central1", "ip1"))
		}()
	}
	wg.Wait()
	if got := c.Stats().Snapshot()["addresses.get"]; got != 1+8*4 {
		t.Fatalf("attempts = %d, want 1 + 8 × 4", got)
	}
	var got []string
	for _, e := range logs.All() {
		_, tail, _ := strings.Cut(e.Message, "; ")
		got = append(got, tail)
	}
	sort.Strings(got)
	if diff := cmp.Diff([]string{"retrying (attempt 3 of 4)", "retrying (attempt 4 of 4)"}, got); diff != "" {
		t.Errorf("warnings of eight parallel calls (-want +got):\n%s", diff)
	}
}

// TestMutationRetriesAreNotMultiplied: a mutation whose call keeps failing
// with a retryable error makes RetryAttempts calls, not RetryAttempts² (the
// logical-mutation loop retries failed operations only).
func TestMutationRetriesAreNotMultiplied(t *testing.T) {
	c, emu := newCloud(t, emulator.Options{})
	ctx := context.Background()
	if _, err := emu.Control.AddFault(ctx, emulator.Fault{Method: "addresses.insert", Code: 503, Count: 100}); err != nil {
		t.Fatal(err)
	}
	if err := c.InsertAddress(ctx, gce.RegionalKey("us-central1", "ip1"), &compute.Address{Name: "ip1"}); err == nil {
		t.Fatal("insert against a failing API succeeded")
	}
	rc, err := emu.Control.RequestsSince(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := rc.Counts["compute.addresses.insert"]; got != 8 {
		t.Errorf("addresses.insert calls = %d, want 8 (the default RetryAttempts)", got)
	}
}
