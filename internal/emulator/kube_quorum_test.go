package emulator_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	compute "google.golang.org/api/compute/v1"

	"github.com/hakube/hakube/internal/emulator/emulatortest/kubevm"
	"github.com/hakube/hakube/internal/emulator/guest"
	"github.com/hakube/hakube/internal/vmcontract"
)

// bootsByName keeps each VM's latest boot, for the guest's own halt.
type bootsByName struct {
	mu    sync.Mutex
	boots map[string]guest.BootInfo
}

func (b *bootsByName) Boot(_ context.Context, info guest.BootInfo) (func(), error) {
	b.mu.Lock()
	b.boots[info.Name] = info
	b.mu.Unlock()
	return nil, nil
}

func (b *bootsByName) latest(t *testing.T, name string) guest.BootInfo {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	info, ok := b.boots[name]
	if !ok {
		t.Fatalf("%s never booted", name)
	}
	return info
}

// TestKubeQuorum makes a three-master cluster as hakube does behind a load
// balancer: the first master's etcd starts new, the two others are added as
// learners through the etcd API before their VMs exist and promoted once
// caught up; a target pool with the health agent's check and a forwarding
// rule on the static IP front them. Halting one master from inside (the
// guest's halt, as `sudo halt` over SSH) keeps the API serving through the
// static IP; halting a second loses etcd's quorum: /readyz fails, the
// health agents answer 503 and the pool has no healthy member; starting one
// again restores it. Close leaves no process behind.
func TestKubeQuorum(t *testing.T) {
	boots := &bootsByName{boots: map[string]guest.BootInfo{}}
	e := startKube(t, boots)
	q := e.threeMasters(t)
	c, names, zones, members, vms, pool, api := q.c, q.names, q.zones, q.members, q.vms, q.pool, q.api
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var pids []map[string]int
	for _, n := range names {
		pids = append(pids, e.pids(t, vms[n].SelfLink))
	}

	// One down: the pool drops it, the API serves through the static IP,
	// etcd takes writes.
	boots.latest(t, names[0]).Halt()
	waitFor(t, 10*time.Second, names[0]+" TERMINATED by its own halt", func() bool {
		in, err := e.svc.Instances.Get(kubeProject, zones[0], names[0]).Do()
		return err == nil && in.Status == "TERMINATED"
	})
	waitFor(t, 2*time.Second, "the halted master's processes killed", func() bool { return noneAlive(pids[0]) })
	e.waitHealth(t, pool, vms[names[0]], "UNHEALTHY")
	for i := 0; i < 5; i++ {
		if code, body, err := readyz(c, api); err != nil || code != 200 {
			t.Fatalf("with one master of three halted, /readyz through the static IP: %d %q %v", code, body, err)
		}
	}
	survivor := c.Etcd(t, kubevm.EtcdURL(members[2].IP))
	putRetry(t, survivor, "/hakube-test/one-down", "written")

	// Two down: no quorum. /readyz fails, so do the health agents, and the
	// pool has no healthy member left.
	boots.latest(t, names[1]).Halt()
	last := hostPort(members[2].IP, kubevm.APIServerPort)
	took := waitFor(t, 2*time.Minute, "/readyz failing without quorum", func() bool {
		code, _, err := readyz(c, last)
		return err == nil && code != 200
	})
	t.Logf("quorum lost → /readyz failing: %s", took.Round(100*time.Millisecond))
	var body string
	waitFor(t, 30*time.Second, "the health agent answering 503", func() bool {
		var code int
		code, body, _ = healthz(hostPort(members[2].IP, kubevm.HealthCheckPort))
		return code == 503
	})
	if !strings.Contains(body, "etcd") {
		t.Errorf("the health agent's 503 does not say why (etcd): %q", body)
	}
	e.waitHealth(t, pool, vms[names[2]], "UNHEALTHY")

	// One back: quorum again, with its data; the API serves again.
	e.op(t, e.svc.Instances.Start(kubeProject, zones[1], names[1]))
	took = waitReady(t, c, api)
	t.Logf("a second member back → /readyz 200 through the static IP: %s", took.Round(100*time.Millisecond))
	e.waitHealth(t, pool, vms[names[2]], "HEALTHY")
	got, err := c.Etcd(t, kubevm.EtcdURL(members[1].IP)).Get(ctx, "/hakube-test/one-down")
	if err != nil || len(got.Kvs) != 1 {
		t.Errorf("the restarted member reads %v %v", got, err)
	}

	// Close kills everything at once, nothing left behind.
	running := append(pids[2:], e.pids(t, vms[names[1]].SelfLink))
	e.Server.Close()
	for _, p := range running {
		for name, pid := range p {
			if alive(pid) {
				t.Errorf("%s (pid %d) outlived the emulator's Close", name, pid)
			}
		}
	}
}

// quorum is a three-master cluster behind its load balancer.
type quorum struct {
	c       *kubevm.Cluster
	names   []string
	zones   []string
	members []kubevm.Member
	vms     map[string]*compute.Instance
	pool    *compute.TargetPool
	api     string // the static IP's apiserver port
}

