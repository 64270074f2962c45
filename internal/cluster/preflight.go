package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/hakube/hakube/internal/cluster/config"
	"github.com/hakube/hakube/internal/gce"
)

// preflight is what a plan will create from the user's settings, checked
// against the API before the first mutation: a machine type, disk type or
// image that does not exist, or a region without quota for the VMs, would
// otherwise fail halfway and leave half a cluster behind.
type preflight struct {
	machineTypes map[string]string // setting key → zone
	diskTypes    map[string]string
	image        bool
	vms          map[string]int // setting key of the machine type → new VMs
	region       string
}

func (f *preflight) needMachineType(key, zone string) {
	if f.machineTypes == nil {
		f.machineTypes = map[string]string{}
	}
	f.machineTypes[key] = zone
}

func (f *preflight) needDiskType(key, zone string) {
	if f.diskTypes == nil {
		f.diskTypes = map[string]string{}
	}
	f.diskTypes[key] = zone
}

// needVMs counts n new VMs of the machine type the setting names.
func (f *preflight) needVMs(key, zone string, n int) {
	if n <= 0 {
		return
	}
	f.needMachineType(key, zone)
	if f.vms == nil {
		f.vms = map[string]int{}
	}
	f.vms[key] += n
}

// check resolves everything at once and reports every problem found.
func (f *preflight) check(ctx context.Context, c *gce.Cloud, cfg *config.Config) error {
	var (
		mu       sync.Mutex
		problems []error
		cpus     = map[string]int64{}
	)
	fail := func(err error) {
		mu.Lock()
		problems = append(problems, err)
		mu.Unlock()
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for key, zone := range f.machineTypes {
		g.Go(func() error {
			name := cfg.Value(key)
			mt, err := c.GetMachineType(gctx, gce.ZonalKey(zone, name))
			switch {
			case gce.IsNotFound(err):
				fail(fmt.Errorf("%s: no machine type %q in zone %s (gcloud compute machine-types list --zones %s)", cfg.Input(key), name, zone, zone))
			case err != nil:
				return fmt.Errorf("read machine type %s in %s: %w", name, zone, err)
			default:
				mu.Lock()
				cpus[key] = mt.GuestCpus
				mu.Unlock()
			}
			return nil
		})
	}
	for key, zone := range f.diskTypes {
		g.Go(func() error {
			name := cfg.Value(key)
			_, err := c.GetDiskType(gctx, gce.ZonalKey(zone, name))
			switch {
			case gce.IsNotFound(err):
				fail(fmt.Errorf("%s: no disk type %q in zone %s (gcloud compute disk-types list --zones %s)", cfg.Input(key), name, zone, zone))
			case err != nil:
				return fmt.Errorf("read disk type %s in %s: %w", name, zone, err)
			}
			return nil
		})
	}
	if f.image {
		g.Go(func() error {
			_, err := c.GetImageFromFamily(gctx, cfg.ImageProject, cfg.ImageFamily)
			switch {
			case gce.IsNotFound(err):
				fail(fmt.Errorf("%s and %s: no image of that family in that project (gcloud compute images describe-from-family %s --project %s)",
					cfg.Input("imageProject"), cfg.Input("imageFamily"), cfg.ImageFamily, cfg.ImageProject))
			case gce.IsForbidden(err):
				fail(fmt.Errorf("%s and %s: the image project does not exist or this account cannot read it (%v)",
					cfg.Input("imageProject"), cfg.Input("imageFamily"), err))
			case err != nil:
				return fmt.Errorf("read image family %s of %s: %w", cfg.ImageFamily, cfg.ImageProject, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	sort.Slice(problems, func(i, j int) bool { return problems[i].Error() < problems[j].Error() })
	if len(problems) > 0 {
		return config.Invalid(problems...)
	}
	return f.checkQuota(ctx, c, cfg, cpus)
}

// checkQuota refuses a plan whose new VMs exceed what the region has left
// of its INSTANCES or CPUS quota.
func (f *preflight) checkQuota(ctx context.Context, c *gce.Cloud, cfg *config.Config, cpus map[string]int64) error {
	if len(f.vms) == 0 || f.region == "" {
		return nil
	}
	var vms, cpu int64
	var what []string
	for key, n := range f.vms {
		vms += int64(n)
		cpu += int64(n) * cpus[key]
		what = append(what, fmt.Sprintf("%d × %s", n, cfg.Value(key)))
	}
	sort.Strings(what)
	r, err := c.GetRegion(ctx, f.region)
	if err != nil {
		return fmt.Errorf("read region %s for its quotas: %w", f.region, err)
	}
	var problems []error
	for _, q := range r.Quotas {
		need := map[string]int64{"INSTANCES": vms, "CPUS": cpu}[q.Metric]
		if need == 0 {
			continue
		}
		if left := q.Limit - q.Usage; float64(need) > left {
			problems = append(problems, fmt.Errorf("region %s has %.0f of its %.0f %s quota left, and the plan needs %d (%v); lower %s, or ask for more quota (gcloud compute regions describe %s)",
				f.region, max(left, 0), q.Limit, q.Metric, need, what, cfg.Input("numNodes"), f.region))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %w", ErrRefused, errors.Join(problems...))
	}
	return nil
}
