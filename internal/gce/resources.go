package gce

import (
	"context"
	"errors"
	"maps"
	"slices"

	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/googleapi"
)

// listAll follows nextPageToken until the last page, each page under the
// list rate limit.
func listAll[T any](ctx context.Context, c *Cloud, method string, fetch func(ctx context.Context, token string) ([]T, string, error)) ([]T, error) {
	var out []T
	token := ""
	for {
		var items []T
		var next string
		err := c.do(ctx, groupList, method, func(ctx context.Context) error {
			var err error
			items, next, err = fetch(ctx, token)
			return err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		if next == "" {
			return out, nil
		}
		token = next
	}
}

// get runs one read.
func get[T any](ctx context.Context, c *Cloud, method string, fetch func(ctx context.Context) (T, error)) (T, error) {
	var out T
	err := c.do(ctx, groupRead, method, func(ctx context.Context) error {
		var err error
		out, err = fetch(ctx)
		return err
	})
	return out, err
}

// ignoreNotFound makes deletes idempotent: a resource already gone is the
// outcome the caller wanted.
func ignoreNotFound(err error) error {
	if IsNotFound(err) {
		return nil
	}
	return err
}

// zones and regions

func (c *Cloud) GetZone(ctx context.Context, zone string) (*compute.Zone, error) {
	return get(ctx, c, "zones.get", func(ctx context.Context) (*compute.Zone, error) {
		return c.svc.Zones.Get(c.project, zone).Context(ctx).Do()
	})
}

func (c *Cloud) GetRegion(ctx context.Context, region string) (*compute.Region, error) {
	return get(ctx, c, "regions.get", func(ctx context.Context) (*compute.Region, error) {
		return c.svc.Regions.Get(c.project, region).Context(ctx).Do()
	})
}

// ListZones lists the project's zones (for shell completion).
func (c *Cloud) ListZones(ctx context.Context) ([]*compute.Zone, error) {
	return listAll(ctx, c, "zones.list", func(ctx context.Context, token string) ([]*compute.Zone, string, error) {
		l, err := c.svc.Zones.List(c.project).PageToken(token).Context(ctx).Do()
		if err != nil {
			return nil, "", err
		}
		return l.Items, l.NextPageToken, nil
	})
}

// GetMachineType reads a machine type of a zone (what preflights resolve
// before anything is created from it).
func (c *Cloud) GetMachineType(ctx context.Context, k Key) (*compute.MachineType, error) {
	return get(ctx, c, "machineTypes.get", func(ctx context.Context) (*compute.MachineType, error) {
		return c.svc.MachineTypes.Get(c.project, k.Zone, k.Name).Context(ctx).Do()
	})
}

// GetDiskType reads a disk type of a zone.
func (c *Cloud) GetDiskType(ctx context.Context, k Key) (*compute.DiskType, error) {
	return get(ctx, c, "diskTypes.get", func(ctx context.Context) (*compute.DiskType, error) {
		return c.svc.DiskTypes.Get(c.project, k.Zone, k.Name).Context(ctx).Do()
	})
}

// GetImageFromFamily reads the newest image of a family in an image project.
func (c *Cloud) GetImageFromFamily(ctx context.Context, project, family string) (*compute.Image, error) {
	return get(ctx, c, "images.getFromFamily", func(ctx context.Context) (*compute.Image, error) {
		return c.svc.Images.GetFromFamily(project, family).Context(ctx).Do()
	})
}

// networks and firewalls

func (c *Cloud) GetNetwork(ctx context.Context, k Key) (*compute.Network, error) {
	return get(ctx, c, "networks.get", func(ctx context.Context) (*compute.Network, error) {
		return c.svc.Networks.Get(c.project, k.Name).Context(ctx).Do()
	})
}

// GetSubnetwork reads a regional subnetwork.
func (c *Cloud) GetSubnetwork(ctx context.Context, k Key) (*compute.Subnetwork, error) {
	return get(ctx, c, "subnetworks.get", func(ctx context.Context) (*compute.Subnetwork, error) {
		return c.svc.Subnetworks.Get(c.project, k.Region, k.Name).Context(ctx).Do()
	})
}

// AggregatedSubnetworks lists the subnetworks matching filter in every
// region.
func (c *Cloud) AggregatedSubnetworks(ctx context.Context, filter string) ([]*compute.Subnetwork, error) {
	return listAll(ctx, c, "subnetworks.aggregatedList", func(ctx context.Context, tok string) ([]*compute.Subnetwork, string, error) {
		r, err := c.svc.Subnetworks.AggregatedList(c.project).Filter(filter).PageToken(tok).Context(ctx).Do()
		if err != nil {
			return nil, "", err
		}
		var out []*compute.Subnetwork
		for _, k := range slices.Sorted(maps.Keys(r.Items)) {
			out = append(out, r.Items[k].Subnetworks...)
		}
		return out, r.NextPageToken, nil
	})
}

// SetSecondaryRanges replaces a subnetwork's secondary ranges, with the
// fingerprint it was read with (412 when someone changed it since).
func (c *Cloud) SetSecondaryRanges(ctx context.Context, k Key, fingerprint string, ranges []*compute.SubnetworkSecondaryRange) error {
	sn := &compute.Subnetwork{Fingerprint: fingerprint, SecondaryIpRanges: ranges, ForceSendFields: []string{"SecondaryIpRanges"}}
	return c.mutate(ctx, "subnetworks.patch", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.Subnetworks.Patch(c.project, k.Region, k.Name, sn).RequestId(rid).Context(ctx).Do()
	})
}

// InsertAutoNetwork creates an auto-mode network (kube-up's default).
func (c *Cloud) InsertAutoNetwork(ctx context.Context, k Key, description string) error {
	n := &compute.Network{Name: k.Name, Description: description, AutoCreateSubnetworks: true}
	return c.mutate(ctx, "networks.insert", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.Networks.Insert(c.project, n).RequestId(rid).Context(ctx).Do()
	})
}

