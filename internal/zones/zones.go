// Package zones holds GCE's zone and region rules: zone name syntax, the
// region of a zone, whether a zone is usable in the project, and a
// deterministic order.
package zones

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/googleapi"
)

var zoneRE = regexp.MustCompile(`^[a-z]+-[a-z]+[0-9]+-[a-z]$`)

// Valid reports whether zone has GCE's zone syntax, e.g. europe-west1-b.
func Valid(zone string) bool { return zoneRE.MatchString(zone) }

// Region returns the region of a zone: the zone minus its last "-x".
func Region(zone string) string {
	if i := strings.LastIndexByte(zone, '-'); i > 0 {
		return zone[:i]
	}
	return zone
}

// Getter is the one call Check needs (gce.Cloud implements it).
type Getter interface {
	GetZone(ctx context.Context, zone string) (*compute.Zone, error)
}

// ErrZone marks a zone that does not exist in the project or is not UP.
var ErrZone = errors.New("unusable zone")

// Check confirms with one API call that zone exists in the project and is
// UP.
func Check(ctx context.Context, g Getter, zone string) error {
	if !Valid(zone) {
		return fmt.Errorf("%w: %q is not a zone name (want something like us-central1-b)", ErrZone, zone)
	}
	z, err := g.GetZone(ctx, zone)
	var ge *googleapi.Error
	if errors.As(err, &ge) && ge.Code == 404 {
		return fmt.Errorf("%w: zone %q does not exist in this project (see `gcloud compute zones list`)", ErrZone, zone)
	}
	if err != nil {
		return fmt.Errorf("look up zone %s: %w", zone, err)
	}
	if z.Status != "UP" {
		return fmt.Errorf("%w: zone %s is %s; choose another zone of region %s or wait until it is UP", ErrZone, zone, z.Status, Region(zone))
	}
	return nil
}

// Sort orders zone names deterministically (by region, then zone letter),
// de-duplicated.
func Sort(zs []string) []string {
	seen := map[string]bool{}
	out := make([]string, 0, len(zs))
	for _, z := range zs {
		if !seen[z] {
			seen[z] = true
			out = append(out, z)
		}
	}
	sort.Strings(out)
	return out
}
