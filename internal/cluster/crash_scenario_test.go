package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hakube/hakube/internal/gce"
	"github.com/hakube/hakube/internal/lb"
)

// Crash tests stop a replica's add and its removal at every point in turn
// and re-run after each stop, until a run completes. Each re-run is both
// the resumption of the previous crash and the victim of the next one, so
// one chain of runs crashes once after every step (or every Compute
// mutation) of the flow. After every crash etcd must keep a healthy quorum
// of voters; after the chain the inventory, the static IP's owner, etcd's
// members and the masters' Nodes must be exactly those of the finished
// flow, with no phantom member.

// crasher stops the run it is armed for once, at the first point its
// trigger names after the run starts.
type crasher struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	at     string          // what the run was stopped after, for the log
	fired  map[string]bool // points runs were stopped at: each stops one run
}

func (c *crasher) arm(cancel context.CancelFunc) {
	c.mu.Lock()
	c.cancel, c.at = cancel, ""
	c.mu.Unlock()
}

func (c *crasher) fire(at string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancel != nil && !c.fired[at] {
		if c.fired == nil {
			c.fired = map[string]bool{}
		}
		c.fired[at] = true
		c.cancel()
		c.cancel, c.at = nil, at
	}
}

func (c *crasher) firedAt() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at
}

// afterMutation is a transport that stops the run right after GCE has
// accepted a mutation (its operation is pending): the worst moment, since
// the change happens but the run never sees it finish. The lock's own
// writes and operation polls do not count.
type afterMutation struct {
	*crasher
	base http.RoundTripper
}

func (m afterMutation) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := m.base.RoundTrip(req)
	if err == nil && req.Method != http.MethodGet && !strings.Contains(req.URL.Path, "/operations/") &&
		!strings.HasSuffix(req.URL.Path, "/addresses/kubernetes-master-ip/setLabels") && !strings.HasSuffix(req.URL.Path, "/getHealth") &&
		resp.StatusCode < 300 {
		m.fire(req.Method + " " + req.URL.Path[strings.Index(req.URL.Path, "/projects/"):])
	}
	return resp, err
}

// afterStep is a reporter that stops the run when its first step other
// than the lock is done.
type afterStep struct{ *crasher }

func (afterStep) StepStarted(*Step) {}
func (a afterStep) StepDone(s *Step, err error, _ time.Duration) {
	if err == nil && !strings.HasPrefix(s.ID, "lock ") {
		a.fire(s.ID)
	}
}

// crashChain runs the flow, crashing each run once, until one completes;
// it returns the points the runs were stopped at and the first run's plan.
// Steps run one at a time, so that each point is reached by a run that
// stops there: with parallel steps, one finishing beside the crashed one
// would never be crashed after.
func (s *scenario) crashChain(env *Env, c *crasher, rep Reporter, command string, args ...string) (points []string, first *Plan) {
	s.t.Helper()
	env.Parallelism = 1
	for range 40 {
		ctx, cancel := context.WithCancel(context.Background())
		c.arm(cancel)
		r, err := Run(ctx, env, s.config(command, args...), RunOptions{Command: command, Reporter: rep})
		at := c.firedAt()
		cancel()
		if first == nil {
			first = r.Plan
		}
		switch {
		case err == nil:
			return points, first
		case at == "" || !errors.Is(err, context.Canceled):
			s.t.Fatalf("hakube %s %v, after %d crashes at %v: %v", command, args, len(points), points, err)
		}
		points = append(points, at)
		s.wantQuorum(at)
	}
	s.t.Fatalf("hakube %s %v still crashing after %d runs: %v", command, args, len(points), points)
	return nil, nil
}

// wantQuorum checks that etcd's voters keep a healthy majority. The crash
// may have left an operation running that moves the IP status reaches
// etcd through, so it looks again for a while before it gives up.
func (s *scenario) wantQuorum(after string) {
	s.t.Helper()
	var last string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		st, err := GetStatus(context.Background(), s.env(), s.config("status"))
		switch {
		case err != nil:
			last = err.Error()
		case st.Etcd == nil || st.Etcd.Error != "":
			last = fmt.Sprintf("etcd's membership not readable: %+v", st.Etcd)
		default:
			voters, healthy := 0, 0
			for _, m := range st.Etcd.Members {
				if !m.Learner {
					voters++
					if m.Healthy {
						healthy++
					}
				}
			}
			if healthy > voters/2 {
				return
			}
			last = fmt.Sprintf("%d healthy of %d voters (%+v)", healthy, voters, st.Etcd.Members)
		}
	}
	s.t.Errorf("after a crash at %s, no healthy quorum in 30 s: %s", after, last)
}

