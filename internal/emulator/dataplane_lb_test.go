// The data plane's load balancing: forwarding rules, pools, health checks.

package emulator_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/hakube/hakube/internal/emulator"
	compute "google.golang.org/api/compute/v1"
)

func TestDataPlaneAddressMovesFromVMToForwardingRule(t *testing.T) {
	t.Parallel()
	e := startDP(t, 0.5)
	op, err := e.svc.Addresses.Insert(dpProject, dpRegion, &compute.Address{Name: "master-ip"}).Do()
	e.waitOp(t, op, err)
	addr, err := e.svc.Addresses.Get(dpProject, dpRegion, "master-ip").Do()
	if err != nil {
		t.Fatal(err)
	}
	ip := addr.Address
	e.waitOp(t, e.startVM(t, vmSpec{name: "m1", master: true, natIP: ip}), nil)
	m1 := e.instance(t, dpZone, "m1")
	eventually(t, 3*time.Second, "m1 answers on the static IP", answeredBy(ip, apiPort, "m1"))

	op, err = e.svc.TargetPools.Insert(dpProject, dpRegion, &compute.TargetPool{Name: "masters", Instances: []string{m1.SelfLink}}).Do()
	e.waitOp(t, op, err)
	tp, err := e.svc.TargetPools.Get(dpProject, dpRegion, "masters").Do()
	if err != nil {
		t.Fatal(err)
	}

	// Detach: the IP refuses at once.
	op, err = e.svc.Instances.DeleteAccessConfig(dpProject, dpZone, "m1", "external-nat", "nic0").Do()
	e.waitOp(t, op, err)
	detached := eventually(t, prompt, "the detached IP refuses", func() bool { return refused(ip, apiPort) })

	// The forwarding rule takes it over, but forwards only after propagation.
	op, err = e.svc.ForwardingRules.Insert(dpProject, dpRegion, &compute.ForwardingRule{
		Name: "master-lb", IPAddress: ip, IPProtocol: "TCP", PortRange: fmt.Sprint(apiPort), Target: tp.SelfLink}).Do()
	if err != nil {
		t.Fatal(err)
	}
	// Propagation starts when the insert is DONE, not when it is accepted.
	pending := e.ruleState(t, op.TargetLink)
	if cur, err := e.svc.RegionOperations.Get(dpProject, dpRegion, op.Name).Do(); err == nil && cur.Status != "DONE" && pending.State != "pending" {
		t.Errorf("rule state while its insert runs = %+v, want pending", pending)
	}
	e.waitOp(t, op, nil)
	fr, err := e.svc.ForwardingRules.Get(dpProject, dpRegion, "master-lb").Do()
	if err != nil {
		t.Fatal(err)
	}
	rs := e.ruleState(t, fr.SelfLink)
	if rs.State != "propagating" || rs.ReadyAt.IsZero() {
		t.Fatalf("rule state right after insert: %+v, want propagating with a ready time", rs)
	}
	// While it propagates connections hang (TestDataPlanePropagatingRuleDrops);
	// one made then is answered once the rule forwards.
	reached := eventually(t, 3*time.Second, "the rule forwards to m1", answeredBy(ip, apiPort, "m1"))
	if reached.Before(rs.ReadyAt) {
		t.Errorf("forwarding answered at %v, before propagation completes at %v", reached, rs.ReadyAt)
	}
	t.Logf("blackout %v, propagation ready %v after detach", reached.Sub(detached), rs.ReadyAt.Sub(detached))
	if got := e.ruleState(t, fr.SelfLink).State; got != "forwarding" {
		t.Errorf("rule state after propagation = %q, want forwarding", got)
	}
	var ctlAddr emulator.DataPlaneAddress
	for _, a := range e.dataPlane(t).Addresses {
		if a.IP == ip {
			ctlAddr = a
		}
	}
	if ctlAddr.Answers != "forwardingRule" || ctlAddr.ForwardingRule != fr.SelfLink || ctlAddr.Holder != addr.SelfLink && ctlAddr.Holder != fr.SelfLink {
		t.Errorf("control API for %s = %+v, want the forwarding rule answering", ip, ctlAddr)
	}

	// An established connection through the rule, kept open.
	held, err := tls.Dial("tcp", net.JoinHostPort(ip, fmt.Sprint(apiPort)), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("connection through the rule: %v", err)
	}
	defer held.Close()

	// Deleting the rule stops forwarding at once and cuts what it carried.
	op, err = e.svc.ForwardingRules.Delete(dpProject, dpRegion, "master-lb").Do()
	e.waitOp(t, op, err)
	eventually(t, prompt, "the deleted rule's IP refuses", func() bool { return refused(ip, apiPort) })
	_ = held.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := held.Read(make([]byte, 1)); err == nil || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		t.Errorf("connection through the deleted rule still open (read: %v)", err)
	}
}

