package guest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"

	"go.uber.org/zap"
)

// Machine is one instance's guest across its boots: its console, and the
// boot that runs now. The data plane drives it from its reconcile
// goroutine (Run while the VM is up, Stop when it is not, Forget when it
// is gone); none of those calls waits for a process.
type Machine struct {
	h                         *Host
	link, project, zone, name string
	id                        uint64
	console                   *Console
	static                    *VM // what a master serves without Kubernetes

	// Owned by the data plane's goroutine.
	cur   *boot // nil while the VM is down
	last  *boot // the boot that ended last; its processes may be exiting
	boots int
}

// NewMachine is the guest of one instance (id tells a VM re-created under
// the same link from the one before).
func (h *Host) NewMachine(link, project, zone, name string, id uint64, console *Console) *Machine {
	if console == nil {
		console = NewConsole(0)
	}
	return &Machine{h: h, link: link, project: project, zone: zone, name: name, id: id, console: console,
		static: NewVM(name, h.log)}
}

// BootSpec is what a boot starts from: the metadata it read and where the
// VM is.
type BootSpec struct {
	Key           BootKey
	Config        *Config
	Project, Zone string
	Internal      netip.Addr   // nic0's internal IP
	External      []netip.Addr // access configs' NAT IPs
	IPs           []netip.Addr // every IP of the VM, internal and external
	MachineType   string
	CPUs          int64
	MemoryMB      int64
	// DataDisk is the id of the disk attached as master-pd (0: none).
	DataDisk uint64
	// PodCIDR is nic0's first alias IP range (zero: none).
	PodCIDR netip.Prefix
}

// Run keeps the VM up with spec: the first call of a boot (a new Key)
// ends the boot before it, if any, and starts the new one.
func (m *Machine) Run(spec BootSpec) {
	if m.cur != nil && m.cur.spec.Key == spec.Key && m.cur.spec.Config == spec.Config {
		if !m.h.opts.Kubernetes {
			m.static.Start(spec.Config, spec.IPs)
		}
		return
	}
	m.halt(killNow)
	m.boots++
	b := m.newBoot(spec)
	m.cur = b
	if !m.h.opts.Kubernetes {
		m.static.Start(spec.Config, spec.IPs)
	}
	b.start()
}

// Stop ends the running boot: at once (SIGKILL) for a stop, a halt or a
// zone outage; with a short graceful shutdown for a delete.
func (m *Machine) Stop(deleting bool) {
	if deleting {
		m.halt(terminate)
		return
	}
	m.halt(killNow)
}

func (m *Machine) halt(sd shutdown) {
	if m.cur == nil {
		return
	}
	m.cur.end(sd)
	m.last, m.cur = m.cur, nil
	m.static.Stop()
}

// Forget is the instance's end: its boot shuts down as for a delete (with
// no latency a delete is over before the data plane sees it STOPPING, and
// the control API's reset makes instances vanish alike). Once its
// processes are gone its directory goes and the extras forget it.
func (m *Machine) Forget() {
	m.halt(terminate)
	last := m.last
	h := m.h
	if !h.add(1) {
		return
	}
	go func() {
		defer h.wg.Done()
		if last != nil {
			<-last.done
		}
		if h.opts.StateDir != "" {
			_ = os.RemoveAll(h.vmDir(m.id))
		}
		if f, ok := h.opts.Extras.(Forgetter); ok {
			f.Forget(m.project, m.zone, m.name, m.id)
		}
	}()
}

// Services are the ports the data plane serves for the running boot: the
// static guest's on every IP, or a master's health agent on its internal
// IP.
func (m *Machine) Services() []Service {
	b := m.cur
	if b == nil {
		return nil
	}
	if !m.h.opts.Kubernetes {
		svcs := m.static.Services()
		out := make([]Service, len(svcs))
		for i, s := range svcs {
			s.Boot = b.n
			out[i] = s
		}
		return out
	}
	return b.services
}

// NATPorts are the ports the data plane forwards from the VM's external
// IPs to its internal IP for the running boot, as GCE's one-to-one NAT
// does: a master's apiserver and health-check ports, and the SSH port.
func (m *Machine) NATPorts() []int {
	if m.cur == nil {
		return nil
	}
	return m.cur.nat
}

// Status is a machine's state as the control API reports it.
type Status struct {
	// Boots counts the instance's boots in this emulator.
	Boots int
	// State is "" while down; with Kubernetes: running, failing (a
	// component keeps exiting; Error says which and why) or failed (the
	// guest could not start its processes; Error says why).
	State      string
	Error      string
	Components []ComponentStatus
}

