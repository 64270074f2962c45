package emulator

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

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
	s.handle("POST", "zones/{zone}/instances/{instance}/addAccessConfig", "compute.instances.addAccessConfig", s.instancesAddAccessConfig)
	s.handle("POST", "zones/{zone}/instances/{instance}/deleteAccessConfig", "compute.instances.deleteAccessConfig", s.instancesDeleteAccessConfig)
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

// diskPlan is one disk of an instance being created: an existing disk to
// attach or a new one to create.
type diskPlan struct {
	ad       *compute.AttachedDisk
	existing *compute.Disk
	spec     *diskSpec
}

// nicPlan is one network interface of an instance being created.
type nicPlan struct {
	ni     *compute.NetworkInterface
	net    *compute.Network
	subnet *compute.Subnetwork
	ip     netip.Addr // requested networkIP, if any
	natIP  netip.Addr // requested static natIP, if any
	nat    bool       // has an access config
}

// checkMetadata enforces GCE's metadata limits.
func checkMetadata(md *compute.Metadata, field string) *apiError {
	if md == nil {
		return nil
	}
	total := 0
	seen := map[string]bool{}
	for i, it := range md.Items {
		if it == nil {
			continue
		}
		f := fmt.Sprintf("%s.items[%d].key", field, i)
		if it.Key == "" || len(it.Key) >= 128 {
			return errInvalidField(f, it.Key, "Metadata keys must be 1 to 127 bytes long.")
		}
		for _, r := range it.Key {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return errInvalidField(f, it.Key, "Must be a match of regex '[a-zA-Z0-9-_]{1,128}'")
			}
		}
		if seen[it.Key] {
			return errInvalidField(f, it.Key, "Duplicate metadata key.")
		}
		seen[it.Key] = true
		n := 0
		if it.Value != nil {
			n = len(*it.Value)
		}
		if n > 256<<10 {
			return errInvalidField(fmt.Sprintf("%s.items[%d].value", field, i), it.Key, "Metadata values must be at most 262144 bytes.")
		}
		total += len(it.Key) + n
	}
	if total >= 512<<10 {
		return errInvalidField(field, "", "The total size of all metadata keys and values must be less than 512 KB.")
	}
	return nil
}

func cleanMetadataItems(items []*compute.MetadataItems) []*compute.MetadataItems {
	var out []*compute.MetadataItems
	for _, it := range items {
		if it != nil {
			out = append(out, it)
		}
	}
	return out
}

// fillScheduling adds GCE's scheduling defaults to what the client sent.
func fillScheduling(sc *compute.Scheduling) *compute.Scheduling {
	if sc == nil {
		sc = &compute.Scheduling{}
	}
	if sc.AutomaticRestart == nil {
		v := !sc.Preemptible
		sc.AutomaticRestart = &v
	}
	if sc.OnHostMaintenance == "" {
		sc.OnHostMaintenance = "MIGRATE"
		if sc.Preemptible {
			sc.OnHostMaintenance = "TERMINATE"
		}
	}
	if sc.ProvisioningModel == "" && !sc.Preemptible {
		sc.ProvisioningModel = "STANDARD"
	}
	var aff []*compute.SchedulingNodeAffinity
	for _, a := range sc.NodeAffinities {
		if a != nil {
			aff = append(aff, a)
		}
	}
	sc.NodeAffinities = aff
	sc.ForceSendFields = append(sc.ForceSendFields, "Preemptible")
	return sc
}

// checkTags enforces RFC 1035 network tags.
func checkTags(t *compute.Tags) *apiError {
	if t == nil {
		return nil
	}
	for i, tag := range t.Items {
		if !validName(tag) {
			return errInvalidField(fmt.Sprintf("resource.tags.items[%d]", i), tag,
				"Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'")
		}
	}
	return nil
}

