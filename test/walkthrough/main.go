// Command walkthrough performs kube-up's HA guide end to end, the way a CI
// script would: the built hakube binary driven by kube-up's environment
// variables, against a gce-emulator it starts. After every step it checks
// the whole inventory (what should exist exists, nothing else does) and
// whether the static IP serves the API, then prints a summary of each step's
// duration, Compute API calls and measured outage.
//
//	go run ./test/walkthrough -hakube bin/hakube -emulator bin/gce-emulator
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	compute "google.golang.org/api/compute/v1"

	"github.com/hakube/hakube/internal/emulator"
	"github.com/hakube/hakube/test/internal/harness"
)

type options struct {
	hakube, emulator string
	project          string
	timeScale        float64
	apiPort          int
	verbose          bool
	// externalRange and internalRange override the emulator's loopback
	// ranges (tests claim their own so parallel test processes never meet).
	externalRange, internalRange string
	// healthWait bounds the wait for the masters' load-balancer health to
	// settle (0: a minute, a few health-check intervals at any time scale
	// the walkthrough runs at, and room for a loaded machine).
	healthWait time.Duration
	// The Kubernetes side: the rehearsal's binary the emulator's masters
	// run, the real kubectl and gcloud that check the cluster, the SSH port
	// of the emulated VMs, and the bound of the waits for Nodes.
	kubeBinary, kubectl, gcloud string
	sshPort                     int
	nodeWait                    time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.hakube, "hakube", "bin/hakube", "hakube binary")
	flag.StringVar(&o.emulator, "emulator", "bin/gce-emulator", "gce-emulator binary")
	flag.StringVar(&o.project, "project", "hakube-demo", "project id")
	flag.Float64Var(&o.timeScale, "time-scale", 0.05, "emulator time scale (1 = real GCE timings)")
	flag.IntVar(&o.apiPort, "apiserver-port", 6443, "API server port (ports below 1024 need root)")
	flag.BoolVar(&o.verbose, "v", false, "show hakube's progress lines")
	flag.StringVar(&o.kubeBinary, "kube-binary", "bin/kube-rehearsal", "the etcd and Kubernetes binary the emulated masters run (make rehearsal)")
	flag.StringVar(&o.kubectl, "kubectl", "kubectl", "kubectl binary")
	flag.StringVar(&o.gcloud, "gcloud", "gcloud", "gcloud binary")
	flag.IntVar(&o.sshPort, "ssh-port", defaultSSHPort(), "the emulated VMs' SSH port (22 needs root)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "walkthrough failed:", err)
		os.Exit(1)
	}
}

// defaultSSHPort is GCE's as root, else one a user may bind.
func defaultSSHPort() int {
	if os.Geteuid() == 0 {
		return 22
	}
	return 2222
}

// walk holds the running walkthrough.
type walk struct {
	o        options
	out      io.Writer
	endpoint string
	ctl      *emulator.Control
	svc      *compute.Service
	baseline map[string]int
	rows     []row
	measured string // how hakube measured the outages it reported
	home     string // HOME of every command: kubeconfig, gcloud's config, SSH keys
	// lastMembers is the etcd member count etcdCheck last saw.
	lastMembers int
}

type row struct {
	step     string
	took     time.Duration
	apiCalls int
	outage   string
}

// report is the part of `hakube -o json` the walkthrough reads.
type report struct {
	APICalls int `json:"apiCalls"`
	Outages  []struct {
		From     string `json:"from"`
		To       string `json:"to"`
		OutageNs int64  `json:"outageNs"`
		Measured string `json:"measured"`
		Reverted bool   `json:"reverted"`
	} `json:"outages"`
	NothingToDo bool `json:"nothingToDo"`
}

// cluster is what should exist after a step.
type cluster struct {
	masters map[string]bool // zones with a master replica
	pools   map[string]bool // zones with a node pool
	lb      bool            // forwarding rule, pool and health check
	exists  bool
}

const (
	region = "europe-west1"
	zoneB  = "europe-west1-b"
	zoneC  = "europe-west1-c"
	zoneD  = "europe-west1-d"
)

