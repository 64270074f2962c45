// Instances after insert: status transitions, delete, stop and start.

package emulator_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hakube/hakube/internal/emulator"
	compute "google.golang.org/api/compute/v1"
)

func TestInstanceLifecycle(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyFast, 4)
	op, err := e.svc.Instances.Insert(vmProj, vmZone, vmWithNAT(vmBasic("vm-1"), "")).Do()
	if err != nil {
		t.Fatal(err)
	}
	if in := e.get(t, "vm-1"); in.Status != "PROVISIONING" || op.Status != "RUNNING" {
		t.Errorf("right after insert: instance %s, op %s; want PROVISIONING, RUNNING", in.Status, op.Status)
	}
	// PROVISIONING → STAGING → RUNNING.
	var seen []string
	for {
		st := e.get(t, "vm-1").Status
		if len(seen) == 0 || seen[len(seen)-1] != st {
			seen = append(seen, st)
		}
		if st == "RUNNING" {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	if !cmp.Equal(seen, []string{"PROVISIONING", "STAGING", "RUNNING"}) {
		t.Errorf("statuses seen %v", seen)
	}
	e.waitOp(t, op)
	in := e.get(t, "vm-1")
	if in.Status != "RUNNING" || in.LastStartTimestamp == "" {
		t.Fatalf("after insert DONE: %s", in.Status)
	}
	firstIP := vmNatOf(in)

	op, err = e.svc.Instances.Stop(vmProj, vmZone, "vm-1").Do()
	if err != nil {
		t.Fatal(err)
	}
	if s := e.get(t, "vm-1").Status; s != "STOPPING" || op.OperationType != "stop" {
		t.Errorf("right after stop: %s (op %s)", s, op.OperationType)
	}
	e.waitOp(t, op)
	in = e.get(t, "vm-1")
	if in.Status != "TERMINATED" || in.LastStopTimestamp == "" || in.CpuPlatform != "Unknown CPU Platform" {
		t.Errorf("stopped: status %s lastStop %q cpu %q", in.Status, in.LastStopTimestamp, in.CpuPlatform)
	}
	if len(in.NetworkInterfaces[0].AccessConfigs) != 1 || vmNatOf(in) != "" {
		t.Errorf("a stopped VM keeps its access config without the ephemeral IP: %+v", in.NetworkInterfaces[0].AccessConfigs)
	}
	// The released ephemeral IP can be reserved by anyone now.
	e.ok(t, e.svc.Addresses.Insert(vmProj, vmRegion, &compute.Address{Name: "grab", Address: firstIP}))

	e.ok(t, e.svc.Instances.Stop(vmProj, vmZone, "vm-1")) // stop on TERMINATED: a successful no-op
	op, err = e.svc.Instances.Start(vmProj, vmZone, "vm-1").Do()
	if err != nil {
		t.Fatal(err)
	}
	if s := e.get(t, "vm-1").Status; s != "STAGING" {
		t.Errorf("right after start: %s, want STAGING", s)
	}
	e.waitOp(t, op)
	in = e.get(t, "vm-1")
	if in.Status != "RUNNING" || vmNatOf(in) == "" || vmNatOf(in) == firstIP {
		t.Errorf("started: status %s natIP %q (first %q): want RUNNING with a new ephemeral IP", in.Status, vmNatOf(in), firstIP)
	}
	e.ok(t, e.svc.Instances.Start(vmProj, vmZone, "vm-1")) // start on RUNNING: a successful no-op
	e.ok(t, e.svc.Instances.Reset(vmProj, vmZone, "vm-1"))
	if s := e.get(t, "vm-1").Status; s != "RUNNING" {
		t.Errorf("after reset: %s", s)
	}
}

func TestInstanceStaticIPSurvivesStop(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyNone)
	a := e.reserve(t, vmRegion, "master-ip")
	in := e.insert(t, vmWithNAT(vmBasic("vm-1"), a.Address))
	if vmNatOf(in) != a.Address {
		t.Fatalf("natIP %q, want %q", vmNatOf(in), a.Address)
	}
	a, _ = e.svc.Addresses.Get(vmProj, vmRegion, "master-ip").Do()
	if a.Status != "IN_USE" || !cmp.Equal(a.Users, []string{in.SelfLink}) {
		t.Errorf("address while used: %s %v", a.Status, a.Users)
	}
	e.ok(t, e.svc.Instances.Stop(vmProj, vmZone, "vm-1"))
	if got := vmNatOf(e.get(t, "vm-1")); got != a.Address {
		t.Errorf("stopped VM natIP %q, want the static %q", got, a.Address)
	}
	if a, _ := e.svc.Addresses.Get(vmProj, vmRegion, "master-ip").Do(); a.Status != "IN_USE" {
		t.Errorf("static address of a stopped VM: %s, want IN_USE", a.Status)
	}
	e.ok(t, e.svc.Instances.Start(vmProj, vmZone, "vm-1"))
	if got := vmNatOf(e.get(t, "vm-1")); got != a.Address {
		t.Errorf("restarted VM natIP %q, want %q", got, a.Address)
	}
	// Reset on a stopped VM is refused.
	e.ok(t, e.svc.Instances.Stop(vmProj, vmZone, "vm-1"))
	_, err := e.svc.Instances.Reset(vmProj, vmZone, "vm-1").Do()
	vmWantErr(t, err, 400, "resourceNotReady")
}

