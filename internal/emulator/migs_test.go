package emulator_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hakube/hakube/internal/emulator"
	compute "google.golang.org/api/compute/v1"
)

// vmMIG is a MIG body; targetSize is sent even when 0, as it is required.
func vmMIG(name, tpl string, size int64) *compute.InstanceGroupManager {
	return &compute.InstanceGroupManager{
		Name:             name,
		BaseInstanceName: name,
		InstanceTemplate: "global/instanceTemplates/" + tpl,
		TargetSize:       size,
		ForceSendFields:  []string{"TargetSize"},
	}
}

func (e *vmEnv) mig(t *testing.T, name string) *compute.InstanceGroupManager {
	t.Helper()
	m, err := e.svc.InstanceGroupManagers.Get(vmProj, vmZone, name).Do()
	if err != nil {
		t.Fatalf("get MIG %s: %v", name, err)
	}
	return m
}

func (e *vmEnv) managed(t *testing.T, name string) []*compute.ManagedInstance {
	t.Helper()
	r, err := e.svc.InstanceGroupManagers.ListManagedInstances(vmProj, vmZone, name).Do()
	if err != nil {
		t.Fatalf("listManagedInstances: %v", err)
	}
	return r.ManagedInstances
}

func (e *vmEnv) vmNames(t *testing.T) []string {
	t.Helper()
	l, err := e.svc.Instances.List(vmProj, vmZone).Do()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, in := range l.Items {
		out = append(out, in.Name)
	}
	return out
}

// stable waits until the MIG reports isStable.
func (e *vmEnv) stable(t *testing.T, name string) *compute.InstanceGroupManager {
	t.Helper()
	var m *compute.InstanceGroupManager
	vmEventually(t, name+" stable", func() bool {
		m = e.mig(t, name)
		return m.Status.IsStable
	})
	return m
}

