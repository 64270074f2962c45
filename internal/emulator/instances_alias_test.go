package emulator_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	compute "google.golang.org/api/compute/v1"
)

func aliases(kv ...string) []*compute.AliasIpRange {
	var out []*compute.AliasIpRange
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, &compute.AliasIpRange{IpCidrRange: kv[i], SubnetworkRangeName: kv[i+1]})
	}
	return out
}

// vmAliased is an instance on subnetwork nodes with the given alias IP ranges.
func vmAliased(name string, ars []*compute.AliasIpRange) *compute.Instance {
	in := vmBasic(name)
	in.NetworkInterfaces = []*compute.NetworkInterface{{Network: "global/networks/vpc",
		Subnetwork: "regions/" + vmRegion + "/subnetworks/nodes", AliasIpRanges: ars}}
	return in
}

// newPodsEnv is newAliasEnv with secondary ranges pods (10.64.0.0/14, 1,024
// /24s) and tiny (10.200.0.0/23, two) on nodes.
func newPodsEnv(t *testing.T) *vmEnv {
	t.Helper()
	e := newAliasEnv(t)
	e.ok(t, e.patchRanges(t, ranges("pods", "10.64.0.0/14", "tiny", "10.200.0.0/23")))
	return e
}

// TestInstanceAliasRanges: an interface's alias IP ranges come back as the
// blocks GCE picked (a netmask) or was given (a CIDR, an address), from the
// secondary range named or the primary range; primary-range blocks keep
// clear of the subnetwork's reserved addresses and of other VMs' IPs, and
// VMs' IPs keep clear of them.
func TestInstanceAliasRanges(t *testing.T) {
	t.Parallel()
	e := newPodsEnv(t)
	// In order: each takes what the ones before left.
	for _, tt := range []struct {
		name        string
		ask, want   []*compute.AliasIpRange
		wantNetwork string
	}{
		{"pods-netmask", aliases("/24", "pods"), aliases("10.64.0.0/24", "pods"), "10.0.0.2"},
		{"pods-next", aliases("/24", "pods"), aliases("10.64.1.0/24", "pods"), "10.0.0.3"},
		{"pods-cidr", aliases("10.64.9.0/24", "pods"), aliases("10.64.9.0/24", "pods"), "10.0.0.4"},
		{"pods-address", aliases("10.64.10.7", "pods"), aliases("10.64.10.7/32", "pods"), "10.0.0.5"},
		// 10.0.0.0/30 holds the network's and the gateway's addresses,
		// 10.0.0.4/30 two VMs' IPs.
		{"primary-netmask", aliases("/30", ""), aliases("10.0.0.8/30", ""), "10.0.0.6"},
		{"both", aliases("/24", "pods", "/32", ""), aliases("10.64.2.0/24", "pods", "10.0.0.12/32", ""), "10.0.0.7"},
		// The next VM's IP skips the primary range's alias blocks.
		{"no-alias", nil, nil, "10.0.0.13"},
	} {
		in := e.insert(t, vmAliased(tt.name, tt.ask))
		ni := in.NetworkInterfaces[0]
		if diff := cmp.Diff(tt.want, ni.AliasIpRanges); diff != "" || ni.NetworkIP != tt.wantNetwork {
			t.Errorf("%s: networkIP %s (want %s), alias ranges (-want +got):\n%s", tt.name, ni.NetworkIP, tt.wantNetwork, diff)
		}
	}
	raw := e.rawGet(t, "zones/"+vmZone+"/instances/pods-netmask")
	nic := raw["networkInterfaces"].([]any)[0].(map[string]any)
	if want := []any{map[string]any{"ipCidrRange": "10.64.0.0/24", "subnetworkRangeName": "pods"}}; !cmp.Equal(nic["aliasIpRanges"], want) {
		t.Errorf("wire aliasIpRanges %v, want %v", nic["aliasIpRanges"], want)
	}

	t.Run("refused", func(t *testing.T) {
		f := "resource.networkInterfaces[0].aliasIpRanges[0]"
		for _, tt := range []struct {
			name   string
			ask    []*compute.AliasIpRange
			reason string
			msg    string
		}{
			{"unknown range", aliases("/24", "nope"), "invalid", "Invalid value for field '" + f + ".subnetworkRangeName': 'nope'."},
			{"no CIDR", aliases("", "pods"), "required", "Required field '" + f + ".ipCidrRange' not specified"},
			{"netmask out of bounds", aliases("/33", "pods"), "invalid", "'" + f + ".ipCidrRange': '/33'"},
			{"not a netmask", aliases("/24x", "pods"), "invalid", "'" + f + ".ipCidrRange': '/24x'"},
			{"host bits set", aliases("10.64.20.1/24", "pods"), "invalid", "'" + f + ".ipCidrRange': '10.64.20.1/24'"},
			{"outside the range", aliases("10.70.0.0/24", "pods"), "invalid", "must lie inside the subnetwork range 10.64.0.0/14"},
			{"wider than the range", aliases("/12", "pods"), "invalid", "larger than the subnetwork range 10.64.0.0/14"},
			{"outside the primary range", aliases("10.64.30.0/24", ""), "invalid", "must lie inside the subnetwork range 10.0.0.0/20"},
		} {
			_, err := e.svc.Instances.Insert(vmProj, vmZone, vmAliased("refused", tt.ask)).Do()
			if ge := vmWantErr(t, err, 400, tt.reason); !strings.Contains(ge.Message, tt.msg) {
				t.Errorf("%s: message %q lacks %q", tt.name, ge.Message, tt.msg)
			}
		}
		legacy := vmBasic("legacy")
		e.ok(t, e.svc.Networks.Insert(vmProj, &compute.Network{Name: "legacy", IPv4Range: "10.250.0.0/16"}))
		legacy.NetworkInterfaces = []*compute.NetworkInterface{{Network: "global/networks/legacy", AliasIpRanges: aliases("/32", "")}}
		_, err := e.svc.Instances.Insert(vmProj, vmZone, legacy).Do()
		vmWantErr(t, err, 400, "invalid")
	})

	t.Run("failed-operations", func(t *testing.T) {
		// A block someone holds fails the insert's operation, as GCE does.
		op := e.opErr(t, e.svc.Instances.Insert(vmProj, vmZone, vmAliased("clash", aliases("10.64.9.128/25", "pods"))),
			"IP_IN_USE_BY_ANOTHER_RESOURCE", 409)
		if msg := op.Error.Errors[0].Message; msg != "IP '10.64.9.128/25' is already being used by another resource." {
			t.Errorf("in-use message %q", msg)
		}
		// So does a range with no block left: tiny holds two /24s.
		e.insert(t, vmAliased("tiny-1", aliases("/24", "tiny")))
		e.insert(t, vmAliased("tiny-2", aliases("/24", "tiny")))
		op = e.opErr(t, e.svc.Instances.Insert(vmProj, vmZone, vmAliased("tiny-3", aliases("/24", "tiny"))), "IP_SPACE_EXHAUSTED", 400)
		if msg, want := op.Error.Errors[0].Message, "IP space of 'projects/"+vmProj+"/regions/"+vmRegion+"/subnetworks/nodes-tiny' is exhausted."; msg != want {
			t.Errorf("exhausted message %q, want %q", msg, want)
		}
		for _, name := range []string{"clash", "tiny-3"} {
			_, err := e.svc.Instances.Get(vmProj, vmZone, name).Do()
			vmWantErr(t, err, 404, "notFound")
		}
		// What the failed inserts took is free again: their IPs (clash
		// had 10.0.0.14, tiny-3 10.0.0.17), and tiny-2's block once tiny-2
		// is gone.
		for _, ip := range []string{"10.0.0.14", "10.0.0.17"} {
			in := vmAliased("at-"+strings.ReplaceAll(ip, ".", "-"), nil)
			in.NetworkInterfaces[0].NetworkIP = ip
			e.insert(t, in)
		}
		e.ok(t, e.svc.Instances.Delete(vmProj, vmZone, "tiny-2"))
		got := e.insert(t, vmAliased("tiny-4", aliases("/24", "tiny"))).NetworkInterfaces[0].AliasIpRanges
		if want := aliases("10.200.1.0/24", "tiny"); !cmp.Equal(got, want) {
			t.Errorf("after tiny-2 went: %v, want its block %v", got, want)
		}
	})

	t.Run("in-use-range-stays", func(t *testing.T) {
		_, err := e.patchRanges(t, ranges("pods", "10.64.0.0/14")).Do()
		ge := vmWantErr(t, err, 400, "resourceInUseByAnotherResource")
		want := "The secondary IP range 'tiny' of subnetwork 'projects/" + vmProj + "/regions/" + vmRegion +
			"/subnetworks/nodes' is already being used by 'projects/" + vmProj + "/zones/" + vmZone + "/instances/tiny-1'"
		if ge.Message != want {
			t.Errorf("message %q\nwant %q", ge.Message, want)
		}
		for _, name := range []string{"tiny-1", "tiny-4"} {
			e.ok(t, e.svc.Instances.Delete(vmProj, vmZone, name))
		}
		e.ok(t, e.patchRanges(t, ranges("pods", "10.64.0.0/14")))
		// A range added again under the old name starts empty.
		e.ok(t, e.patchRanges(t, ranges("pods", "10.64.0.0/14", "tiny", "10.200.0.0/23")))
		got := e.insert(t, vmAliased("tiny-5", aliases("/24", "tiny"))).NetworkInterfaces[0].AliasIpRanges
		if want := aliases("10.200.0.0/24", "tiny"); !cmp.Equal(got, want) {
			t.Errorf("from the range added again: %v, want %v", got, want)
		}
	})

	t.Run("update-network-interface", func(t *testing.T) {
		in := e.insert(t, vmAliased("upd", aliases("/24", "pods")))
		first := in.NetworkInterfaces[0].AliasIpRanges[0]
		update := func(ars []*compute.AliasIpRange) *compute.InstancesUpdateNetworkInterfaceCall {
			ni := e.get(t, "upd").NetworkInterfaces[0]
			return e.svc.Instances.UpdateNetworkInterface(vmProj, vmZone, "upd", "nic0", &compute.NetworkInterface{
				Fingerprint: ni.Fingerprint, AliasIpRanges: ars, ForceSendFields: []string{"AliasIpRanges"}})
		}
		op := e.ok(t, update([]*compute.AliasIpRange{first, {IpCidrRange: "/28", SubnetworkRangeName: "pods"}}))
		if op.OperationType != "updateNetworkInterface" || op.Zone != vmLink("zones/"+vmZone) {
			t.Errorf("op %s zone %s", op.OperationType, op.Zone)
		}
		ni := e.get(t, "upd").NetworkInterfaces[0]
		if want := []*compute.AliasIpRange{first, {IpCidrRange: "10.64.4.0/28", SubnetworkRangeName: "pods"}}; !cmp.Equal(ni.AliasIpRanges, want) {
			t.Errorf("after adding a /28 (-want +got):\n%s", cmp.Diff(want, ni.AliasIpRanges))
		}
		if ni.Fingerprint == in.NetworkInterfaces[0].Fingerprint {
			t.Error("the interface's fingerprint did not change")
		}
		_, err := e.svc.Instances.UpdateNetworkInterface(vmProj, vmZone, "upd", "nic0", &compute.NetworkInterface{
			Fingerprint: in.NetworkInterfaces[0].Fingerprint, AliasIpRanges: aliases("/24", "pods")}).Do()
		vmWantErr(t, err, 412, "conditionNotMet")
		_, err = update(aliases("/24", "pods")).Do()
		vmWantErr(t, err, 400, "invalid")
		_, err = update(aliases("/24", "nope")).Do()
		vmWantErr(t, err, 400, "invalid")

		// Left out, a block is given back: the next VM's /28 is the same.
		e.ok(t, update([]*compute.AliasIpRange{first}))
		got := e.insert(t, vmAliased("upd-2", aliases("/28", "pods"))).NetworkInterfaces[0].AliasIpRanges
		if want := aliases("10.64.4.0/28", "pods"); !cmp.Equal(got, want) {
			t.Errorf("the freed /28 (-want +got):\n%s", cmp.Diff(want, got))
		}
		// A block someone holds fails the operation.
		e.opErr(t, update([]*compute.AliasIpRange{first, {IpCidrRange: "10.64.4.0/28", SubnetworkRangeName: "pods"}}),
			"IP_IN_USE_BY_ANOTHER_RESOURCE", 409)
		// Without aliasIpRanges nothing changes; an empty list removes all.
		ni = e.get(t, "upd").NetworkInterfaces[0]
		e.ok(t, e.svc.Instances.UpdateNetworkInterface(vmProj, vmZone, "upd", "nic0", &compute.NetworkInterface{Fingerprint: ni.Fingerprint}))
		if got := e.get(t, "upd").NetworkInterfaces[0].AliasIpRanges; !cmp.Equal(got, []*compute.AliasIpRange{first}) {
			t.Errorf("after an update without aliasIpRanges: %v", got)
		}
		e.ok(t, update(nil))
		if got := e.get(t, "upd").NetworkInterfaces[0].AliasIpRanges; got != nil {
			t.Errorf("after removing every range: %v", got)
		}
		for _, name := range []string{"upd", "upd-2"} {
			e.ok(t, e.svc.Instances.Delete(vmProj, vmZone, name))
		}
	})

	t.Run("auto-network-with-secondary-ranges", func(t *testing.T) {
		e.ok(t, e.svc.Networks.Insert(vmProj, &compute.Network{Name: "auto", AutoCreateSubnetworks: true}))
		sn := e.subnet(t, vmRegion, "auto")
		e.ok(t, e.svc.Subnetworks.Patch(vmProj, vmRegion, "auto", &compute.Subnetwork{Fingerprint: sn.Fingerprint,
			SecondaryIpRanges: ranges("pods", "10.72.0.0/14")}))
		op := e.opErr(t, e.svc.Networks.Delete(vmProj, "auto"), "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE", 400)
		if msg := op.Error.Errors[0].Message; !strings.Contains(msg, "is already being used by 'projects/"+vmProj+"/regions/") {
			t.Errorf("network delete: %s", msg)
		}
		sn = e.subnet(t, vmRegion, "auto")
		e.ok(t, e.svc.Subnetworks.Patch(vmProj, vmRegion, "auto", &compute.Subnetwork{Fingerprint: sn.Fingerprint,
			ForceSendFields: []string{"SecondaryIpRanges"}}))
		e.ok(t, e.svc.Networks.Delete(vmProj, "auto"))
	})
}

