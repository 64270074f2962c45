package cluster

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"
	compute "google.golang.org/api/compute/v1"

	"github.com/hakube/hakube/internal/cluster/config"
	"github.com/hakube/hakube/internal/emulator"
	"github.com/hakube/hakube/internal/emulator/emulatortest"
	"github.com/hakube/hakube/internal/emulator/emulatortest/kubevm"
	"github.com/hakube/hakube/internal/gce"
	"github.com/hakube/hakube/internal/lb"

	"github.com/hakube/hakube/internal/golden"
	"github.com/hakube/hakube/internal/vmcontract"
)

// Scenario tests run real flows against the in-process emulator, data
// plane on, at the realistic latency model sped up 200 times, and check the
// whole inventory after each flow: what should exist exists, nothing else.

const (
	scenarioProject = "test-project"
	scenarioPort    = "16443"
	// scenarioSSHPort is the emulated VMs' SSH port: no root needed.
	scenarioSSHPort = 2222
)

type scenario struct {
	t        testing.TB
	emu      *emulatortest.Emulator
	cloud    *gce.Cloud
	baseline map[string]int
	// signer is hakube's SSH key; kubeconfig the file up writes;
	// knownHosts where the masters' host keys are remembered, as the CLI's.
	signer     ssh.Signer
	kubeconfig string
	knownHosts string
}

func newScenario(t testing.TB) *scenario {
	t.Helper()
	if testing.Short() {
		t.Skip("scenario tests run flows against the emulator; skipped with -short")
	}
	return newScenarioAt(t, 0.005, 2*time.Second)
}

