package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/hakube/hakube/internal/emulator"
	"github.com/hakube/hakube/internal/emulator/emulatortest"
	"github.com/hakube/hakube/internal/gce"
)

// kubeUpCalls is kube-up's count of gcloud invocations on each flow's
// critical path (reference/kubeup-ha.md §6, v1.9a, defaults, one MIG per
// zone), foreground plus background. Every gcloud invocation is at least one
// Compute request, and a mutating one also polls its operation, so these
// are lower bounds of kube-up's Compute requests.
var kubeUpCalls = map[string]int{
	"fresh-up":                   28,
	"node-pool-c":                9,
	"node-pool-d":                9,
	"first-replica-c":            27,
	"replica-d":                  19,
	"remove-replica-d":           15,
	"remove-replica-c-demote":    24,
	"remove-pool-d":              18,
	"remove-pool-c":              18,
	"teardown":                   34,
	"fresh-up-rerun-nothing-new": 28,
}

// BenchmarkHAWalkthrough runs kube-up's HA guide flow by flow under the
// emulator's realistic latency (scaled), reporting for each flow its wall
// time, the critical path of dependent steps (measured step durations along
// the longest dependency chain), and Compute API calls against kube-up's.
// Run with -benchtime 1x: each flow builds on the previous one.
func BenchmarkHAWalkthrough(b *testing.B) {
	const scale = 0.02
	emu := emulatortest.Start(b, emulator.Options{Projects: []string{scenarioProject}, DataPlane: true,
		Latency: emulator.LatencyRealistic, TimeScale: scale, WaitCap: 5 * time.Second})
	cloud, err := gce.New(context.Background(), gce.Options{Project: scenarioProject, Endpoint: emu.Endpoint, RequestsPerSecond: 1000})
	if err != nil {
		b.Fatal(err)
	}
	s := &scenario{t: b, emu: emu, cloud: cloud}
	flows := []struct {
		name, cmd string
		args      []string
	}{
		{"fresh-up", "up", []string{"--zone", zb, "--multizone"}},
		{"fresh-up-rerun-nothing-new", "up", []string{"--zone", zb, "--multizone"}},
		{"node-pool-c", "up", []string{"--zone", zc, "--use-existing-master"}},
		{"node-pool-d", "up", []string{"--zone", zd, "--use-existing-master"}},
		{"first-replica-c", "up", []string{"--zone", zc, "--replicate-master"}},
		{"replica-d", "up", []string{"--zone", zd, "--replicate-master"}},
		{"remove-replica-d", "down", []string{"--zone", zd, "--delete-nodes=false"}},
		{"remove-replica-c-demote", "down", []string{"--zone", zc, "--delete-nodes=false"}},
		{"remove-pool-d", "down", []string{"--zone", zd, "--use-existing-master"}},
		{"remove-pool-c", "down", []string{"--zone", zc, "--use-existing-master"}},
		{"teardown", "down", []string{"--zone", zb}},
	}
	for _, f := range flows {
		b.Run(f.name, func(b *testing.B) {
			s.t = b
			if b.N > 1 {
				b.Skip("run with -benchtime 1x: each flow builds on the previous one")
			}
			cfg := s.config(f.cmd, f.args...)
			env := s.env()
			env.PollInterval = 50 * time.Millisecond
			b.ResetTimer()
			rep, err := Run(context.Background(), env, cfg, RunOptions{Command: f.cmd})
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			wall := rep.Duration.Seconds() / scale
			crit := criticalPath(rep).Seconds() / scale
			b.ReportMetric(wall, "gce-s")
			b.ReportMetric(crit, "critical-path-s")
			b.ReportMetric(float64(rep.APICalls), "api-calls")
			b.ReportMetric(float64(kubeUpCalls[f.name]), "kube-up-gcloud-calls")
			for _, mv := range rep.Outages {
				b.ReportMetric(mv.Outage.Seconds()/scale, "outage-s")
			}
		})
	}
}

// criticalPath is the longest chain of dependent steps, by their measured
// durations: the least a perfectly parallel run could take.
func criticalPath(rep *Report) time.Duration {
	if rep.Plan == nil || rep.Result == nil {
		return 0
	}
	took := map[string]time.Duration{}
	for _, r := range rep.Result.Steps {
		took[r.ID] = r.Duration
	}
	memo := map[string]time.Duration{}
	byID := map[string]*Step{}
	for _, s := range rep.Plan.Steps {
		byID[s.ID] = s
	}
	var longest func(id string) time.Duration
	longest = func(id string) time.Duration {
		if d, ok := memo[id]; ok {
			return d
		}
		var before time.Duration
		for _, d := range byID[id].DependsOn {
			if l := longest(d); l > before {
				before = l
			}
		}
		memo[id] = before + took[id]
		return memo[id]
	}
	var max time.Duration
	for _, s := range rep.Plan.Steps {
		if l := longest(s.ID); l > max {
			max = l
		}
	}
	return max
}

func TestCriticalPath(t *testing.T) {
	rep := &Report{
		Plan: &Plan{Steps: []*Step{{ID: "a"}, {ID: "b", DependsOn: []string{"a"}}, {ID: "c"}, {ID: "d", DependsOn: []string{"b", "c"}}}},
		Result: &Result{Steps: []StepResult{
			{ID: "a", Duration: time.Second}, {ID: "b", Duration: 2 * time.Second},
			{ID: "c", Duration: 5 * time.Second}, {ID: "d", Duration: time.Second},
		}},
	}
	if got, want := criticalPath(rep), 6*time.Second; got != want {
		t.Errorf("critical path = %s, want %s (c then d)", got, want)
	}
}
