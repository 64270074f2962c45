package emulator_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hakube/hakube/internal/emulator"
	compute "google.golang.org/api/compute/v1"
)

const poolRef = "regions/us-central1/targetPools/pool"

// lbEnv is an emulator with a target pool "pool" in us-central1.
func lbEnv(t *testing.T, opts emulator.Options) *env {
	t.Helper()
	e := newEnv(t, opts)
	e.do(t, e.svc.TargetPools.Insert(proj, region, &compute.TargetPool{Name: "pool"}))
	return e
}

func (e *env) address(t *testing.T, reg, name string) *compute.Address {
	t.Helper()
	e.do(t, e.svc.Addresses.Insert(proj, reg, &compute.Address{Name: name}))
	a, err := e.svc.Addresses.Get(proj, reg, name).Do()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (e *env) rule(t *testing.T, name string) *compute.ForwardingRule {
	t.Helper()
	fr, err := e.svc.ForwardingRules.Get(proj, region, name).Do()
	if err != nil {
		t.Fatal(err)
	}
	return fr
}

func TestForwardingRuleShape(t *testing.T) {
	t.Parallel()
	e := lbEnv(t, emulator.Options{})
	op := e.do(t, e.svc.ForwardingRules.Insert(proj, region, &compute.ForwardingRule{
		Name: "fr", PortRange: "443", Target: poolRef, Labels: map[string]string{"k": "v"}}))
	if op.OperationType != "insert" || op.Region != link("regions/"+region) {
		t.Errorf("insert op %s region %s", op.OperationType, op.Region)
	}
	_, got := e.raw(t, "GET", "regions/us-central1/forwardingRules/fr", nil)
	ip, err := netip.ParseAddr(got["IPAddress"].(string))
	if err != nil || !netip.MustParsePrefix("127.64.0.0/10").Contains(ip) {
		t.Errorf("IPAddress %v is not an external literal IP", got["IPAddress"])
	}
	id := got["id"].(string)
	for _, k := range []string{"fingerprint", "labelFingerprint"} {
		if fp, _ := got[k].(string); len(fp) != 12 {
			t.Errorf("%s = %q, want 12 base64 characters", k, fp)
		}
	}
	for _, k := range []string{"IPAddress", "id", "creationTimestamp", "fingerprint", "labelFingerprint"} {
		delete(got, k)
	}
	want := map[string]any{
		"kind": "compute#forwardingRule", "name": "fr", "description": "",
		"IPProtocol": "TCP", "portRange": "443-443", "loadBalancingScheme": "EXTERNAL", "networkTier": "PREMIUM",
		"target":         link("regions/us-central1/targetPools/pool"),
		"region":         link("regions/us-central1"),
		"selfLink":       link("regions/us-central1/forwardingRules/fr"),
		"selfLinkWithId": link("regions/us-central1/forwardingRules/" + id),
	}
	// Insert-time labels are dropped (recorded).
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("forwarding rule (-want +got):\n%s", d)
	}
}

func TestForwardingRulePortRanges(t *testing.T) {
	t.Parallel()
	e := lbEnv(t, emulator.Options{})
	for i, tc := range []struct {
		proto, in, want string
		ok              bool
	}{
		{"TCP", "6443", "6443-6443", true},
		{"TCP", "80-90", "80-90", true},
		{"UDP", "", "1-65535", true},
		{"ESP", "", "", true},
		{"TCP", "0", "", false},
		{"TCP", "90-80", "", false},
		{"TCP", "http", "", false},
		{"ICMP", "80", "", false},
	} {
		name := "fr-" + string(rune('a'+i))
		_, err := e.svc.ForwardingRules.Insert(proj, region, &compute.ForwardingRule{Name: name, IPProtocol: tc.proto, PortRange: tc.in, Target: poolRef}).Do()
		if !tc.ok {
			apiErr(t, err, 400, "invalid")
			continue
		}
		if err != nil {
			t.Fatalf("%s %q: %v", tc.proto, tc.in, err)
		}
		if got := e.rule(t, name).PortRange; got != tc.want {
			t.Errorf("%s %q: portRange %q, want %q", tc.proto, tc.in, got, tc.want)
		}
	}
}

