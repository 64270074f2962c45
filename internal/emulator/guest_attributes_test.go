package emulator_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hakube/hakube/internal/emulator"
	"github.com/hakube/hakube/internal/vmcontract"
	compute "google.golang.org/api/compute/v1"
)

// bootstrapOf reads an instance's hakube/bootstrap as hakube status does:
// "" while GCE answers 404 (nothing reported yet).
func bootstrapOf(t *testing.T, svc *compute.Service, project, zone, name string) string {
	t.Helper()
	g, err := svc.Instances.GetGuestAttributes(project, zone, name).QueryPath(vmcontract.GuestAttrBootstrap).Do()
	if isHTTP(err, 404) {
		return ""
	}
	if err != nil {
		t.Fatalf("getGuestAttributes %s: %v", name, err)
	}
	for _, it := range g.QueryValue.Items {
		if it.Namespace == vmcontract.GuestAttrNamespace && it.Key == vmcontract.GuestAttrBootstrapKey {
			return it.Value
		}
	}
	t.Fatalf("getGuestAttributes %s: %+v has no %s", name, g.QueryValue, vmcontract.GuestAttrBootstrap)
	return ""
}

// TestGuestBootstrapAttribute: with the static guests, a cluster's VM
// reports hakube/bootstrap as a real one's startup script does (ok once
// its guest started, failed at metadata when its kube-env does not parse);
// getGuestAttributes answers it, and GCE's 404 where nothing was written (a
// VM of no cluster, or one whose guest attributes are off, which its
// console warns about). The extras see nic0's first alias range as the
// VM's pod range.
func TestGuestBootstrapAttribute(t *testing.T) {
	t.Parallel()
	rec := newRecordingExtras()
	e := startDPWith(t, 0.2, func(o *emulator.Options) { o.Extras, o.SSHPort = rec, 2222 })
	sn, err := e.svc.Subnetworks.Get(dpProject, dpRegion, "default").Do()
	if err != nil {
		t.Fatal(err)
	}
	op, err := e.svc.Subnetworks.Patch(dpProject, dpRegion, "default", &compute.Subnetwork{Fingerprint: sn.Fingerprint,
		SecondaryIpRanges: []*compute.SubnetworkSecondaryRange{{RangeName: "pods", IpCidrRange: "10.64.0.0/14"}}}).Do()
	e.waitOp(t, op, err)

	pods := []*compute.AliasIpRange{{IpCidrRange: "/24", SubnetworkRangeName: "pods"}}
	vms := []struct {
		spec    vmSpec
		want    string // "" for a 404
		podCIDR string
	}{
		{vmSpec{name: "node", attrs: true, aliases: pods}, "ok", "10.64.0.0/24"},
		{vmSpec{name: "master", master: true, attrs: true}, "ok", ""},
		{vmSpec{name: "bad-env", env: "KUBERNETES_MASTER: 'true\n", attrs: true}, "failed at metadata: kube-env is not valid YAML: ", ""},
		{vmSpec{name: "no-cluster", env: "-", attrs: true}, "", ""},
		{vmSpec{name: "attrs-off", aliases: pods}, "", "10.64.1.0/24"},
	}
	for _, vm := range vms {
		op := e.startVM(t, vm.spec)
		e.waitOp(t, op, nil)
	}
	boots := map[string]netip.Prefix{}
	for range vms {
		b := rec.wait(t, 1)
		boots[b.Name] = b.PodCIDR
	}
	for _, vm := range vms {
		name := vm.spec.name
		want := netip.Prefix{}
		if vm.podCIDR != "" {
			want = netip.MustParsePrefix(vm.podCIDR)
		}
		if got := boots[name]; got != want {
			t.Errorf("%s: the extras' PodCIDR %v, want %v", name, got, want)
		}
		if vm.want == "" {
			continue
		}
		eventually(t, 5*time.Second, name+" reporting "+vm.want, func() bool {
			return strings.HasPrefix(bootstrapOf(t, e.svc, dpProject, dpZone, name), vm.want)
		})
	}
	// The extras started after the guest: a VM that reports has done so.
	for _, name := range []string{"no-cluster", "attrs-off"} {
		if got := bootstrapOf(t, e.svc, dpProject, dpZone, name); got != "" {
			t.Errorf("%s reported %q", name, got)
		}
	}
	_, err = e.svc.Instances.GetGuestAttributes(dpProject, dpZone, "no-cluster").QueryPath("hakube/bootstrap").Do()
	if ge := vmWantErr(t, err, 404, "notFound"); ge.Message != "The resource 'hakube/bootstrap' of type 'Guest Attribute' was not found." {
		t.Errorf("404 message %q", ge.Message)
	}
	console, err := e.svc.Instances.GetSerialPortOutput(dpProject, dpZone, "attrs-off").Do()
	if err != nil || !strings.Contains(console.Contents, "hakube-guest: warning: cannot set guest attribute hakube/bootstrap: ") ||
		!strings.Contains(console.Contents, "guest attributes endpoint access is disabled") {
		t.Errorf("attrs-off's console (%v):\n%s", err, console.Contents)
	}

	// A namespace, one key, the whole set; a malformed path is a 400.
	g, err := e.svc.Instances.GetGuestAttributes(dpProject, dpZone, "node").QueryPath("hakube/").Do()
	want := []*compute.GuestAttributesEntry{{Namespace: "hakube", Key: "bootstrap", Value: "ok"}}
	if err != nil || g.QueryPath != "hakube/" || !cmp.Equal(g.QueryValue.Items, want) {
		t.Errorf("queryPath hakube/: %+v %v", g, err)
	}
	g, err = e.svc.Instances.GetGuestAttributes(dpProject, dpZone, "node").VariableKey("hakube/bootstrap").Do()
	if err != nil || g.VariableValue != "ok" || g.VariableKey != "hakube/bootstrap" {
		t.Errorf("variableKey: %+v %v", g, err)
	}
	_, err = e.svc.Instances.GetGuestAttributes(dpProject, dpZone, "node").QueryPath("hostkeys/").Do()
	vmWantErr(t, err, 404, "notFound")
	_, err = e.svc.Instances.GetGuestAttributes(dpProject, dpZone, "node").QueryPath("hakube").Do()
	vmWantErr(t, err, 400, "invalid")
	_, err = e.svc.Instances.GetGuestAttributes(dpProject, dpZone, "missing").QueryPath("hakube/").Do()
	vmWantErr(t, err, 404, "notFound")
}
