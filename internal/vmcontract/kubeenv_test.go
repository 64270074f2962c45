package vmcontract

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestKubeEnvRoundTrip(t *testing.T) {
	text := "KUBERNETES_MASTER: 'true'\nINITIAL_ETCD_CLUSTER: 'a,b'\nQUOTED: 'it''s'\nBARE: plain\nDOUBLE: \"x y\"\n"
	e, err := ParseKubeEnv(text)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"KUBERNETES_MASTER": "true", "INITIAL_ETCD_CLUSTER": "a,b", "QUOTED": "it's", "BARE": "plain", "DOUBLE": "x y"}
	for k, v := range want {
		if got := e.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	e.Set("INITIAL_ETCD_CLUSTER", "a,b,c")
	e.Set("NEW", "1")
	if diff := cmp.Diff([]string{"KUBERNETES_MASTER", "INITIAL_ETCD_CLUSTER", "QUOTED", "BARE", "DOUBLE", "NEW"}, e.Keys()); diff != "" {
		t.Errorf("key order (-want +got):\n%s", diff)
	}
	again, err := ParseKubeEnv(e.String())
	if err != nil {
		t.Fatal(err)
	}
	if again.Get("QUOTED") != "it's" || again.Get("INITIAL_ETCD_CLUSTER") != "a,b,c" {
		t.Errorf("round trip lost values: %q", e.String())
	}
	if _, err := ParseKubeEnv("no colon here"); err == nil {
		t.Error("malformed line accepted")
	}
}

func TestEtcdCluster(t *testing.T) {
	if got := JoinList("m-b", "m", "m-b", "", "m-a"); got != "m,m-a,m-b" {
		t.Errorf("JoinList = %q", got)
	}
}
