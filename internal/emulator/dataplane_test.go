package emulator_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hakube/hakube/internal/emulator"
	"github.com/hakube/hakube/internal/emulator/emulatortest"
	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/googleapi"
)

const (
	dpProject = "test-project"
	dpRegion  = "europe-west1"
	dpZone    = "europe-west1-b"
	dpZone2   = "europe-west1-c"
	apiPort   = 6443 // ≥ 1024: tests must not need root
	hcPort    = 3990
	// prompt bounds effects the emulator applies at once (stop, access
	// config removal, rule deletion, zone DOWN): a reconcile, not a delay.
	prompt = 250 * time.Millisecond
)

// dpSlots bounds how many data-plane tests run at once; each gets its own
// loopback ranges from emulatortest.ClaimRanges, so parallel tests (and
// other test processes on the machine) never bind the same IP.
var dpSlots = func() chan int {
	c := make(chan int, 6)
	for i := 1; i <= 6; i++ {
		c <- i
	}
	return c
}()

type dpEnv struct {
	*emulatortest.Emulator
	svc    *compute.Service
	subnet netip.Prefix // the europe-west1 auto subnet
	nextIP byte
}

func startDP(t *testing.T, scale float64) *dpEnv { return startDPWith(t, scale, nil) }

// startDPWith starts a data-plane emulator with more options set by more.
func startDPWith(t *testing.T, scale float64, more func(*emulator.Options)) *dpEnv {
	t.Helper()
	slot := <-dpSlots
	t.Cleanup(func() { dpSlots <- slot }) // runs last: after the emulator released its IPs
	ext, internal := emulatortest.ClaimRanges(t)
	opts := emulator.Options{
		DataPlane: true, Latency: emulator.LatencyFast, TimeScale: scale,
		ExternalRange: ext, InternalRange: internal,
	}
	if more != nil {
		more(&opts)
	}
	e := emulatortest.Start(t, opts)
	svc := e.Compute(t)
	sn, err := svc.Subnetworks.Get(dpProject, dpRegion, "default").Do()
	if err != nil {
		t.Fatal(err)
	}
	return &dpEnv{Emulator: e, svc: svc, subnet: netip.MustParsePrefix(sn.IpCidrRange), nextIP: 10}
}

// internalIP is an address of the europe-west1 subnet, in its second /24 so
// that it never meets the addresses the emulator allocates itself.
func (e *dpEnv) internalIP(last byte) string {
	b := e.subnet.Addr().As4()
	return netip.AddrFrom4([4]byte{b[0], b[1], b[2] + 1, last}).String()
}

func masterEnv() string {
	return fmt.Sprintf("ENABLE_CLUSTER_DNS: 'true'\nKUBERNETES_MASTER: 'true'\nAPISERVER_PORT: '%d'\nHEALTHCHECK_PORT: '%d'\n", apiPort, hcPort)
}

type vmSpec struct {
	name, zone string
	master     bool
	certs      string // kube-master-certs
	natIP      string // "": no access config; "ephemeral"; or a static IP
	networkIP  string
	env        string // kube-env instead of a master's or a node's; "-": none
	attrs      bool   // enable-guest-attributes: TRUE
	aliases    []*compute.AliasIpRange
}

