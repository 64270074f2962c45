package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"sigs.k8s.io/yaml"

	"github.com/hakube/hakube/internal/cluster"
	"github.com/hakube/hakube/internal/cluster/config"
)

// flowOptions are the flags of the mutating commands.
type flowOptions struct {
	g           *globalOptions
	command     string
	dryRun      bool
	yes         bool
	breakLock   bool
	force       bool
	parallelism int
}

func (o *flowOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&o.dryRun, "dry-run", false, "print the plan and change nothing")
	f.BoolVarP(&o.yes, "yes", "y", false, "do not ask for confirmation")
	f.BoolVar(&o.breakLock, "break-lock", false, "take over the cluster lock from a run that died holding it")
	f.IntVar(&o.parallelism, "parallelism", 8, "steps run at once, at most")
	f.BoolVar(&o.force, "force", false, "change etcd's membership even when that leaves it without a healthy quorum (the API then refuses writes until enough masters are back)")
	markGroup(f, groupRun, "dry-run", "yes", "break-lock", "parallelism", "force")
	config.BindFlags(f, o.command)
}

func newUpCmd(g *globalOptions) *cobra.Command {
	o := &flowOptions{g: g, command: "up"}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Create a cluster, add a node pool (--use-existing-master) or a master replica (--replicate-master)",
		Long: `Create or grow a cluster in --zone (KUBE_GCE_ZONE):

  hakube up                           a fresh cluster: master, static IP, node pool
  hakube up --use-existing-master     add the node pool of --zone to the cluster
  hakube up --replicate-master        add a master replica in --zone; the first one
                                      also builds the load balancer and moves the
                                      static IP onto it (a short, measured outage)

Re-running any of them is safe: what exists is kept, what is missing is made,
and a cluster that already matches makes no change at all.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	o.addFlags(cmd)
	return cmd
}

func newDownCmd(g *globalOptions) *cobra.Command {
	o := &flowOptions{g: g, command: "down"}
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Tear down a cluster, a zone, a node pool (--use-existing-master) or a master replica (--delete-nodes=false)",
		Long: `Shrink or remove a cluster:

  hakube down                                  everything the cluster owns, in every zone
  hakube down --zone Z                         the node pool and master replica of zone Z
  hakube down --zone Z --use-existing-master   only the node pool of zone Z
  hakube down --zone Z --delete-nodes=false    only the master replica of zone Z
  hakube down --replica NAME --delete-nodes=false   that exact replica

Removing the second-to-last replica gives the static IP back to the last master
and removes the load balancer. The last master is only removed with the whole
cluster, and never while node pools remain in other zones.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	o.addFlags(cmd)
	return cmd
}

