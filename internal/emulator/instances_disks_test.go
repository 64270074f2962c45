package emulator_test

import (
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hakube/hakube/internal/emulator"
	compute "google.golang.org/api/compute/v1"
)

// TestInstanceSetDiskAutoDelete: the flag set on an attached disk decides
// whether deleting the instance deletes the disk (what `gcloud compute
// instances delete --delete-disks` relies on).
func TestInstanceSetDiskAutoDelete(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		bootAuto bool            // the boot disk's autoDelete at insert
		set      map[string]bool // device name → autoDelete, set before the delete
		survive  []string        // disks left once the instance is gone
	}{
		{"nothing set", false, nil, []string{"data", "vm"}},
		{"data disk", false, map[string]bool{"data": true}, []string{"vm"}},
		{"boot disk", false, map[string]bool{"persistent-disk-0": true}, []string{"data"}},
		{"boot disk kept", true, map[string]bool{"persistent-disk-0": false}, []string{"data", "vm"}},
		{"all disks", false, map[string]bool{"persistent-disk-0": true, "data": true}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newVMEnv(t, emulator.LatencyNone)
			in := vmBasic("vm")
			in.Disks[0].AutoDelete = tc.bootAuto
			e.insert(t, in)
			e.ok(t, e.svc.Disks.Insert(vmProj, vmZone, &compute.Disk{Name: "data", SizeGb: 20}))
			e.ok(t, e.svc.Instances.AttachDisk(vmProj, vmZone, "vm", &compute.AttachedDisk{Source: "zones/" + vmZone + "/disks/data", DeviceName: "data"}))
			for dev, auto := range tc.set {
				op := e.ok(t, e.svc.Instances.SetDiskAutoDelete(vmProj, vmZone, "vm", auto, dev))
				if op.OperationType != "setDiskAutoDelete" || op.Zone != vmLink("zones/"+vmZone) || op.TargetLink != vmLink("zones/"+vmZone+"/instances/vm") {
					t.Errorf("operation type %q zone %q target %q", op.OperationType, op.Zone, op.TargetLink)
				}
			}
			got := map[string]bool{}
			for _, ad := range e.get(t, "vm").Disks {
				got[ad.DeviceName] = ad.AutoDelete
			}
			want := map[string]bool{"persistent-disk-0": tc.bootAuto, "data": false}
			for dev, auto := range tc.set {
				want[dev] = auto
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("autoDelete by device (-want +got):\n%s", d)
			}

			e.ok(t, e.svc.Instances.Delete(vmProj, vmZone, "vm"))
			l, err := e.svc.Disks.List(vmProj, vmZone).Do()
			if err != nil {
				t.Fatal(err)
			}
			var left []string
			for _, d := range l.Items {
				left = append(left, d.Name)
				if len(d.Users) != 0 {
					t.Errorf("disk %s still used by %v", d.Name, d.Users)
				}
			}
			sort.Strings(left)
			if d := cmp.Diff(tc.survive, left); d != "" {
				t.Errorf("disks after the delete (-want +got):\n%s", d)
			}
		})
	}
}

func TestInstanceSetDiskAutoDeleteErrors(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyNone)
	e.insert(t, vmBasic("vm"))
	for _, tc := range []struct {
		name, instance, device string
		code                   int
		reason, message        string
	}{
		{"unknown device", "vm", "nope", 400, "invalid", "No attached disk found with device name 'nope'"},
		{"unknown instance", "gone", "persistent-disk-0", 404, "notFound",
			"The resource 'projects/test-project/zones/us-central1-a/instances/gone' was not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.Instances.SetDiskAutoDelete(vmProj, vmZone, tc.instance, true, tc.device).Do()
			if ge := vmWantErr(t, err, tc.code, tc.reason); ge.Message != tc.message {
				t.Errorf("message %q, want %q", ge.Message, tc.message)
			}
		})
	}
	// Both query parameters are required.
	for _, q := range []string{"autoDelete=true", "deviceName=persistent-disk-0", "autoDelete=maybe&deviceName=persistent-disk-0"} {
		code, body := (&env{Emulator: e.Emulator}).raw(t, "POST", "zones/"+vmZone+"/instances/vm/setDiskAutoDelete?"+q, nil)
		if code != 400 {
			t.Errorf("setDiskAutoDelete?%s: %d %v, want 400", q, code, body)
		}
	}
}
