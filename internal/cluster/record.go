package cluster

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	compute "google.golang.org/api/compute/v1"

	"github.com/hakube/hakube/internal/cluster/config"
	"github.com/hakube/hakube/internal/gce"
	"github.com/hakube/hakube/internal/vmcontract"
)

// recorded is one setting as an existing cluster records it.
type recorded struct {
	key, value, from string
}

// clusterRecord reads back the settings an existing cluster was made with:
// the first master's kube-env, machine type and disks, the node template,
// the network, the pods' range and the static IP's mode label. What the cluster does not
// record (it is half made, or never had it) is simply absent.
func clusterRecord(obs *Observed) []recorded {
	var out []recorded
	add := func(key, value, from string) {
		if value != "" {
			out = append(out, recorded{key, value, from})
		}
	}
	if len(obs.Masters) > 0 {
		m := obs.Masters[0]
		from := "instance " + m.Name
		add("masterSize", gce.KeyOf(m.MachineType).Name, from)
		add("network", nicNetwork(m.NetworkInterfaces), from)
		for _, d := range m.Disks {
			if d.Boot && d.DiskSizeGb > 0 {
				add("masterRootDiskSize", diskGB(d.DiskSizeGb), from)
			}
		}
	}
	for _, m := range obs.Masters {
		env, err := vmcontract.ParseKubeEnv(metadataValue(m, vmcontract.KeyKubeEnv))
		if err != nil || env.Get("KUBERNETES_MASTER") == "" {
			continue
		}
		from := "kube-env of " + m.Name
		add("apiserverPort", env.Get("APISERVER_PORT"), from)
		add("healthcheckPort", env.Get("HEALTHCHECK_PORT"), from)
		add("multizone", env.Get("MULTIZONE"), from)
		add("etcdQuorumRead", env.Get("ETCD_QUORUM_READ"), from)
		break
	}
	for _, name := range obs.diskNames() {
		d := obs.Disks[name]
		from := "disk " + d.Name
		add("masterDiskType", gce.KeyOf(d.Type).Name, from)
		add("masterDiskSize", diskGB(d.SizeGb), from)
		break
	}
	if t := obs.Template; t != nil && t.Properties != nil {
		from := "instance-template " + t.Name
		p := t.Properties
		add("nodeSize", gce.KeyOf(p.MachineType).Name, from)
		for _, d := range p.Disks {
			if d.Boot && d.InitializeParams != nil {
				ip := d.InitializeParams
				add("nodeDiskSize", diskGB(ip.DiskSizeGb), from)
				add("nodeDiskType", gce.KeyOf(ip.DiskType).Name, from)
				if project, family, ok := imageFamilyOf(ip.SourceImage); ok {
					add("imageProject", project, from)
					add("imageFamily", family, from)
				}
			}
		}
		if !hasKey(out, "network") {
			add("network", nicNetwork(p.NetworkInterfaces), from)
		}
	}
	if r := obs.PodRange; r != nil && obs.Subnetwork != nil {
		add("clusterIPRange", r.IpCidrRange, "secondary range "+r.RangeName+" of subnet "+obs.Subnetwork.Name)
	}
	if !hasKey(out, "clusterIPRange") {
		// A flow that did not read the subnetwork: the masters' kube-env
		// says which range their pods come from.
		for _, m := range obs.Masters {
			if env, err := vmcontract.ParseKubeEnv(metadataValue(m, vmcontract.KeyKubeEnv)); err == nil && env.IsMaster() {
				add("clusterIPRange", env.Get(vmcontract.EnvClusterIPRange), "kube-env of "+m.Name)
				break
			}
		}
	}
	if a := obs.Address; a != nil {
		if mode := a.Labels[labelMode]; mode != "" {
			add("lbFirst", strconv.FormatBool(mode == modeLBFirst), "address "+a.Name)
		}
	}
	if !hasKey(out, "network") {
		for _, name := range obs.firewallNames() {
			fw := obs.Firewalls[name]
			if !strings.HasSuffix(fw.Name, "-default-ssh") {
				add("network", gce.KeyOf(fw.Network).Name, "firewall "+fw.Name)
				break
			}
		}
	}
	return out
}

func hasKey(rs []recorded, key string) bool {
	for _, r := range rs {
		if r.key == key {
			return true
		}
	}
	return false
}

func nicNetwork(nics []*compute.NetworkInterface) string {
	if len(nics) == 0 {
		return ""
	}
	return gce.KeyOf(nics[0].Network).Name
}

func diskGB(gb int64) string {
	if gb <= 0 {
		return ""
	}
	return strconv.FormatInt(gb, 10) + "GB"
}

// imageFamilyOf reads projects/P/global/images/family/F.
func imageFamilyOf(link string) (project, family string, ok bool) {
	parts := strings.Split(link, "/")
	for i := 0; i+4 < len(parts); i++ {
		if parts[i] == "projects" && parts[i+2] == "global" && parts[i+3] == "images" && parts[i+4] == "family" && i+5 < len(parts) {
			return parts[i+1], parts[i+5], true
		}
	}
	return "", "", false
}

// adoptRecord makes cfg describe the cluster as it exists: recorded values
// replace defaults, and given values that differ (for settings the command
// reads) refuse the request, all of them listed at once.
func adoptRecord(cfg *config.Config, obs *Observed, command string) error {
	var drifts []config.Drift
	for _, r := range clusterRecord(obs) {
		d, err := cfg.Adopt(r.key, r.value, r.from)
		if err != nil {
			return err
		}
		if d != nil && config.Reads(command, r.key) {
			drifts = append(drifts, *d)
		}
	}
	if len(drifts) > 0 {
		return config.NewDriftError(cfg.ClusterName(), drifts)
	}
	return nil
}

// observeAdopted observes the cluster and adopts its record into a copy of
// cfg. The network names what Observe looks at, so a network read back from
// the cluster means a second look.
func observeAdopted(ctx context.Context, c Observer, cfg *config.Config, command string) (*config.Config, *Observed, error) {
	cfg = cfg.Clone()
	scope := scopeOf(cfg, command)
	obs, err := observeScope(ctx, c, cfg, scope)
	if err != nil {
		return nil, nil, err
	}
	network := cfg.Network
	if err := adoptRecord(cfg, obs, command); err != nil {
		return nil, nil, err
	}
	if cfg.Network != network {
		if obs, err = observeScope(ctx, c, cfg, scope); err != nil {
			return nil, nil, fmt.Errorf("observe on the cluster's network %s: %w", cfg.Network, err)
		}
	}
	return cfg, obs, nil
}
