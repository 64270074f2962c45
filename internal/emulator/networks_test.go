package emulator_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hakube/hakube/internal/emulator"
	compute "google.golang.org/api/compute/v1"
)

func TestNetworkModes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	regions, err := e.svc.Regions.List(proj).Do()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("auto", func(t *testing.T) {
		op := e.do(t, e.svc.Networks.Insert(proj, &compute.Network{Name: "auto", AutoCreateSubnetworks: true}))
		if op.OperationType != "insert" || op.Region != "" || op.Zone != "" {
			t.Errorf("insert op %s region %q zone %q, want a global insert", op.OperationType, op.Region, op.Zone)
		}
		n, err := e.svc.Networks.Get(proj, "auto").Do()
		if err != nil {
			t.Fatal(err)
		}
		if !n.AutoCreateSubnetworks || len(n.Subnetworks) != len(regions.Items) {
			t.Errorf("auto network: %d subnets for %d regions", len(n.Subnetworks), len(regions.Items))
		}
		// One subnet per region, named like the network.
		for _, r := range regions.Items {
			sn, err := e.svc.Subnetworks.Get(proj, r.Name, "auto").Do()
			if err != nil {
				t.Fatalf("subnet in %s: %v", r.Name, err)
			}
			if sn.Network != link("global/networks/auto") || sn.GatewayAddress == "" {
				t.Errorf("subnet %s: network %s gateway %q", r.Name, sn.Network, sn.GatewayAddress)
			}
		}
	})

	t.Run("custom", func(t *testing.T) {
		// false is dropped by the client unless forced: the classic pitfall.
		e.do(t, e.svc.Networks.Insert(proj, &compute.Network{Name: "custom", ForceSendFields: []string{"AutoCreateSubnetworks"}}))
		_, got := e.raw(t, "GET", "global/networks/custom", nil)
		for _, k := range []string{"id", "creationTimestamp", "selfLinkWithId"} {
			if got[k] == nil {
				t.Errorf("missing %s", k)
			}
			delete(got, k)
		}
		want := map[string]any{
			"kind": "compute#network", "name": "custom", "autoCreateSubnetworks": false,
			"routingConfig":                         map[string]any{"routingMode": "REGIONAL", "bgpBestPathSelectionMode": "LEGACY"},
			"networkFirewallPolicyEnforcementOrder": "AFTER_CLASSIC_FIREWALL",
			"selfLink":                              link("global/networks/custom"),
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("custom network (-want +got):\n%s", d)
		}
		e.do(t, e.svc.Subnetworks.Insert(proj, region, &compute.Subnetwork{Name: "sub", Network: "global/networks/custom", IpCidrRange: "10.2.0.0/16"}))
		sn, err := e.svc.Subnetworks.Get(proj, region, "sub").Do()
		if err != nil {
			t.Fatal(err)
		}
		if sn.GatewayAddress != "10.2.0.1" || sn.Purpose != "PRIVATE" || sn.StackType != "IPV4_ONLY" {
			t.Errorf("subnet %+v", sn)
		}
		n, _ := e.svc.Networks.Get(proj, "custom").Do()
		if !cmp.Equal(n.Subnetworks, []string{link("regions/us-central1/subnetworks/sub")}) {
			t.Errorf("network subnetworks %v", n.Subnetworks)
		}
		_, err = e.svc.Subnetworks.Insert(proj, other, &compute.Subnetwork{Name: "clash", Network: "global/networks/custom", IpCidrRange: "10.2.128.0/20"}).Do()
		apiErr(t, err, 400, "invalid")
	})

	t.Run("legacy", func(t *testing.T) {
		e.do(t, e.svc.Networks.Insert(proj, &compute.Network{Name: "legacy", IPv4Range: "10.9.0.0/16"}))
		_, got := e.raw(t, "GET", "global/networks/legacy", nil)
		if got["IPv4Range"] != "10.9.0.0/16" || got["gatewayIPv4"] != "10.9.0.1" {
			t.Errorf("legacy range %v gateway %v", got["IPv4Range"], got["gatewayIPv4"])
		}
		if _, ok := got["autoCreateSubnetworks"]; ok {
			t.Errorf("legacy network has autoCreateSubnetworks %v", got["autoCreateSubnetworks"])
		}
		_, err := e.svc.Subnetworks.Insert(proj, region, &compute.Subnetwork{Name: "nope", Network: "global/networks/legacy", IpCidrRange: "10.9.0.0/20"}).Do()
		apiErr(t, err, 400, "invalid")
	})
}