func TestInstanceBusy(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyFast)
	e.insert(t, vmBasic("vm-1"))
	op, err := e.svc.Instances.Stop(vmProj, vmZone, "vm-1").Do()
	if err != nil {
		t.Fatal(err)
	}
	in := e.get(t, "vm-1")
	_, err = e.svc.Instances.SetLabels(vmProj, vmZone, "vm-1", &compute.InstancesSetLabelsRequest{
		LabelFingerprint: in.LabelFingerprint, Labels: map[string]string{"a": "b"}}).Do()
	vmWantErr(t, err, 400, "resourceNotReady")
	_, err = e.svc.Instances.Start(vmProj, vmZone, "vm-1").Do()
	vmWantErr(t, err, 400, "resourceNotReady")
	// Delete is allowed while another operation runs.
	e.ok(t, e.svc.Instances.Delete(vmProj, vmZone, "vm-1"))
	e.waitOp(t, op)
	if _, err := e.svc.Instances.Get(vmProj, vmZone, "vm-1").Do(); err == nil {
		t.Error("instance survived its delete")
	} else {
		vmWantErr(t, err, 404, "notFound")
	}
}

func TestInstanceDeleteWhileCreating(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyFast)
	ins, err := e.svc.Instances.Insert(vmProj, vmZone, vmBasic("vm-1")).Do()
	if err != nil {
		t.Fatal(err)
	}
	del, err := e.svc.Instances.Delete(vmProj, vmZone, "vm-1").Do()
	if err != nil {
		t.Fatalf("delete while PROVISIONING must be accepted: %v", err)
	}
	if s := e.get(t, "vm-1").Status; s != "STOPPING" {
		t.Errorf("status right after delete: %s", s)
	}
	ins = e.waitOp(t, ins)
	if ins.Error == nil || ins.Error.Errors[0].Code != "CONFLICT" || ins.HttpErrorStatusCode != 409 {
		t.Errorf("insert op: %+v (HTTP %d), want CONFLICT 409", ins.Error, ins.HttpErrorStatusCode)
	}
	if del = e.waitOp(t, del); del.Error != nil {
		t.Errorf("delete op failed: %+v", del.Error.Errors[0])
	}
	_, err = e.svc.Instances.Get(vmProj, vmZone, "vm-1").Do()
	vmWantErr(t, err, 404, "notFound")
	if d, _ := e.svc.Disks.List(vmProj, vmZone).Do(); len(d.Items) != 0 {
		t.Errorf("the aborted insert left %d disks", len(d.Items))
	}
}