// insertInstance validates inst as instances.insert receives it, claims its
// IPs and disks, stores it as PROVISIONING and starts the insert operation.
// member is the MIG slot the VM fills (nil for a plain insert). Nothing is
// left behind when it returns an error.
func (s *Server) insertInstance(c *call, inst *compute.Instance, q *quotaBatch, member *migMember) (*operation, *instanceRec, *apiError) {
	p, zone := c.p, c.zone
	scope := "zones/" + zone
	region := s.cat.regionOf(zone)
	if e := checkName(inst.Name); e != nil {
		return nil, nil, e
	}
	if _, ok := p.instances.get(scope, inst.Name); ok {
		return nil, nil, errAlreadyExists(relPath(p.name, scope, "instances", inst.Name))
	}
	selfLink := p.link(scope, "instances", inst.Name)

	// Machine type: instances need a URL or partial path, not a bare name.
	if inst.MachineType == "" {
		return nil, nil, errRequired("resource.machineType")
	}
	mr, ok := parseRef(inst.MachineType, ref{Project: p.name})
	if !ok || mr.Coll != "machineTypes" || !strings.HasPrefix(mr.Scope, "zones/") {
		return nil, nil, errInvalidField("resource.machineType", inst.MachineType, "Must be a URL to a valid Compute resource of the correct type.")
	}
	mt, found := findMachineType(mr.Name)
	if !found || mr.Project != p.name {
		return nil, nil, errNotFound(relPath(mr.Project, mr.Scope, "machineTypes", mr.Name))
	}
	if mr.Scope != scope {
		return nil, nil, errInvalidField("resource.machineType", inst.MachineType, "Machine type must be in the same zone as the instance.")
	}

	// Disks: exactly one boot disk, first; each from source or initializeParams.
	var disks []*compute.AttachedDisk
	for _, ad := range inst.Disks {
		if ad != nil {
			disks = append(disks, ad)
		}
	}
	if len(disks) == 0 {
		return nil, nil, errInvalidField("resource.disks", "", "At least one disk, the boot disk, must be specified.")
	}
	var plans []diskPlan
	var conflict *apiError
	newGB := map[string]float64{}
	names := map[string]bool{}
	devices := map[string]bool{}
	for i, ad := range disks {
		f := fmt.Sprintf("resource.disks[%d]", i)
		if ad.Boot != (i == 0) {
			if i == 0 {
				return nil, nil, errInvalidField(f+".boot", "false", "Boot disk must be the first disk attached to the instance.")
			}
			return nil, nil, errInvalidField(f+".boot", "true", "Only one boot disk may be specified.")
		}
		if ad.Type != "" && ad.Type != "PERSISTENT" {
			return nil, nil, errInvalidField(f+".type", ad.Type, "Only PERSISTENT disks are supported by the emulator.")
		}
		if ad.Mode == "" {
			ad.Mode = "READ_WRITE"
		}
		if ad.Mode != "READ_WRITE" && ad.Mode != "READ_ONLY" {
			return nil, nil, errInvalidField(f+".mode", ad.Mode, "")
		}
		if ad.DeviceName == "" {
			ad.DeviceName = fmt.Sprintf("persistent-disk-%d", i)
		}
		if devices[ad.DeviceName] {
			return nil, nil, errInvalidField(f+".deviceName", ad.DeviceName, "Device names must be unique.")
		}
		devices[ad.DeviceName] = true
		switch {
		case (ad.Source == "") == (ad.InitializeParams == nil):
			return nil, nil, errInvalidField(f, "", "Exactly one of source or initializeParams must be specified.")
		case ad.Source != "":
			d, e := p.diskByRef(zone, ad.Source, f+".source")
			if e != nil {
				return nil, nil, e
			}
			if d.Zone != p.link(scope) {
				return nil, nil, errInvalidField(f+".source", ad.Source, "Disk must be in the same zone as the instance.")
			}
			if d.Status != "READY" {
				return nil, nil, errNotReady(relPath(p.name, scope, "disks", d.Name))
			}
			if conflict == nil {
				conflict = p.diskConflict(d, ad.Mode, selfLink)
			}
			plans = append(plans, diskPlan{ad: ad, existing: d})
		default:
			ip := ad.InitializeParams
			name := ip.DiskName
			if name == "" {
				name = inst.Name
				if i > 0 {
					name = fmt.Sprintf("%s-%d", inst.Name, i)
				}
			}
			if e := checkName(name); e != nil {
				return nil, nil, errInvalidField(f+".initializeParams.diskName", name, "")
			}
			if d, ok := p.disks.get(scope, name); ok {
				// GCE attaches an existing disk of that name instead of creating one.
				if conflict == nil {
					conflict = p.diskConflict(d, ad.Mode, selfLink)
				}
				plans = append(plans, diskPlan{ad: ad, existing: d})
				continue
			}
			if names[name] {
				return nil, nil, errInvalidField(f+".initializeParams.diskName", name, "Disk names must be unique.")
			}
			names[name] = true
			if e := checkLabels(ip.Labels); e != nil {
				return nil, nil, e
			}
			sp := &diskSpec{name: name, description: ip.Description, labels: ip.Labels}
			var e *apiError
			if sp.typ, e = p.resolveDiskType(zone, ip.DiskType); e != nil {
				return nil, nil, e
			}
			if ip.SourceImage != "" {
				im, e := p.resolveImage(ip.SourceImage)
				if e != nil {
					return nil, nil, e
				}
				sp.image = &im
			}
			if e := diskSize(sp, ip.DiskSizeGb, f+".initializeParams.diskSizeGb"); e != nil {
				return nil, nil, e
			}
			newGB[diskQuotaMetric(sp.typ)] += float64(sp.sizeGB)
			plans = append(plans, diskPlan{ad: ad, spec: sp})
		}
	}

	// Network interfaces.
	var nicsIn []*compute.NetworkInterface
	for _, ni := range inst.NetworkInterfaces {
		if ni != nil {
			nicsIn = append(nicsIn, ni)
		}
	}
	if len(nicsIn) == 0 {
		return nil, nil, errInvalidField("resource.networkInterfaces", "", "At least one network interface must be specified.")
	}
	var nics []nicPlan
	external := 0
	for i, ni := range nicsIn {
		f := fmt.Sprintf("resource.networkInterfaces[%d]", i)
		n, e := p.networkRef(ni.Network)
		if e != nil {
			return nil, nil, e
		}
		sn, e := p.subnetFor(n, region, ni.Subnetwork)
		if e != nil {
			return nil, nil, e
		}
		np := nicPlan{ni: ni, net: n, subnet: sn}
		if ni.NetworkIP != "" {
			np.ip = addrOf(ni.NetworkIP)
			if !np.ip.Is4() || (sn != nil && !netip.MustParsePrefix(sn.IpCidrRange).Contains(np.ip)) {
				return nil, nil, errInvalidField(f+".networkIP", ni.NetworkIP, "The IP address is not within the subnetwork's range.")
			}
		}
		var acs []*compute.AccessConfig
		for _, ac := range ni.AccessConfigs {
			if ac != nil {
				acs = append(acs, ac)
			}
		}
		if len(acs) > 1 {
			return nil, nil, errInvalidField(f+".accessConfigs", "", "Multiple access configs are not supported.")
		}
		ni.AccessConfigs = acs
		if len(acs) == 1 {
			if e := checkAccessConfig(acs[0], f+".accessConfigs[0]"); e != nil {
				return nil, nil, e
			}
			np.nat = true
			external++
			if acs[0].NatIP != "" {
				np.natIP = addrOf(acs[0].NatIP)
				if !np.natIP.Is4() {
					return nil, nil, errInvalidField(f+".accessConfigs[0].natIP", acs[0].NatIP, "Must be a valid IPv4 address.")
				}
			}
		}
		nics = append(nics, np)
	}
	if e := checkMetadata(inst.Metadata, "resource.metadata"); e != nil {
		return nil, nil, e
	}
	if e := checkLabels(inst.Labels); e != nil {
		return nil, nil, e
	}
	if e := checkTags(inst.Tags); e != nil {
		return nil, nil, e
	}

	if q == nil {
		q = p.newQuotaBatch(region)
	}
	want := map[string]float64{"CPUS": float64(mt.cpus), "INSTANCES": 1, "IN_USE_ADDRESSES": float64(external)}
	for m, gb := range newGB {
		want[m] += gb
	}
	if e := q.take(want); e != nil {
		return nil, nil, e
	}

	rec := &instanceRec{Instance: inst, cpus: mt.cpus}
	id := s.newID()
	if conflict != nil {
		// GCE accepts the request and fails the operation.
		op := s.startOp(c, opSpec{Type: "insert", Target: selfLink, TargetID: id, Scope: scope,
			Kind: "compute.instances.insert", Done: func() *apiError { return conflict }})
		return op, nil, nil
	}

	// Claim IPs; undo on failure.
	var undo []func()
	rollback := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	for i, np := range nics {
		f := fmt.Sprintf("resource.networkInterfaces[%d]", i)
		if np.ip.IsValid() {
			if e := p.claimInternalIP(region, np.ip, selfLink, f+".networkIP"); e != nil {
				rollback()
				return nil, nil, e
			}
		} else {
			a, e := s.allocInternal(np.net, np.subnet, selfLink)
			if e != nil {
				rollback()
				return nil, nil, e
			}
			np.ip = a
			nics[i].ip = a
		}
		ipc := np.ip
		undo = append(undo, func() { p.releaseInternalIP(ipc, selfLink) })
		if !np.nat {
			continue
		}
		if np.natIP.IsValid() {
			if e := p.useExternalIP(region, np.natIP, selfLink, f+".accessConfigs[0].natIP"); e != nil {
				rollback()
				return nil, nil, e
			}
		} else {
			a, e := s.allocEphemeral(selfLink)
			if e != nil {
				rollback()
				return nil, nil, e
			}
			nics[i].natIP = a
		}
		natc := nics[i].natIP
		undo = append(undo, func() { p.releaseExternalIP(natc, selfLink) })
	}

	// Render the instance as GCE returns it.
	now := time.Now()
	inst.Kind = "compute#instance"
	inst.Id = id
	inst.CreationTimestamp = timestamp(now)
	inst.Zone = p.link(scope)
	inst.SelfLink = selfLink
	inst.MachineType = p.link(scope, "machineTypes", mt.name)
	inst.Status = "PROVISIONING"
	inst.StatusMessage = ""
	inst.CpuPlatform = ""
	inst.LastStartTimestamp, inst.LastStopTimestamp, inst.LastSuspendedTimestamp = "", "", ""
	inst.Params = nil
	inst.SourceMachineImage = ""
	inst.Fingerprint = s.newFingerprint()
	inst.LabelFingerprint = s.newFingerprint()
	if len(inst.Labels) == 0 {
		inst.Labels = nil
	}
	md := &compute.Metadata{Kind: "compute#metadata", Fingerprint: s.newFingerprint()}
	if inst.Metadata != nil {
		md.Items = cleanMetadataItems(inst.Metadata.Items)
	}
	inst.Metadata = md
	tags := &compute.Tags{Fingerprint: s.newFingerprint()}
	if inst.Tags != nil && len(inst.Tags.Items) > 0 {
		tags.Items = inst.Tags.Items
	}
	inst.Tags = tags
	inst.Scheduling = fillScheduling(inst.Scheduling)
	if inst.ShieldedInstanceConfig == nil {
		inst.ShieldedInstanceConfig = &compute.ShieldedInstanceConfig{EnableVtpm: true, EnableIntegrityMonitoring: true}
	}
	inst.ShieldedInstanceConfig.ForceSendFields = []string{"EnableSecureBoot", "EnableVtpm", "EnableIntegrityMonitoring"}
	inst.ShieldedInstanceIntegrityPolicy = &compute.ShieldedInstanceIntegrityPolicy{UpdateAutoLearnPolicy: true}
	inst.ResourceStatus = &compute.ResourceStatus{
		EffectiveInstanceMetadata: &compute.ResourceStatusEffectiveInstanceMetadata{VmDnsSettingMetadataValue: "ZonalOnly"},
		Scheduling:                &compute.ResourceStatusScheduling{},
	}
	inst.SatisfiesPzi = true
	// canIpForward shows only when the request gave it, even as false
	// (recorded: computetargetpool#19 has none, computetargetinstance#8 has false).
	inst.ForceSendFields = append(inst.ForceSendFields, "DeletionProtection", "StartRestricted")
	var sas []*compute.ServiceAccount
	for _, sa := range inst.ServiceAccounts {
		if sa == nil {
			continue
		}
		if sa.Email == "" || sa.Email == "default" {
			sa = &compute.ServiceAccount{Email: projectServiceAccount(p), Scopes: sa.Scopes}
		}
		sas = append(sas, sa)
	}
	inst.ServiceAccounts = sas
	for i, np := range nics {
		ni := np.ni
		ni.Kind = "compute#networkInterface"
		ni.Name = fmt.Sprintf("nic%d", i)
		ni.Network = np.net.SelfLink
		ni.Subnetwork = ""
		if np.subnet != nil {
			ni.Subnetwork = np.subnet.SelfLink
		}
		ni.NetworkIP = np.ip.String()
		ni.StackType = "IPV4_ONLY"
		ni.Fingerprint = s.newFingerprint()
		if np.nat {
			ni.AccessConfigs[0].NatIP = np.natIP.String()
		}
	}
	inst.NetworkInterfaces = nicsIn

	// Disks: create the new ones, attach all.
	for i, pl := range plans {
		ad := pl.ad
		d := pl.existing
		if d == nil {
			d = p.newDisk(zone, pl.spec)
			p.disks.put(scope, d.Name, d)
			rec.created = append(rec.created, d)
		}
		attachUser(d, selfLink)
		s.renderAttached(ad, d, i)
	}
	inst.Disks = disks

	p.instances.put(scope, inst.Name, rec)
	if member != nil {
		rec.member = member
		member.in = rec
	}
	s.changed()
	var images []*publicImage
	for _, pl := range plans {
		if pl.spec != nil {
			images = append(images, pl.spec.image)
		}
	}
	op := s.startInstanceOp(c, rec, opSpec{Type: "insert", Target: selfLink, TargetID: id, Scope: scope, Kind: "compute.instances.insert",
		Warnings: s.deprecationWarnings(images...),
		Steps: []opStep{{At: 0.5, Fn: func() {
			if rec.Status == "PROVISIONING" && !rec.deleting && !rec.gone {
				rec.Status = "STAGING"
				for _, d := range rec.created {
					if d.Status == "CREATING" {
						d.Status = "READY"
					}
				}
			}
		}}},
		Done: func() *apiError {
			rec.insertOp = nil
			for _, d := range rec.created {
				if d.Status == "CREATING" {
					d.Status = "READY"
				}
			}
			if rec.deleting || rec.gone {
				// The insert failed: the pending delete also removes the
				// disks it created.
				return &apiError{Code: 409, Reason: "conflict", Message: fmt.Sprintf(
					"The resource '%s' was deleted while it was being created.", relPath(p.name, scope, "instances", inst.Name))}
			}
			rec.created = nil
			s.markRunning(rec)
			return nil
		},
		Fail: func() {
			rec.insertOp = nil
			s.destroyInstance(p, rec, true)
		}})
	if !op.isDone() {
		rec.insertOp = op
	}
	return op, rec, nil
}

