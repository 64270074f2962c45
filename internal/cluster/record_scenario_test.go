package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hakube/hakube/internal/cluster/config"
	"github.com/hakube/hakube/internal/gce"
)

// bareConfig loads a configuration as a later command would, without the
// scenario's port flags: only what the user gives this time.
func (s *scenario) bareConfig(command string, env map[string]string, args ...string) *config.Config {
	s.t.Helper()
	args = append([]string{"--project", scenarioProject, "--endpoint", s.emu.Endpoint}, args...)
	if env == nil {
		env = map[string]string{} // clears what an earlier subtest set on s.t
	}
	return loadConfig(s.t, command, env, args...)
}

// The cluster's own record wins for what the user does not give again, and
// a given value that differs is refused before any change, naming both.
func TestScenarioClusterRecordWins(t *testing.T) {
	s := newScenario(t)
	ctx := context.Background()
	s.mustRun("up", "--zone", "europe-west1-b", "--num-nodes", "1", "--healthcheck-port", "16990", "--node-size", "e2-standard-4")

	// status without the port flag reads the cluster's port and sees it serve.
	st, err := GetStatus(ctx, s.env(), s.bareConfig("status", nil))
	if err != nil {
		t.Fatal(err)
	}
	if st.StaticIP == nil || st.StaticIP.Port != 16443 {
		t.Fatalf("status static IP %+v, want port 16443 from kube-env", st.StaticIP)
	}
	if err := s.serving(s.bareConfig("status", nil)); err != nil {
		t.Errorf("status without --apiserver-port: %v", err)
	}

	// The first replica without the port flags builds the load balancer on
	// the cluster's ports, so the IP keeps serving after the move.
	if _, err := Run(ctx, s.env(), s.bareConfig("up", nil, "--zone", "europe-west1-c", "--replicate-master"), RunOptions{Command: "up"}); err != nil {
		t.Fatalf("replica without the port flags: %v", err)
	}
	fr, err := s.cloud.GetForwardingRule(ctx, gce.RegionalKey("europe-west1", "kubernetes-master"))
	if err != nil {
		t.Fatal(err)
	}
	hc, err := s.cloud.GetHTTPHealthCheck(ctx, gce.GlobalKey("kubernetes-master"))
	if err != nil {
		t.Fatal(err)
	}
	if got := []any{fr.PortRange, hc.Port}; !cmp.Equal(got, []any{"16443-16443", int64(16990)}) {
		t.Errorf("forwarding rule ports, health-check port = %v, want the cluster's 16443 and 16990", got)
	}
	if err := s.serving(s.bareConfig("status", nil)); err != nil {
		t.Errorf("after the replica: %v", err)
	}

	// Given values that differ are refused, all at once, before any call
	// that changes something.
	cases := []struct {
		name    string
		command string
		env     map[string]string
		args    []string
		want    []config.Drift
	}{
		// A replica's flow does not read the node template (its scope):
		// NODE_SIZE is the pools' setting, refused by their flow below.
		{"ports on a replica", "up", map[string]string{"NODE_SIZE": "e2-standard-2", "MULTIZONE": "true"},
			[]string{"--zone", "europe-west1-d", "--replicate-master", "--apiserver-port", "443"},
			[]config.Drift{
				{Key: "multizone", Input: "MULTIZONE=true", Requested: "true", Cluster: "false", From: "kube-env of kubernetes-master"},
				{Key: "apiserverPort", Input: "--apiserver-port=443", Requested: "443", Cluster: "16443", From: "kube-env of kubernetes-master"},
			}},
		{"another network and node size for a pool", "up", map[string]string{"NODE_SIZE": "e2-standard-2"}, []string{"--zone", "europe-west1-d", "--use-existing-master", "--network", "other"},
			[]config.Drift{
				{Key: "nodeSize", Input: "NODE_SIZE=e2-standard-2", Requested: "e2-standard-2", Cluster: "e2-standard-4", From: "instance-template kubernetes-minion-template"},
				{Key: "network", Input: "--network=other", Requested: "other", Cluster: "default", From: "instance kubernetes-master"},
			}},
		{"a mistyped network for down", "down", map[string]string{"KUBE_GCE_NETWORK": "defualt"}, nil,
			[]config.Drift{{Key: "network", Input: "KUBE_GCE_NETWORK=defualt", Requested: "defualt", Cluster: "default", From: "instance kubernetes-master"}}},
		{"status on another port", "status", nil, []string{"--healthcheck-port", "3990"},
			[]config.Drift{{Key: "healthcheckPort", Input: "--healthcheck-port=3990", Requested: "3990", Cluster: "16990", From: "kube-env of kubernetes-master"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := s.mark()
			cfg := s.bareConfig(tc.command, tc.env, tc.args...)
			var err error
			if tc.command == "status" {
				_, err = GetStatus(ctx, s.env(), cfg)
			} else {
				_, err = Run(ctx, s.env(), cfg, RunOptions{Command: tc.command})
			}
			var de *config.DriftError
			if !errors.As(err, &de) || !errors.Is(err, config.ErrInvalidConfig) {
				t.Fatalf("got %v, want a drift error", err)
			}
			got := append([]config.Drift(nil), de.Drifts...)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("drifts (-want +got):\n%s", diff)
			}
			for _, d := range tc.want {
				if !strings.Contains(err.Error(), d.Input) || !strings.Contains(err.Error(), d.Cluster) {
					t.Errorf("message does not name %s and %s:\n%v", d.Input, d.Cluster, err)
				}
			}
			if muts := s.mutations(m); len(muts) > 0 {
				t.Errorf("refused request made mutations: %v", muts)
			}
		})
	}
	s.expect(shape{prefix: "kubernetes", masters: []string{"europe-west1-b", "europe-west1-c"}, pools: map[string]int{"europe-west1-b": 1}, lb: true})

	// A zone of another region is an error naming the cluster's region.
	_, err = Run(ctx, s.env(), s.bareConfig("down", nil, "--zone", "us-east1-b"), RunOptions{Command: "down"})
	if !errors.Is(err, config.ErrInvalidConfig) || !strings.Contains(err.Error(), "cluster \"kubernetes\" is in region europe-west1") {
		t.Errorf("down in another region: %v", err)
	}

	// down without the network reads it from the cluster, so the shared SSH
	// rule goes with the cluster and nothing leaks.
	if _, err := Run(ctx, s.env(), s.bareConfig("down", nil), RunOptions{Command: "down"}); err != nil {
		t.Fatal(err)
	}
	s.expect()
}

// A dry run names the replica the real run then creates: the suffix is
// chosen from what exists, not at random.
func TestScenarioDryRunNamesTheReplicaTheRunCreates(t *testing.T) {
	t.Parallel()
	s := newScenario(t)
	s.mustRun("up", "--zone", "europe-west1-b", "--num-nodes", "0")
	rep, err := Run(context.Background(), s.env(), s.config("up", "--zone", "europe-west1-c", "--replicate-master"), RunOptions{Command: "up", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	planned := ""
	for _, st := range rep.Plan.Steps {
		if st.Action == ActCreate && strings.HasPrefix(st.Resource, "instance kubernetes-master-") {
			planned = strings.Fields(st.Resource)[1]
		}
	}
	if planned == "" {
		t.Fatalf("no replica in the plan:\n%+v", rep.Plan.Steps)
	}
	s.mustRun("up", "--zone", "europe-west1-c", "--replicate-master")
	if _, err := s.cloud.GetInstance(context.Background(), gce.ZonalKey("europe-west1-c", planned)); err != nil {
		t.Errorf("the dry run planned %s, but the run did not create it: %v", planned, err)
	}
}
