package cluster

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"

	compute "google.golang.org/api/compute/v1"

	"github.com/hakube/hakube/internal/cluster/config"
	"github.com/hakube/hakube/internal/gce"
	"github.com/hakube/hakube/internal/lb"
	"github.com/hakube/hakube/internal/startup"
	"github.com/hakube/hakube/internal/vmcontract"
	"github.com/hakube/hakube/internal/zones"
)

// What a cluster is made of, in kube-up's names and shapes (DESIGN §3, §7).

// masterSpec is what one master's kube-env and certificates are made of.
type masterSpec struct {
	name, zone           string
	staticIP, internalIP string
	// members are the etcd members it starts with, itself included.
	members []etcdPeer
	state   string // INITIAL_ETCD_CLUSTER_STATE: new or existing
	ca      []byte // the cluster CA certificate (PEM)
	token   string // the kubelets' bootstrap token
}

// etcdPeer is an etcd member as kube-env lists it.
type etcdPeer struct{ name, ip string }

// initialCluster renders etcd's --initial-cluster, sorted by name.
func initialCluster(peers []etcdPeer) string {
	peers = slices.Clone(peers)
	slices.SortFunc(peers, func(a, b etcdPeer) int { return strings.Compare(a.name, b.name) })
	parts := make([]string, 0, len(peers))
	for _, p := range slices.CompactFunc(peers, func(a, b etcdPeer) bool { return a.name == b.name }) {
		parts = append(parts, p.name+"="+vmcontract.EtcdPeerURL(p.ip))
	}
	return strings.Join(parts, ",")
}

// commonKubeEnv is what every VM of the cluster reads: masters and nodes.
func commonKubeEnv(cfg *config.Config, master bool, staticIP string, ca []byte, token string) *vmcontract.KubeEnv {
	e := vmcontract.NewKubeEnv()
	e.Set(vmcontract.EnvKubernetesMaster, strconv.FormatBool(master))
	e.Set(vmcontract.EnvInstancePrefix, cfg.Prefix)
	e.Set(vmcontract.EnvClusterName, cfg.ClusterName())
	e.Set(vmcontract.EnvMasterName, cfg.MasterName())
	e.Set(vmcontract.EnvMasterAddress, staticIP)
	e.Set(vmcontract.EnvAPIServerPort, strconv.Itoa(cfg.APIServerPort))
	e.Set(vmcontract.EnvKubeVersion, vmcontract.KubeVersion)
	e.Set(vmcontract.EnvEtcdVersion, vmcontract.EtcdVersion)
	e.Set(vmcontract.EnvCACert, base64.StdEncoding.EncodeToString(ca))
	e.Set(vmcontract.EnvBootstrapToken, token)
	e.Set(vmcontract.EnvMultizone, strconv.FormatBool(cfg.Multizone))
	e.Set(vmcontract.EnvRegion, cfg.Region())
	// kube-proxy on every VM tells pod traffic from the rest by it.
	e.Set(vmcontract.EnvClusterIPRange, cfg.ClusterIPRange)
	setIf(e, vmcontract.EnvKubeletTestArgs, cfg.KubeletTestArgs)
	return e
}

// masterKubeEnv is the first master's kube-env.
func masterKubeEnv(cfg *config.Config, m masterSpec) *vmcontract.KubeEnv {
	e := commonKubeEnv(cfg, true, m.staticIP, m.ca, m.token)
	e.Set(vmcontract.EnvAdvertiseAddress, m.staticIP)
	e.Set(vmcontract.EnvHealthCheckPort, strconv.Itoa(cfg.HealthCheckPort))
	e.Set(vmcontract.EnvEtcdQuorumRead, strconv.FormatBool(cfg.EtcdQuorumRead))
	e.Set(vmcontract.EnvNumNodes, strconv.Itoa(cfg.NumNodes))
	e.Set(vmcontract.EnvServiceClusterIPRange, serviceRange)
	setIf(e, vmcontract.EnvEtcdTestArgs, cfg.EtcdTestArgs)
	setIf(e, vmcontract.EnvAPIServerTestArgs, cfg.APIServerTestArgs)
	setIf(e, vmcontract.EnvControllerManagerTest, cfg.ControllerManagerTestArgs)
	setIf(e, vmcontract.EnvSchedulerTestArgs, cfg.SchedulerTestArgs)
	setMember(e, m)
	return e
}

