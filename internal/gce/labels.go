package gce

import (
	"fmt"
	"strings"
)

// Ownership. Names alone are not ownership (kube-up's name regex matched
// other clusters' masters): every resource hakube makes carries the cluster
// it belongs to, in labels where the resource takes labels and in its
// description otherwise. hakube never changes a resource without it.
const (
	LabelCluster = "hakube-cluster"
	LabelRole    = "hakube-role"
)

// Roles of the resources a cluster owns.
const (
	RoleMaster       = "master"
	RoleMasterDisk   = "master-disk"
	RoleStaticIP     = "static-ip"
	RoleInternalIP   = "internal-ip"
	RoleNode         = "node"
	RoleNodeTemplate = "node-template"
	RoleNodeGroup    = "node-group"
	RoleFirewall     = "firewall"
	RoleTargetPool   = "target-pool"
	RoleHealthCheck  = "health-check"
	RoleLB           = "forwarding-rule"
	RoleNetwork      = "network"
)

// Labels are the ownership labels of a resource of the cluster.
func Labels(cluster, role string) map[string]string {
	return map[string]string{LabelCluster: cluster, LabelRole: role}
}

// Marker is the ownership marker for resources without labels; it leads the
// description so that people reading the console see it too.
func Marker(cluster, role string) string {
	return fmt.Sprintf("hakube-cluster=%s hakube-role=%s", cluster, role)
}

// Description prefixes a human description with the ownership marker.
func Description(cluster, role, text string) string {
	if text == "" {
		return Marker(cluster, role)
	}
	return Marker(cluster, role) + ": " + text
}

// Owned reports whether labels or description mark the resource as the
// cluster's.
func Owned(cluster string, labels map[string]string, description string) bool {
	if labels[LabelCluster] == cluster {
		return true
	}
	return OwnedByDescription(cluster, description)
}

// OwnedByDescription checks the description marker only.
func OwnedByDescription(cluster, description string) bool {
	m := "hakube-cluster=" + cluster + " "
	return strings.HasPrefix(description, m)
}

// ClusterFilter is a list filter matching the cluster's labelled resources.
func ClusterFilter(cluster string) string {
	return fmt.Sprintf("labels.%s = %q", LabelCluster, cluster)
}

// RoleFilter matches the cluster's resources of one role: the masters, say,
// without the thousands of node VMs a list of the cluster would page
// through.
func RoleFilter(cluster, role string) string {
	return fmt.Sprintf("(labels.%s = %q) (labels.%s = %q)", LabelCluster, cluster, LabelRole, role)
}
