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
	e := newVMEnv(t, emulator.LatencyFast, 10)
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

// TestDiskFromDeprecatedImage: a deprecated image stays usable and the
// DONE operation carries GCE's warning (recorded: computepacketmirroring#6);
// images made before GCE recorded an architecture give disks none.
func TestDiskFromDeprecatedImage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	const old = "projects/debian-cloud/global/images/debian-10-buster-v20210817"
	op := e.do(t, e.svc.Disks.Insert(proj, zone, &compute.Disk{Name: "old", SourceImage: old}))
	want := []*compute.OperationWarnings{{Code: "DEPRECATED_RESOURCE_USED",
		Message: "The resource '" + old + "' is deprecated. A suggested replacement is 'projects/debian-cloud/global/images/debian-10-buster-v20210915'.",
		Data: []*compute.OperationWarningsData{{Key: "resource_name", Value: old},
			{Key: "replacement_suggestion", Value: "A suggested replacement is 'projects/debian-cloud/global/images/debian-10-buster-v20210915'."}}}}
	if diff := cmp.Diff(want, op.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	_, d := e.raw(t, "GET", "zones/"+zone+"/disks/old", nil)
	if a, ok := d["architecture"]; ok {
		t.Errorf("architecture %v, want none for an image that has none", a)
	}
	op = e.do(t, e.svc.Disks.Insert(proj, zone, &compute.Disk{Name: "new", SourceImage: "projects/debian-cloud/global/images/family/debian-10"}))
	if len(op.Warnings) != 0 {
		t.Errorf("current image: warnings %+v", op.Warnings)
	}
}

// TestPublicImageShape: the fields every public image carries (recorded:
// computeinstancebasicexample#3).
func TestPublicImageShape(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	_, im := e.raw(t, "GET", "/compute/v1/projects/debian-cloud/global/images/family/debian-12", nil)
	for k, want := range map[string]any{
		"labels": map[string]any{"public-image": "true"}, "rawDisk": map[string]any{"containerType": "TAR", "source": ""},
		"enableConfidentialCompute": false, "architecture": "X86_64",
	} {
		if !cmp.Equal(im[k], want) {
			t.Errorf("%s = %#v, want %#v", k, im[k], want)
		}
	}
	if codes, ok := im["licenseCodes"].([]any); !ok || len(codes) != 1 {
		t.Errorf("licenseCodes %#v, want one code", im["licenseCodes"])
	} else if _, ok := codes[0].(string); !ok {
		t.Errorf("licenseCodes[0] %#v, want an int64 as a string", codes[0])
	}
}

// TestImageFamilyView: gcloud names an image family through a zonal family
// view (projects/P/zones/-/imageFamilyViews/F); it resolves like the family.
func TestImageFamilyView(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	for _, src := range []string{"projects/debian-cloud/zones/-/imageFamilyViews/debian-12",
		gceURL + "projects/debian-cloud/zones/" + zone + "/imageFamilyViews/debian-12"} {
		e.do(t, e.svc.Disks.Insert(proj, zone, &compute.Disk{Name: "from-view", SourceImage: src}))
		d, err := e.svc.Disks.Get(proj, zone, "from-view").Do()
		if err != nil {
			t.Fatal(err)
		}
		if d.SourceImage != gceURL+"projects/debian-cloud/global/images/debian-12-bookworm-v20261013" {
			t.Errorf("%s: sourceImage %s, want the family's current image", src, d.SourceImage)
		}
		e.do(t, e.svc.Disks.Delete(proj, zone, "from-view"))
	}
	_, err := e.svc.Disks.Insert(proj, zone, &compute.Disk{Name: "nope", SourceImage: "projects/debian-cloud/zones/-/imageFamilyViews/debian-99"}).Do()
	apiErr(t, err, 404, "notFound")
}
