package etcdm

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Key is the SSH identity hakube reaches masters with.
type Key struct {
	Signer ssh.Signer
	File   string // where the private key lives
}

// LoadKey finds hakube's SSH key: its own in configDir/ssh/id_ed25519 once
// it made one; else gcloud's ~/.ssh/google_compute_engine where gcloud made
// one (so `gcloud compute ssh` and hakube share it); else a key of its own,
// made then (0600, in a 0700 directory). Once chosen the key stays the
// same: a gcloud key made later (by a first `gcloud compute ssh`) does not
// replace the one the masters' ssh-keys already hold.
func LoadKey(home, configDir string) (Key, error) {
	own := filepath.Join(configDir, "ssh", "id_ed25519")
	_, ownErr := os.Stat(own)
	gcloud := filepath.Join(home, ".ssh", "google_compute_engine")
	if b, err := os.ReadFile(gcloud); err == nil && errors.Is(ownErr, fs.ErrNotExist) {
		s, err := ssh.ParsePrivateKey(b)
		var pp *ssh.PassphraseMissingError
		if errors.As(err, &pp) {
			return Key{}, fmt.Errorf("ssh key %s has a passphrase, which hakube cannot ask for: remove the passphrase or move the file so hakube makes its own", gcloud)
		}
		if err != nil {
			return Key{}, fmt.Errorf("ssh key %s: %w", gcloud, err)
		}
		return Key{Signer: s, File: gcloud}, nil
	}
	b, err := os.ReadFile(own)
	if errors.Is(err, fs.ErrNotExist) {
		if b, err = newKeyFile(own); err != nil {
			return Key{}, err
		}
	} else if err != nil {
		return Key{}, fmt.Errorf("ssh key %s: %w", own, err)
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		return Key{}, fmt.Errorf("ssh key %s: %w", own, err)
	}
	return Key{Signer: s, File: own}, nil
}

func newKeyFile(path string) ([]byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "hakube")
	if err != nil {
		return nil, err
	}
	b := pem.EncodeToMemory(block)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("ssh key directory: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("write ssh key %s: %w", path, err)
	}
	pub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(pub), 0o644); err != nil {
		return nil, fmt.Errorf("write ssh key %s.pub: %w", path, err)
	}
	return b, nil
}

// MetadataEntry is the key as GCE's ssh-keys metadata lists it:
// "user:ssh-ed25519 AAAA... user".
func (k Key) MetadataEntry(user string) string {
	return user + ":" + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.Signer.PublicKey()))) + " " + user
}

// WithEntry returns an ssh-keys value with the entry added, keeping every
// other line; ok is false when it was there already.
func WithEntry(value, entry string) (string, bool) {
	want := keyPart(entry)
	for _, line := range strings.Split(value, "\n") {
		if keyPart(line) == want && want != "" {
			return value, false
		}
	}
	if strings.TrimSpace(value) == "" {
		return entry, true
	}
	return strings.TrimRight(value, "\n") + "\n" + entry, true
}

// keyPart is "user:type base64" of an ssh-keys line, comments dropped.
func keyPart(line string) string {
	f := strings.Fields(strings.TrimSpace(line))
	if len(f) < 2 {
		return ""
	}
	return f[0] + " " + f[1]
}