// startVM inserts an instance; call waitOp on the result.
func (e *dpEnv) startVM(t *testing.T, v vmSpec) *compute.Operation {
	t.Helper()
	if v.zone == "" {
		v.zone = dpZone
	}
	var items []*compute.MetadataItems
	add := func(k, val string) {
		items = append(items, &compute.MetadataItems{Key: k, Value: googleapi.String(val)})
	}
	add("cluster-name", "dp-test")
	switch {
	case v.env == "-":
	case v.env != "":
		add("kube-env", v.env)
	case v.master:
		add("kube-env", masterEnv())
	default:
		add("kube-env", "KUBERNETES_MASTER: 'false'\n")
	}
	if v.attrs {
		add("enable-guest-attributes", "TRUE")
	}
	if v.certs != "" {
		add("kube-master-certs", v.certs)
	}
	if v.networkIP == "" {
		v.networkIP = e.internalIP(e.nextIP)
		e.nextIP++
	}
	nic := &compute.NetworkInterface{Network: "global/networks/default", NetworkIP: v.networkIP, AliasIpRanges: v.aliases}
	switch v.natIP {
	case "":
	case "ephemeral":
		nic.AccessConfigs = []*compute.AccessConfig{{Type: "ONE_TO_ONE_NAT"}}
	default:
		nic.AccessConfigs = []*compute.AccessConfig{{Type: "ONE_TO_ONE_NAT", NatIP: v.natIP}}
	}
	op, err := e.svc.Instances.Insert(dpProject, v.zone, &compute.Instance{
		Name:        v.name,
		MachineType: "zones/" + v.zone + "/machineTypes/e2-small",
		Disks: []*compute.AttachedDisk{{Boot: true, AutoDelete: true, InitializeParams: &compute.AttachedDiskInitializeParams{
			SourceImage: "projects/debian-cloud/global/images/family/debian-12"}}},
		NetworkInterfaces: []*compute.NetworkInterface{nic},
		Metadata:          &compute.Metadata{Items: items},
	}).Do()
	if err != nil {
		t.Fatalf("insert %s: %v", v.name, err)
	}
	return op
}

func (e *dpEnv) waitOp(t *testing.T, op *compute.Operation, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	op = emulatortest.WaitOp(t, e.svc, dpProject, op)
	if op.Error != nil {
		b, _ := json.Marshal(op.Error)
		t.Fatalf("operation %s %s failed: %s", op.OperationType, op.TargetLink, b)
	}
}

func (e *dpEnv) instance(t *testing.T, zone, name string) *compute.Instance {
	t.Helper()
	in, err := e.svc.Instances.Get(dpProject, zone, name).Do()
	if err != nil {
		t.Fatalf("get %s: %v", name, err)
	}
	return in
}

func internalOf(in *compute.Instance) string { return in.NetworkInterfaces[0].NetworkIP }

func externalOf(in *compute.Instance) string {
	if acs := in.NetworkInterfaces[0].AccessConfigs; len(acs) > 0 {
		return acs[0].NatIP
	}
	return ""
}

func (e *dpEnv) dataPlane(t *testing.T) *emulator.DataPlane {
	t.Helper()
	dp, err := e.Control.DataPlane(context.Background())
	if err != nil {
		t.Fatalf("control dataplane: %v", err)
	}
	return dp
}

func (e *dpEnv) vmState(t *testing.T, link string) emulator.DataPlaneInstance {
	t.Helper()
	for _, in := range e.dataPlane(t).Instances {
		if in.Instance == link {
			return in
		}
	}
	t.Fatalf("control API does not list instance %s", link)
	return emulator.DataPlaneInstance{}
}

func (e *dpEnv) ruleState(t *testing.T, link string) emulator.DataPlaneForwardingRule {
	t.Helper()
	for _, r := range e.dataPlane(t).ForwardingRules {
		if r.ForwardingRule == link {
			return r
		}
	}
	t.Fatalf("control API does not list forwarding rule %s", link)
	return emulator.DataPlaneForwardingRule{}
}

func (e *dpEnv) memberHealth(t *testing.T, pool, instance string) emulator.DataPlaneMember {
	t.Helper()
	for _, tp := range e.dataPlane(t).TargetPools {
		if tp.TargetPool != pool {
			continue
		}
		for _, m := range tp.Members {
			if m.Instance == instance {
				return m
			}
		}
	}
	b, _ := json.MarshalIndent(e.dataPlane(t).TargetPools, "", " ")
	t.Fatalf("control API does not list member %s of %s: %s", instance, pool, b)
	return emulator.DataPlaneMember{}
}