// TestForwardingRuleStaticIP: an address given as literal, URL or name is
// returned as the literal, the address turns IN_USE with the rule as user,
// and deleting the rule gives it back.
func TestForwardingRuleStaticIP(t *testing.T) {
	t.Parallel()
	e := lbEnv(t, emulator.Options{})
	a := e.address(t, region, "vip")
	for name, ref := range map[string]string{
		"by-ip":   a.Address,
		"by-url":  a.SelfLink,
		"by-name": "vip",
	} {
		t.Run(name, func(t *testing.T) {
			e.do(t, e.svc.ForwardingRules.Insert(proj, region, &compute.ForwardingRule{Name: "fr", IPAddress: ref, PortRange: "443", Target: poolRef}))
			if got := e.rule(t, "fr").IPAddress; got != a.Address {
				t.Errorf("IPAddress %q, want %q", got, a.Address)
			}
			got, _ := e.svc.Addresses.Get(proj, region, "vip").Do()
			if got.Status != "IN_USE" || !cmp.Equal(got.Users, []string{link("regions/us-central1/forwardingRules/fr")}) {
				t.Errorf("address %s users %v", got.Status, got.Users)
			}
			e.do(t, e.svc.ForwardingRules.Delete(proj, region, "fr"))
			_, raw := e.raw(t, "GET", "regions/us-central1/addresses/vip", nil)
			if raw["status"] != "RESERVED" || raw["users"] != nil {
				t.Errorf("after rule delete: status %v users %v", raw["status"], raw["users"])
			}
		})
	}

	far := e.address(t, other, "far")
	_, err := e.svc.ForwardingRules.Insert(proj, region, &compute.ForwardingRule{Name: "x", IPAddress: far.Address, Target: poolRef}).Do()
	apiErr(t, err, 400, "invalid")
	_, err = e.svc.ForwardingRules.Insert(proj, region, &compute.ForwardingRule{Name: "x", IPAddress: far.SelfLink, Target: poolRef}).Do()
	apiErr(t, err, 400, "invalid")
	_, err = e.svc.ForwardingRules.Insert(proj, region, &compute.ForwardingRule{Name: "x", IPAddress: "ghost", Target: poolRef}).Do()
	apiErr(t, err, 404, "notFound")
	_, err = e.svc.ForwardingRules.Insert(proj, region, &compute.ForwardingRule{Name: "x", IPAddress: "127.64.200.7", Target: poolRef}).Do()
	apiErr(t, err, 400, "invalid") // not reserved
}

// TestForwardingRuleSharedIP: several rules may share a static IP on
// disjoint ports or other protocols; overlapping ones are refused.
func TestForwardingRuleSharedIP(t *testing.T) {
	t.Parallel()
	e := lbEnv(t, emulator.Options{})
	a := e.address(t, region, "vip")
	insert := func(name, proto, ports string) error {
		_, err := e.svc.ForwardingRules.Insert(proj, region, &compute.ForwardingRule{Name: name, IPAddress: a.Address, IPProtocol: proto, PortRange: ports, Target: poolRef}).Do()
		return err
	}
	if err := insert("https", "TCP", "443"); err != nil {
		t.Fatal(err)
	}
	if err := insert("api", "TCP", "6443"); err != nil {
		t.Fatal(err)
	}
	if err := insert("dns", "UDP", "400-500"); err != nil {
		t.Fatal(err)
	}
	apiErr(t, insert("clash", "TCP", "440-450"), 400, "invalid")
	got, _ := e.svc.Addresses.Get(proj, region, "vip").Do()
	if len(got.Users) != 3 || got.Status != "IN_USE" {
		t.Errorf("address %s users %v, want 3", got.Status, got.Users)
	}
	// An ephemeral IP of a rule cannot be shared.
	e.do(t, e.svc.ForwardingRules.Insert(proj, region, &compute.ForwardingRule{Name: "eph", PortRange: "80", Target: poolRef}))
	eph := e.rule(t, "eph").IPAddress
	_, err := e.svc.ForwardingRules.Insert(proj, region, &compute.ForwardingRule{Name: "eph2", IPAddress: eph, PortRange: "81", Target: poolRef}).Do()
	apiErr(t, err, 400, "invalid")

	e.do(t, e.svc.ForwardingRules.Delete(proj, region, "https"))
	e.do(t, e.svc.ForwardingRules.Delete(proj, region, "api"))
	got, _ = e.svc.Addresses.Get(proj, region, "vip").Do()
	if got.Status != "IN_USE" || !cmp.Equal(got.Users, []string{link("regions/us-central1/forwardingRules/dns")}) {
		t.Errorf("address %s users %v, want only dns", got.Status, got.Users)
	}
}