func TestMIGInsertShape(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyNone)
	tpl := vmTemplate("tpl")
	tpl.Properties.NetworkInterfaces[0].AccessConfigs = []*compute.AccessConfig{{Name: "external-nat"}}
	e.ok(t, e.svc.InstanceTemplates.Insert(vmProj, tpl))
	op := e.ok(t, e.svc.InstanceGroupManagers.Insert(vmProj, vmZone, vmMIG("nodes", "tpl", 3)))
	if op.OperationType != "compute.instanceGroupManagers.insert" {
		t.Errorf("insert op type %q", op.OperationType)
	}
	raw := e.rawGet(t, "zones/"+vmZone+"/instanceGroupManagers/nodes")
	ca := raw["currentActions"].(map[string]any)
	wantCA := map[string]any{}
	for _, k := range []string{"abandoning", "creating", "creatingWithoutRetries", "deleting", "recreating", "refreshing",
		"restarting", "resuming", "starting", "stopping", "suspending", "verifying"} {
		wantCA[k] = float64(0)
	}
	wantCA["none"] = float64(3)
	if diff := cmp.Diff(wantCA, ca); diff != "" {
		t.Errorf("currentActions (-want +got):\n%s", diff)
	}
	wantStatus := map[string]any{
		"isStable":           true,
		"allInstancesConfig": map[string]any{"effective": true},
		"stateful":           map[string]any{"hasStatefulConfig": false, "perInstanceConfigs": map[string]any{"allEffective": true}},
		"versionTarget":      map[string]any{"isReached": true},
	}
	if diff := cmp.Diff(wantStatus, raw["status"]); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	for k, want := range map[string]any{
		"kind":                        "compute#instanceGroupManager",
		"targetSize":                  float64(3),
		"targetStoppedSize":           float64(0),
		"targetSuspendedSize":         float64(0),
		"listManagedInstancesResults": "PAGELESS",
		"instanceGroup":               vmLink("zones/" + vmZone + "/instanceGroups/nodes"),
		"instanceTemplate":            vmLink("global/instanceTemplates/tpl"),
		"zone":                        vmLink("zones/" + vmZone),
		"satisfiesPzs":                true,
		"satisfiesPzi":                false,
		"targetSizePolicy":            map[string]any{"mode": "INDIVIDUAL"},
		"standbyPolicy":               map[string]any{"mode": "MANUAL"},
		"instanceLifecyclePolicy":     map[string]any{"defaultActionOnFailure": "REPAIR", "forceUpdateOnRepair": "NO", "onFailedHealthCheck": "DEFAULT_ACTION"},
		"updatePolicy": map[string]any{"type": "OPPORTUNISTIC", "replacementMethod": "SUBSTITUTE", "minimalAction": "REPLACE",
			"maxSurge": map[string]any{"fixed": float64(1), "calculated": float64(1)}, "maxUnavailable": map[string]any{"fixed": float64(1), "calculated": float64(1)}},
		"versions": []any{map[string]any{"instanceTemplate": vmLink("global/instanceTemplates/tpl"), "targetSize": map[string]any{"calculated": float64(3)}}},
	} {
		if diff := cmp.Diff(want, raw[k]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", k, diff)
		}
	}
	if raw["fingerprint"] == "" || raw["fingerprint"] == nil {
		t.Error("MIG needs a fingerprint")
	}
	if _, ok := raw["description"]; ok {
		t.Error("MIG description must be absent when not set")
	}

	// The VMs: named <base>-<4 chars>, in instances.list, marked by the MIG.
	names := e.vmNames(t)
	re := regexp.MustCompile(`^nodes-[a-z0-9]{4}$`)
	if len(names) != 3 {
		t.Fatalf("instances %v, want 3", names)
	}
	for _, n := range names {
		if !re.MatchString(n) {
			t.Errorf("VM name %q does not match %s", n, re)
		}
		in := e.get(t, n)
		md := map[string]string{}
		for _, it := range in.Metadata.Items {
			md[it.Key] = *it.Value
		}
		if md["created-by"] != "projects/100000000012/zones/"+vmZone+"/instanceGroupManagers/nodes" ||
			md["instance-template"] != "projects/100000000012/global/instanceTemplates/tpl" {
			t.Errorf("VM metadata %v", md)
		}
		if in.Status != "RUNNING" || vmNatOf(in) == "" || in.MachineType != vmLink("zones/"+vmZone+"/machineTypes/n1-standard-1") {
			t.Errorf("VM %s: %s nat %q machine %s", n, in.Status, vmNatOf(in), in.MachineType)
		}
	}

	// The instance group of the same name.
	g := e.rawGet(t, "zones/"+vmZone+"/instanceGroups/nodes")
	for k, want := range map[string]any{
		"kind": "compute#instanceGroup", "name": "nodes", "size": float64(3), "description": "",
		"network": vmLink("global/networks/default"), "subnetwork": vmLink("regions/" + vmRegion + "/subnetworks/default"),
		"zone": vmLink("zones/" + vmZone), "selfLink": vmLink("zones/" + vmZone + "/instanceGroups/nodes"),
	} {
		if diff := cmp.Diff(want, g[k]); diff != "" {
			t.Errorf("instance group %s (-want +got):\n%s", k, diff)
		}
	}
	if g["fingerprint"] == nil {
		t.Error("instance group needs a fingerprint")
	}
}

func TestMIGProgress(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyFast)
	e.ok(t, e.svc.InstanceTemplates.Insert(vmProj, vmTemplate("tpl")))
	e.ok(t, e.svc.InstanceGroupManagers.Insert(vmProj, vmZone, vmMIG("nodes", "tpl", 3)))
	m := e.mig(t, "nodes")
	if m.CurrentActions.Creating != 3 || m.CurrentActions.None != 0 || m.Status.IsStable {
		t.Errorf("right after insert DONE: creating %d none %d stable %v", m.CurrentActions.Creating, m.CurrentActions.None, m.Status.IsStable)
	}
	for _, mi := range e.managed(t, "nodes") {
		if mi.CurrentAction != "CREATING" || mi.InstanceStatus != "PROVISIONING" || mi.Id == 0 || mi.TargetStatus != "RUNNING" {
			t.Errorf("managed instance while creating: %+v", mi)
		}
	}
	m = e.stable(t, "nodes")
	if m.CurrentActions.None != 3 || m.CurrentActions.Creating != 0 {
		t.Errorf("stable: %+v", m.CurrentActions)
	}
	for _, mi := range e.managed(t, "nodes") {
		if mi.CurrentAction != "NONE" || mi.InstanceStatus != "RUNNING" || mi.Instance != vmLink("zones/"+vmZone+"/instances/"+mi.Name) {
			t.Errorf("managed instance when stable: %+v", mi)
		}
	}
	if g, _ := e.svc.InstanceGroups.Get(vmProj, vmZone, "nodes").Do(); g.Size != 3 {
		t.Errorf("instance group size %d", g.Size)
	}
}

