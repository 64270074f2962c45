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
// A nil env sets nothing: TestMain has cleared that environment for the
// whole package, so such a test may run in parallel (t.Setenv forbids it).
func loadConfig(t testing.TB, command string, env map[string]string, args ...string) *config.Config {
	t.Helper()
	if env != nil {
		for _, name := range config.EnvironmentVariables() {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
		t.Setenv("CLOUDSDK_CONFIG", t.TempDir())
		for k, v := range env {
			t.Setenv(k, v)
		}
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

// TestMain runs the package's tests in an environment without any of
// hakube's variables and with an empty gcloud configuration, whatever the
// developer's shell has.
func TestMain(m *testing.M) {
	for _, name := range config.EnvironmentVariables() {
		os.Unsetenv(name)
	}
	dir, err := os.MkdirTemp("", "hakube-cluster-test-gcloud-")
	if err != nil {
		panic(err)
	}
	os.Setenv("CLOUDSDK_CONFIG", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
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
