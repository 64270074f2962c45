package emulator_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hakube/hakube/internal/emulator"
	compute "google.golang.org/api/compute/v1"
)

func TestControlInventory(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{Projects: []string{proj, "second-project"}})
	e.do(t, e.svc.Firewalls.Insert(proj, &compute.Firewall{Name: "fw", Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp"}}}))
	e.do(t, e.svc.TargetPools.Insert(proj, region, &compute.TargetPool{Name: "pool"}))
	inv, err := e.Control.Inventory(e.ctx, proj)
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Projects) != 1 {
		t.Errorf("inventory of one project lists %d", len(inv.Projects))
	}
	got := inv.Names()
	for _, want := range []string{
		"projects/test-project/global/firewalls/fw",
		"projects/test-project/regions/us-central1/targetPools/pool",
		"projects/test-project/global/networks/default",
		"projects/test-project/regions/us-central1/subnetworks/default",
	} {
		if !containsStr(got, want) {
			t.Errorf("inventory lacks %s", want)
		}
	}
	all, err := e.Control.Inventory(e.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Projects) != 2 || len(all.Names()) <= len(got) {
		t.Errorf("whole inventory: %d projects, %d names", len(all.Projects), len(all.Names()))
	}
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestControlRequestCounts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	if _, err := e.svc.Zones.List(proj).Do(); err != nil {
		t.Fatal(err)
	}
	m1, err := e.Control.Mark(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.svc.Networks.Get(proj, "default").Do()
	e.svc.Networks.Get(proj, "missing").Do() // errors count too
	e.svc.Networks.List(proj).Do()
	e.do(t, e.svc.Addresses.Insert(proj, region, &compute.Address{Name: "ip"}))
	m2, err := e.Control.Mark(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.svc.Networks.List(proj).Do()

	rc, err := e.Control.RequestsSince(e.ctx, m1)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"compute.networks.get": 2, "compute.networks.list": 2, "compute.addresses.insert": 1}
	// e.do may add operation reads; they do not happen with latency none.
	if d := cmp.Diff(want, rc.Counts); d != "" || rc.Total != 5 || rc.Mark != m1 {
		t.Errorf("since mark %d: total %d (-want +got):\n%s", m1, rc.Total, d)
	}
	rc, _ = e.Control.RequestsSince(e.ctx, m2)
	if d := cmp.Diff(map[string]int64{"compute.networks.list": 1}, rc.Counts); d != "" {
		t.Errorf("since mark %d (-want +got):\n%s", m2, d)
	}
	rc, _ = e.Control.RequestsSince(e.ctx, 0)
	if rc.Counts["compute.zones.list"] != 1 || rc.Total != 6 {
		t.Errorf("since start: %v", rc.Counts)
	}
	if _, err := e.Control.RequestsSince(e.ctx, 99); err == nil {
		t.Error("unknown mark accepted")
	}
}

// TestControlReset: everything goes back to a fresh project.
func TestControlReset(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	seed := func() []string {
		inv, err := e.Control.Inventory(e.ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, n := range inv.Names() {
			if i := strings.Index(n, "/routes/default-route-"); i >= 0 {
				n = n[:i] + "/routes/default-route-*" // random suffix
			}
			out = append(out, n)
		}
		return out
	}
	before := seed()
	e.do(t, e.svc.Addresses.Insert(proj, region, &compute.Address{Name: "ip"}))
	e.do(t, e.svc.Firewalls.Delete(proj, "default-allow-ssh"))
	if _, err := e.Control.AddFault(e.ctx, emulator.Fault{Method: "*"}); err != nil {
		t.Fatal(err)
	}
	if err := e.Control.SetZone(e.ctx, zone, "DOWN"); err != nil {
		t.Fatal(err)
	}
	if err := e.Control.SetQuota(e.ctx, emulator.QuotaLimit{Project: proj, Region: region, Metric: "STATIC_ADDRESSES", Limit: 0}); err != nil {
		t.Fatal(err)
	}
	if err := e.Control.SetRateLimits(e.ctx, map[string]int{"read_requests": 1}); err != nil {
		t.Fatal(err)
	}
	if err := e.Control.Reset(e.ctx); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(before, seed()); d != "" {
		t.Errorf("inventory after reset (-seed +got):\n%s", d)
	}
	if f, err := e.Control.Faults(e.ctx); err != nil || len(f) != 0 {
		t.Errorf("faults after reset: %v %v", err, f)
	}
	for i := 0; i < 3; i++ { // no rate limit, no fault
		z, err := e.svc.Zones.Get(proj, zone).Do()
		if err != nil || z.Status != "UP" {
			t.Fatalf("zone after reset: %v %v", err, z)
		}
	}
	e.do(t, e.svc.Addresses.Insert(proj, region, &compute.Address{Name: "ip"})) // quota back to default
	if rc, _ := e.Control.RequestsSince(e.ctx, 0); rc.Total != 4 {
		t.Errorf("counters not reset: %v", rc.Counts)
	}
}

func TestControlLatencyPreset(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	insert := func(name string) *compute.Operation {
		op, err := e.svc.Firewalls.Insert(proj, &compute.Firewall{Name: name, Allowed: []*compute.FirewallAllowed{{IPProtocol: "icmp"}}}).Do()
		if err != nil {
			t.Fatal(err)
		}
		return op
	}
	if op := insert("a"); op.Status != "DONE" {
		t.Errorf("none: %s", op.Status)
	}
	if err := e.Control.SetLatency(e.ctx, emulator.Latency{Preset: emulator.LatencyFast}); err != nil {
		t.Fatal(err)
	}
	var l emulator.Latency
	code, b := e.rawBytes(t, "GET", "/emulator/v1/latency", nil)
	if err := json.Unmarshal(b, &l); err != nil || code != 200 || l.Preset != "fast" || l.TimeScale != 1 {
		t.Errorf("GET latency: %d %s", code, b)
	}
	op := insert("b")
	if op.Status != "RUNNING" {
		t.Errorf("fast: %s", op.Status)
	}
	e.wait(t, op)
	if err := e.Control.SetLatency(e.ctx, emulator.Latency{Preset: emulator.LatencyNone}); err != nil {
		t.Fatal(err)
	}
	if op := insert("c"); op.Status != "DONE" {
		t.Errorf("none again: %s", op.Status)
	}
	if err := e.Control.SetLatency(e.ctx, emulator.Latency{Preset: "glacial"}); err == nil {
		t.Error("unknown preset accepted")
	}
}

// TestControlFaults covers rule matching (method globs, names), count, skip,
// rate, custom errors, both deliveries and removal.
func TestControlFaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{Seed: 7})
	add := func(f emulator.Fault) emulator.Fault {
		t.Helper()
		got, err := e.Control.AddFault(e.ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	get := func() error { _, err := e.svc.Networks.Get(proj, "default").Do(); return err }
	t.Cleanup(func() { _ = e.Control.ClearFaults(e.ctx) })

	t.Run("glob", func(t *testing.T) {
		add(emulator.Fault{Method: "compute.firewalls.*"})
		_, err := e.svc.Firewalls.Get(proj, "default-allow-ssh").Do()
		apiErr(t, err, 503, "backendError")
		_, err = e.svc.Firewalls.Insert(proj, &compute.Firewall{Name: "x", Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp"}}}).Do()
		apiErr(t, err, 503, "backendError")
		if err := get(); err != nil {
			t.Errorf("networks.get hit by a firewalls fault: %v", err)
		}
		e.Control.ClearFaults(e.ctx)
	})
	t.Run("count", func(t *testing.T) {
		f := add(emulator.Fault{Method: "networks.get", Count: 2})
		apiErr(t, get(), 503, "backendError")
		apiErr(t, get(), 503, "backendError")
		if err := get(); err != nil {
			t.Errorf("third call: %v", err)
		}
		list, _ := e.Control.Faults(e.ctx)
		if len(list) != 1 || list[0].ID != f.ID || list[0].Fired != 2 || list[0].Method != "compute.networks.get" {
			t.Errorf("faults %+v", list)
		}
		e.Control.ClearFaults(e.ctx)
	})
	t.Run("skip", func(t *testing.T) {
		add(emulator.Fault{Method: "networks.get", Skip: 1, Count: 1})
		if err := get(); err != nil {
			t.Errorf("first call should pass: %v", err)
		}
		apiErr(t, get(), 503, "backendError")
		if err := get(); err != nil {
			t.Errorf("third call: %v", err)
		}
		e.Control.ClearFaults(e.ctx)
	})
	t.Run("rate", func(t *testing.T) {
		add(emulator.Fault{Method: "networks.get", Rate: 0.5})
		failed := 0
		for i := 0; i < 100; i++ {
			if get() != nil {
				failed++
			}
		}
		if failed < 25 || failed > 75 {
			t.Errorf("rate 0.5 failed %d of 100", failed)
		}
		e.Control.ClearFaults(e.ctx)
	})
	t.Run("name-and-custom-error", func(t *testing.T) {
		add(emulator.Fault{Method: "addresses.insert", Name: "doomed-*", Code: 429, Reason: "rateLimitExceeded", Message: "slow down"})
		_, err := e.svc.Addresses.Insert(proj, region, &compute.Address{Name: "doomed-1"}).Do()
		ge := apiErr(t, err, 429, "rateLimitExceeded")
		if ge.Message != "slow down" {
			t.Errorf("message %q", ge.Message)
		}
		e.do(t, e.svc.Addresses.Insert(proj, region, &compute.Address{Name: "fine"}))
		e.Control.ClearFaults(e.ctx)
	})
	t.Run("operation-delivery", func(t *testing.T) {
		add(emulator.Fault{Method: "addresses.delete", Delivery: "operation", Code: 400, Reason: "resourceInUseByAnotherResource"})
		// Reads never run operations, so they pass.
		if _, err := e.svc.Addresses.Get(proj, region, "fine").Do(); err != nil {
			t.Fatal(err)
		}
		e.fails(t, e.svc.Addresses.Delete(proj, region, "fine"), "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE", 400)
		if _, err := e.svc.Addresses.Get(proj, region, "fine").Do(); err != nil {
			t.Errorf("address gone after a failed delete: %v", err)
		}
		e.Control.ClearFaults(e.ctx)
	})
	t.Run("remove-by-id", func(t *testing.T) {
		f := add(emulator.Fault{Method: "networks.get"})
		apiErr(t, get(), 503, "backendError")
		code, _ := e.rawBytes(t, "DELETE", "/emulator/v1/faults/"+f.ID, nil)
		if code != 200 {
			t.Fatalf("delete fault: %d", code)
		}
		if err := get(); err != nil {
			t.Errorf("after removal: %v", err)
		}
		if code, _ := e.rawBytes(t, "DELETE", "/emulator/v1/faults/"+f.ID, nil); code != 404 {
			t.Errorf("second removal: %d", code)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		for _, f := range []emulator.Fault{{}, {Method: "networks.get", Delivery: "pigeon"}, {Method: "networks.get", Rate: 2}, {Method: "[", Count: 1}} {
			if _, err := e.Control.AddFault(e.ctx, f); err == nil {
				t.Errorf("fault %+v accepted", f)
			}
		}
	})
}

// TestControlZoneDown: a DOWN zone shows in zones.get, and zonal work fails
// inside its operation.
func TestControlZoneDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	if err := e.Control.SetZone(e.ctx, "us-central1-b", "DOWN"); err != nil {
		t.Fatal(err)
	}
	z, err := e.svc.Zones.Get(proj, "us-central1-b").Do()
	if err != nil || z.Status != "DOWN" {
		t.Fatalf("zones.get: %v %+v", err, z)
	}
	_, b := e.rawBytes(t, "GET", "/emulator/v1/zones", nil)
	var zones struct{ Zones []emulator.ZoneStatus }
	if err := json.Unmarshal(b, &zones); err != nil {
		t.Fatal(err)
	}
	down := 0
	for _, zs := range zones.Zones {
		if zs.Status == "DOWN" {
			down++
			if zs.Zone != "us-central1-b" {
				t.Errorf("control zones: %s DOWN", zs.Zone)
			}
		}
	}
	if down != 1 {
		t.Errorf("control zones: %d DOWN, want 1", down)
	}
	op := e.fails(t, e.svc.Disks.Insert(proj, "us-central1-b", &compute.Disk{Name: "d", SizeGb: 10}), "ZONE_RESOURCE_POOL_EXHAUSTED", 503)
	if op.Zone != link("zones/us-central1-b") {
		t.Errorf("op zone %s", op.Zone)
	}
	_, err = e.svc.Disks.Get(proj, "us-central1-b", "d").Do()
	apiErr(t, err, 404, "notFound")
	e.do(t, e.svc.Disks.Insert(proj, "us-central1-c", &compute.Disk{Name: "d", SizeGb: 10}))

	r, _ := e.svc.Regions.Get(proj, region).Do()
	if r.Status != "UP" {
		t.Errorf("region with one zone DOWN: %s", r.Status)
	}
	for _, zn := range []string{"europe-west1-b", "europe-west1-c", "europe-west1-d"} {
		e.Control.SetZone(e.ctx, zn, "DOWN")
	}
	if r, _ := e.svc.Regions.Get(proj, other).Do(); r.Status != "DOWN" {
		t.Errorf("region with every zone DOWN: %s", r.Status)
	}
	if err := e.Control.SetZone(e.ctx, "us-central1-b", "UP"); err != nil {
		t.Fatal(err)
	}
	e.do(t, e.svc.Disks.Insert(proj, "us-central1-b", &compute.Disk{Name: "d", SizeGb: 10}))
	if err := e.Control.SetZone(e.ctx, "mars-1a", "DOWN"); err == nil {
		t.Error("unknown zone accepted")
	}
}

func TestControlQuotas(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	if err := e.Control.SetQuota(e.ctx, emulator.QuotaLimit{Project: proj, Metric: "FIREWALLS", Limit: 4}); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.Firewalls.Insert(proj, &compute.Firewall{Name: "fifth", Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp"}}}).Do()
	ge := apiErr(t, err, 403, "quotaExceeded")
	if ge.Message != "Quota 'FIREWALLS' exceeded. Limit: 4.0 globally." {
		t.Errorf("message %q", ge.Message)
	}
	p, err := e.svc.Projects.Get(proj).Do()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range p.Quotas {
		if q.Metric == "FIREWALLS" && (q.Limit != 4 || q.Usage != 4) {
			t.Errorf("projects.get quota %+v", q)
		}
	}
	for _, bad := range []emulator.QuotaLimit{
		{Project: proj, Metric: "UNICORNS", Limit: 1},
		{Project: "nobody-project", Metric: "FIREWALLS", Limit: 1},
		{Project: proj, Region: "mars-north1", Metric: "CPUS", Limit: 1},
	} {
		if err := e.Control.SetQuota(e.ctx, bad); err == nil {
			t.Errorf("quota %+v accepted", bad)
		}
	}
}

// TestControlRateLimits: over the per-minute limit a group answers 403
// rateLimitExceeded in the usageLimits domain; other groups are untouched.
func TestControlRateLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	if err := e.Control.SetRateLimits(e.ctx, map[string]int{"read_requests": 2}); err != nil {
		t.Fatal(err)
	}
	// Five calls: even if a minute boundary falls among them, one is over.
	limited := 0
	for i := 0; i < 5; i++ {
		code, body := e.raw(t, "GET", "global/networks/default", nil)
		if code == 200 {
			continue
		}
		limited++
		item := body["error"].(map[string]any)["errors"].([]any)[0].(map[string]any)
		if code != 403 || item["reason"] != "rateLimitExceeded" || item["domain"] != "usageLimits" {
			t.Errorf("limited call: %d %v", code, item)
		}
	}
	if limited == 0 {
		t.Error("no call was rate limited")
	}
	for i := 0; i < 5; i++ {
		if _, err := e.svc.Networks.List(proj).Do(); err != nil {
			t.Fatalf("list_requests limited by a read_requests limit: %v", err)
		}
	}
	if err := e.Control.SetRateLimits(e.ctx, map[string]int{"warp_requests": 1}); err == nil {
		t.Error("unknown rate group accepted")
	}
	if err := e.Control.SetRateLimits(e.ctx, map[string]int{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Networks.Get(proj, "default").Do(); err != nil {
		t.Errorf("after clearing limits: %v", err)
	}
}
