package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseHWM(t *testing.T) {
	got, err := parseHWM([]byte("Name:\tgce-emulator\nVmPeak:\t 2000 kB\nVmHWM:\t    1536 kB\nVmRSS:\t 1000 kB\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got != 1536<<10 {
		t.Errorf("VmHWM = %d bytes, want %d", got, 1536<<10)
	}
	if _, err := parseHWM([]byte("Name:\tx\n")); err == nil {
		t.Error("a status without VmHWM parsed")
	}
}

func TestCheckRequests(t *testing.T) {
	rows := []row{
		{nodes: 500, step: "fresh up", requests: 70}, {nodes: 500, step: "resize to 400", requests: 40},
		{nodes: 5000, step: "fresh up", requests: 120}, {nodes: 5000, step: "resize to 4000", requests: 4040},
	}
	err := checkRequests(rows)
	if err == nil {
		t.Fatal("a resize that made a request per node passed")
	}
	if got := err.Error(); !strings.Contains(got, "resize: 4040 requests at 5000 nodes") || strings.Contains(got, "fresh up") {
		t.Errorf("error names the wrong steps:\n%s", got)
	}
	if err := checkRequests(rows[:3]); err != nil {
		t.Errorf("requests growing by pages failed: %v", err)
	}
}

func TestParseNodes(t *testing.T) {
	got, err := parseNodes("500, 2000,5000")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{500, 2000, 5000}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, bad := range []string{"", "1", "5001", "x"} {
		if _, err := parseNodes(bad); err == nil {
			t.Errorf("parseNodes(%q) passed", bad)
		}
	}
}
