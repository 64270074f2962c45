package cluster

import (
	"context"
	"os"
	"testing"

	"github.com/spf13/pflag"

	"github.com/hakube/hakube/internal/cluster/config"
)

// loadConfig loads a configuration the way the CLI does: the command's
// flags parsed from args, and an environment of exactly env (no variable of
// the developer's, no gcloud configuration).
func loadConfig(t testing.TB, command string, env map[string]string, args ...string) *config.Config {
	t.Helper()
	for _, name := range config.EnvironmentVariables() {
		t.Setenv(name, "")
		os.Unsetenv(name)
	}
	t.Setenv("CLOUDSDK_CONFIG", t.TempDir())
	for k, v := range env {
		t.Setenv(k, v)
	}
	fs := pflag.NewFlagSet(command, pflag.ContinueOnError)
	config.BindFlags(fs, command)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	cfg, err := config.Load(config.LoadOptions{Flags: fs, Command: command})
	if err != nil {
		t.Fatalf("load %s %v: %v", command, args, err)
	}
	return cfg
}

// makePlan observes (adopting the cluster's record, as Run does) and plans
// without changing anything: what a dry run shows.
func makePlan(ctx context.Context, env *Env, cfg *config.Config, command string) (*Plan, error) {
	env.defaults()
	cfg, obs, err := observeAdopted(ctx, env.Cloud, cfg, command)
	if err != nil {
		return nil, err
	}
	p, err := plan(ctx, env, cfg, obs, command)
	if err != nil {
		return nil, err
	}
	return p.plan, nil
}
