package cluster

import (
	"fmt"

	compute "google.golang.org/api/compute/v1"
)

// etcd's quorum guard: a membership change that would leave the voting
// members without a healthy majority is refused (exit 2) naming the
// members and their health, unless --force, which says what it risks.

// etcdReady refuses a membership change when no master's etcd can be read.
func (p *planner) etcdReady() error {
	m := p.obs.Etcd
	if m == nil {
		return fmt.Errorf("etcd's membership was not read")
	}
	if m.err == nil {
		return nil
	}
	if m.unknown {
		p.plan.Notes = append(p.plan.Notes, "etcd's membership is not known yet: "+m.err.Error())
		return nil
	}
	if p.env.Force {
		p.st.warn(fmt.Sprintf("--force: etcd's membership cannot be read (%v); going on without it risks a member without a VM or a VM without a member", m.err))
		return nil
	}
	return refuse("etcd's membership cannot be read through any running master: %v\n"+
		"hakube changes etcd's members through SSH to a master (port 22, its ssh-keys metadata); fix that, or pass --force to go on without changing etcd", m.err)
}

// quorumAllowsAdding checks that the cluster can take a new voter: once the
// learner is promoted, the healthy voters (it among them) must be a
// majority of all voters.
func (p *planner) quorumAllowsAdding() error {
	if p.obs.Etcd == nil || p.obs.Etcd.err != nil {
		return nil // etcdReady decided
	}
	all, healthy := p.obs.Etcd.voters()
	if all == 0 {
		return nil
	}
	after, healthyAfter := all+1, healthy+1
	if all+1 == 2 {
		p.st.warn("two master replicas tolerate no failure: etcd loses its quorum when either stops; add a third (kube-up's guide advises against two)")
	}
	if healthyAfter*2 > after {
		return nil
	}
	msg := fmt.Sprintf("adding a voter to etcd would leave %d healthy of %d voters, no majority: %s", healthyAfter, after, p.obs.Etcd.describe())
	if p.env.Force {
		p.st.warn("--force: " + msg + "; until the unhealthy members are back, writes fail")
		return nil
	}
	return refuse("%s; start the stopped masters first (or remove the broken ones), or pass --force", msg)
}

// quorumAllowsRemoving checks that the voters left after the target's
// member goes keep a healthy majority.
func (p *planner) quorumAllowsRemoving(target *compute.Instance) error {
	m := p.obs.Etcd
	if m == nil || m.err != nil {
		return nil // etcdReady decided
	}
	mem := m.of(internalIP(target))
	if mem == nil || mem.Learner {
		// Not a voter (an earlier run removed its member, say): its removal
		// leaves the voters as they are, and refusing it would only block the
		// repair.
		return nil
	}
	all, healthy := m.voters()
	all--
	if mem.Healthy {
		healthy--
	}
	if all == 2 {
		p.st.warn("two master replicas tolerate no failure: etcd loses its quorum when either stops; add a third (kube-up's guide advises against two)")
	}
	if all == 0 || healthy*2 > all {
		return nil
	}
	msg := fmt.Sprintf("removing %s would leave %d healthy of %d etcd voters, no majority: %s", target.Name, healthy, all, m.describe())
	if p.env.Force {
		p.st.warn("--force: " + msg + "; etcd refuses writes, and the API with it, until enough members are back")
		return nil
	}
	return refuse("%s; start the stopped masters first, or remove a broken one instead (--replica <name>), or pass --force", msg)
}