// replicaKubeEnv clones a running master's kube-env for a new replica,
// rewriting where it runs and the etcd membership it starts with.
func replicaKubeEnv(source *vmcontract.KubeEnv, m masterSpec) (*vmcontract.KubeEnv, error) {
	e, err := vmcontract.ParseKubeEnv(source.String())
	if err != nil {
		return nil, err
	}
	setMember(e, m)
	return e, nil
}

func setMember(e *vmcontract.KubeEnv, m masterSpec) {
	names := make([]string, 0, len(m.members))
	for _, p := range m.members {
		names = append(names, p.name)
	}
	e.Set(vmcontract.EnvZone, m.zone)
	e.Set(vmcontract.EnvHostname, m.name)
	e.Set(vmcontract.EnvInitialEtcdCluster, vmcontract.JoinList(names...))
	e.Set(vmcontract.EnvEtcdInitialCluster, initialCluster(m.members))
	e.Set(vmcontract.EnvInitialEtcdState, m.state)
}

// nodeKubeEnv is the nodes' kube-env (shared by every zone's pool, since the
// template is global): the CA's certificate, never a CA key.
func nodeKubeEnv(cfg *config.Config, staticIP string, ca []byte, token string) *vmcontract.KubeEnv {
	return commonKubeEnv(cfg, false, staticIP, ca, token)
}

func setIf(e *vmcontract.KubeEnv, key, value string) {
	if value != "" {
		e.Set(key, value)
	}
}

// serviceRange is the services' range, kube-up's default.
const serviceRange = "10.0.0.0/16"

// vmNIC is a VM's interface: in the region's subnetwork of the network,
// with a /24 of the pods' range as its alias range.
func vmNIC(cfg *config.Config, region string) *compute.NetworkInterface {
	return &compute.NetworkInterface{
		Network:       "global/networks/" + cfg.Network,
		Subnetwork:    fmt.Sprintf("regions/%s/subnetworks/%s", region, cfg.Network),
		AliasIpRanges: []*compute.AliasIpRange{{IpCidrRange: podRangeSize, SubnetworkRangeName: cfg.PodRangeName()}},
	}
}

// internalAddress reserves a master's internal IP, so that its etcd peer
// URL and certificates can name it before the VM exists.
func internalAddress(cfg *config.Config, replica, region string) *compute.Address {
	return &compute.Address{
		Name:        cfg.InternalAddressName(replica),
		Description: gce.Description(cfg.ClusterName(), gce.RoleInternalIP, "internal IP of "+replica),
		AddressType: "INTERNAL",
		Purpose:     "GCE_ENDPOINT",
		Subnetwork:  fmt.Sprintf("regions/%s/subnetworks/%s", region, cfg.Network),
	}
}

// masterDisk is a replica's etcd data disk.
// etcdDisk is a master's etcd data disk as its VM attaches it: made by the
// instance's insert when new, never deleted with the VM (autoDelete false),
// so a replica re-made in the zone finds its data.
func etcdDisk(cfg *config.Config, replica, zone string, create bool) *compute.AttachedDisk {
	ad := &compute.AttachedDisk{DeviceName: vmcontract.EtcdDeviceName, Mode: "READ_WRITE", Type: "PERSISTENT", AutoDelete: false}
	if !create {
		ad.Source = fmt.Sprintf("zones/%s/disks/%s", zone, cfg.MasterDiskName(replica))
		return ad
	}
	ad.InitializeParams = &compute.AttachedDiskInitializeParams{
		DiskName:    cfg.MasterDiskName(replica),
		Description: gce.Description(cfg.ClusterName(), gce.RoleMasterDisk, "etcd data of "+replica),
		DiskSizeGb:  int64(cfg.MasterDiskSizeGB),
		DiskType:    fmt.Sprintf("zones/%s/diskTypes/%s", zone, cfg.MasterDiskType),
		Labels:      gce.Labels(cfg.ClusterName(), gce.RoleMasterDisk),
	}
	return ad
}

