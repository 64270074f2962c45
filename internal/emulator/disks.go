package emulator

import (
	"fmt"
	"strings"
	"time"

	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/googleapi"
)

func (s *Server) routesDisks() {
	s.handle("POST", "zones/{zone}/disks", "compute.disks.insert", s.disksInsert)
	s.handle("GET", "zones/{zone}/disks", "compute.disks.list", s.disksList)
	s.handle("GET", "zones/{zone}/disks/{disk}", "compute.disks.get", s.disksGet)
	s.handle("DELETE", "zones/{zone}/disks/{disk}", "compute.disks.delete", s.disksDelete)
	s.handle("POST", "zones/{zone}/disks/{resource}/setLabels", "compute.disks.setLabels", s.disksSetLabels)
	s.handle("GET", "aggregated/disks", "compute.disks.aggregatedList", s.disksAggregated)
}

// diskSpec is what a new disk is made of, from disks.insert or from an
// instance's initializeParams.
type diskSpec struct {
	name        string
	description string
	typ         diskType
	sizeGB      int64
	image       *publicImage
	sourceDisk  *compute.Disk
	labels      map[string]string
}

// resolveDiskType turns a disk type reference (URL, partial path or bare
// name) into a catalogue entry; unknown types answer 404 as GCE does.
func (p *project) resolveDiskType(zone, v string) (diskType, *apiError) {
	if v == "" {
		v = "pd-standard"
	}
	r, ok := parseRef(v, ref{Project: p.name, Scope: "zones/" + zone, Coll: "diskTypes"})
	if !ok || r.Coll != "diskTypes" {
		return diskType{}, errInvalidField("resource.type", v, "")
	}
	dt, found := findDiskType(r.Name)
	if !found || r.Scope != "zones/"+zone {
		return diskType{}, errNotFound(relPath(r.Project, r.Scope, "diskTypes", r.Name))
	}
	return dt, nil
}

// resolveImage finds a public image from a reference to the image itself or
// to its family (resolved to the family's current image).
func (p *project) resolveImage(v string) (publicImage, *apiError) {
	r, ok := parseRef(v, ref{Project: p.name, Scope: "global", Coll: "images"})
	// gcloud names an image family through a zonal family view:
	// projects/P/zones/-/imageFamilyViews/F (any zone, or "-").
	view := ok && r.Coll == "imageFamilyViews" && strings.HasPrefix(r.Scope, "zones/")
	if !ok || (r.Coll != "images" && r.Coll != "images/family" && !view) || (r.Scope != "global" && !view) {
		return publicImage{}, errInvalidField("resource.sourceImage", v, "")
	}
	var im publicImage
	if r.Coll == "images" {
		im, ok = findImage(r.Project, r.Name)
	} else {
		im, ok = familyImage(r.Project, r.Name)
	}
	if !ok {
		return publicImage{}, errNotFound(relPath(r.Project, r.Scope, r.Coll, r.Name))
	}
	return im, nil

}

// diskSize applies GCE's size defaults: the image's size for image disks,
// the source's for clones, the type's default for blank disks.
func diskSize(sp *diskSpec, asked int64, field string) *apiError {
	switch {
	case asked < 0:
		return errInvalidField(field, fmt.Sprint(asked), "Disk size must be positive.")
	case sp.image != nil && asked == 0:
		sp.sizeGB = sp.image.sizeGB
	case sp.image != nil && asked < sp.image.sizeGB:
		return errInvalidField(field, fmt.Sprint(asked),
			fmt.Sprintf("Requested disk size cannot be smaller than the image size (%d GB)", sp.image.sizeGB))
	case sp.sourceDisk != nil && asked == 0:
		sp.sizeGB = sp.sourceDisk.SizeGb
	case asked == 0:
		sp.sizeGB = sp.typ.defaultGB
	default:
		sp.sizeGB = asked
	}
	return nil
}

// diskQuotaMetric is the regional quota a disk type counts against.
func diskQuotaMetric(t diskType) string {
	if t.name == "pd-ssd" || t.name == "pd-extreme" {
		return "SSD_TOTAL_GB"
	}
	return "DISKS_TOTAL_GB"
}

