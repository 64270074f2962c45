package cluster

import (
	"maps"
	"strings"

	"github.com/hakube/hakube/internal/gce"
)

// keep copies the parts not read from prev.
func (ob *observation) keep() {
	o, p := ob.o, ob.prev
	if !ob.read(readNetwork) {
		o.Network = p.Network
	}
	if !ob.read(readFirewalls) {
		maps.Copy(o.Firewalls, p.Firewalls)
		o.SharedNetwork = p.SharedNetwork
	}
	if !ob.read(readAddresses) {
		o.addresses = p.addresses
	}
	if !ob.read(readInstances) {
		o.Masters = p.Masters
	}
	if !ob.read(readDisks) {
		maps.Copy(o.Disks, p.Disks)
		o.otherDisks = p.otherDisks
	}
	if !ob.read(readGroups) {
		maps.Copy(o.Pools, p.Pools)
	}
	if !ob.read(readTemplate) {
		o.Template = p.Template
	}
	if !ob.read(readHealthCheck) {
		o.HealthCheck = p.HealthCheck
	}
	if !ob.read(readTargetPool) {
		o.TargetPool = p.TargetPool
	}
	if !ob.read(readSubnetworks) {
		o.Subnetwork, o.PodRange, o.OtherSubnetworks = p.Subnetwork, p.PodRange, p.OtherSubnetworks
	}
	if !ob.read(readForwardingRule) {
		o.ForwardingRule = p.ForwardingRule
	}
}

// changedBy is, per collection, the parts of an observation that a
// mutation of one of its resources can change. An instance's insert makes
// its data disk and takes its IPs (an address lists its users); its delete
// may delete disks; a target pool lists its instances' links. A forwarding
// rule takes the static IP. A network in auto mode makes its subnetworks.
var changedBy = map[string]reads{
	"instances":             readInstances | readDisks | readAddresses | readTargetPool,
	"disks":                 readDisks,
	"addresses":             readAddresses,
	"instanceGroupManagers": readGroups,
	"instanceTemplates":     readTemplate,
	"firewalls":             readFirewalls,
	"networks":              readNetwork | readSubnetworks | readFirewalls,
	"subnetworks":           readSubnetworks,
	"httpHealthChecks":      readHealthCheck | readTargetPool,
	"targetPools":           readTargetPool | readForwardingRule,
	"forwardingRules":       readForwardingRule | readAddresses,
}

// changedByCall narrows changedBy for calls that change one field of a
// resource: a pool's members are its own list (the rule names the pool,
// not them); an instance's metadata, labels and tags are its own; its
// access configs are its own and the users of the address they take. An
// instance's insert takes its IPs, and makes its data disk as its DONE
// says (initializeParams): no plan reads a new master's disk once the
// master exists, so the disks are not listed again for it.
var changedByCall = map[string]reads{
	"instances.insert":             readInstances | readAddresses,
	"targetPools.addInstance":      readTargetPool,
	"targetPools.removeInstance":   readTargetPool,
	"instances.setMetadata":        readInstances,
	"instances.setLabels":          readInstances,
	"instances.setTags":            readInstances,
	"instances.addAccessConfig":    readInstances | readAddresses,
	"instances.deleteAccessConfig": readInstances | readAddresses,
}

// changedParts are the parts of an observation that the calls a run made
// ("collection.verb", as gce.Stats counts them) may have changed. A
// mutation of a collection not in changedBy re-reads everything.
func changedParts(calls []gce.MethodCount) reads {
	var parts reads
	for _, c := range calls {
		collection, verb, _ := strings.Cut(c.Method, ".")
		if c.Count == 0 || !mutates(collection, verb) {
			continue
		}
		r, ok := changedByCall[c.Method]
		if !ok {
			r, ok = changedBy[collection]
		}
		if !ok {
			return readAll
		}
		parts |= r
	}
	return parts
}

// mutates tells a call that may change a resource from a read or a wait.
func mutates(collection, verb string) bool {
	if strings.HasSuffix(collection, "Operations") {
		return false
	}
	for _, read := range []string{"get", "list", "aggregatedList"} {
		if strings.HasPrefix(verb, read) {
			return false
		}
	}
	return true
}