func (c *Cloud) DeleteNetwork(ctx context.Context, k Key) error {
	return ignoreNotFound(c.mutate(ctx, "networks.delete", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.Networks.Delete(c.project, k.Name).RequestId(rid).Context(ctx).Do()
	}))
}

// ListFirewalls lists firewall rules matching filter ("" for all).
func (c *Cloud) ListFirewalls(ctx context.Context, filter string) ([]*compute.Firewall, error) {
	return listAll(ctx, c, "firewalls.list", func(ctx context.Context, tok string) ([]*compute.Firewall, string, error) {
		r, err := c.svc.Firewalls.List(c.project).Filter(filter).PageToken(tok).Context(ctx).Do()
		if err != nil {
			return nil, "", err
		}
		return r.Items, r.NextPageToken, nil
	})
}

func (c *Cloud) InsertFirewall(ctx context.Context, k Key, fw *compute.Firewall) error {
	fw.Name = k.Name
	return c.mutate(ctx, "firewalls.insert", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.Firewalls.Insert(c.project, fw).RequestId(rid).Context(ctx).Do()
	})
}

func (c *Cloud) DeleteFirewall(ctx context.Context, k Key) error {
	return ignoreNotFound(c.mutate(ctx, "firewalls.delete", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.Firewalls.Delete(c.project, k.Name).RequestId(rid).Context(ctx).Do()
	}))
}

// addresses

func (c *Cloud) GetAddress(ctx context.Context, k Key) (*compute.Address, error) {
	return get(ctx, c, "addresses.get", func(ctx context.Context) (*compute.Address, error) {
		return c.svc.Addresses.Get(c.project, k.Region, k.Name).Context(ctx).Do()
	})
}

// ListAddresses lists the region's addresses matching filter.
func (c *Cloud) ListAddresses(ctx context.Context, region, filter string) ([]*compute.Address, error) {
	return listAll(ctx, c, "addresses.list", func(ctx context.Context, tok string) ([]*compute.Address, string, error) {
		r, err := c.svc.Addresses.List(c.project, region).Filter(filter).PageToken(tok).Context(ctx).Do()
		if err != nil {
			return nil, "", err
		}
		return r.Items, r.NextPageToken, nil
	})
}

// AggregatedAddresses lists addresses matching filter in every region.
func (c *Cloud) AggregatedAddresses(ctx context.Context, filter string) ([]*compute.Address, error) {
	return listAll(ctx, c, "addresses.aggregatedList", func(ctx context.Context, tok string) ([]*compute.Address, string, error) {
		r, err := c.svc.Addresses.AggregatedList(c.project).Filter(filter).PageToken(tok).Context(ctx).Do()
		if err != nil {
			return nil, "", err
		}
		var out []*compute.Address
		for _, k := range slices.Sorted(maps.Keys(r.Items)) {
			out = append(out, r.Items[k].Addresses...)
		}
		return out, r.NextPageToken, nil
	})
}

