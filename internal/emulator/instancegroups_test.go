package emulator_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hakube/hakube/internal/emulator"
	compute "google.golang.org/api/compute/v1"
)

func TestInstanceGroupsOfMIGs(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyNone)
	e.ok(t, e.svc.InstanceTemplates.Insert(vmProj, vmTemplate("tpl")))
	m := vmMIG("api", "tpl", 3)
	m.NamedPorts = []*compute.NamedPort{{Name: "https", Port: 6443}}
	e.ok(t, e.svc.InstanceGroupManagers.Insert(vmProj, vmZone, m))
	e.ok(t, e.svc.InstanceGroupManagers.Insert(vmProj, vmZone, vmMIG("empty", "tpl", 0)))

	list, err := e.svc.InstanceGroups.List(vmProj, vmZone).Do()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, g := range list.Items {
		got[g.Name] = g.Size
	}
	if diff := cmp.Diff(map[string]int64{"api": 3, "empty": 0}, got); diff != "" {
		t.Errorf("group sizes (-want +got):\n%s", diff)
	}
	if raw := e.rawGet(t, "zones/"+vmZone+"/instanceGroups/empty"); raw["size"] != float64(0) {
		t.Errorf("size of an empty group must be sent as 0, got %#v", raw["size"])
	}
	g, err := e.svc.InstanceGroups.Get(vmProj, vmZone, "api").Do()
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(g.NamedPorts, []*compute.NamedPort{{Name: "https", Port: 6443}}, cmp.AllowUnexported()) {
		t.Errorf("named ports %+v", g.NamedPorts)
	}
	_, err = e.svc.InstanceGroups.Get(vmProj, vmZone, "nope").Do()
	vmWantErr(t, err, 404, "notFound")

	// listInstances: ALL, RUNNING, pages.
	names := e.vmNames(t)
	e.ok(t, e.svc.Instances.Stop(vmProj, vmZone, names[0]))
	all, err := e.svc.InstanceGroups.ListInstances(vmProj, vmZone, "api", &compute.InstanceGroupsListInstancesRequest{InstanceState: "ALL"}).Do()
	if err != nil {
		t.Fatal(err)
	}
	if all.Kind != "compute#instanceGroupsListInstances" || len(all.Items) != 3 || all.Items[0].Status != "TERMINATED" ||
		all.Items[0].Instance != vmLink("zones/"+vmZone+"/instances/"+names[0]) || all.Items[0].NamedPorts[0].Port != 6443 {
		t.Errorf("listInstances ALL: %+v", all.Items)
	}
	running, err := e.svc.InstanceGroups.ListInstances(vmProj, vmZone, "api", &compute.InstanceGroupsListInstancesRequest{InstanceState: "RUNNING"}).Do()
	if err != nil || len(running.Items) != 2 {
		t.Errorf("listInstances RUNNING: %v %d items", err, len(running.Items))
	}
	page, err := e.svc.InstanceGroups.ListInstances(vmProj, vmZone, "api", &compute.InstanceGroupsListInstancesRequest{}).MaxResults(2).Do()
	if err != nil || len(page.Items) != 2 || page.NextPageToken == "" {
		t.Fatalf("first page: %v %+v", err, page)
	}
	page, err = e.svc.InstanceGroups.ListInstances(vmProj, vmZone, "api", &compute.InstanceGroupsListInstancesRequest{}).MaxResults(2).PageToken(page.NextPageToken).Do()
	if err != nil || len(page.Items) != 1 || page.NextPageToken != "" {
		t.Errorf("last page: %v %+v", err, page)
	}
}
