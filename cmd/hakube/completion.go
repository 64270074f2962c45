package main

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/hakube/hakube/internal/cluster/config"
	"github.com/hakube/hakube/internal/gce"
	"github.com/hakube/hakube/internal/zones"
)

// registerCompletions offers values for the flags that have a fixed set:
// zones (from the API when a project is configured, else GCE's public
// zones), -o and --log-format.
func registerCompletions(root *cobra.Command, g *globalOptions) {
	fixed := func(values ...string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return values, cobra.ShellCompDirectiveNoFileComp
		}
	}
	_ = root.RegisterFlagCompletionFunc("output", fixed("text", "json", "yaml"))
	_ = root.RegisterFlagCompletionFunc("log-format", fixed("text", "json"))
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Flags().Lookup("zone") != nil {
			_ = c.RegisterFlagCompletionFunc("zone", func(cmd *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
				return completeZones(cmd, g, prefix), cobra.ShellCompDirectiveNoFileComp
			})
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// completeZones lists the zones starting with prefix: the project's own,
// asked of the API within a short deadline, or GCE's public list offline.
func completeZones(cmd *cobra.Command, g *globalOptions, prefix string) []string {
	names := zones.Known()
	cfg, err := config.Load(config.LoadOptions{Flags: cmd.Flags(), ConfigFile: g.configFile, Command: "config", Warn: func(string) {}})
	if err == nil && cfg.Project != "" {
		ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Second)
		defer cancel()
		c, err := gce.New(ctx, gce.Options{Project: cfg.Project, Endpoint: cfg.Endpoint, Logger: zap.NewNop(), RetryAttempts: 1})
		if err == nil {
			if zs, err := c.ListZones(ctx); err == nil && len(zs) > 0 {
				names = names[:0]
				for _, z := range zs {
					names = append(names, z.Name)
				}
				slices.Sort(names)
			}
		}
	}
	var out []string
	for _, z := range names {
		if strings.HasPrefix(z, prefix) {
			out = append(out, z)
		}
	}
	return out
}
