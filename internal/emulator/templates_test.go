package emulator_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hakube/hakube/internal/emulator"
	compute "google.golang.org/api/compute/v1"
)

// vmTemplate is the template body KCC recorded against real GCE.
func vmTemplate(name string) *compute.InstanceTemplate {
	return &compute.InstanceTemplate{
		Name: name,
		Properties: &compute.InstanceProperties{
			MachineType: "n1-standard-1",
			Disks: []*compute.AttachedDisk{{AutoDelete: true, Boot: true, Interface: "SCSI", Mode: "READ_WRITE", Type: "PERSISTENT",
				InitializeParams: &compute.AttachedDiskInitializeParams{DiskType: "pd-standard", SourceImage: vmImage}}},
			Labels:            map[string]string{"cluster": "ha"},
			Metadata:          &compute.Metadata{},
			NetworkInterfaces: []*compute.NetworkInterface{{Network: "projects/" + vmProj + "/global/networks/default"}},
			Scheduling:        &compute.Scheduling{OnHostMaintenance: "MIGRATE"},
			Tags:              &compute.Tags{},
		},
	}
}

func TestTemplateShape(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyNone)
	op := e.ok(t, e.svc.InstanceTemplates.Insert(vmProj, vmTemplate("tpl")))
	if op.OperationType != "compute.instanceTemplates.insert" || op.Zone != "" || op.Region != "" {
		t.Errorf("insert op type %q zone %q region %q", op.OperationType, op.Zone, op.Region)
	}
	raw := e.rawGet(t, "global/instanceTemplates/tpl")
	props := raw["properties"].(map[string]any)
	md := props["metadata"].(map[string]any)
	want := map[string]any{
		"kind":        "compute#instanceTemplate",
		"name":        "tpl",
		"description": "",
		"selfLink":    vmLink("global/instanceTemplates/tpl"),
		"properties": map[string]any{
			"machineType": "n1-standard-1",
			"disks": []any{map[string]any{
				"autoDelete": true, "boot": true, "deviceName": "persistent-disk-0", "index": float64(0),
				"interface": "SCSI", "kind": "compute#attachedDisk", "mode": "READ_WRITE", "type": "PERSISTENT",
				"initializeParams": map[string]any{"diskType": "pd-standard", "sourceImage": vmImage},
			}},
			"labels":   map[string]any{"cluster": "ha"},
			"metadata": map[string]any{"fingerprint": md["fingerprint"], "kind": "compute#metadata"},
			"networkInterfaces": []any{map[string]any{
				"kind": "compute#networkInterface", "name": "nic0", "network": vmLink("global/networks/default"),
			}},
			"scheduling": map[string]any{"automaticRestart": true, "onHostMaintenance": "MIGRATE", "preemptible": false, "provisioningModel": "STANDARD"},
			"tags":       map[string]any{},
		},
	}
	delete(raw, "id")
	delete(raw, "creationTimestamp")
	if diff := cmp.Diff(want, raw); diff != "" {
		t.Errorf("template GET (-want +got):\n%s", diff)
	}
	if md["fingerprint"] == nil || md["fingerprint"] == "" {
		t.Error("template metadata needs a fingerprint")
	}
	list, err := e.svc.InstanceTemplates.List(vmProj).Do()
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("list: %v", err)
	}
}

func TestTemplateErrors(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyNone)
	e.ok(t, e.svc.InstanceTemplates.Insert(vmProj, vmTemplate("taken")))
	tests := []struct {
		name   string
		mod    func(*compute.InstanceTemplate)
		code   int
		reason string
	}{
		{"duplicate", func(t *compute.InstanceTemplate) { t.Name = "taken" }, 409, "alreadyExists"},
		{"no properties", func(t *compute.InstanceTemplate) { t.Properties = nil }, 400, "required"},
		{"no machine type", func(t *compute.InstanceTemplate) { t.Properties.MachineType = "" }, 400, "required"},
		{"unknown machine type", func(t *compute.InstanceTemplate) { t.Properties.MachineType = "n9-huge" }, 400, "invalid"},
		{"unknown image", func(t *compute.InstanceTemplate) {
			t.Properties.Disks[0].InitializeParams.SourceImage = "projects/debian-cloud/global/images/family/nope"
		}, 404, "notFound"},
		{"unknown network", func(t *compute.InstanceTemplate) { t.Properties.NetworkInterfaces[0].Network = "global/networks/nope" }, 404, "notFound"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tpl := vmTemplate("x")
			tc.mod(tpl)
			_, err := e.svc.InstanceTemplates.Insert(vmProj, tpl).Do()
			vmWantErr(t, err, tc.code, tc.reason)
		})
	}
	_, err := e.svc.InstanceTemplates.Get(vmProj, "x").Do()
	vmWantErr(t, err, 404, "notFound")
}

