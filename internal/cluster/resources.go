package cluster

import (
	"fmt"
	"strconv"

	compute "google.golang.org/api/compute/v1"

	"github.com/hakube/hakube/internal/cluster/config"
	"github.com/hakube/hakube/internal/gce"
	"github.com/hakube/hakube/internal/lb"
	"github.com/hakube/hakube/internal/vmcontract"
)

// What a cluster is made of, in kube-up's names and shapes (DESIGN §3, §7).

// masterKubeEnv is the first master's kube-env.
func masterKubeEnv(cfg *config.Config, name, zone, staticIP string, etcdMembers []string, state string) *vmcontract.KubeEnv {
	e := vmcontract.NewKubeEnv()
	e.Set("KUBERNETES_MASTER", "true")
	e.Set("INSTANCE_PREFIX", cfg.Prefix)
	e.Set("CLUSTER_NAME", cfg.ClusterName())
	e.Set("MASTER_NAME", cfg.MasterName())
	e.Set("KUBERNETES_MASTER_NAME", staticIP)
	e.Set("MASTER_ADVERTISE_ADDRESS", staticIP)
	e.Set("INITIAL_ETCD_CLUSTER", vmcontract.JoinList(etcdMembers...))
	e.Set("INITIAL_ETCD_CLUSTER_STATE", state)
	e.Set("ETCD_QUORUM_READ", strconv.FormatBool(cfg.EtcdQuorumRead))
	e.Set("MULTIZONE", strconv.FormatBool(cfg.Multizone))
	e.Set("ZONE", zone)
	e.Set("REGION", cfg.Region())
	e.Set("NUM_NODES", strconv.Itoa(cfg.NumNodes))
	e.Set("APISERVER_PORT", strconv.Itoa(cfg.APIServerPort))
	e.Set("HEALTHCHECK_PORT", strconv.Itoa(cfg.HealthCheckPort))
	e.Set("HOSTNAME", name)
	return e
}

// nodeKubeEnv is the nodes' kube-env (shared by every zone's pool, since the
// template is global).
func nodeKubeEnv(cfg *config.Config, staticIP string) *vmcontract.KubeEnv {
	e := vmcontract.NewKubeEnv()
	e.Set("KUBERNETES_MASTER", "false")
	e.Set("INSTANCE_PREFIX", cfg.Prefix)
	e.Set("CLUSTER_NAME", cfg.ClusterName())
	e.Set("MASTER_NAME", cfg.MasterName())
	e.Set("KUBERNETES_MASTER_NAME", staticIP)
	e.Set("MULTIZONE", strconv.FormatBool(cfg.Multizone))
	e.Set("REGION", cfg.Region())
	e.Set("APISERVER_PORT", strconv.Itoa(cfg.APIServerPort))
	return e
}

// masterDisk is a replica's etcd data disk.
func masterDisk(cfg *config.Config, replica, zone string) *compute.Disk {
	return &compute.Disk{
		Name:        cfg.MasterDiskName(replica),
		Description: gce.Description(cfg.ClusterName(), gce.RoleMasterDisk, "etcd data of "+replica),
		SizeGb:      int64(cfg.MasterDiskSizeGB),
		Type:        fmt.Sprintf("zones/%s/diskTypes/%s", zone, cfg.MasterDiskType),
		Labels:      gce.Labels(cfg.ClusterName(), gce.RoleMasterDisk),
	}
}

