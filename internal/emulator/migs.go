package emulator

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	compute "google.golang.org/api/compute/v1"
)

// migRetryFloor keeps retries from spinning when the latency preset is none.
const migRetryFloor = 20 * time.Millisecond

// maxZonalMIGSize is how many VMs GCE lets a zonal managed instance group
// hold ("up to 1000 VM instances per group", instanceGroupManagers.insert
// reference; a regional group may hold 2,000, but the emulator has none).
const maxZonalMIGSize = 1000

// checkMIGSize refuses a target size above the limit before any work is
// done: a group of a million VMs would otherwise be scheduled, one member
// record at a time, while every other call waits. The message is GCE's
// (LIMIT_EXCEEDED, as a kubernetes/autoscaler fixture quotes it for a
// regional group); that GCE answers it synchronously as HTTP 400 with
// reason limitExceeded is the emulator's guess: it was not recorded.
func checkMIGSize(name string, size int64) *apiError {
	if size <= maxZonalMIGSize {
		return nil
	}
	return &apiError{Code: 400, Reason: "limitExceeded", OpCode: "LIMIT_EXCEEDED",
		Message: fmt.Sprintf("Exceeded limit 'MAX_INSTANCES_IN_INSTANCE_GROUP' on resource '%s'. Limit: %d.0", name, maxZonalMIGSize)}
}

// maxDeducedBaseName is how much of the group name a MIG created without a
// baseInstanceName uses for its VMs' names.
const maxDeducedBaseName = 54

// defaultBaseInstanceName is the base name GCE gives a group created without
// one: a prefix of the group name. gcloud's create leaves the field out
// without --base-instance-name ("If not provided base instance name will be
// the prefix of instance group name"); the gcloud releases that filled it in
// themselves took the first 54 characters (_MAX_LEN_FOR_DEDUCED_BASE_INSTANCE_NAME),
// which also leaves room for the "-xxxx" suffix within GCE's 58.
func defaultBaseInstanceName(group string) string {
	return group[:min(len(group), maxDeducedBaseName)]
}

func (s *Server) routesMIGs() {
	s.handle("POST", "zones/{zone}/instanceGroupManagers", "compute.instanceGroupManagers.insert", s.migsInsert)
	s.handle("GET", "zones/{zone}/instanceGroupManagers", "compute.instanceGroupManagers.list", s.migsList)
	s.handle("GET", "zones/{zone}/instanceGroupManagers/{instanceGroupManager}", "compute.instanceGroupManagers.get", s.migsGet)
	s.handle("DELETE", "zones/{zone}/instanceGroupManagers/{instanceGroupManager}", "compute.instanceGroupManagers.delete", s.migsDelete)
	s.handle("POST", "zones/{zone}/instanceGroupManagers/{instanceGroupManager}/resize", "compute.instanceGroupManagers.resize", s.migsResize)
	s.handle("POST", "zones/{zone}/instanceGroupManagers/{instanceGroupManager}/listManagedInstances",
		"compute.instanceGroupManagers.listManagedInstances", s.migsListManagedInstances)
	s.handle("GET", "aggregated/instanceGroupManagers", "compute.instanceGroupManagers.aggregatedList", s.migsAggregated)
}

