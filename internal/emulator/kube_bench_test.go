package emulator_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hakube/hakube/internal/emulator"
	"github.com/hakube/hakube/internal/emulator/emulatortest/kubevm"
)

// BenchmarkKubeMasterIdle measures one master of the rehearsal: from
// RUNNING to /readyz 200 through its static IP, then, once it settled, its
// processes' resident memory and CPU at idle (docs/vm-contract.md, "What a
// master costs"). Run it alone:
//
//	go test ./internal/emulator -run '^$' -bench KubeMasterIdle -benchtime 1x
func BenchmarkKubeMasterIdle(b *testing.B) {
	const settle, window = 15 * time.Second, 30 * time.Second
	for i := 0; i < b.N; i++ {
		e := kubevm.Start(b, emulator.Options{Projects: []string{kubeProject}})
		svc := e.Compute(b)
		static := kubevm.ReserveStatic(b, svc, kubeProject, kubeRegion, "kubernetes-master-ip")
		ip := kubevm.ReserveInternal(b, svc, kubeProject, kubeRegion, "kubernetes-master-internal-ip")
		c := kubevm.NewCluster(b, "kubernetes", kubeRegion, static)
		m := kubevm.Master{Name: "kubernetes-master", Zone: kubeZone, InternalIP: ip, NatIP: static,
			Members: []kubevm.Member{{Name: "kubernetes-master", IP: ip}}}
		in := c.CreateMaster(b, svc, kubeProject, m, c.KubeEnv(m), c.Certs(b, m))
		running := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), bootBound)
		ok := kubevm.Eventually(ctx, 100*time.Millisecond, func() bool {
			code, _, err := readyz(c, hostPort(static, kubevm.APIServerPort))
			return err == nil && code == 200
		})
		cancel()
		if !ok {
			b.Fatal("the master never got ready")
		}
		boot := time.Since(running)
		time.Sleep(settle)
		dp, err := e.Control.DataPlane(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		pids := map[string]int{}
		for _, st := range dp.Instances {
			if st.Instance == in.SelfLink {
				for _, comp := range st.Components {
					pids[comp.Name] = comp.PID
				}
			}
		}
		before := map[string]float64{}
		for name, pid := range pids {
			before[name] = cpuSeconds(b, pid)
		}
		time.Sleep(window)
		var rss, cpu float64
		for _, name := range allComponents {
			pid := pids[name]
			r, used := rssMiB(b, pid), cpuSeconds(b, pid)-before[name]
			b.Logf("%-24s RSS %6.1f MiB  CPU %5.2f%% of a core", name, r, 100*used/window.Seconds())
			rss += r
			cpu += used
		}
		b.ReportMetric(boot.Seconds(), "s-to-ready")
		b.ReportMetric(rss, "MiB-rss")
		b.ReportMetric(100*cpu/window.Seconds(), "%core-idle")
	}
}

// cpuSeconds is a process's user and system CPU time (/proc/PID/stat, in
// clock ticks of 1/100 s on Linux).
func cpuSeconds(b *testing.B, pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100
}

// rssMiB is a process's resident set (/proc/PID/status VmRSS).
func rssMiB(b *testing.B, pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
