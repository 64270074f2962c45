package sshd_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hakube/hakube/internal/emulator/sshd"
	"golang.org/x/crypto/ssh"
)

// openSSH is the real ssh client with a key and a known_hosts of its own.
type openSSH struct {
	bin, dir, key, knownHosts string
	signer                    ssh.Signer
}

func newOpenSSH(t *testing.T) *openSSH {
	t.Helper()
	bin, err := exec.LookPath("ssh")
	if err != nil {
		t.Fatal("this test drives OpenSSH's ssh client, which is not on PATH (apt-get install openssh-client)")
	}
	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(key, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return &openSSH{bin: bin, dir: dir, key: key, knownHosts: filepath.Join(dir, "known_hosts"), signer: signer}
}

// trust writes the host's key into known_hosts, as gcloud does from the
// VM's guest attributes.
func (o *openSSH) trust(t *testing.T, addr string, key ssh.PublicKey) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	line := "[" + host + "]:" + port + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))) + "\n"
	if err := os.WriteFile(o.knownHosts, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
}

// run runs ssh [flags] user@host [command...].
func (o *openSSH) run(t *testing.T, addr, user string, stdin string, flags []string, command ...string) (stdout, stderr string, code int) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	argv := []string{"-F", "none", "-p", port, "-i", o.key, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + o.knownHosts, "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "LogLevel=ERROR"}
	argv = append(argv, flags...)
	argv = append(append(argv, user+"@"+host), command...)
	cmd := exec.CommandContext(ctx, o.bin, argv...)
	cmd.Env = []string{"HOME=" + o.dir, "PATH=" + os.Getenv("PATH")}
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("ssh: %v", err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// TestOpenSSHClient: what OpenSSH's client sees: exit statuses, stdout and
// stderr, host key verification and -W forwarding.
func TestOpenSSHClient(t *testing.T) {
	t.Parallel()
	ips := newVMIPs(t)
	v := startVM(t, ips, "master-4")
	o := newOpenSSH(t)
	v.setMetadata(sshd.Metadata{Project: map[string]string{"ssh-keys": keyLine("hakube", o.signer)}})
	o.trust(t, v.addr, v.hostKey.PublicKey())
	echoServer(t, net.JoinHostPort(v.local.String(), "2379"))

	if out, errs, code := o.run(t, v.addr, "hakube", "", nil, "hostname"); out != "master-4\n" || code != 0 {
		t.Errorf("hostname: %q %q exit %d", out, errs, code)
	}
	if out, errs, code := o.run(t, v.addr, "hakube", "", nil, "etcdctl", "member", "list"); out != "" || errs != "bash: etcdctl: command not found\n" || code != 127 {
		t.Errorf("unknown command: stdout %q stderr %q exit %d; want bash's message and 127", out, errs, code)
	}
	if out, errs, code := o.run(t, v.addr, "hakube", "127.0.0.1:2379\n", []string{"-W", "127.0.0.1:2379"}); out != "echo 127.0.0.1:2379\n" || code != 0 {
		t.Errorf("ssh -W 127.0.0.1:2379: %q %q exit %d", out, errs, code)
	}
	if _, errs, code := o.run(t, v.addr, "wrong-user", "", nil, "true"); code != 255 || !strings.Contains(errs, "Permission denied (publickey)") {
		t.Errorf("a user with no key: exit %d %q; want 255 Permission denied (publickey)", code, errs)
	}
	if _, errs, code := o.run(t, v.addr, "hakube", "", nil, "sudo", "halt"); code != 0 {
		t.Errorf("sudo halt: exit %d %q", code, errs)
	}
	waitClosed(t, v.halted, "the halt callback")

	// A host key other than the VM's fails verification.
	o.trust(t, v.addr, newSigner(t).PublicKey())
	if _, errs, code := o.run(t, v.addr, "hakube", "", nil, "true"); code != 255 || !strings.Contains(errs, "Host key verification failed") {
		t.Errorf("with a wrong known host key: exit %d %q", code, errs)
	}
}
