package emulator_test

import (
	"flag"
	"testing"

	"github.com/hakube/hakube/internal/emulator/conformance"
)

var conformanceSource = flag.String("conformance.source", "",
	"regenerate testdata/conformance from this directory (holding gce-recorded.jsonl and gce-unverified.jsonl) before replaying")

// TestConformance replays HTTP exchanges recorded against real Compute
// Engine (testdata/conformance) and checks that the emulator answers each as
// GCE did; package conformance is the replay engine.
//
// go test ./internal/emulator -run TestConformance -conformance.source=DIR
// regenerates testdata/conformance from DIR first.
func TestConformance(t *testing.T) {
	conformance.Run(t, "testdata/conformance", *conformanceSource)
}