// Status reports the running boot.
func (m *Machine) Status() Status {
	st := Status{Boots: m.boots}
	if b := m.cur; b != nil {
		b.mu.Lock()
		st.State, st.Error = b.state, b.err
		sups := b.sups
		b.mu.Unlock()
		for _, s := range sups {
			cs := s.status()
			st.Components = append(st.Components, cs)
			if cs.State == "restarting" && st.State == "running" {
				st.State = "failing"
				st.Error = componentFailure(cs)
			}
		}
	}
	return st
}

// Console is the instance's serial console.
func (m *Machine) Console() *Console { return m.console }

// add counts a goroutine of the host, unless the host is closed.
func (h *Host) add(n int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.wg.Add(n)
	return true
}

// boot is one boot of a VM: what it started and how it ends.
type boot struct {
	m    *Machine
	n    int // the machine's boot number
	spec BootSpec
	prev *boot // ends before this one starts
	ctx  context.Context
	// cancel ends the boot; sd (under mu) says how.
	cancel context.CancelFunc
	done   chan struct{} // closed once every process of the boot is gone

	health   *healthAgent // a Kubernetes master's
	services []Service
	nat      []int
	report   *reporter // its hakube/bootstrap guest attribute

	mu    sync.Mutex
	sd    shutdown
	state string
	err   string
	sups  []*supervisor
}

func (m *Machine) newBoot(spec BootSpec) *boot {
	ctx, cancel := context.WithCancel(m.h.ctx)
	b := &boot{m: m, n: m.boots, spec: spec, prev: m.last, ctx: ctx, cancel: cancel,
		done: make(chan struct{}), sd: killNow, state: "starting"}
	b.report = &reporter{b: b}
	cfg := spec.Config
	kube := m.h.opts.Kubernetes
	if kube && cfg.Master && cfg.Err == "" {
		b.health = newHealthAgent(fmt.Sprintf("https://%s/readyz",
			netip.AddrPortFrom(spec.Internal, uint16(cfg.APIServerPort))), cfg.caPEM())
		b.services = []Service{{Name: "healthcheck", Port: cfg.HealthCheckPort, Protocol: "http",
			Handler: tagged(m.name, b.health), Internal: true, Boot: b.n,
			What:          "the health agent of " + m.name,
			PrivilegedFix: "Set HEALTHCHECK_PORT ≥ 1024 in the VM's kube-env, e.g. hakube --healthcheck-port 3990"}}
		b.nat = []int{cfg.APIServerPort, cfg.HealthCheckPort}
	}
	if m.h.opts.Extras != nil && m.h.opts.SSHPort > 0 {
		b.nat = append(b.nat, m.h.opts.SSHPort)
	}
	if kube && spec.DataDisk != 0 {
		m.h.hold(spec.DataDisk)
	}
	return b
}

func tagged(name string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set(InstanceHeader, name)
		h.ServeHTTP(rw, r)
	})
}

func (b *boot) start() {
	if !b.m.h.add(1) {
		b.finish()
		return
	}
	go func() {
		defer b.m.h.wg.Done()
		defer b.finish()
		b.run()
	}()
}

// finish marks the boot over: its disk is free and the next boot may go.
func (b *boot) finish() {
	if b.m.h.opts.Kubernetes && b.spec.DataDisk != 0 {
		b.m.h.release(b.spec.DataDisk)
	}
	close(b.done)
}

// end asks the boot to shut down with sd; it returns at once.
func (b *boot) end(sd shutdown) {
	b.mu.Lock()
	b.sd = sd
	b.mu.Unlock()
	b.cancel()
}

// shutdown is how the boot's processes end: as asked, or at once when the
// host closes.
func (b *boot) shutdown() shutdown {
	if b.m.h.ctx.Err() != nil {
		return killNow
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sd
}

// logf writes one of the guest's own lines to the console.
func (b *boot) logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	_, _ = io.WriteString(b.m.console, "hakube-guest: "+msg+"\n")
	b.m.h.log.Debug(msg, zap.String("instance", b.m.name))
}

func (b *boot) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	b.logf("%s", msg)
	b.mu.Lock()
	b.state, b.err = "failed", msg
	b.mu.Unlock()
}

func (b *boot) setState(state string) {
	b.mu.Lock()
	if b.state != "failed" {
		b.state = state
	}
	b.mu.Unlock()
}