// lbSetup makes masters m1 (and m2) in zones, a pool of them with an
// optional legacy HTTP health check, and a forwarding rule on an ephemeral
// IP; it returns the rule's IP once it forwards.
func (e *dpEnv) lbSetup(t *testing.T, zones map[string]string, withCheck bool) (ip string, pool *compute.TargetPool, vms map[string]*compute.Instance) {
	t.Helper()
	var ops []*compute.Operation
	names := []string{}
	for name, zone := range zones {
		ops = append(ops, e.startVM(t, vmSpec{name: name, zone: zone, master: true}))
		names = append(names, name)
	}
	tp := &compute.TargetPool{Name: "masters"}
	if withCheck {
		op, err := e.svc.HttpHealthChecks.Insert(dpProject, &compute.HttpHealthCheck{Name: "masters-hc", Port: hcPort, RequestPath: "/healthz"}).Do()
		e.waitOp(t, op, err)
		hc, err := e.svc.HttpHealthChecks.Get(dpProject, "masters-hc").Do()
		if err != nil {
			t.Fatal(err)
		}
		tp.HealthChecks = []string{hc.SelfLink}
	}
	for _, op := range ops {
		e.waitOp(t, op, nil)
	}
	vms = map[string]*compute.Instance{}
	for name, zone := range zones {
		vms[name] = e.instance(t, zone, name)
		tp.Instances = append(tp.Instances, vms[name].SelfLink)
	}
	op, err := e.svc.TargetPools.Insert(dpProject, dpRegion, tp).Do()
	e.waitOp(t, op, err)
	pool, err = e.svc.TargetPools.Get(dpProject, dpRegion, "masters").Do()
	if err != nil {
		t.Fatal(err)
	}
	op, err = e.svc.ForwardingRules.Insert(dpProject, dpRegion, &compute.ForwardingRule{
		Name: "master-lb", PortRange: fmt.Sprint(apiPort), Target: pool.SelfLink}).Do()
	e.waitOp(t, op, err)
	fr, err := e.svc.ForwardingRules.Get(dpProject, dpRegion, "master-lb").Do()
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "the rule forwards and every member answers", func() bool {
		if e.ruleState(t, fr.SelfLink).State != "forwarding" {
			return false
		}
		for _, name := range names {
			if !answeredBy(internalOf(vms[name]), apiPort, name)() {
				return false
			}
		}
		return true
	})
	return fr.IPAddress, pool, vms
}

func (e *dpEnv) getHealth(t *testing.T, pool, instance string) string {
	t.Helper()
	h, err := e.svc.TargetPools.GetHealth(dpProject, dpRegion, pool, &compute.InstanceReference{Instance: instance}).Do()
	if err != nil {
		t.Fatalf("getHealth %s: %v", instance, err)
	}
	if len(h.HealthStatus) != 1 {
		t.Fatalf("getHealth %s: %d statuses", instance, len(h.HealthStatus))
	}
	return h.HealthStatus[0].HealthState
}

