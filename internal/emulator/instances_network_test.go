// Instances' IPs: access configs and internal static addresses.

package emulator_test

import (
	"testing"

	"github.com/hakube/hakube/internal/emulator"
	compute "google.golang.org/api/compute/v1"
)

func TestInstanceAccessConfigs(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyFast)
	e.insert(t, vmWithNAT(vmBasic("vm-1"), ""))
	e.insert(t, vmBasic("vm-2"))
	static := e.reserve(t, vmRegion, "vip")

	_, err := e.svc.Instances.AddAccessConfig(vmProj, vmZone, "vm-1", "nic0", &compute.AccessConfig{Name: "second"}).Do()
	ge := vmWantErr(t, err, 400, "badRequest")
	if ge.Message != "At most one access config currently supported." {
		t.Errorf("message %q", ge.Message)
	}
	_, err = e.svc.Instances.AddAccessConfig(vmProj, vmZone, "vm-2", "nic7", &compute.AccessConfig{}).Do()
	vmWantErr(t, err, 400, "invalid")
	_, err = e.svc.Instances.AddAccessConfig(vmProj, vmZone, "vm-2", "", &compute.AccessConfig{}).Do()
	vmWantErr(t, err, 400, "required")
	_, err = e.svc.Instances.DeleteAccessConfig(vmProj, vmZone, "vm-1", "nope", "nic0").Do()
	vmWantErr(t, err, 400, "invalid")
	_, err = e.svc.Instances.DeleteAccessConfig(vmProj, vmZone, "vm-1", "external-nat", "").Do()
	vmWantErr(t, err, 400, "required")

	// The static IP moves: it cannot be used twice; deleting takes effect at DONE.
	op, err := e.svc.Instances.AddAccessConfig(vmProj, vmZone, "vm-2", "nic0", &compute.AccessConfig{Name: "nat", NatIP: static.Address}).Do()
	if err != nil {
		t.Fatal(err)
	}
	if op.OperationType != "addAccessConfig" {
		t.Errorf("op type %q", op.OperationType)
	}
	if got := vmNatOf(e.get(t, "vm-2")); got != "" {
		t.Errorf("access config visible before the op is DONE: %q", got)
	}
	e.waitOp(t, op)
	if got := e.get(t, "vm-2").NetworkInterfaces[0].AccessConfigs[0]; got.NatIP != static.Address || got.Name != "nat" {
		t.Errorf("after DONE: %+v", got)
	}
	_, err = e.svc.Instances.AddAccessConfig(vmProj, vmZone, "vm-1", "nic0", &compute.AccessConfig{NatIP: static.Address}).Do()
	vmWantErr(t, err, 400, "badRequest") // vm-1 already has one

	op, err = e.svc.Instances.DeleteAccessConfig(vmProj, vmZone, "vm-2", "nat", "nic0").Do()
	if err != nil {
		t.Fatal(err)
	}
	if op.OperationType != "deleteAccessConfig" {
		t.Errorf("op type %q", op.OperationType)
	}
	if got := vmNatOf(e.get(t, "vm-2")); got != static.Address {
		t.Errorf("access config gone before the op is DONE")
	}
	e.waitOp(t, op)
	if in := e.get(t, "vm-2"); len(in.NetworkInterfaces[0].AccessConfigs) != 0 {
		t.Errorf("access config still there: %+v", in.NetworkInterfaces[0].AccessConfigs)
	}
	if a, _ := e.svc.Addresses.Get(vmProj, vmRegion, "vip").Do(); a.Status != "RESERVED" {
		t.Errorf("address after deleteAccessConfig: %s", a.Status)
	}
	e.ok(t, e.svc.Instances.DeleteAccessConfig(vmProj, vmZone, "vm-1", "external-nat", "nic0"))
	e.ok(t, e.svc.Instances.AddAccessConfig(vmProj, vmZone, "vm-1", "nic0", &compute.AccessConfig{NatIP: static.Address}))
	if got := e.get(t, "vm-1").NetworkInterfaces[0].AccessConfigs[0]; got.NatIP != static.Address || got.Name != "external-nat" {
		t.Errorf("moved IP: %+v", got)
	}
	if a, _ := e.svc.Addresses.Get(vmProj, vmRegion, "vip").Do(); a.Status != "IN_USE" || a.Users[0] != vmLink("zones/"+vmZone+"/instances/vm-1") {
		t.Errorf("address after the move: %s %v", a.Status, a.Users)
	}
}

func TestInstanceInternalStaticAddress(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyNone)
	e.ok(t, e.svc.Addresses.Insert(vmProj, vmRegion, &compute.Address{Name: "internal", AddressType: "INTERNAL"}))
	a, _ := e.svc.Addresses.Get(vmProj, vmRegion, "internal").Do()
	spec := vmBasic("vm-1")
	spec.NetworkInterfaces[0].NetworkIP = a.Address
	if got := e.insert(t, spec).NetworkInterfaces[0].NetworkIP; got != a.Address {
		t.Fatalf("networkIP %s, want %s", got, a.Address)
	}
	if a, _ := e.svc.Addresses.Get(vmProj, vmRegion, "internal").Do(); a.Status != "IN_USE" {
		t.Errorf("internal address used by a VM: %s", a.Status)
	}
	dup := vmBasic("vm-2")
	dup.NetworkInterfaces[0].NetworkIP = a.Address
	_, err := e.svc.Instances.Insert(vmProj, vmZone, dup).Do()
	vmWantErr(t, err, 400, "invalid")
	e.ok(t, e.svc.Instances.Delete(vmProj, vmZone, "vm-1"))
	if a, _ := e.svc.Addresses.Get(vmProj, vmRegion, "internal").Do(); a.Status != "RESERVED" {
		t.Errorf("internal address after delete: %s", a.Status)
	}
}