// TestNetworkDeleteInUse: the recorded GCE behaviour is a 200 RUNNING
// operation that ends DONE with RESOURCE_IN_USE_BY_ANOTHER_RESOURCE, and the
// network still there.
func TestNetworkDeleteInUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	e.do(t, e.svc.Networks.Insert(proj, &compute.Network{Name: "net", AutoCreateSubnetworks: true}))
	e.do(t, e.svc.Firewalls.Insert(proj, &compute.Firewall{Name: "fw", Network: "global/networks/net", Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp", Ports: []string{"22"}}}}))

	op := e.fails(t, e.svc.Networks.Delete(proj, "net"), "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE", 400)
	want := "The network resource 'projects/test-project/global/networks/net' is already being used by 'projects/test-project/global/firewalls/fw'"
	if op.Error.Errors[0].Message != want || op.HttpErrorMessage != "BAD REQUEST" {
		t.Errorf("op error %q (%s)\nwant %q", op.Error.Errors[0].Message, op.HttpErrorMessage, want)
	}
	if _, err := e.svc.Networks.Get(proj, "net").Do(); err != nil {
		t.Fatalf("network gone after a refused delete: %v", err)
	}

	e.do(t, e.svc.Firewalls.Delete(proj, "fw"))
	e.do(t, e.svc.Networks.Delete(proj, "net"))
	_, err := e.svc.Networks.Get(proj, "net").Do()
	apiErr(t, err, 404, "notFound")
	// Its auto subnets and its default route went with it.
	_, err = e.svc.Subnetworks.Get(proj, region, "net").Do()
	apiErr(t, err, 404, "notFound")
	routes, err := e.svc.Routes.List(proj).Filter(`network = "` + link("global/networks/net") + `"`).Do()
	if err != nil || len(routes.Items) != 0 {
		t.Errorf("routes of the deleted network: %v %v", err, itemNames(routes.Items))
	}
}

func TestDefaultNetworkSeeded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	n, err := e.svc.Networks.Get(proj, "default").Do()
	if err != nil {
		t.Fatal(err)
	}
	if !n.AutoCreateSubnetworks || n.Mtu != 1460 {
		t.Errorf("default network auto=%v mtu=%d", n.AutoCreateSubnetworks, n.Mtu)
	}
	routes, err := e.svc.Routes.List(proj).Do()
	if err != nil || len(routes.Items) != 1 || !strings.HasPrefix(routes.Items[0].Name, "default-route-") ||
		routes.Items[0].DestRange != "0.0.0.0/0" {
		t.Errorf("default route: %v %v", err, itemNames(routes.Items))
	}
	// Auto-mode subnets cannot be deleted one by one.
	_, err = e.svc.Subnetworks.Delete(proj, region, "default").Do()
	apiErr(t, err, 400, "badRequest")
}

// TestSubnetworkShapeByPurpose: the recorded shapes (conformance corpus):
// a logConfig sent is echoed, with enableFlowLogs; only PRIVATE subnets
// have a stack type; proxy-only subnets have a role and a state instead.
func TestSubnetworkShapeByPurpose(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	e.do(t, e.svc.Networks.Insert(proj, &compute.Network{Name: "net", ForceSendFields: []string{"AutoCreateSubnetworks"}}))
	for i, tc := range []struct {
		name, purpose string
		logConfig     bool
		want          map[string]any
		absent        []string
	}{
		{"plain", "", false, map[string]any{"stackType": "IPV4_ONLY", "purpose": "PRIVATE"}, []string{"logConfig", "enableFlowLogs", "role", "state"}},
		{"logged", "", true, map[string]any{"stackType": "IPV4_ONLY", "logConfig": map[string]any{"enable": false}, "enableFlowLogs": false},
			[]string{"role", "state"}},
		{"nat", "PRIVATE_NAT", true, map[string]any{"logConfig": map[string]any{"enable": false}, "enableFlowLogs": false},
			[]string{"stackType", "role", "state"}},
		{"proxy", "REGIONAL_MANAGED_PROXY", false, map[string]any{"role": "ACTIVE", "state": "READY"}, []string{"stackType", "logConfig"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := map[string]any{"name": tc.name, "network": "global/networks/net", "ipCidrRange": fmt.Sprintf("10.%d.0.0/24", i)}
			if tc.purpose != "" {
				body["purpose"] = tc.purpose
			}
			if tc.logConfig {
				body["logConfig"] = map[string]any{"enable": false}
			}
			if code, op := e.raw(t, "POST", "regions/"+region+"/subnetworks", body); code != 200 || op["status"] != "DONE" {
				t.Fatalf("insert: %d %v", code, op)
			}
			_, got := e.raw(t, "GET", "regions/"+region+"/subnetworks/"+tc.name, nil)
			for k, want := range tc.want {
				if !cmp.Equal(got[k], want) {
					t.Errorf("%s = %#v, want %#v", k, got[k], want)
				}
			}
			for _, k := range tc.absent {
				if v, ok := got[k]; ok {
					t.Errorf("%s = %#v, want no such key", k, v)
				}
			}
		})
	}
}

// TestNetworkProfileIsALink: references in a network come back absolute
// (recorded: computenetworkbasic#4).
func TestNetworkProfileIsALink(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	code, _ := e.raw(t, "POST", "global/networks", map[string]any{"name": "prof", "autoCreateSubnetworks": false,
		"networkProfile": "projects/" + proj + "/global/networkProfiles/us-central1-a-vpc-falcon"})
	if code != 200 {
		t.Fatalf("insert: %d", code)
	}
	n, err := e.svc.Networks.Get(proj, "prof").Do()
	if err != nil {
		t.Fatal(err)
	}
	if want := link("global/networkProfiles/us-central1-a-vpc-falcon"); n.NetworkProfile != want {
		t.Errorf("networkProfile %q, want %q", n.NetworkProfile, want)
	}
}
