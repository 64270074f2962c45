package emulator

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/hakube/hakube/internal/emulator/dataplane"
)

// Latency presets.
const (
	LatencyRealistic = "realistic" // figures observed on real GCE (reference/gce-api.md §6), scaled by TimeScale
	LatencyFast      = "fast"      // sub-second but still asynchronous: for tests
	LatencyNone      = "none"      // operations are DONE in the response: for unit tests
)

// span is a duration range in seconds; a draw is uniform within it.
type span struct{ min, max float64 }

// realisticLatency is how long each kind of operation takes on real GCE.
// Keys are API method ids without the "compute." prefix; unlisted methods
// use "default". The data plane's own events (a guest's boot, a rule's
// propagation) are timed by package dataplane, scaled by factor.
var realisticLatency = map[string]span{
	"default":                            {1, 3},
	"addresses.insert":                   {2, 5},
	"addresses.delete":                   {2, 5},
	"addresses.setLabels":                {0, 0}, // DONE in the response, as recorded
	"forwardingRules.setLabels":          {0, 0},
	"networks.insert":                    {10, 25},
	"networks.delete":                    {10, 20},
	"firewalls.insert":                   {4, 10},
	"firewalls.delete":                   {4, 10},
	"routes.insert":                      {4, 10},
	"routes.delete":                      {4, 10},
	"disks.insert":                       {2, 6},
	"disks.delete":                       {2, 6},
	"instances.insert":                   {15, 35},
	"instances.delete":                   {20, 45},
	"instances.stop":                     {15, 40},
	"instances.start":                    {10, 25},
	"instances.reset":                    {3, 8},
	"instances.addAccessConfig":          {3, 8},
	"instances.deleteAccessConfig":       {3, 8},
	"instances.setMetadata":              {2, 6},
	"projects.setCommonInstanceMetadata": {5, 15},
	"instances.setLabels":                {1, 3},
	"instances.setTags":                  {2, 6},
	"instances.attachDisk":               {3, 8},
	"instances.detachDisk":               {3, 8},
	"instanceTemplates.insert":           {1, 3},
	"instanceTemplates.delete":           {1, 3},
	"instanceGroupManagers.insert":       {2, 5},
	"instanceGroupManagers.delete":       {10, 30},
	"instanceGroupManagers.resize":       {0.002, 0.01}, // DONE once scheduled
	"instanceGroupManagers.retry":        {10, 30},      // a MIG retrying VMs it could not create
	"targetPools.insert":                 {2, 6},
	"targetPools.delete":                 {2, 6},
	"targetPools.addInstance":            {2, 5},
	"targetPools.removeInstance":         {2, 5},
	"targetPools.addHealthCheck":         {2, 5},
	"targetPools.removeHealthCheck":      {2, 5},
	"httpHealthChecks.insert":            {3, 8},
	"httpHealthChecks.delete":            {3, 8},
	"forwardingRules.insert":             {5, 15},
	"forwardingRules.delete":             {5, 15},
}

// fastDivisor turns realistic figures into the fast preset: an instance
// insert takes ~0.1 s instead of ~25 s, still asynchronous.
const fastDivisor = 200

// latencyModel draws operation durations. Guarded by Server.mu.
type latencyModel struct {
	preset string
	scale  float64
	rng    *rand.Rand
}

func validPreset(p string) error {
	switch p {
	case LatencyRealistic, LatencyFast, LatencyNone:
		return nil
	}
	return fmt.Errorf("unknown latency preset %q (want realistic, fast or none)", p)
}

// draw returns the duration of one event of the given kind.
func (m *latencyModel) draw(kind string) time.Duration {
	if m.preset == LatencyNone {
		return 0
	}
	sp := spanOf(kind)
	sec := sp.min + m.rng.Float64()*(sp.max-sp.min)
	if m.preset == LatencyFast {
		sec /= fastDivisor
	}
	sec *= m.scale
	return time.Duration(sec * float64(time.Second))
}

// factor is emulated seconds per real GCE second: what the data plane
// scales its own events and health-check timing by.
func (m *latencyModel) factor() float64 {
	switch m.preset {
	case LatencyNone:
		return 0
	case LatencyFast:
		return m.scale / fastDivisor
	}
	return m.scale
}

// GCESeconds is the range, in GCE seconds, of one kind of event under the
// realistic preset: an API method id ("compute.instances.insert"; unlisted
// ones take "default"), or a data-plane event, "boot" (a master's listeners
// start after RUNNING) or "propagation" (a new forwarding rule forwards).
// Benchmarks compute a flow's critical path from it.
func GCESeconds(kind string) (min, max float64) {
	if min, max, ok := dataplane.EventSeconds(kind); ok {
		return min, max
	}
	sp := spanOf(kind)
	return sp.min, sp.max
}

// spanOf is an API method's realistic range ("default" when unlisted).
func spanOf(kind string) span {
	if sp, ok := realisticLatency[strings.TrimPrefix(kind, "compute.")]; ok {
		return sp
	}
	return realisticLatency["default"]
}
