package emulator

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	compute "google.golang.org/api/compute/v1"
)

func (s *Server) routesTemplates() {
	s.handle("POST", "global/instanceTemplates", "compute.instanceTemplates.insert", s.templatesInsert)
	s.handle("GET", "global/instanceTemplates", "compute.instanceTemplates.list", s.templatesList)
	s.handle("GET", "global/instanceTemplates/{instanceTemplate}", "compute.instanceTemplates.get", s.templatesGet)
	s.handle("DELETE", "global/instanceTemplates/{instanceTemplate}", "compute.instanceTemplates.delete", s.templatesDelete)
	s.handle("GET", "aggregated/instanceTemplates", "compute.instanceTemplates.aggregatedList", s.templatesAggregated)
}

// templatesInsert validates and fills the template as GCE does: properties
// are kept as sent (machineType stays a bare name, disks keep their
// initializeParams) with defaults and kinds added.
func (s *Server) templatesInsert(c *call) (any, *apiError) {
	var t compute.InstanceTemplate
	if e := c.decode(&t); e != nil {
		return nil, e
	}
	if e := checkName(t.Name); e != nil {
		return nil, e
	}
	if _, ok := c.p.templates.get("global", t.Name); ok {
		return nil, errAlreadyExists(relPath(c.p.name, "global", "instanceTemplates", t.Name))
	}
	pr := t.Properties
	if pr == nil {
		return nil, errRequired("resource.properties")
	}
	if pr.MachineType == "" {
		return nil, errRequired("resource.properties.machineType")
	}
	if strings.Contains(pr.MachineType, "/") {
		return nil, errInvalidField("resource.properties.machineType", pr.MachineType, "Must be the name of a machine type, not a URL.")
	}
	if _, ok := findMachineType(pr.MachineType); !ok {
		return nil, errInvalidField("resource.properties.machineType", pr.MachineType,
			fmt.Sprintf("Machine type with name '%s' does not exist.", pr.MachineType))
	}
	if e := c.p.checkTemplateDisks(pr); e != nil {
		return nil, e
	}
	if e := c.p.checkTemplateNICs(pr); e != nil {
		return nil, e
	}
	if e := checkMetadata(pr.Metadata, "resource.properties.metadata"); e != nil {
		return nil, e
	}
	md := &compute.Metadata{Kind: "compute#metadata", Fingerprint: s.newFingerprint()}
	if pr.Metadata != nil {
		md.Items = cleanMetadataItems(pr.Metadata.Items)
	}
	pr.Metadata = md
	if e := checkLabels(pr.Labels); e != nil {
		return nil, e
	}
	if e := checkTags(pr.Tags); e != nil {
		return nil, e
	}
	pr.Scheduling = fillScheduling(pr.Scheduling)
	if e := c.p.checkQuota("", "INSTANCE_TEMPLATES", 1); e != nil {
		return nil, e
	}
	t.Kind = "compute#instanceTemplate"
	t.Id = s.newID()
	t.CreationTimestamp = timestamp(time.Now())
	t.SelfLink = c.p.link("global", "instanceTemplates", t.Name)
	t.Region = ""
	t.ForceSendFields = append(t.ForceSendFields, "Description")
	obj := &t
	return s.startOp(c, opSpec{Type: "compute.instanceTemplates.insert", Target: obj.SelfLink, TargetID: obj.Id, Scope: "global",
		Done: func() *apiError {
			if _, ok := c.p.templates.get("global", obj.Name); ok {
				return errAlreadyExists(relPath(c.p.name, "global", "instanceTemplates", obj.Name))
			}
			c.p.templates.put("global", obj.Name, obj)
			return nil
		}}), nil
}

