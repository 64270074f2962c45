package main

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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
