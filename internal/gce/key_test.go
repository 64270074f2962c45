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
