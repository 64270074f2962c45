package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/hakube/hakube/internal/cluster/config"
)

// Flag groups of --help beyond the settings table's own.
const (
	groupRun    = "Run"
	groupOutput = "Output"
)

// groupOrder is the order of the groups in --help.
var groupOrder = []string{config.GroupCluster, config.GroupSizes, config.GroupLB, config.GroupKube, groupRun, "", groupOutput}

// usage prints a command's usage with its flags grouped by what they are
// about (cluster, sizes, load balancer, run, output), as eksctl does.
func usage(c *cobra.Command) error {
	w := c.OutOrStderr()
	fmt.Fprintf(w, "Usage:\n  %s\n", c.UseLine())
	if c.HasAvailableSubCommands() {
		fmt.Fprintln(w, "\nCommands:")
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				fmt.Fprintf(w, "  %-12s %s\n", sub.Name(), sub.Short)
			}
		}
	}
	groups := map[string]*pflag.FlagSet{}
	add := func(f *pflag.Flag, group string) {
		if groups[group] == nil {
			groups[group] = pflag.NewFlagSet(group, pflag.ContinueOnError)
		}
		groups[group].AddFlag(f)
	}
	c.LocalFlags().VisitAll(func(f *pflag.Flag) {
		if g := f.Annotations[config.FlagGroupAnnotation]; len(g) > 0 {
			add(f, g[0])
		} else {
			add(f, "")
		}
	})
	c.InheritedFlags().VisitAll(func(f *pflag.Flag) { add(f, groupOutput) })
	for _, g := range groupOrder {
		fs := groups[g]
		if fs == nil || !fs.HasFlags() {
			continue
		}
		title := "Flags"
		switch g {
		case "":
		case groupOutput:
			title = "Output flags (every command)"
		default:
			title = g + " flags"
		}
		fmt.Fprintf(w, "\n%s:\n%s", title, fs.FlagUsages())
	}
	if c.HasAvailableSubCommands() {
		fmt.Fprintf(w, "\nUse \"%s [command] --help\" for more about a command.\n", c.CommandPath())
	}
	return nil
}

// markGroup puts flags of a command under a heading of --help.
func markGroup(fs *pflag.FlagSet, group string, names ...string) {
	for _, n := range names {
		_ = fs.SetAnnotation(n, config.FlagGroupAnnotation, []string{group})
	}
}
