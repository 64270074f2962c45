package cluster

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/hakube/hakube/internal/cluster/config"
	"github.com/hakube/hakube/internal/gce"
	"github.com/hakube/hakube/internal/kube"
)

// Steps on the cluster's own API, through the static IP, with a credential
// minted from the cluster CA for the run.

// kubeClient connects to the API on the static IP.
func (r *run) kubeClient() (*kube.Client, error) {
	secrets, err := r.secrets()
	if err != nil {
		return nil, err
	}
	cert, err := secrets.pki.RunClient(r.env.now())
	if err != nil {
		return nil, err
	}
	return kube.New(r.apiURL(), secrets.pki.CA.CertPEM, cert)
}

// apiURL is the API on the static IP.
func (r *run) apiURL() string {
	return "https://" + net.JoinHostPort(r.st.staticIP(), strconv.Itoa(r.cfg.APIServerPort))
}

// bootstrapAPI creates what the kubelets need to join (RBAC and the
// bootstrap token's Secret) and kubeadm's cluster-admins binding.
func (r *run) bootstrapAPI(ctx context.Context) error {
	secrets, err := r.secrets()
	if err != nil {
		return err
	}
	c, err := r.kubeClient()
	if err != nil {
		return err
	}
	return r.env.poll(ctx, "the API's bootstrap objects", r.env.APIDeadline, func(ctx context.Context) (bool, string, error) {
		// The apiserver may still be finishing its own start (RBAC's
		// bootstrap roles): retry what fails.
		if err := c.Bootstrap(ctx, secrets.token); err != nil {
			return false, err.Error(), nil
		}
		return true, "", nil
	})
}

// waitNodes waits until every VM of the cluster (the masters and every
// pool's VMs; in a replica's flow the masters only) has its Node Ready,
// labelling and cordoning the masters' as they register.
func (r *run) waitNodes(ctx context.Context) error {
	c, err := r.kubeClient()
	if err != nil {
		return err
	}
	if err := r.waitGrown(ctx, c); err != nil {
		return err
	}
	// The VMs are listed once, and again only when all their Nodes are
	// Ready, to see that no group made another meanwhile: the polls in
	// between ask the cluster's API, not Compute. Nodes all Ready in the
	// poll that listed their VMs need no second list.
	var masters, workers []string
	listed, fixed := false, r.masterNodes != nil
	if fixed {
		masters, listed = r.masterNodes, true
	}
	return r.env.pollUpTo(ctx, "the nodes", r.env.StableTimeout, nodePollCap(r.nodeCount()), func(ctx context.Context) (bool, string, error) {
		fresh := !listed
		if fresh {
			var err error
			if masters, workers, err = r.vmNames(ctx); err != nil {
				return false, "", err
			}
			listed = true
		}
		ready, err := readyNodes(ctx, c)
		if err != nil {
			return false, err.Error(), nil
		}
		var waiting []string
		for _, m := range masters {
			ok, err := c.PrepareMaster(ctx, m)
			if err != nil {
				return false, err.Error(), nil
			}
			if !ok || !ready[m] {
				waiting = append(waiting, m)
			}
		}
		for _, w := range workers {
			if !ready[w] {
				waiting = append(waiting, w)
			}
		}
		if len(waiting) == 0 && (fresh || fixed) {
			return true, "", nil
		}
		if len(waiting) == 0 {
			m, w, err := r.vmNames(ctx)
			if err != nil {
				return false, "", err
			}
			if slices.Equal(m, masters) && slices.Equal(w, workers) {
				return true, "", nil
			}
			masters, workers = m, w
			return false, "the VMs changed while their Nodes turned Ready", nil
		}
		return false, fmt.Sprintf("%d of %d nodes Ready; waiting for %s", len(masters)+len(workers)-len(waiting), len(masters)+len(workers), abbreviate(waiting, 5)), nil
	})
}

// readyNodes lists the Nodes: per name, whether it is Ready.
func readyNodes(ctx context.Context, c *kube.Client) (map[string]bool, error) {
	nodes, err := c.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	ready := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		ready[n.Name] = n.Ready
	}
	return ready, nil
}

// nodePollCap is how far apart the polls of n Nodes get: they ask the
// cluster's API for its table of Nodes, not Compute, so a Node that turns
// Ready is seen within 2 s; a list of thousands costs the apiserver more,
// and is asked for less often.
func nodePollCap(n int) time.Duration {
	return 2 * time.Second * time.Duration(max(1, n/1000))
}

