package emulator_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hakube/hakube/internal/emulator"
	compute "google.golang.org/api/compute/v1"
)

// instance creates a small RUNNING VM and returns its selfLink.
func (e *env) instance(t *testing.T, z, name string) string {
	t.Helper()
	e.do(t, e.svc.Instances.Insert(proj, z, &compute.Instance{
		Name:        name,
		MachineType: "zones/" + z + "/machineTypes/e2-small",
		Disks: []*compute.AttachedDisk{{Boot: true, AutoDelete: true, InitializeParams: &compute.AttachedDiskInitializeParams{
			SourceImage: "projects/debian-cloud/global/images/family/debian-12"}}},
		NetworkInterfaces: []*compute.NetworkInterface{{Network: "global/networks/default"}},
	}))
	return link("zones/" + z + "/instances/" + name)
}

func refs(links ...string) []*compute.InstanceReference {
	var out []*compute.InstanceReference
	for _, l := range links {
		out = append(out, &compute.InstanceReference{Instance: l})
	}
	return out
}

func (e *env) pool(t *testing.T, name string) *compute.TargetPool {
	t.Helper()
	tp, err := e.svc.TargetPools.Get(proj, region, name).Do()
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// TestTargetPoolMinimalShape pins the recorded GET of a minimal pool:
// instances and healthChecks absent, not [].
func TestTargetPoolMinimalShape(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	op := e.do(t, e.svc.TargetPools.Insert(proj, region, &compute.TargetPool{Name: "pool"}))
	if op.OperationType != "insert" || op.Region != link("regions/"+region) || op.TargetLink != link("regions/us-central1/targetPools/pool") {
		t.Errorf("insert op %s region %s target %s", op.OperationType, op.Region, op.TargetLink)
	}
	_, got := e.raw(t, "GET", "regions/us-central1/targetPools/pool", nil)
	for _, k := range []string{"id", "creationTimestamp"} {
		if _, ok := got[k].(string); !ok {
			t.Errorf("%s = %#v, want a string", k, got[k])
		}
		delete(got, k)
	}
	want := map[string]any{
		"kind": "compute#targetPool", "name": "pool", "description": "", "sessionAffinity": "NONE",
		"region": link("regions/us-central1"), "selfLink": link("regions/us-central1/targetPools/pool"),
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("pool (-want +got):\n%s", d)
	}
}

func TestTargetPoolFullInsertEchoesURLs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	vm := e.instance(t, zone, "vm")
	e.do(t, e.svc.HttpHealthChecks.Insert(proj, &compute.HttpHealthCheck{Name: "hc"}))
	e.do(t, e.svc.TargetPools.Insert(proj, region, &compute.TargetPool{Name: "backup"}))
	e.do(t, e.svc.TargetPools.Insert(proj, region, &compute.TargetPool{
		Name: "pool", SessionAffinity: "CLIENT_IP", FailoverRatio: 0.5, Description: "d",
		BackupPool:   "regions/us-central1/targetPools/backup",
		HealthChecks: []string{"projects/test-project/global/httpHealthChecks/hc"},
		Instances:    []string{"zones/us-central1-a/instances/vm"},
	}))
	tp := e.pool(t, "pool")
	if tp.BackupPool != link("regions/us-central1/targetPools/backup") || tp.FailoverRatio != 0.5 || tp.SessionAffinity != "CLIENT_IP" ||
		!cmp.Equal(tp.HealthChecks, []string{link("global/httpHealthChecks/hc")}) || !cmp.Equal(tp.Instances, []string{vm}) {
		t.Errorf("pool: %+v", tp)
	}
	_, err := e.svc.TargetPools.Insert(proj, region, &compute.TargetPool{Name: "two-checks",
		HealthChecks: []string{"global/httpHealthChecks/hc", "global/httpHealthChecks/other"}}).Do()
	apiErr(t, err, 400, "invalid")
	_, err = e.svc.TargetPools.Insert(proj, region, &compute.TargetPool{Name: "missing-check",
		HealthChecks: []string{"global/httpHealthChecks/nope"}}).Do()
	apiErr(t, err, 404, "notFound")
	_, err = e.svc.TargetPools.Insert(proj, region, &compute.TargetPool{Name: "bad-affinity", SessionAffinity: "GENERATED_COOKIE"}).Do()
	apiErr(t, err, 400, "invalid")
}

