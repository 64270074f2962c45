package startup

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hakube/hakube/internal/golden"
	"github.com/hakube/hakube/internal/vmcontract"
)

// rendered are the three scripts of the HA guide's cluster, from fixed
// inputs.
func rendered(t *testing.T) map[string]string {
	return map[string]string{
		"master.sh":  mustMaster(t, firstMaster.master()),
		"replica.sh": mustMaster(t, replica.master()),
		"node.sh":    mustNode(t, nodeEnv()),
	}
}

func TestGolden(t *testing.T) {
	for name, script := range rendered(t) {
		golden.Check(t, name, []byte(script))
	}
}

// Every rendered script passes shellcheck. Where shellcheck is missing the
// test skips, unless CI or HAKUBE_REQUIRE_SHELLCHECK is set (make lint
// sets it): then it fails.
func TestShellcheck(t *testing.T) {
	shellcheck, err := exec.LookPath("shellcheck")
	if err != nil {
		if os.Getenv("CI") != "" || os.Getenv("HAKUBE_REQUIRE_SHELLCHECK") != "" {
			t.Fatal("shellcheck is not installed (make shellcheck installs it)")
		}
		t.Skip("shellcheck is not installed")
	}
	dir := t.TempDir()
	for name, script := range rendered(t) {
		p := filepath.Join(dir, name)
		must(t, os.WriteFile(p, []byte(script), 0o644))
		if out, err := exec.Command(shellcheck, "--shell=bash", "--severity=style", p).CombinedOutput(); err != nil {
			t.Errorf("shellcheck %s: %v\n%s", name, err, out)
		}
	}
	// The recorder the tests run the scripts with, too.
	if out, err := exec.Command(shellcheck, "--severity=style", "testdata/stub.sh").CombinedOutput(); err != nil {
		t.Errorf("shellcheck testdata/stub.sh: %v\n%s", err, out)
	}
}

func TestRenderRefuses(t *testing.T) {
	rehearsal := firstMaster.master()
	rehearsal.Host.Listen, rehearsal.Host.LoopbackNetwork = rehearsal.Host.InternalIP, true
	otherName := firstMaster.master()
	otherName.Host = vmcontract.RealHost("kubernetes-master-zzz", "10.132.0.9")
	lineBreak := firstMaster.master()
	lineBreak.Env.Set(vmcontract.EnvAPIServerTestArgs, "--a\n--b")
	noEtcd := firstMaster.master()
	noEtcd.Env.Set(vmcontract.EnvEtcdInitialCluster, "")
	badPort := nodeEnv()
	badPort.Set(vmcontract.EnvAPIServerPort, "https")
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"a node's kube-env as a master", err2(Master(vmcontract.Master{Env: nodeEnv(), Host: firstMaster.master().Host})), "not a master's"},
		{"a master's kube-env as the nodes'", err2(Node(firstMaster.env())), "is a master's"},
		{"the rehearsal's host", err2(Master(rehearsal)), "not a real VM's layout"},
		{"a host that is not kube-env's HOSTNAME", err2(Master(otherName)), "HOSTNAME=kubernetes-master"},
		{"a line break in kube-env", err2(Master(lineBreak)), "line break"},
		{"no etcd members", err2(Master(noEtcd)), "ETCD_INITIAL_CLUSTER"},
		{"a bad port", err2(Node(badPort)), "APISERVER_PORT"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to say %q", tc.name, tc.err, tc.want)
		}
	}
}

func err2(_ string, err error) error { return err }

// The script never holds the bootstrap token: it reads it from kube-env.
func TestScriptsHoldNoToken(t *testing.T) {
	for name, script := range rendered(t) {
		if strings.Contains(script, testToken) || strings.Contains(script, strings.Split(testToken, ".")[1]) {
			t.Errorf("%s holds the bootstrap token", name)
		}
	}
}

// The health agent answers the load balancer's probe from the apiserver's
// /readyz, which it reaches over TLS verified with the cluster CA.
func TestHealthAgent(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("python3 is not installed")
		}
		t.Skip("python3 is not installed")
	}
	var ready atomic.Bool
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		if !ready.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, "[-]etcd failed: reason withheld\nreadyz check failed\n")
			return
		}
		io.WriteString(w, "ok")
	}))
	defer api.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.crt")
	must(t, os.WriteFile(ca, pemCert(api.Certificate().Raw), 0o600))
	program, err := scripts.ReadFile("scripts/health-agent.py")
	must(t, err)
	must(t, os.WriteFile(dir+"/health-agent.py", program, 0o644))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	trusted := startAgent(ctx, t, python, dir+"/health-agent.py", api.URL+"/readyz", ca)
	if code, body := get(t, trusted, "/healthz"); code != 503 || !strings.Contains(body, "readyz check failed") {
		t.Errorf("apiserver not ready: %d %q, want 503 with /readyz's answer", code, body)
	}
	ready.Store(true)
	if code, body := get(t, trusted, "/healthz"); code != 200 || body != "ok" {
		t.Errorf("apiserver ready: %d %q, want 200 ok", code, body)
	}
	if code, _ := get(t, trusted, "/other"); code != 404 {
		t.Errorf("/other: %d, want 404", code)
	}
	// With a CA that did not sign the apiserver's certificate: not ready.
	must(t, os.WriteFile(dir+"/other.crt", pemCert(selfSigned(t)), 0o600))
	untrusted := startAgent(ctx, t, python, dir+"/health-agent.py", api.URL+"/readyz", dir+"/other.crt")
	if code, body := get(t, untrusted, "/healthz"); code != 503 || !strings.Contains(body, "CERTIFICATE_VERIFY_FAILED") {
		t.Errorf("with a CA that did not sign the apiserver: %d %q, want 503 saying why", code, body)
	}
	// The apiserver gone: not ready, saying so.
	api.Close()
	if code, body := get(t, trusted, "/healthz"); code != 503 || !strings.Contains(body, "apiserver https://127.0.0.1:") {
		t.Errorf("apiserver down: %d %q", code, body)
	}
}

// startAgent runs the health agent on a free port and returns its address,
// which it prints first.
func startAgent(ctx context.Context, t *testing.T, python, program, readyz, ca string) string {
	t.Helper()
	agent := exec.CommandContext(ctx, python, program, "--listen=127.0.0.1", "--port=0", "--readyz="+readyz, "--ca="+ca)
	stdout, err := agent.StdoutPipe()
	must(t, err)
	agent.Stderr = os.Stderr
	must(t, agent.Start())
	t.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	must(t, err)
	// "hakube health agent on 127.0.0.1:PORT, ready when ... is"
	fields := strings.Fields(line)
	if len(fields) < 5 {
		t.Fatalf("health agent said %q", line)
	}
	addr := strings.TrimSuffix(fields[4], ",")
	if _, _, err := net.SplitHostPort(addr); err != nil {
		t.Fatalf("health agent said %q", line)
	}
	return addr
}

func get(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// selfSigned is a CA certificate of its own (httptest's servers all share
// one).
func selfSigned(t *testing.T) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	return der
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