// nodeCount is about how many node VMs the cluster has: its observed
// groups' sizes and the sizes the run gives the groups it grows.
func (r *run) nodeCount() int {
	n := 0
	for _, groups := range r.obs.Pools {
		for _, m := range groups {
			n += int(m.TargetSize)
		}
	}
	for _, g := range r.grown {
		n += g.target
	}
	return n
}

// groupReread is how long the wait for growing groups' Nodes goes without
// one more turning Ready before it lists the groups again: to say what
// Compute is doing (VMs still being created, or failing to be) and to
// follow a VM a group made again under another name. Each list that finds
// nothing new doubles it, up to groupRereadMax: while Nodes keep turning
// Ready (thousands of them joining) the groups are listed once.
const (
	groupReread    = 20 * time.Second
	groupRereadMax = 2 * time.Minute
)

// waitGrown waits until the VMs of each group the run creates or grows
// have Ready Nodes. The groups' VMs are named when the group is made (GCE
// lists them, CREATING, at once): one list of each group names them, and
// the polls ask the cluster's table of Nodes, not Compute. (No label is
// relied on: a real kubelet without a cloud provider sets no zone.)
func (r *run) waitGrown(ctx context.Context, c *kube.Client) error {
	if len(r.grown) == 0 {
		return nil
	}
	want := 0
	for _, g := range r.grown {
		want += g.target
	}
	vms := map[gce.Key][]string{}
	var listed, moved time.Time // the groups' last list; the last Node that turned Ready
	reread, seen, note := groupReread, 0, ""
	return r.env.pollUpTo(ctx, "the new nodes", r.env.StableTimeout, nodePollCap(r.nodeCount()), func(ctx context.Context) (bool, string, error) {
		if listed.IsZero() || time.Since(listed) >= reread && time.Since(moved) >= reread {
			if !listed.IsZero() {
				reread = min(2*reread, groupRereadMax)
			}
			var err error
			if note, err = r.groupVMs(ctx, vms); err != nil {
				return false, "", err
			}
			listed = time.Now()
		}
		ready, err := readyNodes(ctx, c)
		if err != nil {
			return false, err.Error(), nil
		}
		n, done := 0, true
		for _, g := range r.grown {
			k := 0
			for _, vm := range vms[g.key] {
				if ready[vm] {
					k++
				}
			}
			n += min(k, g.target)
			done = done && k >= g.target
		}
		if done {
			return true, "", nil
		}
		if n > seen { // the groups' last list is out of date
			seen, moved, note = n, time.Now(), ""
		}
		state := fmt.Sprintf("%d of %d new nodes Ready", n, want)
		if note != "" {
			state += "; " + note
		}
		return false, state, nil
	})
}

// groupVMs names each growing group's VMs (those it keeps) into vms and
// says what the groups are doing: how many VMs are in progress, and the
// last error of one that failed.
func (r *run) groupVMs(ctx context.Context, vms map[gce.Key][]string) (string, error) {
	var notes []string
	for _, g := range r.grown {
		ins, err := r.env.Cloud.ListManagedInstances(ctx, g.key)
		if err != nil {
			return "", wrap(err, "list the VMs of group %s", g.key)
		}
		var names []string
		busy, lastErr := 0, ""
		for _, in := range ins {
			if in.TargetStatus == "DELETED" {
				continue
			}
			name := gce.KeyOf(in.Instance).Name
			names = append(names, name)
			if in.CurrentAction != "NONE" {
				busy++
			}
			if a := in.LastAttempt; a != nil && a.Errors != nil && len(a.Errors.Errors) > 0 {
				lastErr = name + ": " + a.Errors.Errors[0].Message
			}
		}
		vms[g.key] = names
		if busy > 0 || lastErr != "" {
			n := fmt.Sprintf("%s: %d of %d VMs in progress", g.key, busy, len(names))
			if lastErr != "" {
				n += ", last error " + lastErr
			}
			notes = append(notes, n)
		}
	}
	return strings.Join(notes, "; "), nil
}