// InsertAddress reserves a static address. GCE ignores labels given at
// insert for addresses, so set them afterwards with SetAddressLabels.
func (c *Cloud) InsertAddress(ctx context.Context, k Key, a *compute.Address) error {
	a.Name = k.Name
	return c.mutate(ctx, "addresses.insert", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.Addresses.Insert(c.project, k.Region, a).RequestId(rid).Context(ctx).Do()
	})
}

func (c *Cloud) DeleteAddress(ctx context.Context, k Key) error {
	return ignoreNotFound(c.mutate(ctx, "addresses.delete", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.Addresses.Delete(c.project, k.Region, k.Name).RequestId(rid).Context(ctx).Do()
	}))
}

// SetAddressLabels replaces the labels, given the fingerprint they were read
// with; a stale fingerprint fails with IsPrecondition.
func (c *Cloud) SetAddressLabels(ctx context.Context, k Key, labels map[string]string, fingerprint string) error {
	req := &compute.RegionSetLabelsRequest{Labels: labels, LabelFingerprint: fingerprint}
	return c.mutate(ctx, "addresses.setLabels", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.Addresses.SetLabels(c.project, k.Region, k.Name, req).RequestId(rid).Context(ctx).Do()
	})
}

// disks

func (c *Cloud) GetDisk(ctx context.Context, k Key) (*compute.Disk, error) {
	return get(ctx, c, "disks.get", func(ctx context.Context) (*compute.Disk, error) {
		return c.svc.Disks.Get(c.project, k.Zone, k.Name).Context(ctx).Do()
	})
}

// AggregatedDisks lists disks matching filter in every zone.
func (c *Cloud) AggregatedDisks(ctx context.Context, filter string) ([]*compute.Disk, error) {
	return listAll(ctx, c, "disks.aggregatedList", func(ctx context.Context, tok string) ([]*compute.Disk, string, error) {
		r, err := c.svc.Disks.AggregatedList(c.project).Filter(filter).PageToken(tok).Context(ctx).Do()
		if err != nil {
			return nil, "", err
		}
		var out []*compute.Disk
		for _, k := range slices.Sorted(maps.Keys(r.Items)) {
			out = append(out, r.Items[k].Disks...)
		}
		return out, r.NextPageToken, nil
	})
}

func (c *Cloud) InsertDisk(ctx context.Context, k Key, d *compute.Disk) error {
	d.Name = k.Name
	return c.mutate(ctx, "disks.insert", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.Disks.Insert(c.project, k.Zone, d).RequestId(rid).Context(ctx).Do()
	})
}

func (c *Cloud) DeleteDisk(ctx context.Context, k Key) error {
	return ignoreNotFound(c.mutate(ctx, "disks.delete", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.Disks.Delete(c.project, k.Zone, k.Name).RequestId(rid).Context(ctx).Do()
	}))
}

// instances

func (c *Cloud) GetInstance(ctx context.Context, k Key) (*compute.Instance, error) {
	return get(ctx, c, "instances.get", func(ctx context.Context) (*compute.Instance, error) {
		return c.svc.Instances.Get(c.project, k.Zone, k.Name).Context(ctx).Do()
	})
}

// AggregatedInstances lists instances matching filter in every zone.
func (c *Cloud) AggregatedInstances(ctx context.Context, filter string) ([]*compute.Instance, error) {
	return listAll(ctx, c, "instances.aggregatedList", func(ctx context.Context, tok string) ([]*compute.Instance, string, error) {
		r, err := c.svc.Instances.AggregatedList(c.project).Filter(filter).PageToken(tok).Context(ctx).Do()
		if err != nil {
			return nil, "", err
		}
		var out []*compute.Instance
		for _, k := range slices.Sorted(maps.Keys(r.Items)) {
			out = append(out, r.Items[k].Instances...)
		}
		return out, r.NextPageToken, nil
	})
}

func (c *Cloud) InsertInstance(ctx context.Context, k Key, in *compute.Instance) error {
	return c.InsertInstanceNotify(ctx, k, in, nil)
}

// InsertInstanceNotify is InsertInstance, calling accepted once GCE has
// accepted the insert: from then on the instance, with its metadata, is
// listed, even while its operation runs (it may still fail, and the
// instance then goes).
func (c *Cloud) InsertInstanceNotify(ctx context.Context, k Key, in *compute.Instance, accepted func()) error {
	in.Name = k.Name
	return c.mutateNotify(ctx, "instances.insert", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.Instances.Insert(c.project, k.Zone, in).RequestId(rid).Context(ctx).Do()
	}, accepted)
}