func checkAccessConfig(ac *compute.AccessConfig, f string) *apiError {
	if ac.Type == "" {
		ac.Type = "ONE_TO_ONE_NAT"
	}
	if ac.Type != "ONE_TO_ONE_NAT" {
		return errInvalidField(f+".type", ac.Type, "Only ONE_TO_ONE_NAT access configs are supported.")
	}
	if ac.Name == "" {
		ac.Name = "external-nat"
	}
	if ac.NetworkTier == "" {
		ac.NetworkTier = "PREMIUM"
	}
	if ac.NetworkTier != "PREMIUM" && ac.NetworkTier != "STANDARD" {
		return errInvalidField(f+".networkTier", ac.NetworkTier, "")
	}
	ac.Kind = "compute#accessConfig"
	return nil
}

// renderAttached fills an AttachedDisk as an instance GET shows it; the
// initializeParams a client sent are never returned.
func (s *Server) renderAttached(ad *compute.AttachedDisk, d *compute.Disk, index int) {
	ad.Kind = "compute#attachedDisk"
	ad.Type = "PERSISTENT"
	ad.Source = d.SelfLink
	ad.Index = int64(index)
	ad.Interface = "SCSI"
	ad.DiskSizeGb = d.SizeGb
	ad.InitializeParams = nil
	ad.ForceAttach = false
	if ad.Boot {
		ad.Architecture = d.Architecture
		ad.GuestOsFeatures = d.GuestOsFeatures
		ad.Licenses = d.Licenses
	}
	ad.ForceSendFields = append(ad.ForceSendFields, "AutoDelete", "Boot", "Index")
}