func (s *Server) migsInsert(c *call) (any, *apiError) {
	var m compute.InstanceGroupManager
	if e := c.decode(&m); e != nil {
		return nil, e
	}
	if e := checkName(m.Name); e != nil {
		return nil, e
	}
	scope := "zones/" + c.zone
	if _, ok := c.p.migs.get(scope, m.Name); ok {
		return nil, errAlreadyExists(relPath(c.p.name, scope, "instanceGroupManagers", m.Name))
	}
	if _, ok := c.p.instanceGroups.get(scope, m.Name); ok {
		return nil, errAlreadyExists(relPath(c.p.name, scope, "instanceGroups", m.Name))
	}
	var raw map[string]json.RawMessage
	_ = json.Unmarshal(c.body, &raw)
	if _, ok := raw["targetSize"]; !ok {
		return nil, errRequired("resource.targetSize")
	}
	if m.TargetSize < 0 {
		return nil, errInvalidField("resource.targetSize", fmt.Sprint(m.TargetSize), "Must be greater than or equal to 0.")
	}
	if e := checkMIGSize(m.Name, m.TargetSize); e != nil {
		return nil, e
	}
	switch {
	case m.BaseInstanceName == "":
		m.BaseInstanceName = defaultBaseInstanceName(m.Name)
	case len(m.BaseInstanceName) > 58 || !validName(m.BaseInstanceName):
		return nil, errInvalidField("resource.baseInstanceName", m.BaseInstanceName,
			"Must be a match of regex '[a-z][-a-z0-9]{0,57}' and at most 58 characters long.")
	}
	versions, tplRef, e := migVersions(&m)
	if e != nil {
		return nil, e
	}
	tpl, e := c.p.templateRef(tplRef, "resource.instanceTemplate")
	if e != nil {
		return nil, e
	}
	region := s.cat.regionOf(c.zone)
	pools, e := c.p.migTargetPools(m.TargetPools, region)
	if e != nil {
		return nil, e
	}
	switch m.ListManagedInstancesResults {
	case "":
		m.ListManagedInstancesResults = "PAGELESS"
	case "PAGELESS", "PAGINATED":
	default:
		return nil, errInvalidField("resource.listManagedInstancesResults", m.ListManagedInstancesResults, "")
	}
	if e := c.p.checkQuota(region, "INSTANCE_GROUP_MANAGERS", 1); e != nil {
		return nil, e
	}
	if e := c.p.checkQuota(region, "INSTANCE_GROUPS", 1); e != nil {
		return nil, e
	}

	c.p.renderMIG(&m, scope, tpl, versions, pools)
	rec := &migRec{InstanceGroupManager: &m, p: c.p, zone: c.zone, members: map[string]*migMember{}}
	rec.group = c.p.migGroup(c.zone, &m, tpl)
	rec.refresh()
	return s.startOp(c, opSpec{Type: "compute.instanceGroupManagers.insert", Target: m.SelfLink, TargetID: m.Id, Scope: scope,
		Done: func() *apiError {
			if _, ok := c.p.migs.get(scope, m.Name); ok {
				return errAlreadyExists(relPath(c.p.name, scope, "instanceGroupManagers", m.Name))
			}
			c.p.migs.put(scope, m.Name, rec)
			c.p.instanceGroups.put(scope, m.Name, rec.group)
			s.migReconcile(rec)
			return nil
		}}), nil
}

// migVersions reads the group's template: from instanceTemplate or from
// its one version.
func migVersions(m *compute.InstanceGroupManager) ([]*compute.InstanceGroupManagerVersion, string, *apiError) {
	var versions []*compute.InstanceGroupManagerVersion
	for _, v := range m.Versions {
		if v != nil {
			versions = append(versions, v)
		}
	}
	if len(versions) > 1 {
		return nil, "", errInvalidField("resource.versions", "", "The emulator supports a single version per group.")
	}
	tplRef := m.InstanceTemplate
	if len(versions) == 1 {
		if tplRef != "" && versions[0].InstanceTemplate != "" {
			return nil, "", errInvalidField("resource.instanceTemplate", tplRef, "Specify either instanceTemplate or versions, not both.")
		}
		tplRef = versions[0].InstanceTemplate
	}
	if tplRef == "" {
		return nil, "", errRequired("resource.instanceTemplate")
	}
	return versions, tplRef, nil
}

// migTargetPools resolves the pools a group's VMs join, in its region.
func (p *project) migTargetPools(refs []string, region string) ([]string, *apiError) {
	var pools []string
	for i, tp := range refs {
		r, ok := parseRef(tp, ref{Project: p.name, Scope: "regions/" + region, Coll: "targetPools"})
		if !ok || r.Coll != "targetPools" {
			return nil, errInvalidField(fmt.Sprintf("resource.targetPools[%d]", i), tp, "")
		}
		pool, found := p.targetPools.get(r.Scope, r.Name)
		if !found || r.Project != p.name {
			return nil, errNotFound(relPath(r.Project, r.Scope, "targetPools", r.Name))
		}
		if r.Scope != "regions/"+region {
			return nil, errInvalidField(fmt.Sprintf("resource.targetPools[%d]", i), tp, "Target pools must be in the group's region.")
		}
		pools = append(pools, pool.SelfLink)
	}
	return pools, nil
}

