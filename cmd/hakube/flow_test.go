package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hakube/hakube/internal/cluster"
)

// TestDescribeOutage: the "Static IP moved" line says how the outage was
// measured.
func TestDescribeOutage(t *testing.T) {
	const how = "static IP probed every 100 ms"
	tests := []struct {
		outage   time.Duration
		measured string
		reverted bool
		want     string
	}{
		{5 * time.Second, how, false, "outage 5s (static IP probed every 100 ms)"},
		{12300 * time.Millisecond, how, true, "reverted after an outage of 12.3s (static IP probed every 100 ms)"},
		{0, how, false, "no outage seen: no probe went unanswered (static IP probed every 100 ms)"},
		{2 * time.Second, "", false, "outage 2s"},
	}
	var got, want []string
	for _, tt := range tests {
		got = append(got, describeOutage(tt.outage, tt.measured, tt.reverted))
		want = append(want, tt.want)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("describeOutage (-want +got):\n%s", diff)
	}
}

// TestWriteSummary: the summary after a flow says what the flow did not
// read instead of showing it as absent.
func TestWriteSummary(t *testing.T) {
	zones := []cluster.ZoneStatus{
		{Zone: "us-central1-b", Masters: []cluster.MasterStatus{{Name: "kubernetes-master"}}, Pool: &cluster.PoolStatus{TargetSize: 3}},
		{Zone: "us-central1-c", Masters: []cluster.MasterStatus{{Name: "kubernetes-master-x1y"}}},
	}
	ip := &cluster.IPStatus{Address: "203.0.113.7", Port: 443, Owner: "forwarding-rule kubernetes-master", Name: "kubernetes-master-ip"}
	tests := []struct {
		name string
		st   cluster.Status
		want string
	}{
		{"everything read", cluster.Status{Exists: true, Mode: "load-balanced", StaticIP: ip, Zones: zones},
			"API: https://203.0.113.7:443, held by forwarding-rule kubernetes-master (load-balanced).\n" +
				"Masters: kubernetes-master (us-central1-b), kubernetes-master-x1y (us-central1-c).\nNode pools: us-central1-b: 3 nodes.\n"},
		{"a replica's flow", cluster.Status{Exists: true, Mode: "load-balanced", StaticIP: ip, Zones: zones[1:], Unobserved: []string{"node pools"}},
			"API: https://203.0.113.7:443, held by forwarding-rule kubernetes-master (load-balanced).\n" +
				"Masters: kubernetes-master-x1y (us-central1-c).\nNode pools: not read by this flow (hakube status lists them).\n"},
		{"gone", cluster.Status{Cluster: "kubernetes"}, "Cluster \"kubernetes\" no longer exists.\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			writeSummary(&b, &tt.st)
			if diff := cmp.Diff(tt.want, b.String()); diff != "" {
				t.Errorf("summary (-want +got):\n%s", diff)
			}
		})
	}
}
