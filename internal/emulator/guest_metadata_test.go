// What guests reach from inside (project metadata, guest attributes, a
// shutdown from the guest) and what the API shows of it.

package emulator_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hakube/hakube/internal/emulator"
	compute "google.golang.org/api/compute/v1"
)

func TestProjectCommonInstanceMetadata(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyFast)
	p, err := e.svc.Projects.Get(vmProj).Do()
	if err != nil {
		t.Fatal(err)
	}
	md := p.CommonInstanceMetadata
	if md == nil || md.Kind != "compute#metadata" || md.Fingerprint == "" || len(md.Items) != 0 {
		t.Fatalf("fresh project metadata %+v", md)
	}
	keys := "alice:ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGb alice"
	// A stale fingerprint is refused, as for instances.setMetadata.
	_, err = e.svc.Projects.SetCommonInstanceMetadata(vmProj, &compute.Metadata{Fingerprint: "stale",
		Items: []*compute.MetadataItems{{Key: "ssh-keys", Value: &keys}}}).Do()
	apiErr(t, err, 412, "conditionNotMet")
	op := e.ok(t, e.svc.Projects.SetCommonInstanceMetadata(vmProj, &compute.Metadata{Fingerprint: md.Fingerprint,
		Items: []*compute.MetadataItems{{Key: "ssh-keys", Value: &keys}}}))
	if op.OperationType != "setCommonInstanceMetadata" || op.TargetLink != gceURL+"projects/"+vmProj || op.Zone != "" || op.Region != "" {
		t.Errorf("operation %s on %s (zone %q region %q), want a global setCommonInstanceMetadata on the project", op.OperationType, op.TargetLink, op.Zone, op.Region)
	}
	p, err = e.svc.Projects.Get(vmProj).Do()
	if err != nil {
		t.Fatal(err)
	}
	got := p.CommonInstanceMetadata
	if got.Fingerprint == md.Fingerprint || len(got.Items) != 1 || got.Items[0].Key != "ssh-keys" || *got.Items[0].Value != keys {
		t.Errorf("after set: %+v (fingerprint was %s)", got, md.Fingerprint)
	}
	// What a guest reads through its metadata server.
	in := e.insert(t, vmBasic("reader"))
	gm, err := e.Server.GuestMetadata(emulator.GuestRef{Project: vmProj, Zone: vmZone, Name: "reader", ID: in.Id})
	if err != nil {
		t.Fatal(err)
	}
	if gm.Project["ssh-keys"] != keys {
		t.Errorf("guest reads project metadata %v", gm.Project)
	}
	if _, err := e.Server.GuestMetadata(emulator.GuestRef{Project: vmProj, Zone: vmZone, Name: "reader", ID: in.Id + 1}); !errors.Is(err, emulator.ErrNoInstance) {
		t.Errorf("another instance's guest read its metadata: %v", err)
	}
}