// renderMIG fills in the group as GCE returns it.
func (p *project) renderMIG(m *compute.InstanceGroupManager, scope string, tpl *compute.InstanceTemplate,
	versions []*compute.InstanceGroupManagerVersion, pools []string) {
	now := timestamp(time.Now())
	m.Kind = "compute#instanceGroupManager"
	m.Id = p.st.newID()
	m.CreationTimestamp = now
	m.Zone = p.link(scope)
	m.SelfLink = p.link(scope, "instanceGroupManagers", m.Name)
	m.InstanceGroup = p.link(scope, "instanceGroups", m.Name)
	m.InstanceTemplate = tpl.SelfLink
	m.Versions = []*compute.InstanceGroupManagerVersion{{InstanceTemplate: tpl.SelfLink,
		TargetSize: &compute.FixedOrPercent{}}}
	if len(versions) == 1 {
		m.Versions[0].Name = versions[0].Name
	}
	m.TargetPools = pools
	m.Fingerprint = p.st.newFingerprint()
	m.SatisfiesPzs = true
	m.TargetSizePolicy = &compute.InstanceGroupManagerTargetSizePolicy{Mode: "INDIVIDUAL"}
	m.StandbyPolicy = &compute.InstanceGroupManagerStandbyPolicy{Mode: "MANUAL"}
	m.InstanceLifecyclePolicy = fillLifecyclePolicy(m.InstanceLifecyclePolicy)
	m.UpdatePolicy = fillUpdatePolicy(m.UpdatePolicy)
	m.ForceSendFields = append(m.ForceSendFields, "TargetSize", "TargetStoppedSize", "TargetSuspendedSize", "SatisfiesPzi")
	m.Status = &compute.InstanceGroupManagerStatus{
		AllInstancesConfig: &compute.InstanceGroupManagerStatusAllInstancesConfig{Effective: true},
		Stateful: &compute.InstanceGroupManagerStatusStateful{
			PerInstanceConfigs: &compute.InstanceGroupManagerStatusStatefulPerInstanceConfigs{AllEffective: true},
			ForceSendFields:    []string{"HasStatefulConfig"},
		},
		VersionTarget:   &compute.InstanceGroupManagerStatusVersionTarget{IsReached: true},
		ForceSendFields: []string{"IsStable"},
	}
}

func fillLifecyclePolicy(lp *compute.InstanceGroupManagerInstanceLifecyclePolicy) *compute.InstanceGroupManagerInstanceLifecyclePolicy {
	if lp == nil {
		lp = &compute.InstanceGroupManagerInstanceLifecyclePolicy{}
	}
	if lp.DefaultActionOnFailure == "" {
		lp.DefaultActionOnFailure = "REPAIR"
	}
	if lp.ForceUpdateOnRepair == "" {
		lp.ForceUpdateOnRepair = "NO"
	}
	if lp.OnFailedHealthCheck == "" {
		lp.OnFailedHealthCheck = "DEFAULT_ACTION"
	}
	return lp
}

func fillUpdatePolicy(up *compute.InstanceGroupManagerUpdatePolicy) *compute.InstanceGroupManagerUpdatePolicy {
	if up == nil {
		up = &compute.InstanceGroupManagerUpdatePolicy{}
	}
	if up.Type == "" {
		up.Type = "OPPORTUNISTIC"
	}
	if up.ReplacementMethod == "" {
		up.ReplacementMethod = "SUBSTITUTE"
	}
	if up.MinimalAction == "" {
		up.MinimalAction = "REPLACE"
	}
	if up.MaxSurge == nil {
		up.MaxSurge = &compute.FixedOrPercent{Fixed: 1}
	}
	if up.MaxUnavailable == nil {
		up.MaxUnavailable = &compute.FixedOrPercent{Fixed: 1}
	}
	return up
}

