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

func TestInstanceAttachDetachDisk(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyNone)
	e.insert(t, vmBasic("vm-1"))
	e.insert(t, vmBasic("vm-2"))
	e.ok(t, e.svc.Disks.Insert(vmProj, vmZone, &compute.Disk{Name: "data", SizeGb: 20}))
	e.ok(t, e.svc.Disks.Insert(vmProj, vmZone2, &compute.Disk{Name: "far"}))

	op := e.ok(t, e.svc.Instances.AttachDisk(vmProj, vmZone, "vm-1", &compute.AttachedDisk{Source: "zones/" + vmZone + "/disks/data"}))
	if op.OperationType != "attachDisk" {
		t.Errorf("op type %q", op.OperationType)
	}
	in := e.get(t, "vm-1")
	if len(in.Disks) != 2 || in.Disks[1].DeviceName != "persistent-disk-1" || in.Disks[1].Index != 1 || in.Disks[1].DiskSizeGb != 20 || in.Disks[1].Boot {
		t.Errorf("attached disk %+v", in.Disks[1])
	}
	d, _ := e.svc.Disks.Get(vmProj, vmZone, "data").Do()
	if !cmp.Equal(d.Users, []string{in.SelfLink}) || d.LastAttachTimestamp == "" {
		t.Errorf("disk users %v lastAttach %q", d.Users, d.LastAttachTimestamp)
	}
	_, err := e.svc.Instances.AttachDisk(vmProj, vmZone, "vm-1", &compute.AttachedDisk{Source: vmLink("zones/" + vmZone2 + "/disks/far")}).Do()
	vmWantErr(t, err, 400, "invalid")
	_, err = e.svc.Instances.AttachDisk(vmProj, vmZone, "vm-1", &compute.AttachedDisk{Source: "zones/" + vmZone + "/disks/nope"}).Do()
	vmWantErr(t, err, 404, "notFound")
	e.opErr(t, e.svc.Instances.AttachDisk(vmProj, vmZone, "vm-2", &compute.AttachedDisk{Source: "zones/" + vmZone + "/disks/data"}),
		"RESOURCE_IN_USE_BY_ANOTHER_RESOURCE", 400)
	_, err = e.svc.Disks.Delete(vmProj, vmZone, "data").Do()
	ge := vmWantErr(t, err, 400, "resourceInUseByAnotherResource")
	if want := "The disk resource 'projects/test-project/zones/us-central1-a/disks/data' is already being used by 'projects/test-project/zones/us-central1-a/instances/vm-1'"; ge.Message != want {
		t.Errorf("message %q, want %q", ge.Message, want)
	}

	_, err = e.svc.Instances.DetachDisk(vmProj, vmZone, "vm-1", "persistent-disk-7").Do()
	vmWantErr(t, err, 400, "invalid")
	_, err = e.svc.Instances.DetachDisk(vmProj, vmZone, "vm-1", "persistent-disk-0").Do()
	vmWantErr(t, err, 400, "invalid") // the boot disk of a running VM
	op = e.ok(t, e.svc.Instances.DetachDisk(vmProj, vmZone, "vm-1", "persistent-disk-1"))
	if op.OperationType != "detachDisk" {
		t.Errorf("op type %q", op.OperationType)
	}
	if in := e.get(t, "vm-1"); len(in.Disks) != 1 {
		t.Errorf("disks after detach: %d", len(in.Disks))
	}
	d, _ = e.svc.Disks.Get(vmProj, vmZone, "data").Do()
	if len(d.Users) != 0 || d.LastDetachTimestamp == "" {
		t.Errorf("disk after detach: users %v lastDetach %q", d.Users, d.LastDetachTimestamp)
	}
	e.ok(t, e.svc.Instances.AttachDisk(vmProj, vmZone, "vm-2", &compute.AttachedDisk{Source: "zones/" + vmZone + "/disks/data", DeviceName: "etcd"}))
	if in := e.get(t, "vm-2"); in.Disks[1].DeviceName != "etcd" {
		t.Errorf("device name %q", in.Disks[1].DeviceName)
	}
}
