package emulator_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hakube/hakube/internal/emulator"
	compute "google.golang.org/api/compute/v1"
)

// Helpers of the alias IP range tests: a custom network "vpc" with subnet
// "nodes" (10.0.0.0/20) in vmRegion, and "other" (10.1.0.0/20, secondary
// "other-pods" 10.128.0.0/16) in europe-west1.

func ranges(kv ...string) []*compute.SubnetworkSecondaryRange {
	var out []*compute.SubnetworkSecondaryRange
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, &compute.SubnetworkSecondaryRange{RangeName: kv[i], IpCidrRange: kv[i+1]})
	}
	return out
}

func newAliasEnv(t *testing.T) *vmEnv {
	t.Helper()
	e := newVMEnv(t, emulator.LatencyNone)
	e.ok(t, e.svc.Networks.Insert(vmProj, &compute.Network{Name: "vpc", ForceSendFields: []string{"AutoCreateSubnetworks"}}))
	e.ok(t, e.svc.Subnetworks.Insert(vmProj, vmRegion, &compute.Subnetwork{Name: "nodes", Network: "global/networks/vpc", IpCidrRange: "10.0.0.0/20"}))
	e.ok(t, e.svc.Subnetworks.Insert(vmProj, "europe-west1", &compute.Subnetwork{Name: "other", Network: "global/networks/vpc",
		IpCidrRange: "10.1.0.0/20", SecondaryIpRanges: ranges("other-pods", "10.128.0.0/16")}))
	return e
}

func (e *vmEnv) subnet(t *testing.T, region, name string) *compute.Subnetwork {
	t.Helper()
	sn, err := e.svc.Subnetworks.Get(vmProj, region, name).Do()
	if err != nil {
		t.Fatalf("get subnetwork %s: %v", name, err)
	}
	return sn
}

// patchRanges is a patch of the secondary ranges of nodes with its current
// fingerprint, as a client that read it first sends.
func (e *vmEnv) patchRanges(t *testing.T, rs []*compute.SubnetworkSecondaryRange) *compute.SubnetworksPatchCall {
	t.Helper()
	sn := e.subnet(t, vmRegion, "nodes")
	return e.svc.Subnetworks.Patch(vmProj, vmRegion, "nodes", &compute.Subnetwork{
		Fingerprint: sn.Fingerprint, SecondaryIpRanges: rs, ForceSendFields: []string{"SecondaryIpRanges"}})
}

// TestSubnetworkPatchSecondaryRanges: the official client's patch adds a
// secondary range under the subnetwork's fingerprint, with a regional
// operation; get and list echo it; the fingerprint changes; a stale or
// missing one is GCE's 412.
func TestSubnetworkPatchSecondaryRanges(t *testing.T) {
	t.Parallel()
	e := newAliasEnv(t)
	before := e.subnet(t, vmRegion, "nodes")
	op := e.ok(t, e.svc.Subnetworks.Patch(vmProj, vmRegion, "nodes", &compute.Subnetwork{
		Fingerprint: before.Fingerprint, SecondaryIpRanges: ranges("pods", "10.64.0.0/14")}))
	if op.OperationType != "compute.subnetworks.patch" || op.Region != vmLink("regions/"+vmRegion) || op.Zone != "" ||
		op.TargetLink != vmLink("regions/"+vmRegion+"/subnetworks/nodes") {
		t.Errorf("patch op %s region %q zone %q target %s", op.OperationType, op.Region, op.Zone, op.TargetLink)
	}
	after := e.subnet(t, vmRegion, "nodes")
	if diff := cmp.Diff(ranges("pods", "10.64.0.0/14"), after.SecondaryIpRanges); diff != "" {
		t.Errorf("secondary ranges after the patch (-want +got):\n%s", diff)
	}
	if after.Fingerprint == before.Fingerprint || after.IpCidrRange != "10.0.0.0/20" {
		t.Errorf("after the patch: fingerprint %s (was %s), primary %s", after.Fingerprint, before.Fingerprint, after.IpCidrRange)
	}
	raw := e.rawGet(t, "regions/"+vmRegion+"/subnetworks/nodes")
	if want := []any{map[string]any{"rangeName": "pods", "ipCidrRange": "10.64.0.0/14"}}; !cmp.Equal(raw["secondaryIpRanges"], want) {
		t.Errorf("wire secondaryIpRanges %v, want %v", raw["secondaryIpRanges"], want)
	}
	l, err := e.svc.Subnetworks.List(vmProj, vmRegion).Filter("name = nodes").Do()
	if err != nil || len(l.Items) != 1 || !cmp.Equal(l.Items[0].SecondaryIpRanges, after.SecondaryIpRanges) {
		t.Errorf("list: %v %+v", err, l)
	}

	// The old fingerprint is stale now; none at all is refused alike.
	for _, fp := range []string{before.Fingerprint, ""} {
		_, err := e.svc.Subnetworks.Patch(vmProj, vmRegion, "nodes", &compute.Subnetwork{
			Fingerprint: fp, SecondaryIpRanges: ranges("pods", "10.64.0.0/14", "svc", "10.96.0.0/20")}).Do()
		vmWantErr(t, err, 412, "conditionNotMet")
	}
	// A patch that changes nothing keeps the fingerprint, as a content hash does.
	e.ok(t, e.svc.Subnetworks.Patch(vmProj, vmRegion, "nodes", &compute.Subnetwork{Fingerprint: after.Fingerprint}))
	if fp := e.subnet(t, vmRegion, "nodes").Fingerprint; fp != after.Fingerprint {
		t.Errorf("fingerprint %s after an empty patch, want %s", fp, after.Fingerprint)
	}
	// A client that sends back the whole subnetwork it read may.
	whole := e.subnet(t, vmRegion, "nodes")
	whole.SecondaryIpRanges = append(whole.SecondaryIpRanges, ranges("svc", "10.96.0.0/20")...)
	e.ok(t, e.svc.Subnetworks.Patch(vmProj, vmRegion, "nodes", whole))
	if got := e.subnet(t, vmRegion, "nodes").SecondaryIpRanges; !cmp.Equal(got, ranges("pods", "10.64.0.0/14", "svc", "10.96.0.0/20")) {
		t.Errorf("after patching the whole object: %v", got)
	}
	// Removing every range takes an explicit empty list.
	e.ok(t, e.patchRanges(t, nil))
	if got := e.subnet(t, vmRegion, "nodes").SecondaryIpRanges; got != nil {
		t.Errorf("ranges %v after removing them all", got)
	}
	_, err = e.svc.Subnetworks.Patch(vmProj, vmRegion, "missing", &compute.Subnetwork{Fingerprint: "x"}).Do()
	vmWantErr(t, err, 404, "notFound")
}