func TestScenarioReplicaCrashAtEveryPoint(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		// env makes the runs' environment, with their crash trigger.
		env func(s *scenario, c *crasher) (*Env, Reporter)
		// steps: every step of the flow's first plan must be crashed after.
		steps bool
	}{
		{"after each step", func(s *scenario, c *crasher) (*Env, Reporter) {
			return s.env(), afterStep{c}
		}, true},
		{"after each Compute mutation", func(s *scenario, c *crasher) (*Env, Reporter) {
			cloud, err := gce.New(context.Background(), gce.Options{
				Project: scenarioProject, Endpoint: s.emu.Endpoint,
				HTTPClient:   &http.Client{Transport: afterMutation{c, http.DefaultTransport}},
				RetryInitial: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond, RequestsPerSecond: 2000,
			})
			if err != nil {
				s.t.Fatal(err)
			}
			env := s.env()
			env.Cloud = cloud
			return env, nil
		}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := haCluster(t)
			c := &crasher{}
			env, rep := tt.env(s, c)

			points, plan := s.crashChain(env, c, rep, "up", "--zone", zc, "--replicate-master")
			t.Logf("add: %d crashes, at %q", len(points), points)
			s.wantCrashedAt("add", points, plan, tt.steps, 6)
			s.expect(shape{prefix: "kubernetes", masters: []string{zb, zc}, pools: map[string]int{zb: 1}, lb: true})
			s.wantOwner(lb.OwnerLB)
			s.wantMembers("kubernetes-master", s.replicaIn(zc))

			points, plan = s.crashChain(env, c, rep, "down", "--zone", zc, "--delete-nodes=false")
			s.wantMoveBesideVMDelete(plan)
			t.Logf("remove: %d crashes, at %q", len(points), points)
			s.wantCrashedAt("removal", points, plan, tt.steps, 6)
			s.expect(shape{prefix: "kubernetes", masters: []string{zb}, pools: map[string]int{zb: 1}})
			s.wantOwner(lb.OwnerMaster)
			s.wantMembers("kubernetes-master")
		})
	}
}

// wantCrashedAt checks the chain stopped at least min times and, for the
// step trigger, after every change of the flow's first plan but the lock
// (a change is planned again until it is done; a wait or a check may not
// be, once what it waits for is so).
func (s *scenario) wantCrashedAt(flow string, points []string, plan *Plan, steps bool, min int) {
	s.t.Helper()
	if len(points) < min {
		s.t.Errorf("the %s crashed only %d times (%q): the trigger missed its points", flow, len(points), points)
	}
	if !steps || plan == nil {
		return
	}
	for _, st := range plan.Steps {
		if st.Mutating && !strings.HasPrefix(st.ID, "lock ") && !slices.Contains(points, st.ID) {
			s.t.Errorf("the %s never crashed after step %q (crashed at %q)", flow, st.ID, points)
		}
	}
}

// wantMoveBesideVMDelete checks that the static IP moves back to the last
// master once the replica is out of the pool and out of etcd, without
// waiting for its VM's delete.
func (s *scenario) wantMoveBesideVMDelete(plan *Plan) {
	s.t.Helper()
	var move, vm, member string
	for _, st := range plan.Steps {
		switch {
		case st.Action == ActMove:
			move = st.ID
		case strings.HasPrefix(st.ID, "delete instance "):
			vm = st.ID
		case strings.HasPrefix(st.ID, "delete etcd member "):
			member = st.ID
		}
	}
	if move == "" || vm == "" || member == "" {
		s.t.Fatalf("the removal's plan lacks the move, the VM's delete or the member's: %q %q %q", move, vm, member)
	}
	if plan.dependsOn(move, vm) || !plan.dependsOn(move, member) {
		s.t.Errorf("the IP's move waits for the VM's delete (%v) or not for the member's removal (%v)", plan.dependsOn(move, vm), plan.dependsOn(move, member))
	}
}