func TestMIGInsertErrors(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyNone)
	e.ok(t, e.svc.InstanceTemplates.Insert(vmProj, vmTemplate("tpl")))
	e.ok(t, e.svc.InstanceGroupManagers.Insert(vmProj, vmZone, vmMIG("taken", "tpl", 0)))
	tests := []struct {
		name   string
		mod    func(*compute.InstanceGroupManager)
		code   int
		reason string
	}{
		{"no targetSize", func(m *compute.InstanceGroupManager) { m.TargetSize, m.ForceSendFields = 0, nil }, 400, "required"},
		{"duplicate", func(m *compute.InstanceGroupManager) { m.Name = "taken" }, 409, "alreadyExists"},
		{"base name too long", func(m *compute.InstanceGroupManager) { m.BaseInstanceName = strings.Repeat("a", 59) }, 400, "invalid"},
		{"no template", func(m *compute.InstanceGroupManager) { m.InstanceTemplate = "" }, 400, "required"},
		{"missing template", func(m *compute.InstanceGroupManager) { m.InstanceTemplate = "global/instanceTemplates/nope" }, 404, "notFound"},
		{"missing target pool", func(m *compute.InstanceGroupManager) {
			m.TargetPools = []string{"regions/" + vmRegion + "/targetPools/nope"}
		}, 404, "notFound"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := vmMIG("grp", "tpl", 1)
			tc.mod(m)
			_, err := e.svc.InstanceGroupManagers.Insert(vmProj, vmZone, m).Do()
			vmWantErr(t, err, tc.code, tc.reason)
		})
	}
	// versions[] instead of instanceTemplate.
	m := vmMIG("by-version", "tpl", 1)
	m.InstanceTemplate = ""
	m.Versions = []*compute.InstanceGroupManagerVersion{{InstanceTemplate: vmLink("global/instanceTemplates/tpl")}}
	e.ok(t, e.svc.InstanceGroupManagers.Insert(vmProj, vmZone, m))
	if got := e.mig(t, "by-version"); got.InstanceTemplate != vmLink("global/instanceTemplates/tpl") || got.Versions[0].TargetSize.Calculated != 1 {
		t.Errorf("MIG from versions: %+v", got)
	}
}

// A group created without a baseInstanceName (gcloud's create without
// --base-instance-name leaves it out) names its VMs after a prefix of the
// group name: the first 54 characters.
func TestMIGDefaultBaseInstanceName(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyNone)
	e.ok(t, e.svc.InstanceTemplates.Insert(vmProj, vmTemplate("tpl")))
	long := "a" + strings.Repeat("b", 61) + "c" // 63 characters, the longest group name
	for _, tc := range []struct{ group, base string }{
		{"web", "web"},
		{long, long[:54]},
	} {
		m := vmMIG(tc.group, "tpl", 1)
		m.BaseInstanceName = ""
		e.ok(t, e.svc.InstanceGroupManagers.Insert(vmProj, vmZone, m))
		if got := e.mig(t, tc.group).BaseInstanceName; got != tc.base {
			t.Errorf("group %s: baseInstanceName %q, want %q", tc.group, got, tc.base)
		}
		mis := e.managed(t, tc.group)
		if len(mis) != 1 || !regexp.MustCompile("^"+tc.base+"-[a-z0-9]{4}$").MatchString(mis[0].Name) {
			t.Errorf("group %s: VMs %+v, want one named %s-xxxx", tc.group, mis, tc.base)
		}
	}
}

