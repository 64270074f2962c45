package emulator_test

import (
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hakube/hakube/internal/emulator"
	compute "google.golang.org/api/compute/v1"
)

func TestDiskInsertDefaults(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyNone)
	tests := []struct {
		name      string
		disk      *compute.Disk
		image     string // sourceImage query parameter
		wantSize  int64
		wantType  string
		wantImage string
	}{
		{"blank pd-standard", &compute.Disk{Name: "blank"}, "", 500, "pd-standard", ""},
		{"blank pd-ssd", &compute.Disk{Name: "ssd", Type: "zones/" + vmZone + "/diskTypes/pd-ssd"}, "", 100, "pd-ssd", ""},
		{"blank pd-balanced", &compute.Disk{Name: "bal", Type: vmLink("zones/" + vmZone + "/diskTypes/pd-balanced")}, "", 100, "pd-balanced", ""},
		{"image family in body", &compute.Disk{Name: "img", SourceImage: vmImage}, "", 10, "pd-standard", "debian-12-bookworm-v20261013"},
		{"image as query parameter", &compute.Disk{Name: "img-q"}, "projects/ubuntu-os-cloud/global/images/family/ubuntu-2204-lts", 10, "pd-standard", "ubuntu-2204-jammy-v20261020"},
		{"explicit size", &compute.Disk{Name: "big", SizeGb: 2000}, "", 2000, "pd-standard", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			call := e.svc.Disks.Insert(vmProj, vmZone, tc.disk)
			if tc.image != "" {
				call = call.SourceImage(tc.image)
			}
			op := e.ok(t, call)
			if op.OperationType != "insert" || op.Zone == "" {
				t.Errorf("op type %q zone %q", op.OperationType, op.Zone)
			}
			d, err := e.svc.Disks.Get(vmProj, vmZone, tc.disk.Name).Do()
			if err != nil {
				t.Fatal(err)
			}
			if d.SizeGb != tc.wantSize || d.Type != vmLink("zones/"+vmZone+"/diskTypes/"+tc.wantType) || d.Status != "READY" ||
				d.Kind != "compute#disk" || d.LabelFingerprint == "" || d.Zone != vmLink("zones/"+vmZone) {
				t.Errorf("disk %+v", d)
			}
			if tc.wantImage != "" {
				if vmLast(d.SourceImage) != tc.wantImage || d.SourceImageId == "" || d.Architecture != "X86_64" || len(d.Licenses) == 0 {
					t.Errorf("image disk: sourceImage %q id %q arch %q", d.SourceImage, d.SourceImageId, d.Architecture)
				}
			} else if d.SourceImage != "" {
				t.Errorf("blank disk has sourceImage %q", d.SourceImage)
			}
			raw := e.rawGet(t, "zones/"+vmZone+"/disks/"+tc.disk.Name)
			if raw["sizeGb"] != strconv.FormatInt(tc.wantSize, 10) || raw["physicalBlockSizeBytes"] != "4096" {
				t.Errorf("wire sizeGb %#v physicalBlockSizeBytes %#v", raw["sizeGb"], raw["physicalBlockSizeBytes"])
			}
			for _, k := range []string{"users", "description"} {
				if _, ok := raw[k]; ok {
					t.Errorf("%s must be absent on an unattached disk without description", k)
				}
			}
		})
	}
}