// vmNames lists the running masters and pool VMs as they are now.
func (r *run) vmNames(ctx context.Context) (masters, workers []string, err error) {
	ins, err := r.env.Cloud.AggregatedInstances(ctx, gce.ClusterFilter(r.cfg.ClusterName()))
	if err != nil {
		return nil, nil, wrap(err, "list the cluster's VMs")
	}
	for _, in := range ins {
		if !running(in) {
			continue
		}
		if in.Labels[gce.LabelRole] == gce.RoleMaster {
			masters = append(masters, in.Name)
		} else {
			workers = append(workers, in.Name)
		}
	}
	slices.Sort(masters)
	slices.Sort(workers)
	return masters, workers, nil
}

// deleteNode deletes a removed VM's Node: with no cloud controller (the
// in-tree GCE provider is gone) it would otherwise stay NotReady forever.
func (r *run) deleteNode(ctx context.Context, name string) error {
	c, err := r.kubeClient()
	if err != nil {
		return err
	}
	return c.DeleteNode(ctx, name)
}

// kubeconfigName is kube-up's context name: ${PROJECT}_${INSTANCE_PREFIX}.
func kubeconfigName(project, prefix string) string { return project + "_" + prefix }

// kubeconfigEntry is the admin's kubeconfig entry, with a new certificate.
func (r *run) kubeconfigEntry() (kube.Kubeconfig, error) {
	secrets, err := r.secrets()
	if err != nil {
		return kube.Kubeconfig{}, err
	}
	cert, key, err := secrets.pki.Admin("admin", r.env.now())
	if err != nil {
		return kube.Kubeconfig{}, err
	}
	return kube.Kubeconfig{Name: kubeconfigName(r.cfg.Project, r.cfg.Prefix), Server: r.apiURL(), CA: secrets.pki.CA.CertPEM, Cert: cert, Key: key}, nil
}

// writeKubeconfig merges the admin's context into the kubeconfig and makes
// it current, as kube-up does after a fresh cluster.
func (r *run) writeKubeconfig(ctx context.Context) error {
	k, err := r.kubeconfigEntry()
	if err != nil {
		return err
	}
	if err := kube.Merge(r.env.Kubeconfig, k); err != nil {
		return err
	}
	r.env.progress(ctx, "context %s in %s, current", k.Name, r.env.Kubeconfig)
	return nil
}

func abbreviate(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}

// AdminKubeconfig issues a new admin kubeconfig entry for an existing
// cluster (hakube kubeconfig): the cluster's record decides its address.
func AdminKubeconfig(ctx context.Context, env *Env, cfg *config.Config) (kube.Kubeconfig, error) {
	env.defaults()
	cfg, obs, err := observeAdopted(ctx, env.Cloud, cfg, "status")
	if err != nil {
		return kube.Kubeconfig{}, err
	}
	if err := requireCluster(cfg, obs); err != nil {
		return kube.Kubeconfig{}, err
	}
	r := &run{env: env, cfg: cfg, obs: obs, st: newRunState(obs)}
	return r.kubeconfigEntry()
}

// readNodes lists the Nodes into obs, so a re-run can finish what an
// earlier run stopped before: label and cordon a master's Node, delete the
// Node of a replica whose VM it deleted. An API that does not answer leaves
// them unknown (no repair is planned); the flows themselves do not need it.
func readNodes(ctx context.Context, env *Env, cfg *config.Config, obs *Observed) {
	if obs.Address == nil || clusterCA(obs) == nil {
		return
	}
	r := &run{env: env, cfg: cfg, obs: obs, st: newRunState(obs)}
	c, err := r.kubeClient()
	if err == nil {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		obs.Nodes, err = c.Nodes(lctx)
	}
	if err != nil {
		env.Log.Info("the cluster's Nodes were not read", zap.Error(err))
	}
}

// masterNodes names the Nodes with the control-plane role.
func (o *Observed) masterNodes() []string {
	var out []string
	for _, n := range o.Nodes {
		if n.Master() {
			out = append(out, n.Name)
		}
	}
	return out
}

// unpreparedMasters names the running masters whose Node is missing, or
// not labelled and cordoned as hakube's wait for the nodes leaves them.
func (o *Observed) unpreparedMasters() []string {
	if o.Nodes == nil {
		return nil
	}
	var out []string
	for _, m := range o.Masters {
		i := slices.IndexFunc(o.Nodes, func(n kube.Node) bool { return n.Name == m.Name })
		if running(m) && (i < 0 || !o.Nodes[i].Master() || !o.Nodes[i].Unschedulable) {
			out = append(out, m.Name)
		}
	}
	return out
}