// vmScopes are all a VM's service account may do: write its logs and
// metrics. Its startup script needs no API (the metadata server needs no
// scope), and nothing on it calls Compute: the in-tree cloud provider that
// needed kube-up's compute scope is gone.
var vmScopes = []string{"https://www.googleapis.com/auth/logging.write", "https://www.googleapis.com/auth/monitoring.write"}

// masterInstance builds a master VM on its reserved internal IP. natIP ""
// gives it an ephemeral external IP. Its startup script is rendered from
// the kube-env it carries (the script checks that at boot).
func masterInstance(cfg *config.Config, name, zone, natIP, internalIP string, env *vmcontract.KubeEnv, certs string, newDisk bool) (*compute.Instance, error) {
	script, err := startup.Master(vmcontract.Master{Env: env, Host: vmcontract.RealHost(name, internalIP)})
	if err != nil {
		return nil, fmt.Errorf("render the startup script of %s: %w", name, err)
	}
	nic := vmNIC(cfg, zones.Region(zone))
	nic.NetworkIP = internalIP
	nic.AccessConfigs = []*compute.AccessConfig{{Name: lb.AccessConfigName, Type: "ONE_TO_ONE_NAT", NatIP: natIP}}
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
			etcdDisk(cfg, name, zone, newDisk),
		},
		NetworkInterfaces: []*compute.NetworkInterface{nic},
		Metadata: &compute.Metadata{Items: []*compute.MetadataItems{
			{Key: vmcontract.KeyKubeEnv, Value: strPtr(env.String())},
			{Key: vmcontract.KeyMasterCerts, Value: strPtr(certs)},
			{Key: vmcontract.KeyClusterName, Value: strPtr(cfg.ClusterName())},
			{Key: vmcontract.KeyStartupScript, Value: strPtr(script)},
			// The guest publishes its SSH host keys as guest attributes, which
			// hakube (and gcloud) verify host keys against, and its bootstrap's
			// outcome, which status shows.
			{Key: vmcontract.KeyEnableGuestAttributes, Value: strPtr("TRUE")},
		}},
		ServiceAccounts: []*compute.ServiceAccount{{Email: "default", Scopes: vmScopes}},
	}, nil
}

// nodeTemplate is the global instance template of every zone's pool.
func nodeTemplate(cfg *config.Config, staticIP string, ca []byte, token string) (*compute.InstanceTemplate, error) {
	env := nodeKubeEnv(cfg, staticIP, ca, token)
	script, err := startup.Node(env)
	if err != nil {
		return nil, fmt.Errorf("render the nodes' startup script: %w", err)
	}
	nic := vmNIC(cfg, cfg.Region())
	nic.AccessConfigs = []*compute.AccessConfig{{Name: lb.AccessConfigName, Type: "ONE_TO_ONE_NAT"}}
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
			NetworkInterfaces: []*compute.NetworkInterface{nic},
			Metadata: &compute.Metadata{Items: []*compute.MetadataItems{
				{Key: vmcontract.KeyKubeEnv, Value: strPtr(env.String())},
				{Key: vmcontract.KeyClusterName, Value: strPtr(cfg.ClusterName())},
				{Key: vmcontract.KeyStartupScript, Value: strPtr(script)},
				{Key: vmcontract.KeyEnableGuestAttributes, Value: strPtr("TRUE")},
			}},
			ServiceAccounts: []*compute.ServiceAccount{{Email: "default", Scopes: vmScopes}},
		},
	}, nil
}

// nodeGroup is one of a zone's managed instance groups.
func nodeGroup(cfg *config.Config, name string, size int, templateLink string) *compute.InstanceGroupManager {
	return &compute.InstanceGroupManager{
		Name:        name,
		Description: gce.Description(cfg.ClusterName(), gce.RoleNodeGroup, "Kubernetes nodes of this zone"),
		// kube-up's --base-instance-name: nodes are <group>-xxxx, as in the HA
		// guide's `kubectl get nodes` (kubernetes-minion-group-6s52).
		BaseInstanceName: name,
		InstanceTemplate: templateLink,
		TargetSize:       int64(size),
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
