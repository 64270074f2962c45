package cluster

import (
	"context"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/googleapi"

	"github.com/hakube/hakube/internal/gce"
)

func TestChangedParts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		calls map[string]int
		want  reads
	}{
		{"nothing", nil, 0},
		{"reads, waits and polls", map[string]int{"instances.aggregatedList": 2, "addresses.get": 3, "zoneOperations.wait": 4,
			"targetPools.getHealth": 5, "instances.getGuestAttributes": 1, "instanceGroupManagers.listManagedInstances": 2}, 0},
		{"the lock", map[string]int{"addresses.get": 2, "addresses.setLabels": 2}, readAddresses},
		{"a resize", map[string]int{"instanceGroupManagers.resize": 1, "addresses.setLabels": 2}, readGroups | readAddresses},
		{"a master's insert", map[string]int{"instances.insert": 1}, readInstances | readAddresses},
		{"a master's delete", map[string]int{"instances.delete": 1}, readInstances | readDisks | readAddresses | readTargetPool},
		{"the forwarding rule", map[string]int{"forwardingRules.insert": 1}, readForwardingRule | readAddresses},
		{"a replica joins the pool", map[string]int{"targetPools.addInstance": 1}, readTargetPool},
		{"a pool is made", map[string]int{"targetPools.insert": 1}, readTargetPool | readForwardingRule},
		{"the first master gets an ephemeral IP", map[string]int{"instances.deleteAccessConfig": 1, "instances.addAccessConfig": 1}, readInstances | readAddresses},
		{"hakube's SSH key on a master", map[string]int{"instances.setMetadata": 1}, readInstances},
		{"a call counted zero times", map[string]int{"firewalls.delete": 0}, 0},
		{"a collection the table does not know", map[string]int{"projects.setCommonInstanceMetadata": 1}, readAll},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := changedParts(methodCounts(tc.calls)); got != tc.want {
				t.Errorf("changedParts = %011b, want %011b", got, tc.want)
			}
		})
	}
}

// methodCounts is calls as gce.Diff returns them.
func methodCounts(calls map[string]int) []gce.MethodCount {
	var out []gce.MethodCount
	for m, n := range calls {
		out = append(out, gce.MethodCount{Method: m, Count: n})
	}
	return out
}

