package emulator

import (
	"fmt"
	"sort"

	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/googleapi"
)

// The catalogue is the part of GCE every project sees: regions and zones,
// machine and disk types, public images. It is fixed at start.

type regionInfo struct {
	name  string
	zones []string
	// index orders regions; it also picks the region's auto-mode subnet range.
	index int
}

// regionCatalog is a realistic subset of GCE's regions, zone letters as in
// production.
var regionCatalog = []regionInfo{
	{name: "asia-east1", zones: []string{"a", "b", "c"}},
	{name: "asia-northeast1", zones: []string{"a", "b", "c"}},
	{name: "asia-southeast1", zones: []string{"a", "b", "c"}},
	{name: "australia-southeast1", zones: []string{"a", "b", "c"}},
	{name: "europe-north1", zones: []string{"a", "b", "c"}},
	{name: "europe-west1", zones: []string{"b", "c", "d"}},
	{name: "europe-west2", zones: []string{"a", "b", "c"}},
	{name: "europe-west3", zones: []string{"a", "b", "c"}},
	{name: "europe-west4", zones: []string{"a", "b", "c"}},
	{name: "me-central2", zones: []string{"a", "b", "c"}},
	{name: "northamerica-northeast1", zones: []string{"a", "b", "c"}},
	{name: "southamerica-east1", zones: []string{"a", "b", "c"}},
	{name: "us-central1", zones: []string{"a", "b", "c", "f"}},
	{name: "us-east1", zones: []string{"b", "c", "d"}},
	{name: "us-east4", zones: []string{"a", "b", "c"}},
	{name: "us-west1", zones: []string{"a", "b", "c"}},
	{name: "us-west2", zones: []string{"a", "b", "c"}},
	// Appended, not sorted in, so that the regions above keep their
	// subnet ranges: regions real scenarios use (conformance corpus).
	{name: "northamerica-northeast2", zones: []string{"a", "b", "c"}},
	{name: "northamerica-south1", zones: []string{"a", "b", "c"}},
	{name: "us-west3", zones: []string{"a", "b", "c"}},
}

var cpuPlatforms = []string{"Intel Broadwell", "Intel Haswell", "Intel Cascade Lake", "Intel Ice Lake", "AMD Milan", "AMD Rome"}

type catalog struct {
	regions  map[string]regionInfo
	zoneRgn  map[string]string // zone → region
	zones    []string          // sorted
	regNames []string          // sorted
}

func newCatalog() *catalog {
	c := &catalog{regions: map[string]regionInfo{}, zoneRgn: map[string]string{}}
	for i, r := range regionCatalog {
		r.index = i
		c.regions[r.name] = r
		c.regNames = append(c.regNames, r.name)
		for _, z := range r.zones {
			zn := r.name + "-" + z
			c.zoneRgn[zn] = r.name
			c.zones = append(c.zones, zn)
		}
	}
	sort.Strings(c.zones)
	sort.Strings(c.regNames)
	return c
}

// regionOf maps a zone name or URL to its region name.
func (c *catalog) regionOf(zone string) string { return c.zoneRgn[lastSegment(zone)] }

// machineType describes one machine type of the catalogue.
type machineType struct {
	name   string
	cpus   int64
	memMB  int64
	shared bool
}