func TestInstanceDeleteCleansUp(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyNone)
	static := e.reserve(t, vmRegion, "ip")
	e.ok(t, e.svc.Disks.Insert(vmProj, vmZone, &compute.Disk{Name: "data"}))
	spec := vmWithNAT(vmBasic("a"), static.Address)
	spec.Disks[0].AutoDelete = true
	spec.Disks = append(spec.Disks, &compute.AttachedDisk{Source: "zones/" + vmZone + "/disks/data"})
	a := e.insert(t, spec)
	b := e.insert(t, vmWithNAT(vmBasic("b"), ""))
	ephemeral, internal := vmNatOf(b), b.NetworkInterfaces[0].NetworkIP
	e.ok(t, e.svc.TargetPools.Insert(vmProj, vmRegion, &compute.TargetPool{Name: "pool", Instances: []string{a.SelfLink, b.SelfLink}}))

	e.ok(t, e.svc.Instances.Delete(vmProj, vmZone, "a"))
	if _, err := e.svc.Disks.Get(vmProj, vmZone, "a").Do(); err == nil {
		t.Error("autoDelete boot disk survived")
	}
	data, _ := e.svc.Disks.Get(vmProj, vmZone, "data").Do()
	if len(data.Users) != 0 || data.LastDetachTimestamp == "" {
		t.Errorf("kept disk: users %v lastDetach %q", data.Users, data.LastDetachTimestamp)
	}
	if raw := e.rawGet(t, "zones/"+vmZone+"/disks/data"); raw["users"] != nil {
		t.Errorf("users key must be absent when detached: %v", raw["users"])
	}
	if ad, _ := e.svc.Addresses.Get(vmProj, vmRegion, "ip").Do(); ad.Status != "RESERVED" || len(ad.Users) != 0 {
		t.Errorf("static address after delete: %s %v", ad.Status, ad.Users)
	}
	pool, _ := e.svc.TargetPools.Get(vmProj, vmRegion, "pool").Do()
	if !cmp.Equal(pool.Instances, []string{b.SelfLink}) {
		t.Errorf("pool members %v, want only b", pool.Instances)
	}

	// b's default boot disk has autoDelete false: it stays; its IPs are freed.
	e.ok(t, e.svc.Instances.Delete(vmProj, vmZone, "b"))
	if _, err := e.svc.Disks.Get(vmProj, vmZone, "b").Do(); err != nil {
		t.Errorf("boot disk without autoDelete must stay: %v", err)
	}
	e.ok(t, e.svc.Addresses.Insert(vmProj, vmRegion, &compute.Address{Name: "was-ephemeral", Address: ephemeral}))
	c := vmBasic("c")
	c.Disks[0].InitializeParams.DiskName = "c-boot"
	c.NetworkInterfaces[0].NetworkIP = internal
	if got := e.insert(t, c).NetworkInterfaces[0].NetworkIP; got != internal {
		t.Errorf("freed internal IP not reusable: got %s", got)
	}
}

func TestInstanceInsertRollsBackOnFailure(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyNone)
	a := e.reserve(t, vmRegion, "ip")
	if err := e.Control.SetZone(e.ctx, vmZone, "DOWN"); err != nil {
		t.Fatal(err)
	}
	e.opErr(t, e.svc.Instances.Insert(vmProj, vmZone, vmWithNAT(vmBasic("vm-1"), a.Address)), "ZONE_RESOURCE_POOL_EXHAUSTED", 503)
	if _, err := e.svc.Instances.Get(vmProj, vmZone, "vm-1").Do(); err == nil {
		t.Error("failed instance still exists")
	}
	if d, _ := e.svc.Disks.List(vmProj, vmZone).Do(); len(d.Items) != 0 {
		t.Errorf("failed insert left disks")
	}
	if a, _ := e.svc.Addresses.Get(vmProj, vmRegion, "ip").Do(); a.Status != "RESERVED" {
		t.Errorf("failed insert kept the static IP: %s", a.Status)
	}
	if err := e.Control.SetZone(e.ctx, vmZone, "UP"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Control.AddFault(e.ctx, emulator.Fault{Method: "instances.insert", Delivery: "operation", Code: 500, Count: 1}); err != nil {
		t.Fatal(err)
	}
	e.opErr(t, e.svc.Instances.Insert(vmProj, vmZone, vmBasic("vm-1")), "INTERNAL_ERROR", 500)
	e.insert(t, vmWithNAT(vmBasic("vm-1"), a.Address)) // name, disk and IP are free again
}

func TestInstanceSourceDiskInUse(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyNone)
	e.ok(t, e.svc.Disks.Insert(vmProj, vmZone, &compute.Disk{Name: "boot", SourceImage: vmImage}))
	withSource := func(name string) *compute.Instance {
		in := vmBasic(name)
		in.Disks[0] = &compute.AttachedDisk{Boot: true, Source: vmLink("zones/" + vmZone + "/disks/boot")}
		return in
	}
	e.insert(t, withSource("first"))
	op := e.opErr(t, e.svc.Instances.Insert(vmProj, vmZone, withSource("second")), "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE", 400)
	if !strings.Contains(op.Error.Errors[0].Message, "instances/first") {
		t.Errorf("message %q should name the user", op.Error.Errors[0].Message)
	}
	if _, err := e.svc.Instances.Get(vmProj, vmZone, "second").Do(); err == nil {
		t.Error("the refused instance exists")
	}
	// A disk from another zone is refused synchronously.
	e.ok(t, e.svc.Disks.Insert(vmProj, vmZone2, &compute.Disk{Name: "elsewhere"}))
	in := vmBasic("third")
	in.Disks = append(in.Disks, &compute.AttachedDisk{Source: "zones/" + vmZone2 + "/disks/elsewhere"})
	_, err := e.svc.Instances.Insert(vmProj, vmZone, in).Do()
	vmWantErr(t, err, 400, "invalid")
}
