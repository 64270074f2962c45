package emulator_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hakube/hakube/internal/emulator"
	compute "google.golang.org/api/compute/v1"
)

// TestAddressLifecycle: RESERVING while the insert runs, RESERVED after,
// with exactly the recorded keys.
func TestAddressLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{Latency: emulator.LatencyFast, TimeScale: 5})
	op, err := e.svc.Addresses.Insert(proj, region, &compute.Address{Name: "ip", Labels: map[string]string{"ignored": "yes"}}).Do()
	if err != nil {
		t.Fatal(err)
	}
	a, err := e.svc.Addresses.Get(proj, region, "ip").Do()
	if err != nil || a.Status != "RESERVING" {
		t.Fatalf("during insert: %v %+v", err, a)
	}
	e.wait(t, op)
	_, got := e.raw(t, "GET", "regions/us-central1/addresses/ip", nil)
	for _, k := range []string{"id", "creationTimestamp", "address", "labelFingerprint"} {
		if _, ok := got[k].(string); !ok {
			t.Errorf("%s = %#v, want a string", k, got[k])
		}
		delete(got, k)
	}
	want := map[string]any{
		"kind": "compute#address", "name": "ip", "description": "", "status": "RESERVED",
		"addressType": "EXTERNAL", "networkTier": "PREMIUM",
		"region": link("regions/us-central1"), "selfLink": link("regions/us-central1/addresses/ip"),
	}
	// No labels (insert-time labels are ignored), no purpose, no users.
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("address (-want +got):\n%s", d)
	}
}

func TestAddressLabels(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{Latency: emulator.LatencyFast})
	op, err := e.svc.Addresses.Insert(proj, region, &compute.Address{Name: "ip", Labels: map[string]string{"a": "b"}}).Do()
	if err != nil {
		t.Fatal(err)
	}
	e.wait(t, op)
	a, _ := e.svc.Addresses.Get(proj, region, "ip").Do()
	if len(a.Labels) != 0 {
		t.Errorf("insert-time labels applied: %v", a.Labels)
	}
	set := func(fp string, labels map[string]string) (*compute.Operation, error) {
		return e.svc.Addresses.SetLabels(proj, region, "ip", &compute.RegionSetLabelsRequest{LabelFingerprint: fp, Labels: labels}).Do()
	}
	op, err = set(a.LabelFingerprint, map[string]string{"cluster": "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if op.Status != "DONE" || op.Progress != 100 || op.OperationType != "setLabels" {
		t.Errorf("setLabels: %s %d %s, want DONE in the response", op.Status, op.Progress, op.OperationType)
	}
	b, _ := e.svc.Addresses.Get(proj, region, "ip").Do()
	if !cmp.Equal(b.Labels, map[string]string{"cluster": "c1"}) || b.LabelFingerprint == a.LabelFingerprint {
		t.Errorf("after setLabels: %v %s", b.Labels, b.LabelFingerprint)
	}
	_, err = set(a.LabelFingerprint, map[string]string{"cluster": "c2"})
	ge := apiErr(t, err, 412, "conditionNotMet")
	if ge.Message != "Labels fingerprint either invalid or resource labels have changed" {
		t.Errorf("message %q", ge.Message)
	}
	_, err = set("", map[string]string{"cluster": "c2"})
	apiErr(t, err, 412, "conditionNotMet")
}

// TestAddressInUse: a forwarding rule makes the address IN_USE; deleting it
// then is allowed (GCE leaves the IP with its user).
func TestAddressInUse(t *testing.T) {
	t.Parallel()
	e := lbEnv(t, emulator.Options{})
	a := e.address(t, region, "vip")
	e.do(t, e.svc.ForwardingRules.Insert(proj, region, &compute.ForwardingRule{Name: "fr", IPAddress: a.Address, Target: poolRef}))
	got, _ := e.svc.Addresses.Get(proj, region, "vip").Do()
	if got.Status != "IN_USE" || !cmp.Equal(got.Users, []string{link("regions/us-central1/forwardingRules/fr")}) {
		t.Fatalf("address %s users %v", got.Status, got.Users)
	}
	// Another rule's region cannot use it.
	e.do(t, e.svc.TargetPools.Insert(proj, other, &compute.TargetPool{Name: "pool"}))
	_, err := e.svc.ForwardingRules.Insert(proj, other, &compute.ForwardingRule{Name: "far", IPAddress: a.Address, Target: "pool"}).Do()
	apiErr(t, err, 400, "invalid")

	e.do(t, e.svc.Addresses.Delete(proj, region, "vip"))
	_, err = e.svc.Addresses.Get(proj, region, "vip").Do()
	apiErr(t, err, 404, "notFound")
	if fr := e.rule(t, "fr"); fr.IPAddress != a.Address {
		t.Errorf("rule lost its IP: %s", fr.IPAddress)
	}
	// The IP is still taken by the rule.
	_, err = e.svc.Addresses.Insert(proj, region, &compute.Address{Name: "again", Address: a.Address}).Do()
	apiErr(t, err, 400, "invalid")
}