func TestMIGResize(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyFast)
	e.ok(t, e.svc.InstanceTemplates.Insert(vmProj, vmTemplate("tpl")))
	e.ok(t, e.svc.InstanceGroupManagers.Insert(vmProj, vmZone, vmMIG("nodes", "tpl", 2)))
	e.stable(t, "nodes")
	running := e.vmNames(t)

	_, err := e.svc.InstanceGroupManagers.Resize(vmProj, vmZone, "nodes", -1).Do()
	vmWantErr(t, err, 400, "invalid")
	resp, err := e.svc.InstanceGroupManagers.Resize(vmProj, vmZone, "nodes", 3).Do()
	if err != nil {
		t.Fatal(err)
	}
	if resp.OperationType != "compute.instanceGroupManagers.resize" {
		t.Errorf("resize op type %q", resp.OperationType)
	}
	e.waitOp(t, resp)
	// Scaling down right away removes the VM still being created, not a running one.
	e.ok(t, e.svc.InstanceGroupManagers.Resize(vmProj, vmZone, "nodes", 2))
	m := e.stable(t, "nodes")
	if m.TargetSize != 2 {
		t.Errorf("targetSize %d", m.TargetSize)
	}
	before := m.Fingerprint
	e.ok(t, e.svc.InstanceGroupManagers.Resize(vmProj, vmZone, "nodes", 2))
	if e.mig(t, "nodes").Fingerprint == before {
		t.Error("a resize must change the MIG fingerprint")
	}
	vmEventually(t, "the extra VM gone", func() bool { return len(e.vmNames(t)) == 2 })
	if got := e.vmNames(t); !cmp.Equal(got, running) {
		t.Errorf("after scale-down VMs %v, want the running ones %v", got, running)
	}
	e.ok(t, e.svc.InstanceGroupManagers.Resize(vmProj, vmZone, "nodes", 0))
	vmEventually(t, "no VMs", func() bool { return len(e.vmNames(t)) == 0 })
	e.stable(t, "nodes")
}

func TestMIGResizeMissingSize(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyNone)
	e.ok(t, e.svc.InstanceTemplates.Insert(vmProj, vmTemplate("tpl")))
	e.ok(t, e.svc.InstanceGroupManagers.Insert(vmProj, vmZone, vmMIG("nodes", "tpl", 1)))
	// The official client always sends size; send a request without it.
	resp, err := http.Post(e.Endpoint+"projects/"+vmProj+"/zones/"+vmZone+"/instanceGroupManagers/nodes/resize", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), `"reason":"required"`) {
		t.Errorf("resize without size: %d %s", resp.StatusCode, body)
	}
}

func TestMIGTargetPoolsAndRecreate(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyNone)
	e.ok(t, e.svc.TargetPools.Insert(vmProj, vmRegion, &compute.TargetPool{Name: "pool"}))
	e.ok(t, e.svc.InstanceTemplates.Insert(vmProj, vmTemplate("tpl")))
	m := vmMIG("nodes", "tpl", 2)
	m.TargetPools = []string{"regions/" + vmRegion + "/targetPools/pool"}
	e.ok(t, e.svc.InstanceGroupManagers.Insert(vmProj, vmZone, m))
	if got := e.mig(t, "nodes").TargetPools; !cmp.Equal(got, []string{vmLink("regions/" + vmRegion + "/targetPools/pool")}) {
		t.Errorf("MIG targetPools %v", got)
	}
	names := e.vmNames(t)
	pool, _ := e.svc.TargetPools.Get(vmProj, vmRegion, "pool").Do()
	var members []string
	for _, l := range pool.Instances {
		members = append(members, vmLast(l))
	}
	sort.Strings(members)
	if !cmp.Equal(members, names) {
		t.Errorf("pool members %v, want the MIG's VMs %v", members, names)
	}

	// A VM deleted behind the MIG's back comes back under the same name.
	old := e.get(t, names[0])
	e.ok(t, e.svc.Instances.Delete(vmProj, vmZone, names[0]))
	back := e.get(t, names[0])
	if back.Id == old.Id || back.Status != "RUNNING" {
		t.Errorf("recreated VM: id %d (old %d) status %s", back.Id, old.Id, back.Status)
	}
	if got := e.vmNames(t); !cmp.Equal(got, names) {
		t.Errorf("VMs %v, want %v", got, names)
	}
	pool, _ = e.svc.TargetPools.Get(vmProj, vmRegion, "pool").Do()
	if len(pool.Instances) != 2 {
		t.Errorf("recreated VM not back in the pool: %v", pool.Instances)
	}
}

