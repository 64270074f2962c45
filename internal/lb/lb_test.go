package lb_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	compute "google.golang.org/api/compute/v1"

	"github.com/hakube/hakube/internal/emulator"
	"github.com/hakube/hakube/internal/emulator/emulatortest"
	"github.com/hakube/hakube/internal/gce"
	"github.com/hakube/hakube/internal/lb"
)

const (
	project = "test-project"
	region  = "europe-west1"
	zone    = "europe-west1-b"
	port    = 17443
)

// fixture is one master VM on a static IP, with the load balancer's
// reversible parts (health check, pool) ready.
type fixture struct {
	t    *testing.T
	emu  *emulatortest.Emulator
	c    *gce.Cloud
	spec *lb.Spec
	m    lb.Master
	ip   string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	emu := emulatortest.Start(t, emulator.Options{Projects: []string{project}, DataPlane: true,
		Latency: emulator.LatencyRealistic, TimeScale: 0.005})
	ctx := context.Background()
	c, err := gce.New(ctx, gce.Options{Project: project, Endpoint: emu.Endpoint, RetryInitial: 5 * time.Millisecond, RequestsPerSecond: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.InsertAddress(ctx, gce.RegionalKey(region, "m-ip"), &compute.Address{Name: "m-ip"}); err != nil {
		t.Fatal(err)
	}
	a, err := c.GetAddress(ctx, gce.RegionalKey(region, "m-ip"))
	if err != nil {
		t.Fatal(err)
	}
	env := "KUBERNETES_MASTER: 'true'\nAPISERVER_PORT: '17443'\nHEALTHCHECK_PORT: '17990'\n"
	in := &compute.Instance{
		Name: "m", MachineType: "zones/" + zone + "/machineTypes/e2-standard-2",
		Disks: []*compute.AttachedDisk{{Boot: true, AutoDelete: true, InitializeParams: &compute.AttachedDiskInitializeParams{
			SourceImage: "projects/debian-cloud/global/images/family/debian-12"}}},
		NetworkInterfaces: []*compute.NetworkInterface{{AccessConfigs: []*compute.AccessConfig{{Name: lb.AccessConfigName, NatIP: a.Address}}}},
		Metadata:          &compute.Metadata{Items: []*compute.MetadataItems{{Key: "kube-env", Value: &env}}},
	}
	if err := c.InsertInstance(ctx, gce.ZonalKey(zone, in.Name), in); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetInstance(ctx, gce.ZonalKey(zone, "m"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, emu: emu, c: c, ip: a.Address, m: lb.MasterOf(got)}
	f.spec = &lb.Spec{
		Cluster: "k", Address: gce.RegionalKey(region, "m-ip"), IP: a.Address, Pool: gce.RegionalKey(region, "m"), Rule: gce.RegionalKey(region, "m"), HealthCheck: gce.GlobalKey("m"),
		APIPort: port, HealthPort: 17990, Deadline: 20 * time.Second,
		Prober: &lb.Prober{Port: port, Timeout: time.Second},
	}
	if err := lb.EnsureHealthCheck(ctx, c, f.spec); err != nil {
		t.Fatal(err)
	}
	if err := lb.EnsurePool(ctx, c, f.spec, []lb.Master{f.m}); err != nil {
		t.Fatal(err)
	}
	// The master answers on the static IP before anything moves.
	if _, err := f.spec.Prober.WaitServing(ctx, f.ip, 10*time.Second, nil); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) owner() lb.Owner {
	f.t.Helper()
	a, err := f.c.GetAddress(context.Background(), gce.RegionalKey(region, "m-ip"))
	if err != nil {
		f.t.Fatal(err)
	}
	return lb.IPOwner(a)
}

func (f *fixture) masterIP() string {
	f.t.Helper()
	in, err := f.c.GetInstance(context.Background(), gce.ZonalKey(zone, "m"))
	if err != nil {
		f.t.Fatal(err)
	}
	if len(in.NetworkInterfaces[0].AccessConfigs) == 0 {
		return ""
	}
	return in.NetworkInterfaces[0].AccessConfigs[0].NatIP
}

// serving checks the static IP answers. The move under test has already
// seen it answer; one probe can still time out on a loaded machine, so it
// may take up to 10 s to answer again.
func (f *fixture) serving() {
	f.t.Helper()
	if _, err := f.spec.Prober.WaitServing(context.Background(), f.ip, 10*time.Second, nil); err != nil {
		f.t.Errorf("static IP does not serve: %v", err)
	}
}

func TestIPOwner(t *testing.T) {
	tests := []struct {
		addr *compute.Address
		want lb.Owner
	}{
		{nil, lb.Owner{Kind: lb.OwnerNone}},
		{&compute.Address{Status: "RESERVED"}, lb.Owner{Kind: lb.OwnerNone}},
		{&compute.Address{Users: []string{"https://x/compute/v1/projects/p/zones/z/instances/m"}}, lb.Owner{Kind: lb.OwnerMaster, Instance: "m"}},
		{&compute.Address{Users: []string{"https://x/compute/v1/projects/p/regions/r/forwardingRules/m"}}, lb.Owner{Kind: lb.OwnerLB}},
	}
	for _, tt := range tests {
		if got := lb.IPOwner(tt.addr); got != tt.want {
			t.Errorf("IPOwner(%+v) = %+v, want %+v", tt.addr, got, tt.want)
		}
	}
}

func TestPromoteFromEveryState(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	// From the master: the move happens and is measured.
	mv, err := lb.Promote(ctx, f.c, f.spec, f.m)
	if err != nil {
		t.Fatal(err)
	}
	if f.owner().Kind != lb.OwnerLB || mv.Outage <= 0 || mv.Measured != lb.Measured || mv.Reverted {
		t.Errorf("after promote: owner %+v, move %+v", f.owner(), mv)
	}
	if ip := f.masterIP(); ip == "" || ip == f.ip {
		t.Errorf("master's IP after promote = %q, want a new ephemeral one", ip)
	}
	f.serving()
	// Again: already done, nothing changes.
	m, _ := f.emu.Control.Mark(ctx)
	if _, err := lb.Promote(ctx, f.c, f.spec, f.m); err != nil {
		t.Fatal(err)
	}
	rc, _ := f.emu.Control.RequestsSince(ctx, m)
	for _, method := range []string{"compute.forwardingRules.insert", "compute.instances.deleteAccessConfig", "compute.instances.addAccessConfig"} {
		if rc.Counts[method] != 0 {
			t.Errorf("a promote with nothing to do called %s", method)
		}
	}
	// From nobody: an interrupted move (rule gone, IP free, master without IP).
	if err := f.c.DeleteForwardingRule(ctx, gce.RegionalKey(region, "m")); err != nil {
		t.Fatal(err)
	}
	if err := f.c.DeleteAccessConfig(ctx, gce.ZonalKey(zone, "m"), lb.AccessConfigName); err != nil {
		t.Fatal(err)
	}
	if f.owner().Kind != lb.OwnerNone {
		t.Fatalf("setup: owner %+v", f.owner())
	}
	if _, err := lb.Promote(ctx, f.c, f.spec, f.m); err != nil {
		t.Fatal(err)
	}
	if f.owner().Kind != lb.OwnerLB || f.masterIP() == "" {
		t.Errorf("after promote from nobody: owner %+v, master IP %q", f.owner(), f.masterIP())
	}
	f.serving()
}

func TestDemoteFromEveryState(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if _, err := lb.Promote(ctx, f.c, f.spec, f.m); err != nil {
		t.Fatal(err)
	}
	mv, err := lb.Demote(ctx, f.c, f.spec, f.m)
	if err != nil {
		t.Fatal(err)
	}
	// The IP returns within milliseconds at this time scale: the 100 ms
	// probing may see no failure at all (an outage of 0).
	if o := f.owner(); o.Kind != lb.OwnerMaster || f.masterIP() != f.ip || mv.Outage < 0 || mv.Measured != lb.Measured {
		t.Errorf("after demote: owner %+v, master IP %q, move %+v", o, f.masterIP(), mv)
	}
	f.serving()
	// Again: nothing left to do.
	if _, err := lb.Demote(ctx, f.c, f.spec, f.m); err != nil {
		t.Fatal(err)
	}
	if err := lb.Teardown(ctx, f.c, f.spec); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.GetTargetPool(ctx, gce.RegionalKey(region, "m")); !gce.IsNotFound(err) {
		t.Errorf("pool after teardown: %v", err)
	}
	if _, err := f.c.GetHTTPHealthCheck(ctx, gce.GlobalKey("m")); !gce.IsNotFound(err) {
		t.Errorf("health check after teardown: %v", err)
	}
	f.serving()
}

func TestPromoteRevertsPastMaxDowntime(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.spec.MaxDowntime = time.Millisecond // propagation takes far longer
	var lines []string
	f.spec.Progress = func(msg string) { lines = append(lines, msg) }
	mv, err := lb.Promote(ctx, f.c, f.spec, f.m)
	if !errors.Is(err, lb.ErrReverted) || !mv.Reverted {
		t.Fatalf("err = %v, move %+v; want a revert", err, mv)
	}
	if o := f.owner(); o.Kind != lb.OwnerMaster || f.masterIP() != f.ip {
		t.Errorf("after revert: owner %+v, master IP %q", o, f.masterIP())
	}
	if _, err := f.c.GetForwardingRule(ctx, gce.RegionalKey(region, "m")); !gce.IsNotFound(err) {
		t.Errorf("forwarding rule after revert: %v", err)
	}
	f.serving()
	if len(lines) == 0 {
		t.Error("no progress line told the user about the revert")
	}
}

// With PoolReady the static IP leaves the master while the pool is being
// made; the rule goes in only once the pool is ready.
func TestPromoteDetachesWhileThePoolIsMade(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	var owner lb.Owner
	var ruleErr error
	f.spec.PoolReady = func(ctx context.Context) error {
		owner = f.owner()
		_, ruleErr = f.c.GetForwardingRule(ctx, gce.RegionalKey(region, "m"))
		return nil
	}
	if _, err := lb.Promote(ctx, f.c, f.spec, f.m); err != nil {
		t.Fatal(err)
	}
	if owner.Kind != lb.OwnerNone || !gce.IsNotFound(ruleErr) {
		t.Errorf("while the pool was made: owner %+v, rule %v; want the IP detached and no rule yet", owner, ruleErr)
	}
	if o := f.owner(); o.Kind != lb.OwnerLB {
		t.Errorf("after promote: owner %+v", o)
	}
	f.serving()
}

// A pool that fails while the IP is off the master sends the IP back.
func TestPromoteRevertsWhenThePoolFails(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.spec.PoolReady = func(context.Context) error { return errors.New("needs create target-pool m, which failed") }
	var lines []string
	f.spec.Progress = func(msg string) { lines = append(lines, msg) }
	mv, err := lb.Promote(ctx, f.c, f.spec, f.m)
	if !errors.Is(err, lb.ErrReverted) || !mv.Reverted || !strings.Contains(err.Error(), "target pool") {
		t.Fatalf("err = %v, move %+v; want a revert naming the pool", err, mv)
	}
	if o := f.owner(); o.Kind != lb.OwnerMaster || f.masterIP() != f.ip {
		t.Errorf("after revert: owner %+v, master IP %q", o, f.masterIP())
	}
	if _, err := f.c.GetForwardingRule(ctx, gce.RegionalKey(region, "m")); !gce.IsNotFound(err) {
		t.Errorf("forwarding rule after revert: %v", err)
	}
	f.serving()
	if len(lines) == 0 || !strings.Contains(lines[0], "target pool") {
		t.Errorf("progress %q: want a line saying the pool sent the IP back", lines)
	}
}

// One fault inside the setLabels operation of the new forwarding rule (the
// sweep saw it fail the first-replica flow with 412 conditionNotMet): the
// label write re-reads the fingerprint and succeeds.
func TestEnsureRuleSurvivesAFailedLabelOperation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.emu.Control.AddFault(ctx, emulator.Fault{Method: "forwardingRules.setLabels", Delivery: "operation", Count: 1}); err != nil {
		t.Fatal(err)
	}
	f.spec.IP = ""
	if err := lb.EnsureRule(ctx, f.c, f.spec); err != nil {
		t.Fatalf("EnsureRule: %v", err)
	}
	fr, err := f.c.GetForwardingRule(ctx, gce.RegionalKey(region, "m"))
	if err != nil {
		t.Fatal(err)
	}
	if fr.Labels[gce.LabelCluster] != "k" {
		t.Errorf("labels %v, want the cluster's", fr.Labels)
	}
	faults, err := f.emu.Control.Faults(ctx)
	if err != nil || len(faults) != 1 || faults[0].Fired != 1 {
		t.Errorf("faults %+v (%v): want the one fault fired once", faults, err)
	}
}

func TestProbeVerifiesTheCertificate(t *testing.T) {
	f := newFixture(t)
	// A CA that did not sign the VM's (self-signed) certificate is refused.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other-ca"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	other := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	bogus := &lb.Prober{Port: port, Timeout: time.Second, CA: other}
	err = bogus.Probe(context.Background(), f.ip)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("probe with another CA: %v, want an unknown-authority error", err)
	}
}

// mutationsAndReads are the requests since before, less operation waits
// (how many a slow operation takes is the emulator's latency, not the flow's).
func mutationsAndReads(c *gce.Cloud, before map[string]int) []gce.MethodCount {
	var out []gce.MethodCount
	for _, m := range gce.Diff(before, c.Stats().Snapshot()) {
		if !strings.Contains(m.Method, "perations.") {
			out = append(out, m)
		}
	}
	return out
}

// The create steps trust what the observation found missing: they insert
// without reading first or after, naming the check by the link GCE gives it.
// What appeared meanwhile is adopted as the Ensure steps would.
func TestCreateTrustsTheObservation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a, err := f.c.GetAddress(ctx, f.spec.Address)
	if err != nil {
		t.Fatal(err)
	}
	s := *f.spec
	s.Pool, s.HealthCheck, s.LinkPrefix = gce.RegionalKey(region, "p2"), gce.GlobalKey("hc2"), gce.ProjectPrefix(a.SelfLink)

	before := f.c.Stats().Snapshot()
	if err := lb.CreateHealthCheck(ctx, f.c, &s); err != nil {
		t.Fatal(err)
	}
	if err := lb.CreatePool(ctx, f.c, &s, []lb.Master{f.m}); err != nil {
		t.Fatal(err)
	}
	want := []gce.MethodCount{{Method: "httpHealthChecks.insert", Count: 1}, {Method: "targetPools.insert", Count: 1}}
	if diff := cmp.Diff(want, mutationsAndReads(f.c, before)); diff != "" {
		t.Errorf("requests of creating a check and a pool (-want +got):\n%s", diff)
	}
	tp, err := f.c.GetTargetPool(ctx, s.Pool)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := f.c.GetHTTPHealthCheck(ctx, s.HealthCheck)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{hc.SelfLink}, tp.HealthChecks); diff != "" {
		t.Errorf("pool's health checks (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{f.m.Link}, tp.Instances); diff != "" {
		t.Errorf("pool's instances (-want +got):\n%s", diff)
	}

	// Both exist now, the check with GCE's defaults as an older run left it:
	// the create steps of a stale observation adopt them.
	hc.CheckIntervalSec, hc.UnhealthyThreshold = 5, 2
	if err := f.c.PatchHTTPHealthCheck(ctx, s.HealthCheck, hc); err != nil {
		t.Fatal(err)
	}
	if err := lb.CreateHealthCheck(ctx, f.c, &s); err != nil {
		t.Fatal(err)
	}
	if err := lb.CreatePool(ctx, f.c, &s, []lb.Master{f.m}); err != nil {
		t.Fatal(err)
	}
	hc, err = f.c.GetHTTPHealthCheck(ctx, s.HealthCheck)
	if err != nil {
		t.Fatal(err)
	}
	if changes := lb.HealthCheckChanges(hc, s.HealthPort); len(changes) > 0 {
		t.Errorf("the existing check was not brought to hakube's parameters: %v", changes)
	}
	tp, err = f.c.GetTargetPool(ctx, s.Pool)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{f.m.Link}, tp.Instances); diff != "" {
		t.Errorf("pool's instances after a second create (-want +got):\n%s", diff)
	}
}

