// instances.insert: the request (or a template it names) is checked as a
// whole, planned (machine type, disks, NICs), its IPs claimed, rendered as
// GCE returns it, and only then are its new disks created.

package emulator

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/hakube/hakube/internal/emulator/guest"
	compute "google.golang.org/api/compute/v1"
)

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
	mt, e := p.instanceMachineType(inst, scope)
	if e != nil {
		return nil, nil, e
	}
	disks, e := p.planDisks(inst, zone)
	if e != nil {
		return nil, nil, e
	}
	nics, e := p.planNICs(inst, region)
	if e != nil {
		return nil, nil, e
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
	if e := q.take(instanceQuota(mt, disks, nics)); e != nil {
		return nil, nil, e
	}

	rec := &instanceRec{Instance: inst, cpus: mt.cpus, console: guest.NewConsole(0)}
	id := s.newID()
	if conflict := p.disksConflict(disks, selfLink); conflict != nil {
		// GCE accepts the request and fails the operation.
		op := s.startOp(c, opSpec{Type: "insert", Target: selfLink, TargetID: id, Scope: scope,
			Kind: "compute.instances.insert", Done: func() *apiError { return conflict }})
		return op, nil, nil
	}
	if e := p.claimIPs(nics, region, selfLink); e != nil {
		return nil, nil, e
	}
	if e := p.claimAliases(nics, selfLink); e != nil {
		// GCE accepts the request and fails the operation.
		p.releaseIPs(nics, selfLink)
		op := s.startOp(c, opSpec{Type: "insert", Target: selfLink, TargetID: id, Scope: scope,
			Kind: "compute.instances.insert", Done: func() *apiError { return e }})
		return op, nil, nil
	}
	p.renderInstance(inst, mt, id, scope, nics)
	p.createDisks(rec, disks, zone)

	p.instances.put(scope, inst.Name, rec)
	if member != nil {
		rec.member = member
		member.in = rec
	}
	s.changed()
	op := s.startInsertOp(c, rec, disks)
	if !op.isDone() {
		rec.insertOp = op
	}
	return op, rec, nil
}

// instanceMachineType resolves the machine type: instances need a URL or
// partial path, not a bare name, in their own zone.
func (p *project) instanceMachineType(inst *compute.Instance, scope string) (machineType, *apiError) {
	if inst.MachineType == "" {
		return machineType{}, errRequired("resource.machineType")
	}
	mr, ok := parseRef(inst.MachineType, ref{Project: p.name})
	if !ok || mr.Coll != "machineTypes" || !strings.HasPrefix(mr.Scope, "zones/") {
		return machineType{}, errInvalidField("resource.machineType", inst.MachineType, "Must be a URL to a valid Compute resource of the correct type.")
	}
	mt, found := findMachineType(mr.Name)
	if !found || mr.Project != p.name {
		return machineType{}, errNotFound(relPath(mr.Project, mr.Scope, "machineTypes", mr.Name))
	}
	if mr.Scope != scope {
		return machineType{}, errInvalidField("resource.machineType", inst.MachineType, "Machine type must be in the same zone as the instance.")
	}
	return mt, nil
}

// planDisks checks the disks: exactly one boot disk, first; each from
// source or initializeParams. Nothing is created yet.
func (p *project) planDisks(inst *compute.Instance, zone string) ([]diskPlan, *apiError) {
	var disks []*compute.AttachedDisk
	for _, ad := range inst.Disks {
		if ad != nil {
			disks = append(disks, ad)
		}
	}
	if len(disks) == 0 {
		return nil, errInvalidField("resource.disks", "", "At least one disk, the boot disk, must be specified.")
	}
	var plans []diskPlan
	names := map[string]bool{}   // of disks to create
	devices := map[string]bool{} // of all disks
	for i, ad := range disks {
		f := fmt.Sprintf("resource.disks[%d]", i)
		if e := checkInstanceDisk(ad, i, f, devices); e != nil {
			return nil, e
		}
		var pl diskPlan
		var e *apiError
		if ad.Source != "" {
			pl, e = p.planSourceDisk(ad, zone, f)
		} else {
			pl, e = p.planNewDisk(ad, inst.Name, zone, i, f, names)
		}
		if e != nil {
			return nil, e
		}
		plans = append(plans, pl)
	}
	return plans, nil
}

