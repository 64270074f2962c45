package harness

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestClassify(t *testing.T) {
	all, mut, polls := Classify(map[string]int64{
		"compute.instances.insert": 2, "compute.instances.get": 3, "compute.instances.list": 1,
		"compute.instances.aggregatedList": 1, "compute.zoneOperations.wait": 4, "compute.regionOperations.get": 1,
		"compute.instanceGroupManagers.listManagedInstances": 2, "compute.instances.getGuestAttributes": 1,
		"compute.targetPools.addInstance": 1,
	})
	if diff := cmp.Diff([3]int64{16, 3, 5}, [3]int64{all, mut, polls}); diff != "" {
		t.Errorf("all/mutations/polls (-want +got):\n%s", diff)
	}
}

func TestPerMethod(t *testing.T) {
	got := PerMethod(map[string]int64{"compute.instances.get": 3, "compute.zoneOperations.wait": 3, "compute.disks.insert": 5})
	if diff := cmp.Diff("disks.insert 5, instances.get 3, zoneOperations.wait 3", got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
