// Instances: routes, lookups, get and list, and the set* methods. Insert,
// lifecycle, access configs and attached disks have files of their own.

package emulator

import (
	compute "google.golang.org/api/compute/v1"
)

// startInstanceOp starts an operation on an instance. It drops the cached
// wire form now (for what the handler changed at request time) and after
// every step, Done and Fail (for what they change).
func (s *Server) startInstanceOp(c *call, in *instanceRec, spec opSpec) *operation {
	in.raw = nil
	for i, st := range spec.Steps {
		fn := st.Fn
		spec.Steps[i].Fn = func() { fn(); in.raw = nil }
	}
	if done := spec.Done; done != nil {
		spec.Done = func() *apiError { e := done(); in.raw = nil; return e }
	}
	if fail := spec.Fail; fail != nil {
		spec.Fail = func() { fail(); in.raw = nil }
	}
	return s.startOp(c, spec)
}

func (s *Server) routesInstances() {
	s.handle("POST", "zones/{zone}/instances", "compute.instances.insert", s.instancesInsert)
	s.handle("GET", "zones/{zone}/instances", "compute.instances.list", s.instancesList)
	s.handle("GET", "zones/{zone}/instances/{instance}", "compute.instances.get", s.instancesGet)
	s.handle("DELETE", "zones/{zone}/instances/{instance}", "compute.instances.delete", s.instancesDelete)
	s.handle("GET", "aggregated/instances", "compute.instances.aggregatedList", s.instancesAggregated)
	s.handle("POST", "zones/{zone}/instances/{instance}/stop", "compute.instances.stop", s.instancesStop)
	s.handle("POST", "zones/{zone}/instances/{instance}/start", "compute.instances.start", s.instancesStart)
	s.handle("POST", "zones/{zone}/instances/{instance}/reset", "compute.instances.reset", s.instancesReset)
	s.handle("GET", "zones/{zone}/instances/{instance}/serialPort", "compute.instances.getSerialPortOutput", s.instancesGetSerialPortOutput)
	s.handle("GET", "zones/{zone}/instances/{instance}/getGuestAttributes", "compute.instances.getGuestAttributes", s.instancesGetGuestAttributes)
	s.handle("POST", "zones/{zone}/instances/{instance}/addAccessConfig", "compute.instances.addAccessConfig", s.instancesAddAccessConfig)
	s.handle("POST", "zones/{zone}/instances/{instance}/deleteAccessConfig", "compute.instances.deleteAccessConfig", s.instancesDeleteAccessConfig)
	s.handle("PATCH", "zones/{zone}/instances/{instance}/updateNetworkInterface", "compute.instances.updateNetworkInterface", s.instancesUpdateNetworkInterface)
	s.handle("POST", "zones/{zone}/instances/{instance}/setMetadata", "compute.instances.setMetadata", s.instancesSetMetadata)
	s.handle("POST", "zones/{zone}/instances/{instance}/setLabels", "compute.instances.setLabels", s.instancesSetLabels)
	s.handle("POST", "zones/{zone}/instances/{instance}/setTags", "compute.instances.setTags", s.instancesSetTags)
	s.handle("POST", "zones/{zone}/instances/{instance}/attachDisk", "compute.instances.attachDisk", s.instancesAttachDisk)
	s.handle("POST", "zones/{zone}/instances/{instance}/detachDisk", "compute.instances.detachDisk", s.instancesDetachDisk)
	s.handle("POST", "zones/{zone}/instances/{instance}/setDiskAutoDelete", "compute.instances.setDiskAutoDelete", s.instancesSetDiskAutoDelete)
}

// instanceByLink finds an instance by its selfLink.
func (p *project) instanceByLink(link string) *instanceRec {
	r, ok := parseRef(link, ref{Project: p.name})
	if !ok || r.Coll != "instances" {
		return nil
	}
	in, _ := p.instances.get(r.Scope, r.Name)
	return in
}

// internalCall is the request context of work the emulator does on its own
// (a MIG creating or deleting its VMs): latencies and faults apply as for the
// API method it stands for, but nothing counts as a client request.
func (s *Server) internalCall(p *project, zone, method, name string) *call {
	return &call{s: s, p: p, method: method, mutation: true, zone: zone, name: name, bodyName: name}
}