// diskConflict reports the in-use error GCE gives when attaching d in mode
// would clash with its current attachments.
func (p *project) diskConflict(d *compute.Disk, mode, user string) *apiError {
	for _, u := range d.Users {
		if u == user {
			continue
		}
		other := p.instanceByLink(u)
		otherMode := "READ_WRITE"
		if other != nil {
			for _, ad := range other.Disks {
				if ad.Source == d.SelfLink {
					otherMode = ad.Mode
				}
			}
		}
		if mode == "READ_WRITE" || otherMode == "READ_WRITE" {
			return errInUse("disk", p.st.trimLink(d.SelfLink), p.st.trimLink(u))
		}
	}
	return nil
}

// claimInternalIP takes a requested networkIP: free, or a RESERVED internal
// static address of the region, which then turns IN_USE.
func (p *project) claimInternalIP(region string, ip netip.Addr, user, field string) *apiError {
	if a := p.findAddressByIP("", ip); a != nil && a.AddressType == "INTERNAL" {
		if lastSegment(a.Region) != region || a.Status == "IN_USE" && (len(a.Users) == 0 || a.Users[0] != user) {
			return errInvalidField(field, ip.String(), fmt.Sprintf("IP address '%s' (or range) is already in use.", ip))
		}
		a.Status = "IN_USE"
		a.Users = []string{user}
		return nil
	}
	if !p.st.ips.claim(ip, user) {
		return errInvalidField(field, ip.String(), fmt.Sprintf("IP address '%s' (or range) is already in use.", ip))
	}
	return nil
}