func TestGuestAttributes(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyFast)
	off := e.insert(t, vmBasic("plain"))
	on := vmBasic("attrs")
	v := "TRUE"
	on.Metadata = &compute.Metadata{Items: []*compute.MetadataItems{{Key: "enable-guest-attributes", Value: &v}}}
	on = e.insert(t, on)
	ref := func(in *compute.Instance) emulator.GuestRef {
		return emulator.GuestRef{Project: vmProj, Zone: vmZone, Name: in.Name, ID: in.Id}
	}
	// Disabled: the metadata server refuses the guest's write (GCE's 403),
	// so there is nothing to read (GCE's 404).
	if err := e.Server.SetGuestAttribute(ref(off), "hostkeys", "ssh-ed25519", "ssh-ed25519 AAAA"); !errors.Is(err, emulator.ErrGuestAttributesDisabled) {
		t.Errorf("write with guest attributes disabled: %v", err)
	}
	_, err := e.svc.Instances.GetGuestAttributes(vmProj, vmZone, "plain").QueryPath("hostkeys/").Do()
	ge := apiErr(t, err, 404, "notFound")
	if ge.Message != "The resource 'hostkeys/' of type 'Guest Attribute' was not found." {
		t.Errorf("404 says %q; gcloud compute ssh recognises GCE's exact text", ge.Message)
	}
	for k, val := range map[string]string{"ssh-ed25519": "ssh-ed25519 AAAAC3Nz", "ecdsa-sha2-nistp256": "ecdsa-sha2-nistp256 AAAAE2Vj"} {
		if err := e.Server.SetGuestAttribute(ref(on), "hostkeys", k, val); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Server.SetGuestAttribute(ref(on), "other", "k", "v"); err != nil {
		t.Fatal(err)
	}
	g, err := e.svc.Instances.GetGuestAttributes(vmProj, vmZone, "attrs").QueryPath("hostkeys/").Do()
	if err != nil {
		t.Fatal(err)
	}
	want := &compute.GuestAttributes{Kind: "compute#guestAttributes", QueryPath: "hostkeys/",
		SelfLink: gceURL + "projects/" + vmProj + "/zones/" + vmZone + "/instances/attrs/guestAttributes/hostkeys/",
		QueryValue: &compute.GuestAttributesValue{Items: []*compute.GuestAttributesEntry{
			{Namespace: "hostkeys", Key: "ecdsa-sha2-nistp256", Value: "ecdsa-sha2-nistp256 AAAAE2Vj"},
			{Namespace: "hostkeys", Key: "ssh-ed25519", Value: "ssh-ed25519 AAAAC3Nz"}}}}
	g.ServerResponse = want.ServerResponse
	if diff := cmp.Diff(want, g); diff != "" {
		t.Errorf("getGuestAttributes hostkeys/ (-want +got):\n%s", diff)
	}
	one, err := e.svc.Instances.GetGuestAttributes(vmProj, vmZone, "attrs").QueryPath("hostkeys/ssh-ed25519").Do()
	if err != nil || len(one.QueryValue.Items) != 1 || one.QueryValue.Items[0].Value != "ssh-ed25519 AAAAC3Nz" {
		t.Errorf("one key: %+v, %v", one, err)
	}
	vk, err := e.svc.Instances.GetGuestAttributes(vmProj, vmZone, "attrs").VariableKey("other/k").Do()
	if err != nil || vk.VariableValue != "v" {
		t.Errorf("variableKey: %+v, %v", vk, err)
	}
	all, err := e.svc.Instances.GetGuestAttributes(vmProj, vmZone, "attrs").Do()
	if err != nil || len(all.QueryValue.Items) != 3 {
		t.Errorf("every attribute: %+v, %v", all, err)
	}
	_, err = e.svc.Instances.GetGuestAttributes(vmProj, vmZone, "attrs").QueryPath("nothing/").Do()
	apiErr(t, err, 404, "notFound")
	_, err = e.svc.Instances.GetGuestAttributes(vmProj, vmZone, "attrs").QueryPath("a/b/c").Do()
	apiErr(t, err, 400, "invalid")

	// The project's enable-guest-attributes counts when the instance has none.
	p, _ := e.svc.Projects.Get(vmProj).Do()
	e.ok(t, e.svc.Projects.SetCommonInstanceMetadata(vmProj, &compute.Metadata{Fingerprint: p.CommonInstanceMetadata.Fingerprint,
		Items: []*compute.MetadataItems{{Key: "enable-guest-attributes", Value: &v}}}))
	if err := e.Server.SetGuestAttribute(ref(off), "hostkeys", "ssh-ed25519", "ssh-ed25519 AAAA"); err != nil {
		t.Errorf("write with the project's guest attributes enabled: %v", err)
	}
}

func TestGuestShutdown(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyFast)
	in := e.insert(t, vmWithNAT(vmBasic("halted"), ""))
	ops := func() int {
		l, err := e.svc.ZoneOperations.List(vmProj, vmZone).Do()
		if err != nil {
			t.Fatal(err)
		}
		return len(l.Items)
	}
	before := ops()
	if err := e.Server.GuestShutdown(emulator.GuestRef{Project: vmProj, Zone: vmZone, Name: "halted", ID: in.Id}); err != nil {
		t.Fatal(err)
	}
	got := e.get(t, "halted")
	if got.Status != "TERMINATED" || got.LastStopTimestamp == "" || vmNatOf(got) != "" {
		t.Errorf("after the guest's halt: status %s lastStop %q natIP %q; want TERMINATED without its ephemeral IP", got.Status, got.LastStopTimestamp, vmNatOf(got))
	}
	if n := ops(); n != before {
		t.Errorf("a guest shutdown made %d operations; GCE makes none", n-before)
	}
	e.ok(t, e.svc.Instances.Start(vmProj, vmZone, "halted"))
	if s := e.get(t, "halted").Status; s != "RUNNING" {
		t.Errorf("started again: %s", s)
	}
}