func TestMIGListManagedInstancesPaging(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyNone)
	e.ok(t, e.svc.InstanceTemplates.Insert(vmProj, vmTemplate("tpl")))
	e.ok(t, e.svc.InstanceGroupManagers.Insert(vmProj, vmZone, vmMIG("pageless", "tpl", 5)))
	paged := vmMIG("paged", "tpl", 5)
	paged.ListManagedInstancesResults = "PAGINATED"
	e.ok(t, e.svc.InstanceGroupManagers.Insert(vmProj, vmZone, paged))

	r, err := e.svc.InstanceGroupManagers.ListManagedInstances(vmProj, vmZone, "pageless").MaxResults(2).Do()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.ManagedInstances) != 5 || r.NextPageToken != "" {
		t.Errorf("PAGELESS ignores maxResults: got %d, token %q", len(r.ManagedInstances), r.NextPageToken)
	}
	var all []string
	tok := ""
	pages := 0
	for {
		call := e.svc.InstanceGroupManagers.ListManagedInstances(vmProj, vmZone, "paged").MaxResults(2)
		if tok != "" {
			call = call.PageToken(tok)
		}
		r, err := call.Do()
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, mi := range r.ManagedInstances {
			all = append(all, mi.Name)
		}
		if tok = r.NextPageToken; tok == "" {
			break
		}
	}
	if pages != 3 || len(all) != 5 {
		t.Errorf("PAGINATED: %d pages, %d instances", pages, len(all))
	}
}

func TestMIGRetriesOnQuota(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyNone)
	e.ok(t, e.svc.InstanceTemplates.Insert(vmProj, vmTemplate("tpl")))
	if err := e.Control.SetQuota(e.ctx, emulator.QuotaLimit{Project: vmProj, Region: vmRegion, Metric: "CPUS", Limit: 2}); err != nil {
		t.Fatal(err)
	}
	e.ok(t, e.svc.InstanceGroupManagers.Insert(vmProj, vmZone, vmMIG("nodes", "tpl", 1)))
	e.ok(t, e.svc.InstanceGroupManagers.Resize(vmProj, vmZone, "nodes", 4)) // the resize itself succeeds
	m := e.mig(t, "nodes")
	if m.Status.IsStable || m.CurrentActions.Creating != 2 || m.CurrentActions.None != 2 {
		t.Errorf("over quota: stable %v actions %+v", m.Status.IsStable, m.CurrentActions)
	}
	failing := 0
	for _, mi := range e.managed(t, "nodes") {
		if mi.InstanceStatus != "" {
			continue
		}
		failing++
		if mi.CurrentAction != "CREATING" || mi.Id != 0 || mi.LastAttempt == nil ||
			mi.LastAttempt.Errors.Errors[0].Code != "QUOTA_EXCEEDED" || !strings.Contains(mi.LastAttempt.Errors.Errors[0].Message, "CPUS") {
			t.Errorf("VM over quota: %+v lastAttempt %+v", mi, mi.LastAttempt)
		}
	}
	if failing != 2 {
		t.Errorf("%d VMs waiting, want 2", failing)
	}
	if err := e.Control.SetQuota(e.ctx, emulator.QuotaLimit{Project: vmProj, Region: vmRegion, Metric: "CPUS", Limit: 100}); err != nil {
		t.Fatal(err)
	}
	m = e.stable(t, "nodes")
	if m.CurrentActions.None != 4 {
		t.Errorf("after the quota was raised: %+v", m.CurrentActions)
	}
}

