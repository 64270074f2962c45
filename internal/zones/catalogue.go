package zones

import (
	"slices"
	"strings"
)

// knownRegions are GCE's public regions and their zone letters, for offline
// shell completion only (the API's zones.list is the truth whenever hakube
// can reach it). Kept as text so that it reads like GCE's own list.
const knownRegions = `
africa-south1 a b c
asia-east1 a b c
asia-east2 a b c
asia-northeast1 a b c
asia-northeast2 a b c
asia-northeast3 a b c
asia-south1 a b c
asia-south2 a b c
asia-southeast1 a b c
asia-southeast2 a b c
australia-southeast1 a b c
australia-southeast2 a b c
europe-central2 a b c
europe-north1 a b c
europe-southwest1 a b c
europe-west1 b c d
europe-west2 a b c
europe-west3 a b c
europe-west4 a b c
europe-west6 a b c
europe-west8 a b c
europe-west9 a b c
europe-west10 a b c
europe-west12 a b c
me-central1 a b c
me-central2 a b c
me-west1 a b c
northamerica-northeast1 a b c
northamerica-northeast2 a b c
northamerica-south1 a b c
southamerica-east1 a b c
southamerica-west1 a b c
us-central1 a b c f
us-east1 b c d
us-east4 a b c
us-east5 a b c
us-south1 a b c
us-west1 a b c
us-west2 a b c
us-west3 a b c
us-west4 a b c
`

// Known returns GCE's public zones, sorted.
func Known() []string {
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(knownRegions), "\n") {
		f := strings.Fields(line)
		for _, letter := range f[1:] {
			out = append(out, f[0]+"-"+letter)
		}
	}
	slices.Sort(out)
	return out
}