func TestTargetPoolMembership(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	a := e.instance(t, "us-central1-a", "a")
	b := e.instance(t, "us-central1-b", "b")
	far := e.instance(t, "europe-west1-b", "far")
	e.do(t, e.svc.TargetPools.Insert(proj, region, &compute.TargetPool{Name: "pool"}))

	op := e.do(t, e.svc.TargetPools.AddInstance(proj, region, "pool", &compute.TargetPoolsAddInstanceRequest{Instances: refs(a, b)}))
	if op.OperationType != "AddInstance" || op.Region == "" {
		t.Errorf("addInstance op type %q region %q (recorded: AddInstance, regional)", op.OperationType, op.Region)
	}
	// Already a member: no error, no duplicate.
	e.do(t, e.svc.TargetPools.AddInstance(proj, region, "pool", &compute.TargetPoolsAddInstanceRequest{Instances: refs("zones/us-central1-a/instances/a")}))
	if got := e.pool(t, "pool").Instances; !cmp.Equal(got, []string{a, b}) {
		t.Errorf("members %v, want [a b]", got)
	}
	// An empty body is accepted as a no-op (recorded).
	if code, body := e.raw(t, "POST", "regions/us-central1/targetPools/pool/addInstance", map[string]any{}); code != 200 || body["operationType"] != "AddInstance" {
		t.Errorf("addInstance {}: %d %v", code, body)
	}

	_, err := e.svc.TargetPools.AddInstance(proj, region, "pool", &compute.TargetPoolsAddInstanceRequest{Instances: refs(link("zones/us-central1-a/instances/ghost"))}).Do()
	apiErr(t, err, 404, "notFound")
	_, err = e.svc.TargetPools.AddInstance(proj, region, "pool", &compute.TargetPoolsAddInstanceRequest{Instances: refs(far)}).Do()
	apiErr(t, err, 400, "invalid")
	_, err = e.svc.TargetPools.AddInstance(proj, region, "nope", &compute.TargetPoolsAddInstanceRequest{Instances: refs(a)}).Do()
	apiErr(t, err, 404, "notFound")

	op = e.do(t, e.svc.TargetPools.RemoveInstance(proj, region, "pool", &compute.TargetPoolsRemoveInstanceRequest{Instances: refs(a)}))
	if op.OperationType != "RemoveInstance" {
		t.Errorf("removeInstance op type %q (recorded: RemoveInstance)", op.OperationType)
	}
	if got := e.pool(t, "pool").Instances; !cmp.Equal(got, []string{b}) {
		t.Errorf("members %v, want [b]", got)
	}
	_, err = e.svc.TargetPools.RemoveInstance(proj, region, "pool", &compute.TargetPoolsRemoveInstanceRequest{Instances: refs(a)}).Do()
	ge := apiErr(t, err, 400, "invalid")
	if want := "Instance is not currently attached to this target pool."; !strings.Contains(ge.Message, want) {
		t.Errorf("message %q lacks %q", ge.Message, want)
	}

	// Deleting a member drops it; the last one leaves instances absent.
	e.do(t, e.svc.Instances.Delete(proj, "us-central1-b", "b"))
	_, got := e.raw(t, "GET", "regions/us-central1/targetPools/pool", nil)
	if _, ok := got["instances"]; ok {
		t.Errorf("instances = %v after the last member was deleted, want absent", got["instances"])
	}
}