// newDisk renders a disk resource from its spec, in status CREATING.
func (p *project) newDisk(zone string, sp *diskSpec) *compute.Disk {
	scope := "zones/" + zone
	d := &compute.Disk{
		Kind:                   "compute#disk",
		Id:                     p.st.newID(),
		CreationTimestamp:      timestamp(time.Now()),
		Name:                   sp.name,
		Description:            sp.description,
		SizeGb:                 sp.sizeGB,
		Zone:                   p.link(scope),
		Status:                 "CREATING",
		SelfLink:               p.link(scope, "disks", sp.name),
		Type:                   p.link(scope, "diskTypes", sp.typ.name),
		Labels:                 sp.labels,
		LabelFingerprint:       p.st.newFingerprint(),
		PhysicalBlockSizeBytes: 4096,
		SatisfiesPzi:           true,
		ForceSendFields:        []string{"EnableConfidentialCompute"},
	}
	if sp.image != nil {
		im := p.st.imageObj(*sp.image)
		d.SourceImage = im.SelfLink
		d.SourceImageId = uitoa(im.Id)
		d.Architecture = im.Architecture
		d.GuestOsFeatures = im.GuestOsFeatures
		d.Licenses = im.Licenses
		d.LicenseCodes = googleapi.Int64s{int64(im.Id>>3) + 1}
	}
	if sp.sourceDisk != nil {
		d.SourceDisk = sp.sourceDisk.SelfLink
		d.SourceDiskId = uitoa(sp.sourceDisk.Id)
		d.Architecture = sp.sourceDisk.Architecture
		d.GuestOsFeatures = sp.sourceDisk.GuestOsFeatures
		d.Licenses = sp.sourceDisk.Licenses
		d.LicenseCodes = sp.sourceDisk.LicenseCodes
	}
	return d
}

// diskByRef finds a disk from a reference in a request body. A disk of
// another zone is returned with its own zone so callers can refuse it.
func (p *project) diskByRef(zone, v, field string) (*compute.Disk, *apiError) {
	r, ok := parseRef(v, ref{Project: p.name, Scope: "zones/" + zone, Coll: "disks"})
	if !ok || r.Coll != "disks" || !strings.HasPrefix(r.Scope, "zones/") {
		return nil, errInvalidField(field, v, "")
	}
	d, found := p.disks.get(r.Scope, r.Name)
	if !found || r.Project != p.name {
		return nil, errNotFound(relPath(r.Project, r.Scope, "disks", r.Name))
	}
	return d, nil
}

// attachUser records instance as a user of d.
func attachUser(d *compute.Disk, instanceLink string) {
	for _, u := range d.Users {
		if u == instanceLink {
			return
		}
	}
	d.Users = append(d.Users, instanceLink)
	d.LastAttachTimestamp = timestamp(time.Now())
}

// detachUser removes instance from d's users; the key disappears with the
// last user, as on GCE.
func detachUser(d *compute.Disk, instanceLink string) {
	out := d.Users[:0]
	for _, u := range d.Users {
		if u != instanceLink {
			out = append(out, u)
		}
	}
	if len(out) == 0 {
		out = nil
	}
	d.Users = out
	d.LastDetachTimestamp = timestamp(time.Now())
}

