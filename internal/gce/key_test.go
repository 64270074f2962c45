package gce_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hakube/hakube/internal/gce"
)

func TestKeyOf(t *testing.T) {
	cases := map[string]gce.Key{
		"https://compute.googleapis.com/compute/v1/projects/p/zones/europe-west1-b/instances/kubernetes-master": gce.ZonalKey("europe-west1-b", "kubernetes-master"),
		"http://127.0.0.1:9/compute/v1/projects/p/regions/europe-west1/targetPools/kubernetes-master":           gce.RegionalKey("europe-west1", "kubernetes-master"),
		"projects/p/global/instanceTemplates/kubernetes-minion-template":                                        gce.GlobalKey("kubernetes-minion-template"),
		"zones/us-east1-b/diskTypes/pd-ssd":                                                                     gce.ZonalKey("us-east1-b", "pd-ssd"),
		"kubernetes-master":                                                                                     gce.GlobalKey("kubernetes-master"),
	}
	for link, want := range cases {
		if diff := cmp.Diff(want, gce.KeyOf(link)); diff != "" {
			t.Errorf("KeyOf(%q) (-want +got):\n%s", link, diff)
		}
	}
}

func TestRefString(t *testing.T) {
	cases := map[gce.Ref]string{
		gce.Instance(gce.ZonalKey("europe-west1-b", "m")):           "instance m (europe-west1-b)",
		gce.TargetPool(gce.RegionalKey("europe-west1", "m")):        "target-pool m (europe-west1)",
		gce.HealthCheck(gce.GlobalKey("m")):                         "http-health-check m",
		gce.Group(gce.ZonalKey("us-east1-c", "k-minion-group")):     "instance-group k-minion-group (us-east1-c)",
		gce.Address(gce.RegionalKey("europe-west1", "k-master-ip")): "address k-master-ip (europe-west1)",
	}
	for ref, want := range cases {
		if got := ref.String(); got != want {
			t.Errorf("%#v = %q, want %q", ref, got, want)
		}
	}
}

func TestLinks(t *testing.T) {
	const real = "https://www.googleapis.com/compute/v1/projects/p/"
	cases := []struct {
		from       string
		key        gce.Key
		collection string
		want       string
	}{
		{"https://www.googleapis.com/compute/v1/projects/p/regions/europe-west1/addresses/k-master-ip", gce.ZonalKey("europe-west1-b", "k-master"), "instances",
			real + "zones/europe-west1-b/instances/k-master"},
		{"http://127.0.0.1:9/compute/v1/projects/lab/global/networks/default", gce.RegionalKey("us-central1", "k-master"), "targetPools",
			"http://127.0.0.1:9/compute/v1/projects/lab/regions/us-central1/targetPools/k-master"},
		{real + "global/networks/default", gce.GlobalKey("k-master"), "httpHealthChecks", real + "global/httpHealthChecks/k-master"},
		{"zones/us-east1-b/diskTypes/pd-ssd", gce.GlobalKey("k"), "networks", ""}, // no project: no link
		{"https://x/compute/v1/projects/", gce.GlobalKey("k"), "networks", ""},
	}
	for _, c := range cases {
		got := c.key.Link(gce.ProjectPrefix(c.from), c.collection)
		if got != c.want {
			t.Errorf("%v.Link(ProjectPrefix(%q), %q) = %q, want %q", c.key, c.from, c.collection, got, c.want)
		}
		if got != "" && gce.KeyOf(got) != c.key {
			t.Errorf("KeyOf(%q) = %v, want %v", got, gce.KeyOf(got), c.key)
		}
	}
}
