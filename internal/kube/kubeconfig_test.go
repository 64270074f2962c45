package kube

import (
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Merging into an existing kubeconfig keeps every other entry, makes ours
// current, and leaves the file 0600; removing takes ours out, nothing else.
func TestKubeconfigMergeAndRemove(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "config")
	other := clientcmdapi.NewConfig()
	other.Clusters["prod"] = &clientcmdapi.Cluster{Server: "https://prod.example:443"}
	other.AuthInfos["prod-admin"] = &clientcmdapi.AuthInfo{Token: "secret-token"}
	other.Contexts["prod"] = &clientcmdapi.Context{Cluster: "prod", AuthInfo: "prod-admin", Namespace: "apps"}
	other.CurrentContext = "prod"
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := clientcmd.WriteToFile(*other, path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	k := Kubeconfig{Name: "my-project_kubernetes", Server: "https://34.1.2.3:443", CA: []byte("ca"), Cert: []byte("cert"), Key: []byte("key")}
	if err := Merge(path, k); err != nil {
		t.Fatal(err)
	}
	got, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.CurrentContext != k.Name || got.Contexts["prod"] == nil || got.Contexts["prod"].Namespace != "apps" || got.AuthInfos["prod-admin"].Token != "secret-token" {
		t.Errorf("after merge: current %q, contexts %v", got.CurrentContext, got.Contexts)
	}
	if c := got.Clusters[k.Name]; c == nil || c.Server != k.Server || string(c.CertificateAuthorityData) != "ca" {
		t.Errorf("our cluster entry: %+v", got.Clusters[k.Name])
	}
	if ok, err := Has(path, k); !ok || err != nil {
		t.Errorf("Has after merge: %v %v", ok, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	removed, err := Remove(path, k.Name)
	if err != nil || !removed {
		t.Fatalf("remove: %v %v", removed, err)
	}
	got, err = clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Contexts[k.Name] != nil || got.Clusters[k.Name] != nil || got.AuthInfos[k.Name] != nil || got.Contexts["prod"] == nil || got.AuthInfos["prod-admin"] == nil {
		t.Errorf("after remove: %+v", got)
	}
	if removed, err := Remove(path, k.Name); removed || err != nil {
		t.Errorf("second remove: %v %v", removed, err)
	}
	if removed, err := Remove(filepath.Join(t.TempDir(), "none"), k.Name); removed || err != nil {
		t.Errorf("remove from a missing file: %v %v", removed, err)
	}
}

func TestKubeconfigPath(t *testing.T) {
	t.Setenv("KUBECONFIG", "/a/first"+string(os.PathListSeparator)+"/b/second")
	if p, _ := KubeconfigPath(); p != "/a/first" {
		t.Errorf("path %q, want the first of $KUBECONFIG", p)
	}
	t.Setenv("KUBECONFIG", "")
	t.Setenv("HOME", "/home/me")
	if p, _ := KubeconfigPath(); p != "/home/me/.kube/config" {
		t.Errorf("path %q", p)
	}
}