func (s *Server) disksInsert(c *call) (any, *apiError) {
	var in compute.Disk
	if e := c.decode(&in); e != nil {
		return nil, e
	}
	if e := checkName(in.Name); e != nil {
		return nil, e
	}
	scope := "zones/" + c.zone
	if _, ok := c.p.disks.get(scope, in.Name); ok {
		return nil, errAlreadyExists(relPath(c.p.name, scope, "disks", in.Name))
	}
	if e := checkLabels(in.Labels); e != nil {
		return nil, e
	}
	sp := &diskSpec{name: in.Name, description: in.Description, labels: in.Labels}
	var e *apiError
	if sp.typ, e = c.p.resolveDiskType(c.zone, in.Type); e != nil {
		return nil, e
	}
	img := in.SourceImage
	if q := c.query("sourceImage"); q != "" {
		img = q
	}
	switch {
	case img != "" && in.SourceDisk != "":
		return nil, errInvalidField("resource.sourceDisk", in.SourceDisk, "Only one of sourceImage and sourceDisk may be given.")
	case img != "":
		im, e := c.p.resolveImage(img)
		if e != nil {
			return nil, e
		}
		sp.image = &im
	case in.SourceDisk != "":
		src, e := c.p.diskByRef(c.zone, in.SourceDisk, "resource.sourceDisk")
		if e != nil {
			return nil, e
		}
		sp.sourceDisk = src
	case in.SourceSnapshot != "":
		// The emulator has no snapshots, so every snapshot is missing.
		r, ok := parseRef(in.SourceSnapshot, ref{Project: c.p.name, Scope: "global", Coll: "snapshots"})
		if !ok || r.Coll != "snapshots" {
			return nil, errInvalidField("resource.sourceSnapshot", in.SourceSnapshot, "")
		}
		return nil, errNotFound(relPath(r.Project, "global", "snapshots", r.Name))
	}
	if e := diskSize(sp, in.SizeGb, "resource.sizeGb"); e != nil {
		return nil, e
	}
	if e := c.p.checkQuota(s.cat.regionOf(c.zone), diskQuotaMetric(sp.typ), float64(sp.sizeGB)); e != nil {
		return nil, e
	}
	d := c.p.newDisk(c.zone, sp)
	c.p.disks.put(scope, d.Name, d)
	return s.startOp(c, opSpec{Type: "insert", Target: d.SelfLink, TargetID: d.Id, Scope: scope,
		Warnings: deprecationWarnings(sp.image),
		Done: func() *apiError {
			if d.Status == "CREATING" {
				d.Status = "READY"
			}
			return nil
		},
		Fail: func() {
			if cur, ok := c.p.disks.get(scope, d.Name); ok && cur == d {
				c.p.disks.del(scope, d.Name)
			}
		}}), nil
}

func (s *Server) disksGet(c *call) (any, *apiError) {
	d, _, e := getNamed(c, c.p.disks, "disks")
	if e != nil {
		return nil, e
	}
	return d, nil
}

func (s *Server) disksList(c *call) (any, *apiError) {
	scope := "zones/" + c.zone
	return s.listResponse(c, "compute#diskList", toAny(c.p.disks.list(scope)), c.p.link(scope, "disks"))
}

func (s *Server) disksAggregated(c *call) (any, *apiError) {
	return s.aggregatedResponse(c, "compute#diskAggregatedList", "disks", c.p.disks.scoped(), s.zoneScopes())
}

// disksDelete refuses, synchronously, a disk that is still attached.
func (s *Server) disksDelete(c *call) (any, *apiError) {
	scope := "zones/" + c.zone
	d, path, e := getNamed(c, c.p.disks, "disks")
	if e != nil {
		return nil, e
	}
	if e := c.p.checkNotBusy(d.SelfLink, path); e != nil {
		return nil, e
	}
	if len(d.Users) > 0 {
		return nil, errInUse("disk", path, s.trimLink(d.Users[0]))
	}
	prev := d.Status
	d.Status = "DELETING"
	return s.startOp(c, opSpec{Type: "delete", Target: d.SelfLink, TargetID: d.Id, Scope: scope,
		Done: func() *apiError {
			if len(d.Users) > 0 { // attached while the delete ran
				d.Status = prev
				return errInUse("disk", path, s.trimLink(d.Users[0]))
			}
			if cur, ok := c.p.disks.get(scope, d.Name); ok && cur == d {
				c.p.disks.del(scope, d.Name)
			}
			return nil
		},
		Fail: func() { d.Status = prev }}), nil
}

// disksSetLabels waits for other operations on the disk, as GCE does.
func (s *Server) disksSetLabels(c *call) (any, *apiError) {
	d, path, e := getNamed(c, c.p.disks, "disks")
	if e != nil {
		return nil, e
	}
	if e := c.p.checkNotBusy(d.SelfLink, path); e != nil {
		return nil, e
	}
	if e := s.applyLabels(c, &d.Labels, &d.LabelFingerprint); e != nil {
		return nil, e
	}
	return s.startOp(c, opSpec{Type: "setLabels", Target: d.SelfLink, TargetID: d.Id, Scope: c.scope()}), nil
}
