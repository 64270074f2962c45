package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hakube/hakube/internal/emulator"
	"github.com/hakube/hakube/internal/gce"
	"github.com/hakube/hakube/internal/lb"
	"github.com/hakube/hakube/internal/vmcontract"
)

// The HA flows of DESIGN §4, each checked against the full inventory and the
// static IP's owner, and the IP move under failure.

const (
	zb, zc, zd = "europe-west1-b", "europe-west1-c", "europe-west1-d"
	euw1       = "europe-west1"
)

// haCluster builds the starting point most HA tests share: one master and
// a pool of one node in zone b.
func haCluster(t testing.TB, extra ...string) *scenario {
	s := newScenario(t)
	s.mustRun("up", append([]string{"--zone", zb, "--num-nodes", "1", "--multizone"}, extra...)...)
	return s
}

func (s *scenario) replicaIn(zone string) string {
	s.t.Helper()
	ins, err := s.cloud.AggregatedInstances(context.Background(), `labels.hakube-role = "master"`)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, in := range ins {
		if strings.HasSuffix(in.Zone, "/"+zone) {
			return in.Name
		}
	}
	s.t.Fatalf("no master in %s", zone)
	return ""
}

func (s *scenario) wantOwner(kind string) {
	s.t.Helper()
	o := s.ipOwner("kubernetes", euw1)
	if o.Kind != kind {
		s.t.Errorf("static IP owner = %+v, want %s", o, kind)
	}
	if err := s.serving(s.config("status")); err != nil {
		s.t.Errorf("after the flow: %v", err)
	}
}

func TestScenarioNodePoolsAndReplicasGrowAndShrink(t *testing.T) {
	t.Parallel()
	s := haCluster(t)
	one := map[string]int{zb: 1}
	// Each flow's budget is what it takes, plus one: a tunnel the IP's
	// move cuts is dialled again, a Node not Ready at the first look makes
	// the Nodes wait list the VMs once more.
	s.withinBudget("node pool", s.mustRun("up", "--zone", zc, "--use-existing-master", "--num-nodes", "1"), 19)
	one[zc] = 1
	s.expect(shape{prefix: "kubernetes", masters: []string{zb}, pools: one})

	// The first replica builds the load balancer and moves the IP.
	rep := s.mustRun("up", "--zone", zc, "--replicate-master")
	s.withinBudget("first replica", rep, 34)
	s.expect(shape{prefix: "kubernetes", masters: []string{zb, zc}, pools: one, lb: true})
	s.wantOwner(lb.OwnerLB)
	if len(rep.Outages) != 1 || rep.Outages[0].Outage <= 0 || rep.Outages[0].Reverted {
		t.Errorf("outages = %+v, want one measured move", rep.Outages)
	}
	// The IP's detach starts with the pool's insert; only the rule awaits it.
	for _, st := range rep.Plan.Steps {
		if st.Action == ActMove {
			pool := "create target-pool kubernetes-master (europe-west1)"
			if slices.Contains(st.DependsOn, pool) || !slices.Equal(st.Awaits, []string{pool}) || !rep.Plan.dependsOn(st.ID, "create http-health-check kubernetes-master") {
				t.Errorf("move: depends on %q, awaits %q; want it after the health check, awaiting the pool", st.DependsOn, st.Awaits)
			}
		}
	}
	replica := s.replicaIn(zc)
	in, err := s.cloud.GetInstance(context.Background(), gce.ZonalKey(zc, replica))
	if err != nil {
		t.Fatal(err)
	}
	env, _ := vmcontract.ParseKubeEnv(metadataValue(in, vmcontract.KeyKubeEnv))
	if got, want := env.Get("INITIAL_ETCD_CLUSTER"), vmcontract.JoinList("kubernetes-master", replica); got != want {
		t.Errorf("replica INITIAL_ETCD_CLUSTER = %q, want %q", got, want)
	}
	if env.Get("INITIAL_ETCD_CLUSTER_STATE") != "existing" || env.Get("ZONE") != zc || env.Get("MULTIZONE") != "true" {
		t.Errorf("replica kube-env: %q", env.String())
	}
	if metadataValue(in, vmcontract.KeyMasterCerts) == "" {
		t.Error("replica did not get the serving certificates")
	}

	// Re-running the same request changes nothing: one replica per zone.
	m := s.mark()
	if rep := s.mustRun("up", "--zone", zc, "--replicate-master"); !rep.NothingToDo {
		t.Errorf("re-run planned changes: %v", rep.Plan.Steps)
	} else {
		s.withinBudget("replica re-run", rep, 8)
	}
	if muts := s.mutations(m); len(muts) > 0 {
		t.Errorf("re-run made mutations: %v", muts)
	}

	// A second replica joins without moving anything.
	rep = s.mustRun("up", "--zone", zd, "--replicate-master")
	s.withinBudget("second replica", rep, 21)
	if len(rep.Outages) != 0 {
		t.Errorf("second replica moved the IP: %+v", rep.Outages)
	}
	s.expect(shape{prefix: "kubernetes", masters: []string{zb, zc, zd}, pools: one, lb: true})
	if st := s.settled(s.config("status")); st.Mode != "load-balanced" {
		t.Errorf("status mode %q, want load-balanced", st.Mode)
	}

	// Remove replicas: the last removal but one gives the IP back.
	s.withinBudget("remove replica", s.mustRun("down", "--zone", zd, "--delete-nodes=false"), 24)
	s.expect(shape{prefix: "kubernetes", masters: []string{zb, zc}, pools: one, lb: true})
	s.wantOwner(lb.OwnerLB)
	rep = s.mustRun("down", "--zone", zc, "--delete-nodes=false")
	s.withinBudget("remove second-to-last replica", rep, 32)
	s.expect(shape{prefix: "kubernetes", masters: []string{zb}, pools: one})
	s.wantOwner(lb.OwnerMaster)
	if len(rep.Outages) != 1 {
		t.Errorf("demotion outages = %+v, want one", rep.Outages)
	}

	// Remove a pool: the template stays while another pool uses it.
	s.withinBudget("remove node pool", s.mustRun("down", "--zone", zc, "--use-existing-master"), 18)
	s.expect(shape{prefix: "kubernetes", masters: []string{zb}, pools: map[string]int{zb: 1}})
	s.withinBudget("teardown", s.mustRun("down", "--zone", zb), 36)
	s.expect()
}