func (c *Cloud) DeleteInstance(ctx context.Context, k Key) error {
	return ignoreNotFound(c.mutate(ctx, "instances.delete", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.Instances.Delete(c.project, k.Zone, k.Name).RequestId(rid).Context(ctx).Do()
	}))
}

func (c *Cloud) StopInstance(ctx context.Context, k Key) error {
	return c.mutate(ctx, "instances.stop", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.Instances.Stop(c.project, k.Zone, k.Name).RequestId(rid).Context(ctx).Do()
	})
}

func (c *Cloud) StartInstance(ctx context.Context, k Key) error {
	return c.mutate(ctx, "instances.start", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.Instances.Start(c.project, k.Zone, k.Name).RequestId(rid).Context(ctx).Do()
	})
}

// AddAccessConfig gives nic0 an external IP: natIP "" for an ephemeral one.
func (c *Cloud) AddAccessConfig(ctx context.Context, instance Key, name, natIP string) error {
	ac := &compute.AccessConfig{Name: name, Type: "ONE_TO_ONE_NAT", NatIP: natIP}
	return c.mutate(ctx, "instances.addAccessConfig", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.Instances.AddAccessConfig(c.project, instance.Zone, instance.Name, "nic0", ac).RequestId(rid).Context(ctx).Do()
	})
}

// DeleteAccessConfig removes nic0's access config of that name.
func (c *Cloud) DeleteAccessConfig(ctx context.Context, instance Key, name string) error {
	return c.mutate(ctx, "instances.deleteAccessConfig", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.Instances.DeleteAccessConfig(c.project, instance.Zone, instance.Name, name, "nic0").RequestId(rid).Context(ctx).Do()
	})
}

// SetInstanceLabels replaces an instance's labels given their fingerprint.
func (c *Cloud) SetInstanceLabels(ctx context.Context, k Key, labels map[string]string, fingerprint string) error {
	req := &compute.InstancesSetLabelsRequest{Labels: labels, LabelFingerprint: fingerprint}
	return c.mutate(ctx, "instances.setLabels", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.Instances.SetLabels(c.project, k.Zone, k.Name, req).RequestId(rid).Context(ctx).Do()
	})
}

// SetInstanceMetadata replaces an instance's metadata; md carries the
// fingerprint it was read with.
func (c *Cloud) SetInstanceMetadata(ctx context.Context, k Key, md *compute.Metadata) error {
	return c.mutate(ctx, "instances.setMetadata", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.Instances.SetMetadata(c.project, k.Zone, k.Name, md).RequestId(rid).Context(ctx).Do()
	})
}

// GuestAttributes reads what the VM's guest published under a path
// ("hostkeys/": its SSH host keys); a VM that published nothing there
// answers 404.
func (c *Cloud) GuestAttributes(ctx context.Context, k Key, queryPath string) ([]*compute.GuestAttributesEntry, error) {
	g, err := get(ctx, c, "instances.getGuestAttributes", func(ctx context.Context) (*compute.GuestAttributes, error) {
		return c.svc.Instances.GetGuestAttributes(c.project, k.Zone, k.Name).QueryPath(queryPath).Context(ctx).Do()
	})
	if err != nil {
		return nil, err
	}
	if g.QueryValue == nil {
		return nil, nil
	}
	return g.QueryValue.Items, nil
}

// instance templates and managed instance groups

func (c *Cloud) GetInstanceTemplate(ctx context.Context, k Key) (*compute.InstanceTemplate, error) {
	return get(ctx, c, "instanceTemplates.get", func(ctx context.Context) (*compute.InstanceTemplate, error) {
		return c.svc.InstanceTemplates.Get(c.project, k.Name).Context(ctx).Do()
	})
}

func (c *Cloud) InsertInstanceTemplate(ctx context.Context, k Key, t *compute.InstanceTemplate) error {
	t.Name = k.Name
	return c.mutate(ctx, "instanceTemplates.insert", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.InstanceTemplates.Insert(c.project, t).RequestId(rid).Context(ctx).Do()
	})
}

func (c *Cloud) DeleteInstanceTemplate(ctx context.Context, k Key) error {
	return ignoreNotFound(c.mutate(ctx, "instanceTemplates.delete", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.InstanceTemplates.Delete(c.project, k.Name).RequestId(rid).Context(ctx).Do()
	}))
}

func (c *Cloud) GetMIG(ctx context.Context, k Key) (*compute.InstanceGroupManager, error) {
	return get(ctx, c, "instanceGroupManagers.get", func(ctx context.Context) (*compute.InstanceGroupManager, error) {
		return c.svc.InstanceGroupManagers.Get(c.project, k.Zone, k.Name).Context(ctx).Do()
	})
}

