package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hakube/hakube/internal/cluster"
	"github.com/hakube/hakube/internal/cluster/config"
	"github.com/hakube/hakube/internal/kube"
)

func newKubeconfigCmd(g *globalOptions) *cobra.Command {
	var outputFile string
	var merge bool
	cmd := &cobra.Command{
		Use:   "kubeconfig",
		Short: "Print or export the admin kubeconfig of the cluster (context <project>_<prefix>)",
		Long: `kubeconfig issues a new admin credential for the cluster (a client certificate
in kubeadm's cluster-admins group, valid for a year) and

  hakube kubeconfig > admin.conf          prints a kubeconfig with it alone
  hakube kubeconfig --merge               merges it into $KUBECONFIG (its first file) or ~/.kube/config
  hakube kubeconfig --output-file FILE    merges it into FILE

Merging keeps every other context, makes this one current, and leaves the file
0600. It never prints a private key to a terminal.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig(cmd, "status")
			if err != nil {
				return err
			}
			cloud, err := g.newCloud(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			env, err := g.newEnv(cfg, cloud, nil)
			if err != nil {
				return err
			}
			k, err := cluster.AdminKubeconfig(cmd.Context(), env, cfg)
			if err != nil {
				return err
			}
			path := outputFile
			if merge && path == "" {
				path = env.Kubeconfig
			}
			if path != "" {
				if err := kube.Merge(path, k); err != nil {
					return err
				}
				fmt.Fprintf(g.streams.err, "Context %s merged into %s (current).\n", k.Name, path)
				return nil
			}
			if isTTY(g.streams.out) {
				return &usageError{errors.New("refusing to print a private key to a terminal: redirect it (hakube kubeconfig > admin.conf), or use --merge or --output-file")}
			}
			b, err := k.Render()
			if err != nil {
				return err
			}
			_, err = g.streams.out.Write(b)
			return err
		},
	}
	cmd.Flags().StringVar(&outputFile, "output-file", "", "merge the context into this kubeconfig file (created 0600)")
	cmd.Flags().BoolVar(&merge, "merge", false, "merge the context into $KUBECONFIG (first file) or ~/.kube/config")
	config.BindFlags(cmd.Flags(), "status")
	return cmd
}