func TestMIGRetriesWhileZoneDown(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyNone)
	e.ok(t, e.svc.InstanceTemplates.Insert(vmProj, vmTemplate("tpl")))
	e.ok(t, e.svc.InstanceGroupManagers.Insert(vmProj, vmZone, vmMIG("nodes", "tpl", 1)))
	setZone := func(status string) {
		if err := e.Control.SetZone(e.ctx, vmZone, status); err != nil {
			t.Fatal(err)
		}
	}
	setCPUs := func(n float64) {
		if err := e.Control.SetQuota(e.ctx, emulator.QuotaLimit{Project: vmProj, Region: vmRegion, Metric: "CPUS", Limit: n}); err != nil {
			t.Fatal(err)
		}
	}
	// A resize in a DOWN zone fails as an operation.
	setZone("DOWN")
	e.opErr(t, e.svc.InstanceGroupManagers.Resize(vmProj, vmZone, "nodes", 2), "SERVICE_UNAVAILABLE", 503)
	setZone("UP")

	// A VM the MIG cannot create yet (quota), then retries into a DOWN zone.
	setCPUs(1)
	e.ok(t, e.svc.InstanceGroupManagers.Resize(vmProj, vmZone, "nodes", 2))
	setZone("DOWN")
	setCPUs(100)
	waiting := func() *compute.ManagedInstance {
		for _, mi := range e.managed(t, "nodes") {
			if mi.InstanceStatus == "" {
				return mi
			}
		}
		return nil
	}
	vmEventually(t, "a retry failing on the DOWN zone", func() bool {
		mi := waiting()
		return mi != nil && mi.LastAttempt != nil && mi.LastAttempt.Errors.Errors[0].Code == "ZONE_RESOURCE_POOL_EXHAUSTED"
	})
	if mi := waiting(); mi.CurrentAction != "CREATING" || !strings.Contains(mi.LastAttempt.Errors.Errors[0].Message, vmZone) {
		t.Errorf("VM during the outage: %+v %+v", mi, mi.LastAttempt.Errors.Errors[0])
	}
	if m := e.mig(t, "nodes"); m.Status.IsStable {
		t.Error("a MIG with a VM it cannot create is not stable")
	}
	setZone("UP")
	if m := e.stable(t, "nodes"); m.CurrentActions.None != 2 {
		t.Errorf("after the outage: %+v", m.CurrentActions)
	}

	// A VM deleted behind the MIG's back during a stockout (injected into
	// the insert operations) is retried until the stockout ends.
	if _, err := e.Control.AddFault(e.ctx, emulator.Fault{Method: "instances.insert", Delivery: "operation", Code: 503,
		OpCode: "ZONE_RESOURCE_POOL_EXHAUSTED", Message: "stockout", Count: 3}); err != nil {
		t.Fatal(err)
	}
	name := e.vmNames(t)[0]
	e.ok(t, e.svc.Instances.Delete(vmProj, vmZone, name))
	if mi := waiting(); mi == nil || mi.Name != name || mi.LastAttempt == nil || mi.LastAttempt.Errors.Errors[0].Message != "stockout" {
		t.Fatalf("VM being recreated during the stockout: %+v", mi)
	}
	e.stable(t, "nodes")
	if in := e.get(t, name); in.Status != "RUNNING" {
		t.Errorf("recreated VM %s", in.Status)
	}
}

func TestMIGDelete(t *testing.T) {
	t.Parallel()
	// Slower than fast: the test looks at the delete while it runs, which a
	// loaded machine must not finish first.
	e := newVMEnv(t, emulator.LatencyFast, 5)
	e.ok(t, e.svc.InstanceTemplates.Insert(vmProj, vmTemplate("tpl")))
	e.ok(t, e.svc.InstanceGroupManagers.Insert(vmProj, vmZone, vmMIG("nodes", "tpl", 3)))
	e.stable(t, "nodes")
	op, err := e.svc.InstanceGroupManagers.Delete(vmProj, vmZone, "nodes").Do()
	if err != nil {
		t.Fatal(err)
	}
	if op.OperationType != "compute.instanceGroupManagers.delete" || op.Status != "RUNNING" {
		t.Errorf("delete op %s %s", op.OperationType, op.Status)
	}
	for _, n := range e.vmNames(t) {
		if s := e.get(t, n).Status; s != "STOPPING" {
			t.Errorf("VM %s right after the MIG delete: %s", n, s)
		}
	}
	if m := e.mig(t, "nodes"); m.CurrentActions.Deleting != 3 {
		t.Errorf("deleting %d", m.CurrentActions.Deleting)
	}
	_, err = e.svc.InstanceGroupManagers.Resize(vmProj, vmZone, "nodes", 5).Do()
	vmWantErr(t, err, 400, "resourceNotReady")
	op = e.waitOp(t, op)
	if op.Error != nil {
		t.Fatalf("delete failed: %+v", op.Error.Errors[0])
	}
	// DONE means everything is gone.
	if n := e.vmNames(t); len(n) != 0 {
		t.Errorf("VMs left when the delete op was DONE: %v", n)
	}
	_, err = e.svc.InstanceGroupManagers.Get(vmProj, vmZone, "nodes").Do()
	vmWantErr(t, err, 404, "notFound")
	_, err = e.svc.InstanceGroups.Get(vmProj, vmZone, "nodes").Do()
	vmWantErr(t, err, 404, "notFound")
	if d, _ := e.svc.Disks.List(vmProj, vmZone).Do(); len(d.Items) != 0 {
		t.Errorf("the template's autoDelete disks survived: %d", len(d.Items))
	}
}

