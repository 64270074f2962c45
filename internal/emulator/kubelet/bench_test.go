package kubelet_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hakube/hakube/internal/emulator/kubelet"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// BenchmarkKubelet5000 joins a pool of nodes (5,000; KUBELET_BENCH_NODES
// overrides, KUBELET_BENCH_RENEW_RATE sets Config.MaxRenewRate) to a real
// control plane at once and reports how long until every Node is Ready,
// the CPU every process spent getting there, the steady CPU of a minute
// of leases and status after, and each process's RSS.
func BenchmarkKubelet5000(b *testing.B) {
	n := envInt(b, "KUBELET_BENCH_NODES", 5000)
	rate := float64(envInt(b, "KUBELET_BENCH_RENEW_RATE", 0))
	ips := claimIPs(b)
	// The controller-manager approves, signs and allocates a CIDR for every
	// node: its default client QPS (20) would make that the bottleneck. Its
	// grace must exceed the renew interval Extra stretches to (50 s at
	// 5,000 nodes).
	cp := newControlPlane(b, ips, "--kube-api-qps=200 --kube-api-burst=400 --node-monitor-grace-period=120s")
	cp.start(b)
	cp.bootstrap(b)
	x := kubelet.NewExtra(kubelet.Config{MaxRenewRate: rate})
	env := cp.kubeEnv(false, "")
	before := cp.usage()
	start := time.Now()
	stops := make([]func(), 0, n)
	for i := 0; i < n; i++ {
		vm, _ := testVM(fmt.Sprintf("pool-%04d", i), uint64(1000+i), ips.take(), env)
		vm.Console = nil
		stop, err := x.Boot(vm)
		if err != nil {
			b.Fatal(err)
		}
		stops = append(stops, stop)
	}
	b.Cleanup(func() { stopAll(stops) })
	lister := protobufClient(b, cp)
	ready := 0
	deadline := time.Now().Add(30 * time.Minute)
	for ready < n {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d nodes Ready after %v", ready, n, time.Since(start))
		}
		time.Sleep(5 * time.Second)
		ready = countReady(b, lister)
		// Benchmarks' logs appear at their end: progress goes to stderr.
		fmt.Fprintf(os.Stderr, "%v: %d/%d Ready\n", time.Since(start).Round(time.Second), ready, n)
	}
	allReady := time.Since(start)
	joined := cp.usage()
	const window = time.Minute
	time.Sleep(window)
	after := cp.usage()
	if p := os.Getenv("KUBELET_BENCH_HEAPPROFILE"); p != "" {
		writeHeapProfile(b, p)
	}
	b.ReportMetric(float64(n), "nodes")
	b.ReportMetric(float64(runtime.NumGoroutine())/float64(n), "goroutines/node")
	b.ReportMetric(allReady.Seconds(), "s-to-all-Ready")
	for _, p := range []string{"kubelets", "kube-apiserver", "etcd", "kube-controller-manager"} {
		b.ReportMetric((joined[p].cpu - before[p].cpu).Seconds(), "cpu-s-join-"+p)
		b.ReportMetric((after[p].cpu-joined[p].cpu).Seconds()/window.Seconds(), "cores-steady-"+p)
		b.ReportMetric(float64(after[p].rss)/(1<<20), "MiB-RSS-"+p)
	}
	if after := countReady(b, lister); after != n {
		b.Errorf("%d of %d nodes Ready after a minute of steady state", after, n)
	}
}

func writeHeapProfile(b *testing.B, p string) {
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
	}
}

func envInt(b *testing.B, key string, def int) int {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		b.Fatalf("%s=%q: %v", key, v, err)
	}
	return n
}

func stopAll(stops []func()) {
	var wg sync.WaitGroup
	for _, s := range stops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s()
		}()
	}
	wg.Wait()
}

// protobufClient lists 5,000 Nodes without decoding 20 MB of JSON.
func protobufClient(b *testing.B, cp *controlPlane) kubernetes.Interface {
	certPEM, keyPEM, err := cp.cluster.CA.Issue(adminLeaf(), time.Now())
	if err != nil {
		b.Fatal(err)
	}
	return kubernetes.NewForConfigOrDie(&rest.Config{Host: cp.url(), ContentConfig: rest.ContentConfig{ContentType: "application/vnd.kubernetes.protobuf"},
		Timeout: time.Minute, TLSClientConfig: rest.TLSClientConfig{CAData: cp.caPEM, CertData: certPEM, KeyData: keyPEM}})
}

func countReady(b *testing.B, cs kubernetes.Interface) int {
	l, err := cs.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		b.Logf("list nodes: %v", err)
		return 0
	}
	ready := 0
	for i := range l.Items {
		if nodeReady(&l.Items[i]) == corev1.ConditionTrue {
			ready++
		}
	}
	return ready
}

// procUsage is one process's CPU time and resident memory.
type procUsage struct {
	cpu time.Duration
	rss int64
}

// usage is the CPU and RSS of the kubelets (this test process) and of each
// control-plane process.
func (cp *controlPlane) usage() map[string]procUsage {
	out := map[string]procUsage{}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	out["kubelets"] = procUsage{cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), rss: rss("self")}
	for name, pid := range cp.pids {
		out[name] = procUsage{cpu: procCPU(pid), rss: rss(strconv.Itoa(pid))}
	}
	return out
}

// procCPU reads utime+stime from /proc/<pid>/stat (clock ticks of 10 ms).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// rss reads VmRSS (bytes) from /proc/<pid>/status.
func rss(pid string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
