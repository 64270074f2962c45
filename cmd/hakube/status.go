package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hakube/hakube/internal/cluster"
	"github.com/hakube/hakube/internal/cluster/config"
	"github.com/hakube/hakube/internal/etcdm"
)

func newStatusCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the cluster per zone: master replicas, node pools, the static IP and who holds it",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := readStatus(cmd, g, "status")
			if err != nil {
				return err
			}
			if g.output != "text" {
				return writeData(g.streams.out, g.output, st)
			}
			return writeStatusText(g.streams.out, st)
		},
	}
	config.BindFlags(cmd.Flags(), cmd.Name())
	return cmd
}

func readStatus(cmd *cobra.Command, g *globalOptions, command string) (*cluster.Status, error) {
	cfg, err := g.loadConfig(cmd, command)
	if err != nil {
		return nil, err
	}
	cloud, err := g.newCloud(cmd.Context(), cfg)
	if err != nil {
		return nil, err
	}
	env, err := g.newEnv(cfg, cloud, nil)
	if err != nil {
		return nil, err
	}
	return cluster.GetStatus(cmd.Context(), env, cfg)
}

func writeStatusText(w io.Writer, st *cluster.Status) error {
	if !st.Exists {
		fmt.Fprintf(w, "Cluster %q does not exist in project %s.\n", st.Cluster, st.Project)
		return nil
	}
	fmt.Fprintf(w, "Cluster %q in project %s, region %s (%s)\n", st.Cluster, st.Project, st.Region, st.Mode)
	if ip := st.StaticIP; ip != nil {
		serving := "not serving"
		if ip.Serving {
			serving = "serving"
		}
		fmt.Fprintf(w, "Static IP %s %s: %s, held by %s, %s\n", ip.Name, ip.Address, ip.Status, ip.Owner, serving)
	}
	if lb := st.LoadBalancer; lb != nil {
		fmt.Fprintf(w, "Load balancer: forwarding-rule %s, target-pool %s, health-check %s\n",
			orNone(lb.ForwardingRule), orNone(lb.TargetPool), orNone(lb.HealthCheck))
	}
	if st.Lock != nil {
		fmt.Fprintf(w, "Locked by %s\n", st.Lock)
	}
	if a := st.API; a != nil {
		if a.Ready {
			fmt.Fprintln(w, "API: ready (/readyz)")
		} else {
			fmt.Fprintf(w, "API: not ready: %s\n", a.Error)
		}
	}
	writeEtcdText(w, st.Etcd)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ZONE\tKIND\tNAME\tSTATE\tINTERNAL IP\tEXTERNAL IP\tSERVING\tLB HEALTH\tNODE\tETCD\tBOOTSTRAP")
	for _, z := range st.Zones {
		for _, m := range z.Masters {
			ready := "no"
			if m.Ready {
				ready = "yes"
			}
			health := "-"
			if m.Health != "" {
				health = m.Health
			} else if m.InPool {
				health = "in pool"
			}
			fmt.Fprintf(tw, "%s\tmaster\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", z.Zone, m.Name, m.Status, orNone(m.InternalIP), orNone(m.ExternalIP), ready, health,
				nodeText(m.NodeReady), memberText(m.Member), bootstrapText(m.Bootstrap))
		}
		if p := z.Pool; p != nil {
			state := "stable"
			if !p.Stable {
				state = "changing"
			}
			boot := "-"
			if len(p.BootstrapFailed) > 0 {
				boot = fmt.Sprintf("%d failed", len(p.BootstrapFailed))
			}
			fmt.Fprintf(tw, "%s\tnode-pool\t%s\t%s\t-\t-\t%d/%d running\t-\t%d/%d Ready\t-\t%s\n", z.Zone, p.Name, state, p.Running, p.TargetSize, p.NodesReady, p.TargetSize, boot)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, c := range st.Conflicts {
		fmt.Fprintf(w, "Warning: %s\n", c)
	}
	return nil
}

// bootstrapText is a master's startup outcome, short: the reason is in
// status's problems and the serial console.
func bootstrapText(b string) string {
	if b == "" {
		return "-"
	}
	if before, _, ok := strings.Cut(b, ": "); ok {
		return before
	}
	return b
}

// writeEtcdText summarises etcd's membership.
func writeEtcdText(w io.Writer, e *cluster.EtcdStatus) {
	switch {
	case e == nil:
		return
	case e.Error != "":
		fmt.Fprintf(w, "etcd: unknown: %s\n", e.Error)
		return
	}
	voters, healthy, leader := 0, 0, "none"
	for _, m := range e.Members {
		if !m.Learner {
			voters++
		}
		if m.Healthy && !m.Learner {
			healthy++
		}
		if m.Leader {
			leader = m.Name
		}
	}
	fmt.Fprintf(w, "etcd: %d members, %d of %d voters healthy, leader %s (via %s)\n", len(e.Members), healthy, voters, leader, e.Via)
	for _, p := range e.Phantoms {
		fmt.Fprintf(w, "etcd: member %s has no VM\n", p)
	}
	for _, m := range e.Missing {
		fmt.Fprintf(w, "etcd: master %s has no member\n", m)
	}
}

func nodeText(ready *bool) string {
	switch {
	case ready == nil:
		return "-"
	case *ready:
		return "Ready"
	}
	return "NotReady"
}

func memberText(m *etcdm.Member) string {
	if m == nil {
		return "-"
	}
	role := "voter"
	switch {
	case m.Leader:
		role = "leader"
	case m.Learner:
		role = "learner"
	}
	if !m.Healthy {
		role += ",unhealthy"
	}
	return role + " " + m.IDHex
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func newValidateCmd(g *globalOptions) *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check that the cluster serves: the API, every master, every Node Ready, etcd healthy with one member per master",
		Long: `validate is kube-up's validate-cluster.sh: it exits 0 when the cluster serves —
the API answers on the static IP (TLS verified against the cluster CA) and its
/readyz is ready, every master replica runs and answers, every node pool runs
its target size, every Node is Ready, and etcd is healthy with exactly one
voting member per master. It exits 2 when the cluster exists but is degraded,
and 1 when it could not tell. --wait keeps looking until it serves or the time
is up, saying what it still waits for.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			deadline := time.Now().Add(wait)
			for {
				st, err := readStatus(cmd, g, "validate")
				if err != nil {
					return err
				}
				if !st.Exists {
					return fmt.Errorf("there is no cluster %q in project %s, so nothing to validate; create one with `hakube up`, or check --prefix and --project", st.Cluster, st.Project)
				}
				problems := cluster.Problems(st)
				if len(problems) > 0 && time.Now().Before(deadline) {
					fmt.Fprintf(g.streams.err, "   … %d problems, %s left: %s\n", len(problems), time.Until(deadline).Round(time.Second), problems[0])
					select {
					case <-cmd.Context().Done():
						return cmd.Context().Err()
					case <-time.After(min(5*time.Second, time.Until(deadline))):
					}
					continue
				}
				return reportValidation(g, st, problems)
			}
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 0, "keep validating until the cluster serves or this much time has passed, like 5m")
	config.BindFlags(cmd.Flags(), cmd.Name())
	return cmd
}

func reportValidation(g *globalOptions, st *cluster.Status, problems []string) error {
	if g.output != "text" {
		if err := writeData(g.streams.out, g.output, map[string]any{"status": st, "problems": problems}); err != nil {
			return err
		}
	} else if len(problems) == 0 {
		fmt.Fprintf(g.streams.out, "Cluster %q serves: API on %s, %d master(s) ready, %d Nodes Ready, etcd healthy.\n",
			st.Cluster, st.StaticIP.Address, countMasters(st), len(st.Nodes))
	}
	if len(problems) > 0 {
		return &degradedError{msg: fmt.Sprintf("cluster %q is not fully serving:\n  - %s", st.Cluster, strings.Join(problems, "\n  - "))}
	}
	return nil
}

func countMasters(st *cluster.Status) int {
	n := 0
	for _, z := range st.Zones {
		n += len(z.Masters)
	}
	return n
}

func jsonIndent(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