// TestTemplateAliasRanges: a template keeps its alias IP ranges as sent (a
// netmask; GCE refuses a CIDR there), and each VM a managed instance group
// makes from it gets a block of its own; a range with no block left shows
// in the member's last attempt.
func TestTemplateAliasRanges(t *testing.T) {
	t.Parallel()
	e := newPodsEnv(t)
	tpl := func(name, cidr, rangeName string) *compute.InstanceTemplate {
		it := vmTemplate(name)
		it.Properties.NetworkInterfaces = []*compute.NetworkInterface{{Network: "global/networks/vpc",
			Subnetwork: "regions/" + vmRegion + "/subnetworks/nodes", AliasIpRanges: aliases(cidr, rangeName)}}
		return it
	}
	_, err := e.svc.InstanceTemplates.Insert(vmProj, tpl("cidr", "10.64.0.0/24", "pods")).Do()
	ge := vmWantErr(t, err, 400, "invalid")
	if want := "Invalid value for field 'resource.properties.networkInterfaces[0].aliasIpRanges[0].ipCidrRange': '10.64.0.0/24'. " +
		"Alias IP CIDR range must be a valid netmask starting with '/' (e.g. '/24')"; ge.Message != want {
		t.Errorf("message %q\nwant %q", ge.Message, want)
	}

	e.ok(t, e.svc.InstanceTemplates.Insert(vmProj, tpl("nodes", "/24", "pods")))
	raw := e.rawGet(t, "global/instanceTemplates/nodes")
	nic := raw["properties"].(map[string]any)["networkInterfaces"].([]any)[0].(map[string]any)
	if want := []any{map[string]any{"ipCidrRange": "/24", "subnetworkRangeName": "pods"}}; !cmp.Equal(nic["aliasIpRanges"], want) {
		t.Errorf("template aliasIpRanges %v, want %v as sent", nic["aliasIpRanges"], want)
	}
	e.ok(t, e.svc.InstanceGroupManagers.Insert(vmProj, vmZone, vmMIG("pool", "nodes", 3)))
	blocks := map[string]bool{}
	for _, m := range e.managed(t, "pool") {
		in := e.get(t, vmLast(m.Instance))
		for _, ar := range in.NetworkInterfaces[0].AliasIpRanges {
			if ar.SubnetworkRangeName != "pods" || !strings.HasPrefix(ar.IpCidrRange, "10.6") || !strings.HasSuffix(ar.IpCidrRange, ".0/24") {
				t.Errorf("%s: alias %+v", in.Name, ar)
			}
			blocks[ar.IpCidrRange] = true
		}
	}
	if want := map[string]bool{"10.64.0.0/24": true, "10.64.1.0/24": true, "10.64.2.0/24": true}; !cmp.Equal(blocks, want) {
		t.Errorf("the group's blocks %v, want %v", blocks, want)
	}

	e.ok(t, e.svc.InstanceTemplates.Insert(vmProj, tpl("tiny", "/24", "tiny")))
	e.ok(t, e.svc.InstanceGroupManagers.Insert(vmProj, vmZone, vmMIG("small", "tiny", 3)))
	var failed []string
	for _, m := range e.managed(t, "small") {
		if m.LastAttempt == nil || m.LastAttempt.Errors == nil {
			continue
		}
		for _, le := range m.LastAttempt.Errors.Errors {
			failed = append(failed, le.Code+": "+le.Message)
		}
	}
	want := []string{"IP_SPACE_EXHAUSTED: IP space of 'projects/" + vmProj + "/regions/" + vmRegion + "/subnetworks/nodes-tiny' is exhausted."}
	if !cmp.Equal(failed, want) {
		t.Errorf("last attempts %v, want %v", failed, want)
	}
}

