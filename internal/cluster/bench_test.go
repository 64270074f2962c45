package cluster

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/hakube/hakube/internal/cluster/config"
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
// emulator's realistic latency, reporting for each flow its wall
// time, the critical path of dependent steps (measured step durations along
// the longest dependency chain), and Compute API calls against kube-up's.
// Run with -benchtime 1x: each flow builds on the previous one.
func BenchmarkHAWalkthrough(b *testing.B) {
	// GCE's own latency, not sped up: the masters run the real control
	// plane, whose boot no time scale shortens, so a scaled run would
	// inflate it when its figures are converted back to GCE seconds.
	const scale = 1.0
	s := newScenarioAt(b, scale, 2*time.Minute) // operations.wait as GCE long-polls
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
			env.APIDeadline, env.StableTimeout = 10*time.Minute, 10*time.Minute
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

// scaleCluster makes the node side of a cluster of n nodes in one zone:
// the node template and the zone's groups of at most 1,000 (no master).
func scaleCluster(tb testing.TB, n int) (*gce.Cloud, *config.Config) {
	tb.Helper()
	ctx := context.Background()
	emu := emulatortest.Start(tb, emulator.Options{Projects: []string{scenarioProject}, Latency: emulator.LatencyNone})
	cloud, err := gce.New(ctx, gce.Options{Project: scenarioProject, Endpoint: emu.Endpoint, RequestsPerSecond: 5000})
	if err != nil {
		tb.Fatal(err)
	}
	s := &scenario{t: tb, emu: emu, cloud: cloud}
	cfg := s.config("up", "--zone", zb, "--num-nodes", strconv.Itoa(n), "--cluster-ip-range", "10.64.0.0/11")
	secrets, err := newSecrets(cfg.ClusterName(), time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	tpl, err := nodeTemplate(cfg, "10.0.0.2", secrets.pki.CA.CertPEM, secrets.token)
	if err != nil {
		tb.Fatal(err)
	}
	if err := cloud.InsertInstanceTemplate(ctx, gce.GlobalKey(cfg.NodeTemplateName()), tpl); err != nil {
		tb.Fatal(err)
	}
	// The nodes' alias ranges come from the pods' range.
	r := &run{env: &Env{Cloud: cloud}, cfg: cfg, obs: &Observed{}, st: &runState{}}
	if err := r.addPodRange(ctx); err != nil {
		tb.Fatal(err)
	}
	link := "projects/" + scenarioProject + "/global/instanceTemplates/" + cfg.NodeTemplateName()
	for _, g := range cfg.NodeGroups(n) {
		if err := cloud.InsertMIG(ctx, gce.ZonalKey(zb, g.Name), nodeGroup(cfg, g.Name, g.Size, link)); err != nil {
			tb.Fatal(err)
		}
	}
	// The groups make their VMs after their inserts are DONE; they run a
	// while later.
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		all, err := cloud.AggregatedInstances(ctx, gce.ClusterFilter(cfg.ClusterName())+` (status = "RUNNING")`)
		if err != nil {
			tb.Fatal(err)
		}
		if len(all) == n {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d of the groups' %d VMs run after 2 minutes", len(all), n)
		}
	}
	return cloud, cfg
}

// observeCalls observes the cluster and returns the Compute requests it
// took and the nodes its pools hold.
func observeCalls(tb testing.TB, cloud *gce.Cloud, cfg *config.Config) (calls, nodes int) {
	tb.Helper()
	before := cloud.Stats().Snapshot()
	obs, err := Observe(context.Background(), cloud, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	for _, m := range gce.Diff(before, cloud.Stats().Snapshot()) {
		calls += m.Count
	}
	for _, groups := range obs.Pools {
		for _, g := range groups {
			nodes += int(g.TargetSize)
		}
	}
	return calls, nodes
}

// TestObserveCallsDoNotGrowWithNodes: observation asks for the masters
// only, so a pool of 1,200 nodes (two groups, three pages of VMs) costs it
// the same requests as one of 2.
func TestObserveCallsDoNotGrowWithNodes(t *testing.T) {
	t.Parallel()
	small, cfg := scaleCluster(t, 2)
	few, n := observeCalls(t, small, cfg)
	if n != 2 {
		t.Fatalf("observed %d nodes, want 2", n)
	}
	big, cfg := scaleCluster(t, 1200)
	many, n := observeCalls(t, big, cfg)
	if n != 1200 {
		t.Fatalf("observed %d nodes, want 1,200", n)
	}
	if many != few {
		t.Errorf("observing 1,200 nodes took %d requests, 2 nodes %d: observation pages through the node VMs", many, few)
	}
}

// BenchmarkObserveAtScale reads a cluster of 500, 2,000 and 5,000 nodes
// the way every flow and status begin, and reports the observation's
// Compute requests, against one label-filtered list of all the cluster's
// VMs (what observation did before it asked for the masters only).
func BenchmarkObserveAtScale(b *testing.B) {
	for _, n := range []int{500, 2000, 5000} {
		b.Run(fmt.Sprintf("nodes-%d", n), func(b *testing.B) {
			cloud, cfg := scaleCluster(b, n)
			b.ResetTimer()
			calls := 0
			for range b.N {
				c, got := observeCalls(b, cloud, cfg)
				if got != n {
					b.Fatalf("observed pools of %d nodes, want %d", got, n)
				}
				calls += c
			}
			b.StopTimer()
			b.ReportMetric(float64(calls)/float64(b.N), "api-calls/op")
			start := time.Now()
			if _, err := cloud.AggregatedInstances(context.Background(), gce.ClusterFilter(cfg.ClusterName())); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(time.Since(start).Seconds(), "list-all-vms-s")
		})
	}
}