// TestForwardingRuleEphemeralIPFreed: the ephemeral IP is held while the
// rule exists and free once it is deleted.
func TestForwardingRuleEphemeralIPFreed(t *testing.T) {
	t.Parallel()
	e := lbEnv(t, emulator.Options{})
	e.do(t, e.svc.ForwardingRules.Insert(proj, region, &compute.ForwardingRule{Name: "fr", Target: poolRef}))
	ip := e.rule(t, "fr").IPAddress
	_, err := e.svc.Addresses.Insert(proj, region, &compute.Address{Name: "grab", Address: ip}).Do()
	apiErr(t, err, 400, "invalid")
	e.do(t, e.svc.ForwardingRules.Delete(proj, region, "fr"))
	e.do(t, e.svc.Addresses.Insert(proj, region, &compute.Address{Name: "grab", Address: ip}))
}

func TestForwardingRuleTarget(t *testing.T) {
	t.Parallel()
	e := lbEnv(t, emulator.Options{})
	e.do(t, e.svc.TargetPools.Insert(proj, other, &compute.TargetPool{Name: "far"}))
	e.do(t, e.svc.TargetPools.Insert(proj, region, &compute.TargetPool{Name: "next"}))
	_, err := e.svc.ForwardingRules.Insert(proj, region, &compute.ForwardingRule{Name: "x", Target: "regions/us-central1/targetPools/ghost"}).Do()
	apiErr(t, err, 404, "notFound")
	_, err = e.svc.ForwardingRules.Insert(proj, region, &compute.ForwardingRule{Name: "x", Target: link("regions/europe-west1/targetPools/far")}).Do()
	apiErr(t, err, 400, "invalid")
	_, err = e.svc.ForwardingRules.Insert(proj, region, &compute.ForwardingRule{Name: "x"}).Do()
	apiErr(t, err, 400, "required")

	e.do(t, e.svc.ForwardingRules.Insert(proj, region, &compute.ForwardingRule{Name: "fr", Target: poolRef}))
	before := e.rule(t, "fr")
	op := e.do(t, e.svc.ForwardingRules.SetTarget(proj, region, "fr", &compute.TargetReference{Target: "regions/us-central1/targetPools/next"}))
	if op.OperationType != "setTarget" {
		t.Errorf("op type %q", op.OperationType)
	}
	after := e.rule(t, "fr")
	if after.Target != link("regions/us-central1/targetPools/next") || after.IPAddress != before.IPAddress || after.Fingerprint == before.Fingerprint {
		t.Errorf("setTarget: target %s ip %s→%s fingerprint %s→%s", after.Target, before.IPAddress, after.IPAddress, before.Fingerprint, after.Fingerprint)
	}
	// The old pool is free to go now.
	e.do(t, e.svc.TargetPools.Delete(proj, region, "pool"))
}