// A replica's join trusts the pool the run observed (or made without it):
// nothing when it holds the replica, one addInstance when not, and only a
// refusal reads the pool and adds what it lacks.
func TestJoinPoolTrustsTheObservation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := *f.spec
	s.Pool = gce.RegionalKey(region, "p3")
	if err := lb.CreatePool(ctx, f.c, &s, nil); err != nil {
		t.Fatal(err)
	}
	empty, err := f.c.GetTargetPool(ctx, s.Pool)
	if err != nil {
		t.Fatal(err)
	}
	join := func(observed *compute.TargetPool) []gce.MethodCount {
		t.Helper()
		before := f.c.Stats().Snapshot()
		if err := lb.JoinPool(ctx, f.c, &s, observed, f.m); err != nil {
			t.Fatal(err)
		}
		return mutationsAndReads(f.c, before)
	}
	if diff := cmp.Diff([]gce.MethodCount{{Method: "targetPools.addInstance", Count: 1}}, join(nil)); diff != "" {
		t.Errorf("joining the pool the run made (-want +got):\n%s", diff)
	}
	full, err := f.c.GetTargetPool(ctx, s.Pool)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{f.m.Link}, full.Instances); diff != "" {
		t.Errorf("pool's instances after the join (-want +got):\n%s", diff)
	}
	if calls := join(full); len(calls) != 0 {
		t.Errorf("joining a pool observed holding the master made %v, want no request", calls)
	}

	// A stale observation and a GCE that refuses a member it holds.
	if _, err := f.emu.Control.AddFault(ctx, emulator.Fault{Method: "targetPools.addInstance", Code: 400, Reason: "invalid",
		Message: "already a member", Count: 1}); err != nil {
		t.Fatal(err)
	}
	want := []gce.MethodCount{{Method: "targetPools.addInstance", Count: 1}, {Method: "targetPools.get", Count: 1}}
	if diff := cmp.Diff(want, join(empty)); diff != "" {
		t.Errorf("a refused join (-want +got):\n%s", diff)
	}
}
