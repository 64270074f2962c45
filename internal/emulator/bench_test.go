package emulator_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/hakube/hakube/internal/emulator"
	compute "google.golang.org/api/compute/v1"
)

// Scale benchmarks: every request goes through the official client over
// HTTP, as hakube's would. Run with
//
//	go test ./internal/emulator -run '^$' -bench . -benchtime 2s

// benchMIG starts an emulator holding a MIG of n VMs (latency none).
func benchMIG(b *testing.B, n int64) *vmEnv {
	b.Helper()
	e := newVMEnv(b, emulator.LatencyNone)
	if _, err := e.svc.InstanceTemplates.Insert(vmProj, vmTemplate("tpl")).Do(); err != nil {
		b.Fatal(err)
	}
	op, err := e.svc.InstanceGroupManagers.Insert(vmProj, vmZone, vmMIG("nodes", "tpl", n)).Do()
	if err != nil || op.Error != nil {
		b.Fatalf("MIG insert: %v %+v", err, op)
	}
	return e
}

func benchFirstVM(b *testing.B, e *vmEnv) string {
	l, err := e.svc.Instances.List(vmProj, vmZone).MaxResults(1).Do()
	if err != nil || len(l.Items) == 0 {
		b.Fatalf("list: %v", err)
	}
	return l.Items[0].Name
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

func BenchmarkInstancesGet(b *testing.B) {
	e := benchMIG(b, 1000)
	name := benchFirstVM(b, e)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.svc.Instances.Get(vmProj, vmZone, name).Do(); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

func BenchmarkInstancesListPage(b *testing.B) {
	e := benchMIG(b, 1000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l, err := e.svc.Instances.List(vmProj, vmZone).MaxResults(500).Do()
		if err != nil || len(l.Items) != 500 {
			b.Fatalf("list: %v", err)
		}
	}
	reportRate(b)
}

func BenchmarkInstancesInsert(b *testing.B) {
	e := benchMIG(b, 1000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		op, err := e.svc.Instances.Insert(vmProj, vmZone, vmBasic(fmt.Sprintf("bench-%d", i))).Do()
		if err != nil || op.Error != nil {
			b.Fatalf("insert: %v %+v", err, op)
		}
	}
	reportRate(b)
}

// BenchmarkMIG5000 resizes five MIGs of one zone from 0 to 1,000 VMs each
// (GCE's limit per zonal group), lists every page of the zone's 5,000
// instances twice (the first listing encodes every VM, the second is served
// from the per-instance cache) and reports the time each took and the Go
// heap the 5,000-VM emulator holds.
func BenchmarkMIG5000(b *testing.B) {
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	groups := []string{"nodes", "nodes-1", "nodes-2", "nodes-3", "nodes-4"}
	for i := 0; i < b.N; i++ {
		before := heap() // earlier iterations' emulators live until the end
		e := benchMIG(b, 0)
		for _, g := range groups[1:] {
			if op, err := e.svc.InstanceGroupManagers.Insert(vmProj, vmZone, vmMIG(g, "tpl", 0)).Do(); err != nil || op.Error != nil {
				b.Fatalf("MIG insert: %v %+v", err, op)
			}
		}
		start := time.Now()
		for _, g := range groups {
			op, err := e.svc.InstanceGroupManagers.Resize(vmProj, vmZone, g, 1000).Do()
			if err != nil || op.Error != nil {
				b.Fatalf("resize: %v %+v", err, op)
			}
			m, err := e.svc.InstanceGroupManagers.Get(vmProj, vmZone, g).Do()
			if err != nil || !m.Status.IsStable || m.CurrentActions.None != 1000 {
				b.Fatalf("MIG after resize: %v %+v", err, m.CurrentActions)
			}
		}
		resize := time.Since(start)

		listAll := func() time.Duration {
			start := time.Now()
			n, pages := 0, 0
			err := e.svc.Instances.List(vmProj, vmZone).Pages(e.ctx, func(l *compute.InstanceList) error {
				n += len(l.Items)
				pages++
				return nil
			})
			if err != nil || n != 5000 || pages != 10 {
				b.Fatalf("listed %d instances in %d pages: %v", n, pages, err)
			}
			return time.Since(start)
		}
		cold := listAll()
		warm := listAll()
		used := heap() - before
		b.ReportMetric(resize.Seconds(), "resize-s")
		b.ReportMetric(cold.Seconds(), "list-all-cold-s")
		b.ReportMetric(warm.Seconds(), "list-all-warm-s")
		b.ReportMetric(float64(used)/(1<<20), "heap-MiB")
		runtime.KeepAlive(e)
	}
}