// checkInstanceDisk checks what every attached disk of an insert needs, and
// fills mode and device name.
func checkInstanceDisk(ad *compute.AttachedDisk, i int, f string, devices map[string]bool) *apiError {
	if ad.Boot != (i == 0) {
		if i == 0 {
			return errInvalidField(f+".boot", "false", "Boot disk must be the first disk attached to the instance.")
		}
		return errInvalidField(f+".boot", "true", "Only one boot disk may be specified.")
	}
	if ad.Type != "" && ad.Type != "PERSISTENT" {
		return errInvalidField(f+".type", ad.Type, "Only PERSISTENT disks are supported by the emulator.")
	}
	if ad.Mode == "" {
		ad.Mode = "READ_WRITE"
	}
	if ad.Mode != "READ_WRITE" && ad.Mode != "READ_ONLY" {
		return errInvalidField(f+".mode", ad.Mode, "")
	}
	if ad.DeviceName == "" {
		ad.DeviceName = fmt.Sprintf("persistent-disk-%d", i)
	}
	if devices[ad.DeviceName] {
		return errInvalidField(f+".deviceName", ad.DeviceName, "Device names must be unique.")
	}
	devices[ad.DeviceName] = true
	if (ad.Source == "") == (ad.InitializeParams == nil) {
		return errInvalidField(f, "", "Exactly one of source or initializeParams must be specified.")
	}
	return nil
}

// planSourceDisk is an existing disk to attach: READY, in the same zone.
func (p *project) planSourceDisk(ad *compute.AttachedDisk, zone, f string) (diskPlan, *apiError) {
	scope := "zones/" + zone
	d, e := p.diskByRef(zone, ad.Source, f+".source")
	if e != nil {
		return diskPlan{}, e
	}
	if d.Zone != p.link(scope) {
		return diskPlan{}, errInvalidField(f+".source", ad.Source, "Disk must be in the same zone as the instance.")
	}
	if d.Status != "READY" {
		return diskPlan{}, errNotReady(relPath(p.name, scope, "disks", d.Name))
	}
	return diskPlan{ad: ad, existing: d}, nil
}

// planNewDisk is a disk from initializeParams, named after the instance by
// default. names holds the names of the instance's other new disks.
func (p *project) planNewDisk(ad *compute.AttachedDisk, instance, zone string, i int, f string, names map[string]bool) (diskPlan, *apiError) {
	ip := ad.InitializeParams
	name := ip.DiskName
	if name == "" {
		name = instance
		if i > 0 {
			name = fmt.Sprintf("%s-%d", instance, i)
		}
	}
	if e := checkName(name); e != nil {
		return diskPlan{}, errInvalidField(f+".initializeParams.diskName", name, "")
	}
	if d, ok := p.disks.get("zones/"+zone, name); ok {
		// GCE attaches an existing disk of that name instead of creating one.
		return diskPlan{ad: ad, existing: d}, nil
	}
	if names[name] {
		return diskPlan{}, errInvalidField(f+".initializeParams.diskName", name, "Disk names must be unique.")
	}
	names[name] = true
	if e := checkLabels(ip.Labels); e != nil {
		return diskPlan{}, e
	}
	sp := &diskSpec{name: name, description: ip.Description, labels: ip.Labels}
	var e *apiError
	if sp.typ, e = p.resolveDiskType(zone, ip.DiskType); e != nil {
		return diskPlan{}, e
	}
	if ip.SourceImage != "" {
		im, e := p.resolveImage(ip.SourceImage)
		if e != nil {
			return diskPlan{}, e
		}
		sp.image = &im
	}
	if e := diskSize(sp, ip.DiskSizeGb, f+".initializeParams.diskSizeGb"); e != nil {
		return diskPlan{}, e
	}
	return diskPlan{ad: ad, spec: sp}, nil
}

// disksConflict is the in-use error of the first existing disk the instance
// cannot attach in the mode it asks for.
func (p *project) disksConflict(disks []diskPlan, selfLink string) *apiError {
	for _, pl := range disks {
		if pl.existing != nil {
			if e := p.diskConflict(pl.existing, pl.ad.Mode, selfLink); e != nil {
				return e
			}
		}
	}
	return nil
}