// TestManagedInstanceGroupOf1000Aliases: a group of 1,000 VMs takes 1,000
// /24s of one secondary range, every one its own, and gives them back.
func TestManagedInstanceGroupOf1000Aliases(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: creates 1,000 VMs")
	}
	t.Parallel()
	e := newPodsEnv(t)
	it := vmTemplate("nodes")
	it.Properties.NetworkInterfaces = []*compute.NetworkInterface{{Network: "global/networks/vpc",
		Subnetwork: "regions/" + vmRegion + "/subnetworks/nodes", AliasIpRanges: aliases("/24", "pods")}}
	e.ok(t, e.svc.InstanceTemplates.Insert(vmProj, it))
	e.ok(t, e.svc.InstanceGroupManagers.Insert(vmProj, vmZone, vmMIG("pool", "nodes", 1000)))
	blocks := map[string]string{}
	err := e.svc.Instances.List(vmProj, vmZone).Pages(e.ctx, func(l *compute.InstanceList) error {
		for _, in := range l.Items {
			ars := in.NetworkInterfaces[0].AliasIpRanges
			if len(ars) != 1 {
				return fmt.Errorf("%s has alias ranges %v", in.Name, ars)
			}
			if other, dup := blocks[ars[0].IpCidrRange]; dup {
				return fmt.Errorf("%s and %s both hold %s", in.Name, other, ars[0].IpCidrRange)
			}
			blocks[ars[0].IpCidrRange] = in.Name
		}
		return nil
	})
	if err != nil || len(blocks) != 1000 {
		t.Fatalf("%d blocks: %v", len(blocks), err)
	}
	e.ok(t, e.svc.InstanceGroupManagers.Delete(vmProj, vmZone, "pool"))
	e.ok(t, e.patchRanges(t, nil))
}