// TestObserveRereadsOnlyChangedParts: a part not re-read is the previous
// observation's, even when it changed meanwhile; a re-read part is read
// with its one request.
func TestObserveRereadsOnlyChangedParts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cloud, cfg := scaleCluster(t, 2)
	prev, err := Observe(ctx, cloud, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if prev.Template == nil || len(prev.Pools[zb]) != 1 {
		t.Fatalf("the first observation has template %v and pools %v, want the template and one group", prev.Template, prev.Pools)
	}
	group := gce.ZonalKey(zb, prev.Pools[zb][0].Name)
	if err := cloud.ResizeMIG(ctx, group, 3); err != nil {
		t.Fatal(err)
	}
	before := cloud.Stats().Snapshot()
	got, err := observe(ctx, cloud, cfg, prev, readGroups)
	if err != nil {
		t.Fatal(err)
	}
	calls := gce.Diff(before, cloud.Stats().Snapshot())
	if diff := cmp.Diff([]gce.MethodCount{{Method: "instanceGroupManagers.aggregatedList", Count: 1}}, calls); diff != "" {
		t.Errorf("re-reading the groups made other calls (-want +got):\n%s", diff)
	}
	if n := got.Pools[zb][0].TargetSize; n != 3 {
		t.Errorf("re-read group's target size = %d, want 3", n)
	}
	if got.Template != prev.Template || got.Region != prev.Region || got.Subnetwork != prev.Subnetwork {
		t.Error("the parts not re-read are not the previous observation's")
	}

	// The template goes after its group: not re-read, it is still there.
	if err := cloud.DeleteMIG(ctx, group); err != nil {
		t.Fatal(err)
	}
	if err := cloud.DeleteInstanceTemplate(ctx, gce.GlobalKey(cfg.NodeTemplateName())); err != nil {
		t.Fatal(err)
	}
	if got, err = observe(ctx, cloud, cfg, prev, readGroups); err != nil {
		t.Fatal(err)
	}
	if len(got.Pools) != 0 || got.Template != prev.Template {
		t.Errorf("after the group's and the template's deletes, re-reading the groups shows pools %v and template %v; want no pool, the previous template", got.Pools, got.Template)
	}
	if got, err = observe(ctx, cloud, cfg, prev, readGroups|readTemplate); err != nil {
		t.Fatal(err)
	}
	full, err := Observe(ctx, cloud, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(full, got, cmp.AllowUnexported(Observed{}), ignoreResponse); diff != "" {
		t.Errorf("re-reading what changed differs from a full observation (-full +got):\n%s", diff)
	}
}

// ignoreResponse drops the HTTP metadata each read carries: two reads a
// second apart differ in their Date header, not in what they observed.
var ignoreResponse = cmpopts.IgnoreTypes(googleapi.ServerResponse{})

// TestObserveScope: a flow reads only the parts it touches (scopeOf), each
// with its one request, and a re-read keeps to that scope.
func TestObserveScope(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cloud, cfg := scaleCluster(t, 2)
	for _, tc := range []struct {
		name  string
		args  []string
		reads []string
	}{
		{"a replica", []string{"--replicate-master"}, []string{"addresses.aggregatedList", "disks.aggregatedList", "forwardingRules.get",
			"httpHealthChecks.get", "instances.aggregatedList", "subnetworks.aggregatedList", "targetPools.get"}},
		{"a node pool", []string{"--use-existing-master"}, []string{"addresses.aggregatedList", "forwardingRules.get", "httpHealthChecks.get",
			"instanceGroupManagers.aggregatedList", "instanceTemplates.get", "instances.aggregatedList", "subnetworks.aggregatedList", "targetPools.get"}},
		{"a fresh up", nil, []string{"addresses.aggregatedList", "disks.aggregatedList", "firewalls.list", "forwardingRules.get",
			"httpHealthChecks.get", "instanceGroupManagers.aggregatedList", "instanceTemplates.get", "instances.aggregatedList", "networks.get",
			"subnetworks.aggregatedList", "targetPools.get"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			flow := cfg.Clone()
			flow.ReplicateMaster = slices.Contains(tc.args, "--replicate-master")
			flow.UseExistingMaster = slices.Contains(tc.args, "--use-existing-master")
			scope := scopeOf(flow, "up")
			before := cloud.Stats().Snapshot()
			obs, err := observeScope(ctx, cloud, flow, scope)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range gce.Diff(before, cloud.Stats().Snapshot()) {
				if m.Count != 1 {
					t.Errorf("%s made %d times", m.Method, m.Count)
				}
				got = append(got, m.Method)
			}
			slices.Sort(got)
			if diff := cmp.Diff(tc.reads, got); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			// Verifying after a resize and a pool's change re-reads only
			// what is in scope.
			before = cloud.Stats().Snapshot()
			if _, err := observe(ctx, cloud, flow, obs, readGroups|readTargetPool); err != nil {
				t.Fatal(err)
			}
			got = got[:0]
			for _, m := range gce.Diff(before, cloud.Stats().Snapshot()) {
				got = append(got, m.Method)
			}
			want := []string{"targetPools.get"}
			if scope&readGroups != 0 {
				want = []string{"instanceGroupManagers.aggregatedList", "targetPools.get"}
			}
			slices.Sort(got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("re-read requests (-want +got):\n%s", diff)
			}
			wantPools := 1
			if scope&readGroups == 0 {
				wantPools = 0
			}
			if len(obs.Pools) != wantPools {
				t.Errorf("observed pools %v, want %d zone's", obs.Pools, wantPools)
			}
			if un := statusOf(flow, obs).Unobserved; (scope&readGroups == 0) != slices.Contains(un, "node pools") {
				t.Errorf("status says unobserved %v with scope %011b", un, scope)
			}
		})
	}
}

// A master's alias range from the pods' range proves the range exists: a
// scoped flow need not list the subnetworks for it.
func TestPodRangeOfMasters(t *testing.T) {
	m := func(ranges ...string) *compute.Instance {
		nic := &compute.NetworkInterface{}
		for _, r := range ranges {
			nic.AliasIpRanges = append(nic.AliasIpRanges, &compute.AliasIpRange{IpCidrRange: "/24", SubnetworkRangeName: r})
		}
		return &compute.Instance{NetworkInterfaces: []*compute.NetworkInterface{nic}}
	}
	for _, tc := range []struct {
		name    string
		masters []*compute.Instance
		want    bool
	}{
		{"no master", nil, false},
		{"a master without alias range", []*compute.Instance{m()}, false},
		{"another range", []*compute.Instance{m("other-pods")}, false},
		{"the second master's", []*compute.Instance{m(), m("other-pods", "kubernetes-pods")}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := podRangeOfMasters(tc.masters, "kubernetes-pods")
			if (got != nil) != tc.want || (got != nil && got.RangeName != "kubernetes-pods") {
				t.Errorf("podRangeOfMasters = %+v, want found %v", got, tc.want)
			}
		})
	}
}