func TestForwardingRuleLabels(t *testing.T) {
	t.Parallel()
	// fast latency: setLabels must still be DONE in the response.
	e := lbEnv(t, emulator.Options{Latency: emulator.LatencyFast})
	op, err := e.svc.ForwardingRules.Insert(proj, region, &compute.ForwardingRule{Name: "fr", Target: poolRef, Labels: map[string]string{"a": "b"}}).Do()
	if err != nil {
		t.Fatal(err)
	}
	e.wait(t, op)
	fr := e.rule(t, "fr")
	if len(fr.Labels) != 0 || fr.LabelFingerprint == "" {
		t.Fatalf("after insert: labels %v fingerprint %q", fr.Labels, fr.LabelFingerprint)
	}
	op, err = e.svc.ForwardingRules.SetLabels(proj, region, "fr", &compute.RegionSetLabelsRequest{
		Labels: map[string]string{"cluster": "c1"}, LabelFingerprint: fr.LabelFingerprint}).Do()
	if err != nil {
		t.Fatal(err)
	}
	if op.Status != "DONE" || op.Progress != 100 || op.EndTime == "" || op.OperationType != "setLabels" {
		t.Errorf("setLabels response: %s %d %q %s, want DONE at once", op.Status, op.Progress, op.EndTime, op.OperationType)
	}
	got := e.rule(t, "fr")
	if !cmp.Equal(got.Labels, map[string]string{"cluster": "c1"}) || got.LabelFingerprint == fr.LabelFingerprint {
		t.Errorf("labels %v fingerprint %s", got.Labels, got.LabelFingerprint)
	}
	_, err = e.svc.ForwardingRules.SetLabels(proj, region, "fr", &compute.RegionSetLabelsRequest{
		Labels: map[string]string{"cluster": "c2"}, LabelFingerprint: fr.LabelFingerprint}).Do()
	apiErr(t, err, 412, "conditionNotMet")
	_, err = e.svc.ForwardingRules.SetLabels(proj, region, "fr", &compute.RegionSetLabelsRequest{
		Labels: map[string]string{"Bad": "x"}, LabelFingerprint: got.LabelFingerprint}).Do()
	apiErr(t, err, 400, "invalid")
}

func TestForwardingRuleDeleteAndQuota(t *testing.T) {
	t.Parallel()
	e := lbEnv(t, emulator.Options{Latency: emulator.LatencyFast, TimeScale: 2})
	if err := e.Control.SetQuota(e.ctx, emulator.QuotaLimit{Project: proj, Region: region, Metric: "FORWARDING_RULES", Limit: 1}); err != nil {
		t.Fatal(err)
	}
	op, err := e.svc.ForwardingRules.Insert(proj, region, &compute.ForwardingRule{Name: "fr", Target: poolRef}).Do()
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.ForwardingRules.Insert(proj, region, &compute.ForwardingRule{Name: "fr2", Target: poolRef}).Do()
	apiErr(t, err, 403, "quotaExceeded")
	// Busy while its insert runs.
	_, err = e.svc.ForwardingRules.Delete(proj, region, "fr").Do()
	apiErr(t, err, 400, "resourceNotReady")
	e.wait(t, op)
	began := time.Now()
	op = e.do(t, e.svc.ForwardingRules.Delete(proj, region, "fr"))
	if op.OperationType != "delete" || time.Since(began) > 5*time.Second {
		t.Errorf("delete op %s", op.OperationType)
	}
	_, err = e.svc.ForwardingRules.Get(proj, region, "fr").Do()
	apiErr(t, err, 404, "notFound")
	_, err = e.svc.ForwardingRules.Delete(proj, region, "fr").Do()
	apiErr(t, err, 404, "notFound")
}

func TestForwardingRuleAggregated(t *testing.T) {
	t.Parallel()
	e := lbEnv(t, emulator.Options{})
	e.do(t, e.svc.TargetPools.Insert(proj, other, &compute.TargetPool{Name: "pool"}))
	e.do(t, e.svc.ForwardingRules.Insert(proj, region, &compute.ForwardingRule{Name: "a", Target: poolRef}))
	e.do(t, e.svc.ForwardingRules.Insert(proj, other, &compute.ForwardingRule{Name: "b", Target: "pool"}))
	agg, err := e.svc.ForwardingRules.AggregatedList(proj).Do()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for sc, l := range agg.Items {
		if len(l.ForwardingRules) > 0 {
			got[sc] = itemNames(l.ForwardingRules)
		}
	}
	want := map[string][]string{"regions/us-central1": {"a"}, "regions/europe-west1": {"b"}}
	if d := cmp.Diff(want, got); d != "" || agg.Kind != "compute#forwardingRuleAggregatedList" {
		t.Errorf("aggregated %s (-want +got):\n%s", agg.Kind, d)
	}
}