// releaseInternalIP undoes claimInternalIP or an allocation.
func (p *project) releaseInternalIP(ip netip.Addr, user string) {
	if !ip.IsValid() {
		return
	}
	if a := p.findAddressByIP("", ip); a != nil && a.AddressType == "INTERNAL" {
		if len(a.Users) > 0 && a.Users[0] == user {
			a.Status = "RESERVED"
			a.Users = nil
		}
		return
	}
	if h, ok := p.st.ips.holder(ip); ok && h == user {
		p.st.ips.release(ip)
	}
}

// destroyInstance removes an instance (project.removeInstance) and tells
// its MIG. failedInsert marks the rollback of a failed creation. Idempotent.
func (s *Server) destroyInstance(p *project, rec *instanceRec, failedInsert bool) {
	if !p.removeInstance(rec) {
		return
	}
	if rec.member != nil {
		s.migMemberGone(rec, failedInsert)
	}
	s.changed()
}

// removeInstance takes an instance out of the inventory and undoes what it
// holds: disks are deleted (autoDelete, or created by a failed insert) or
// detached, IPs go back (static ones to RESERVED) and pools forget it. It
// reports false when the instance was already gone.
func (p *project) removeInstance(rec *instanceRec) bool {
	if rec.gone {
		return false
	}
	rec.gone = true
	scope := "zones/" + lastSegment(rec.Zone)
	if cur, ok := p.instances.get(scope, rec.Name); ok && cur == rec {
		p.instances.del(scope, rec.Name)
	}
	created := map[*compute.Disk]bool{}
	for _, d := range rec.created {
		created[d] = true
	}
	rec.created = nil
	for _, ad := range rec.Disks {
		d := p.diskOfAttached(ad)
		if d == nil {
			continue
		}
		detachUser(d, rec.SelfLink)
		if (ad.AutoDelete || created[d]) && len(d.Users) == 0 {
			ds := "zones/" + lastSegment(d.Zone)
			if cur, ok := p.disks.get(ds, d.Name); ok && cur == d {
				p.disks.del(ds, d.Name)
			}
		}
	}
	for _, ni := range rec.NetworkInterfaces {
		p.releaseInternalIP(addrOf(ni.NetworkIP), rec.SelfLink)
		for _, ac := range ni.AccessConfigs {
			p.releaseExternalIP(addrOf(ac.NatIP), rec.SelfLink)
		}
	}
	p.dropFromTargetPools(rec.SelfLink)
	return true
}