// findInstance looks up the instance named in the path.
func (s *Server) findInstance(c *call) (*instanceRec, string, *apiError) {
	in, path, e := getNamed(c, c.p.instances, "instances")
	if e != nil {
		return nil, path, e
	}
	return in, path, nil
}

// mutableInstance is findInstance for mutations other than delete: they
// wait until no other operation changes the instance.
func (s *Server) mutableInstance(c *call) (*instanceRec, *apiError) {
	in, path, e := s.findInstance(c)
	if e != nil {
		return nil, e
	}
	if in.deleting {
		return nil, errNotReady(path)
	}
	if e := c.p.checkNotBusy(in.SelfLink, path); e != nil {
		return nil, e
	}
	return in, nil
}

func (s *Server) instancesGet(c *call) (any, *apiError) {
	in, _, e := s.findInstance(c)
	if e != nil {
		return nil, e
	}
	return in.wire()
}

func (s *Server) instancesList(c *call) (any, *apiError) {
	scope := "zones/" + c.zone
	recs := c.p.instances.list(scope)
	items := make([]any, len(recs))
	for i, r := range recs {
		items[i] = lazyWire{r}
	}
	return s.listResponse(c, "compute#instanceList", items, c.p.link(scope, "instances"))
}

func (s *Server) instancesAggregated(c *call) (any, *apiError) {
	by := map[string][]any{}
	for _, r := range c.p.instances.sortedRows("") {
		by[r.scope] = append(by[r.scope], lazyWire{r.v})
	}
	return s.aggregatedResponse(c, "compute#instanceAggregatedList", "instances", by, s.zoneScopes())
}

// The set* methods apply at request time, so that the new fingerprint is
// visible at once and two writers holding the same old one cannot both win.

func (s *Server) instancesSetMetadata(c *call) (any, *apiError) {
	in, e := s.mutableInstance(c)
	if e != nil {
		return nil, e
	}
	var md compute.Metadata
	if e := c.decode(&md); e != nil {
		return nil, e
	}
	if md.Fingerprint != in.Metadata.Fingerprint {
		return nil, errFingerprint("Supplied fingerprint does not match current metadata fingerprint.")
	}
	if e := checkMetadata(&md, "metadata"); e != nil {
		return nil, e
	}
	in.Metadata = &compute.Metadata{Kind: "compute#metadata", Fingerprint: s.newFingerprint(), Items: cleanMetadataItems(md.Items)}
	in.Fingerprint = s.newFingerprint()
	return s.startInstanceOp(c, in, opSpec{Type: "setMetadata", Target: in.SelfLink, TargetID: in.Id, Scope: "zones/" + c.zone}), nil
}

func (s *Server) instancesSetLabels(c *call) (any, *apiError) {
	in, e := s.mutableInstance(c)
	if e != nil {
		return nil, e
	}
	if e := s.applyLabels(c, &in.Labels, &in.LabelFingerprint); e != nil {
		return nil, e
	}
	return s.startInstanceOp(c, in, opSpec{Type: "compute.instance.setLabels", Target: in.SelfLink, TargetID: in.Id, Scope: "zones/" + c.zone}), nil
}

func (s *Server) instancesSetTags(c *call) (any, *apiError) {
	in, e := s.mutableInstance(c)
	if e != nil {
		return nil, e
	}
	var t compute.Tags
	if e := c.decode(&t); e != nil {
		return nil, e
	}
	if t.Fingerprint != in.Tags.Fingerprint {
		return nil, errFingerprint("Supplied fingerprint does not match current tags fingerprint.")
	}
	if e := checkTags(&t); e != nil {
		return nil, e
	}
	in.Tags = &compute.Tags{Fingerprint: s.newFingerprint(), Items: t.Items}
	if len(in.Tags.Items) == 0 {
		in.Tags.Items = nil
	}
	in.Fingerprint = s.newFingerprint()
	return s.startInstanceOp(c, in, opSpec{Type: "setTags", Target: in.SelfLink, TargetID: in.Id, Scope: "zones/" + c.zone}), nil
}