// planNICs checks the network interfaces: network, subnet, requested IPs
// and at most one access config each. Nothing is claimed yet.
func (p *project) planNICs(inst *compute.Instance, region string) ([]nicPlan, *apiError) {
	var nics []nicPlan
	for _, ni := range inst.NetworkInterfaces {
		if ni == nil {
			continue
		}
		np, e := p.planNIC(ni, region, fmt.Sprintf("resource.networkInterfaces[%d]", len(nics)))
		if e != nil {
			return nil, e
		}
		nics = append(nics, np)
	}
	if len(nics) == 0 {
		return nil, errInvalidField("resource.networkInterfaces", "", "At least one network interface must be specified.")
	}
	return nics, nil
}

// planNIC checks one network interface; f names it in errors.
func (p *project) planNIC(ni *compute.NetworkInterface, region, f string) (nicPlan, *apiError) {
	n, e := p.networkRef(ni.Network)
	if e != nil {
		return nicPlan{}, e
	}
	sn, e := p.subnetFor(n, region, ni.Subnetwork)
	if e != nil {
		return nicPlan{}, e
	}
	np := nicPlan{ni: ni, net: n, subnet: sn}
	if np.aliases, e = planAliases(ni, sn, f); e != nil {
		return nicPlan{}, e
	}
	if ni.NetworkIP != "" {
		np.ip = addrOf(ni.NetworkIP)
		if !np.ip.Is4() || (sn != nil && !netip.MustParsePrefix(sn.IpCidrRange).Contains(np.ip)) {
			return nicPlan{}, errInvalidField(f+".networkIP", ni.NetworkIP, "The IP address is not within the subnetwork's range.")
		}
	}
	var acs []*compute.AccessConfig
	for _, ac := range ni.AccessConfigs {
		if ac != nil {
			acs = append(acs, ac)
		}
	}
	if len(acs) > 1 {
		return nicPlan{}, errInvalidField(f+".accessConfigs", "", "Multiple access configs are not supported.")
	}
	ni.AccessConfigs = acs
	if len(acs) == 1 {
		if e := checkAccessConfig(acs[0], f+".accessConfigs[0]"); e != nil {
			return nicPlan{}, e
		}
		np.nat = true
		if acs[0].NatIP != "" {
			np.natIP = addrOf(acs[0].NatIP)
			if !np.natIP.Is4() {
				return nicPlan{}, errInvalidField(f+".accessConfigs[0].natIP", acs[0].NatIP, "Must be a valid IPv4 address.")
			}
		}
	}
	return np, nil
}

// instanceQuota is what an insert takes of the region's quotas.
func instanceQuota(mt machineType, disks []diskPlan, nics []nicPlan) map[string]float64 {
	external := 0
	for _, np := range nics {
		if np.nat {
			external++
		}
	}
	want := map[string]float64{"CPUS": float64(mt.cpus), "INSTANCES": 1, "IN_USE_ADDRESSES": float64(external)}
	for _, pl := range disks {
		if pl.spec != nil {
			want[diskQuotaMetric(pl.spec.typ)] += float64(pl.spec.sizeGB)
		}
	}
	return want
}

// claimIPs gives every NIC its internal IP and, with an access config, its
// external one: the ones asked for, or new ones. On failure nothing stays
// claimed.
func (p *project) claimIPs(nics []nicPlan, region, selfLink string) *apiError {
	var undo []func()
	rollback := func(e *apiError) *apiError {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		return e
	}
	for i := range nics {
		np := &nics[i]
		f := fmt.Sprintf("resource.networkInterfaces[%d]", i)
		if np.ip.IsValid() {
			if e := p.claimInternalIP(region, np.ip, selfLink, f+".networkIP"); e != nil {
				return rollback(e)
			}
		} else {
			a, e := p.st.allocInternal(np.net, np.subnet, selfLink)
			if e != nil {
				return rollback(e)
			}
			np.ip = a
		}
		ip := np.ip
		undo = append(undo, func() { p.releaseInternalIP(ip, selfLink) })
		if !np.nat {
			continue
		}
		if np.natIP.IsValid() {
			if e := p.useExternalIP(region, np.natIP, selfLink, f+".accessConfigs[0].natIP"); e != nil {
				return rollback(e)
			}
		} else {
			a, e := p.st.allocEphemeral(selfLink)
			if e != nil {
				return rollback(e)
			}
			np.natIP = a
		}
		nat := np.natIP
		undo = append(undo, func() { p.releaseExternalIP(nat, selfLink) })
	}
	return nil
}

