package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/hakube/hakube/internal/cluster"
	"github.com/hakube/hakube/internal/cluster/config"
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
	return cluster.GetStatus(cmd.Context(), &cluster.Env{Cloud: cloud, Log: g.log}, cfg)
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
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ZONE\tKIND\tNAME\tSTATE\tINTERNAL IP\tEXTERNAL IP\tREADY\tLB HEALTH")
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
			fmt.Fprintf(tw, "%s\tmaster\t%s\t%s\t%s\t%s\t%s\t%s\n", z.Zone, m.Name, m.Status, orNone(m.InternalIP), orNone(m.ExternalIP), ready, health)
		}
		if p := z.Pool; p != nil {
			state := "stable"
			if !p.Stable {
				state = "changing"
			}
			fmt.Fprintf(tw, "%s\tnode-pool\t%s\t%s\t-\t-\t%d/%d\t-\n", z.Zone, p.Name, state, p.Running, p.TargetSize)
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

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func newValidateCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check that the cluster is serving: the API on the static IP, every master ready, every node pool complete",
		Long: `validate exits 0 when the cluster serves: the API answers on the static IP
(TLS verified against the cluster CA), every master replica is running and ready,
and every node pool runs its target size. It exits 2 when the cluster exists but
is degraded, and 1 when it could not tell.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := readStatus(cmd, g, "validate")
			if err != nil {
				return err
			}
			if !st.Exists {
				return fmt.Errorf("there is no cluster %q in project %s, so nothing to validate; create one with `hakube up`, or check --prefix and --project", st.Cluster, st.Project)
			}
			problems := cluster.Problems(st)
			if g.output != "text" {
				if err := writeData(g.streams.out, g.output, map[string]any{"status": st, "problems": problems}); err != nil {
					return err
				}
			} else if len(problems) == 0 {
				fmt.Fprintf(g.streams.out, "Cluster %q is serving: API on %s, %d master(s) ready, node pools complete.\n",
					st.Cluster, st.StaticIP.Address, countMasters(st))
			}
			if len(problems) > 0 {
				return &degradedError{msg: fmt.Sprintf("cluster %q is not fully serving:\n  - %s", st.Cluster, strings.Join(problems, "\n  - "))}
			}
			return nil
		},
	}
	config.BindFlags(cmd.Flags(), cmd.Name())
	return cmd
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