func (p *project) diskOfAttached(ad *compute.AttachedDisk) *compute.Disk {
	r, ok := parseRef(ad.Source, ref{Project: p.name})
	if !ok || r.Coll != "disks" {
		return nil
	}
	d, _ := p.disks.get(r.Scope, r.Name)
	return d
}

func (s *Server) instancesInsert(c *call) (any, *apiError) {
	var inst compute.Instance
	if e := c.decode(&inst); e != nil {
		return nil, e
	}
	var keys map[string]json.RawMessage
	if json.Unmarshal(c.body, &keys) == nil && keys["canIpForward"] != nil {
		inst.ForceSendFields = append(inst.ForceSendFields, "CanIpForward")
	}
	if v := c.query("sourceMachineImage"); v != "" {
		// The emulator has no machine images.
		r, ok := parseRef(v, ref{Project: c.p.name, Scope: "global", Coll: "machineImages"})
		if !ok || r.Coll != "machineImages" {
			return nil, errInvalidField("sourceMachineImage", v, "")
		}
		return nil, errNotFound(relPath(r.Project, "global", "machineImages", r.Name))
	}
	in := &inst
	if v := c.query("sourceInstanceTemplate"); v != "" {
		var e *apiError
		if in, e = s.instanceFromTemplateRef(c, v, &inst); e != nil {
			return nil, e
		}
	}
	op, _, e := s.insertInstance(c, in, nil, nil)
	if e != nil {
		return nil, e
	}
	return op, nil
}