// checkTemplateDisks checks a template's disks and fills their defaults;
// initializeParams are kept as sent.
func (p *project) checkTemplateDisks(pr *compute.InstanceProperties) *apiError {
	var disks []*compute.AttachedDisk
	for _, ad := range pr.Disks {
		if ad != nil {
			disks = append(disks, ad)
		}
	}
	if len(disks) == 0 {
		return errInvalidField("resource.properties.disks", "", "At least one disk, the boot disk, must be specified.")
	}
	for i, ad := range disks {
		f := fmt.Sprintf("resource.properties.disks[%d]", i)
		if (ad.Source == "") == (ad.InitializeParams == nil) {
			return errInvalidField(f, "", "Exactly one of source or initializeParams must be specified.")
		}
		if ip := ad.InitializeParams; ip != nil {
			if ip.SourceImage != "" {
				if _, e := p.resolveImage(ip.SourceImage); e != nil {
					return e
				}
			}
			if ip.DiskType != "" {
				if _, ok := findDiskType(lastSegment(ip.DiskType)); !ok {
					return errInvalidField(f+".initializeParams.diskType", ip.DiskType, "")
				}
			}
			if e := checkLabels(ip.Labels); e != nil {
				return e
			}
		}
		if ad.DeviceName == "" {
			ad.DeviceName = fmt.Sprintf("persistent-disk-%d", i)
		}
		if ad.Mode == "" {
			ad.Mode = "READ_WRITE"
		}
		if ad.Type == "" {
			ad.Type = "PERSISTENT"
		}
		ad.Index = int64(i)
		ad.Kind = "compute#attachedDisk"
		ad.ForceSendFields = append(ad.ForceSendFields, "Index")
	}
	pr.Disks = disks
	return nil
}

// checkTemplateNICs resolves a template's networks and subnets to links
// and checks its access configs.
func (p *project) checkTemplateNICs(pr *compute.InstanceProperties) *apiError {
	var nics []*compute.NetworkInterface
	for _, ni := range pr.NetworkInterfaces {
		if ni != nil {
			nics = append(nics, ni)
		}
	}
	for i, ni := range nics {
		f := fmt.Sprintf("resource.properties.networkInterfaces[%d]", i)
		n, e := p.networkRef(ni.Network)
		if e != nil {
			return e
		}
		ni.Network = n.SelfLink
		if ni.Subnetwork != "" {
			r, ok := parseRef(ni.Subnetwork, ref{Project: p.name, Coll: "subnetworks"})
			if !ok || r.Coll != "subnetworks" || !strings.HasPrefix(r.Scope, "regions/") {
				return errInvalidField(f+".subnetwork", ni.Subnetwork, "")
			}
			sn, found := p.subnetworks.get(r.Scope, r.Name)
			if !found {
				return errNotFound(relPath(r.Project, r.Scope, "subnetworks", r.Name))
			}
			ni.Subnetwork = sn.SelfLink
		}
		if e := checkTemplateAliases(ni, f); e != nil {
			return e
		}
		ni.Name = fmt.Sprintf("nic%d", i)
		ni.Kind = "compute#networkInterface"
		var acs []*compute.AccessConfig
		for _, ac := range ni.AccessConfigs {
			if ac != nil {
				acs = append(acs, ac)
			}
		}
		if len(acs) > 1 {
			return errInvalidField(f+".accessConfigs", "", "Multiple access configs are not supported.")
		}
		for _, ac := range acs {
			if e := checkAccessConfig(ac, f+".accessConfigs[0]"); e != nil {
				return e
			}
		}
		ni.AccessConfigs = acs
	}
	pr.NetworkInterfaces = nics
	return nil
}

// checkTemplateAliases: a template keeps its alias IP ranges as sent, and
// each must be a netmask, which every VM made from it resolves to a block
// of its own (GCE's message for a CIDR there is recorded in a public test).
func checkTemplateAliases(ni *compute.NetworkInterface, f string) *apiError {
	var out []*compute.AliasIpRange
	for j, ar := range ni.AliasIpRanges {
		if ar == nil {
			continue
		}
		if _, want, ok := parseAliasCIDR(ar.IpCidrRange); !ok || want.IsValid() {
			return errInvalidField(fmt.Sprintf("%s.aliasIpRanges[%d].ipCidrRange", f, j), ar.IpCidrRange,
				"Alias IP CIDR range must be a valid netmask starting with '/' (e.g. '/24')")
		}
		if ar.SubnetworkRangeName != "" && !validName(ar.SubnetworkRangeName) {
			return errInvalidField(fmt.Sprintf("%s.aliasIpRanges[%d].subnetworkRangeName", f, j), ar.SubnetworkRangeName, "")
		}
		out = append(out, ar)
	}
	ni.AliasIpRanges = out
	return nil
}