// newScenarioAt runs the emulator's realistic latency at the time scale.
func newScenarioAt(t testing.TB, scale float64, waitCap time.Duration) *scenario {
	t.Helper()
	// The masters run the real etcd and control plane; every VM an SSH
	// server and a kubelet stand-in.
	emu := kubevm.Start(t, emulator.Options{
		Projects: []string{scenarioProject},
		Latency:  emulator.LatencyRealistic, TimeScale: scale,
		WaitCap: waitCap, SSHPort: scenarioSSHPort,
	})
	cloud, err := gce.New(context.Background(), gce.Options{
		Project: scenarioProject, Endpoint: emu.Endpoint,
		RetryInitial: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond, RequestsPerSecond: 2000,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	s := &scenario{t: t, emu: emu, cloud: cloud, signer: signer, kubeconfig: filepath.Join(t.TempDir(), "kubeconfig"),
		knownHosts: filepath.Join(t.TempDir(), "known_hosts")}
	s.baseline = s.inventory()
	return s
}

// env is what a flow runs with. The waits are bounded for a loaded 2-core
// machine running up to three real control planes.
func (s *scenario) env() *Env {
	e := &Env{Cloud: s.cloud, Parallelism: 8, PollInterval: 20 * time.Millisecond,
		APIDeadline: 2 * time.Minute, StableTimeout: time.Minute, Holder: "scenario-test",
		Kubeconfig: s.kubeconfig, KnownHosts: s.knownHosts}
	e.SSH.Signer, e.SSH.Port = s.signer, scenarioSSHPort
	return e
}

// config loads a configuration the way the CLI does, from flags.
func (s *scenario) config(command string, args ...string) *config.Config {
	s.t.Helper()
	base := []string{"--project", scenarioProject, "--endpoint", s.emu.Endpoint, "--apiserver-port", scenarioPort,
		"--ssh-port", fmt.Sprint(scenarioSSHPort)}
	if command == "up" {
		// A halted master's Node turns NotReady in seconds, not a minute.
		base = append(base, "--controller-manager-test-args", kubevm.FastControllers, "--scheduler-test-args", kubevm.FastScheduler,
			"--kubelet-test-args", kubevm.FastKubelet)
	}
	args = append(base, args...)
	return loadConfig(s.t, command, nil, args...)
}

func (s *scenario) run(ctx context.Context, command string, args ...string) (*Report, error) {
	s.t.Helper()
	return Run(ctx, s.env(), s.config(command, args...), RunOptions{Command: command})
}

func (s *scenario) mustRun(command string, args ...string) *Report {
	s.t.Helper()
	rep, err := s.run(context.Background(), command, args...)
	if err != nil {
		s.t.Fatalf("hakube %s %s: %v", command, strings.Join(args, " "), err)
	}
	return rep
}

// withinBudget checks a flow's Compute requests against its budget: every
// request but the polls (operation waits and a pool's getHealth), whose
// number is the emulator's latency and not the flow's.
func (s *scenario) withinBudget(flow string, rep *Report, budget int) {
	s.t.Helper()
	n := 0
	for _, m := range rep.ByMethod {
		if !strings.HasSuffix(m.Method, ".wait") && !strings.HasSuffix(m.Method, ".getHealth") {
			n += m.Count
		}
	}
	s.t.Logf("%s: %d requests besides polls (budget %d)", flow, n, budget)
	if n > budget {
		s.t.Errorf("%s made %d requests besides polls, over its budget of %d: %v", flow, n, budget, rep.ByMethod)
	}
}

var suffixed = regexp.MustCompile(`^(.*-(master|minion-group))-[a-z0-9]{3,4}(-pd|-internal)?$`)

// inventory reads every resource, folding random names into patterns.
func (s *scenario) inventory() map[string]int {
	s.t.Helper()
	inv, err := s.emu.Control.Inventory(context.Background(), scenarioProject)
	if err != nil {
		s.t.Fatal(err)
	}
	out := map[string]int{}
	for _, name := range inv.Names() {
		name = strings.TrimPrefix(name, "projects/"+scenarioProject+"/")
		i := strings.LastIndexByte(name, '/')
		coll, base := name[:i], name[i+1:]
		if strings.HasSuffix(coll, "/instances") || strings.HasSuffix(coll, "/disks") || strings.HasSuffix(coll, "/addresses") {
			if m := suffixed.FindStringSubmatch(base); m != nil {
				base = m[1] + "-*" + m[3]
			}
		}
		if strings.HasPrefix(base, "default-route-") {
			base = "default-route-*"
		}
		out[coll+"/"+base]++
	}
	return out
}

// shape is what a cluster should consist of.
type shape struct {
	prefix  string
	masters []string // zones with a replica; the first is the first master's
	pools   map[string]int
	lb      bool
}

func (sh shape) resources() map[string]int {
	out := map[string]int{}
	p, region := sh.prefix, ""
	if len(sh.masters) > 0 {
		region = sh.masters[0][:strings.LastIndexByte(sh.masters[0], '-')]
	}
	if len(sh.masters) == 0 && len(sh.pools) == 0 {
		return out
	}
	out["regions/"+region+"/addresses/"+p+"-master-ip"] = 1
	for _, fw := range []string{p + "-master-https", p + "-master-etcd", p + "-minion-all", p + "-default-internal-master", p + "-default-internal-node"} {
		out["global/firewalls/"+fw] = 1
	}
	if len(sh.pools) > 0 {
		out["global/instanceTemplates/"+p+"-minion-template"] = 1
	}
	for z, n := range sh.pools {
		out["zones/"+z+"/instanceGroupManagers/"+p+"-minion-group"] = 1
		out["zones/"+z+"/instanceGroups/"+p+"-minion-group"] = 1
		if n > 0 {
			out["zones/"+z+"/instances/"+p+"-minion-group-*"] = n
			out["zones/"+z+"/disks/"+p+"-minion-group-*"] = n
		}
	}
	for i, z := range sh.masters {
		name := p + "-master-*"
		if i == 0 {
			name = p + "-master"
		}
		out["zones/"+z+"/instances/"+name]++
		out["zones/"+z+"/disks/"+name]++
		out["zones/"+z+"/disks/"+name+"-pd"]++
		out["regions/"+region+"/addresses/"+name+"-internal"]++
	}
	if sh.lb {
		out["global/httpHealthChecks/"+p+"-master"] = 1
		out["regions/"+region+"/targetPools/"+p+"-master"] = 1
		out["regions/"+region+"/forwardingRules/"+p+"-master"] = 1
	}
	return out
}

// expect checks the inventory is the baseline plus the clusters' resources,
// and nothing else. The shared default-default-ssh rule counts once.
func (s *scenario) expect(clusters ...shape) {
	s.t.Helper()
	want := map[string]int{}
	for k, v := range s.baseline {
		want[k] = v
	}
	ssh := false
	for _, c := range clusters {
		for k, v := range c.resources() {
			want[k] += v
		}
		if len(c.masters) > 0 || len(c.pools) > 0 {
			ssh = true
		}
	}
	if ssh {
		want["global/firewalls/default-default-ssh"]++
	}
	if diff := cmp.Diff(want, s.inventory()); diff != "" {
		s.t.Errorf("inventory (-want +got):\n%s", diff)
	}
}

// mutations counts mutating Compute calls since a mark.
func (s *scenario) mutations(mark int) map[string]int64 {
	s.t.Helper()
	rc, err := s.emu.Control.RequestsSince(context.Background(), mark)
	if err != nil {
		s.t.Fatal(err)
	}
	out := map[string]int64{}
	for m, n := range rc.Counts {
		verb := m[strings.LastIndexByte(m, '.')+1:]
		switch verb {
		case "get", "list", "aggregatedList", "wait", "getHealth", "listManagedInstances", "getFromFamily", "getGuestAttributes", "getSerialPortOutput":
			continue
		}
		out[m] = n
	}
	return out
}

func (s *scenario) mark() int {
	s.t.Helper()
	m, err := s.emu.Control.Mark(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	return m
}

// ipOwner reports who holds the cluster's static IP, and checks it serves.
func (s *scenario) ipOwner(prefix, region string) lb.Owner {
	s.t.Helper()
	a, err := s.cloud.GetAddress(context.Background(), gce.RegionalKey(region, prefix+"-master-ip"))
	if err != nil {
		s.t.Fatal(err)
	}
	return lb.IPOwner(a)
}

// serving checks that the static IP serves the API with the cluster's CA,
// as status's probe does. A single probe can time out on a machine
// saturated by parallel test packages, so it probes until three answers in
// a row succeed, and fails only if that does not happen within 10 s; each
// failed probe is logged.
func (s *scenario) serving(cfg *config.Config) error {
	ctx := context.Background()
	cfg, obs, err := observeAdopted(ctx, s.cloud, cfg, "status") // the cluster's own port
	if err != nil {
		return err
	}
	ca := clusterCA(obs)
	if ca == nil || obs.Address == nil {
		return fmt.Errorf("no static IP or no master with the cluster CA")
	}
	prober := s.env().prober(cfg, ca)
	deadline := time.Now().Add(10 * time.Second)
	var last error
	for ok := 0; ok < 3; {
		if last = prober.Probe(ctx, obs.Address.Address); last != nil {
			ok = 0
			s.t.Logf("static IP %s: %v", obs.Address.Address, last)
		} else {
			ok++
		}
		if ok < 3 && time.Now().After(deadline) {
			return fmt.Errorf("static IP not serving steadily within 10s (last probe: %v)", last)
		}
		if ok < 3 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// settled reads status until it reports no problem, for up to 20 s, and
// fails with the problems of each reading that had some. Right after a flow
// the health check may not have settled: at this time scale a probe times
// out after 50 ms and one failure takes a master out of rotation, so on a
// loaded machine a master can read UNHEALTHY (or a probe of it time out)
// for a moment while nothing is wrong.
func (s *scenario) settled(cfg *config.Config) *Status {
	st, _ := s.settledAfter(cfg, nil)
	return st
}

// settledAfter is settled, also saying how many readings had problems; it
// calls onProblem, when not nil, after each reading that had some.
func (s *scenario) settledAfter(cfg *config.Config, onProblem func()) (*Status, int) {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var seen []string
	for {
		st, err := GetStatus(context.Background(), s.env(), cfg)
		if err != nil {
			s.t.Fatal(err)
		}
		problems := Problems(st)
		if len(problems) == 0 {
			if len(seen) > 0 {
				s.t.Logf("status settled after %d readings with problems: %q", len(seen), seen)
			}
			return st, len(seen)
		}
		seen = append(seen, strings.Join(problems, "; "))
		if onProblem != nil {
			onProblem()
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("status still has problems after 20 s; readings:\n  %s", strings.Join(seen, "\n  "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func pools(zones ...string) map[string]int {
	out := map[string]int{}
	for _, z := range zones {
		out[z] = 3
	}
	return out
}

func TestScenarioFreshUpRerunAndDown(t *testing.T) {
	t.Parallel()
	s := newScenario(t)
	rep := s.mustRun("up", "--zone", "europe-west1-b", "--multizone", "--etcd-quorum-read")
	s.expect(shape{prefix: "kubernetes", masters: []string{"europe-west1-b"}, pools: pools("europe-west1-b")})
	if rep.Flow != FlowFreshUp || rep.Result.Count("failed") != 0 {
		t.Errorf("report: flow %q, %s", rep.Flow, rep.Result.Summary())
	}
	if o := s.ipOwner("kubernetes", "europe-west1"); o.Kind != lb.OwnerMaster || o.Instance != "kubernetes-master" {
		t.Errorf("IP owner = %+v, want the master", o)
	}
	cfg := s.config("status")
	if err := s.serving(cfg); err != nil {
		t.Error(err)
	}
	master, err := s.cloud.GetInstance(context.Background(), gce.ZonalKey("europe-west1-b", "kubernetes-master"))
	if err != nil {
		t.Fatal(err)
	}
	env, err := vmcontract.ParseKubeEnv(metadataValue(master, vmcontract.KeyKubeEnv))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"KUBERNETES_MASTER": "true", "MULTIZONE": "true", "ETCD_QUORUM_READ": "true",
		"INITIAL_ETCD_CLUSTER": "kubernetes-master", "INITIAL_ETCD_CLUSTER_STATE": "new", "ZONE": "europe-west1-b",
		"REGION": "europe-west1", "APISERVER_PORT": scenarioPort, "HEALTHCHECK_PORT": "3990", "NUM_NODES": "3",
		"KUBERNETES_MASTER_NAME": natIP(master)} {
		if got := env.Get(k); got != v {
			t.Errorf("kube-env %s = %q, want %q", k, got, v)
		}
	}

	// A re-run changes nothing, not even the lock labels.
	m := s.mark()
	rep = s.mustRun("up", "--zone", "europe-west1-b", "--multizone", "--etcd-quorum-read")
	if !rep.NothingToDo {
		t.Errorf("re-run planned %d changes", rep.Plan.Mutations())
	}
	if muts := s.mutations(m); len(muts) > 0 {
		t.Errorf("re-run made mutations: %v", muts)
	}

	rep = s.mustRun("down")
	s.expect()
	// Firewall rules go beside the machines: a rule names tags, not VMs.
	for _, st := range rep.Plan.Steps {
		if strings.HasPrefix(st.ID, "delete firewall ") {
			for _, d := range []string{"delete instance kubernetes-master (europe-west1-b)", "delete instance-group kubernetes-minion-group (europe-west1-b)"} {
				if rep.Plan.dependsOn(st.ID, d) {
					t.Errorf("teardown: %q waits for %q", st.ID, d)
				}
			}
		}
	}
}

// TestScenarioForeignDataDiskRefused: GCE attaches a disk that has the
// name an instance's insert would give its new disk, so a master's data
// disk name held by a disk that is not the cluster's is refused, and the
// disk is left as it was.
func TestScenarioForeignDataDiskRefused(t *testing.T) {
	t.Parallel()
	s := newScenario(t)
	ctx := context.Background()
	key := gce.ZonalKey("europe-west1-b", "kubernetes-master-pd")
	if err := s.cloud.InsertDisk(ctx, key, &compute.Disk{Name: key.Name, SizeGb: 10, Type: "zones/europe-west1-b/diskTypes/pd-standard"}); err != nil {
		t.Fatal(err)
	}
	s.baseline = s.inventory()
	_, err := s.run(ctx, "up", "--zone", "europe-west1-b", "--num-nodes", "1")
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "disk kubernetes-master-pd (europe-west1-b) exists but is not an etcd data disk of cluster \"kubernetes\"") {
		t.Fatalf("up with a foreign disk on the master's data disk name: %v", err)
	}
	d, err := s.cloud.GetDisk(ctx, key)
	if err != nil || len(d.Users) > 0 || len(d.Labels) > 0 {
		t.Errorf("the foreign disk after the refusal: users %v, labels %v (%v)", d.Users, d.Labels, err)
	}
	s.mustRun("down")
	s.expect()
}

func TestScenarioDownLeavesOtherClustersAlone(t *testing.T) {
	t.Parallel()
	s := newScenario(t)
	s.mustRun("up", "--zone", "europe-west1-b", "--num-nodes", "1")
	// Pods' ranges may not overlap anywhere in a network: the default one
	// is refused before any change, a free one works.
	m := s.mark()
	_, err := s.run(context.Background(), "up", "--zone", "us-central1-b", "--prefix", "other", "--num-nodes", "2")
	if err == nil || !strings.Contains(err.Error(), "CLUSTER_IP_RANGE 10.64.0.0/14 overlaps secondary range kubernetes-pods 10.64.0.0/14 of subnet") {
		t.Errorf("a second cluster on the first's pods' range: %v", err)
	}
	if muts := s.mutations(m); len(muts) > 0 {
		t.Errorf("the refused run made mutations: %v", muts)
	}
	s.mustRun("up", "--zone", "us-central1-b", "--prefix", "other", "--num-nodes", "2", "--cluster-ip-range", "10.68.0.0/14")
	a := shape{prefix: "kubernetes", masters: []string{"europe-west1-b"}, pools: map[string]int{"europe-west1-b": 1}}
	b := shape{prefix: "other", masters: []string{"us-central1-b"}, pools: map[string]int{"us-central1-b": 2}}
	s.expect(a, b)
	s.mustRun("down")
	s.expect(b)
	if err := s.serving(s.config("status", "--prefix", "other")); err != nil {
		t.Errorf("the other cluster stopped serving: %v", err)
	}
}

func TestScenarioConflictsRefuseBeforeChanges(t *testing.T) {
	t.Parallel()
	s := newScenario(t)
	s.mustRun("up", "--zone", "europe-west1-b", "--num-nodes", "1")
	sh := shape{prefix: "kubernetes", masters: []string{"europe-west1-b"}, pools: map[string]int{"europe-west1-b": 1}}
	m := s.mark()
	tests := []struct {
		name string
		cmd  string
		args []string
		want error
		text string
	}{
		{"fresh up in another zone", "up", []string{"--zone", "europe-west1-c"}, ErrRefused, "--use-existing-master"},
		{"node pool in another region", "up", []string{"--zone", "europe-west2-a", "--use-existing-master"}, config.ErrInvalidConfig, "europe-west1-b, europe-west1-c, europe-west1-d"},
		{"replica in another region", "up", []string{"--zone", "us-east1-b", "--replicate-master"}, config.ErrInvalidConfig, "region us-east1"},
		{"unknown zone", "up", []string{"--zone", "europe-west1-a", "--use-existing-master"}, config.ErrInvalidConfig, "does not exist"},
		{"last master with a pool elsewhere", "down", []string{"--zone", "europe-west1-b", "--delete-nodes=false"}, nil, ""},
		{"node pool without a cluster", "up", []string{"--zone", "us-west1-a", "--use-existing-master", "--prefix", "ghost"}, ErrRefused, "no cluster \"ghost\""},
		{"unknown replica", "down", []string{"--replica", "kubernetes-master-zzz", "--delete-nodes=false"}, config.ErrInvalidConfig, "has no master replica"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want == nil {
				return
			}
			_, err := s.run(context.Background(), tt.cmd, tt.args...)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) {
				t.Errorf("err = %v, want %v mentioning %q", err, tt.want, tt.text)
			}
		})
	}
	if muts := s.mutations(m); len(muts) > 0 {
		t.Errorf("refused requests made mutations: %v", muts)
	}
	s.expect(sh)
}

func TestScenarioCrashMidUpConverges(t *testing.T) {
	t.Parallel()
	s := newScenario(t)
	ctx := context.Background()
	// The master VM cannot be created: everything independent of it is made,
	// its dependents are skipped, and the run fails naming it.
	f, err := s.emu.Control.AddFault(ctx, emulator.Fault{Method: "instances.insert", Name: "kubernetes-master", Code: 503})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.run(ctx, "up", "--zone", "europe-west1-b", "--num-nodes", "2")
	if err == nil || !strings.Contains(err.Error(), "create master kubernetes-master") {
		t.Fatalf("err = %v, want the master's creation to fail", err)
	}
	// The node template carries the CA certificate and bootstrap token the
	// master's step issues, so the pool waits for GCE to accept the
	// master's insert: a refused one skips them.
	wantStatuses(t, rep, map[string]string{
		"create instance kubernetes-master (europe-west1-b)":             "failed",
		"wait api https://kubernetes-master-ip:" + scenarioPort:          "skipped",
		"create instance-template kubernetes-minion-template":            "skipped",
		"create instance-group kubernetes-minion-group (europe-west1-b)": "skipped",
		"create address kubernetes-master-internal (europe-west1)":       "done",
		"update subnet default (europe-west1)":                           "done",
		"wait nodes of cluster kubernetes":                               "skipped",
	})
	if err := s.emu.Control.ClearFaults(ctx); err != nil {
		t.Fatal(err)
	}
	_ = f
	rep = s.mustRun("up", "--zone", "europe-west1-b", "--num-nodes", "2")
	if rep.NothingToDo {
		t.Error("re-run found nothing to do")
	}
	s.expect(shape{prefix: "kubernetes", masters: []string{"europe-west1-b"}, pools: map[string]int{"europe-west1-b": 2}})
	if err := s.serving(s.config("status")); err != nil {
		t.Error(err)
	}
}

func TestScenarioFailureInsideOperationConverges(t *testing.T) {
	t.Parallel()
	s := newScenario(t)
	ctx := context.Background()
	if _, err := s.emu.Control.AddFault(ctx, emulator.Fault{Method: "instanceGroupManagers.insert", Code: 403, Reason: "quotaExceeded",
		Message: "Quota 'INSTANCE_GROUP_MANAGERS' exceeded. Limit: 0.0 in region europe-west1.", Delivery: "operation", Count: 1}); err != nil {
		t.Fatal(err)
	}
	_, err := s.run(ctx, "up", "--zone", "europe-west1-b", "--num-nodes", "1")
	if !strings.Contains(err.Error(), "quotaExceeded") {
		t.Fatalf("err = %v, want the quota error from inside the operation", err)
	}
	s.mustRun("up", "--zone", "europe-west1-b", "--num-nodes", "1")
	s.expect(shape{prefix: "kubernetes", masters: []string{"europe-west1-b"}, pools: map[string]int{"europe-west1-b": 1}})
}

// GCE accepts the first master's insert and fails it inside its operation.
// The node template and pool follow the insert's acceptance, so they are
// made with a CA that then lives nowhere: the re-run replaces them, and
// the Nodes of the new pool join the new master.
func TestScenarioMasterFailingInsideItsOperationConverges(t *testing.T) {
	t.Parallel()
	s := newScenario(t)
	ctx := context.Background()
	if _, err := s.emu.Control.AddFault(ctx, emulator.Fault{Method: "instances.insert", Name: "kubernetes-master", Code: 403, Reason: "quotaExceeded",
		Message: "Quota 'CPUS' exceeded. Limit: 8.0 in region europe-west1.", Delivery: "operation", Count: 1}); err != nil {
		t.Fatal(err)
	}
	rep, err := s.run(ctx, "up", "--zone", "europe-west1-b", "--num-nodes", "2")
	if err == nil || !strings.Contains(err.Error(), "CPUS") || !strings.Contains(err.Error(), "run hakube up again") {
		t.Fatalf("err = %v, want the quota error and what to do", err)
	}
	wantStatuses(t, rep, map[string]string{
		"create instance kubernetes-master (europe-west1-b)":             "done",
		"wait instance kubernetes-master (europe-west1-b)":               "failed",
		"create instance-template kubernetes-minion-template":            "done",
		"create instance-group kubernetes-minion-group (europe-west1-b)": "done",
		"wait api https://kubernetes-master-ip:" + scenarioPort:          "skipped",
		"wait nodes of cluster kubernetes":                               "skipped",
	})
	old, err := s.cloud.GetInstanceTemplate(ctx, gce.GlobalKey("kubernetes-minion-template"))
	if err != nil {
		t.Fatal(err)
	}
	rep = s.mustRun("up", "--zone", "europe-west1-b", "--num-nodes", "2")
	if !slices.ContainsFunc(rep.Plan.Notes, func(n string) bool { return strings.Contains(n, "trusts a CA that no master holds") }) {
		t.Errorf("the re-run's notes %q do not say why the template goes", rep.Plan.Notes)
	}
	now, err := s.cloud.GetInstanceTemplate(ctx, gce.GlobalKey("kubernetes-minion-template"))
	if err != nil {
		t.Fatal(err)
	}
	if now.Id == old.Id {
		t.Error("the template trusting the lost CA was kept")
	}
	// The up waited for every Node Ready: the new pool's kubelets trust the
	// new master's CA.
	s.expect(shape{prefix: "kubernetes", masters: []string{"europe-west1-b"}, pools: map[string]int{"europe-west1-b": 2}})
	if err := s.serving(s.config("status")); err != nil {
		t.Error(err)
	}
}

func TestScenarioInterruptedUpResumes(t *testing.T) {
	t.Parallel()
	s := newScenario(t)
	ctx, cancel := context.WithCancel(context.Background())
	env := s.env()
	cfg := s.config("up", "--zone", "europe-west1-b", "--num-nodes", "2")
	// Ctrl-C as soon as the master VM is being created.
	rep := &cancelOn{match: "create instance kubernetes-master", cancel: cancel}
	_, err := Run(ctx, env, cfg, RunOptions{Command: "up", Reporter: rep})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if info := s.lock(); info.Held() {
		t.Errorf("interrupted run left the lock held by %+v", info)
	}
	s.mustRun("up", "--zone", "europe-west1-b", "--num-nodes", "2")
	s.expect(shape{prefix: "kubernetes", masters: []string{"europe-west1-b"}, pools: map[string]int{"europe-west1-b": 2}})
	if err := s.serving(s.config("status")); err != nil {
		t.Error(err)
	}
}

// wantStatuses checks the statuses of the run's steps, each named by its
// action and resource.
func wantStatuses(t *testing.T, rep *Report, want map[string]string) {
	t.Helper()
	st := map[string]string{}
	for _, r := range rep.Result.Steps {
		st[r.Action+" "+r.Resource] = r.Status
	}
	for step, w := range want {
		if st[step] != w {
			t.Errorf("step %q: %s, want %s", step, st[step], w)
		}
	}
}

// cancelOn cancels the run when a step whose id starts with match starts.
type cancelOn struct {
	match  string
	cancel context.CancelFunc
}

func (c *cancelOn) StepStarted(s *Step) {
	if strings.HasPrefix(s.ID, c.match) {
		c.cancel()
	}
}
func (c *cancelOn) StepDone(*Step, error, time.Duration) {}

func TestScenarioConcurrentRunIsRefused(t *testing.T) {
	t.Parallel()
	s := newScenario(t)
	s.mustRun("up", "--zone", "europe-west1-b", "--num-nodes", "1")
	ctx := context.Background()
	s.holdLock("ci-runner-42", 42)
	m := s.mark()
	_, err := s.run(ctx, "up", "--zone", "europe-west1-c", "--use-existing-master", "--num-nodes", "1")
	var locked *gce.LockedError
	if !errors.As(err, &locked) || locked.Info.Holder != "ci-runner-42" || !strings.Contains(err.Error(), "--break-lock") {
		t.Fatalf("err = %v, want the lock held by ci-runner-42", err)
	}
	for method := range s.mutations(m) {
		if method != "compute.addresses.setLabels" {
			t.Errorf("refused run made a mutation: %s", method)
		}
	}
	// Breaking the stale lock lets the run through.
	env := s.env()
	env.BreakLock = true
	if _, err := Run(ctx, env, s.config("up", "--zone", "europe-west1-c", "--use-existing-master", "--num-nodes", "1"), RunOptions{Command: "up"}); err != nil {
		t.Fatalf("with --break-lock: %v", err)
	}
	s.expect(shape{prefix: "kubernetes", masters: []string{"europe-west1-b"}, pools: map[string]int{"europe-west1-b": 1, "europe-west1-c": 1}})
}

// lock reads the cluster lock on the static IP.
func (s *scenario) lock() gce.LockInfo {
	s.t.Helper()
	a, err := s.cloud.GetAddress(context.Background(), gce.RegionalKey("europe-west1", "kubernetes-master-ip"))
	if err != nil {
		s.t.Fatal(err)
	}
	return gce.LockInfoOf(a.Labels)
}

// holdLock writes a lock as a run of holder with pid would, an hour ago.
func (s *scenario) holdLock(holder string, pid int) gce.LockInfo {
	s.t.Helper()
	info := gce.LockInfo{Holder: holder, PID: pid, Operation: "create cluster", Since: time.Now().Add(-time.Hour).Truncate(time.Second)}
	req := gce.LockRequest{Info: info, Alive: func(int) bool { return true }}
	if _, err := s.cloud.AcquireLock(context.Background(), gce.RegionalKey("europe-west1", "kubernetes-master-ip"), req); err != nil {
		s.t.Fatal(err)
	}
	return info
}

// A run SIGKILLed after its last mutation leaves its lock behind: the
// converged re-run of the same identity clears it (the dead pid does not
// run), and says so; another identity's lock is reported, not touched.
func TestScenarioStaleLockAfterConvergedRun(t *testing.T) {
	t.Parallel()
	s := newScenario(t)
	s.mustRun("up", "--zone", "europe-west1-b", "--num-nodes", "1")
	const deadPID = 4_000_000
	s.holdLock("scenario-test", deadPID)
	env := s.env()
	env.HolderAlive = func(pid int) bool { return pid != deadPID }
	m := s.mark()
	rep, err := Run(context.Background(), env, s.config("up", "--zone", "europe-west1-b", "--num-nodes", "1"), RunOptions{Command: "up"})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.NothingToDo || len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "cleared the cluster lock left by scenario-test (pid 4000000") {
		t.Errorf("re-run: nothing to do %v, warnings %q", rep.NothingToDo, rep.Warnings)
	}
	if info := s.lock(); info.Held() {
		t.Errorf("lock still held by %+v", info)
	}
	if diff := cmp.Diff(map[string]int64{"compute.addresses.setLabels": 1}, s.mutations(m)); diff != "" {
		t.Errorf("mutations (-want +got):\n%s", diff)
	}

	foreign := s.holdLock("ci-runner-7", 7)
	rep, err = Run(context.Background(), env, s.config("up", "--zone", "europe-west1-b", "--num-nodes", "1"), RunOptions{Command: "up"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "locked by ci-runner-7") || !strings.Contains(rep.Warnings[0], "--break-lock") {
		t.Errorf("warnings %q, want the foreign lock named with what to do", rep.Warnings)
	}
	if info := s.lock(); !info.Held() || info.Holder != foreign.Holder {
		t.Errorf("lock %+v, want it still held by %s", info, foreign.Holder)
	}
}

// Two runs that both break the same stale lock to add a replica in the same
// zone: breaking is a fingerprinted write only one wins, so the other is
// refused by the winner's lock and there is one replica, not two.
func TestScenarioBreakLockRaceMakesOneReplica(t *testing.T) {
	t.Parallel()
	s := newScenario(t)
	s.mustRun("up", "--zone", "europe-west1-b", "--num-nodes", "0")
	s.holdLock("crashed-run", 9)
	ctx := context.Background()
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			env := s.env()
			env.Holder, env.PID, env.BreakLock = fmt.Sprintf("racer-%d", i), 100+i, true
			_, errs[i] = Run(ctx, env, s.config("up", "--zone", "europe-west1-c", "--replicate-master"), RunOptions{Command: "up"})
		}()
	}
	wg.Wait()
	refused := 0
	for _, err := range errs {
		var locked *gce.LockedError
		switch {
		case err == nil:
		case errors.As(err, &locked) && strings.HasPrefix(locked.Info.Holder, "racer-"):
			refused++
		default:
			t.Errorf("racer: %v", err)
		}
	}
	if refused != 1 {
		t.Errorf("%d racers refused (%v), want exactly 1", refused, errs)
	}
	s.expect(shape{prefix: "kubernetes", masters: []string{"europe-west1-b", "europe-west1-c"}, pools: map[string]int{"europe-west1-b": 0}, lb: true})
}

func TestScenarioPlanGolden(t *testing.T) {
	s := newScenario(t)
	p, err := makePlan(context.Background(), s.env(), s.config("up", "--zone", "europe-west1-b"), "up")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := p.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	// The kubeconfig's path is the test's temporary one.
	golden.Check(t, "plan/fresh-up.txt", []byte(strings.ReplaceAll(b.String(), s.kubeconfig, "$HOME/.kube/config")))
}