// releaseIPs undoes claimIPs.
func (p *project) releaseIPs(nics []nicPlan, selfLink string) {
	for _, np := range nics {
		p.releaseInternalIP(np.ip, selfLink)
		if np.nat {
			p.releaseExternalIP(np.natIP, selfLink)
		}
	}
}

// renderInstance fills in the instance as GCE returns it.
func (p *project) renderInstance(inst *compute.Instance, mt machineType, id uint64, scope string, nics []nicPlan) {
	st := p.st
	inst.Kind = "compute#instance"
	inst.Id = id
	inst.CreationTimestamp = timestamp(time.Now())
	inst.Zone = p.link(scope)
	inst.SelfLink = p.link(scope, "instances", inst.Name)
	inst.MachineType = p.link(scope, "machineTypes", mt.name)
	inst.Status = "PROVISIONING"
	inst.StatusMessage = ""
	inst.CpuPlatform = ""
	inst.LastStartTimestamp, inst.LastStopTimestamp, inst.LastSuspendedTimestamp = "", "", ""
	inst.Params = nil
	inst.SourceMachineImage = ""
	inst.Fingerprint = st.newFingerprint()
	inst.LabelFingerprint = st.newFingerprint()
	if len(inst.Labels) == 0 {
		inst.Labels = nil
	}
	md := &compute.Metadata{Kind: "compute#metadata", Fingerprint: st.newFingerprint()}
	if inst.Metadata != nil {
		md.Items = cleanMetadataItems(inst.Metadata.Items)
	}
	inst.Metadata = md
	tags := &compute.Tags{Fingerprint: st.newFingerprint()}
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
	inst.NetworkInterfaces = nil
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
		ni.AliasIpRanges = renderAliases(np.aliases)
		ni.StackType = "IPV4_ONLY"
		ni.Fingerprint = st.newFingerprint()
		if np.nat {
			ni.AccessConfigs[0].NatIP = np.natIP.String()
		}
		inst.NetworkInterfaces = append(inst.NetworkInterfaces, ni)
	}
}

// createDisks creates the instance's new disks and attaches all of them.
func (p *project) createDisks(rec *instanceRec, disks []diskPlan, zone string) {
	rec.Disks = nil
	for i, pl := range disks {
		d := pl.existing
		if d == nil {
			d = p.newDisk(zone, pl.spec)
			p.disks.put("zones/"+zone, d.Name, d)
			rec.created = append(rec.created, d)
		}
		attachUser(d, rec.SelfLink)
		renderAttached(pl.ad, d, i)
		rec.Disks = append(rec.Disks, pl.ad)
	}
}

// startInsertOp starts the insert operation: STAGING half way, RUNNING at
// DONE; the new disks are READY by STAGING. A delete while it runs makes it
// fail, and a failed insert removes the instance and its new disks.
func (s *Server) startInsertOp(c *call, rec *instanceRec, disks []diskPlan) *operation {
	p := c.p
	var images []*publicImage
	for _, pl := range disks {
		if pl.spec != nil {
			images = append(images, pl.spec.image)
		}
	}
	readyDisks := func() {
		for _, d := range rec.created {
			if d.Status == "CREATING" {
				d.Status = "READY"
			}
		}
	}
	scope := "zones/" + c.zone
	return s.startInstanceOp(c, rec, opSpec{Type: "insert", Target: rec.SelfLink, TargetID: rec.Id, Scope: scope, Kind: "compute.instances.insert",
		Warnings: deprecationWarnings(images...),
		Steps: []opStep{{At: 0.5, Fn: func() {
			if rec.Status == "PROVISIONING" && !rec.deleting && !rec.gone {
				rec.Status = "STAGING"
				readyDisks()
			}
		}}},
		Done: func() *apiError {
			rec.insertOp = nil
			readyDisks()
			if rec.deleting || rec.gone {
				// The insert failed: the pending delete also removes the
				// disks it created.
				return &apiError{Code: 409, Reason: "conflict", Message: fmt.Sprintf(
					"The resource '%s' was deleted while it was being created.", relPath(p.name, scope, "instances", rec.Name))}
			}
			rec.created = nil
			s.markRunning(rec)
			return nil
		},
		Fail: func() {
			rec.insertOp = nil
			s.destroyInstance(p, rec, true)
		}})
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
	// aliases are its alias IP ranges, their blocks once claimed.
	aliases []aliasPlan
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