// TestSecondaryRangeRules: what GCE refuses in secondary ranges, on insert
// and on patch, with its reasons and the recorded wording where there is one.
func TestSecondaryRangeRules(t *testing.T) {
	t.Parallel()
	e := newAliasEnv(t)
	e.ok(t, e.patchRanges(t, ranges("pods", "10.64.0.0/14")))
	tests := []struct {
		name   string
		ranges []*compute.SubnetworkSecondaryRange
		status int
		reason string
		msg    string // a part of the message
	}{
		{"name required", ranges("", "10.96.0.0/20"), 400, "required", "Required field 'resource.secondaryIpRanges[0].rangeName' not specified"},
		{"name syntax", ranges("Pods", "10.96.0.0/20"), 400, "invalid", "'resource.secondaryIpRanges[0].rangeName': 'Pods'"},
		{"names unique", ranges("pods", "10.64.0.0/14", "svc", "10.96.0.0/20", "svc", "10.97.0.0/20"), 400, "invalid", "'resource.secondaryIpRanges[2].rangeName': 'svc'"},
		{"CIDR required", ranges("pods", "10.64.0.0/14", "svc", ""), 400, "required", "'resource.secondaryIpRanges[1].ipCidrRange'"},
		{"CIDR syntax", ranges("pods", "10.64.0.0/14", "svc", "10.96.0.1/20"), 400, "invalid", "'resource.secondaryIpRanges[1].ipCidrRange': '10.96.0.1/20'. Must be a valid IPv4 CIDR range."},
		{"overlaps the primary range", ranges("pods", "10.64.0.0/14", "svc", "10.0.8.0/24"), 400, "invalid",
			"Invalid IPCidrRange: 10.0.8.0/24 conflicts with existing subnetwork 'nodes' in region 'us-central1'."},
		{"overlaps another of its ranges", ranges("pods", "10.64.0.0/14", "svc", "10.66.0.0/20"), 400, "invalid",
			"Invalid IPCidrRange: 10.66.0.0/20 conflicts with existing subnetwork 'nodes' in region 'us-central1'."},
		{"overlaps another subnetwork's primary", ranges("pods", "10.64.0.0/14", "svc", "10.1.0.0/24"), 400, "invalid",
			"conflicts with existing subnetwork 'other' in region 'europe-west1'."},
		{"overlaps another subnetwork's secondary", ranges("pods", "10.64.0.0/14", "svc", "10.128.64.0/20"), 400, "invalid",
			"conflicts with existing subnetwork 'other' in region 'europe-west1'."},
		{"an existing range is not modified", ranges("pods", "10.64.0.0/15"), 400, "invalid", "Existing secondary range cannot be modified."},
		{"no adding and removing at once", ranges("svc", "10.96.0.0/20"), 400, "invalid",
			"Invalid value for field 'resource.secondaryIpRanges': ''. Cannot add and remove secondary IP ranges in the same request. Added ranges: [10.96.0.0/20]. Removed ranges: [10.64.0.0/14]."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.patchRanges(t, tt.ranges).Do()
			ge := vmWantErr(t, err, tt.status, tt.reason)
			if !strings.Contains(ge.Message, tt.msg) {
				t.Errorf("message %q lacks %q", ge.Message, tt.msg)
			}
		})
	}
	if got := e.subnet(t, vmRegion, "nodes").SecondaryIpRanges; !cmp.Equal(got, ranges("pods", "10.64.0.0/14")) {
		t.Errorf("ranges %v after refused patches", got)
	}

	// Insert checks the same, and a new primary range must stay clear of
	// every secondary range of the network.
	_, err := e.svc.Subnetworks.Insert(vmProj, "europe-west1", &compute.Subnetwork{Name: "third", Network: "global/networks/vpc",
		IpCidrRange: "10.2.0.0/20", SecondaryIpRanges: ranges("x", "10.65.0.0/16")}).Do()
	if ge := vmWantErr(t, err, 400, "invalid"); !strings.Contains(ge.Message, "conflicts with existing subnetwork 'nodes' in region 'us-central1'") {
		t.Errorf("insert overlapping a secondary range: %s", ge.Message)
	}
	_, err = e.svc.Subnetworks.Insert(vmProj, "europe-west1", &compute.Subnetwork{Name: "third", Network: "global/networks/vpc",
		IpCidrRange: "10.128.16.0/20"}).Do()
	vmWantErr(t, err, 400, "invalid")
}