// threeMasters makes the cluster as hakube does with --lb-first: the
// first master (etcd state new) behind the forwarding rule, then each
// replica's learner added, its VM made, the learner promoted, the VM added
// to the pool; it returns once etcd has three voters and the pool three
// healthy members.
func (e *kubeEnv) threeMasters(t *testing.T) *quorum {
	t.Helper()
	static := kubevm.ReserveStatic(t, e.svc, kubeProject, kubeRegion, "kubernetes-master-ip")
	q := &quorum{c: kubevm.NewCluster(t, "kubernetes", kubeRegion, static),
		names: []string{"kubernetes-master", "kubernetes-master-a", "kubernetes-master-b"},
		zones: []string{kubeZone, kubeZone2, kubeZone3}, vms: map[string]*compute.Instance{},
		api: hostPort(static, kubevm.APIServerPort)}
	for _, n := range q.names {
		q.members = append(q.members, kubevm.Member{Name: n, IP: kubevm.ReserveInternal(t, e.svc, kubeProject, kubeRegion, n+"-internal-ip")})
	}
	master := func(i int, state string) kubevm.Master {
		return kubevm.Master{Name: q.names[i], Zone: q.zones[i], InternalIP: q.members[i].IP, Members: q.members[:i+1], State: state}
	}
	m := master(0, "new")
	q.vms[q.names[0]] = q.c.CreateMaster(t, e.svc, kubeProject, m, q.c.KubeEnv(m), q.c.Certs(t, m))
	q.pool = e.frontMasters(t, static, q.vms[q.names[0]])
	waitReady(t, q.c, q.api)
	etcd := q.c.Etcd(t, kubevm.EtcdURL(q.members[0].IP))
	for i := 1; i < len(q.names); i++ {
		addLearner(t, etcd, q.members[i].IP)
		m := master(i, "existing")
		q.vms[q.names[i]] = q.c.CreateMaster(t, e.svc, kubeProject, m, q.c.KubeEnv(m), q.c.Certs(t, m))
		promote(t, etcd, q.members[i].IP)
		e.op(t, e.svc.TargetPools.AddInstance(kubeProject, kubeRegion, q.pool.Name, &compute.TargetPoolsAddInstanceRequest{
			Instances: []*compute.InstanceReference{{Instance: q.vms[q.names[i]].SelfLink}}}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := etcd.MemberList(ctx)
	if err != nil || len(list.Members) != 3 {
		t.Fatalf("etcd members %v %v", list, err)
	}
	for _, mem := range list.Members {
		if mem.IsLearner || mem.Name == "" {
			t.Errorf("member %q learner %v", mem.Name, mem.IsLearner)
		}
	}
	for _, n := range q.names {
		e.waitHealth(t, q.pool, q.vms[n], "HEALTHY")
	}
	return q
}

// frontMasters makes the load balancer hakube puts in front of the
// masters: the health agent's check, a pool and a forwarding rule on the
// static IP.
func (e *kubeEnv) frontMasters(t *testing.T, static string, first *compute.Instance) *compute.TargetPool {
	t.Helper()
	e.op(t, e.svc.HttpHealthChecks.Insert(kubeProject, &compute.HttpHealthCheck{Name: "kubernetes-master-hc",
		Port: kubevm.HealthCheckPort, RequestPath: "/healthz"}))
	hc, err := e.svc.HttpHealthChecks.Get(kubeProject, "kubernetes-master-hc").Do()
	if err != nil {
		t.Fatal(err)
	}
	e.op(t, e.svc.TargetPools.Insert(kubeProject, kubeRegion, &compute.TargetPool{Name: "kubernetes-master-pool",
		HealthChecks: []string{hc.SelfLink}, Instances: []string{first.SelfLink}}))
	pool, err := e.svc.TargetPools.Get(kubeProject, kubeRegion, "kubernetes-master-pool").Do()
	if err != nil {
		t.Fatal(err)
	}
	e.op(t, e.svc.ForwardingRules.Insert(kubeProject, kubeRegion, &compute.ForwardingRule{Name: "kubernetes-master-lb",
		IPAddress: static, IPProtocol: "TCP", PortRange: fmt.Sprint(kubevm.APIServerPort), Target: pool.SelfLink}))
	return pool
}

// waitHealth waits for the pool's checker to see in as want (the control
// API's view: getHealth refuses to answer for an instance not RUNNING).
func (e *kubeEnv) waitHealth(t *testing.T, pool *compute.TargetPool, in *compute.Instance, want string) {
	t.Helper()
	waitFor(t, time.Minute, in.Name+" "+want+" in the pool", func() bool {
		dp, err := e.Control.DataPlane(context.Background())
		if err != nil {
			return false
		}
		for _, tp := range dp.TargetPools {
			for _, m := range tp.Members {
				if tp.TargetPool == pool.SelfLink && m.Instance == in.SelfLink {
					return m.Health == want
				}
			}
		}
		return false
	})
}

// addLearner adds a member as hakube does before the VM exists; etcd
// refuses while a new cluster is not yet healthy for its check interval.
func addLearner(t *testing.T, cli *clientv3.Client, ip string) {
	t.Helper()
	var err error
	waitFor(t, time.Minute, "etcd adds the learner "+ip, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = cli.MemberAddAsLearner(ctx, []string{vmcontract.EtcdPeerURL(ip)})
		return err == nil
	})
}

// promote makes the learner at ip a voter once it caught up.
func promote(t *testing.T, cli *clientv3.Client, ip string) {
	t.Helper()
	waitFor(t, bootBound, "the learner "+ip+" promoted", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		list, err := cli.MemberList(ctx)
		if err != nil {
			return false
		}
		for _, m := range list.Members {
			if len(m.PeerURLs) == 1 && m.PeerURLs[0] == vmcontract.EtcdPeerURL(ip) {
				if !m.IsLearner {
					return true
				}
				_, err := cli.MemberPromote(ctx, m.ID)
				return err == nil
			}
		}
		return false
	})
}

// putRetry writes through a cluster that just lost a member: the first
// write may time out while etcd elects a new leader.
func putRetry(t *testing.T, cli *clientv3.Client, key, value string) {
	t.Helper()
	waitFor(t, time.Minute, "etcd takes a write", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := cli.Put(ctx, key, value)
		return err == nil
	})
}