func TestAddressQuota(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	if err := e.Control.SetQuota(e.ctx, emulator.QuotaLimit{Project: proj, Region: region, Metric: "STATIC_ADDRESSES", Limit: 1}); err != nil {
		t.Fatal(err)
	}
	e.do(t, e.svc.Addresses.Insert(proj, region, &compute.Address{Name: "one"}))
	code, body := e.raw(t, "POST", "regions/us-central1/addresses", map[string]any{"name": "two"})
	item := body["error"].(map[string]any)["errors"].([]any)[0].(map[string]any)
	want := map[string]any{"reason": "quotaExceeded", "domain": "usageLimits",
		"message": "Quota 'STATIC_ADDRESSES' exceeded. Limit: 1.0 in region us-central1."}
	if d := cmp.Diff(want, item); code != 403 || d != "" {
		t.Errorf("status %d, error item (-want +got):\n%s", code, d)
	}
	r, err := e.svc.Regions.Get(proj, region).Do()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range r.Quotas {
		if q.Metric == "STATIC_ADDRESSES" && (q.Limit != 1 || q.Usage != 1) {
			t.Errorf("regions.get quota %+v", q)
		}
	}
	e.do(t, e.svc.Addresses.Insert(proj, other, &compute.Address{Name: "two"}))
}

func TestAddressInternal(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	e.do(t, e.svc.Addresses.Insert(proj, region, &compute.Address{Name: "int", AddressType: "INTERNAL"}))
	a, err := e.svc.Addresses.Get(proj, region, "int").Do()
	if err != nil {
		t.Fatal(err)
	}
	if a.Purpose != "GCE_ENDPOINT" || a.Subnetwork != link("regions/us-central1/subnetworks/default") || a.Address == "" || a.NetworkTier != "PREMIUM" {
		t.Errorf("internal address %+v", a)
	}
	sn, _ := e.svc.Subnetworks.Get(proj, region, "default").Do()
	if !prefixContains(t, sn.IpCidrRange, a.Address) {
		t.Errorf("internal IP %s outside %s", a.Address, sn.IpCidrRange)
	}
}

func TestAddressDeleteProgresses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{Latency: emulator.LatencyFast, TimeScale: 5})
	op, err := e.svc.Addresses.Insert(proj, region, &compute.Address{Name: "ip"}).Do()
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Addresses.Delete(proj, region, "ip").Do()
	apiErr(t, err, 400, "resourceNotReady")
	e.wait(t, op)
	began := time.Now()
	op, err = e.svc.Addresses.Delete(proj, region, "ip").Do()
	if err != nil || op.Status != "RUNNING" {
		t.Fatalf("delete: %v %v", err, op)
	}
	if _, err := e.svc.Addresses.Get(proj, region, "ip").Do(); err != nil {
		t.Errorf("address gone before its delete finished: %v", err)
	}
	e.wait(t, op)
	_, err = e.svc.Addresses.Get(proj, region, "ip").Do()
	apiErr(t, err, 404, "notFound")
	if time.Since(began) > 3*time.Second {
		t.Errorf("delete took %v", time.Since(began))
	}
}

func prefixContains(t *testing.T, cidr, ip string) bool {
	t.Helper()
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		t.Fatalf("bad range %q: %v", cidr, err)
	}
	a, err := netip.ParseAddr(ip)
	return err == nil && p.Contains(a)
}
