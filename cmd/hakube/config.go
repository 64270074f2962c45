package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/hakube/hakube/internal/cluster/config"
)

func newConfigCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Inspect the effective configuration",
	}
	var showOrigin bool
	var command string
	view := &cobra.Command{
		Use:   "view",
		Short: "Print the effective settings (a valid config file); --show-origin says where each came from",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig(cmd, command)
			if err != nil {
				return err
			}
			if showOrigin {
				if g.output != "text" {
					return writeData(g.streams.out, g.output, cfg.Settings())
				}
				tw := tabwriter.NewWriter(g.streams.out, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "KEY\tVALUE\tORIGIN")
				for _, s := range cfg.Settings() {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Key, s.Value, s.Origin)
				}
				return tw.Flush()
			}
			b, err := cfg.View()
			if err != nil {
				return err
			}
			if g.output == "json" {
				if b, err = yaml.YAMLToJSON(b); err != nil {
					return err
				}
				var v any
				if err := json.Unmarshal(b, &v); err != nil {
					return err
				}
				return writeData(g.streams.out, "json", v)
			}
			_, err = g.streams.out.Write(b)
			return err
		},
	}
	view.Flags().BoolVar(&showOrigin, "show-origin", false, "show where each value came from: flag, environment variable, file or default")
	view.Flags().StringVar(&command, "for", "up", "the command whose defaults apply (up, down, status)")
	config.BindFlags(view.Flags(), "config")
	cmd.AddCommand(view)
	return cmd
}

func newVersionCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print hakube's version",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if g.output != "text" {
				return writeData(g.streams.out, g.output, map[string]string{"version": version, "go": runtime.Version()})
			}
			_, err := fmt.Fprintf(g.streams.out, "hakube %s\n", version)
			return err
		},
	}
}