func TestDataPlaneHealthCheckedPool(t *testing.T) {
	t.Parallel()
	e := startDP(t, 0.5)
	ip, pool, vms := e.lbSetup(t, map[string]string{"m1": dpZone, "m2": dpZone2}, true)
	m1, m2 := vms["m1"].SelfLink, vms["m2"].SelfLink
	eventually(t, 3*time.Second, "both members HEALTHY in getHealth", func() bool {
		return e.getHealth(t, "masters", m1) == "HEALTHY" && e.getHealth(t, "masters", m2) == "HEALTHY"
	})
	if got := spread(ip, apiPort, 20); got["m1"] == 0 || got["m2"] == 0 || got[""] != 0 {
		t.Errorf("connections over two healthy members = %v, want both and no failure", got)
	}

	// A stopped member leaves rotation once the check marks it down.
	op, err := e.svc.Instances.Stop(dpProject, dpZone2, "m2").Do()
	e.waitOp(t, op, err)
	eventually(t, 3*time.Second, "the checker marks stopped m2 UNHEALTHY", func() bool {
		return e.memberHealth(t, pool.SelfLink, m2).Health == "UNHEALTHY"
	})
	if m := e.memberHealth(t, pool.SelfLink, m2); m.LastError == "" || m.LastProbe.IsZero() {
		t.Errorf("control API for the down member = %+v, want its last probe and error", m)
	}
	if got := spread(ip, apiPort, 20); got["m1"] != 20 {
		t.Errorf("connections with m2 down = %v, want all 20 on m1", got)
	}

	// Started again, it comes back once it boots and passes the check.
	op, err = e.svc.Instances.Start(dpProject, dpZone2, "m2").Do()
	e.waitOp(t, op, err)
	eventually(t, 3*time.Second, "m2 HEALTHY again", func() bool { return e.getHealth(t, "masters", m2) == "HEALTHY" })
	if got := spread(ip, apiPort, 20); got["m2"] == 0 || got[""] != 0 {
		t.Errorf("connections after m2 started = %v, want m2 back and no failure", got)
	}

	// Membership changes apply to new connections.
	op, err = e.svc.TargetPools.RemoveInstance(dpProject, dpRegion, "masters", &compute.TargetPoolsRemoveInstanceRequest{
		Instances: []*compute.InstanceReference{{Instance: m1}}}).Do()
	e.waitOp(t, op, err)
	eventually(t, prompt, "only m2 receives connections after m1 left the pool", func() bool {
		return spread(ip, apiPort, 6)["m2"] == 6
	})
}

func TestDataPlaneUncheckedPoolSendsToHaltedMember(t *testing.T) {
	t.Parallel()
	e := startDP(t, 0.5)
	ip, pool, vms := e.lbSetup(t, map[string]string{"m1": dpZone, "m2": dpZone2}, false)
	if got := spread(ip, apiPort, 10); got["m1"] == 0 || got["m2"] == 0 {
		t.Fatalf("connections over two running members = %v, want both", got)
	}
	op, err := e.svc.Instances.Stop(dpProject, dpZone2, "m2").Do()
	e.waitOp(t, op, err)
	eventually(t, prompt, "stopped m2 refuses", func() bool { return refused(internalOf(vms["m2"]), apiPort) })
	// Without a health check every member counts as healthy: m2's share fails.
	got := spread(ip, apiPort, 20)
	if got[""] == 0 || got["m1"] == 0 || got["m1"]+got[""] != 20 {
		t.Errorf("connections with m2 halted and no health check = %v, want failures and m1 answers only", got)
	}
	if m := e.memberHealth(t, pool.SelfLink, vms["m2"].SelfLink); m.Health != "HEALTHY" {
		t.Errorf("control API health of unchecked member = %q, want HEALTHY (no check)", m.Health)
	}

	// A backend's own connection to the rule's IP comes back to itself,
	// whatever its state (GCE routes it locally).
	for name, want := range map[string]bool{"m1": true, "m2": false} {
		src := &net.TCPAddr{IP: net.ParseIP(internalOf(vms[name]))}
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true, Proxy: nil,
			DialContext: (&net.Dialer{LocalAddr: src, Timeout: time.Second}).DialContext}
		c := &http.Client{Transport: tr, Timeout: 2 * time.Second}
		for range 4 {
			resp, err := c.Get(fmt.Sprintf("https://%s/healthz", net.JoinHostPort(ip, fmt.Sprint(apiPort))))
			if err == nil {
				resp.Body.Close()
			}
			switch {
			case want && (err != nil || resp.Header.Get(emulator.InstanceHeader) != name):
				t.Errorf("connection from %s's own IP: err %v, want answered by itself", name, err)
			case !want && err == nil:
				t.Errorf("connection from halted %s's own IP answered by %s, want it to fail", name, resp.Header.Get(emulator.InstanceHeader))
			}
		}
		tr.CloseIdleConnections()
	}
}

