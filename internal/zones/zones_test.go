package zones_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hakube/hakube/internal/emulator"
	"github.com/hakube/hakube/internal/emulator/emulatortest"
	"github.com/hakube/hakube/internal/gce"
	"github.com/hakube/hakube/internal/zones"
)

func TestRegionAndSyntax(t *testing.T) {
	tests := []struct {
		zone, region string
		valid        bool
	}{
		{"europe-west1-c", "europe-west1", true},
		{"us-central1-b", "us-central1", true},
		{"asia-southeast1-a", "asia-southeast1", true},
		{"northamerica-northeast1-a", "northamerica-northeast1", true},
		{"europe-west1", "europe", false},
		{"Europe-west1-c", "Europe-west1", false},
		{"europe-west1-c-d", "europe-west1-c", false},
		{"", "", false},
	}
	for _, tt := range tests {
		if got := zones.Valid(tt.zone); got != tt.valid {
			t.Errorf("Valid(%q) = %v, want %v", tt.zone, got, tt.valid)
		}
		if got := zones.Region(tt.zone); got != tt.region {
			t.Errorf("Region(%q) = %q, want %q", tt.zone, got, tt.region)
		}
	}
}

func TestSort(t *testing.T) {
	got := zones.Sort([]string{"europe-west1-d", "europe-west1-b", "europe-west1-d", "europe-west1-c"})
	if diff := cmp.Diff([]string{"europe-west1-b", "europe-west1-c", "europe-west1-d"}, got); diff != "" {
		t.Error(diff)
	}
}

func TestCheckAgainstTheAPI(t *testing.T) {
	emu := emulatortest.Start(t, emulator.Options{})
	ctx := context.Background()
	c, err := gce.New(ctx, gce.Options{Project: "test-project", Endpoint: emu.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	if err := zones.Check(ctx, c, "europe-west1-c"); err != nil {
		t.Errorf("existing zone: %v", err)
	}
	for _, z := range []string{"europe-west1-a", "mars-north1-a", "not a zone"} {
		if err := zones.Check(ctx, c, z); !errors.Is(err, zones.ErrZone) {
			t.Errorf("Check(%q) = %v, want ErrZone", z, err)
		}
	}
	if err := emu.Control.SetZone(ctx, "europe-west1-d", "DOWN"); err != nil {
		t.Fatal(err)
	}
	if err := zones.Check(ctx, c, "europe-west1-d"); !errors.Is(err, zones.ErrZone) {
		t.Errorf("DOWN zone: %v, want ErrZone", err)
	}
	rc, _ := emu.Control.RequestsSince(ctx, 0)
	// One call per well-formed zone; "not a zone" fails before any call.
	if rc.Counts["compute.zones.get"] != 4 {
		t.Errorf("zones.get calls = %d, want 4", rc.Counts["compute.zones.get"])
	}
}

func TestKnownZonesAreValid(t *testing.T) {
	known := zones.Known()
	if len(known) < 100 {
		t.Fatalf("only %d known zones", len(known))
	}
	for _, z := range known {
		if !zones.Valid(z) {
			t.Errorf("known zone %q is not a valid zone name", z)
		}
	}
	for _, z := range []string{"europe-west1-b", "us-central1-f", "us-east1-d"} {
		if !slices.Contains(known, z) {
			t.Errorf("known zones lack %s", z)
		}
	}
}
