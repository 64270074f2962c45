package emulator_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hakube/hakube/internal/emulator"
	"github.com/hakube/hakube/internal/emulator/emulatortest"
	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/googleapi"
)

// Helpers of the compute-resource tests (instances, disks, templates, MIGs).
// They carry a vm prefix to stay apart from the other test files' helpers.

const (
	vmProj   = "test-project"
	vmZone   = "us-central1-a"
	vmZone2  = "us-central1-b"
	vmRegion = "us-central1"
	vmImage  = "projects/debian-cloud/global/images/family/debian-12"
	vmLinks  = "https://www.googleapis.com/compute/v1/"
)

// vmLink is the absolute URL of a project-relative path.
func vmLink(path string) string { return vmLinks + "projects/" + vmProj + "/" + path }

type vmEnv struct {
	*emulatortest.Emulator
	svc *compute.Service
	ctx context.Context
}

// newVMEnv starts an emulator; tests that look at a state in passing
// (PROVISIONING right after insert) give a scale > 1 so that a loaded machine
// still sees it.
func newVMEnv(t testing.TB, latency string, scale ...float64) *vmEnv {
	t.Helper()
	opts := emulator.Options{Latency: latency, Seed: 7, WaitCap: 5 * time.Second}
	if len(scale) > 0 {
		opts.TimeScale = scale[0]
	}
	e := emulatortest.Start(t, opts)
	return &vmEnv{Emulator: e, svc: e.Compute(t), ctx: context.Background()}
}

type vmOpCall interface {
	Do(...googleapi.CallOption) (*compute.Operation, error)
}

// waitOp polls an operation in its scope until DONE.
func (e *vmEnv) waitOp(t *testing.T, op *compute.Operation) *compute.Operation {
	t.Helper()
	return emulatortest.WaitOp(t, e.svc, vmProj, op)
}

// ok runs a mutation and waits until its operation succeeded.
func (e *vmEnv) ok(t *testing.T, c vmOpCall) *compute.Operation {
	t.Helper()
	op, err := c.Do()
	if err != nil {
		t.Fatalf("mutation: %v", err)
	}
	op = e.waitOp(t, op)
	if op.Error != nil {
		t.Fatalf("operation %s on %s failed: %+v", op.OperationType, op.TargetLink, op.Error.Errors[0])
	}
	return op
}

// opErr runs a mutation that is accepted and whose operation fails with code.
func (e *vmEnv) opErr(t *testing.T, c vmOpCall, code string, status int64) *compute.Operation {
	t.Helper()
	op, err := c.Do()
	if err != nil {
		t.Fatalf("mutation: %v", err)
	}
	op = e.waitOp(t, op)
	if op.Error == nil || len(op.Error.Errors) != 1 || op.Error.Errors[0].Code != code || op.HttpErrorStatusCode != status {
		t.Fatalf("operation %s: got error %+v (HTTP %d), want %s (HTTP %d)", op.OperationType, op.Error, op.HttpErrorStatusCode, code, status)
	}
	return op
}

// vmWantErr asserts a synchronous Compute error.
func vmWantErr(t *testing.T, err error, code int, reason string) *googleapi.Error {
	t.Helper()
	var ge *googleapi.Error
	if !errors.As(err, &ge) {
		t.Fatalf("got %v, want googleapi error %d %s", err, code, reason)
	}
	if ge.Code != code || len(ge.Errors) == 0 || ge.Errors[0].Reason != reason {
		t.Fatalf("got %d %+v, want %d %s", ge.Code, ge.Errors, code, reason)
	}
	return ge
}

