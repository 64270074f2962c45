package config

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hakube/hakube/internal/zones"
)

// The names below are kube-up's (DESIGN §3), so existing habits, scripts and
// clusters keep working. Names alone are not ownership: the flows also check
// hakube's labels or description marker before touching anything.

// ClusterName is kube-up's CLUSTER_NAME: the prefix, also the cluster-name
// metadata and the hakube-cluster label.
func (c *Config) ClusterName() string { return c.Prefix }

// MasterName is kube-up's MASTER_NAME: the first master VM and the root of
// the master-side names.
func (c *Config) MasterName() string { return c.Prefix + "-master" }

// ReplicaName is the name of a master replica with the given random suffix.
func (c *Config) ReplicaName(suffix string) string { return c.MasterName() + "-" + suffix }

// Region is the zone's region: europe-west1-c → europe-west1.
func (c *Config) Region() string { return zones.Region(c.Zone) }

// StaticIPName is the regional address that serves the apiserver.
func (c *Config) StaticIPName() string { return c.MasterName() + "-ip" }

// TargetPoolName is the master load balancer's target pool: MASTER_NAME, as in kube-up.
func (c *Config) TargetPoolName() string { return c.MasterName() }

// ForwardingRuleName is the rule that holds the static IP once the load
// balancer exists: MASTER_NAME, as in kube-up.
func (c *Config) ForwardingRuleName() string { return c.MasterName() }

// HealthCheckName is the target pool's HTTP health check: MASTER_NAME.
func (c *Config) HealthCheckName() string { return c.MasterName() }

// NodeTemplateName is the global instance template of every node pool.
func (c *Config) NodeTemplateName() string { return c.NodeTag() + "-template" }

// NodeGroupName is the managed instance group of nodes, one per zone (the
// last of the zone's groups when its pool is split).
func (c *Config) NodeGroupName() string { return c.NodeTag() + "-group" }

// PodRangeName is the secondary range of the region's subnetwork that the
// cluster's pods' alias ranges come from.
func (c *Config) PodRangeName() string { return c.Prefix + "-pods" }

// NodeGroups names and sizes a zone's pool of n nodes: ceil(n / max)
// groups, kube-up's <prefix>-minion-group-1..N-1 and the last unsuffixed
// (so a pool of one group is named as it always was), the nodes spread
// evenly as kube-up spreads them.
func (c *Config) NodeGroups(n int) []NodeGroup {
	max := c.MaxInstancesPerMIG
	if max < 1 {
		max = MaxNodesPerGroup
	}
	count := (n + max - 1) / max
	if count < 1 {
		count = 1
	}
	out := make([]NodeGroup, 0, count)
	left := n
	for i := 1; i <= count; i++ {
		size := left / (count - i + 1)
		left -= size
		name := fmt.Sprintf("%s-%d", c.NodeGroupName(), i)
		if i == count {
			name = c.NodeGroupName()
		}
		out = append(out, NodeGroup{Name: name, Size: size})
	}
	return out
}

// NodeGroup is one managed instance group of a zone's pool.
type NodeGroup struct {
	Name string
	Size int
}

// IsNodeGroup reports whether a managed instance group's name is one of
// the cluster's node groups.
func (c *Config) IsNodeGroup(name string) bool {
	if name == c.NodeGroupName() {
		return true
	}
	n, ok := strings.CutPrefix(name, c.NodeGroupName()+"-")
	if !ok || n == "" || n[0] == '0' {
		return false
	}
	_, err := strconv.Atoi(n)
	return err == nil
}

// MasterTag is the network tag of every master replica.
func (c *Config) MasterTag() string { return c.Prefix + "-master" }

// NodeTag is the network tag of nodes, and kube-up's NODE_INSTANCE_PREFIX.
func (c *Config) NodeTag() string { return c.Prefix + "-minion" }

// MasterHTTPSFirewallName opens the apiserver port to the masters.
func (c *Config) MasterHTTPSFirewallName() string { return c.MasterName() + "-https" }

// MasterEtcdFirewallName opens etcd's peer ports between master replicas.
func (c *Config) MasterEtcdFirewallName() string { return c.MasterName() + "-etcd" }

// NodeAllFirewallName opens pod traffic to the nodes.
func (c *Config) NodeAllFirewallName() string { return c.NodeTag() + "-all" }

// InternalMasterFirewallName opens the network's internal traffic to masters.
func (c *Config) InternalMasterFirewallName() string {
	return c.ClusterName() + "-default-internal-master"
}

// InternalNodeFirewallName opens the network's internal traffic to nodes.
func (c *Config) InternalNodeFirewallName() string {
	return c.ClusterName() + "-default-internal-node"
}

// SSHFirewallName belongs to the network, not the cluster: kube-up shares it
// between all clusters on the network.
func (c *Config) SSHFirewallName() string { return c.Network + "-default-ssh" }

// InternalAddressName is the reserved internal IP of a master replica.
func (c *Config) InternalAddressName(replica string) string { return replica + "-internal" }

// MasterDiskName is the data (etcd) disk of a master replica.
func (c *Config) MasterDiskName(replica string) string { return replica + "-pd" }

// prefixNames lists every name built from the prefix, with a replica suffix of
// the length hakube generates, so checkPrefix can bound the longest.
func (c *Config) prefixNames() []string {
	replica := c.ReplicaName("abc")
	return []string{
		c.MasterName(), replica, c.MasterDiskName(c.MasterName()), c.MasterDiskName(replica),
		c.InternalAddressName(c.MasterName()), c.InternalAddressName(replica),
		c.StaticIPName(), c.TargetPoolName(), c.ForwardingRuleName(), c.HealthCheckName(),
		c.NodeTemplateName(), c.NodeGroupName() + "-5", c.NodeGroupName() + "-5-abcd", c.MasterTag(), c.NodeTag(),
		c.MasterHTTPSFirewallName(), c.MasterEtcdFirewallName(), c.NodeAllFirewallName(),
		c.InternalMasterFirewallName(), c.InternalNodeFirewallName(),
	}
}

// Image is the image family link masters and nodes boot from.
func (c *Config) Image() string {
	return "projects/" + c.ImageProject + "/global/images/family/" + c.ImageFamily
}
