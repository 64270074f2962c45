package main

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/hakube/hakube/internal/emulator"
)

// op is one GCE operation (or data-plane event) a flow cannot do without,
// and the ones it must follow.
type op struct {
	id, kind string
	after    []string
	// n operations of the kind run at once (a group's VMs): the op ends
	// with the last of them. 0 is one.
	n int
	// then is an event each of the n goes through after its own operation
	// (a VM's boot after its insert); "" is none.
	then string
}

// chain is the least a flow needs on GCE, whoever runs it: the operations
// that must happen, ordered only where GCE's semantics order them. Its
// expected longest path, under the emulator's latency table, is the flow's
// true critical path.
type chain []op

// floor is the expected duration of the chain's longest path, in GCE
// seconds, over draws from the latency table (each operation uniform in
// its range, as the emulator draws it), and the path that is longest most
// often.
func (c chain) floor(draws int, rng *rand.Rand) (float64, string) {
	kinds, thens := map[string][2]float64{}, map[string][2]float64{}
	for _, o := range c {
		lo, hi := emulator.GCESeconds(o.kind)
		kinds[o.id] = [2]float64{lo, hi}
		if o.then != "" {
			lo, hi := emulator.GCESeconds(o.then)
			thens[o.id] = [2]float64{lo, hi}
		}
	}
	draw := func(r [2]float64) float64 { return r[0] + rng.Float64()*(r[1]-r[0]) }
	var total float64
	longest := map[string]int{}
	took := map[string]float64{}
	end := map[string]float64{}
	via := map[string]string{}
	for range draws {
		for _, o := range c { // listed after what it follows
			took[o.id] = 0
			for range max(o.n, 1) {
				d := draw(kinds[o.id])
				if o.then != "" {
					d += draw(thens[o.id])
				}
				took[o.id] = max(took[o.id], d)
			}
			start, from := 0.0, ""
			for _, a := range o.after {
				if end[a] > start {
					start, from = end[a], a
				}
			}
			end[o.id], via[o.id] = start+took[o.id], from
		}
		last := ""
		for _, o := range c {
			if last == "" || end[o.id] > end[last] {
				last = o.id
			}
		}
		total += end[last]
		var path []string
		for id := last; id != ""; id = via[id] {
			path = append([]string{id}, path...)
		}
		longest[strings.Join(path, " → ")]++
	}
	best, n := "", 0
	for p, k := range longest {
		if k > n || k == n && p < best {
			best, n = p, k
		}
	}
	return total / float64(draws), best
}

// check reports an op that follows one not listed before it.
func (c chain) check() error {
	seen := map[string]bool{}
	for _, o := range c {
		for _, a := range o.after {
			if !seen[a] {
				return fmt.Errorf("%s follows %s, which is not listed before it", o.id, a)
			}
		}
		seen[o.id] = true
	}
	return nil
}

// The chains of kube-up's HA guide. Both tools' flows end in the same
// resources; what a flow must wait for is what GCE orders: an instance
// that takes the static IP after the address exists; a group after its
// template and its VMs after the group; a forwarding rule on the static
// IP after the IP left the master's access config, and its forwarding
// after propagation; a VM leaves the target pool before it is deleted;
// the IP returns to the last master after the forwarding rule released it.
// A group's VMs are made, and deleted, at once: the group's insert is
// DONE before they exist, its delete only once the last is gone (GCE
// deletes a group's VMs first), so a pool's chain ends with the slowest of
// its VMs (nodesPerPool: the guide's NUM_NODES).
// The load balancer's health check is in the chain: without one, GCE
// sends requests to a master that is down. A VM's boot is in it where the
// flow waits for what runs on the VM: a master's apiserver, and the nodes'
// kubelets on the flows that make nodes (kube-up.sh ends each of them
// with validate-cluster, which waits for every Node). What neither tool
// controls (the control plane's own start, a Node turning Ready once its
// VM has booted) is not.
const nodesPerPool = 3

var chains = map[string]chain{
	"fresh up": {
		{id: "address", kind: "compute.addresses.insert"},
		{id: "master", kind: "compute.instances.insert", after: []string{"address"}},
		{id: "master boot", kind: "boot", after: []string{"master"}},
		{id: "template", kind: "compute.instanceTemplates.insert"},
		{id: "group", kind: "compute.instanceGroupManagers.insert", after: []string{"template"}},
		{id: "nodes booted", kind: "compute.instances.insert", after: []string{"group"}, n: nodesPerPool, then: "boot"},
		{id: "firewalls", kind: "compute.firewalls.insert"},
	},
	"node pool": {
		{id: "group", kind: "compute.instanceGroupManagers.insert"},
		{id: "nodes booted", kind: "compute.instances.insert", after: []string{"group"}, n: nodesPerPool, then: "boot"},
	},
	"first replica": {
		{id: "health check", kind: "compute.httpHealthChecks.insert"},
		{id: "pool", kind: "compute.targetPools.insert", after: []string{"health check"}},
		{id: "IP off master", kind: "compute.instances.deleteAccessConfig"},
		{id: "forwarding rule", kind: "compute.forwardingRules.insert", after: []string{"pool", "IP off master"}},
		{id: "propagation", kind: "propagation", after: []string{"forwarding rule"}},
		{id: "replica", kind: "compute.instances.insert"},
		{id: "replica boot", kind: "boot", after: []string{"replica"}},
		{id: "replica in pool", kind: "compute.targetPools.addInstance", after: []string{"replica", "pool"}},
	},
	"second replica": {
		{id: "replica", kind: "compute.instances.insert"},
		{id: "replica boot", kind: "boot", after: []string{"replica"}},
		{id: "replica in pool", kind: "compute.targetPools.addInstance", after: []string{"replica"}},
	},
	"remove replica": {
		{id: "out of pool", kind: "compute.targetPools.removeInstance"},
		{id: "VM delete", kind: "compute.instances.delete", after: []string{"out of pool"}},
	},
	"remove second-to-last replica": {
		{id: "out of pool", kind: "compute.targetPools.removeInstance"},
		{id: "VM delete", kind: "compute.instances.delete", after: []string{"out of pool"}},
		{id: "forwarding rule delete", kind: "compute.forwardingRules.delete"},
		{id: "ephemeral IP off", kind: "compute.instances.deleteAccessConfig"},
		{id: "IP on master", kind: "compute.instances.addAccessConfig", after: []string{"forwarding rule delete", "ephemeral IP off"}},
		{id: "pool delete", kind: "compute.targetPools.delete", after: []string{"forwarding rule delete", "out of pool"}},
		{id: "health check delete", kind: "compute.httpHealthChecks.delete", after: []string{"pool delete"}},
	},
	"remove node pool": {
		{id: "group delete", kind: "compute.instances.delete", n: nodesPerPool},
	},
	"teardown": {
		{id: "group delete", kind: "compute.instances.delete", n: nodesPerPool},
		{id: "template delete", kind: "compute.instanceTemplates.delete", after: []string{"group delete"}},
		{id: "master delete", kind: "compute.instances.delete"},
		{id: "address delete", kind: "compute.addresses.delete", after: []string{"master delete"}},
		{id: "firewall deletes", kind: "compute.firewalls.delete"},
	},
}