func TestTemplateDeleteInUse(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyNone)
	e.ok(t, e.svc.InstanceTemplates.Insert(vmProj, vmTemplate("tpl")))
	e.ok(t, e.svc.InstanceGroupManagers.Insert(vmProj, vmZone, vmMIG("grp", "tpl", 0)))
	_, err := e.svc.InstanceTemplates.Delete(vmProj, "tpl").Do()
	ge := vmWantErr(t, err, 400, "resourceInUseByAnotherResource")
	want := "The instance_template resource 'projects/test-project/global/instanceTemplates/tpl' is already being used by 'projects/test-project/zones/us-central1-a/instanceGroupManagers/grp'"
	if ge.Message != want {
		t.Errorf("message %q\nwant    %q", ge.Message, want)
	}
	e.ok(t, e.svc.InstanceGroupManagers.Delete(vmProj, vmZone, "grp"))
	op := e.ok(t, e.svc.InstanceTemplates.Delete(vmProj, "tpl"))
	if op.OperationType != "delete" {
		t.Errorf("delete op type %q", op.OperationType)
	}
	_, err = e.svc.InstanceTemplates.Get(vmProj, "tpl").Do()
	vmWantErr(t, err, 404, "notFound")
}

// TestTemplatesAggregatedList: gcloud's `instance-templates list` calls
// aggregated/instanceTemplates; global templates come under "global", and
// every region is a scope of its own (with no results here).
func TestTemplatesAggregatedList(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyNone)
	for _, name := range []string{"tpl-b", "tpl-a", "other"} {
		e.ok(t, e.svc.InstanceTemplates.Insert(vmProj, vmTemplate(name)))
	}
	for _, tc := range []struct {
		name, filter string
		want         map[string][]string // scope → template names; scopes with none are left out
	}{
		{"all", "", map[string][]string{"global": {"other", "tpl-a", "tpl-b"}}},
		{"filtered", "name eq tpl-.*", map[string][]string{"global": {"tpl-a", "tpl-b"}}},
		{"nothing matches", "name eq nope", map[string][]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			agg, err := e.svc.InstanceTemplates.AggregatedList(vmProj).Filter(tc.filter).Do()
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]string{}
			for scope, l := range agg.Items {
				if len(l.InstanceTemplates) > 0 {
					for _, it := range l.InstanceTemplates {
						got[scope] = append(got[scope], it.Name)
					}
				} else if l.Warning == nil || l.Warning.Code != "NO_RESULTS_ON_PAGE" {
					t.Errorf("scope %s: no templates and no NO_RESULTS_ON_PAGE warning: %+v", scope, l.Warning)
				}
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("templates by scope (-want +got):\n%s", d)
			}
			if _, ok := agg.Items["global"]; !ok {
				t.Error("no global scope")
			}
			if _, ok := agg.Items["regions/"+vmRegion]; !ok {
				t.Errorf("no scope for region %s", vmRegion)
			}
			if agg.Kind != "compute#instanceTemplateAggregatedList" || agg.Id != "projects/"+vmProj+"/aggregated/instanceTemplates" {
				t.Errorf("kind %q id %q", agg.Kind, agg.Id)
			}
		})
	}
	// maxResults counts templates across scopes.
	var pages [][]string
	err := e.svc.InstanceTemplates.AggregatedList(vmProj).MaxResults(2).Pages(e.ctx, func(l *compute.InstanceTemplateAggregatedList) error {
		var names []string
		for _, it := range l.Items["global"].InstanceTemplates {
			names = append(names, it.Name)
		}
		pages = append(pages, names)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([][]string{{"other", "tpl-a"}, {"tpl-b"}}, pages); d != "" {
		t.Errorf("pages (-want +got):\n%s", d)
	}
}