func TestTargetPoolHealthChecks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	e.do(t, e.svc.HttpHealthChecks.Insert(proj, &compute.HttpHealthCheck{Name: "hc"}))
	e.do(t, e.svc.HttpHealthChecks.Insert(proj, &compute.HttpHealthCheck{Name: "hc2"}))
	e.do(t, e.svc.TargetPools.Insert(proj, region, &compute.TargetPool{Name: "pool"}))
	add := func(name string) *compute.TargetPoolsAddHealthCheckCall {
		return e.svc.TargetPools.AddHealthCheck(proj, region, "pool", &compute.TargetPoolsAddHealthCheckRequest{
			HealthChecks: []*compute.HealthCheckReference{{HealthCheck: "global/httpHealthChecks/" + name}}})
	}
	op := e.do(t, add("hc"))
	if op.OperationType != "AddHealthCheck" {
		t.Errorf("op type %q", op.OperationType)
	}
	if got := e.pool(t, "pool").HealthChecks; !cmp.Equal(got, []string{link("global/httpHealthChecks/hc")}) {
		t.Errorf("healthChecks %v", got)
	}
	e.do(t, add("hc")) // the same one again: no-op
	_, err := add("hc2").Do()
	apiErr(t, err, 400, "invalid")
	_, err = add("nope").Do()
	apiErr(t, err, 404, "notFound")

	rm := &compute.TargetPoolsRemoveHealthCheckRequest{HealthChecks: []*compute.HealthCheckReference{{HealthCheck: link("global/httpHealthChecks/hc")}}}
	op = e.do(t, e.svc.TargetPools.RemoveHealthCheck(proj, region, "pool", rm))
	if op.OperationType != "RemoveHealthCheck" {
		t.Errorf("op type %q", op.OperationType)
	}
	_, got := e.raw(t, "GET", "regions/us-central1/targetPools/pool", nil)
	if _, ok := got["healthChecks"]; ok {
		t.Errorf("healthChecks = %v after removal, want absent", got["healthChecks"])
	}
	_, err = e.svc.TargetPools.RemoveHealthCheck(proj, region, "pool", rm).Do()
	apiErr(t, err, 400, "invalid")
	e.do(t, add("hc2"))
}

func TestTargetPoolGetHealth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	a := e.instance(t, zone, "a")
	stopped := e.instance(t, zone, "stopped")
	outsider := e.instance(t, zone, "outsider")
	e.do(t, e.svc.TargetPools.Insert(proj, region, &compute.TargetPool{Name: "pool", Instances: []string{a, stopped}}))
	e.do(t, e.svc.ForwardingRules.Insert(proj, region, &compute.ForwardingRule{Name: "fr", PortRange: "443", Target: "regions/us-central1/targetPools/pool"}))
	fr, err := e.svc.ForwardingRules.Get(proj, region, "fr").Do()
	if err != nil {
		t.Fatal(err)
	}
	h, err := e.svc.TargetPools.GetHealth(proj, region, "pool", &compute.InstanceReference{Instance: a}).Do()
	if err != nil {
		t.Fatal(err)
	}
	want := &compute.TargetPoolInstanceHealth{Kind: "compute#targetPoolInstanceHealth", HealthStatus: []*compute.HealthStatus{
		{HealthState: "HEALTHY", Instance: a, IpAddress: fr.IPAddress, Port: 443}}}
	if d := cmp.Diff(want, h, cmpIgnoreServerResponse()); d != "" {
		t.Errorf("getHealth (-want +got):\n%s", d)
	}
	e.do(t, e.svc.Instances.Stop(proj, zone, "stopped"))
	_, err = e.svc.TargetPools.GetHealth(proj, region, "pool", &compute.InstanceReference{Instance: stopped}).Do()
	apiErr(t, err, 400, "resourceNotReady")
	_, err = e.svc.TargetPools.GetHealth(proj, region, "pool", &compute.InstanceReference{Instance: outsider}).Do()
	apiErr(t, err, 400, "invalid")
}