// get makes one HTTPS request on a fresh connection (no keep-alive: every
// call is a new connection, as the load balancer spreads connections) and
// returns which instance answered.
func get(ip string, port int, path string) (instance, body string, err error) {
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true, Proxy: nil}
	defer tr.CloseIdleConnections()
	scheme := "https"
	if port == hcPort {
		scheme = "http"
	}
	c := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	resp, err := c.Get(fmt.Sprintf("%s://%s%s", scheme, net.JoinHostPort(ip, fmt.Sprint(port)), path))
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", "", err
	}
	if resp.StatusCode != 200 {
		return "", "", fmt.Errorf("%s: HTTP %d", path, resp.StatusCode)
	}
	return resp.Header.Get(emulator.InstanceHeader), string(b), nil
}

// refused reports whether a TCP dial to ip:port is refused.
func refused(ip string, port int) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, fmt.Sprint(port)), time.Second)
	if err == nil {
		c.Close()
		return false
	}
	return true
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(3 * time.Millisecond)
	}
}

func answeredBy(ip string, port int, want string) func() bool {
	return func() bool {
		got, _, err := get(ip, port, "/healthz")
		return err == nil && got == want
	}
}

func TestDataPlaneMasterAnswersAfterBoot(t *testing.T) {
	t.Parallel()
	e := startDP(t, 2) // boot ≥ 100 ms: room to observe it
	opM := e.startVM(t, vmSpec{name: "m1", master: true, natIP: "ephemeral"})
	opN := e.startVM(t, vmSpec{name: "n1", natIP: "ephemeral"})
	e.waitOp(t, opM, nil)
	m1 := e.instance(t, dpZone, "m1")
	// Right after RUNNING the guest is still booting: nothing answers.
	st := e.vmState(t, m1.SelfLink)
	if st.State != "booting" || st.ReadyAt.IsZero() {
		t.Fatalf("control API right after insert: %+v, want booting with a ready time", st)
	}
	if refused := refused(internalOf(m1), apiPort); !refused && time.Now().Before(st.ReadyAt) {
		t.Errorf("%s:%d answered before boot (ready at %v)", internalOf(m1), apiPort, st.ReadyAt)
	}
	first := eventually(t, 3*time.Second, "m1 answers on its internal IP", answeredBy(internalOf(m1), apiPort, "m1"))
	if first.Before(st.ReadyAt) {
		t.Errorf("first answer at %v, before boot completes at %v", first, st.ReadyAt)
	}
	for _, ip := range []string{internalOf(m1), externalOf(m1)} {
		for _, path := range []string{"/healthz", "/readyz", "/livez"} {
			who, body, err := get(ip, apiPort, path)
			if err != nil || who != "m1" || body != "ok" {
				t.Errorf("GET https://%s:%d%s = (%q, %q, %v), want (m1, ok)", ip, apiPort, path, who, body, err)
			}
		}
		who, body, err := get(ip, hcPort, "/healthz")
		if err != nil || who != "m1" || body != "ok" {
			t.Errorf("GET http://%s:%d/healthz = (%q, %q, %v), want (m1, ok)", ip, hcPort, who, body, err)
		}
		_, body, err = get(ip, apiPort, "/version")
		if err != nil {
			t.Fatalf("/version on %s: %v", ip, err)
		}
		var v map[string]string
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatalf("/version body %q: %v", body, err)
		}
		if v["gitVersion"] != emulator.EmulatedKubeVersion || v["major"] != "1" || v["platform"] != "linux/amd64" {
			t.Errorf("/version = %v", v)
		}
	}

	// HTTP/2 over TLS, as kubectl speaks it.
	h2 := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true, Proxy: nil}
	defer h2.CloseIdleConnections()
	if resp, err := (&http.Client{Transport: h2, Timeout: 2 * time.Second}).Get(fmt.Sprintf("https://%s:%d/version", internalOf(m1), apiPort)); err != nil {
		t.Errorf("HTTP/2 request: %v", err)
	} else {
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Errorf("protocol %s, want HTTP/2", resp.Proto)
		}
	}

	// A VM whose kube-env does not make it a master never answers.
	e.waitOp(t, opN, nil)
	n1 := e.instance(t, dpZone, "n1")
	eventually(t, 3*time.Second, "n1 reported as not a master", func() bool { return e.vmState(t, n1.SelfLink).State == "notMaster" })
	for _, ip := range []string{internalOf(n1), externalOf(n1)} {
		for _, port := range []int{apiPort, hcPort, 443} {
			if !refused(ip, port) {
				t.Errorf("non-master n1 answers on %s:%d", ip, port)
			}
		}
	}

	// The control API says what answers on each IP.
	byIP := map[string]emulator.DataPlaneAddress{}
	for _, a := range e.dataPlane(t).Addresses {
		byIP[a.IP] = a
	}
	want := emulator.DataPlaneAddress{IP: externalOf(m1), Holder: m1.SelfLink, Answers: "instance", Instance: m1.SelfLink,
		Ports: []emulator.DataPlanePort{{Port: hcPort, Protocol: "http", Listening: true}, {Port: apiPort, Protocol: "https", Listening: true}}}
	if diff := cmp.Diff(want, byIP[externalOf(m1)]); diff != "" {
		t.Errorf("control API for m1's external IP (-want +got):\n%s", diff)
	}
	if a := byIP[internalOf(n1)]; a.Answers != "nothing" || !strings.Contains(a.Reason, "not a master") {
		t.Errorf("control API for n1's internal IP = %+v, want nothing answering, not a master", a)
	}
}