// AggregatedMIGs lists managed instance groups matching filter in every zone.
func (c *Cloud) AggregatedMIGs(ctx context.Context, filter string) ([]*compute.InstanceGroupManager, error) {
	return listAll(ctx, c, "instanceGroupManagers.aggregatedList", func(ctx context.Context, tok string) ([]*compute.InstanceGroupManager, string, error) {
		r, err := c.svc.InstanceGroupManagers.AggregatedList(c.project).Filter(filter).PageToken(tok).Context(ctx).Do()
		if err != nil {
			return nil, "", err
		}
		var out []*compute.InstanceGroupManager
		for _, k := range slices.Sorted(maps.Keys(r.Items)) {
			out = append(out, r.Items[k].InstanceGroupManagers...)
		}
		return out, r.NextPageToken, nil
	})
}

func (c *Cloud) InsertMIG(ctx context.Context, k Key, m *compute.InstanceGroupManager) error {
	m.Name = k.Name
	if m.TargetSize == 0 {
		// targetSize is required on insert; the client drops zero values.
		m.ForceSendFields = append(m.ForceSendFields, "TargetSize")
	}
	return c.mutate(ctx, "instanceGroupManagers.insert", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.InstanceGroupManagers.Insert(c.project, k.Zone, m).RequestId(rid).Context(ctx).Do()
	})
}

func (c *Cloud) DeleteMIG(ctx context.Context, k Key) error {
	return ignoreNotFound(c.mutate(ctx, "instanceGroupManagers.delete", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.InstanceGroupManagers.Delete(c.project, k.Zone, k.Name).RequestId(rid).Context(ctx).Do()
	}))
}

func (c *Cloud) ResizeMIG(ctx context.Context, k Key, size int64) error {
	return c.mutate(ctx, "instanceGroupManagers.resize", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.InstanceGroupManagers.Resize(c.project, k.Zone, k.Name, size).RequestId(rid).Context(ctx).Do()
	})
}

// ListManagedInstances lists a MIG's VMs with their current actions.
func (c *Cloud) ListManagedInstances(ctx context.Context, k Key) ([]*compute.ManagedInstance, error) {
	return listAll(ctx, c, "instanceGroupManagers.listManagedInstances", func(ctx context.Context, tok string) ([]*compute.ManagedInstance, string, error) {
		r, err := c.svc.InstanceGroupManagers.ListManagedInstances(c.project, k.Zone, k.Name).PageToken(tok).Context(ctx).Do()
		if err != nil {
			return nil, "", err
		}
		return r.ManagedInstances, r.NextPageToken, nil
	})
}

// load balancer: legacy HTTP health checks, target pools, forwarding rules

func (c *Cloud) GetHTTPHealthCheck(ctx context.Context, k Key) (*compute.HttpHealthCheck, error) {
	return get(ctx, c, "httpHealthChecks.get", func(ctx context.Context) (*compute.HttpHealthCheck, error) {
		return c.svc.HttpHealthChecks.Get(c.project, k.Name).Context(ctx).Do()
	})
}

func (c *Cloud) InsertHTTPHealthCheck(ctx context.Context, k Key, hc *compute.HttpHealthCheck) error {
	hc.Name = k.Name
	return c.mutate(ctx, "httpHealthChecks.insert", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.HttpHealthChecks.Insert(c.project, hc).RequestId(rid).Context(ctx).Do()
	})
}

// PatchHTTPHealthCheck changes the fields set in hc.
func (c *Cloud) PatchHTTPHealthCheck(ctx context.Context, k Key, hc *compute.HttpHealthCheck) error {
	return c.mutate(ctx, "httpHealthChecks.patch", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.HttpHealthChecks.Patch(c.project, k.Name, hc).RequestId(rid).Context(ctx).Do()
	})
}

func (c *Cloud) DeleteHTTPHealthCheck(ctx context.Context, k Key) error {
	return ignoreNotFound(c.mutate(ctx, "httpHealthChecks.delete", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.HttpHealthChecks.Delete(c.project, k.Name).RequestId(rid).Context(ctx).Do()
	}))
}

func (c *Cloud) GetTargetPool(ctx context.Context, k Key) (*compute.TargetPool, error) {
	return get(ctx, c, "targetPools.get", func(ctx context.Context) (*compute.TargetPool, error) {
		return c.svc.TargetPools.Get(c.project, k.Region, k.Name).Context(ctx).Do()
	})
}