// calculated resolves a fixed-or-percent value against the group size.
func calculated(fp *compute.FixedOrPercent, size int64) {
	if fp == nil {
		return
	}
	if fp.Percent > 0 {
		fp.Calculated = (size*fp.Percent + 99) / 100
	} else {
		fp.Calculated = fp.Fixed
	}
	fp.ForceSendFields = []string{"Calculated"}
}

// migGroup makes the zonal instance group a MIG comes with.
func (p *project) migGroup(zone string, m *compute.InstanceGroupManager, tpl *compute.InstanceTemplate) *compute.InstanceGroup {
	scope := "zones/" + zone
	g := &compute.InstanceGroup{
		Kind:              "compute#instanceGroup",
		Id:                p.st.newID(),
		CreationTimestamp: m.CreationTimestamp,
		Name:              m.Name,
		Zone:              p.link(scope),
		SelfLink:          m.InstanceGroup,
		Fingerprint:       p.st.newFingerprint(),
		NamedPorts:        m.NamedPorts,
		ForceSendFields:   []string{"Description", "Size"},
	}
	if nics := tpl.Properties.NetworkInterfaces; len(nics) > 0 {
		g.Network = nics[0].Network
		g.Subnetwork = nics[0].Subnetwork
		if g.Subnetwork == "" {
			if n, e := p.networkRef(g.Network); e == nil {
				if sn, e := p.subnetFor(n, p.st.cat.regionOf(zone), ""); e == nil && sn != nil {
					g.Subnetwork = sn.SelfLink
				}
			}
		}
	}
	return g
}

// migRefresh recomputes the fields that describe the group's progress.
func (m *migRec) refresh() {
	ca := &compute.InstanceGroupManagerActionsSummary{ForceSendFields: []string{
		"Abandoning", "Creating", "CreatingWithoutRetries", "Deleting", "None", "Recreating", "Refreshing",
		"Restarting", "Resuming", "Starting", "Stopping", "Suspending", "Verifying"}}
	stable := m.deleting == nil && int64(len(m.members)) == m.TargetSize
	var size int64
	for _, mem := range m.members {
		switch mem.currentAction() {
		case "DELETING":
			ca.Deleting++
		case "CREATING":
			ca.Creating++
		default:
			ca.None++
		}
		if mem.currentAction() != "NONE" || mem.in.Status != "RUNNING" {
			stable = false
		}
		if mem.in != nil {
			size++
		}
	}
	m.CurrentActions = ca
	m.Status.IsStable = stable
	for _, v := range m.Versions {
		v.TargetSize.Calculated = m.TargetSize
		v.TargetSize.ForceSendFields = []string{"Calculated"}
	}
	calculated(m.UpdatePolicy.MaxSurge, m.TargetSize)
	calculated(m.UpdatePolicy.MaxUnavailable, m.TargetSize)
	if m.group != nil {
		m.group.Size = size
	}
}

// findMIG looks up the MIG named in the path.
func (s *Server) findMIG(c *call) (*migRec, string, *apiError) {
	m, path, e := getNamed(c, c.p.migs, "instanceGroupManagers")
	if e != nil {
		return nil, path, e
	}
	return m, path, nil
}

func (s *Server) migsGet(c *call) (any, *apiError) {
	m, _, e := s.findMIG(c)
	if e != nil {
		return nil, e
	}
	m.refresh()
	return m.InstanceGroupManager, nil
}

func (s *Server) migsList(c *call) (any, *apiError) {
	scope := "zones/" + c.zone
	var items []any
	for _, m := range c.p.migs.list(scope) {
		m.refresh()
		items = append(items, m.InstanceGroupManager)
	}
	return s.listResponse(c, "compute#instanceGroupManagerList", items, c.p.link(scope, "instanceGroupManagers"))
}

