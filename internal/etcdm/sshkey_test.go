package etcdm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadKeyMakesItsOwnOnce(t *testing.T) {
	home, conf := t.TempDir(), filepath.Join(t.TempDir(), "hakube")
	k, err := LoadKey(home, conf)
	if err != nil {
		t.Fatal(err)
	}
	if k.File != filepath.Join(conf, "ssh", "id_ed25519") {
		t.Errorf("key file %s", k.File)
	}
	fi, err := os.Stat(k.File)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	again, err := LoadKey(home, conf)
	if err != nil || string(again.Signer.PublicKey().Marshal()) != string(k.Signer.PublicKey().Marshal()) {
		t.Errorf("second load made another key (%v)", err)
	}
	entry := k.MetadataEntry("hakube")
	if !strings.HasPrefix(entry, "hakube:ssh-ed25519 AAAA") || !strings.HasSuffix(entry, " hakube") {
		t.Errorf("entry %q", entry)
	}
	// gcloud's key wins once it exists.
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(k.File)
	if err := os.WriteFile(filepath.Join(home, ".ssh", "google_compute_engine"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	g, err := LoadKey(home, conf)
	if err != nil || g.File != filepath.Join(home, ".ssh", "google_compute_engine") {
		t.Errorf("gcloud's key not used: %s (%v)", g.File, err)
	}
}

func TestWithEntry(t *testing.T) {
	e := "hakube:ssh-ed25519 AAAAkey hakube"
	v, added := WithEntry("", e)
	if !added || v != e {
		t.Errorf("into empty: %q %v", v, added)
	}
	other := "alice:ssh-rsa AAAAalice alice@laptop"
	v, added = WithEntry(other+"\n", e)
	if !added || v != other+"\n"+e {
		t.Errorf("appended: %q %v", v, added)
	}
	if v2, added := WithEntry(v, "hakube:ssh-ed25519 AAAAkey another-comment"); added || v2 != v {
		t.Errorf("the same key with another comment was added again: %q", v2)
	}
}
