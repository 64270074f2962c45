package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hakube/hakube/internal/cluster/config"
	"github.com/hakube/hakube/internal/emulator"
)

// Machine types, disk types and the image are resolved before the first
// mutation, and the region's quota is checked: an unknown one used to leave
// half a cluster behind.
func TestScenarioPreflightRefusesBeforeAnyChange(t *testing.T) {
	s := newScenario(t)
	ctx := context.Background()
	cases := []struct {
		name string
		env  map[string]string
		args []string
		is   error
		want []string
	}{
		{"node size", map[string]string{"NODE_SIZE": "e2-standrd-2"}, nil, config.ErrInvalidConfig,
			[]string{`NODE_SIZE=e2-standrd-2: no machine type "e2-standrd-2" in zone europe-west1-b`}},
		{"master size", map[string]string{"MASTER_SIZE": "n9-huge-7"}, nil, config.ErrInvalidConfig,
			[]string{`MASTER_SIZE=n9-huge-7: no machine type "n9-huge-7" in zone europe-west1-b`}},
		{"node disk type", map[string]string{"NODE_DISK_TYPE": "pd-fast"}, nil, config.ErrInvalidConfig,
			[]string{`NODE_DISK_TYPE=pd-fast: no disk type "pd-fast" in zone europe-west1-b`}},
		{"master disk type", nil, []string{"--master-disk-type", "pd-fast"}, config.ErrInvalidConfig,
			[]string{`--master-disk-type=pd-fast: no disk type "pd-fast"`}},
		{"image family", map[string]string{"HAKUBE_IMAGE_FAMILY": "debian-99"}, nil, config.ErrInvalidConfig,
			[]string{"the default imageProject debian-cloud and HAKUBE_IMAGE_FAMILY=debian-99: no image of that family"}},
		{"image project", map[string]string{"HAKUBE_IMAGE_PROJECT": "nobody-images"}, nil, config.ErrInvalidConfig,
			[]string{"HAKUBE_IMAGE_PROJECT=nobody-images and the default imageFamily debian-12"}},
		{"several at once", map[string]string{"NODE_SIZE": "x1-big", "MASTER_SIZE": "x2-big"}, nil, config.ErrInvalidConfig,
			[]string{`MASTER_SIZE=x2-big`, `NODE_SIZE=x1-big`}},
		// The zone is checked after the observation (a zone the cluster's
		// VMs are in exists), still before any change.
		{"a zone that does not exist", nil, []string{"--zone", "europe-west1-q"}, config.ErrInvalidConfig,
			[]string{`zone "europe-west1-q" does not exist in this project`}},
		{"a zone that is down", nil, []string{"--zone", "europe-west1-c"}, config.ErrInvalidConfig,
			[]string{"zone europe-west1-c is DOWN"}},
		{"instance quota", map[string]string{"NUM_NODES": "9"}, nil, ErrRefused,
			[]string{"region europe-west1 has 8 of its 8 INSTANCES quota left, and the plan needs 10 ([1 × e2-standard-2 9 × e2-standard-2])", "lower NUM_NODES=9"}},
	}
	if err := s.emu.Control.SetZone(ctx, "europe-west1-c", "DOWN"); err != nil {
		t.Fatal(err)
	}
	if err := s.emu.Control.SetQuota(ctx, emulator.QuotaLimit{Project: scenarioProject, Region: "europe-west1", Metric: "INSTANCES", Limit: 8}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := s.mark()
			args := append([]string{"--zone", "europe-west1-b", "--apiserver-port", scenarioPort}, tc.args...)
			_, err := Run(ctx, s.env(), s.bareConfig("up", tc.env, args...), RunOptions{Command: "up"})
			if !errors.Is(err, tc.is) {
				t.Fatalf("err = %v, want %v", err, tc.is)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
			if muts := s.mutations(m); len(muts) > 0 {
				t.Errorf("refused run made mutations: %v", muts)
			}
			s.expect()
		})
	}
	// Within the quota the same request goes through.
	s.mustRun("up", "--zone", "europe-west1-b", "--num-nodes", "7")
	s.expect(shape{prefix: "kubernetes", masters: []string{"europe-west1-b"}, pools: map[string]int{"europe-west1-b": 7}})
}