// migsResize only schedules: the operation is DONE at once and the VMs
// follow with their own latencies.
func (s *Server) migsResize(c *call) (any, *apiError) {
	m, path, e := s.findMIG(c)
	if e != nil {
		return nil, e
	}
	v := c.query("size")
	if v == "" {
		return nil, errRequired("size")
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return nil, errInvalidField("size", v, "Must be greater than or equal to 0.")
	}
	if e := checkMIGSize(m.Name, n); e != nil {
		return nil, e
	}
	if m.deleting != nil {
		return nil, errNotReady(path)
	}
	if e := c.p.checkNotBusy(m.SelfLink, path); e != nil {
		return nil, e
	}
	prev := m.TargetSize
	m.TargetSize = n
	m.Fingerprint = s.newFingerprint()
	return s.startOp(c, opSpec{Type: "compute.instanceGroupManagers.resize", Target: m.SelfLink, TargetID: m.Id,
		Scope: "zones/" + c.zone, NotBusy: true,
		Done: func() *apiError {
			s.migReconcile(m)
			return nil
		},
		Fail: func() { m.TargetSize = prev }}), nil
}

// migsDelete deletes every VM (each with the instance-delete latency), then
// the group and its instance group; the operation is DONE when all are gone.
func (s *Server) migsDelete(c *call) (any, *apiError) {
	m, path, e := s.findMIG(c)
	if e != nil {
		return nil, e
	}
	if m.deleting != nil {
		return nil, errNotReady(path)
	}
	if e := c.p.checkNotBusy(m.SelfLink, path); e != nil {
		return nil, e
	}
	scope := "zones/" + c.zone
	op := s.startOp(c, opSpec{Type: "compute.instanceGroupManagers.delete", Target: m.SelfLink, TargetID: m.Id,
		Scope: scope, Manual: true,
		Done: func() *apiError {
			m.deleting = nil
			if len(m.members) > 0 {
				s.migReconcile(m)
				return &apiError{Code: 503, Reason: "backendError", OpCode: "INTERNAL_ERROR",
					Message: fmt.Sprintf("Could not delete every instance of '%s'; the group was kept.", path)}
			}
			m.removed = true
			if cur, ok := c.p.migs.get(scope, m.Name); ok && cur == m {
				c.p.migs.del(scope, m.Name)
			}
			if cur, ok := c.p.instanceGroups.get(scope, m.Name); ok && cur == m.group {
				c.p.instanceGroups.del(scope, m.Name)
			}
			return nil
		},
		Fail: func() {
			m.deleting = nil
			s.migReconcile(m)
		}})
	m.deleting = op
	for _, mem := range m.sortedMembers() {
		s.migDeleteMember(m, mem)
	}
	s.migMaybeDeleted(m)
	return op, nil
}

// migMaybeDeleted finishes a MIG delete once its last member is gone.
func (s *Server) migMaybeDeleted(m *migRec) {
	if op := m.deleting; op != nil && len(m.members) == 0 {
		op.finish()
	}
}

// migReconcile moves the group towards its target size: it deletes the
// least ready (then newest) surplus VMs, adds members for missing ones and
// (re)tries creating every member that has no VM.
func (s *Server) migReconcile(m *migRec) {
	// A reset of the emulator orphans the group; its timers must not create
	// VMs (and take IPs) in the fresh world.
	if m.removed || m.deleting != nil || s.projects[m.p.name] != m.p {
		return
	}
	var active []*migMember
	for _, mem := range m.sortedMembers() {
		if !mem.deleting {
			active = append(active, mem)
		}
	}
	if excess := int64(len(active)) - m.TargetSize; excess > 0 {
		sort.SliceStable(active, func(i, j int) bool {
			ri, rj := active[i].readiness(), active[j].readiness()
			if ri != rj {
				return ri < rj
			}
			return active[i].seq > active[j].seq
		})
		for _, mem := range active[:excess] {
			s.migDeleteMember(m, mem)
		}
		active = active[excess:]
	}
	for n := int64(len(active)); n < m.TargetSize; n++ {
		mem := &migMember{mig: m, name: s.migVMName(m), seq: m.seq}
		m.seq++
		m.members[mem.name] = mem
		active = append(active, mem)
	}
	var missing []*migMember
	for _, mem := range active {
		if mem.in == nil {
			missing = append(missing, mem)
		}
	}
	if len(missing) > 0 {
		s.migCreate(m, missing)
	}
	m.refresh()
}