// TestTargetPoolDeleteInUse: GCE refuses synchronously while a forwarding
// rule targets the pool.
func TestTargetPoolDeleteInUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	e.do(t, e.svc.TargetPools.Insert(proj, region, &compute.TargetPool{Name: "pool"}))
	e.do(t, e.svc.ForwardingRules.Insert(proj, region, &compute.ForwardingRule{Name: "fr", Target: "regions/us-central1/targetPools/pool"}))
	_, err := e.svc.TargetPools.Delete(proj, region, "pool").Do()
	ge := apiErr(t, err, 400, "resourceInUseByAnotherResource")
	want := "The target_pool resource 'projects/test-project/regions/us-central1/targetPools/pool' is already being used by 'projects/test-project/regions/us-central1/forwardingRules/fr'"
	if ge.Message != want {
		t.Errorf("message %q\nwant    %q", ge.Message, want)
	}
	e.do(t, e.svc.ForwardingRules.Delete(proj, region, "fr"))
	op := e.do(t, e.svc.TargetPools.Delete(proj, region, "pool"))
	if op.OperationType != "delete" {
		t.Errorf("delete op type %q", op.OperationType)
	}
	_, err = e.svc.TargetPools.Get(proj, region, "pool").Do()
	apiErr(t, err, 404, "notFound")
}

func TestTargetPoolQuotaAndBusy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{Latency: emulator.LatencyFast, TimeScale: 3})
	if err := e.Control.SetQuota(e.ctx, emulator.QuotaLimit{Project: proj, Region: region, Metric: "TARGET_POOLS", Limit: 1}); err != nil {
		t.Fatal(err)
	}
	op, err := e.svc.TargetPools.Insert(proj, region, &compute.TargetPool{Name: "pool"}).Do()
	if err != nil {
		t.Fatal(err)
	}
	// While the insert runs, the pool takes no other mutation.
	_, err = e.svc.TargetPools.AddInstance(proj, region, "pool", &compute.TargetPoolsAddInstanceRequest{}).Do()
	apiErr(t, err, 400, "resourceNotReady")
	_, err = e.svc.TargetPools.Insert(proj, region, &compute.TargetPool{Name: "second"}).Do()
	ge := apiErr(t, err, 403, "quotaExceeded")
	if want := "Quota 'TARGET_POOLS' exceeded. Limit: 1.0 in region us-central1."; ge.Message != want {
		t.Errorf("message %q, want %q", ge.Message, want)
	}
	// Other regions have their own quota.
	e.do(t, e.svc.TargetPools.Insert(proj, other, &compute.TargetPool{Name: "second"}))
	e.wait(t, op)
	e.do(t, e.svc.TargetPools.AddInstance(proj, region, "pool", &compute.TargetPoolsAddInstanceRequest{}))
}

func TestTargetPoolListAndAggregated(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	e.do(t, e.svc.TargetPools.Insert(proj, region, &compute.TargetPool{Name: "b"}))
	e.do(t, e.svc.TargetPools.Insert(proj, region, &compute.TargetPool{Name: "a"}))
	e.do(t, e.svc.TargetPools.Insert(proj, other, &compute.TargetPool{Name: "c"}))
	l, err := e.svc.TargetPools.List(proj, region).Do()
	if err != nil {
		t.Fatal(err)
	}
	if got := itemNames(l.Items); !cmp.Equal(got, []string{"a", "b"}) || l.Kind != "compute#targetPoolList" {
		t.Errorf("list %s %v", l.Kind, got)
	}
	agg, err := e.svc.TargetPools.AggregatedList(proj).Do()
	if err != nil {
		t.Fatal(err)
	}
	if got := itemNames(agg.Items["regions/"+other].TargetPools); !cmp.Equal(got, []string{"c"}) {
		t.Errorf("aggregated %s: %v", other, got)
	}
	if w := agg.Items["regions/us-east1"].Warning; w == nil || w.Code != "NO_RESULTS_ON_PAGE" {
		t.Errorf("empty scope warning %+v", w)
	}
}