func TestScenarioZoneTeardownSemantics(t *testing.T) {
	t.Parallel()
	s := haCluster(t)
	s.mustRun("up", "--zone", zc, "--use-existing-master", "--num-nodes", "1")
	s.mustRun("up", "--zone", zc, "--replicate-master")
	// The last master's zone cannot go while a pool remains elsewhere.
	s.mustRun("down", "--zone", zc) // zone c: its pool and its replica
	s.expect(shape{prefix: "kubernetes", masters: []string{zb}, pools: map[string]int{zb: 1}})
	s.wantOwner(lb.OwnerMaster)
	s.mustRun("up", "--zone", zd, "--use-existing-master", "--num-nodes", "1")
	_, err := s.run(context.Background(), "down", "--zone", zb)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), zd) {
		t.Fatalf("down of the last master's zone with a pool in %s: %v, want a refusal naming it", zd, err)
	}
	// down without a zone takes everything, from any state.
	s.mustRun("down")
	s.expect()
}

func TestScenarioHaltedReplica(t *testing.T) {
	t.Parallel()
	s := haCluster(t)
	s.mustRun("up", "--zone", zc, "--replicate-master")
	s.mustRun("up", "--zone", zd, "--replicate-master")
	ctx := context.Background()
	halted := s.replicaIn(zd)
	if err := s.cloud.StopInstance(ctx, gce.ZonalKey(zd, halted)); err != nil {
		t.Fatal(err)
	}
	// The static IP keeps serving once the health check marks it down.
	cfg := s.config("status")
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := GetStatus(ctx, s.env(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		var ms *MasterStatus
		for _, z := range st.Zones {
			for i := range z.Masters {
				if z.Masters[i].Name == halted {
					ms = &z.Masters[i]
				}
			}
		}
		if ms == nil || ms.Ready || ms.Status != "TERMINATED" {
			t.Fatalf("status of the halted replica: %+v", ms)
		}
		if st.StaticIP.Serving {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("static IP did not serve with one replica halted")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Removing a healthy replica now would leave 1 healthy of 2 voters: the
	// quorum guard refuses it before any change, naming the members.
	m := s.mark()
	_, err := s.run(ctx, "down", "--zone", zc, "--delete-nodes=false")
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "no majority") || !strings.Contains(err.Error(), halted) {
		t.Errorf("removing a healthy replica beside a halted one: %v, want the quorum guard's refusal", err)
	}
	if muts := s.mutations(m); len(muts) > 0 {
		t.Errorf("the refused removal made mutations: %v", muts)
	}
	// Removing the halted replica works: its member, VM and Node go.
	s.mustRun("down", "--replica", halted, "--delete-nodes=false")
	s.expect(shape{prefix: "kubernetes", masters: []string{zb, zc}, pools: map[string]int{zb: 1}, lb: true})
	s.wantOwner(lb.OwnerLB)
	s.wantMembers("kubernetes-master", s.replicaIn(zc))

	// A member without a VM (a crash between an add and its VM, say) is a
	// phantom status shows, and a re-run of the removal repairs.
	cfg = s.config("status")
	_, obs, err := observeAdopted(ctx, s.cloud, cfg, "status")
	if err != nil {
		t.Fatal(err)
	}
	env := s.env()
	env.defaults()
	r := &run{env: env, cfg: cfg, obs: obs, st: newRunState(obs)}
	if err := r.withEtcd(ctx, nil, func(ctx context.Context, es *etcdSession) error {
		_, err := es.client.AddLearner(ctx, vmcontract.EtcdPeerURL("127.1.2.3"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if st, err := GetStatus(ctx, s.env(), cfg); err != nil || st.Etcd == nil || len(st.Etcd.Phantoms) != 1 {
		t.Errorf("status with a phantom member: %+v (%v)", st.Etcd, err)
	}
	s.mustRun("down", "--zone", zd, "--delete-nodes=false")
	s.wantMembers("kubernetes-master", s.replicaIn(zc))
}

// wantMembers checks etcd's members are exactly the named masters, each a
// healthy voter, with no phantom, and that each master's Node exists.
func (s *scenario) wantMembers(masters ...string) {
	s.t.Helper()
	st, err := GetStatus(context.Background(), s.env(), s.config("status"))
	if err != nil {
		s.t.Fatal(err)
	}
	if st.Etcd == nil || st.Etcd.Error != "" {
		s.t.Fatalf("etcd's membership not read: %+v", st.Etcd)
	}
	var got []string
	for _, m := range st.Etcd.Members {
		if m.Learner || !m.Healthy {
			s.t.Errorf("etcd member %s: learner %v, healthy %v", m.Name, m.Learner, m.Healthy)
		}
		got = append(got, m.Name)
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(masters))
	if !slices.Equal(got, want) || len(st.Etcd.Phantoms) > 0 || len(st.Etcd.Missing) > 0 {
		s.t.Errorf("etcd members %v (phantoms %v, missing %v), want %v", got, st.Etcd.Phantoms, st.Etcd.Missing, want)
	}
	var nodes []string
	for _, n := range st.Nodes {
		if slices.Contains(n.Roles, "control-plane") {
			nodes = append(nodes, n.Name)
		}
	}
	if !slices.Equal(nodes, want) {
		s.t.Errorf("master Nodes %v, want %v", nodes, want)
	}
}

func TestScenarioNeverRemovesTheLastRunningMasterByAccident(t *testing.T) {
	t.Parallel()
	s := haCluster(t)
	s.mustRun("up", "--zone", zc, "--replicate-master")
	if err := s.cloud.StopInstance(context.Background(), gce.ZonalKey(zb, "kubernetes-master")); err != nil {
		t.Fatal(err)
	}
	_, err := s.run(context.Background(), "down", "--zone", zc, "--delete-nodes=false")
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "only running master") {
		t.Fatalf("removing the only running replica: %v, want a refusal", err)
	}
}

func TestScenarioLBFirst(t *testing.T) {
	t.Parallel()
	s := haCluster(t, "--lb-first")
	s.expect(shape{prefix: "kubernetes", masters: []string{zb}, pools: map[string]int{zb: 1}, lb: true})
	s.wantOwner(lb.OwnerLB)
	rep := s.mustRun("up", "--zone", zc, "--replicate-master")
	for _, st := range rep.Plan.Steps {
		if st.Outage {
			t.Errorf("an LB-first cluster planned an outage: %s", st.ID)
		}
	}
	if len(rep.Outages) != 0 {
		t.Errorf("outages = %+v, want none", rep.Outages)
	}
	s.mustRun("down", "--zone", zc, "--delete-nodes=false")
	s.expect(shape{prefix: "kubernetes", masters: []string{zb}, pools: map[string]int{zb: 1}, lb: true})
	s.wantOwner(lb.OwnerLB)
	st, err := GetStatus(context.Background(), s.env(), s.config("status"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode != "lb-first" {
		t.Errorf("mode = %q, want lb-first", st.Mode)
	}
}

func TestScenarioMaxDowntimeReverts(t *testing.T) {
	t.Parallel()
	s := haCluster(t)
	// Propagation takes 200–400 ms at this time scale: 1 ms is never enough.
	_, err := s.run(context.Background(), "up", "--zone", zc, "--replicate-master", "--max-downtime", "1ms")
	if !errors.Is(err, lb.ErrReverted) {
		t.Fatalf("err = %v, want the move reverted", err)
	}
	s.wantOwner(lb.OwnerMaster)
	// Without the limit the re-run completes the move.
	s.mustRun("up", "--zone", zc, "--replicate-master")
	s.expect(shape{prefix: "kubernetes", masters: []string{zb, zc}, pools: map[string]int{zb: 1}, lb: true})
	s.wantOwner(lb.OwnerLB)
}

// TestScenarioIPMoveFailures fails each call of the IP move, synchronously
// and inside its operation, and checks a re-run always converges with the
// IP serving: the move never leaves the IP unowned for good.
func TestScenarioIPMoveFailures(t *testing.T) {
	t.Parallel()
	type fault struct{ method, name, delivery string }
	promote := []fault{
		{"instances.deleteAccessConfig", "kubernetes-master", "sync"},
		{"instances.deleteAccessConfig", "kubernetes-master", "operation"},
		{"forwardingRules.insert", "", "sync"},
		{"forwardingRules.insert", "", "operation"},
		{"forwardingRules.setLabels", "", "sync"},
		{"instances.addAccessConfig", "kubernetes-master", "sync"},
		{"instances.addAccessConfig", "kubernetes-master", "operation"},
		{"targetPools.insert", "", "operation"},
		{"httpHealthChecks.insert", "", "sync"},
	}
	demote := []fault{
		{"forwardingRules.delete", "", "sync"},
		{"forwardingRules.delete", "", "operation"},
		{"instances.deleteAccessConfig", "kubernetes-master", "operation"},
		{"instances.addAccessConfig", "kubernetes-master", "sync"},
		{"instances.addAccessConfig", "kubernetes-master", "operation"},
		{"targetPools.delete", "", "sync"},
	}
	// Three clusters share the cases, each going round a cycle per case:
	// the first replica added with a promote fault, then removed with a
	// demote fault (or without one), back to one master. A real control
	// plane per master is what the package's time goes on.
	const clusters = 3
	for c := range clusters {
		t.Run(fmt.Sprintf("cluster-%d", c), func(t *testing.T) {
			t.Parallel()
			s := haCluster(t)
			defer func() { s.t = t }()
			for i := c; i < len(promote); i += clusters {
				f := promote[i]
				t.Run(fmt.Sprintf("promote/%s/%s", f.method, f.delivery), func(t *testing.T) {
					s.t = t
					s.inject(f.method, f.name, f.delivery)
					if _, err := s.run(context.Background(), "up", "--zone", zc, "--replicate-master"); err == nil {
						t.Fatal("the run succeeded despite the fault")
					}
					s.clearFaults()
					s.mustRun("up", "--zone", zc, "--replicate-master")
					s.expect(shape{prefix: "kubernetes", masters: []string{zb, zc}, pools: map[string]int{zb: 1}, lb: true})
					s.wantOwner(lb.OwnerLB)
				})
				name := "demote/none"
				var d *fault
				if i < len(demote) {
					d = &demote[i]
					name = fmt.Sprintf("demote/%s/%s", d.method, d.delivery)
				}
				t.Run(name, func(t *testing.T) {
					s.t = t
					if d != nil {
						s.inject(d.method, d.name, d.delivery)
						if _, err := s.run(context.Background(), "down", "--zone", zc, "--delete-nodes=false"); err == nil {
							t.Fatal("the run succeeded despite the fault")
						}
						s.clearFaults()
					}
					s.mustRun("down", "--zone", zc, "--delete-nodes=false")
					s.expect(shape{prefix: "kubernetes", masters: []string{zb}, pools: map[string]int{zb: 1}})
					s.wantOwner(lb.OwnerMaster)
				})
				if t.Failed() {
					return // the next cycle would start from a broken cluster
				}
			}
		})
	}
}

func (s *scenario) inject(method, name, delivery string) {
	s.t.Helper()
	// Enough failures to exhaust the client's retries of retryable errors.
	if _, err := s.emu.Control.AddFault(context.Background(), emulator.Fault{
		Method: method, Name: name, Delivery: delivery, Code: 400, Reason: "invalid", Count: 1,
	}); err != nil {
		s.t.Fatal(err)
	}
}

func (s *scenario) clearFaults() {
	s.t.Helper()
	if err := s.emu.Control.ClearFaults(context.Background()); err != nil {
		s.t.Fatal(err)
	}
}

// TestScenarioIPMoveInterrupted stops the run (Ctrl-C) at several points of
// the IP move, from before its first call to the wait for propagation; a
// re-run always completes the move with the IP serving.
func TestScenarioIPMoveInterrupted(t *testing.T) {
	t.Parallel()
	for _, after := range []time.Duration{0, 15 * time.Millisecond, 60 * time.Millisecond, 150 * time.Millisecond} {
		t.Run(after.String(), func(t *testing.T) {
			t.Parallel()
			s := haCluster(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			rep := &cancelAfter{match: "move static IP", after: after, cancel: cancel}
			_, err := Run(ctx, s.env(), s.config("up", "--zone", zc, "--replicate-master"), RunOptions{Command: "up", Reporter: rep})
			if err != nil && !errors.Is(err, context.Canceled) { // a late cancel may find the move done
				t.Fatalf("err = %v, want the run cancelled", err)
			}
			s.mustRun("up", "--zone", zc, "--replicate-master")
			s.expect(shape{prefix: "kubernetes", masters: []string{zb, zc}, pools: map[string]int{zb: 1}, lb: true})
			s.wantOwner(lb.OwnerLB)

			// And back: interrupted while the IP returns to the last master.
			ctx, cancel = context.WithCancel(context.Background())
			defer cancel()
			rep = &cancelAfter{match: "move static IP", after: after, cancel: cancel}
			_, err = Run(ctx, s.env(), s.config("down", "--zone", zc, "--delete-nodes=false"), RunOptions{Command: "down", Reporter: rep})
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Fatalf("down: err = %v, want the run cancelled", err)
			}
			s.mustRun("down", "--zone", zc, "--delete-nodes=false")
			s.expect(shape{prefix: "kubernetes", masters: []string{zb}, pools: map[string]int{zb: 1}})
			s.wantOwner(lb.OwnerMaster)
		})
	}
}

// cancelAfter cancels the run a while after a step whose id starts with
// match has started.
type cancelAfter struct {
	match  string
	after  time.Duration
	cancel context.CancelFunc
}

func (c *cancelAfter) StepStarted(s *Step) {
	if strings.HasPrefix(s.ID, c.match) {
		time.AfterFunc(c.after, c.cancel)
	}
}
func (c *cancelAfter) StepDone(*Step, error, time.Duration) {}

// TestScenarioProgressUnderTheRunningStep checks that every progress line
// of the replica flows is reported under the id of a step of the plan (the
// CLI's display looks lines up by step id) and that the IP move's wait
// reports at all. The emulator runs ten times slower here so that the
// forwarding rule's propagation (2–4 s) outlasts the wait's first report
// (after 1 s).
func TestScenarioProgressUnderTheRunningStep(t *testing.T) {
	s := haCluster(t)
	ctx := context.Background()
	if err := s.emu.Control.SetLatency(ctx, emulator.Latency{Preset: emulator.LatencyRealistic, TimeScale: 0.05}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		command string
		args    []string
	}{
		{"up", []string{"--zone", zc, "--replicate-master"}},
		{"down", []string{"--zone", zc, "--delete-nodes=false"}},
	} {
		var mu sync.Mutex
		lines := map[string]int{}
		env := s.env()
		env.Progress = func(step, msg string) {
			mu.Lock()
			lines[step]++
			mu.Unlock()
		}
		rep, err := Run(ctx, env, s.config(tt.command, tt.args...), RunOptions{Command: tt.command})
		if err != nil {
			t.Fatalf("hakube %s %v: %v", tt.command, tt.args, err)
		}
		steps, move := map[string]bool{}, ""
		for _, st := range rep.Plan.Steps {
			steps[st.ID] = true
			if st.Action == ActMove {
				move = st.ID
			}
		}
		mu.Lock()
		for step, n := range lines {
			if !steps[step] {
				t.Errorf("%s: %d progress lines under %q, which is no step of the plan", tt.command, n, step)
			}
		}
		if tt.command == "up" && lines[move] == 0 {
			t.Errorf("up: no progress line under the move step %q (lines per step: %v)", move, lines)
		}
		mu.Unlock()
	}
}
