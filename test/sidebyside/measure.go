package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/hakube/hakube/test/internal/harness"
)

// measured is one tool's run of one flow.
type measured struct {
	wall                     time.Duration
	requests, mutations, ops int64
	invocations              int // gcloud or hakube processes
	cpu                      time.Duration
	outage                   time.Duration
	failedProbes             int
	probed                   bool
}

type row struct {
	flow      flow
	m         [2][]measured // kube-up, hakube: one per repetition
	floor     float64       // GCE seconds
	floorPath string
}

// run runs the tool's command for f, with the static IP probed while it
// runs when the flow moves it.
func (s *side) run(ctx context.Context, o options, f flow, out io.Writer) (measured, error) {
	var m measured
	mark, err := s.emu.Control.Mark(ctx)
	if err != nil {
		return m, err
	}
	var p *probe
	if f.outage {
		ip, err := s.staticIP(ctx)
		if err != nil {
			return m, err
		}
		p = startProbe(ip, o.apiPort)
	}
	bin, args := s.command(f)
	log := filepath.Join(s.home, "gcloud-calls")
	_ = os.Remove(log)
	cmd := exec.CommandContext(ctx, bin, args...)
	// The script's own variables go too: each flow runs with exactly its own.
	env := harness.CleanEnv("INSTANCE_PREFIX", "APISERVER_PORT", "NETWORK", "GCLOUD_LOG")
	env = append(env, "HOME="+s.home, "GCLOUD_LOG="+log, "KUBECONFIG="+filepath.Join(s.home, "kubeconfig"))
	env = append(env, harness.GcloudEnv(s.emu.Endpoint, project, filepath.Join(s.home, "gcloud"))...)
	cmd.Env = append(append(env, s.env...), f.env...)
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	start := time.Now()
	err = cmd.Run()
	m.wall = time.Since(start)
	if p != nil {
		m.outage, m.failedProbes = p.stop()
		m.probed = true
	}
	if o.verbose || err != nil {
		fmt.Fprintf(out, "   | %s %s\n%s", s.name, f.name, harness.Indent(output.String(), "   | "))
	}
	if err != nil {
		return m, fmt.Errorf("%s %s: %w", bin, strings.Join(args, " "), err)
	}
	m.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	m.invocations = 1
	if b, err := os.ReadFile(log); err == nil {
		m.invocations = strings.Count(string(b), "\n")
	}
	rc, err := s.emu.Control.RequestsSince(ctx, mark)
	if err != nil {
		return m, err
	}
	m.requests, m.mutations, m.ops = harness.Classify(rc.Counts)
	if o.verbose {
		fmt.Fprintf(out, "   | %s %s requests: %s\n", s.name, f.name, harness.PerMethod(rc.Counts))
	}
	return m, nil
}

func (s *side) staticIP(ctx context.Context) (string, error) {
	a, err := s.emu.Compute.Addresses.Get(project, "europe-west1", "kubernetes-master-ip").Context(ctx).Do()
	if err != nil {
		return "", fmt.Errorf("%s's static IP: %w", s.name, err)
	}
	return a.Address, nil
}

// leftovers fails when the teardown left anything of the cluster behind.
func (s *side) leftovers(ctx context.Context) error {
	left, err := s.emu.Leftovers(ctx, project, "kubernetes")
	if err != nil {
		return err
	}
	if len(left) > 0 {
		return fmt.Errorf("%s left %s behind", s.name, strings.Join(left, ", "))
	}
	return nil
}

// probe asks https://ip:port/healthz every 100 ms; any HTTP answer counts
// (kube-up's wait counts a 401 too). The outage is the time from the first
// probe of a failing run to the first probe that answered after it.
type probe struct {
	stopc chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	down  time.Duration
	fails int
}

