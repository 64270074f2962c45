package cluster

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	compute "google.golang.org/api/compute/v1"

	"github.com/hakube/hakube/internal/emulator"
	"github.com/hakube/hakube/internal/emulator/emulatortest"
	"github.com/hakube/hakube/internal/gce"
	"github.com/hakube/hakube/internal/vmcontract"
)

func newHostKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	k, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ssh.NewPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHostKeysRememberedAcrossRuns: a run reads the keys a VM published
// once and remembers them (0600); a later run trusts them without a read;
// a key they do not hold (the VM published a new one) is checked against
// what the VM publishes now, in the same handshake, and the file follows.
func TestHostKeysRememberedAcrossRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	emu := emulatortest.Start(t, emulator.Options{Projects: []string{scenarioProject}})
	cloud, err := gce.New(ctx, gce.Options{Project: scenarioProject, Endpoint: emu.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	on := "TRUE"
	key := gce.ZonalKey(zb, "kubernetes-master")
	if err := cloud.InsertInstance(ctx, key, &compute.Instance{
		Name: key.Name, MachineType: "zones/" + zb + "/machineTypes/e2-standard-2",
		Disks: []*compute.AttachedDisk{{Boot: true, AutoDelete: true, InitializeParams: &compute.AttachedDiskInitializeParams{
			SourceImage: "projects/debian-cloud/global/images/family/debian-12"}}},
		NetworkInterfaces: []*compute.NetworkInterface{{}},
		Metadata:          &compute.Metadata{Items: []*compute.MetadataItems{{Key: vmcontract.KeyEnableGuestAttributes, Value: &on}}},
	}); err != nil {
		t.Fatal(err)
	}
	in, err := cloud.GetInstance(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	publish := func(k ssh.PublicKey) {
		t.Helper()
		ref := emulator.GuestRef{Project: scenarioProject, Zone: zb, Name: key.Name, ID: in.Id}
		if err := emu.Server.SetGuestAttribute(ref, vmcontract.GuestAttributesHostKeys, k.Type(), base64.StdEncoding.EncodeToString(k.Marshal())); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "ssh", "known_hosts")
	// dial is one run's handshake offering key: whether it was accepted,
	// and how many guest-attribute reads it took.
	dial := func(offered ssh.PublicKey) (int, error) {
		t.Helper()
		env := &Env{Cloud: cloud, KnownHosts: file}
		env.defaults()
		before := cloud.Stats().Snapshot()
		check, err := hostKeys(ctx, env, in)
		if err == nil {
			err = check("", nil, offered)
		}
		reads := 0
		for _, m := range gce.Diff(before, cloud.Stats().Snapshot()) {
			reads += m.Count
		}
		return reads, err
	}

	first, second, stranger := newHostKey(t), newHostKey(t), newHostKey(t)
	publish(first)
	if reads, err := dial(first); err != nil || reads != 1 {
		t.Fatalf("first run: %v after %d reads, want the published key accepted after 1", err, reads)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("known hosts file mode %v, want 0600", fi.Mode().Perm())
	}
	if reads, err := dial(first); err != nil || reads != 0 {
		t.Errorf("a later run: %v after %d reads, want the remembered key accepted without a read", err, reads)
	}

	publish(second) // the VM's key changed (one key per type)
	if reads, err := dial(second); err != nil || reads != 1 {
		t.Errorf("a key the file does not hold: %v after %d reads, want it accepted after re-reading what the VM publishes", err, reads)
	}
	if reads, err := dial(second); err != nil || reads != 0 {
		t.Errorf("after the re-read: %v after %d reads, want the file to hold the new key", err, reads)
	}
	for name, k := range map[string]ssh.PublicKey{"a key the VM never published": stranger, "the key the VM no longer publishes": first} {
		if _, err := dial(k); err == nil {
			t.Errorf("%s was accepted", name)
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), alias(in)+" "); n != 1 || !strings.Contains(string(b), base64.StdEncoding.EncodeToString(second.Marshal())) {
		t.Errorf("known hosts holds %d lines for %s, want the one key the VM publishes now:\n%s", n, alias(in), b)
	}
}

// TestKnownHostsRememberKeepsOtherVMs: replacing one VM's keys keeps every
// other line of the file.
func TestKnownHostsRememberKeepsOtherVMs(t *testing.T) {
	k := &knownHosts{file: filepath.Join(t.TempDir(), "known_hosts")}
	a, b := &compute.Instance{Id: 1, Name: "a"}, &compute.Instance{Id: 2, Name: "b"}
	ka, kb, kb2 := newHostKey(t), newHostKey(t), newHostKey(t)
	for _, step := range []struct {
		in   *compute.Instance
		keys []ssh.PublicKey
	}{{a, []ssh.PublicKey{ka}}, {b, []ssh.PublicKey{kb}}, {b, []ssh.PublicKey{kb2}}} {
		if err := k.remember(step.in, step.keys); err != nil {
			t.Fatal(err)
		}
	}
	if got := k.lookup(a); len(got) != 1 || !hasHostKey(got, ka) {
		t.Errorf("a's keys = %v, want its one key", got)
	}
	if got := k.lookup(b); len(got) != 1 || !hasHostKey(got, kb2) {
		t.Errorf("b's keys = %v, want only the one it was given last", got)
	}
	if got := (&knownHosts{}).lookup(a); got != nil {
		t.Errorf("no file remembers %v", got)
	}
}
