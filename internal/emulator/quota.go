package emulator

import (
	"strings"

	compute "google.golang.org/api/compute/v1"
)

// Regional and project quota metrics the emulator tracks. Usage is computed
// from the inventory, so it can never drift from what exists.
var regionalQuotaMetrics = []string{
	"CPUS", "INSTANCES", "IN_USE_ADDRESSES", "STATIC_ADDRESSES", "DISKS_TOTAL_GB", "SSD_TOTAL_GB",
	"TARGET_POOLS", "FORWARDING_RULES", "INSTANCE_GROUP_MANAGERS", "INSTANCE_GROUPS",
}

var projectQuotaMetrics = []string{"FIREWALLS", "NETWORKS", "SUBNETWORKS", "ROUTES", "INSTANCE_TEMPLATES", "HEALTH_CHECKS"}

// defaultQuota is generous: hakube's tests and benchmarks (5,000 VMs in
// MIGs of one zone) must fit, and tests lower limits through the control API.
var defaultQuota = map[string]float64{
	"CPUS": 50000, "INSTANCES": 20000, "IN_USE_ADDRESSES": 20000, "STATIC_ADDRESSES": 100,
	"DISKS_TOTAL_GB": 10000000, "SSD_TOTAL_GB": 500000, "TARGET_POOLS": 50, "FORWARDING_RULES": 50,
	"INSTANCE_GROUP_MANAGERS": 500, "INSTANCE_GROUPS": 1000,
	"FIREWALLS": 500, "NETWORKS": 50, "SUBNETWORKS": 1000, "ROUTES": 1000, "INSTANCE_TEMPLATES": 1000,
	"HEALTH_CHECKS": 500,
}

func knownQuotaMetric(m string) bool {
	_, ok := defaultQuota[m]
	return ok
}

// quotaLimit is the limit of metric in scope ("regions/r" or "global").
func (p *project) quotaLimit(scope, metric string) float64 {
	if v, ok := p.quotaLimits[scope+"/"+metric]; ok {
		return v
	}
	return defaultQuota[metric]
}

// quotaUsage computes current usage of a regional metric (region "") means
// the project-level metric.
func (p *project) quotaUsage(region, metric string) float64 {
	inRegion := func(zoneOrRegion string) bool {
		name := lastSegment(zoneOrRegion)
		if r, ok := p.st.cat.zoneRgn[name]; ok {
			return r == region
		}
		return name == region
	}
	var n float64
	switch metric {
	case "CPUS", "INSTANCES", "IN_USE_ADDRESSES":
		n = p.instanceUsage(region, metric)
	case "STATIC_ADDRESSES":
		for _, a := range p.addresses.list("regions/" + region) {
			if a.AddressType != "INTERNAL" {
				n++
			}
		}
	case "DISKS_TOTAL_GB", "SSD_TOTAL_GB":
		for _, r := range p.disks.rows {
			d := r.v
			if !inRegion(d.Zone) {
				continue
			}
			ssd := strings.HasSuffix(d.Type, "/pd-ssd") || strings.HasSuffix(d.Type, "/pd-extreme")
			if metric == "DISKS_TOTAL_GB" && !ssd || metric == "SSD_TOTAL_GB" && ssd {
				n += float64(d.SizeGb)
			}
		}
	case "TARGET_POOLS":
		n = float64(len(p.targetPools.list("regions/" + region)))
	case "FORWARDING_RULES":
		n = float64(len(p.forwardingRules.list("regions/" + region)))
	case "INSTANCE_GROUP_MANAGERS":
		for _, m := range p.migs.list("") {
			if inRegion(m.Zone) {
				n++
			}
		}
	case "INSTANCE_GROUPS":
		for _, g := range p.instanceGroups.list("") {
			if inRegion(g.Zone) {
				n++
			}
		}
	case "FIREWALLS":
		n = float64(p.firewalls.len())
	case "NETWORKS":
		n = float64(p.networks.len())
	case "SUBNETWORKS":
		n = float64(p.subnetworks.len())
	case "ROUTES":
		n = float64(p.routes.len())
	case "INSTANCE_TEMPLATES":
		n = float64(p.templates.len())
	case "HEALTH_CHECKS":
		n = float64(p.httpHealthChecks.len())
	}
	return n
}

// instanceUsage is the usage of the metrics instances count against. The
// scans are unsorted: usage is a sum, and sorting thousands of rows on every
// insert made instance creation quadratic.
func (p *project) instanceUsage(region, metric string) float64 {
	var n float64
	for _, r := range p.instances.rows {
		in := r.v
		if in.usageRegion(p.st.cat) != region {
			continue
		}
		switch metric {
		case "INSTANCES":
			n++
		case "CPUS":
			if in.Status != "TERMINATED" {
				n += float64(in.guestCPUs())
			}
		case "IN_USE_ADDRESSES":
			for _, ni := range in.NetworkInterfaces {
				n += float64(len(ni.AccessConfigs))
			}
		}
	}
	if metric == "IN_USE_ADDRESSES" {
		for _, fr := range p.forwardingRules.list("regions/" + region) {
			if fr.LoadBalancingScheme == "" || fr.LoadBalancingScheme == "EXTERNAL" {
				n++
			}
		}
	}
	return n
}

// checkQuota refuses a change that would take metric above its limit.
// region "" checks a project-level metric.
func (p *project) checkQuota(region, metric string, add float64) *apiError {
	scope := "global"
	if region != "" {
		scope = "regions/" + region
	}
	limit := p.quotaLimit(scope, metric)
	if p.quotaUsage(region, metric)+add > limit {
		return errQuota(metric, limit, region)
	}
	return nil
}

func (p *project) projectObj() *compute.Project {
	var quotas []*compute.Quota
	for _, m := range projectQuotaMetrics {
		quotas = append(quotas, &compute.Quota{Metric: m, Limit: p.quotaLimit("global", m),
			Usage: p.quotaUsage("", m), ForceSendFields: []string{"Usage"}})
	}
	return &compute.Project{
		Kind:                   "compute#project",
		Id:                     p.number,
		Name:                   p.name,
		CreationTimestamp:      "2024-04-01T05:34:56.123-07:00",
		SelfLink:               strings.TrimSuffix(p.link(), "/"),
		DefaultServiceAccount:  projectServiceAccount(p),
		CloudArmorTier:         "CA_STANDARD",
		XpnProjectStatus:       "UNSPECIFIED_XPN_PROJECT_STATUS",
		DefaultNetworkTier:     "PREMIUM",
		Quotas:                 quotas,
		CommonInstanceMetadata: p.commonMetadataObj(),
		VmDnsSetting:           "ZONAL_ONLY",
	}
}

// quotaBatch checks allocations against regional quotas, computing each
// metric's usage once: a MIG creating thousands of VMs in one pass must not
// rescan the inventory for every VM.
type quotaBatch struct {
	p      *project
	region string
	used   map[string]float64
}

func (p *project) newQuotaBatch(region string) *quotaBatch {
	return &quotaBatch{p: p, region: region, used: map[string]float64{}}
}

// take reserves every amount in want, or none of them.
func (q *quotaBatch) take(want map[string]float64) *apiError {
	for _, m := range regionalQuotaMetrics {
		n := want[m]
		if n <= 0 {
			continue
		}
		u, ok := q.used[m]
		if !ok {
			u = q.p.quotaUsage(q.region, m)
			q.used[m] = u
		}
		if limit := q.p.quotaLimit("regions/"+q.region, m); u+n > limit {
			return errQuota(m, limit, q.region)
		}
	}
	for m, n := range want {
		if n > 0 {
			q.used[m] += n
		}
	}
	return nil
}