func (c *Cloud) InsertTargetPool(ctx context.Context, k Key, tp *compute.TargetPool) error {
	tp.Name = k.Name
	return c.mutate(ctx, "targetPools.insert", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.TargetPools.Insert(c.project, k.Region, tp).RequestId(rid).Context(ctx).Do()
	})
}

func (c *Cloud) DeleteTargetPool(ctx context.Context, k Key) error {
	return ignoreNotFound(c.mutate(ctx, "targetPools.delete", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.TargetPools.Delete(c.project, k.Region, k.Name).RequestId(rid).Context(ctx).Do()
	}))
}

// AddTargetPoolInstances adds instances (URLs) to a pool.
func (c *Cloud) AddTargetPoolInstances(ctx context.Context, pool Key, instances ...string) error {
	req := &compute.TargetPoolsAddInstanceRequest{}
	for _, l := range instances {
		req.Instances = append(req.Instances, &compute.InstanceReference{Instance: l})
	}
	return c.mutate(ctx, "targetPools.addInstance", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.TargetPools.AddInstance(c.project, pool.Region, pool.Name, req).RequestId(rid).Context(ctx).Do()
	})
}

// RemoveTargetPoolInstances removes instances (URLs) from a pool.
func (c *Cloud) RemoveTargetPoolInstances(ctx context.Context, pool Key, instances ...string) error {
	req := &compute.TargetPoolsRemoveInstanceRequest{}
	for _, l := range instances {
		req.Instances = append(req.Instances, &compute.InstanceReference{Instance: l})
	}
	return c.mutate(ctx, "targetPools.removeInstance", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.TargetPools.RemoveInstance(c.project, pool.Region, pool.Name, req).RequestId(rid).Context(ctx).Do()
	})
}

// TargetPoolHealth returns the pool's view of one member: "HEALTHY" or
// "UNHEALTHY". A member that is not running answers resourceNotReady on
// GCE; that is reported as "UNHEALTHY" too.
func (c *Cloud) TargetPoolHealth(ctx context.Context, pool Key, instance string) (string, error) {
	var state string
	err := c.do(ctx, groupRead, "targetPools.getHealth", func(ctx context.Context) error {
		r, err := c.svc.TargetPools.GetHealth(c.project, pool.Region, pool.Name, &compute.InstanceReference{Instance: instance}).Context(ctx).Do()
		var ge *googleapi.Error
		if errors.As(err, &ge) && hasReason(ge, "resourceNotReady") {
			state = "UNHEALTHY" // not retried: a stopped member stays not ready
			return nil
		}
		if err != nil {
			return err
		}
		state = "UNHEALTHY"
		for _, h := range r.HealthStatus {
			if h.HealthState == "HEALTHY" {
				state = "HEALTHY"
			}
		}
		return nil
	})
	return state, err
}

func (c *Cloud) GetForwardingRule(ctx context.Context, k Key) (*compute.ForwardingRule, error) {
	return get(ctx, c, "forwardingRules.get", func(ctx context.Context) (*compute.ForwardingRule, error) {
		return c.svc.ForwardingRules.Get(c.project, k.Region, k.Name).Context(ctx).Do()
	})
}

// InsertForwardingRule creates a rule; GCE drops insert-time labels on
// forwarding rules, so set them afterwards.
func (c *Cloud) InsertForwardingRule(ctx context.Context, k Key, fr *compute.ForwardingRule) error {
	fr.Name = k.Name
	return c.mutate(ctx, "forwardingRules.insert", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.ForwardingRules.Insert(c.project, k.Region, fr).RequestId(rid).Context(ctx).Do()
	})
}

func (c *Cloud) DeleteForwardingRule(ctx context.Context, k Key) error {
	return ignoreNotFound(c.mutate(ctx, "forwardingRules.delete", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.ForwardingRules.Delete(c.project, k.Region, k.Name).RequestId(rid).Context(ctx).Do()
	}))
}

func (c *Cloud) SetForwardingRuleLabels(ctx context.Context, k Key, labels map[string]string, fingerprint string) error {
	req := &compute.RegionSetLabelsRequest{Labels: labels, LabelFingerprint: fingerprint}
	return c.mutate(ctx, "forwardingRules.setLabels", func(ctx context.Context, rid string) (*compute.Operation, error) {
		return c.svc.ForwardingRules.SetLabels(c.project, k.Region, k.Name, req).RequestId(rid).Context(ctx).Do()
	})
}
