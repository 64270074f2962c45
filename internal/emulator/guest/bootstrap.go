package guest

import (
	"fmt"
	"sync"
	"time"

	"github.com/hakube/hakube/internal/vmcontract"
)

// A boot reports how it goes in the guest attribute hakube/bootstrap, as a
// real VM's startup script does (docs/vm-contract.md, Guest attributes):
// "running <step>" as it starts each step, "ok" once it is up, "failed at
// <step>: <reason>" when it cannot get there. A master's steps are
// metadata, certs, each component (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler) and health-agent; it is up once
// every component runs and its apiserver's /readyz answered. A node, or a
// master without Kubernetes, is up once its guest started (and its
// extras). A VM without a kube-env is no cluster's and reports nothing.

// readyPoll is how often a master's boot looks at its components and its
// health agent's last /readyz until it is up.
const readyPoll = 100 * time.Millisecond

// reporter writes one boot's bootstrap attribute, each value once.
type reporter struct {
	b *boot

	mu     sync.Mutex
	last   string
	final  bool // ok, or a failure this boot does not get over: nothing follows
	warned bool
}

// set writes value unless it is the last one written or a final one was.
// A write that fails (guest attributes off) is logged once, and the boot
// goes on, as a real VM's does.
func (r *reporter) set(value string, final bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.final || value == r.last {
		return
	}
	r.last, r.final = value, final
	m := r.b.m
	write := m.h.opts.GuestAttribute
	if write == nil || r.b.ctx.Err() != nil {
		return
	}
	err := write(r.b.ctx, m.link, m.id, vmcontract.GuestAttrNamespace, vmcontract.GuestAttrBootstrapKey, value)
	if err != nil && !r.warned && r.b.ctx.Err() == nil {
		r.warned = true
		r.b.logf("warning: cannot set guest attribute %s: %v", vmcontract.GuestAttrBootstrap, err)
	}
}

// step reports that a step starts.
func (b *boot) step(name string) { b.report.set(vmcontract.BootstrapRunning+name, false) }

// failedAt reports that step failed for good, and why.
func (b *boot) failedAt(step, reason string) {
	const most = 200 // a real VM's script keeps this much of the reason
	if len(reason) > most {
		reason = reason[:most]
	}
	b.report.set(vmcontract.BootstrapFailed+step+": "+reason, true)
}

// failAt is fail, reported as step's failure.
func (b *boot) failAt(step, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	b.fail("%s", msg)
	b.failedAt(step, msg)
}

// bootstrapped reports the boot up.
func (b *boot) bootstrapped() { b.report.set(vmcontract.BootstrapOK, true) }

// awaitMaster reports a Kubernetes master's boot up once every component
// runs and its health agent's last /readyz was 200, and a failure once a
// component exits: the first to, as it goes on (a later recovery turns it
// to ok). It returns once the boot is up or over.
func (b *boot) awaitMaster(sups []*supervisor) {
	if b.health.client == nil {
		b.failedAt("health-agent", b.health.answer)
		return
	}
	t := time.NewTicker(readyPoll)
	defer t.Stop()
	failing := ""
	for {
		comps := make([]ComponentStatus, len(sups))
		for i, s := range sups {
			comps[i] = s.status()
		}
		var v string
		var final bool
		if v, final, failing = masterBootstrap(comps, b.health.ready(), failing); v != "" {
			b.report.set(v, final)
			if final {
				return
			}
		}
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// masterBootstrap is what a master reports from its components' states and
// whether its apiserver is ready: "" while it waits. failing names the
// component whose failure was reported, which stays the one reported
// (between its restarts too) so that the value does not jump between
// components that fail because of each other.
func masterBootstrap(comps []ComponentStatus, ready bool, failing string) (value string, final bool, nowFailing string) {
	up := ready
	for _, c := range comps {
		up = up && c.State == "running"
	}
	if up {
		return vmcontract.BootstrapOK, true, ""
	}
	for _, c := range comps {
		if c.Name == failing {
			return vmcontract.BootstrapFailed + c.Name + ": " + componentFailure(c), false, failing
		}
	}
	for _, c := range comps {
		if c.State == "restarting" {
			return vmcontract.BootstrapFailed + c.Name + ": " + componentFailure(c), false, c.Name
		}
	}
	return "", false, ""
}

// componentFailure says how a component that keeps exiting ended, in its
// own last words.
func componentFailure(c ComponentStatus) string {
	return fmt.Sprintf("%s exited (%s, %d restarts): %s", c.Name, c.LastExit, c.Restarts, c.LastLine)
}
