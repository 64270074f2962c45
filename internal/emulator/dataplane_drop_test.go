package emulator_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	compute "google.golang.org/api/compute/v1"

	"github.com/hakube/hakube/internal/emulator"
)

// dialOutcome is what a client sees when it connects to ip:port: "refused",
// "timeout", "connected" or the error itself.
func dialOutcome(ip string, port int, timeout time.Duration) string {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, fmt.Sprint(port)), timeout)
	switch {
	case err == nil:
		c.Close()
		return "connected"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case isTimeout(err):
		return "timeout"
	}
	return err.Error()
}

// httpOutcome is what an HTTP client with a deadline sees.
func httpOutcome(ip string, port int, timeout time.Duration) string {
	c := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: timeout}
	resp, err := c.Get(fmt.Sprintf("http://%s/healthz", net.JoinHostPort(ip, fmt.Sprint(port))))
	switch {
	case err == nil:
		resp.Body.Close()
		return "answered"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case isTimeout(err):
		return "timeout"
	}
	return err.Error()
}

// curlOutcome runs kube-up's probe, curl -m1, and returns its exit code.
func curlOutcome(t *testing.T, ip string, port int) string {
	t.Helper()
	out, err := exec.Command("curl", "-sS", "-m1", "-o", "/dev/null", fmt.Sprintf("http://%s/healthz", net.JoinHostPort(ip, fmt.Sprint(port)))).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return "answered"
	case errors.As(err, &ee) && ee.ExitCode() == 7:
		return "refused" // "Couldn't connect to server"
	case errors.As(err, &ee) && ee.ExitCode() == 28:
		return "timeout"
	}
	return fmt.Sprintf("%v: %s", err, out)
}

// TestDataPlanePropagatingRuleDrops: between a forwarding rule's insert and
// the end of its propagation GCE does not answer on the rule's IP at all, so
// a client's connect times out; it is never refused. Once the rule forwards,
// a client still retransmitting its SYN gets through.
func TestDataPlanePropagatingRuleDrops(t *testing.T) {
	t.Parallel()
	// fast/200 × 10: propagation takes 2–4 s, time for a few 1 s probes.
	e := startDP(t, 10)
	e.waitOp(t, e.startVM(t, vmSpec{name: "m1", master: true}), nil)
	m1 := e.instance(t, dpZone, "m1")
	op, err := e.svc.TargetPools.Insert(dpProject, dpRegion, &compute.TargetPool{Name: "masters", Instances: []string{m1.SelfLink}}).Do()
	e.waitOp(t, op, err)
	op, err = e.svc.ForwardingRules.Insert(dpProject, dpRegion, &compute.ForwardingRule{
		Name: "master-lb", PortRange: fmt.Sprint(hcPort), Target: op.TargetLink}).Do()
	e.waitOp(t, op, err)
	fr, err := e.svc.ForwardingRules.Get(dpProject, dpRegion, "master-lb").Do()
	if err != nil {
		t.Fatal(err)
	}
	rs := e.ruleState(t, fr.SelfLink)
	if rs.State != "propagating" {
		t.Fatalf("rule state after its insert: %+v, want propagating", rs)
	}
	ip := fr.IPAddress
	unused := e.internalIP(200) // nothing is bound there

	clients := []struct {
		name string
		try  func(ip string) string
	}{
		{"Go dial, 300 ms timeout", func(ip string) string { return dialOutcome(ip, hcPort, 300*time.Millisecond) }},
		{"Go HTTP client, 300 ms timeout", func(ip string) string { return httpOutcome(ip, hcPort, 300*time.Millisecond) }},
	}
	if _, err := exec.LookPath("curl"); err == nil {
		clients = append(clients, struct {
			name string
			try  func(ip string) string
		}{"curl -m1", func(ip string) string { return curlOutcome(t, ip, hcPort) }})
	}
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			// A client that cannot finish before the rule forwards proves nothing.
			if time.Until(rs.ReadyAt) < 1200*time.Millisecond {
				t.Skipf("propagation ends in %v, too soon to probe", time.Until(rs.ReadyAt))
			}
			got := map[string]string{"propagating rule": c.try(ip), "unused IP": c.try(unused)}
			want := map[string]string{"propagating rule": "timeout", "unused IP": "refused"}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("outcomes (-want +got):\n%s", d)
			}
		})
	}

	// The control API says the port is held and dropping.
	var ports []emulator.DataPlanePort
	answers := ""
	for _, a := range e.dataPlane(t).Addresses {
		if a.IP == ip {
			ports, answers = a.Ports, a.Answers
		}
	}
	if time.Now().Before(rs.ReadyAt) {
		want := []emulator.DataPlanePort{{Port: hcPort, Protocol: "tcp", Dropping: true}}
		if d := cmp.Diff(want, ports); d != "" || answers != "nothing" {
			t.Errorf("control API for %s: answers %q, ports (-want +got):\n%s", ip, answers, d)
		}
	}

	// A connect still waiting when the rule starts forwarding gets through
	// on its SYN's retransmission instead of being refused.
	if wait := time.Until(rs.ReadyAt) - 300*time.Millisecond; wait > 0 {
		time.Sleep(wait)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort(ip, fmt.Sprint(hcPort)))
	if err != nil {
		t.Fatalf("a connect across the end of propagation: %v after %v", err, time.Since(start))
	}
	c.Close()
	t.Logf("connected %v after dialing, %v after the rule was ready", time.Since(start), time.Since(rs.ReadyAt))
	eventually(t, 2*time.Second, "the rule forwards to m1's health-check port", func() bool {
		return httpOutcome(ip, hcPort, time.Second) == "answered"
	})
	if st := e.ruleState(t, fr.SelfLink).State; st != "forwarding" {
		t.Errorf("rule state %q, want forwarding", st)
	}
	for _, a := range e.dataPlane(t).Addresses {
		if a.IP == ip {
			if want := []emulator.DataPlanePort{{Port: hcPort, Protocol: "tcp", Listening: true}}; !cmp.Equal(want, a.Ports) || a.Answers != "forwardingRule" {
				t.Errorf("control API once forwarding: answers %q ports %+v", a.Answers, a.Ports)
			}
		}
	}

	// Deleting the rule frees the IP: refused again, as for any unused IP.
	op, err = e.svc.ForwardingRules.Delete(dpProject, dpRegion, "master-lb").Do()
	e.waitOp(t, op, err)
	eventually(t, prompt, "the deleted rule's IP refuses", func() bool { return dialOutcome(ip, hcPort, time.Second) == "refused" })
}