func startProbe(ip string, port int) *probe {
	p := &probe{stopc: make(chan struct{})}
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // reachability only
		DisableKeepAlives: true,
	}}
	url := "https://" + net.JoinHostPort(ip, strconv.Itoa(port)) + "/healthz"
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		var since time.Time
		for {
			sent := time.Now()
			resp, err := client.Get(url)
			if err == nil {
				resp.Body.Close()
			}
			p.mu.Lock()
			switch {
			case err != nil:
				p.fails++
				if since.IsZero() {
					since = sent
				}
			case !since.IsZero():
				p.down += sent.Sub(since)
				since = time.Time{}
			}
			p.mu.Unlock()
			select {
			case <-p.stopc:
				if !since.IsZero() {
					p.mu.Lock()
					p.down += time.Since(since)
					p.mu.Unlock()
				}
				return
			case <-t.C:
			}
		}
	}()
	return p
}

func (p *probe) stop() (time.Duration, int) {
	close(p.stopc)
	p.wg.Wait()
	return p.down, p.fails
}

// each joins one figure of every repetition with " / ".
func each(ms []measured, f func(measured) string) string {
	var parts []string
	for _, m := range ms {
		parts = append(parts, f(m))
	}
	return strings.Join(parts, " / ")
}

// mean is the repetitions' mean of one figure.
func mean(ms []measured, f func(measured) float64) float64 {
	var sum float64
	for _, m := range ms {
		sum += f(m)
	}
	return sum / float64(len(ms))
}

func printTables(out io.Writer, o options, rows []row) {
	secs := func(d time.Duration) string { return strconv.FormatFloat(d.Seconds()/o.timeScale, 'f', 1, 64) }
	wall := func(m measured) string { return secs(m.wall) }
	wallS := func(m measured) float64 { return m.wall.Seconds() / o.timeScale }
	outage := func(m measured) string {
		if !m.probed {
			return "—"
		}
		return fmt.Sprintf("%s (%d)", secs(m.outage), m.failedProbes)
	}
	reqs := func(m measured) string { return fmt.Sprintf("%d/%d/%d", m.requests, m.mutations, m.ops) }
	unit := "GCE seconds"
	if o.latency != "realistic" {
		unit = "seconds (the critical path is GCE's, so only at realistic latency)"
	}
	fmt.Fprintf(out, "Wall time and outages in %s (latency %s, time scale %g; repetitions joined by /); requests all/mutations/operation polls; outage: the static IP unanswered (failed probes, every 100 ms)\n\n", unit, o.latency, o.timeScale)
	tw := tabwriter.NewWriter(out, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "flow\tkube-up\thakube\tratio\tcritical path\thakube/path\tkube-up requests\thakube requests\tkube-up outage\thakube outage\t")
	for _, r := range rows {
		ku, hk := r.m[0], r.m[1]
		ratio := mean(ku, wallS) / mean(hk, wallS)
		path, overPath := "—", "—"
		if r.floor > 0 && o.latency == "realistic" {
			path = strconv.FormatFloat(r.floor, 'f', 1, 64)
			overPath = strconv.FormatFloat(mean(hk, wallS)/r.floor, 'f', 2, 64)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f×\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.flow.name, each(ku, wall), each(hk, wall), ratio, path, overPath,
			each(ku, reqs), each(hk, reqs), each(ku, outage), each(hk, outage))
	}
	tw.Flush()
	if o.latency == "realistic" {
		fmt.Fprintln(out, "\nCritical paths (the chain that is longest most often):")
	}
	for _, r := range rows {
		if r.floorPath != "" && o.latency == "realistic" {
			fmt.Fprintf(out, "  %s: %s\n", r.flow.name, r.floorPath)
		}
	}
	fmt.Fprintln(out, "\nCPU (this machine's seconds, user+system, each tool's processes and their children; not the emulators'; means of the repetitions)")
	tw = tabwriter.NewWriter(out, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "flow\tkube-up gcloud calls\tkube-up CPU\tper gcloud call\thakube CPU\t")
	for _, r := range rows {
		ku, hk := r.m[0], r.m[1]
		calls := mean(ku, func(m measured) float64 { return float64(m.invocations) })
		cpu := mean(ku, func(m measured) float64 { return m.cpu.Seconds() })
		per := 0.0
		if calls > 0 {
			per = cpu / calls
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f s\t%.2f s\t%.2f s\t\n", r.flow.name, calls, cpu, per, mean(hk, func(m measured) float64 { return m.cpu.Seconds() }))
	}
	tw.Flush()
}