// rawGet returns the wire JSON of a project-relative path.
func (e *vmEnv) rawGet(t *testing.T, path string) map[string]any {
	t.Helper()
	resp, err := http.Get(e.Endpoint + "projects/" + vmProj + "/" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func vmLast(s string) string { return s[strings.LastIndexByte(s, '/')+1:] }

// vmEventually polls cond until it holds.
func vmEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// vmBasic is a minimal valid instance: debian boot disk, default network.
func vmBasic(name string) *compute.Instance {
	return &compute.Instance{
		Name:        name,
		MachineType: "zones/" + vmZone + "/machineTypes/e2-medium",
		Disks: []*compute.AttachedDisk{{Boot: true,
			InitializeParams: &compute.AttachedDiskInitializeParams{SourceImage: vmImage}}},
		NetworkInterfaces: []*compute.NetworkInterface{{Network: "global/networks/default"}},
	}
}

func vmWithNAT(in *compute.Instance, natIP string) *compute.Instance {
	in.NetworkInterfaces[0].AccessConfigs = []*compute.AccessConfig{{NatIP: natIP, Type: "ONE_TO_ONE_NAT"}}
	return in
}

func (e *vmEnv) insert(t *testing.T, in *compute.Instance) *compute.Instance {
	t.Helper()
	e.ok(t, e.svc.Instances.Insert(vmProj, vmZone, in))
	return e.get(t, in.Name)
}

func (e *vmEnv) get(t *testing.T, name string) *compute.Instance {
	t.Helper()
	in, err := e.svc.Instances.Get(vmProj, vmZone, name).Do()
	if err != nil {
		t.Fatalf("get %s: %v", name, err)
	}
	return in
}

func (e *vmEnv) reserve(t *testing.T, region, name string) *compute.Address {
	t.Helper()
	e.ok(t, e.svc.Addresses.Insert(vmProj, region, &compute.Address{Name: name}))
	a, err := e.svc.Addresses.Get(vmProj, region, name).Do()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func vmNatOf(in *compute.Instance) string {
	if acs := in.NetworkInterfaces[0].AccessConfigs; len(acs) > 0 {
		return acs[0].NatIP
	}
	return ""
}

func TestInstanceInsertShape(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyNone)
	spec := vmWithNAT(vmBasic("vm-1"), "")
	spec.Labels = map[string]string{"role": "master"}
	v := "bar"
	spec.Metadata = &compute.Metadata{Items: []*compute.MetadataItems{{Key: "foo", Value: &v}}}
	spec.Tags = &compute.Tags{Items: []string{"kube-master"}}
	spec.ServiceAccounts = []*compute.ServiceAccount{{Email: "default", Scopes: []string{"https://www.googleapis.com/auth/cloud-platform"}}}
	op := e.ok(t, e.svc.Instances.Insert(vmProj, vmZone, spec))
	if op.OperationType != "insert" || op.Zone != vmLink("zones/"+vmZone) || op.TargetLink != vmLink("zones/"+vmZone+"/instances/vm-1") {
		t.Errorf("insert op: type %q zone %q target %q", op.OperationType, op.Zone, op.TargetLink)
	}
	in := e.get(t, "vm-1")
	if in.Status != "RUNNING" || in.CpuPlatform == "" || in.LastStartTimestamp == "" || in.Fingerprint == "" || in.LabelFingerprint == "" {
		t.Errorf("status %q cpu %q lastStart %q fp %q lfp %q", in.Status, in.CpuPlatform, in.LastStartTimestamp, in.Fingerprint, in.LabelFingerprint)
	}
	if in.MachineType != vmLink("zones/"+vmZone+"/machineTypes/e2-medium") || in.Zone != vmLink("zones/"+vmZone) {
		t.Errorf("machineType %q zone %q", in.MachineType, in.Zone)
	}
	if diff := cmp.Diff(map[string]string{"role": "master"}, in.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if in.Metadata.Kind != "compute#metadata" || in.Metadata.Fingerprint == "" || len(in.Metadata.Items) != 1 || *in.Metadata.Items[0].Value != "bar" {
		t.Errorf("metadata %+v", in.Metadata)
	}
	if in.Tags.Fingerprint == "" || !cmp.Equal(in.Tags.Items, []string{"kube-master"}) {
		t.Errorf("tags %+v", in.Tags)
	}
	if in.ServiceAccounts[0].Email != "100000000012-compute@developer.gserviceaccount.com" {
		t.Errorf("service account %q: \"default\" must resolve to the project's compute account", in.ServiceAccounts[0].Email)
	}
	d := in.Disks[0]
	wantDisk := compute.AttachedDisk{Kind: "compute#attachedDisk", Type: "PERSISTENT", Mode: "READ_WRITE", Boot: true,
		DeviceName: "persistent-disk-0", Index: 0, Interface: "SCSI", DiskSizeGb: 10, AutoDelete: false,
		Source: vmLink("zones/" + vmZone + "/disks/vm-1"), Architecture: "X86_64"}
	got := *d
	got.GuestOsFeatures, got.Licenses, got.ForceSendFields = nil, nil, nil
	if diff := cmp.Diff(wantDisk, got, cmp.AllowUnexported()); diff != "" {
		t.Errorf("boot disk (-want +got):\n%s", diff)
	}
	if len(d.Licenses) == 0 || len(d.GuestOsFeatures) == 0 {
		t.Errorf("boot disk lacks licenses/guestOsFeatures: %+v", d)
	}
	ni := in.NetworkInterfaces[0]
	if ni.Name != "nic0" || ni.Kind != "compute#networkInterface" || ni.Network != vmLink("global/networks/default") ||
		ni.Subnetwork != vmLink("regions/"+vmRegion+"/subnetworks/default") || ni.StackType != "IPV4_ONLY" ||
		ni.Fingerprint == "" || ni.NetworkIP == "" {
		t.Errorf("nic %+v", ni)
	}
	ac := ni.AccessConfigs[0]
	if ac.Name != "external-nat" || ac.Kind != "compute#accessConfig" || ac.NetworkTier != "PREMIUM" || ac.Type != "ONE_TO_ONE_NAT" || ac.NatIP == "" {
		t.Errorf("access config %+v", ac)
	}

	// Wire shape: zero values GCE sends, and what it never sends.
	raw := e.rawGet(t, "zones/"+vmZone+"/instances/vm-1")
	for k, want := range map[string]any{"deletionProtection": false, "startRestricted": false} {
		if raw[k] != want {
			t.Errorf("%s = %v, want %v", k, raw[k], want)
		}
	}
	if _, ok := raw["canIpForward"]; ok {
		t.Error("canIpForward must be absent when the insert did not give it")
	}
	if _, ok := raw["description"]; ok {
		t.Error("description must be absent when not set")
	}
	rd := raw["disks"].([]any)[0].(map[string]any)
	if _, ok := rd["initializeParams"]; ok {
		t.Error("initializeParams must never be returned on an instance")
	}
	if rd["autoDelete"] != false || rd["index"] != float64(0) || rd["diskSizeGb"] != "10" {
		t.Errorf("disk wire fields autoDelete=%v index=%v diskSizeGb=%#v", rd["autoDelete"], rd["index"], rd["diskSizeGb"])
	}
	sched := raw["scheduling"].(map[string]any)
	if diff := cmp.Diff(map[string]any{"automaticRestart": true, "onHostMaintenance": "MIGRATE", "preemptible": false, "provisioningModel": "STANDARD"}, sched); diff != "" {
		t.Errorf("scheduling (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"enableSecureBoot": false, "enableVtpm": true, "enableIntegrityMonitoring": true}, raw["shieldedInstanceConfig"]); diff != "" {
		t.Errorf("shieldedInstanceConfig (-want +got):\n%s", diff)
	}
	if _, ok := raw["id"].(string); !ok {
		t.Errorf("id must be a JSON string, got %#v", raw["id"])
	}

	// The boot disk is a real disk resource, with the family resolved.
	disk, err := e.svc.Disks.Get(vmProj, vmZone, "vm-1").Do()
	if err != nil {
		t.Fatal(err)
	}
	if disk.SourceImage != vmLinks+"projects/debian-cloud/global/images/debian-12-bookworm-v20261013" || disk.SourceImageId == "" ||
		disk.SizeGb != 10 || disk.Type != vmLink("zones/"+vmZone+"/diskTypes/pd-standard") ||
		!cmp.Equal(disk.Users, []string{in.SelfLink}) || disk.LastAttachTimestamp == "" {
		t.Errorf("boot disk resource %+v", disk)
	}
}

func TestInstanceInsertErrors(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyNone)
	e.insert(t, vmBasic("taken"))
	e.reserve(t, "europe-west1", "far")
	far, _ := e.svc.Addresses.Get(vmProj, "europe-west1", "far").Do()
	tests := []struct {
		name   string
		mod    func(*compute.Instance)
		code   int
		reason string
		msg    string
	}{
		{"bad name", func(in *compute.Instance) { in.Name = "Bad_Name" }, 400, "invalid", ""},
		{"duplicate", func(in *compute.Instance) { in.Name = "taken" }, 409, "alreadyExists", "projects/test-project/zones/us-central1-a/instances/taken"},
		{"unknown machine type", func(in *compute.Instance) { in.MachineType = "zones/us-central1-a/machineTypes/n9-huge" }, 404, "notFound",
			"The resource 'projects/test-project/zones/us-central1-a/machineTypes/n9-huge' was not found"},
		{"bare machine type", func(in *compute.Instance) { in.MachineType = "e2-medium" }, 400, "invalid", ""},
		{"no disk", func(in *compute.Instance) { in.Disks = nil }, 400, "invalid", ""},
		{"no boot disk", func(in *compute.Instance) { in.Disks[0].Boot = false }, 400, "invalid", ""},
		{"unknown image", func(in *compute.Instance) {
			in.Disks[0].InitializeParams.SourceImage = "projects/debian-cloud/global/images/family/debian-99"
		}, 404, "notFound", "projects/debian-cloud/global/images/family/debian-99"},
		{"two access configs", func(in *compute.Instance) {
			in.NetworkInterfaces[0].AccessConfigs = []*compute.AccessConfig{{Name: "a"}, {Name: "b"}}
		}, 400, "invalid", "Multiple access configs are not supported."},
		{"static IP of another region", func(in *compute.Instance) { vmWithNAT(in, far.Address) }, 400, "invalid", ""},
		{"unreserved IP", func(in *compute.Instance) { vmWithNAT(in, "127.64.99.99") }, 400, "invalid", ""},
		{"bad metadata key", func(in *compute.Instance) {
			v := "x"
			in.Metadata = &compute.Metadata{Items: []*compute.MetadataItems{{Key: "no spaces", Value: &v}}}
		}, 400, "invalid", ""},
		{"networkIP outside subnet", func(in *compute.Instance) { in.NetworkInterfaces[0].NetworkIP = "10.0.0.5" }, 400, "invalid", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := vmBasic("vm-x")
			tc.mod(in)
			_, err := e.svc.Instances.Insert(vmProj, vmZone, in).Do()
			ge := vmWantErr(t, err, tc.code, tc.reason)
			if !strings.Contains(ge.Message, tc.msg) {
				t.Errorf("message %q does not contain %q", ge.Message, tc.msg)
			}
		})
	}
	// Nothing is left behind by a refused insert.
	disks, _ := e.svc.Disks.List(vmProj, vmZone).Do()
	if len(disks.Items) != 1 {
		t.Errorf("refused inserts left disks: %d", len(disks.Items))
	}
	if a, _ := e.svc.Addresses.Get(vmProj, "europe-west1", "far").Do(); a.Status != "RESERVED" {
		t.Errorf("refused insert changed the address: %s", a.Status)
	}
}

func TestInstanceQuota(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		metric string
		limit  float64
	}{{"CPUS", 3}, {"INSTANCES", 1}, {"DISKS_TOTAL_GB", 15}} {
		t.Run(tc.metric, func(t *testing.T) {
			e := newVMEnv(t, emulator.LatencyNone)
			if err := e.Control.SetQuota(e.ctx, emulator.QuotaLimit{Project: vmProj, Region: vmRegion, Metric: tc.metric, Limit: tc.limit}); err != nil {
				t.Fatal(err)
			}
			e.insert(t, vmBasic("vm-1"))
			_, err := e.svc.Instances.Insert(vmProj, vmZone, vmBasic("vm-2")).Do()
			ge := vmWantErr(t, err, 403, "quotaExceeded")
			if !strings.Contains(ge.Message, "Quota '"+tc.metric+"' exceeded") {
				t.Errorf("message %q", ge.Message)
			}
		})
	}
}

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

func TestInstanceSetters(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyFast)
	in := e.insert(t, vmBasic("vm-1"))
	v := "1"

	// setMetadata: fingerprint required and current; applied at once.
	for _, fp := range []string{"", "c3RhbGU="} {
		_, err := e.svc.Instances.SetMetadata(vmProj, vmZone, "vm-1", &compute.Metadata{Fingerprint: fp}).Do()
		ge := vmWantErr(t, err, 412, "conditionNotMet")
		if ge.Message != "Supplied fingerprint does not match current metadata fingerprint." {
			t.Errorf("message %q", ge.Message)
		}
	}
	_, err := e.svc.Instances.SetMetadata(vmProj, vmZone, "vm-1", &compute.Metadata{Fingerprint: in.Metadata.Fingerprint,
		Items: []*compute.MetadataItems{{Key: "bad key", Value: &v}}}).Do()
	vmWantErr(t, err, 400, "invalid")
	big := strings.Repeat("x", 256<<10+1)
	_, err = e.svc.Instances.SetMetadata(vmProj, vmZone, "vm-1", &compute.Metadata{Fingerprint: in.Metadata.Fingerprint,
		Items: []*compute.MetadataItems{{Key: "big", Value: &big}}}).Do()
	vmWantErr(t, err, 400, "invalid")
	op, err := e.svc.Instances.SetMetadata(vmProj, vmZone, "vm-1", &compute.Metadata{Fingerprint: in.Metadata.Fingerprint,
		Items: []*compute.MetadataItems{{Key: "kube-env", Value: &v}}}).Do()
	if err != nil {
		t.Fatal(err)
	}
	now := e.get(t, "vm-1").Metadata
	if now.Fingerprint == in.Metadata.Fingerprint || len(now.Items) != 1 || now.Items[0].Key != "kube-env" {
		t.Errorf("metadata right after setMetadata: %+v", now)
	}
	e.waitOp(t, op)
	// A second writer with the old fingerprint loses.
	_, err = e.svc.Instances.SetMetadata(vmProj, vmZone, "vm-1", &compute.Metadata{Fingerprint: in.Metadata.Fingerprint}).Do()
	vmWantErr(t, err, 412, "conditionNotMet")

	// setLabels.
	_, err = e.svc.Instances.SetLabels(vmProj, vmZone, "vm-1", &compute.InstancesSetLabelsRequest{Labels: map[string]string{"a": "b"}}).Do()
	ge := vmWantErr(t, err, 412, "conditionNotMet")
	if ge.Message != "Labels fingerprint either invalid or resource labels have changed" {
		t.Errorf("message %q", ge.Message)
	}
	op = e.ok(t, e.svc.Instances.SetLabels(vmProj, vmZone, "vm-1", &compute.InstancesSetLabelsRequest{
		LabelFingerprint: in.LabelFingerprint, Labels: map[string]string{"a": "b"}}))
	if op.OperationType != "compute.instance.setLabels" {
		t.Errorf("setLabels op type %q", op.OperationType)
	}
	got := e.get(t, "vm-1")
	if !cmp.Equal(got.Labels, map[string]string{"a": "b"}) || got.LabelFingerprint == in.LabelFingerprint {
		t.Errorf("labels %v fp %q", got.Labels, got.LabelFingerprint)
	}
	_, err = e.svc.Instances.SetLabels(vmProj, vmZone, "vm-1", &compute.InstancesSetLabelsRequest{
		LabelFingerprint: got.LabelFingerprint, Labels: map[string]string{"Bad": "x"}}).Do()
	vmWantErr(t, err, 400, "invalid")

	// setTags.
	_, err = e.svc.Instances.SetTags(vmProj, vmZone, "vm-1", &compute.Tags{Fingerprint: "c3RhbGU=", Items: []string{"web"}}).Do()
	vmWantErr(t, err, 412, "conditionNotMet")
	op = e.ok(t, e.svc.Instances.SetTags(vmProj, vmZone, "vm-1", &compute.Tags{Fingerprint: got.Tags.Fingerprint, Items: []string{"web"}}))
	if op.OperationType != "setTags" {
		t.Errorf("setTags op type %q", op.OperationType)
	}
	if tags := e.get(t, "vm-1").Tags; !cmp.Equal(tags.Items, []string{"web"}) || tags.Fingerprint == got.Tags.Fingerprint {
		t.Errorf("tags %+v", tags)
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

func TestInstancesListAndAggregated(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyNone)
	for _, n := range []string{"b", "a", "c"} {
		e.insert(t, vmBasic(n))
	}
	other := vmBasic("z")
	other.MachineType = "zones/" + vmZone2 + "/machineTypes/e2-medium"
	e.ok(t, e.svc.Instances.Insert(vmProj, vmZone2, other))

	list, err := e.svc.Instances.List(vmProj, vmZone).Filter("name != b").Do()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, in := range list.Items {
		names = append(names, in.Name)
	}
	if !cmp.Equal(names, []string{"a", "c"}) || list.Kind != "compute#instanceList" {
		t.Errorf("filtered list %v (%s)", names, list.Kind)
	}
	agg, err := e.svc.Instances.AggregatedList(vmProj).Do()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(agg.Items["zones/"+vmZone].Instances); n != 3 {
		t.Errorf("zone a: %d instances", n)
	}
	if n := len(agg.Items["zones/"+vmZone2].Instances); n != 1 {
		t.Errorf("zone b: %d instances", n)
	}
	if w := agg.Items["zones/europe-west1-b"].Warning; w == nil || w.Code != "NO_RESULTS_ON_PAGE" {
		t.Errorf("empty zone warning %+v", w)
	}
}

func TestInstanceFromTemplate(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyNone)
	e.ok(t, e.svc.InstanceTemplates.Insert(vmProj, vmTemplate("tpl")))
	e.ok(t, e.svc.Instances.Insert(vmProj, vmZone, &compute.Instance{Name: "from-tpl", Labels: map[string]string{"own": "label"}}).
		SourceInstanceTemplate("global/instanceTemplates/tpl"))
	in := e.get(t, "from-tpl")
	if in.MachineType != vmLink("zones/"+vmZone+"/machineTypes/n1-standard-1") || !in.Disks[0].AutoDelete ||
		in.Disks[0].Source != vmLink("zones/"+vmZone+"/disks/from-tpl") || !cmp.Equal(in.Labels, map[string]string{"own": "label"}) {
		t.Errorf("instance from template: machine %s disk %+v labels %v", in.MachineType, in.Disks[0], in.Labels)
	}
	_, err := e.svc.Instances.Insert(vmProj, vmZone, &compute.Instance{Name: "x"}).SourceInstanceTemplate("global/instanceTemplates/nope").Do()
	vmWantErr(t, err, 404, "notFound")
	_, err = e.svc.Instances.Insert(vmProj, vmZone, &compute.Instance{Name: "x"}).SourceMachineImage("global/machineImages/img").Do()
	vmWantErr(t, err, 404, "notFound")
}

