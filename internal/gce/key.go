package gce

import (
	"fmt"
	"strings"
)

// Key names one Compute resource: global (Name only), regional (Name and
// Region) or zonal (Name and Zone), as k8s-cloud-provider's meta.Key does.
// Every method of Cloud that acts on one resource takes its Key, so a zone
// can never be passed where a region belongs.
type Key struct {
	Name   string
	Zone   string
	Region string
}

// GlobalKey names a global resource (network, firewall, template, health check).
func GlobalKey(name string) Key { return Key{Name: name} }

// RegionalKey names a regional resource (address, target pool, forwarding rule).
func RegionalKey(region, name string) Key { return Key{Name: name, Region: region} }

// ZonalKey names a zonal resource (instance, disk, managed instance group).
func ZonalKey(zone, name string) Key { return Key{Name: name, Zone: zone} }

// KeyOf reads the key from a resource URL or partial path, such as
// https://compute.googleapis.com/compute/v1/projects/p/zones/z/instances/n.
func KeyOf(link string) Key {
	parts := strings.Split(strings.Trim(link, "/"), "/")
	k := Key{Name: parts[len(parts)-1]}
	for i := 0; i+1 < len(parts)-1; i++ {
		switch parts[i] {
		case "zones":
			k.Zone = parts[i+1]
		case "regions":
			k.Region = parts[i+1]
		}
	}
	return k
}

// Scope is where the resource lives: its zone, its region or "global".
func (k Key) Scope() string {
	switch {
	case k.Zone != "":
		return k.Zone
	case k.Region != "":
		return k.Region
	}
	return "global"
}

// String is "name (zone)", "name (region)" or "name": how plans and errors
// show a resource.
func (k Key) String() string {
	if s := k.Scope(); s != "global" {
		return fmt.Sprintf("%s (%s)", k.Name, s)
	}
	return k.Name
}

// Ref is a resource of a kind, the one way plans and errors name it:
// "instance kubernetes-master (europe-west1-b)".
type Ref struct {
	Kind string // "instance", "disk", "address", "target-pool", ...
	Key  Key
}

// Kinds of resource as plans name them (gcloud's group names).
const (
	KindNetwork        = "network"
	KindSubnetwork     = "subnet"
	KindFirewall       = "firewall"
	KindAddress        = "address"
	KindDisk           = "disk"
	KindInstance       = "instance"
	KindTemplate       = "instance-template"
	KindGroup          = "instance-group"
	KindHealthCheck    = "http-health-check"
	KindTargetPool     = "target-pool"
	KindForwardingRule = "forwarding-rule"
)

func (r Ref) String() string { return r.Kind + " " + r.Key.String() }

// Instance, Disk, ... make Refs.
func Instance(k Key) Ref       { return Ref{KindInstance, k} }
func Disk(k Key) Ref           { return Ref{KindDisk, k} }
func Address(k Key) Ref        { return Ref{KindAddress, k} }
func TargetPool(k Key) Ref     { return Ref{KindTargetPool, k} }
func ForwardingRule(k Key) Ref { return Ref{KindForwardingRule, k} }
func HealthCheck(k Key) Ref    { return Ref{KindHealthCheck, k} }
func Group(k Key) Ref          { return Ref{KindGroup, k} }
func Template(k Key) Ref       { return Ref{KindTemplate, k} }
func Firewall(k Key) Ref       { return Ref{KindFirewall, k} }
func Network(k Key) Ref        { return Ref{KindNetwork, k} }
func Subnetwork(k Key) Ref     { return Ref{KindSubnetwork, k} }

// ProjectPrefix is the part of a resource URL up to and including its
// project ("https://www.googleapis.com/compute/v1/projects/p/"), "" when
// the link names no project. Links made from it (Link) read as GCE's own
// selfLinks, so that a flow can name a resource it has observed or just
// created without reading it back.
func ProjectPrefix(link string) string {
	i := strings.Index(link, "/projects/")
	if i < 0 {
		return ""
	}
	rest := link[i+len("/projects/"):]
	j := strings.Index(rest, "/")
	if j <= 0 {
		return ""
	}
	return link[:i+len("/projects/")+j+1]
}

// Link is the URL of the resource of collection ("instances",
// "targetPools", "httpHealthChecks", ...) under prefix (ProjectPrefix), ""
// when prefix is "".
func (k Key) Link(prefix, collection string) string {
	if prefix == "" {
		return ""
	}
	scope := "global/"
	switch {
	case k.Zone != "":
		scope = "zones/" + k.Zone + "/"
	case k.Region != "":
		scope = "regions/" + k.Region + "/"
	}
	return prefix + scope + collection + "/" + k.Name
}