// instanceFromTemplateRef builds an insert body from a template, with the
// fields the request sets overriding the template's, as GCE does.
func (s *Server) instanceFromTemplateRef(c *call, v string, body *compute.Instance) (*compute.Instance, *apiError) {
	tpl, e := c.p.templateRef(v, "sourceInstanceTemplate")
	if e != nil {
		return nil, e
	}
	props, err := json.Marshal(tpl.Properties)
	if err != nil {
		return nil, &apiError{Code: 500, Reason: "internalError", Message: err.Error()}
	}
	in, err := instanceFromTemplate(props, c.zone, body.Name, nil)
	if err != nil {
		return nil, &apiError{Code: 500, Reason: "internalError", Message: err.Error()}
	}
	if body.MachineType != "" {
		in.MachineType = body.MachineType
	}
	if body.Description != "" {
		in.Description = body.Description
	}
	if len(body.Disks) > 0 {
		in.Disks = body.Disks
	}
	if len(body.NetworkInterfaces) > 0 {
		in.NetworkInterfaces = body.NetworkInterfaces
	}
	if body.Metadata != nil {
		in.Metadata = body.Metadata
	}
	if body.Labels != nil {
		in.Labels = body.Labels
	}
	if body.Tags != nil {
		in.Tags = body.Tags
	}
	if body.Scheduling != nil {
		in.Scheduling = body.Scheduling
	}
	if body.ServiceAccounts != nil {
		in.ServiceAccounts = body.ServiceAccounts
	}
	if body.ShieldedInstanceConfig != nil {
		in.ShieldedInstanceConfig = body.ShieldedInstanceConfig
	}
	in.CanIpForward = in.CanIpForward || body.CanIpForward
	if slices.Contains(body.ForceSendFields, "CanIpForward") {
		in.ForceSendFields = append(in.ForceSendFields, "CanIpForward")
	}
	in.DeletionProtection = body.DeletionProtection
	return in, nil
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

func (s *Server) instancesDelete(c *call) (any, *apiError) {
	in, path, e := s.findInstance(c)
	if e != nil {
		return nil, e
	}
	if in.deleting {
		return nil, errNotReady(path)
	}
	if in.DeletionProtection {
		return nil, errBadRequest("Invalid resource usage: 'Resource cannot be deleted if it's protected against deletion.'.")
	}
	return s.deleteInstance(c, in, nil), nil
}

// deleteInstance starts an instance delete: STOPPING at once, gone when the
// operation is DONE. It is allowed while the insert still runs, which then
// fails with 409. done, if set, hears whether the VM went away.
func (s *Server) deleteInstance(c *call, in *instanceRec, done func(ok bool)) *operation {
	prev := in.Status
	in.deleting = true
	in.Status = "STOPPING"
	s.changed()
	return s.startInstanceOp(c, in, opSpec{Type: "delete", Target: in.SelfLink, TargetID: in.Id, Scope: "zones/" + c.zone,
		Kind: "compute.instances.delete",
		Done: func() *apiError {
			s.destroyInstance(c.p, in, false)
			if done != nil {
				done(true)
			}
			return nil
		},
		Fail: func() {
			if !in.gone {
				in.deleting = false
				in.Status = prev
			}
			if done != nil {
				done(false)
			}
		}})
}

func (s *Server) instancesStop(c *call) (any, *apiError) {
	in, e := s.mutableInstance(c)
	if e != nil {
		return nil, e
	}
	spec := opSpec{Type: "stop", Target: in.SelfLink, TargetID: in.Id, Scope: "zones/" + c.zone}
	switch in.Status {
	case "TERMINATED": // nothing to do; GCE answers with a successful op
	case "RUNNING":
		in.Status = "STOPPING"
		spec.Done = func() *apiError {
			if in.deleting || in.gone {
				return nil
			}
			in.Status = "TERMINATED"
			in.LastStopTimestamp = timestamp(time.Now())
			in.CpuPlatform = "Unknown CPU Platform"
			// An ephemeral external IP does not survive a stop; a static one does.
			for _, ni := range in.NetworkInterfaces {
				for _, ac := range ni.AccessConfigs {
					ip := addrOf(ac.NatIP)
					if ip.IsValid() && c.p.findAddressByIP("", ip) == nil {
						c.p.releaseExternalIP(ip, in.SelfLink)
						ac.NatIP = ""
					}
				}
			}
			return nil
		}
		spec.Fail = func() {
			if in.Status == "STOPPING" && !in.deleting {
				in.Status = "RUNNING"
			}
		}
	default:
		return nil, errNotReady(relPath(c.p.name, "zones/"+c.zone, "instances", c.name))
	}
	return s.startInstanceOp(c, in, spec), nil
}

func (s *Server) instancesStart(c *call) (any, *apiError) {
	in, e := s.mutableInstance(c)
	if e != nil {
		return nil, e
	}
	spec := opSpec{Type: "start", Target: in.SelfLink, TargetID: in.Id, Scope: "zones/" + c.zone}
	switch in.Status {
	case "RUNNING": // nothing to do
	case "TERMINATED":
		region := s.cat.regionOf(c.zone)
		if e := c.p.newQuotaBatch(region).take(map[string]float64{"CPUS": float64(in.guestCPUs())}); e != nil {
			return nil, e
		}
		in.Status = "STAGING"
		spec.Done = func() *apiError {
			if in.deleting || in.gone {
				return nil
			}
			// Access configs that lost their ephemeral IP at stop get a new one.
			for _, ni := range in.NetworkInterfaces {
				for _, ac := range ni.AccessConfigs {
					if ac.NatIP != "" {
						continue
					}
					ip, e := s.allocEphemeral(in.SelfLink)
					if e != nil {
						in.Status = "TERMINATED"
						return e
					}
					ac.NatIP = ip.String()
				}
			}
			s.markRunning(in)
			return nil
		}
		spec.Fail = func() {
			if in.Status == "STAGING" && !in.deleting {
				in.Status = "TERMINATED"
			}
		}
	default:
		return nil, errNotReady(relPath(c.p.name, "zones/"+c.zone, "instances", c.name))
	}
	return s.startInstanceOp(c, in, spec), nil
}

func (s *Server) instancesReset(c *call) (any, *apiError) {
	in, e := s.mutableInstance(c)
	if e != nil {
		return nil, e
	}
	if in.Status != "RUNNING" {
		return nil, errNotReady(relPath(c.p.name, "zones/"+c.zone, "instances", c.name))
	}
	return s.startInstanceOp(c, in, opSpec{Type: "reset", Target: in.SelfLink, TargetID: in.Id, Scope: "zones/" + c.zone}), nil
}

// nicByQuery finds the NIC named by the networkInterface query parameter.
func nicByQuery(c *call, in *instanceRec) (*compute.NetworkInterface, *apiError) {
	name := c.query("networkInterface")
	if name == "" {
		return nil, errRequired("networkInterface")
	}
	for _, ni := range in.NetworkInterfaces {
		if ni.Name == name {
			return ni, nil
		}
	}
	return nil, errInvalidField("networkInterface", name, "The network interface does not exist on this instance.")
}

// bumpNIC gives a NIC (and the instance) new fingerprints after a change.
func (s *Server) bumpNIC(in *instanceRec, ni *compute.NetworkInterface) {
	ni.Fingerprint = s.newFingerprint()
	in.Fingerprint = s.newFingerprint()
}

// instancesAddAccessConfig claims the IP at request time (so a conflicting
// claim fails synchronously) and attaches it when the operation is DONE.
func (s *Server) instancesAddAccessConfig(c *call) (any, *apiError) {
	in, e := s.mutableInstance(c)
	if e != nil {
		return nil, e
	}
	ni, e := nicByQuery(c, in)
	if e != nil {
		return nil, e
	}
	var ac compute.AccessConfig
	if e := c.decode(&ac); e != nil {
		return nil, e
	}
	if len(ni.AccessConfigs) > 0 {
		return nil, errBadRequest("At most one access config currently supported.")
	}
	if e := checkAccessConfig(&ac, "resource"); e != nil {
		return nil, e
	}
	region := s.cat.regionOf(c.zone)
	var ip netip.Addr
	switch {
	case ac.NatIP != "":
		ip = addrOf(ac.NatIP)
		if !ip.Is4() {
			return nil, errInvalidField("resource.natIP", ac.NatIP, "Must be a valid IPv4 address.")
		}
		if e := c.p.useExternalIP(region, ip, in.SelfLink, "resource.natIP"); e != nil {
			return nil, e
		}
	case in.Status != "TERMINATED":
		a, e := s.allocEphemeral(in.SelfLink)
		if e != nil {
			return nil, e
		}
		ip = a
		ac.NatIP = ip.String()
	}
	obj := &ac
	return s.startInstanceOp(c, in, opSpec{Type: "addAccessConfig", Target: in.SelfLink, TargetID: in.Id, Scope: "zones/" + c.zone,
		Done: func() *apiError {
			if in.deleting || in.gone {
				c.p.releaseExternalIP(ip, in.SelfLink)
				return nil
			}
			if len(ni.AccessConfigs) > 0 {
				c.p.releaseExternalIP(ip, in.SelfLink)
				return errBadRequest("At most one access config currently supported.")
			}
			ni.AccessConfigs = append(ni.AccessConfigs, obj)
			s.bumpNIC(in, ni)
			return nil
		},
		Fail: func() { c.p.releaseExternalIP(ip, in.SelfLink) }}), nil
}

// instancesDeleteAccessConfig detaches the IP when the operation is DONE:
// until then the old IP still reaches the VM.
func (s *Server) instancesDeleteAccessConfig(c *call) (any, *apiError) {
	in, e := s.mutableInstance(c)
	if e != nil {
		return nil, e
	}
	name := c.query("accessConfig")
	if name == "" {
		return nil, errRequired("accessConfig")
	}
	ni, e := nicByQuery(c, in)
	if e != nil {
		return nil, e
	}
	found := false
	for _, ac := range ni.AccessConfigs {
		found = found || ac.Name == name
	}
	if !found {
		return nil, errInvalidField("accessConfig", name, "The access config does not exist on this network interface.")
	}
	return s.startInstanceOp(c, in, opSpec{Type: "deleteAccessConfig", Target: in.SelfLink, TargetID: in.Id, Scope: "zones/" + c.zone,
		Done: func() *apiError {
			if in.deleting || in.gone {
				return nil
			}
			out := ni.AccessConfigs[:0]
			for _, ac := range ni.AccessConfigs {
				if ac.Name == name {
					c.p.releaseExternalIP(addrOf(ac.NatIP), in.SelfLink)
					continue
				}
				out = append(out, ac)
			}
			if len(out) == 0 {
				out = nil
			}
			ni.AccessConfigs = out
			s.bumpNIC(in, ni)
			return nil
		}}), nil
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