func machineTypes() []machineType {
	var out []machineType
	out = append(out,
		machineType{"e2-micro", 2, 1024, true},
		machineType{"e2-small", 2, 2048, true},
		machineType{"e2-medium", 2, 4096, true},
		machineType{"f1-micro", 1, 614, true},
		machineType{"g1-small", 1, 1740, true},
	)
	for _, n := range []int64{2, 4, 8, 16, 32} {
		out = append(out, machineType{fmt.Sprintf("e2-standard-%d", n), n, n * 4096, false})
		out = append(out, machineType{fmt.Sprintf("e2-highmem-%d", n), n, n * 8192, false})
		out = append(out, machineType{fmt.Sprintf("e2-highcpu-%d", n), n, n * 1024, false})
	}
	for _, n := range []int64{1, 2, 4, 8, 16, 32, 64, 96} {
		out = append(out, machineType{fmt.Sprintf("n1-standard-%d", n), n, n * 3840, false})
	}
	for _, n := range []int64{2, 4, 8, 16, 32, 48, 64, 80, 96, 128} {
		out = append(out, machineType{fmt.Sprintf("n2-standard-%d", n), n, n * 4096, false})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// machineTypeIndex is built once and only read: quota accounting looks up
// every instance's machine type, so a lookup must not rebuild the catalogue.
var machineTypeIndex = func() map[string]machineType {
	idx := map[string]machineType{}
	for _, m := range machineTypes() {
		idx[m.name] = m
	}
	return idx
}()

func findMachineType(name string) (machineType, bool) {
	m, ok := machineTypeIndex[name]
	return m, ok
}

func (st *state) machineTypeObj(project, zone string, m machineType) *compute.MachineType {
	return &compute.MachineType{
		Kind:                         "compute#machineType",
		Id:                           uint64(1000 + len(m.name)*7919 + int(m.cpus)),
		CreationTimestamp:            "1969-12-31T16:00:00.000-08:00",
		Name:                         m.name,
		Description:                  fmt.Sprintf("%d vCPUs, %g GB RAM", m.cpus, float64(m.memMB)/1024),
		GuestCpus:                    m.cpus,
		MemoryMb:                     m.memMB,
		IsSharedCpu:                  m.shared,
		MaximumPersistentDisks:       128,
		MaximumPersistentDisksSizeGb: 263168,
		ImageSpaceGb:                 0,
		Zone:                         zone,
		SelfLink:                     st.link(project, "zones", zone, "machineTypes", m.name),
		Architecture:                 "X86_64",
		ForceSendFields:              []string{"IsSharedCpu", "ImageSpaceGb"},
	}
}

type diskType struct {
	name        string
	description string
	defaultGB   int64
	validGB     string
}

var diskTypes = []diskType{
	{"pd-balanced", "Balanced Persistent Disk", 100, "10GB-65536GB"},
	{"pd-extreme", "Extreme Persistent Disk", 1000, "500GB-65536GB"},
	{"pd-ssd", "SSD Persistent Disk", 100, "10GB-65536GB"},
	{"pd-standard", "Standard Persistent Disk", 500, "10GB-65536GB"},
}

func findDiskType(name string) (diskType, bool) {
	for _, d := range diskTypes {
		if d.name == name {
			return d, true
		}
	}
	return diskType{}, false
}

func (st *state) diskTypeObj(project, zone string, d diskType) *compute.DiskType {
	return &compute.DiskType{
		Kind:              "compute#diskType",
		Id:                uint64(30000 + len(d.name)),
		CreationTimestamp: "1969-12-31T16:00:00.000-08:00",
		Name:              d.name,
		Description:       d.description,
		ValidDiskSize:     d.validGB,
		DefaultDiskSizeGb: d.defaultGB,
		Zone:              st.link(project, "zones", zone),
		SelfLink:          st.link(project, "zones", zone, "diskTypes", d.name),
	}
}

// publicImage is an image in one of the public image projects.
type publicImage struct {
	project, name, family string
	id                    uint64
	sizeGB                int64
	deprecated            bool
}

// Deprecated images stay usable; an operation that used one ends with a
// DEPRECATED_RESOURCE_USED warning. Images before 2022 have no architecture.
var publicImages = []publicImage{
	{"debian-cloud", "debian-10-buster-v20210817", "debian-10", 4339446714973177721, 10, true},
	{"debian-cloud", "debian-10-buster-v20210915", "debian-10", 4339446714973177813, 10, false},
	{"debian-cloud", "debian-11-bullseye-v20261013", "debian-11", 6204458135071372151, 10, false},
	{"debian-cloud", "debian-12-bookworm-v20260910", "debian-12", 5770952442594484091, 10, true},
	{"debian-cloud", "debian-12-bookworm-v20261013", "debian-12", 5770952442594484092, 10, false},
	{"ubuntu-os-cloud", "ubuntu-2204-jammy-v20261020", "ubuntu-2204-lts", 3411204815577201913, 10, false},
	{"ubuntu-os-cloud", "ubuntu-2404-noble-amd64-v20261020", "ubuntu-2404-lts-amd64", 3411204815577201977, 10, false},
	{"cos-cloud", "cos-117-18613-164-4", "cos-117-lts", 8812317151291014413, 10, false},
	{"cos-cloud", "cos-stable-121-18867-90-18", "cos-stable", 8812317151291014599, 10, false},
}

func isImageProject(p string) bool {
	for _, im := range publicImages {
		if im.project == p {
			return true
		}
	}
	return false
}

func findImage(project, name string) (publicImage, bool) {
	for _, im := range publicImages {
		if im.project == project && im.name == name {
			return im, true
		}
	}
	return publicImage{}, false
}

// deprecationWarnings are the warnings GCE puts on the DONE operation of a
// request that used deprecated images (recorded: computepacketmirroring#6).
func deprecationWarnings(images ...*publicImage) []*compute.OperationWarnings {
	var out []*compute.OperationWarnings
	for _, im := range images {
		if im == nil || !im.deprecated {
			continue
		}
		name := "projects/" + im.project + "/global/images/" + im.name
		w := &compute.OperationWarnings{Code: "DEPRECATED_RESOURCE_USED", Message: fmt.Sprintf("The resource '%s' is deprecated.", name),
			Data: []*compute.OperationWarningsData{{Key: "resource_name", Value: name}}}
		if repl, ok := familyImage(im.project, im.family); ok {
			suggestion := fmt.Sprintf("A suggested replacement is 'projects/%s/global/images/%s'.", repl.project, repl.name)
			w.Message += " " + suggestion
			w.Data = append(w.Data, &compute.OperationWarningsData{Key: "replacement_suggestion", Value: suggestion})
		}
		out = append(out, w)
	}
	return out
}

// imageArchitecture is empty for images made before GCE recorded one.
func imageArchitecture(im publicImage) string {
	if im.family == "debian-10" {
		return ""
	}
	return "X86_64"
}

// familyImage is the newest non-deprecated image of the family.
func familyImage(project, family string) (publicImage, bool) {
	var best publicImage
	found := false
	for _, im := range publicImages {
		if im.project == project && im.family == family && !im.deprecated && (!found || im.name > best.name) {
			best, found = im, true
		}
	}
	return best, found
}

func (st *state) imageObj(im publicImage) *compute.Image {
	obj := &compute.Image{
		Kind:              "compute#image",
		Id:                im.id,
		CreationTimestamp: "2026-10-13T10:02:51.771-07:00",
		Name:              im.name,
		Description:       "Public image " + im.name,
		Family:            im.family,
		SelfLink:          st.link(im.project, "global", "images", im.name),
		SourceType:        "RAW",
		Status:            "READY",
		ArchiveSizeBytes:  1 << 30,
		DiskSizeGb:        im.sizeGB,
		Architecture:      imageArchitecture(im),
		LabelFingerprint:  "42WmSpB8rSM=",
		Licenses:          []string{st.link(im.project, "global", "licenses", im.family)},
		// What every public image carries (recorded: computeinstancebasicexample#3).
		Labels:                    map[string]string{"public-image": "true"},
		LicenseCodes:              googleapi.Int64s{int64(im.id>>3) + 1},
		RawDisk:                   &compute.ImageRawDisk{ContainerType: "TAR", ForceSendFields: []string{"Source"}},
		EnableConfidentialCompute: false,
		ForceSendFields:           []string{"EnableConfidentialCompute"},
		GuestOsFeatures: []*compute.GuestOsFeature{
			{Type: "UEFI_COMPATIBLE"}, {Type: "VIRTIO_SCSI_MULTIQUEUE"}, {Type: "GVNIC"},
		},
		StorageLocations: []string{"eu", "us", "asia"},
	}
	if im.deprecated {
		repl, _ := familyImage(im.project, im.family)
		obj.Deprecated = &compute.DeprecationStatus{
			State:       "DEPRECATED",
			Replacement: st.link(im.project, "global", "images", repl.name),
		}
	}
	return obj
}

// zoneObj renders a zone with its current status (zones can be marked DOWN
// through the control API).
func (st *state) zoneObj(project, zone string) *compute.Zone {
	region := st.cat.zoneRgn[zone]
	status := "UP"
	if st.zoneDown[zone] {
		status = "DOWN"
	}
	return &compute.Zone{
		Kind:                  "compute#zone",
		Id:                    2000 + zoneIndex(st.cat, zone),
		CreationTimestamp:     "1969-12-31T16:00:00.000-08:00",
		Name:                  zone,
		Description:           zone,
		Status:                status,
		Region:                st.link(project, "regions", region),
		SelfLink:              st.link(project, "zones", zone),
		AvailableCpuPlatforms: cpuPlatforms,
		SupportsPzs:           false,
		ForceSendFields:       []string{"SupportsPzs"},
	}
}

func zoneIndex(c *catalog, zone string) uint64 {
	for i, z := range c.zones {
		if z == zone {
			return uint64(i)
		}
	}
	return 0
}

// regionObj renders a region with quota usage computed from the inventory.
func (p *project) regionObj(region string) *compute.Region {
	ri := p.st.cat.regions[region]
	status := "UP"
	var zones []string
	allDown := len(ri.zones) > 0
	for _, z := range ri.zones {
		zn := region + "-" + z
		zones = append(zones, p.link("zones", zn))
		if !p.st.zoneDown[zn] {
			allDown = false
		}
	}
	if allDown {
		status = "DOWN"
	}
	var quotas []*compute.Quota
	for _, m := range regionalQuotaMetrics {
		quotas = append(quotas, &compute.Quota{
			Metric: m, Limit: p.quotaLimit("regions/"+region, m), Usage: p.quotaUsage(region, m),
			ForceSendFields: []string{"Usage"},
		})
	}
	return &compute.Region{
		Kind:              "compute#region",
		Id:                uint64(1000 + ri.index),
		CreationTimestamp: "1969-12-31T16:00:00.000-08:00",
		Name:              region,
		Description:       region,
		Status:            status,
		Zones:             zones,
		Quotas:            quotas,
		SelfLink:          p.link("regions", region),
		SupportsPzs:       false,
		ForceSendFields:   []string{"SupportsPzs"},
	}
}

// autoSubnetRange returns the auto-mode subnet range of a region. Real GCE
// uses /20 slices of 10.128.0.0/9; the emulator slices its internal loopback
// range instead, into 32 equal parts (one per region of the catalogue, in
// order), so that every internal IP can be dialled locally. With the default
// 127.128.0.0/9 each region gets a /14: a MIG of thousands of VMs fits.
func (st *state) autoSubnetRange(region string) string {
	ri := st.cat.regions[region]
	base := st.internal.Masked().Addr().As4()
	n := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	bits := st.internal.Bits() + regionSliceBits
	n += uint32(ri.index) << (32 - bits)
	return fmt.Sprintf("%d.%d.%d.%d/%d", n>>24, (n>>16)&0xff, (n>>8)&0xff, n&0xff, bits)
}

// regionSliceBits splits the internal range into 2^5 = 32 region subnets.
const regionSliceBits = 5

// routesCatalog registers what every project reads of the catalogue.
func (s *Server) routesCatalog() {
	s.handle("GET", "zones", "compute.zones.list", s.zonesList)
	s.handle("GET", "zones/{zone}", "compute.zones.get", s.zonesGet)
	s.handle("GET", "regions", "compute.regions.list", s.regionsList)
	s.handle("GET", "regions/{region}", "compute.regions.get", s.regionsGet)
	s.handle("GET", "zones/{zone}/machineTypes", "compute.machineTypes.list", s.machineTypesList)
	s.handle("GET", "zones/{zone}/machineTypes/{machineType}", "compute.machineTypes.get", s.machineTypesGet)
	s.handle("GET", "aggregated/machineTypes", "compute.machineTypes.aggregatedList", s.machineTypesAggregated)
	s.handle("GET", "zones/{zone}/diskTypes", "compute.diskTypes.list", s.diskTypesList)
	s.handle("GET", "zones/{zone}/diskTypes/{diskType}", "compute.diskTypes.get", s.diskTypesGet)
	s.handle("GET", "global/images", "compute.images.list", s.imagesList)
	s.handle("GET", "global/images/{image}", "compute.images.get", s.imagesGet)
	s.handle("GET", "global/images/family/{family}", "compute.images.getFromFamily", s.imagesGetFromFamily)
}

func (s *Server) zonesList(c *call) (any, *apiError) {
	var items []any
	for _, z := range s.cat.zones {
		items = append(items, s.zoneObj(c.p.name, z))
	}
	return s.listResponse(c, "compute#zoneList", items, c.p.link("zones"))
}

func (s *Server) zonesGet(c *call) (any, *apiError) { return s.zoneObj(c.p.name, c.zone), nil }

func (s *Server) regionsList(c *call) (any, *apiError) {
	var items []any
	for _, r := range s.cat.regNames {
		items = append(items, c.p.regionObj(r))
	}
	return s.listResponse(c, "compute#regionList", items, c.p.link("regions"))
}

func (s *Server) regionsGet(c *call) (any, *apiError) { return c.p.regionObj(c.region), nil }

func (s *Server) machineTypesList(c *call) (any, *apiError) {
	var items []any
	for _, m := range machineTypes() {
		items = append(items, s.machineTypeObj(c.p.name, c.zone, m))
	}
	return s.listResponse(c, "compute#machineTypeList", items, c.p.link("zones", c.zone, "machineTypes"))
}

func (s *Server) machineTypesGet(c *call) (any, *apiError) {
	m, ok := findMachineType(c.name)
	if !ok {
		return nil, errNotFound(relPath(c.p.name, "zones/"+c.zone, "machineTypes", c.name))
	}
	return s.machineTypeObj(c.p.name, c.zone, m), nil
}

func (s *Server) machineTypesAggregated(c *call) (any, *apiError) {
	by := map[string][]any{}
	for _, z := range s.cat.zones {
		for _, m := range machineTypes() {
			by["zones/"+z] = append(by["zones/"+z], s.machineTypeObj(c.p.name, z, m))
		}
	}
	return s.aggregatedResponse(c, "compute#machineTypeAggregatedList", "machineTypes", by, s.zoneScopes())
}

func (s *Server) diskTypesList(c *call) (any, *apiError) {
	var items []any
	for _, d := range diskTypes {
		items = append(items, s.diskTypeObj(c.p.name, c.zone, d))
	}
	return s.listResponse(c, "compute#diskTypeList", items, c.p.link("zones", c.zone, "diskTypes"))
}

func (s *Server) diskTypesGet(c *call) (any, *apiError) {
	d, ok := findDiskType(c.name)
	if !ok {
		return nil, errNotFound(relPath(c.p.name, "zones/"+c.zone, "diskTypes", c.name))
	}
	return s.diskTypeObj(c.p.name, c.zone, d), nil
}

func (s *Server) imagesList(c *call) (any, *apiError) {
	var items []any
	for _, im := range publicImages {
		if im.project == c.p.name {
			items = append(items, s.imageObj(im))
		}
	}
	return s.listResponse(c, "compute#imageList", items, c.p.link("global", "images"))
}

func (s *Server) imagesGet(c *call) (any, *apiError) {
	im, ok := findImage(c.p.name, c.name)
	if !ok {
		return nil, errNotFound(relPath(c.p.name, "global", "images", c.name))
	}
	return s.imageObj(im), nil
}

func (s *Server) imagesGetFromFamily(c *call) (any, *apiError) {
	im, ok := familyImage(c.p.name, c.name)
	if !ok {
		return nil, errNotFound(relPath(c.p.name, "global", "images/family", c.name))
	}
	return s.imageObj(im), nil
}