// caSignedPEM makes a CA and a serving certificate for dnsName signed by it.
func caSignedPEM(t *testing.T, dnsName string) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: dnsName}, DNSNames: []string{dnsName},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caTmpl, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// handshake returns the certificate ip:port serves, verified with cfg.
func handshake(ip string, port int, cfg *tls.Config) (*x509.Certificate, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", net.JoinHostPort(ip, fmt.Sprint(port)), cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

func TestDataPlaneServingCertificates(t *testing.T) {
	t.Parallel()
	e := startDP(t, 0.5)
	caPEM, certPEM, keyPEM := caSignedPEM(t, "master.hakube.test")
	b64 := base64.StdEncoding.EncodeToString
	certs := fmt.Sprintf("CA_CERT: '%s'\nMASTER_CERT: '%s'\nMASTER_KEY: '%s'\n", b64(caPEM), b64(certPEM), b64(keyPEM))
	opA := e.startVM(t, vmSpec{name: "with-certs", master: true, certs: certs})
	opB := e.startVM(t, vmSpec{name: "without-certs", master: true, natIP: "ephemeral"})
	e.waitOp(t, opA, nil)
	e.waitOp(t, opB, nil)
	a, b := e.instance(t, dpZone, "with-certs"), e.instance(t, dpZone, "without-certs")
	eventually(t, 3*time.Second, "both masters answer", func() bool {
		return answeredBy(internalOf(a), apiPort, "with-certs")() && answeredBy(internalOf(b), apiPort, "without-certs")()
	})

	// The certificate from kube-master-certs is the one served: it verifies
	// against the cluster CA.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	if _, err := handshake(internalOf(a), apiPort, &tls.Config{RootCAs: pool, ServerName: "master.hakube.test"}); err != nil {
		t.Errorf("metadata certificate does not verify against its CA: %v", err)
	}
	if st := e.vmState(t, a.SelfLink); st.Cert != "metadata" {
		t.Errorf("control API cert = %q, want metadata", st.Cert)
	}

	// Without one, the emulator's own certificate names every IP of the VM.
	leaf, err := handshake(internalOf(b), apiPort, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	self := x509.NewCertPool()
	self.AddCert(leaf)
	for _, ip := range []string{internalOf(b), externalOf(b)} {
		if _, err := handshake(ip, apiPort, &tls.Config{RootCAs: self, ServerName: ip}); err != nil {
			t.Errorf("generated certificate on %s does not verify for that IP: %v", ip, err)
		}
	}
	if _, err := handshake(internalOf(b), apiPort, &tls.Config{RootCAs: self, ServerName: "without-certs"}); err != nil {
		t.Errorf("generated certificate does not name the instance: %v", err)
	}
	if _, err := handshake(internalOf(b), apiPort, &tls.Config{RootCAs: pool, ServerName: "master.hakube.test"}); err == nil {
		t.Error("a master without certificates in its metadata serves the cluster's certificate")
	}
}

func TestDataPlaneStopAndStart(t *testing.T) {
	t.Parallel()
	e := startDP(t, 1)
	e.waitOp(t, e.startVM(t, vmSpec{name: "m1", master: true, natIP: "ephemeral"}), nil)
	m1 := e.instance(t, dpZone, "m1")
	eventually(t, 3*time.Second, "m1 answers", answeredBy(internalOf(m1), apiPort, "m1"))

	// The guest reads kube-env at boot: a new API server port set on the
	// running VM applies only after the restart.
	const newPort = apiPort + 1
	md := m1.Metadata
	for _, it := range md.Items {
		if it.Key == "kube-env" {
			it.Value = googleapi.String(strings.Replace(*it.Value, fmt.Sprint(apiPort), fmt.Sprint(newPort), 1))
		}
	}
	op, err := e.svc.Instances.SetMetadata(dpProject, dpZone, "m1", md).Do()
	e.waitOp(t, op, err)
	if st := e.vmState(t, m1.SelfLink); st.APIServerPort != apiPort || st.State != "answering" {
		t.Errorf("control API after setMetadata: %+v, want still answering on %d", st, apiPort)
	}
	if _, _, err := get(internalOf(m1), apiPort, "/healthz"); err != nil || !refused(internalOf(m1), newPort) {
		t.Errorf("after setMetadata on a running VM: old port err %v, new port refused %v; want the old port until restart", err, refused(internalOf(m1), newPort))
	}

	op, err = e.svc.Instances.Stop(dpProject, dpZone, "m1").Do()
	e.waitOp(t, op, err)
	eventually(t, prompt, "stopped m1 refuses connections", func() bool {
		return refused(internalOf(m1), apiPort) && refused(internalOf(m1), hcPort) && refused(externalOf(m1), apiPort)
	})
	if st := e.vmState(t, m1.SelfLink); st.State != "stopped" || st.Status != "TERMINATED" {
		t.Errorf("control API after stop: state %q status %q, want stopped TERMINATED", st.State, st.Status)
	}

	op, err = e.svc.Instances.Start(dpProject, dpZone, "m1").Do()
	e.waitOp(t, op, err)
	st := e.vmState(t, m1.SelfLink)
	if time.Now().Before(st.ReadyAt) && !refused(internalOf(m1), apiPort) {
		t.Errorf("m1 answers before its boot after start completes at %v", st.ReadyAt)
	}
	first := eventually(t, 3*time.Second, "m1 answers after start", answeredBy(internalOf(m1), newPort, "m1"))
	if st.State != "booting" || first.Before(st.ReadyAt) {
		t.Errorf("after start: state %q ready at %v, first answer %v; want a fresh boot", st.State, st.ReadyAt, first)
	}
	if !refused(internalOf(m1), apiPort) {
		t.Errorf("m1 still answers on its old port %d after restart", apiPort)
	}
	// An ephemeral IP comes back as a new address after a stop; it answers too.
	m1 = e.instance(t, dpZone, "m1")
	eventually(t, prompt, "m1 answers on its new external IP", answeredBy(externalOf(m1), newPort, "m1"))
}

func TestDataPlaneAccessConfigs(t *testing.T) {
	t.Parallel()
	e := startDP(t, 0.5)
	e.waitOp(t, e.startVM(t, vmSpec{name: "m1", master: true, natIP: "ephemeral"}), nil)
	m1 := e.instance(t, dpZone, "m1")
	oldIP := externalOf(m1)
	eventually(t, 3*time.Second, "m1 answers on its external IP", answeredBy(oldIP, apiPort, "m1"))

	op, err := e.svc.Instances.DeleteAccessConfig(dpProject, dpZone, "m1", "external-nat", "nic0").Do()
	e.waitOp(t, op, err)
	eventually(t, prompt, "the removed external IP refuses", func() bool { return refused(oldIP, apiPort) && refused(oldIP, hcPort) })
	if _, _, err := get(internalOf(m1), apiPort, "/healthz"); err != nil {
		t.Errorf("internal IP stopped answering with the access config: %v", err)
	}

	op, err = e.svc.Addresses.Insert(dpProject, dpRegion, &compute.Address{Name: "static-1"}).Do()
	e.waitOp(t, op, err)
	addr, err := e.svc.Addresses.Get(dpProject, dpRegion, "static-1").Do()
	if err != nil {
		t.Fatal(err)
	}
	if !refused(addr.Address, apiPort) {
		t.Fatalf("reserved, unused address %s answers", addr.Address)
	}
	op, err = e.svc.Instances.AddAccessConfig(dpProject, dpZone, "m1", "nic0",
		&compute.AccessConfig{Name: "external-nat", Type: "ONE_TO_ONE_NAT", NatIP: addr.Address}).Do()
	e.waitOp(t, op, err)
	// A booted VM answers on a new IP at once: no second boot.
	eventually(t, prompt, "the added static IP answers", answeredBy(addr.Address, apiPort, "m1"))
	if st := e.vmState(t, m1.SelfLink); st.State != "answering" || !st.ReadyAt.IsZero() {
		t.Errorf("control API after addAccessConfig: %+v, want answering without a new boot", st)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestDataPlaneZoneDown(t *testing.T) {
	t.Parallel()
	e := startDP(t, 0.5)
	opB := e.startVM(t, vmSpec{name: "mb", zone: dpZone, master: true, natIP: "ephemeral"})
	opC := e.startVM(t, vmSpec{name: "mc", zone: dpZone2, master: true, natIP: "ephemeral"})
	e.waitOp(t, opB, nil)
	e.waitOp(t, opC, nil)
	mb, mc := e.instance(t, dpZone, "mb"), e.instance(t, dpZone2, "mc")
	eventually(t, 3*time.Second, "both masters answer", func() bool {
		return answeredBy(internalOf(mb), apiPort, "mb")() && answeredBy(internalOf(mc), apiPort, "mc")()
	})
	if err := e.Control.SetZone(context.Background(), dpZone, "DOWN"); err != nil {
		t.Fatal(err)
	}
	eventually(t, prompt, "the DOWN zone's master stops answering", func() bool {
		return refused(internalOf(mb), apiPort) && refused(externalOf(mb), apiPort) && refused(internalOf(mb), hcPort)
	})
	if _, _, err := get(externalOf(mc), apiPort, "/healthz"); err != nil {
		t.Errorf("master in the other zone: %v", err)
	}
	if st := e.vmState(t, mb.SelfLink); st.State != "zoneDown" {
		t.Errorf("control API state = %q, want zoneDown", st.State)
	}
	// The VMs never stopped behind the outage: back at once, no new boot.
	if err := e.Control.SetZone(context.Background(), dpZone, "UP"); err != nil {
		t.Fatal(err)
	}
	eventually(t, prompt, "the master answers again when the zone is UP", answeredBy(externalOf(mb), apiPort, "mb"))
	if st := e.vmState(t, mb.SelfLink); st.State != "answering" {
		t.Errorf("control API state after UP = %q, want answering", st.State)
	}

	// Deleting a VM silences it as soon as it starts going down.
	op, err := e.svc.Instances.Delete(dpProject, dpZone2, "mc").Do()
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, prompt, "the deleted master stops answering", func() bool {
		return refused(internalOf(mc), apiPort) && refused(externalOf(mc), apiPort)
	})
	e.waitOp(t, op, nil)
}

func TestDataPlaneReportsWhatCannotBeServed(t *testing.T) {
	t.Parallel()
	e := startDP(t, 0.5)
	// Something else holds m1's API server port on its internal IP.
	ip := e.internalIP(200)
	blocker, err := net.Listen("tcp", net.JoinHostPort(ip, fmt.Sprint(apiPort)))
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close()
	e.waitOp(t, e.startVM(t, vmSpec{name: "m1", master: true, networkIP: ip}), nil)
	m1 := e.instance(t, dpZone, "m1")
	if internalOf(m1) != ip {
		t.Fatalf("networkIP = %s, want %s", internalOf(m1), ip)
	}
	var port emulator.DataPlanePort
	eventually(t, 3*time.Second, "bind error reported", func() bool {
		for _, a := range e.dataPlane(t).Addresses {
			for _, p := range a.Ports {
				if a.IP == ip && p.Port == apiPort {
					port = p
				}
			}
		}
		return port.Error != ""
	})
	if port.Listening || !strings.Contains(port.Error, "address already in use") || !strings.Contains(port.Error, "API server of m1") {
		t.Errorf("port report = %+v", port)
	}
	if _, _, err := get(ip, hcPort, "/healthz"); err != nil {
		t.Errorf("health-check port should still answer: %v", err)
	}
	// Once the port is free the data plane binds it on its next retry.
	blocker.Close()
	eventually(t, 3*time.Second, "m1 answers once the port is free", answeredBy(ip, apiPort, "m1"))

	// A rule spanning more ports than the data plane binds says so.
	op, err := e.svc.TargetPools.Insert(dpProject, dpRegion, &compute.TargetPool{Name: "pool", Instances: []string{m1.SelfLink}}).Do()
	e.waitOp(t, op, err)
	op, err = e.svc.ForwardingRules.Insert(dpProject, dpRegion, &compute.ForwardingRule{Name: "wide", PortRange: "7000-7100",
		Target: "regions/" + dpRegion + "/targetPools/pool"}).Do()
	e.waitOp(t, op, err)
	fr, err := e.svc.ForwardingRules.Get(dpProject, dpRegion, "wide").Do()
	if err != nil {
		t.Fatal(err)
	}
	if rs := e.ruleState(t, fr.SelfLink); rs.State != "unsupported" || !strings.Contains(rs.Error, "at most 16 ports") {
		t.Errorf("wide rule = %+v, want unsupported with the port cap", rs)
	}
	if !refused(fr.IPAddress, 7000) {
		t.Error("wide rule forwards")
	}
}

// dataPlaneGoroutines lists goroutines running data-plane code.
func dataPlaneGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "dataplane.(*Plane)") || strings.Contains(g, "dataplane.(*forwarder)") ||
			strings.Contains(g, "dataplane.splice") || strings.Contains(g, "dataplane.pipe") {
			out = append(out, g)
		}
	}
	return out
}