func TestDiskLifecycleAndLabels(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyFast)
	op, err := e.svc.Disks.Insert(vmProj, vmZone, &compute.Disk{Name: "d", Labels: map[string]string{"env": "test"}}).Do()
	if err != nil {
		t.Fatal(err)
	}
	d, _ := e.svc.Disks.Get(vmProj, vmZone, "d").Do()
	if d.Status != "CREATING" {
		t.Errorf("right after insert: %s, want CREATING", d.Status)
	}
	e.waitOp(t, op)
	d, _ = e.svc.Disks.Get(vmProj, vmZone, "d").Do()
	if d.Status != "READY" || !cmp.Equal(d.Labels, map[string]string{"env": "test"}) {
		t.Errorf("after DONE: %s labels %v (insert-time labels are applied to disks)", d.Status, d.Labels)
	}
	_, err = e.svc.Disks.SetLabels(vmProj, vmZone, "d", &compute.ZoneSetLabelsRequest{LabelFingerprint: "c3RhbGU=", Labels: map[string]string{"a": "b"}}).Do()
	vmWantErr(t, err, 412, "conditionNotMet")
	op = e.ok(t, e.svc.Disks.SetLabels(vmProj, vmZone, "d", &compute.ZoneSetLabelsRequest{LabelFingerprint: d.LabelFingerprint, Labels: map[string]string{"a": "b"}}))
	if op.OperationType != "setLabels" {
		t.Errorf("setLabels op type %q", op.OperationType)
	}
	if d2, _ := e.svc.Disks.Get(vmProj, vmZone, "d").Do(); !cmp.Equal(d2.Labels, map[string]string{"a": "b"}) || d2.LabelFingerprint == d.LabelFingerprint {
		t.Errorf("after setLabels: %v %q", d2.Labels, d2.LabelFingerprint)
	}
	op, err = e.svc.Disks.Delete(vmProj, vmZone, "d").Do()
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := e.svc.Disks.Get(vmProj, vmZone, "d").Do(); d.Status != "DELETING" {
		t.Errorf("right after delete: %s", d.Status)
	}
	e.waitOp(t, op)
	_, err = e.svc.Disks.Get(vmProj, vmZone, "d").Do()
	vmWantErr(t, err, 404, "notFound")
}

func TestDiskErrors(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyNone)
	if err := e.Control.SetQuota(e.ctx, emulator.QuotaLimit{Project: vmProj, Region: vmRegion, Metric: "SSD_TOTAL_GB", Limit: 150}); err != nil {
		t.Fatal(err)
	}
	if err := e.Control.SetQuota(e.ctx, emulator.QuotaLimit{Project: vmProj, Region: vmRegion, Metric: "DISKS_TOTAL_GB", Limit: 600}); err != nil {
		t.Fatal(err)
	}
	e.ok(t, e.svc.Disks.Insert(vmProj, vmZone, &compute.Disk{Name: "taken"}))
	tests := []struct {
		name   string
		disk   *compute.Disk
		code   int
		reason string
	}{
		{"duplicate", &compute.Disk{Name: "taken"}, 409, "alreadyExists"},
		{"bad name", &compute.Disk{Name: "-x"}, 400, "invalid"},
		{"unknown type", &compute.Disk{Name: "x", Type: "zones/" + vmZone + "/diskTypes/pd-gold"}, 404, "notFound"},
		{"unknown image", &compute.Disk{Name: "x", SourceImage: "projects/debian-cloud/global/images/debian-1"}, 404, "notFound"},
		{"smaller than image", &compute.Disk{Name: "x", SourceImage: vmImage, SizeGb: 5}, 400, "invalid"},
		{"DISKS_TOTAL_GB", &compute.Disk{Name: "x", SizeGb: 200}, 403, "quotaExceeded"},
		{"SSD_TOTAL_GB", &compute.Disk{Name: "x", SizeGb: 200, Type: "zones/" + vmZone + "/diskTypes/pd-ssd"}, 403, "quotaExceeded"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.Disks.Insert(vmProj, vmZone, tc.disk).Do()
			vmWantErr(t, err, tc.code, tc.reason)
		})
	}
	e.ok(t, e.svc.Disks.Insert(vmProj, vmZone, &compute.Disk{Name: "ssd", SizeGb: 150, Type: "zones/" + vmZone + "/diskTypes/pd-ssd"}))
}

func TestDisksAggregatedList(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyNone)
	e.ok(t, e.svc.Disks.Insert(vmProj, vmZone, &compute.Disk{Name: "a"}))
	e.ok(t, e.svc.Disks.Insert(vmProj, vmZone2, &compute.Disk{Name: "b"}))
	agg, err := e.svc.Disks.AggregatedList(vmProj).Do()
	if err != nil {
		t.Fatal(err)
	}
	if len(agg.Items["zones/"+vmZone].Disks) != 1 || len(agg.Items["zones/"+vmZone2].Disks) != 1 || agg.Kind != "compute#diskAggregatedList" {
		t.Errorf("aggregated %+v", agg.Items)
	}
	list, err := e.svc.Disks.List(vmProj, vmZone2).Do()
	if err != nil || len(list.Items) != 1 || list.Items[0].Name != "b" {
		t.Errorf("list: %v %+v", err, list)
	}
}