// TestInstanceCanIpForwardEchoed: canIpForward appears when the insert gave
// it, even as false (recorded: computetargetinstance#8), and not otherwise
// (recorded: computetargetpool#19).
func TestInstanceCanIpForwardEchoed(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyNone)
	body := map[string]any{"name": "given", "canIpForward": false, "machineType": "zones/" + vmZone + "/machineTypes/e2-medium",
		"disks":             []any{map[string]any{"boot": true, "autoDelete": true, "initializeParams": map[string]any{"sourceImage": vmImage}}},
		"networkInterfaces": []any{map[string]any{"network": "global/networks/default"}}}
	b, _ := json.Marshal(body)
	res, err := http.Post(e.Endpoint+"projects/"+vmProj+"/zones/"+vmZone+"/instances", "application/json", strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("insert: %s", res.Status)
	}
	if v, ok := e.rawGet(t, "zones/"+vmZone+"/instances/given")["canIpForward"]; v != false || !ok {
		t.Errorf("canIpForward = %v (present %v), want false", v, ok)
	}
	e.insert(t, vmBasic("omitted"))
	if v, ok := e.rawGet(t, "zones/"+vmZone+"/instances/omitted")["canIpForward"]; ok {
		t.Errorf("canIpForward = %v, want no such key", v)
	}
}
