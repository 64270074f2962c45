package gce_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/googleapi"

	"github.com/hakube/hakube/internal/emulator"
	"github.com/hakube/hakube/internal/emulator/emulatortest"
	"github.com/hakube/hakube/internal/gce"
)

const project = "test-project"

func newCloud(t *testing.T, opts emulator.Options) (*gce.Cloud, *emulatortest.Emulator) {
	t.Helper()
	emu := emulatortest.Start(t, opts)
	c, err := gce.New(context.Background(), gce.Options{
		Project: project, Endpoint: emu.Endpoint,
		RetryInitial: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond, RequestsPerSecond: 1000,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, emu
}

func TestMutationWaitsUntilDone(t *testing.T) {
	c, emu := newCloud(t, emulator.Options{Latency: emulator.LatencyFast})
	ctx := context.Background()
	if err := c.InsertAddress(ctx, gce.RegionalKey("europe-west1", "ip1"), &compute.Address{Name: "ip1"}); err != nil {
		t.Fatal(err)
	}
	a, err := c.GetAddress(ctx, gce.RegionalKey("europe-west1", "ip1"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Status != "RESERVED" {
		t.Errorf("status after insert returned = %q, want RESERVED (the insert must wait for DONE)", a.Status)
	}
	rc, err := emu.Control.RequestsSince(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Counts["compute.regionOperations.wait"] == 0 {
		t.Errorf("no regionOperations.wait call; counts %v", rc.Counts)
	}
	if rc.Counts["compute.regionOperations.get"] != 0 {
		t.Errorf("operations polled with get (%d); waits must use the wait method", rc.Counts["compute.regionOperations.get"])
	}
}

func TestRetriesReuseRequestID(t *testing.T) {
	c, emu := newCloud(t, emulator.Options{})
	ctx := context.Background()
	if _, err := emu.Control.AddFault(ctx, emulator.Fault{Method: "addresses.insert", Code: 503, Count: 2}); err != nil {
		t.Fatal(err)
	}
	if err := c.InsertAddress(ctx, gce.RegionalKey("us-central1", "ip1"), &compute.Address{Name: "ip1"}); err != nil {
		t.Fatalf("insert after two 503s: %v", err)
	}
	rc, _ := emu.Control.RequestsSince(ctx, 0)
	if got := rc.Counts["compute.addresses.insert"]; got != 3 {
		t.Errorf("addresses.insert calls = %d, want 3 (two 503s, one success)", got)
	}
	// A repeated logical mutation is deduplicated by GCE only with the same
	// requestId: check the emulator saw one address, not three attempts.
	inv, _ := emu.Control.Inventory(ctx, project)
	n := 0
	for _, name := range inv.Names() {
		if name == "projects/test-project/regions/us-central1/addresses/ip1" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("address created %d times", n)
	}
}

func TestNoRetryOfWhatCannotSucceed(t *testing.T) {
	c, emu := newCloud(t, emulator.Options{})
	ctx := context.Background()
	for _, f := range []emulator.Fault{
		{Method: "addresses.insert", Code: 400, Reason: "invalid", Count: 1},
		{Method: "addresses.get", Code: 403, Reason: "forbidden", Count: 1},
	} {
		if _, err := emu.Control.AddFault(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.InsertAddress(ctx, gce.RegionalKey("us-central1", "ip1"), &compute.Address{Name: "ip1"}); err == nil {
		t.Fatal("insert with injected 400 succeeded")
	}
	if _, err := c.GetAddress(ctx, gce.RegionalKey("us-central1", "nope")); err == nil {
		t.Fatal("get with injected 403 succeeded")
	}
	rc, _ := emu.Control.RequestsSince(ctx, 0)
	if rc.Counts["compute.addresses.insert"] != 1 || rc.Counts["compute.addresses.get"] != 1 {
		t.Errorf("retried a non-retryable error: %v", rc.Counts)
	}
}

func TestRetryableReasons(t *testing.T) {
	for _, f := range []emulator.Fault{
		{Code: 429, Reason: "rateLimitExceeded"},
		{Code: 403, Reason: "rateLimitExceeded"},
		{Code: 400, Reason: "resourceNotReady"},
		{Code: 500, Reason: "internalError"},
	} {
		t.Run(fmt.Sprintf("%d-%s", f.Code, f.Reason), func(t *testing.T) {
			c, emu := newCloud(t, emulator.Options{})
			ctx := context.Background()
			f.Method, f.Count = "addresses.get", 2
			if _, err := emu.Control.AddFault(ctx, f); err != nil {
				t.Fatal(err)
			}
			_, err := c.GetAddress(ctx, gce.RegionalKey("us-central1", "missing"))
			if !gce.IsNotFound(err) {
				t.Errorf("after retries: err = %v, want the real 404", err)
			}
		})
	}
}

func TestOperationErrorBecomesError(t *testing.T) {
	c, emu := newCloud(t, emulator.Options{Latency: emulator.LatencyFast})
	ctx := context.Background()
	if _, err := emu.Control.AddFault(ctx, emulator.Fault{Method: "addresses.insert", Code: 403, Reason: "quotaExceeded",
		Message: "Quota 'STATIC_ADDRESSES' exceeded. Limit: 8.0 in region us-central1.", Delivery: "operation", Count: 1}); err != nil {
		t.Fatal(err)
	}
	err := c.InsertAddress(ctx, gce.RegionalKey("us-central1", "ip1"), &compute.Address{Name: "ip1"})
	if !hasReason(err, "quotaExceeded") {
		t.Fatalf("err = %v, want a quota error from inside the operation", err)
	}
	if _, err := c.GetAddress(ctx, gce.RegionalKey("us-central1", "ip1")); !gce.IsNotFound(err) {
		t.Errorf("failed insert left the address behind: %v", err)
	}
}

func TestDeleteOfMissingIsSuccess(t *testing.T) {
	c, _ := newCloud(t, emulator.Options{})
	if err := c.DeleteAddress(context.Background(), gce.RegionalKey("us-central1", "never-was")); err != nil {
		t.Errorf("delete of a missing address: %v, want nil", err)
	}
}

func TestListsFollowPages(t *testing.T) {
	c, emu := newCloud(t, emulator.Options{})
	ctx := context.Background()
	for i := 0; i < 7; i++ {
		fw := &compute.Firewall{Name: fmt.Sprintf("fw-%d", i), Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp", Ports: []string{"80"}}}}
		if err := c.InsertFirewall(ctx, gce.GlobalKey(fw.Name), fw); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.ListFirewalls(ctx, "name eq 'fw-.*'")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 7 {
		t.Errorf("listed %d firewalls, want 7", len(got))
	}
	_ = emu
}

func lockReq(holder string, pid int, op string, since time.Time) gce.LockRequest {
	return gce.LockRequest{Info: gce.LockInfo{Holder: holder, PID: pid, Operation: op, Since: since}, Alive: func(int) bool { return true }}
}

func lockHolder(t *testing.T, c *gce.Cloud) gce.LockInfo {
	t.Helper()
	a, err := c.GetAddress(context.Background(), gce.RegionalKey("us-central1", "lock-ip"))
	if err != nil {
		t.Fatal(err)
	}
	return gce.LockInfoOf(a.Labels)
}

func TestLockRefusesSecondHolder(t *testing.T) {
	c, _ := newCloud(t, emulator.Options{})
	ctx := context.Background()
	if err := c.InsertAddress(ctx, gce.RegionalKey("us-central1", "lock-ip"), &compute.Address{Name: "lock-ip"}); err != nil {
		t.Fatal(err)
	}
	since := time.Unix(1700000000, 0)
	alice := gce.LockInfo{Holder: "alice-host-1", PID: 11, Operation: "up", Since: since}
	l1, err := c.AcquireLock(ctx, gce.RegionalKey("us-central1", "lock-ip"), lockReq("alice-host-1", 11, "up", since))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.AcquireLock(ctx, gce.RegionalKey("us-central1", "lock-ip"), lockReq("bob-host-2", 22, "down", time.Now()))
	var locked *gce.LockedError
	if !errors.As(err, &locked) {
		t.Fatalf("second acquire: %v, want LockedError", err)
	}
	if diff := cmp.Diff(alice, locked.Info); diff != "" {
		t.Errorf("holder info (-want +got):\n%s", diff)
	}
	// Breaking a lock other than the one held changes nothing.
	req := lockReq("bob-host-2", 22, "down", time.Now())
	req.Break = &gce.LockInfo{Holder: "carol-host-3", PID: 33, Since: since}
	if _, err := c.AcquireLock(ctx, gce.RegionalKey("us-central1", "lock-ip"), req); !errors.As(err, &locked) {
		t.Fatalf("breaking another holder's lock: %v, want LockedError", err)
	}
	// Breaking the lock seen takes it over; the old holder's release leaves it alone.
	req.Break = &alice
	l2, err := c.AcquireLock(ctx, gce.RegionalKey("us-central1", "lock-ip"), req)
	if err != nil {
		t.Fatalf("break lock: %v", err)
	}
	if l2.Replaced == nil || !cmp.Equal(*l2.Replaced, alice) {
		t.Errorf("replaced %+v, want alice's lock", l2.Replaced)
	}
	if err := l1.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if info := lockHolder(t, c); info.Holder != "bob-host-2" || info.PID != 22 {
		t.Errorf("holder after stale release = %+v, want bob-host-2 pid 22", info)
	}
	if err := l2.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if info := lockHolder(t, c); info.Held() {
		t.Errorf("lock still held by %+v after release", info)
	}
}

// A lock of this identity whose process is gone is taken over; one whose
// process runs is not, and its error says to wait rather than to break it.
func TestLockDeadHolderOfSameIdentity(t *testing.T) {
	c, _ := newCloud(t, emulator.Options{})
	ctx := context.Background()
	if err := c.InsertAddress(ctx, gce.RegionalKey("us-central1", "lock-ip"), &compute.Address{Name: "lock-ip"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AcquireLock(ctx, gce.RegionalKey("us-central1", "lock-ip"), lockReq("me-laptop", 100, "up", time.Unix(1700000000, 0))); err != nil {
		t.Fatal(err)
	}
	live := lockReq("me-laptop", 200, "up", time.Now())
	_, err := c.AcquireLock(ctx, gce.RegionalKey("us-central1", "lock-ip"), live)
	var locked *gce.LockedError
	if !errors.As(err, &locked) || !locked.Alive || !strings.Contains(err.Error(), "still runs on this machine") {
		t.Fatalf("live holder: %v, want a refusal saying it still runs", err)
	}
	dead := live
	dead.Alive = func(pid int) bool { return pid != 100 }
	l, err := c.AcquireLock(ctx, gce.RegionalKey("us-central1", "lock-ip"), dead)
	if err != nil {
		t.Fatalf("dead holder: %v", err)
	}
	if l.Replaced == nil || l.Replaced.PID != 100 {
		t.Errorf("replaced %+v, want pid 100", l.Replaced)
	}
	if info := lockHolder(t, c); info.PID != 200 {
		t.Errorf("holder %+v, want pid 200", info)
	}
	// Another identity's dead-looking pid means nothing: it may run elsewhere.
	other := lockReq("ci-runner", 300, "up", time.Now())
	other.Alive = func(int) bool { return false }
	if _, err := c.AcquireLock(ctx, gce.RegionalKey("us-central1", "lock-ip"), other); !errors.As(err, &locked) {
		t.Errorf("other identity: %v, want LockedError", err)
	}
}

// Two runs breaking the same stale lock: one wins, the other is refused by
// the winner's lock (it may only break the lock it saw).
func TestLockBreakRaceHasOneWinner(t *testing.T) {
	c, _ := newCloud(t, emulator.Options{Latency: emulator.LatencyFast})
	ctx := context.Background()
	if err := c.InsertAddress(ctx, gce.RegionalKey("us-central1", "lock-ip"), &compute.Address{Name: "lock-ip"}); err != nil {
		t.Fatal(err)
	}
	stale := gce.LockInfo{Holder: "dead-host", PID: 7, Operation: "up", Since: time.Unix(1700000000, 0)}
	if _, err := c.AcquireLock(ctx, gce.RegionalKey("us-central1", "lock-ip"), lockReq(stale.Holder, stale.PID, stale.Operation, stale.Since)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, refused := 0, 0
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			req := lockReq(fmt.Sprintf("racer-%d", i), 1000+i, "up", time.Now())
			req.Break = &stale
			_, err := c.AcquireLock(ctx, gce.RegionalKey("us-central1", "lock-ip"), req)
			var locked *gce.LockedError
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.As(err, &locked):
				refused++
			default:
				t.Errorf("racer %d: %v", i, err)
			}
		}(i)
	}
	wg.Wait()
	if wins != 1 || refused != 4 {
		t.Errorf("%d won and %d were refused, want 1 and 4", wins, refused)
	}
}

func TestLockRaceHasOneWinner(t *testing.T) {
	c, _ := newCloud(t, emulator.Options{Latency: emulator.LatencyFast})
	ctx := context.Background()
	if err := c.InsertAddress(ctx, gce.RegionalKey("us-central1", "lock-ip"), &compute.Address{Name: "lock-ip"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := c.AcquireLock(ctx, gce.RegionalKey("us-central1", "lock-ip"), lockReq(fmt.Sprintf("run-%d", i), i+1, "up", time.Now()))
			if err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d runs got the lock, want exactly 1", wins)
	}
}

// hasReason reports whether err is a Compute error with the reason, from a
// call or from inside an operation.
func hasReason(err error, reason string) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && slices.ContainsFunc(ge.Errors, func(e googleapi.ErrorItem) bool { return e.Reason == reason })
}

// TestLockFromAStaleRead: a lock written from an address read before
// another run took the lock is refused by its fingerprint, and one read
// while another held it is taken once that run has let go. A fresh read
// costs no call.
func TestLockFromAStaleRead(t *testing.T) {
	c, _ := newCloud(t, emulator.Options{})
	ctx := context.Background()
	key := gce.RegionalKey("us-central1", "lock-ip")
	if err := c.InsertAddress(ctx, key, &compute.Address{Name: "lock-ip"}); err != nil {
		t.Fatal(err)
	}
	free, err := c.GetAddress(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	alice, err := c.AcquireLock(ctx, key, lockReq("alice-host-1", 11, "up", time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	bob := lockReq("bob-host-2", 22, "down", time.Now())
	bob.Seen = free
	var locked *gce.LockedError
	if _, err := c.AcquireLock(ctx, key, bob); !errors.As(err, &locked) || locked.Info.Holder != "alice-host-1" {
		t.Fatalf("lock from a read that saw it free, while alice holds it: %v, want refused naming alice", err)
	}

	held, err := c.GetAddress(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.Release(ctx); err != nil {
		t.Fatal(err)
	}
	bob.Seen = held
	if _, err := c.AcquireLock(ctx, key, bob); err != nil {
		t.Fatalf("lock from a read that saw alice's lock, after she let go: %v", err)
	}
	if info := lockHolder(t, c); info.Holder != "bob-host-2" {
		t.Errorf("holder = %+v, want bob", info)
	}

	current, err := c.GetAddress(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	again := lockReq("bob-host-2", 22, "down", time.Now()) // the same process
	again.Seen = current
	before := c.Stats().Snapshot()
	if _, err := c.AcquireLock(ctx, key, again); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]gce.MethodCount{{Method: "addresses.setLabels", Count: 1}}, gce.Diff(before, c.Stats().Snapshot())); diff != "" {
		t.Errorf("calls of a lock from a fresh read (-want +got):\n%s", diff)
	}
}