func TestMIGOrphanedByReset(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyNone)
	e.ok(t, e.svc.InstanceTemplates.Insert(vmProj, vmTemplate("tpl")))
	if err := e.Control.SetQuota(e.ctx, emulator.QuotaLimit{Project: vmProj, Region: vmRegion, Metric: "CPUS", Limit: 0}); err != nil {
		t.Fatal(err)
	}
	e.ok(t, e.svc.InstanceGroupManagers.Insert(vmProj, vmZone, vmMIG("nodes", "tpl", 3))) // retrying on quota
	if err := e.Control.Reset(e.ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // several retry periods
	// The fresh world's first VM gets the subnet's first address: the
	// orphaned group's retries took nothing.
	ip := e.insert(t, vmBasic("fresh")).NetworkInterfaces[0].NetworkIP
	if !strings.HasSuffix(ip, ".0.2") {
		t.Errorf("first VM after reset got %s; the orphaned MIG took addresses", ip)
	}
	if names := e.vmNames(t); len(names) != 1 {
		t.Errorf("VMs after reset: %v", names)
	}
}

// TestInstancesPaging pages through a zone of MIG VMs with the official
// client, and through the aggregated list across two zones. (The default
// page of 500 at 5,000 VMs is exercised by BenchmarkMIG5000.)
func TestInstancesPaging(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyNone)
	e.ok(t, e.svc.InstanceTemplates.Insert(vmProj, vmTemplate("tpl")))
	e.ok(t, e.svc.InstanceGroupManagers.Insert(vmProj, vmZone, vmMIG("nodes", "tpl", 120)))
	other := vmBasic("z-other")
	other.MachineType = "zones/" + vmZone2 + "/machineTypes/e2-medium"
	e.ok(t, e.svc.Instances.Insert(vmProj, vmZone2, other))

	var sizes []int
	var names []string
	err := e.svc.Instances.List(vmProj, vmZone).MaxResults(50).Pages(e.ctx, func(l *compute.InstanceList) error {
		sizes = append(sizes, len(l.Items))
		for _, in := range l.Items {
			names = append(names, in.Name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(sizes, []int{50, 50, 20}) || len(names) != 120 || !sort.StringsAreSorted(names) || names[0] == names[1] {
		t.Errorf("pages %v, %d VMs (in order: %v)", sizes, len(names), sort.StringsAreSorted(names))
	}

	sizes = nil
	zones := map[string]int{}
	err = e.svc.Instances.AggregatedList(vmProj).MaxResults(50).Pages(e.ctx, func(a *compute.InstanceAggregatedList) error {
		n := 0
		for scope, sc := range a.Items {
			n += len(sc.Instances)
			zones[scope] += len(sc.Instances)
		}
		sizes = append(sizes, n)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(sizes, []int{50, 50, 21}) || zones["zones/"+vmZone] != 120 || zones["zones/"+vmZone2] != 1 {
		t.Errorf("aggregated pages %v, per zone %v", sizes, zones)
	}
	// A filtered list still looks at every VM, not just one page.
	f, err := e.svc.Instances.List(vmProj, vmZone).Filter("name eq nodes-.*").MaxResults(50).PageToken("").Do()
	if err != nil || len(f.Items) != 50 || f.NextPageToken == "" {
		t.Fatalf("filtered first page: %v", err)
	}
	f, err = e.svc.Instances.List(vmProj, vmZone).Filter("name eq nodes-.*").MaxResults(100).PageToken(f.NextPageToken).Do()
	if err != nil || len(f.Items) != 70 || f.NextPageToken != "" {
		t.Errorf("filtered last page: %v %d items", err, len(f.Items))
	}
}

// TestAutoscalersListEmpty: no autoscaler can exist, but gcloud lists them
// to describe a managed instance group; GCE answers with an empty list.
func TestAutoscalersListEmpty(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	for path, kind := range map[string]string{
		"zones/" + zone + "/autoscalers":     "compute#autoscalerList",
		"regions/" + region + "/autoscalers": "compute#autoscalerList",
		"aggregated/autoscalers":             "compute#autoscalerAggregatedList",
	} {
		code, got := e.raw(t, "GET", path, nil)
		if code != 200 || got["kind"] != kind {
			t.Errorf("GET %s: %d %v", path, code, got)
		}
		if items, ok := got["items"].([]any); ok && len(items) > 0 {
			t.Errorf("GET %s: items %v, want none", path, items)
		}
	}
	if _, err := e.svc.Autoscalers.List(proj, zone).Do(); err != nil {
		t.Errorf("official client: %v", err)
	}
}

// TestMIGSizeLimit: a zonal group holds at most 1,000 VMs. Asking for more,
// at insert or resize, fails at once and schedules nothing; exactly 1,000
// works.
func TestMIGSizeLimit(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyNone)
	e.ok(t, e.svc.InstanceTemplates.Insert(vmProj, vmTemplate("tpl")))
	e.ok(t, e.svc.InstanceGroupManagers.Insert(vmProj, vmZone, vmMIG("full", "tpl", 1000)))
	if m := e.stable(t, "full"); m.TargetSize != 1000 || m.CurrentActions.None != 1000 {
		t.Fatalf("group of 1000: targetSize %d actions %+v", m.TargetSize, m.CurrentActions)
	}
	wantErr := func(t *testing.T, err error, group string) {
		t.Helper()
		ge := vmWantErr(t, err, 400, "limitExceeded")
		if want := "Exceeded limit 'MAX_INSTANCES_IN_INSTANCE_GROUP' on resource '" + group + "'. Limit: 1000.0"; ge.Message != want {
			t.Errorf("message %q, want %q", ge.Message, want)
		}
	}
	for _, size := range []int64{1001, 1000000} {
		t.Run(fmt.Sprint("insert ", size), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
			defer cancel()
			_, err := e.svc.InstanceGroupManagers.Insert(vmProj, vmZone, vmMIG("big", "tpl", size)).Context(ctx).Do()
			wantErr(t, err, "big")
			if _, err := e.svc.InstanceGroupManagers.Get(vmProj, vmZone, "big").Do(); err == nil {
				t.Error("the refused group exists")
			}
			if _, err := e.svc.InstanceGroups.Get(vmProj, vmZone, "big").Do(); err == nil {
				t.Error("the refused group's instance group exists")
			}
		})
		t.Run(fmt.Sprint("resize ", size), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
			defer cancel()
			_, err := e.svc.InstanceGroupManagers.Resize(vmProj, vmZone, "full", size).Context(ctx).Do()
			wantErr(t, err, "full")
			if m := e.mig(t, "full"); m.TargetSize != 1000 || !m.Status.IsStable {
				t.Errorf("after the refused resize: targetSize %d stable %v", m.TargetSize, m.Status.IsStable)
			}
		})
	}
	n := 0
	err := e.svc.Instances.List(vmProj, vmZone).Pages(e.ctx, func(l *compute.InstanceList) error {
		n += len(l.Items)
		return nil
	})
	if err != nil || n != 1000 {
		t.Errorf("%d instances (%v), want the group's 1000", n, err)
	}
	ops, err := e.svc.ZoneOperations.List(vmProj, vmZone).Filter("operationType eq .*resize|.*instanceGroupManagers.insert").Do()
	if err != nil || len(ops.Items) != 1 {
		t.Errorf("group operations: %d (%v), want only the insert of the group of 1000", len(ops.Items), err)
	}
}
