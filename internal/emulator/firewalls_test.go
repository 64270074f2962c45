package emulator_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hakube/hakube/internal/emulator"
	compute "google.golang.org/api/compute/v1"
)

// TestFirewallDefaults pins the recorded GET after an insert that left out
// direction and sources.
func TestFirewallDefaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	op := e.do(t, e.svc.Firewalls.Insert(proj, &compute.Firewall{Name: "web",
		Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp", Ports: []string{"80", "1000-2000"}}, {IPProtocol: "udp"}}}))
	if op.OperationType != "insert" || op.Region != "" || op.Zone != "" {
		t.Errorf("insert op %s region %q zone %q", op.OperationType, op.Region, op.Zone)
	}
	_, got := e.raw(t, "GET", "global/firewalls/web", nil)
	for _, k := range []string{"id", "creationTimestamp"} {
		if got[k] == nil {
			t.Errorf("missing %s", k)
		}
		delete(got, k)
	}
	want := map[string]any{
		"kind": "compute#firewall", "name": "web", "description": "",
		"network":      link("global/networks/default"),
		"direction":    "INGRESS",
		"priority":     float64(1000),
		"sourceRanges": []any{"0.0.0.0/0"},
		"disabled":     false,
		"logConfig":    map[string]any{"enable": false},
		"allowed": []any{
			map[string]any{"IPProtocol": "tcp", "ports": []any{"80", "1000-2000"}},
			map[string]any{"IPProtocol": "udp"},
		},
		"selfLink": link("global/firewalls/web"),
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("firewall (-want +got):\n%s", d)
	}
}

func TestFirewallExplicitValues(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	e.do(t, e.svc.Firewalls.Insert(proj, &compute.Firewall{Name: "top", Priority: 0, ForceSendFields: []string{"Priority"},
		SourceTags: []string{"lb"}, TargetTags: []string{"master"}, Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp", Ports: []string{"443"}}}}))
	fw, err := e.svc.Firewalls.Get(proj, "top").Do()
	if err != nil {
		t.Fatal(err)
	}
	if fw.Priority != 0 || len(fw.SourceRanges) != 0 || !cmp.Equal(fw.SourceTags, []string{"lb"}) || !cmp.Equal(fw.TargetTags, []string{"master"}) {
		t.Errorf("firewall %+v", fw)
	}
	e.do(t, e.svc.Firewalls.Insert(proj, &compute.Firewall{Name: "out", Direction: "EGRESS", Denied: []*compute.FirewallDenied{{IPProtocol: "all"}}}))
	fw, _ = e.svc.Firewalls.Get(proj, "out").Do()
	if fw.Direction != "EGRESS" || !cmp.Equal(fw.DestinationRanges, []string{"0.0.0.0/0"}) || len(fw.SourceRanges) != 0 {
		t.Errorf("egress firewall %+v", fw)
	}
}

func TestFirewallValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	for name, tc := range map[string]struct {
		fw     compute.Firewall
		code   int
		reason string
	}{
		"nothing-allowed": {compute.Firewall{}, 400, "invalid"},
		"allow-and-deny":  {compute.Firewall{Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp"}}, Denied: []*compute.FirewallDenied{{IPProtocol: "udp"}}}, 400, "invalid"},
		"bad-port":        {compute.Firewall{Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp", Ports: []string{"70000"}}}}, 400, "invalid"},
		"icmp-ports":      {compute.Firewall{Allowed: []*compute.FirewallAllowed{{IPProtocol: "icmp", Ports: []string{"1"}}}}, 400, "invalid"},
		"bad-protocol":    {compute.Firewall{Allowed: []*compute.FirewallAllowed{{IPProtocol: "carrier-pigeon"}}}, 400, "invalid"},
		"bad-range":       {compute.Firewall{SourceRanges: []string{"10.0.0.0/33"}, Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp"}}}, 400, "invalid"},
		"bad-direction":   {compute.Firewall{Direction: "SIDEWAYS", Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp"}}}, 400, "invalid"},
		"bad-priority":    {compute.Firewall{Priority: 70000, Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp"}}}, 400, "invalid"},
		"missing-network": {compute.Firewall{Network: "global/networks/ghost", Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp"}}}, 404, "notFound"},
	} {
		t.Run(name, func(t *testing.T) {
			fw := tc.fw
			fw.Name = name
			_, err := e.svc.Firewalls.Insert(proj, &fw).Do()
			apiErr(t, err, tc.code, tc.reason)
		})
	}
}

func TestDefaultFirewallsSeeded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	l, err := e.svc.Firewalls.List(proj).Do()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"default-allow-icmp", "default-allow-internal", "default-allow-rdp", "default-allow-ssh"}
	if got := itemNames(l.Items); !cmp.Equal(got, want) {
		t.Errorf("seeded firewalls %v", got)
	}
	for _, fw := range l.Items {
		if fw.Priority != 65534 || fw.Network != link("global/networks/default") {
			t.Errorf("%s: priority %d network %s", fw.Name, fw.Priority, fw.Network)
		}
	}
	e.do(t, e.svc.Firewalls.Delete(proj, "default-allow-rdp"))
	_, err = e.svc.Firewalls.Get(proj, "default-allow-rdp").Do()
	apiErr(t, err, 404, "notFound")
}