// masterInstance builds a master VM. natIP "" gives it an ephemeral IP.
func masterInstance(cfg *config.Config, name, zone, natIP string, env *vmcontract.KubeEnv, certs string) *compute.Instance {
	ac := &compute.AccessConfig{Name: lb.AccessConfigName, Type: "ONE_TO_ONE_NAT", NatIP: natIP}
	return &compute.Instance{
		Name:         name,
		Description:  gce.Description(cfg.ClusterName(), gce.RoleMaster, "Kubernetes master replica"),
		MachineType:  fmt.Sprintf("zones/%s/machineTypes/%s", zone, cfg.MasterSize),
		CanIpForward: true,
		Tags:         &compute.Tags{Items: []string{cfg.MasterTag()}},
		Labels:       gce.Labels(cfg.ClusterName(), gce.RoleMaster),
		Disks: []*compute.AttachedDisk{
			{
				Boot: true, AutoDelete: true, Mode: "READ_WRITE", Type: "PERSISTENT",
				InitializeParams: &compute.AttachedDiskInitializeParams{
					SourceImage: cfg.Image(),
					DiskSizeGb:  int64(cfg.MasterRootDiskSizeGB),
					DiskType:    fmt.Sprintf("zones/%s/diskTypes/pd-ssd", zone),
				},
			},
			{
				Source:     fmt.Sprintf("zones/%s/disks/%s", zone, cfg.MasterDiskName(name)),
				DeviceName: "master-pd", Mode: "READ_WRITE", Type: "PERSISTENT", AutoDelete: false,
			},
		},
		NetworkInterfaces: []*compute.NetworkInterface{{
			Network:       "global/networks/" + cfg.Network,
			AccessConfigs: []*compute.AccessConfig{ac},
		}},
		Metadata: &compute.Metadata{Items: []*compute.MetadataItems{
			{Key: vmcontract.KeyKubeEnv, Value: strPtr(env.String())},
			{Key: vmcontract.KeyMasterCerts, Value: strPtr(certs)},
			{Key: vmcontract.KeyClusterName, Value: strPtr(cfg.ClusterName())},
		}},
		ServiceAccounts: []*compute.ServiceAccount{{
			Email:  "default",
			Scopes: []string{"https://www.googleapis.com/auth/devstorage.read_only", "https://www.googleapis.com/auth/compute", "https://www.googleapis.com/auth/logging.write", "https://www.googleapis.com/auth/monitoring"},
		}},
	}
}

// nodeTemplate is the global instance template of every zone's pool.
func nodeTemplate(cfg *config.Config, staticIP string) *compute.InstanceTemplate {
	return &compute.InstanceTemplate{
		Name:        cfg.NodeTemplateName(),
		Description: gce.Description(cfg.ClusterName(), gce.RoleNodeTemplate, "Kubernetes nodes"),
		Properties: &compute.InstanceProperties{
			MachineType: cfg.NodeSize,
			Tags:        &compute.Tags{Items: []string{cfg.NodeTag()}},
			Labels:      gce.Labels(cfg.ClusterName(), gce.RoleNode),
			Disks: []*compute.AttachedDisk{{
				Boot: true, AutoDelete: true, Mode: "READ_WRITE", Type: "PERSISTENT",
				InitializeParams: &compute.AttachedDiskInitializeParams{
					SourceImage: cfg.Image(), DiskSizeGb: int64(cfg.NodeDiskSizeGB), DiskType: cfg.NodeDiskType,
				},
			}},
			NetworkInterfaces: []*compute.NetworkInterface{{
				Network:       "global/networks/" + cfg.Network,
				AccessConfigs: []*compute.AccessConfig{{Name: lb.AccessConfigName, Type: "ONE_TO_ONE_NAT"}},
			}},
			Metadata: &compute.Metadata{Items: []*compute.MetadataItems{
				{Key: vmcontract.KeyKubeEnv, Value: strPtr(nodeKubeEnv(cfg, staticIP).String())},
				{Key: vmcontract.KeyClusterName, Value: strPtr(cfg.ClusterName())},
			}},
		},
	}
}