func TestDataPlaneGetHealthReportsTheChecker(t *testing.T) {
	t.Parallel()
	e := startDP(t, 0.5)
	op, err := e.svc.HttpHealthChecks.Insert(dpProject, &compute.HttpHealthCheck{Name: "hc", Port: hcPort, RequestPath: "/healthz"}).Do()
	e.waitOp(t, op, err)
	opM := e.startVM(t, vmSpec{name: "m1", master: true})
	opN := e.startVM(t, vmSpec{name: "n1"})
	e.waitOp(t, opM, nil)
	e.waitOp(t, opN, nil)
	m1, n1 := e.instance(t, dpZone, "m1"), e.instance(t, dpZone, "n1")
	op, err = e.svc.TargetPools.Insert(dpProject, dpRegion, &compute.TargetPool{Name: "pool",
		Instances: []string{m1.SelfLink, n1.SelfLink}, HealthChecks: []string{"global/httpHealthChecks/hc"}}).Do()
	e.waitOp(t, op, err)
	pool, err := e.svc.TargetPools.Get(dpProject, dpRegion, "pool").Do()
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "m1 HEALTHY", func() bool { return e.getHealth(t, "pool", m1.SelfLink) == "HEALTHY" })
	// n1 is RUNNING but serves nothing on the check's port: the checker,
	// not the instance status, decides.
	eventually(t, 3*time.Second, "n1 probed", func() bool { return !e.memberHealth(t, pool.SelfLink, n1.SelfLink).LastProbe.IsZero() })
	if got := e.getHealth(t, "pool", n1.SelfLink); got != "UNHEALTHY" {
		t.Errorf("getHealth of RUNNING non-master = %s, want UNHEALTHY", got)
	}
	if in := e.instance(t, dpZone, "n1"); in.Status != "RUNNING" {
		t.Fatalf("n1 status %s", in.Status)
	}

	// Zone DOWN: the VM is still RUNNING in the API, but stops answering and
	// the checker takes it out.
	if err := e.Control.SetZone(context.Background(), dpZone, "DOWN"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "m1 UNHEALTHY while its zone is DOWN", func() bool { return e.getHealth(t, "pool", m1.SelfLink) == "UNHEALTHY" })
	if err := e.Control.SetZone(context.Background(), dpZone, "UP"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "m1 HEALTHY after the zone is UP", func() bool { return e.getHealth(t, "pool", m1.SelfLink) == "HEALTHY" })
}

// spread opens n connections through ip:port and counts answers by
// instance; failures are counted under "".
func spread(ip string, port, n int) map[string]int {
	out := map[string]int{}
	for range n {
		who, _, err := get(ip, port, "/healthz")
		if err != nil {
			who = ""
		}
		out[who]++
	}
	return out
}