// migVMName picks <base>-<4 random [a-z0-9]> unused in the zone.
func (s *Server) migVMName(m *migRec) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	for {
		b := []byte(m.BaseInstanceName + "-xxxx")
		for i := len(b) - 4; i < len(b); i++ {
			b[i] = alphabet[s.rng.IntN(len(alphabet))]
		}
		name := string(b)
		if _, taken := m.members[name]; taken {
			continue
		}
		if _, taken := m.p.instances.get("zones/"+m.zone, name); taken {
			continue
		}
		return name
	}
}

// migCreate tries to create the VMs of the given members, checking quota
// for the whole batch at once. Failures are kept on the member and retried.
func (s *Server) migCreate(m *migRec, members []*migMember) {
	tpl, e := m.p.templateRef(m.InstanceTemplate, "instanceTemplate")
	var props []byte
	if e == nil {
		b, err := json.Marshal(tpl.Properties)
		if err != nil {
			e = &apiError{Code: 500, Reason: "internalError", Message: err.Error()}
		}
		props = b
	}
	q := m.p.newQuotaBatch(s.cat.regionOf(m.zone))
	migPath := "projects/" + uitoa(m.p.number) + "/zones/" + m.zone + "/instanceGroupManagers/" + m.Name
	tplPath := "projects/" + uitoa(m.p.number) + "/global/instanceTemplates/" + lastSegment(m.InstanceTemplate)
	failed := false
	for _, mem := range members {
		if e != nil {
			mem.attemptErr, mem.attempt = e, nil
			failed = true
			continue
		}
		// GCE marks a MIG's VMs with these two keys, using the project number.
		created, tplKey := migPath, tplPath
		inst, err := instanceFromTemplate(props, m.zone, mem.name, []*compute.MetadataItems{
			{Key: "instance-template", Value: &tplKey}, {Key: "created-by", Value: &created}})
		if err != nil {
			mem.attemptErr, mem.attempt = &apiError{Code: 500, Reason: "internalError", Message: err.Error()}, nil
			failed = true
			continue
		}
		c := s.internalCall(m.p, m.zone, "compute.instances.insert", mem.name)
		op, rec, ae := s.insertInstance(c, inst, q, mem)
		if ae != nil {
			mem.attemptErr, mem.attempt = ae, nil
			failed = true
			continue
		}
		mem.attemptErr, mem.attempt = nil, op
		if rec == nil || rec.gone {
			failed = true // the operation failed at once (in-use disk, zone DOWN, fault)
			continue
		}
		for _, pl := range m.TargetPools {
			m.p.addToTargetPool(pl, rec.SelfLink)
		}
	}
	if failed {
		s.migScheduleRetry(m)
	}
}

// addToTargetPool makes an instance a member of a pool, as GCE does for the
// VMs of a MIG that names the pool.
func (p *project) addToTargetPool(poolLink, instanceLink string) {
	r, ok := parseRef(poolLink, ref{Project: p.name})
	if !ok {
		return
	}
	tp, found := p.targetPools.get(r.Scope, r.Name)
	if !found {
		return
	}
	for _, l := range tp.Instances {
		if l == instanceLink {
			return
		}
	}
	tp.Instances = append(tp.Instances, instanceLink)
}

// migScheduleRetry retries the group's failed creations after a while.
func (s *Server) migScheduleRetry(m *migRec) {
	if m.retrying || m.removed {
		return
	}
	m.retrying = true
	d := s.lat.draw("compute.instanceGroupManagers.retry")
	if d < migRetryFloor {
		d = migRetryFloor
	}
	s.after(d, func() {
		m.retrying = false
		s.migReconcile(m)
	})
}