// Not parallel: it counts every goroutine of the process.
func TestDataPlaneShutdownReleasesEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	e := startDP(t, 0.5)
	ip, _, vms := e.lbSetup(t, map[string]string{"m1": dpZone, "m2": dpZone2}, true)
	eventually(t, 3*time.Second, "a member HEALTHY", func() bool { return e.getHealth(t, "masters", vms["m1"].SelfLink) == "HEALTHY" })
	var held []net.Conn
	for _, target := range []string{ip, internalOf(vms["m1"])} {
		c, err := tls.Dial("tcp", net.JoinHostPort(target, fmt.Sprint(apiPort)), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	if len(dataPlaneGoroutines()) == 0 {
		t.Fatal("no data-plane goroutine found while running: the leak check would prove nothing")
	}

	e.Server.Close()
	for _, c := range held {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Errorf("connection to %s survived shutdown (read: %v)", c.RemoteAddr(), err)
		}
	}
	for _, target := range []string{ip, internalOf(vms["m1"]), internalOf(vms["m2"])} {
		if !refused(target, apiPort) {
			t.Errorf("%s:%d still answers after shutdown", target, apiPort)
		}
	}
	// A splice's inner copier closes its done channel in a deferred call:
	// Close can return while that goroutine, its work done, has yet to exit.
	g := dataPlaneGoroutines()
	for end := time.Now().Add(time.Second); len(g) > 0 && time.Now().Before(end); g = dataPlaneGoroutines() {
		time.Sleep(10 * time.Millisecond)
	}
	if len(g) > 0 {
		t.Errorf("data-plane goroutines left after Close:\n%s", strings.Join(g, "\n\n"))
	}
	e.HTTP.Close()
	for _, c := range held {
		c.Close()
	}
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after shutdown, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}