// nodeGroup is a zone's managed instance group.
func nodeGroup(cfg *config.Config, templateLink string) *compute.InstanceGroupManager {
	return &compute.InstanceGroupManager{
		Name:        cfg.NodeGroupName(),
		Description: gce.Description(cfg.ClusterName(), gce.RoleNodeGroup, "Kubernetes nodes of this zone"),
		// kube-up's --base-instance-name: nodes are <group>-xxxx, as in the HA
		// guide's `kubectl get nodes` (kubernetes-minion-group-6s52).
		BaseInstanceName: cfg.NodeGroupName(),
		InstanceTemplate: templateLink,
		TargetSize:       int64(cfg.NumNodes),
	}
}

// firewalls are kube-up's rules for the cluster.
func firewalls(cfg *config.Config) []*compute.Firewall {
	d := func(text string) string { return gce.Description(cfg.ClusterName(), gce.RoleFirewall, text) }
	network := "global/networks/" + cfg.Network
	api := strconv.Itoa(cfg.APIServerPort)
	hc := strconv.Itoa(cfg.HealthCheckPort)
	return []*compute.Firewall{
		{Name: cfg.MasterHTTPSFirewallName(), Network: network, Description: d("apiserver and its health check"),
			TargetTags: []string{cfg.MasterTag()}, SourceRanges: []string{"0.0.0.0/0"},
			Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp", Ports: []string{api, hc}}}},
		{Name: cfg.MasterEtcdFirewallName(), Network: network, Description: d("etcd peers between master replicas"),
			SourceTags: []string{cfg.MasterTag()}, TargetTags: []string{cfg.MasterTag()},
			Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp", Ports: []string{"2380", "2381"}}}},
		{Name: cfg.NodeAllFirewallName(), Network: network, Description: d("pod traffic to nodes"),
			SourceRanges: []string{"10.64.0.0/14"}, TargetTags: []string{cfg.NodeTag()},
			Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp"}, {IPProtocol: "udp"}, {IPProtocol: "icmp"}, {IPProtocol: "esp"}, {IPProtocol: "ah"}, {IPProtocol: "sctp"}}},
		{Name: cfg.InternalMasterFirewallName(), Network: network, Description: d("internal traffic to masters, etcd peer ports excluded"),
			SourceRanges: []string{"10.0.0.0/8"}, TargetTags: []string{cfg.MasterTag()},
			Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp", Ports: []string{"1-2379", "2382-65535"}}, {IPProtocol: "udp", Ports: []string{"1-65535"}}, {IPProtocol: "icmp"}}},
		{Name: cfg.InternalNodeFirewallName(), Network: network, Description: d("internal traffic to nodes"),
			SourceRanges: []string{"10.0.0.0/8"}, TargetTags: []string{cfg.NodeTag()},
			Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp", Ports: []string{"1-65535"}}, {IPProtocol: "udp", Ports: []string{"1-65535"}}, {IPProtocol: "icmp"}}},
		{Name: cfg.SSHFirewallName(), Network: network, Description: d("SSH"),
			SourceRanges: []string{"0.0.0.0/0"},
			Allowed:      []*compute.FirewallAllowed{{IPProtocol: "tcp", Ports: []string{"22"}}}},
	}
}

func strPtr(s string) *string { return &s }

// metadataValue returns an instance's metadata value ("" when absent).
func metadataValue(in *compute.Instance, key string) string {
	if in == nil || in.Metadata == nil {
		return ""
	}
	for _, it := range in.Metadata.Items {
		if it.Key == key && it.Value != nil {
			return *it.Value
		}
	}
	return ""
}

// natIP is the external IP of an instance's nic0 ("" when none).
func natIP(in *compute.Instance) string {
	if len(in.NetworkInterfaces) == 0 || len(in.NetworkInterfaces[0].AccessConfigs) == 0 {
		return ""
	}
	return in.NetworkInterfaces[0].AccessConfigs[0].NatIP
}

// internalIP is the internal IP of an instance's nic0.
func internalIP(in *compute.Instance) string {
	if len(in.NetworkInterfaces) == 0 {
		return ""
	}
	return in.NetworkInterfaces[0].NetworkIP
}