func (s *Server) templatesGet(c *call) (any, *apiError) {
	t, _, e := getNamed(c, c.p.templates, "instanceTemplates")
	if e != nil {
		return nil, e
	}
	return t, nil
}

func (s *Server) templatesList(c *call) (any, *apiError) {
	return s.listResponse(c, "compute#instanceTemplateList", toAny(c.p.templates.list("global")),
		c.p.link("global", "instanceTemplates"))
}

// templatesAggregated is what gcloud's `instance-templates list` calls:
// global templates under the "global" scope and every region's scope
// present (empty: the emulator has no regional templates), as on GCE.
func (s *Server) templatesAggregated(c *call) (any, *apiError) {
	by := map[string][]any{"global": toAny(c.p.templates.list("global"))}
	return s.aggregatedResponse(c, "compute#instanceTemplateAggregatedList", "instanceTemplates", by,
		append([]string{"global"}, s.regionScopes()...))
}

// templateUser returns a MIG that uses the template, if any.
func (p *project) templateUser(link string) *migRec {
	for _, m := range p.migs.list("") {
		if m.InstanceTemplate == link {
			return m
		}
		for _, v := range m.Versions {
			if v.InstanceTemplate == link {
				return m
			}
		}
	}
	return nil
}

func (s *Server) templatesDelete(c *call) (any, *apiError) {
	t, path, e := getNamed(c, c.p.templates, "instanceTemplates")
	if e != nil {
		return nil, e
	}
	if e := c.p.checkNotBusy(t.SelfLink, path); e != nil {
		return nil, e
	}
	if m := c.p.templateUser(t.SelfLink); m != nil {
		return nil, errInUse("instance_template", path, s.trimLink(m.SelfLink))
	}
	return s.startOp(c, opSpec{Type: "delete", Target: t.SelfLink, TargetID: t.Id, Scope: "global",
		Done: func() *apiError {
			if m := c.p.templateUser(t.SelfLink); m != nil {
				return errInUse("instance_template", path, s.trimLink(m.SelfLink))
			}
			if cur, ok := c.p.templates.get("global", t.Name); ok && cur == t {
				c.p.templates.del("global", t.Name)
			}
			return nil
		}}), nil
}

// templateRef resolves a template reference from a MIG body.
func (p *project) templateRef(v, field string) (*compute.InstanceTemplate, *apiError) {
	r, ok := parseRef(v, ref{Project: p.name, Scope: "global", Coll: "instanceTemplates"})
	if !ok || r.Coll != "instanceTemplates" || r.Scope != "global" {
		return nil, errInvalidField(field, v, "")
	}
	t, found := p.templates.get("global", r.Name)
	if !found || r.Project != p.name {
		return nil, errNotFound(relPath(r.Project, "global", "instanceTemplates", r.Name))
	}
	return t, nil
}

// instanceFromTemplate makes the instances.insert body a template stands
// for. props is the template's properties as JSON, so that every VM gets its
// own copy.
func instanceFromTemplate(props []byte, zone, name string, extra []*compute.MetadataItems) (*compute.Instance, error) {
	var pr compute.InstanceProperties
	if err := json.Unmarshal(props, &pr); err != nil {
		return nil, err
	}
	inst := &compute.Instance{
		Name:                   name,
		Description:            pr.Description,
		MachineType:            "zones/" + zone + "/machineTypes/" + pr.MachineType,
		CanIpForward:           pr.CanIpForward,
		Disks:                  pr.Disks,
		NetworkInterfaces:      pr.NetworkInterfaces,
		Labels:                 pr.Labels,
		Tags:                   pr.Tags,
		Scheduling:             pr.Scheduling,
		ServiceAccounts:        pr.ServiceAccounts,
		ShieldedInstanceConfig: pr.ShieldedInstanceConfig,
		Metadata:               &compute.Metadata{},
	}
	for _, ad := range inst.Disks {
		// Device names and indexes are the instance's business again.
		ad.Index = 0
		ad.Kind = ""
	}
	for _, ni := range inst.NetworkInterfaces {
		ni.Name, ni.Kind = "", ""
	}
	if pr.Metadata != nil {
		inst.Metadata.Items = append(inst.Metadata.Items, pr.Metadata.Items...)
	}
	inst.Metadata.Items = append(inst.Metadata.Items, extra...)
	return inst, nil
}