// run is the boot, from the previous one's end to its own: the guest's
// processes, then the extras, then waiting for the end.
func (b *boot) run() {
	if b.prev != nil {
		<-b.prev.done
		b.prev = nil
	}
	if b.ctx.Err() != nil {
		return
	}
	spec, cfg := b.spec, b.spec.Config
	b.logf("boot %d of %s (internal IP %s)", b.n, b.m.name, spec.Internal)
	// A VM with a kube-env is a cluster's: it reports its bootstrap.
	reports := cfg.Env != nil || cfg.Err != ""
	if reports {
		b.step("metadata")
	}
	var wg sync.WaitGroup
	var master []*supervisor
	if b.m.h.opts.Kubernetes {
		master = b.startKubernetes(&wg)
	} else {
		b.logf("%s", staticSummary(cfg))
		if cfg.Err != "" && reports {
			b.failedAt("metadata", cfg.Err)
		}
	}
	b.setState("running")
	stopExtras, err := b.startExtras()
	if err != nil && reports {
		b.failedAt("extras", err.Error())
	}
	switch {
	case !reports:
	case master != nil:
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.awaitMaster(master)
		}()
	default:
		b.bootstrapped() // a failure reported before stands
	}
	<-b.ctx.Done()
	sd := b.shutdown()
	b.logf("shutting down (%s)", sd)
	stopExtras()
	wg.Wait()
	b.logf("boot %d ended", b.n)
}

func staticSummary(cfg *Config) string {
	switch {
	case cfg.Err != "":
		return "cannot serve: " + cfg.Err
	case cfg.Master:
		return fmt.Sprintf("master without Kubernetes: static /healthz, /readyz, /livez and /version on port %d, /healthz on %d",
			cfg.APIServerPort, cfg.HealthCheckPort)
	}
	return "not a master: serving nothing"
}

// startExtras boots the extras; the function it returns stops them.
func (b *boot) startExtras() (func(), error) {
	h := b.m.h
	if h.opts.Extras == nil {
		return func() {}, nil
	}
	info := b.bootInfo()
	stop, err := h.opts.Extras.Boot(b.ctx, info)
	if err != nil {
		b.logf("extras failed to start: %v", err)
		b.mu.Lock()
		if b.err == "" {
			b.err = "extras: " + err.Error()
		}
		b.mu.Unlock()
	}
	return func() {
		if stop != nil {
			stop()
		}
	}, err
}

func (b *boot) bootInfo() BootInfo {
	m, spec := b.m, b.spec
	cfg := spec.Config
	info := BootInfo{Project: spec.Project, Zone: spec.Zone, Name: m.name, ID: m.id, Boot: b.n,
		InternalIP: spec.Internal, ExternalIP: spec.External, PodCIDR: spec.PodCIDR, KubeEnv: cfg.Env, MasterCerts: cfg.Certs,
		MachineType: spec.MachineType, CPUs: spec.CPUs, MemoryMB: spec.MemoryMB, StateDir: m.h.vmDir(m.id), SSHPort: m.h.opts.SSHPort,
		Console: func(component string) io.WriteCloser { return m.console.Line(component, nil) },
	}
	if dial := m.h.opts.Dial; dial != nil {
		info.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dial(ctx, spec.Internal, network, addr)
		}
	}
	if err := os.MkdirAll(info.StateDir, 0o700); err != nil {
		b.logf("cannot make the VM's directory: %v", err)
	}
	ref := VMRef{Link: m.link, ID: m.id, Key: spec.Key}
	power := func(p Power) func() {
		return func() {
			if b.ctx.Err() != nil || m.h.opts.Power == nil {
				return
			}
			m.h.opts.Power(ref, p)
		}
	}
	info.Halt, info.Reboot = power(PowerHalt), power(PowerReboot)
	info.Metadata = func(ctx context.Context) (map[string]string, map[string]string, error) {
		if m.h.opts.Metadata == nil {
			return nil, nil, errors.New("no metadata server")
		}
		return m.h.opts.Metadata(ctx, m.link, m.id)
	}
	info.SetGuestAttribute = func(ctx context.Context, namespace, key, value string) error {
		if m.h.opts.GuestAttribute == nil {
			return errors.New("this emulator keeps no guest attributes")
		}
		return m.h.opts.GuestAttribute(ctx, m.link, m.id, namespace, key, value)
	}
	return info
}

// caPEM is the cluster CA's certificate a master verifies its apiserver
// with: kube-master-certs' CA_CERT, else kube-env's.
func (c *Config) caPEM() []byte {
	if pem := c.Certs.Get(caItem); len(pem) > 0 {
		return pem
	}
	if c.Env != nil {
		if pem, err := decodeB64(strings.TrimSpace(c.Env.Get(envCACert))); err == nil {
			return pem
		}
	}
	return nil
}