// migDeleteMember deletes a member's VM on behalf of the MIG.
func (s *Server) migDeleteMember(m *migRec, mem *migMember) {
	mem.deleting = true
	switch {
	case mem.in == nil:
		delete(m.members, mem.name)
	case mem.in.deleting:
		// Already going away (a client deleted it); migMemberGone drops it.
	default:
		c := s.internalCall(m.p, m.zone, "compute.instances.delete", mem.name)
		s.deleteInstance(c, mem.in, func(ok bool) {
			if ok {
				return
			}
			// The VM survived (zone DOWN, fault): scale-down tries again
			// later; a group delete ends, and fails, with it.
			mem.deleting = false
			if m.deleting != nil {
				m.deleting.finish()
			} else {
				s.migScheduleRetry(m)
			}
		})
	}
}

// migMemberGone hears that a member's VM disappeared: a failed creation is
// retried later, a VM the MIG deleted leaves the group, and a VM deleted
// behind the MIG's back is recreated under the same name.
func (s *Server) migMemberGone(rec *instanceRec, failedInsert bool) {
	mem := rec.member
	m := mem.mig
	if mem.in != rec {
		return
	}
	mem.in = nil
	switch {
	case mem.deleting || m.deleting != nil || m.removed:
		delete(m.members, mem.name)
		s.migMaybeDeleted(m)
	case failedInsert:
		s.migScheduleRetry(m)
	default:
		s.migReconcile(m)
	}
}

// managedInstance renders one member for listManagedInstances.
func (s *Server) managedInstance(m *migRec, mem *migMember) *compute.ManagedInstance {
	mi := &compute.ManagedInstance{
		Instance:      m.p.link("zones", m.zone, "instances", mem.name),
		Name:          mem.name,
		CurrentAction: mem.currentAction(),
		TargetStatus:  "RUNNING",
		Version:       &compute.ManagedInstanceVersion{InstanceTemplate: m.InstanceTemplate},
	}
	if mem.deleting {
		mi.TargetStatus = "DELETED"
	}
	if mem.in != nil {
		mi.Id = mem.in.Id
		mi.InstanceStatus = mem.in.Status
	}
	var errs []*compute.ManagedInstanceLastAttemptErrorsErrors
	switch {
	case mem.attemptErr != nil:
		errs = append(errs, &compute.ManagedInstanceLastAttemptErrorsErrors{Code: mem.attemptErr.opCode(), Message: mem.attemptErr.Message})
	case mem.attempt != nil && mem.attempt.isDone() && mem.attempt.op.Error != nil:
		for _, e := range mem.attempt.op.Error.Errors {
			errs = append(errs, &compute.ManagedInstanceLastAttemptErrorsErrors{Code: e.Code, Message: e.Message})
		}
	}
	if len(errs) > 0 {
		mi.LastAttempt = &compute.ManagedInstanceLastAttempt{Errors: &compute.ManagedInstanceLastAttemptErrors{Errors: errs}}
	}
	return mi
}

// migsListManagedInstances returns every member in one page for PAGELESS
// groups; PAGINATED groups honour maxResults and pageToken.
func (s *Server) migsListManagedInstances(c *call) (any, *apiError) {
	m, _, e := s.findMIG(c)
	if e != nil {
		return nil, e
	}
	members := m.sortedMembers()
	resp := &compute.InstanceGroupManagersListManagedInstancesResponse{}
	if m.ListManagedInstancesResults == "PAGINATED" {
		offset, size, e := pageParams(c)
		if e != nil {
			return nil, e
		}
		if offset > len(members) {
			offset = len(members)
		}
		end := offset + size
		if end < len(members) {
			resp.NextPageToken = pageToken(end)
		} else {
			end = len(members)
		}
		members = members[offset:end]
	}
	for _, mem := range members {
		resp.ManagedInstances = append(resp.ManagedInstances, s.managedInstance(m, mem))
	}
	return resp, nil
}

// migsAggregated lists every zone's managed instance groups: hakube finds a
// cluster's node pools in all zones with one call.
func (s *Server) migsAggregated(c *call) (any, *apiError) {
	by := map[string][]any{}
	for _, m := range c.p.migs.list("") {
		m.refresh()
		scope := "zones/" + lastSegment(m.Zone)
		by[scope] = append(by[scope], m.InstanceGroupManager)
	}
	return s.aggregatedResponse(c, "compute#instanceGroupManagerAggregatedList", "instanceGroupManagers", by, s.zoneScopes())
}
