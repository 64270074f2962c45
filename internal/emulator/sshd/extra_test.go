package sshd_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hakube/hakube/internal/emulator/emulatortest"
	"github.com/hakube/hakube/internal/emulator/sshd"
	"golang.org/x/crypto/ssh"
	compute "google.golang.org/api/compute/v1"
)

const (
	extraProject = "ssh-project"
	extraZone    = "europe-west1-b"
)

func insertVM(t *testing.T, e *emu, name string, md map[string]string) *compute.Instance {
	t.Helper()
	in := &compute.Instance{Name: name, MachineType: "zones/" + extraZone + "/machineTypes/e2-small",
		Disks: []*compute.AttachedDisk{{Boot: true, AutoDelete: true,
			InitializeParams: &compute.AttachedDiskInitializeParams{SourceImage: "projects/debian-cloud/global/images/family/debian-12"}}},
		NetworkInterfaces: []*compute.NetworkInterface{{Network: "global/networks/default",
			AccessConfigs: []*compute.AccessConfig{{Name: "external-nat", Type: "ONE_TO_ONE_NAT"}}}},
		Metadata: &compute.Metadata{}}
	for k, v := range md {
		in.Metadata.Items = append(in.Metadata.Items, &compute.MetadataItems{Key: k, Value: &v})
	}
	op, err := e.svc.Instances.Insert(extraProject, extraZone, in).Do()
	if err != nil {
		t.Fatal(err)
	}
	if op = emulatortest.WaitOp(t, e.svc, extraProject, op); op.Error != nil {
		t.Fatalf("insert %s: %+v", name, op.Error.Errors[0])
	}
	got, err := e.svc.Instances.Get(extraProject, extraZone, name).Do()
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// publishedHostKeys verifies host keys as gcloud compute ssh and hakube do:
// against the VM's guest attributes hostkeys/, <key type> <base64 value>.
func publishedHostKeys(t *testing.T, e *emu, name string) ssh.HostKeyCallback {
	t.Helper()
	g, err := e.svc.Instances.GetGuestAttributes(extraProject, extraZone, name).QueryPath("hostkeys/").Do()
	if err != nil {
		t.Fatalf("getGuestAttributes %s hostkeys/: %v", name, err)
	}
	var keys []ssh.PublicKey
	for _, it := range g.QueryValue.Items {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(it.Key + " " + strings.Fields(it.Value)[0]))
		if err != nil {
			t.Fatalf("guest attribute hostkeys/%s = %q: %v", it.Key, it.Value, err)
		}
		keys = append(keys, k)
	}
	return func(_ string, _ net.Addr, key ssh.PublicKey) error {
		for _, k := range keys {
			if bytes.Equal(k.Marshal(), key.Marshal()) {
				return nil
			}
		}
		return errors.New("host key not among the published ones")
	}
}

func dialVM(t *testing.T, in *compute.Instance, port string, user string, key ssh.Signer, hk ssh.HostKeyCallback) (*ssh.Client, error) {
	t.Helper()
	return ssh.Dial("tcp", net.JoinHostPort(in.NetworkInterfaces[0].NetworkIP, port), &ssh.ClientConfig{
		User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(key)}, HostKeyCallback: hk, Timeout: 10 * time.Second})
}

// waitDial retries while the test's stand-in seam boots the VM's sshd.
func waitDial(t *testing.T, in *compute.Instance, user string, key ssh.Signer, hk ssh.HostKeyCallback) *ssh.Client {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := dialVM(t, in, "2223", user, key, hk)
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("ssh %s@%s: %v", user, in.Name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestExtraHostKeysAndMetadata: each VM's sshd publishes its host key as
// guest attributes, which verify it, keeps it across a stop and start,
// reads ssh-keys from the emulator's live metadata, and halts the VM.
func TestExtraHostKeysAndMetadata(t *testing.T) {
	t.Parallel()
	e := startEmu(t, extraProject)
	x := sshd.NewExtra(sshd.ExtraConfig{Port: 2223})
	attachSSH(t, e, extraProject, x)
	key := newSigner(t)
	m1 := insertVM(t, e, "master-1", map[string]string{"enable-guest-attributes": "TRUE", "ssh-keys": keyLine("hakube", key)})
	m2 := insertVM(t, e, "master-2", map[string]string{"enable-guest-attributes": "TRUE", "ssh-keys": keyLine("hakube", key)})
	c := waitDial(t, m1, "hakube", key, ssh.InsecureIgnoreHostKey())
	c.Close()
	waitDial(t, m2, "hakube", key, ssh.InsecureIgnoreHostKey()).Close()
	hk1 := publishedHostKeys(t, e, "master-1")
	c, err := dialVM(t, m1, "2223", "hakube", key, hk1)
	if err != nil {
		t.Fatalf("master-1's host key does not verify against its guest attributes: %v", err)
	}
	c.Close()
	if c, err := dialVM(t, m2, "2223", "hakube", key, hk1); err == nil {
		c.Close()
		t.Error("master-2 passed verification against master-1's published keys")
	}

	// Project keys count through the emulator's projects.setCommonInstanceMetadata.
	other := newSigner(t)
	p, err := e.svc.Projects.Get(extraProject).Do()
	if err != nil {
		t.Fatal(err)
	}
	line := keyLine("alice", other)
	op, err := e.svc.Projects.SetCommonInstanceMetadata(extraProject, &compute.Metadata{Fingerprint: p.CommonInstanceMetadata.Fingerprint,
		Items: []*compute.MetadataItems{{Key: "ssh-keys", Value: &line}}}).Do()
	if err != nil {
		t.Fatal(err)
	}
	emulatortest.WaitOp(t, e.svc, extraProject, op)
	c, err = dialVM(t, m1, "2223", "alice", other, hk1)
	if err != nil {
		t.Fatalf("project key: %v", err)
	}

	// sudo halt: TERMINATED, and the VM's sshd is gone with it.
	s, _ := c.NewSession()
	if err := s.Run("sudo halt"); err != nil {
		t.Fatalf("sudo halt: %v", err)
	}
	c.Close()
	waitStatus(t, e, "master-1", "TERMINATED")
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := dialVM(t, m1, "2223", "alice", other, hk1)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("a TERMINATED VM still answers SSH")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Started again, it has the same host key (kept on its boot disk).
	op, err = e.svc.Instances.Start(extraProject, extraZone, "master-1").Do()
	if err != nil {
		t.Fatal(err)
	}
	emulatortest.WaitOp(t, e.svc, extraProject, op)
	waitDial(t, m1, "alice", other, hk1).Close()
}

func waitStatus(t *testing.T, e *emu, name, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		in, err := e.svc.Instances.Get(extraProject, extraZone, name).Context(context.Background()).Do()
		if err == nil && in.Status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %v, want %s", name, in.Status, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
