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
	// A gcloud key made later (a first gcloud compute ssh) does not replace
	// the key the masters already hold.
	gcloudKey := filepath.Join(home, ".ssh", "google_compute_engine")
	if err := os.MkdirAll(filepath.Dir(gcloudKey), 0o700); err != nil {
		t.Fatal(err)
	}
	other, _ := newKeyFile(filepath.Join(t.TempDir(), "k"))
	if err := os.WriteFile(gcloudKey, other, 0o600); err != nil {
		t.Fatal(err)
	}
	if g, err := LoadKey(home, conf); err != nil || g.File != k.File {
		t.Errorf("key after gcloud made one: %s (%v), want hakube's own %s", g.File, err, k.File)
	}
	// Where gcloud's key came first, hakube shares it and makes none.
	fresh := filepath.Join(t.TempDir(), "hakube")
	g, err := LoadKey(home, fresh)
	if err != nil || g.File != gcloudKey {
		t.Errorf("gcloud's key not used: %s (%v)", g.File, err)
	}
	if _, err := os.Stat(filepath.Join(fresh, "ssh", "id_ed25519")); err == nil {
		t.Error("hakube made a key of its own beside gcloud's")
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