func run(ctx context.Context, o options, out io.Writer) error {
	w := &walk{o: o, out: out}
	home, err := os.MkdirTemp("", "hakube-walkthrough-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(home)
	w.home = home
	stopEmu, err := w.startEmulator(ctx)
	if err != nil {
		return err
	}
	defer stopEmu()
	if w.baseline, err = w.inventory(ctx); err != nil {
		return err
	}
	state := cluster{masters: map[string]bool{}, pools: map[string]bool{}}
	fmt.Fprintf(out, "gce-emulator at %s (project %s, realistic latency x%g)\n\n", w.endpoint, o.project, o.timeScale)

	steps := []struct {
		title string
		env   []string
		args  []string
		after func(*cluster)
	}{
		{"Create the first master and its nodes in " + zoneB,
			[]string{"MULTIZONE=true", "ENABLE_ETCD_QUORUM_READ=true", "NUM_NODES=3", "KUBE_GCE_ZONE=" + zoneB}, []string{"up"},
			func(c *cluster) { c.exists, c.masters[zoneB], c.pools[zoneB] = true, true, true }},
		{"Re-run it: nothing to do", []string{"MULTIZONE=true", "ENABLE_ETCD_QUORUM_READ=true", "NUM_NODES=3", "KUBE_GCE_ZONE=" + zoneB}, []string{"up"}, nil},
		{"Add nodes in " + zoneC, []string{"KUBE_USE_EXISTING_MASTER=true", "KUBE_GCE_ZONE=" + zoneC}, []string{"up"},
			func(c *cluster) { c.pools[zoneC] = true }},
		{"Add nodes in " + zoneD, []string{"KUBE_USE_EXISTING_MASTER=true", "KUBE_GCE_ZONE=" + zoneD}, []string{"up"},
			func(c *cluster) { c.pools[zoneD] = true }},
		{"Add a master replica in " + zoneC + " (builds the load balancer, moves the IP)", []string{"KUBE_REPLICATE_EXISTING_MASTER=true", "KUBE_GCE_ZONE=" + zoneC}, []string{"up"},
			func(c *cluster) { c.masters[zoneC], c.lb = true, true }},
		{"Add a master replica in " + zoneD, []string{"KUBE_REPLICATE_EXISTING_MASTER=true", "KUBE_GCE_ZONE=" + zoneD}, []string{"up"},
			func(c *cluster) { c.masters[zoneD] = true }},
	}
	for _, s := range steps {
		if err := w.hakube(ctx, s.title, s.env, s.args...); err != nil {
			return err
		}
		if s.after != nil {
			s.after(&state)
		}
		if err := w.check(ctx, state); err != nil {
			return fmt.Errorf("after %q: %w", s.title, err)
		}
	}
	if err := w.status(ctx, "Status with three replicas"); err != nil {
		return err
	}
	if err := w.haltOverSSH(ctx, state, zoneD); err != nil {
		return err
	}
	if err := w.check(ctx, state); err != nil {
		return fmt.Errorf("after the restart: %w", err)
	}
	tail := []struct {
		title string
		env   []string
		args  []string
		after func(*cluster)
	}{
		{"Remove the master replica in " + zoneD, []string{"KUBE_DELETE_NODES=false", "KUBE_GCE_ZONE=" + zoneD}, []string{"down", "--yes"},
			func(c *cluster) { delete(c.masters, zoneD) }},
		{"Remove the master replica in " + zoneC + " (the IP goes back to the last master)", []string{"KUBE_DELETE_NODES=false", "KUBE_GCE_ZONE=" + zoneC}, []string{"down", "--yes"},
			func(c *cluster) { delete(c.masters, zoneC); c.lb = false }},
		{"Remove the nodes in " + zoneD, []string{"KUBE_USE_EXISTING_MASTER=true", "KUBE_GCE_ZONE=" + zoneD}, []string{"down", "--yes"},
			func(c *cluster) { delete(c.pools, zoneD) }},
		{"Remove the nodes in " + zoneC, []string{"KUBE_USE_EXISTING_MASTER=true", "KUBE_GCE_ZONE=" + zoneC}, []string{"down", "--yes"},
			func(c *cluster) { delete(c.pools, zoneC) }},
		{"Tear the cluster down (" + zoneB + ", the last zone)", []string{"KUBE_GCE_ZONE=" + zoneB}, []string{"down", "--yes"},
			func(c *cluster) { *c = cluster{masters: map[string]bool{}, pools: map[string]bool{}} }},
	}
	for _, s := range tail {
		if err := w.hakube(ctx, s.title, s.env, s.args...); err != nil {
			return err
		}
		s.after(&state)
		if err := w.check(ctx, state); err != nil {
			return fmt.Errorf("after %q: %w", s.title, err)
		}
	}
	if err := w.kubeconfigGone(ctx); err != nil {
		return err
	}
	w.summary()
	return nil
}

// startEmulator runs gce-emulator and reads its endpoint from stdout's first line.
func (w *walk) startEmulator(ctx context.Context) (func(), error) {
	args := []string{"--project", w.o.project, "--latency", "realistic", "--time-scale", strconv.FormatFloat(w.o.timeScale, 'g', -1, 64),
		"--kubernetes", "--kube-binary", w.o.kubeBinary, "--state-dir", filepath.Join(w.home, "emulator"), "--ssh-port", strconv.Itoa(w.o.sshPort)}
	if w.o.externalRange != "" {
		args = append(args, "--external-range", w.o.externalRange, "--internal-range", w.o.internalRange)
	}
	emu, err := harness.Start(ctx, w.o.emulator, args...)
	if err != nil {
		return nil, err
	}
	w.endpoint, w.ctl, w.svc = emu.Endpoint, emu.Control, emu.Compute
	return emu.Stop, nil
}

// hakube runs one hakube command with kube-up variables, as CI would.
func (w *walk) hakube(ctx context.Context, title string, env []string, args ...string) error {
	fmt.Fprintf(w.out, "== %s\n   $ %s hakube %s\n", title, strings.Join(env, " "), strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, w.o.hakube, append(args, "-o", "json")...)
	cmd.Env = append(w.env(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if w.o.verbose || err != nil {
		fmt.Fprint(w.out, harness.Indent(stderr.String(), "   | "))
	} else {
		for _, l := range strings.Split(stderr.String(), "\n") {
			if strings.HasPrefix(l, " ✓") || strings.HasPrefix(l, " ✗") {
				fmt.Fprintf(w.out, "   %s\n", l)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("hakube %s: %v", strings.Join(args, " "), err)
	}
	var rep report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		return fmt.Errorf("hakube -o json printed no report: %v\n%s", err, stdout.String())
	}
	r := row{step: title, took: took, apiCalls: rep.APICalls, outage: "-"}
	var outages []string
	for _, mv := range rep.Outages {
		s := time.Duration(mv.OutageNs).Round(10 * time.Millisecond).String()
		if mv.Reverted {
			s += " (reverted)"
		}
		outages = append(outages, s)
		if mv.Measured != "" {
			w.measured = mv.Measured
		}
	}
	if len(outages) > 0 {
		r.outage = strings.Join(outages, ", ")
	}
	note := ""
	if rep.NothingToDo {
		note = ", nothing to do"
	}
	fmt.Fprintf(w.out, "   done in %s, %d Compute API calls%s, outage %s\n\n", took.Round(10*time.Millisecond), rep.APICalls, note, r.outage)
	w.rows = append(w.rows, r)
	return nil
}

// env is what every hakube command of the walkthrough runs with: where the
// emulator is, and nothing else hakube reads.
func (w *walk) env() []string {
	env := append(harness.CleanEnv(), w.homeEnv()...)
	env = append(env, "PROJECT="+w.o.project, "HAKUBE_APISERVER_PORT="+strconv.Itoa(w.o.apiPort), "HAKUBE_SSH_PORT="+strconv.Itoa(w.o.sshPort))
	return append(env, harness.KubeTestArgs...)
}

func (w *walk) status(ctx context.Context, title string) error {
	cmd := exec.CommandContext(ctx, w.o.hakube, "status", "--zone", zoneB)
	cmd.Env = w.env()
	b, err := cmd.CombinedOutput()
	fmt.Fprintf(w.out, "== %s\n   $ hakube status\n%s\n", title, harness.Indent(string(b), "   "))
	if err != nil {
		return fmt.Errorf("hakube status: %v", err)
	}
	return nil
}

func (w *walk) masterIn(ctx context.Context, zone string) (*compute.Instance, error) {
	l, err := w.svc.Instances.List(w.o.project, zone).Filter(`labels.hakube-role = "master"`).Context(ctx).Do()
	if err != nil {
		return nil, err
	}
	if len(l.Items) != 1 {
		return nil, fmt.Errorf("want one master in %s, found %d", zone, len(l.Items))
	}
	return l.Items[0], nil
}

func (w *walk) until(ctx context.Context, what string, cond func() bool) error {
	return w.untilFor(ctx, 2*time.Minute, what, cond)
}

func (w *walk) untilFor(ctx context.Context, bound time.Duration, what string, cond func() bool) error {
	if bound == 0 {
		bound = 3 * time.Minute
	}
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting until %s", what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// check compares the whole inventory with what the cluster state promises,
// and probes the static IP.
func (w *walk) check(ctx context.Context, c cluster) error {
	got, err := w.inventory(ctx)
	if err != nil {
		return err
	}
	want := map[string]int{}
	for k, v := range w.baseline {
		want[k] = v
	}
	if c.exists {
		add := func(k string, n int) { want[k] += n }
		add("regions/"+region+"/addresses/kubernetes-master-ip", 1)
		for _, fw := range []string{"kubernetes-master-https", "kubernetes-master-etcd", "kubernetes-minion-all",
			"kubernetes-default-internal-master", "kubernetes-default-internal-node", "default-default-ssh"} {
			add("global/firewalls/"+fw, 1)
		}
		if len(c.pools) > 0 {
			add("global/instanceTemplates/kubernetes-minion-template", 1)
		}
		for z := range c.pools {
			add("zones/"+z+"/instanceGroupManagers/kubernetes-minion-group", 1)
			add("zones/"+z+"/instanceGroups/kubernetes-minion-group", 1)
			add("zones/"+z+"/instances/kubernetes-minion-group-*", 3)
			add("zones/"+z+"/disks/kubernetes-minion-group-*", 3)
		}
		for z := range c.masters {
			name := "kubernetes-master-*"
			if z == zoneB {
				name = "kubernetes-master"
			}
			add("zones/"+z+"/instances/"+name, 1)
			add("zones/"+z+"/disks/"+name, 1)       // boot disk
			add("zones/"+z+"/disks/"+name+"-pd", 1) // etcd data
			add("regions/"+region+"/addresses/"+name+"-internal", 1)
		}
		if c.lb {
			add("global/httpHealthChecks/kubernetes-master", 1)
			add("regions/"+region+"/targetPools/kubernetes-master", 1)
			add("regions/"+region+"/forwardingRules/kubernetes-master", 1)
		}
	}
	if diff := diffCounts(want, got); diff != "" {
		return fmt.Errorf("inventory differs from what the flow promised:\n%s", diff)
	}
	if !c.exists {
		fmt.Fprintf(w.out, "   inventory: the project holds exactly what it held before the first up\n\n")
		return nil
	}
	if err := w.serveCheck(ctx, 5); err != nil {
		return err
	}
	if err := w.statusCheck(ctx, c); err != nil {
		return err
	}
	if err := w.nodesCheck(ctx, c, "", false); err != nil {
		return err
	}
	if err := w.etcdCheck(ctx, c, ""); err != nil {
		return err
	}
	health := ""
	if c.lb {
		health = ", every master HEALTHY in the load balancer"
	}
	fmt.Fprintf(w.out, "   inventory: as promised (%d cluster resources); the static IP serves the API; status agrees%s\n", total(got)-total(w.baseline), health)
	fmt.Fprintf(w.out, "   kubectl: %d masters Ready,SchedulingDisabled, %d nodes Ready; etcd: %d voting members, no phantom\n\n", len(c.masters), 3*len(c.pools), w.lastMembers)
	return nil
}

// status is the part of `hakube status -o json` the walkthrough reads.
type status struct {
	Mode     string `json:"mode"`
	StaticIP struct {
		Owner   string `json:"owner"`
		Serving bool   `json:"serving"`
	} `json:"staticIP"`
	LoadBalancer *struct {
		ForwardingRule string `json:"forwardingRule"`
	} `json:"loadBalancer"`
	Zones []struct {
		Zone    string `json:"zone"`
		Masters []struct {
			Name   string `json:"name"`
			Health string `json:"health"`
			InPool bool   `json:"inPool"`
		} `json:"masters"`
		Pool *struct {
			TargetSize int `json:"targetSize"`
			Running    int `json:"running"`
		} `json:"pool"`
	} `json:"zones"`
	Etcd *struct {
		Members []struct {
			Name    string `json:"name"`
			Learner bool   `json:"learner"`
			Healthy bool   `json:"healthy"`
		} `json:"members"`
		Phantoms []string `json:"phantoms"`
		Error    string   `json:"error"`
	} `json:"etcd"`
}

func (w *walk) readStatus(ctx context.Context) (*status, error) {
	cmd := exec.CommandContext(ctx, w.o.hakube, "status", "-o", "json", "--zone", zoneB)
	cmd.Env = w.env()
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("hakube status -o json: %v", err)
	}
	var st status
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("hakube status -o json: %v", err)
	}
	return &st, nil
}

// statusCheck compares `hakube status -o json` with what the flows promised:
// replicas and pools per zone, the load balancer, who holds the IP, and
// (with the load balancer) every master in the pool and HEALTHY.
func (w *walk) statusCheck(ctx context.Context, c cluster) error {
	st, err := w.readStatus(ctx)
	if err != nil {
		return err
	}
	masters, pools := map[string]bool{}, map[string]bool{}
	for _, z := range st.Zones {
		if len(z.Masters) > 0 {
			masters[z.Zone] = true
		}
		if z.Pool != nil && z.Pool.Running == z.Pool.TargetSize {
			pools[z.Zone] = true
		}
	}
	owner, mode := "instance kubernetes-master", "single-master"
	if c.lb {
		owner, mode = "forwarding-rule kubernetes-master", "load-balanced"
	}
	switch {
	case fmt.Sprint(masters) != fmt.Sprint(c.masters):
		return fmt.Errorf("status shows masters in %v, want %v", masters, c.masters)
	case fmt.Sprint(pools) != fmt.Sprint(c.pools):
		return fmt.Errorf("status shows complete pools in %v, want %v", pools, c.pools)
	case st.StaticIP.Owner != owner || !st.StaticIP.Serving:
		return fmt.Errorf("status shows the static IP held by %q (serving %v), want %q serving", st.StaticIP.Owner, st.StaticIP.Serving, owner)
	case st.Mode != mode || (st.LoadBalancer != nil && st.LoadBalancer.ForwardingRule != "") != c.lb:
		return fmt.Errorf("status shows mode %q, load balancer %+v; want %q", st.Mode, st.LoadBalancer, mode)
	}
	if !c.lb {
		return nil
	}
	return w.waitHealth(ctx, st, nil)
}

// waitHealth waits until `hakube status` shows every master in the target
// pool with the health want gives it (HEALTHY unless listed), re-reading
// status up to options.healthWait, and fails with what it last saw. st is
// a first reading, or nil.
func (w *walk) waitHealth(ctx context.Context, st *status, want map[string]string) error {
	bound := w.o.healthWait
	if bound == 0 {
		bound = time.Minute
	}
	deadline := time.Now().Add(bound)
	for {
		if st == nil {
			var err error
			if st, err = w.readStatus(ctx); err != nil {
				return err
			}
		}
		saw, ok := map[string]string{}, true
		for _, z := range st.Zones {
			for _, m := range z.Masters {
				h := m.Health
				if !m.InPool {
					h = "not in the pool"
				}
				saw[m.Name] = h
				ok = ok && h == orHealthy(want[m.Name])
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("status shows the masters' load-balancer health as %v after %s; want every master HEALTHY except %v", saw, bound, want)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		st = nil
	}
}

func orHealthy(h string) string {
	if h == "" {
		return "HEALTHY"
	}
	return h
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

var randomSuffix = regexp.MustCompile(`^(kubernetes-(master|minion-group))-[a-z0-9]{3,4}(-pd|-internal)?$`)

// inventory reads every resource and folds random names into patterns.
func (w *walk) inventory(ctx context.Context) (map[string]int, error) {
	inv, err := w.ctl.Inventory(ctx, w.o.project)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	prefix := "projects/" + w.o.project + "/"
	for _, name := range inv.Names() {
		name = strings.TrimPrefix(name, prefix)
		i := strings.LastIndexByte(name, '/')
		base := name[i+1:]
		coll := name[:i]
		folded := strings.HasSuffix(coll, "/instances") || strings.HasSuffix(coll, "/disks") || strings.HasSuffix(coll, "/addresses")
		if m := randomSuffix.FindStringSubmatch(base); m != nil && folded {
			base = m[1] + "-*" + m[3]
		}
		out[name[:i+1]+base]++
	}
	// The default network's route has a random name too.
	for k, v := range out {
		if strings.HasPrefix(k, "global/routes/default-route-") {
			delete(out, k)
			out["global/routes/default-route-*"] += v
		}
	}
	return out, nil
}

func diffCounts(want, got map[string]int) string {
	keys := map[string]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	var sorted []string
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	var b strings.Builder
	for _, k := range sorted {
		if want[k] != got[k] {
			fmt.Fprintf(&b, "     %s: want %d, have %d\n", k, want[k], got[k])
		}
	}
	return b.String()
}

// serveCheck makes n TLS requests to the static IP, verified against the
// cluster CA, and wants every one to succeed.
func (w *walk) serveCheck(ctx context.Context, n int) error {
	addr, err := w.svc.Addresses.Get(w.o.project, region, "kubernetes-master-ip").Context(ctx).Do()
	if err != nil {
		return err
	}
	ca, err := w.clusterCA(ctx)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	for i := 0; i < n; i++ {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: addr.Address}, DisableKeepAlives: true}
		client := &http.Client{Transport: tr, Timeout: 3 * time.Second}
		resp, err := client.Get("https://" + net.JoinHostPort(addr.Address, strconv.Itoa(w.o.apiPort)) + "/healthz")
		if err != nil {
			return fmt.Errorf("static IP %s does not serve: %v", addr.Address, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("static IP %s answered %s", addr.Address, resp.Status)
		}
	}
	return nil
}

// clusterCA reads the CA from a master's kube-master-certs metadata.
func (w *walk) clusterCA(ctx context.Context) ([]byte, error) {
	l, err := w.svc.Instances.AggregatedList(w.o.project).Filter(`labels.hakube-role = "master"`).Context(ctx).Do()
	if err != nil {
		return nil, err
	}
	for _, scoped := range l.Items {
		for _, in := range scoped.Instances {
			for _, it := range in.Metadata.Items {
				if it.Key != "kube-master-certs" || it.Value == nil {
					continue
				}
				for _, line := range strings.Split(*it.Value, "\n") {
					if v, ok := strings.CutPrefix(line, "CA_CERT: "); ok {
						return base64.StdEncoding.DecodeString(strings.Trim(v, "'"))
					}
				}
			}
		}
	}
	return nil, errors.New("no master carries kube-master-certs")
}

func (w *walk) summary() {
	fmt.Fprintln(w.out, "Summary")
	tw := tabwriter.NewWriter(w.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  STEP\tDURATION\tAPI CALLS\tOUTAGE")
	var sum time.Duration
	calls := 0
	for _, r := range w.rows {
		sum += r.took
		calls += r.apiCalls
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\n", r.step, r.took.Round(10*time.Millisecond), r.apiCalls, r.outage)
	}
	fmt.Fprintf(tw, "  total\t%s\t%d\t\n", sum.Round(10*time.Millisecond), calls)
	_ = tw.Flush()
	if w.measured != "" {
		fmt.Fprintf(w.out, "\nOutages are the time the static IP did not answer, as hakube measured it: %s.", w.measured)
	}
	fmt.Fprintf(w.out, "\nDurations are at the emulator's realistic latency scaled by %g; multiply by %g for real GCE.\n", w.o.timeScale, 1/w.o.timeScale)
}
