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