func (o *flowOptions) run(cmd *cobra.Command) error {
	ctx := cmd.Context()
	g := o.g
	cfg, err := g.loadConfig(cmd, o.command)
	if err != nil {
		return err
	}
	if o.parallelism < 1 {
		return &usageError{fmt.Errorf("--parallelism must be at least 1, got %d", o.parallelism)}
	}
	cloud, err := g.newCloud(ctx, cfg)
	if err != nil {
		return err
	}
	prog := newProgress(g)
	defer prog.stop()
	env, err := g.newEnv(cfg, cloud, prog.stepProgress)
	if err != nil {
		return err
	}
	env.Parallelism, env.BreakLock, env.Force = o.parallelism, o.breakLock, o.force
	opts := cluster.RunOptions{
		Command:  o.command,
		DryRun:   o.dryRun,
		Reporter: prog,
		ShowPlan: func(p *cluster.Plan) error {
			if o.dryRun && g.output != "text" {
				return nil // the report on stdout carries the plan
			}
			if g.logFormat == "json" && !o.dryRun {
				g.log.Info("plan", zap.Any("plan", p))
				return nil
			}
			w := g.streams.err
			if o.dryRun {
				w = g.streams.out
			}
			return p.WriteText(w)
		},
	}
	if !o.yes && !o.dryRun && isTTY(g.streams.err) {
		opts.Confirm = func(p *cluster.Plan) (bool, error) {
			if !needsConfirm(o.command, p) {
				return true, nil
			}
			return confirm(g.streams.in, g.streams.err, p)
		}
	}
	rep, err := cluster.Run(ctx, env, cfg, opts)
	prog.stop()
	if rep != nil {
		for _, w := range rep.Warnings {
			g.warn(w)
		}
	}
	if rep != nil && rep.Plan != nil {
		if werr := o.writeReport(rep, err); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil && rep != nil && rep.Result != nil {
		return &stoppedError{err: err, flow: rep.Flow, summary: rep.Result.Summary(), stepsShown: rep.Result.Count("failed") > 0}
	}
	return err
}

// stoppedError ends a run that executed part of its plan. The failed steps'
// errors were already shown with their ✗ lines, so it says only what
// happened overall; errors.Is and errors.As still see the cause.
type stoppedError struct {
	err        error
	flow       string
	summary    string
	stepsShown bool
}

func (e *stoppedError) Error() string {
	if e.stepsShown && !errors.Is(e.err, context.Canceled) {
		return fmt.Sprintf("%s stopped (the failed steps and their errors are shown above): %s; fix the cause and re-run the same command to resume", e.flow, e.summary)
	}
	return fmt.Sprintf("%v\n%s; re-run the same command to resume", e.err, e.summary)
}

func (e *stoppedError) Unwrap() error { return e.err }

// needsConfirm says which plans ask first on a terminal: every down, and an
// up that moves the static IP (growing without an outage needs no question).
func needsConfirm(command string, p *cluster.Plan) bool {
	return command == "down" || p.HasOutage()
}

// confirm asks before a destructive plan, or one with an outage, runs.
func confirm(in io.Reader, w io.Writer, p *cluster.Plan) (bool, error) {
	if p.HasOutage() {
		fmt.Fprintln(w, "This plan moves the static IP (the steps marked !): the API is unreachable until the move is done.")
	}
	fmt.Fprintf(w, "Proceed with %d changes? [y/N] ", p.Mutations())
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	ans := strings.ToLower(strings.TrimSpace(line))
	return ans == "y" || ans == "yes", nil
}

// writeReport prints the run's outcome: data on stdout.
func (o *flowOptions) writeReport(rep *cluster.Report, runErr error) error {
	g := o.g
	switch g.output {
	case "json", "yaml":
		return writeData(g.streams.out, g.output, rep)
	}
	if rep.DryRun {
		return nil
	}
	w := g.streams.out
	if rep.NothingToDo && runErr == nil {
		fmt.Fprintf(w, "Nothing to do: cluster %q already matches the request (%d API calls, no changes).\n", rep.Cluster, rep.APICalls)
		return nil
	}
	if rep.Result == nil {
		return nil
	}
	verb := "Done"
	if runErr != nil {
		verb = "Stopped"
	}
	fmt.Fprintf(w, "%s: %s (cluster %q, project %s): %s in %s, %d Compute API calls.\n",
		verb, rep.Flow, rep.Cluster, rep.Project, rep.Result.Summary(), round(rep.Duration), rep.APICalls)
	for _, mv := range rep.Outages {
		fmt.Fprintf(w, "Static IP moved from %s to %s: %s.\n", mv.From, mv.To, describeOutage(mv.Outage, mv.Measured, mv.Reverted))
	}
	if runErr == nil && rep.Status != nil {
		writeSummary(w, rep.Status)
	}
	return nil
}

// describeOutage says how long the static IP did not answer during a move,
// and how that was measured.
func describeOutage(outage time.Duration, measured string, reverted bool) string {
	how := ""
	if measured != "" {
		how = " (" + measured + ")"
	}
	switch {
	case reverted:
		return fmt.Sprintf("reverted after an outage of %s%s", round(outage), how)
	case outage == 0 && measured != "":
		return "no outage seen: no probe went unanswered" + how
	}
	return fmt.Sprintf("outage %s%s", round(outage), how)
}

// writeSummary says where the cluster's API is and what it consists of.
func writeSummary(w io.Writer, st *cluster.Status) {
	if !st.Exists {
		fmt.Fprintf(w, "Cluster %q no longer exists.\n", st.Cluster)
		return
	}
	if ip := st.StaticIP; ip != nil {
		fmt.Fprintf(w, "API: https://%s:%d, held by %s (%s).\n", ip.Address, ip.Port, ip.Owner, st.Mode)
	}
	var masters, pools []string
	for _, z := range st.Zones {
		for _, m := range z.Masters {
			masters = append(masters, fmt.Sprintf("%s (%s)", m.Name, z.Zone))
		}
		if z.Pool != nil {
			pools = append(pools, fmt.Sprintf("%s: %d nodes", z.Zone, z.Pool.TargetSize))
		}
	}
	if len(masters) > 0 {
		fmt.Fprintf(w, "Masters: %s.\n", strings.Join(masters, ", "))
	}
	switch {
	case slices.Contains(st.Unobserved, "node pools"):
		fmt.Fprintf(w, "Node pools: not read by this flow (hakube status lists them).\n")
	case len(pools) > 0:
		fmt.Fprintf(w, "Node pools: %s.\n", strings.Join(pools, ", "))
	}
}

// writeData renders v as JSON or YAML on w.
func writeData(w io.Writer, format string, v any) error {
	b, err := jsonIndent(v)
	if err != nil {
		return err
	}
	if format == "yaml" {
		if b, err = yaml.JSONToYAML(b); err != nil {
			return err
		}
	}
	_, err = w.Write(b)
	return err
}
