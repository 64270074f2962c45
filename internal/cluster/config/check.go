package config

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hakube/hakube/internal/zones"
)

// maxNameLen is GCE's limit on resource names (RFC 1035 labels).
const maxNameLen = 63

// Disk bounds: the smallest boot disk the default images accept, the
// smallest persistent disk GCE makes, and GCE's largest persistent disk
// (64 TB).
const (
	minBootDiskGB = 10
	minDataDiskGB = 10
	maxDiskGB     = 64 * 1024
)

// MaxNodesPerGroup is GCE's limit on the VMs of one zonal managed instance
// group: a zone's pool of more is split into several groups, as kube-up
// does (MAX_INSTANCES_PER_MIG).
const MaxNodesPerGroup = 1000

// MaxNodes is kube-up's stated maximum for a cluster's nodes.
const MaxNodes = 5000

// parseBool accepts what shell scripts commonly write; kube-up itself only
// compared with "true", so anything else here is surely a mistake.
func parseBool(raw string) (bool, error) {
	switch strings.ToLower(raw) {
	case "true", "1", "yes":
		return true, nil
	case "false", "0", "no":
		return false, nil
	}
	return false, errors.New("want true/false/1/0/yes/no")
}

func parseInt(raw string) (int, error) {
	n, err := strconv.Atoi(raw)
	if errors.Is(err, strconv.ErrRange) {
		return 0, errors.New("number too large")
	}
	if err != nil {
		return 0, errors.New("not a whole number")
	}
	return n, nil
}

func parseDuration(raw string) (time.Duration, error) {
	d, err := time.ParseDuration(raw)
	if err != nil {
		return 0, errors.New("want a duration like 90s or 5m")
	}
	return d, nil
}

// parseDiskSizeGB reads kube-up's (and gcloud's) disk sizes: "100GB", "1TB",
// or a bare number of GB.
func parseDiskSizeGB(raw string) (int, error) {
	bad := errors.New("want a disk size like 100GB or 1TB")
	num, mult := raw, 1
	switch upper := strings.ToUpper(raw); {
	case strings.HasSuffix(upper, "GB"):
		num = raw[:len(raw)-2]
	case strings.HasSuffix(upper, "TB"):
		num, mult = raw[:len(raw)-2], 1024
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 {
		return 0, bad
	}
	// The bound applies to the size in GB, after the TB multiplier.
	if n > maxDiskGB/mult {
		return 0, fmt.Errorf("at most %dTB (%dGB): GCE's largest persistent disk", maxDiskGB/1024, maxDiskGB)
	}
	return n * mult, nil
}

func checkNotNegative[T int | time.Duration](v T) error {
	if v < 0 {
		return errors.New("must not be negative")
	}
	return nil
}

func checkNumNodes(n int) error {
	if n < 0 {
		return errors.New("must not be negative")
	}
	if n > MaxNodes {
		return fmt.Errorf("at most %d, kube-up's largest cluster (a zone's pool is split into groups of at most MAX_INSTANCES_PER_MIG, GCE's limit %d)", MaxNodes, MaxNodesPerGroup)
	}
	return nil
}

func checkGroupSize(n int) error {
	if n < 1 || n > MaxNodesPerGroup {
		return fmt.Errorf("want 1 to %d: GCE limits a zonal managed instance group to %d VMs", MaxNodesPerGroup, MaxNodesPerGroup)
	}
	return nil
}

func checkPort(p int) error {
	if p < 1 || p > 65535 {
		return errors.New("want a port from 1 to 65535")
	}
	return nil
}

func checkProvider(p string) error {
	if p != "gce" {
		return errors.New(`hakube only supports provider "gce"`)
	}
	return nil
}

// checkProject is deliberately loose (project numbers and legacy
// "domain:project" IDs exist); it only stops text that cannot be part of an
// API URL. Whether the project exists is for the API to say.
func checkProject(p string) error {
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == ':') {
			return errors.New("want a project ID like my-project-123 (lowercase letters, digits and hyphens)")
		}
	}
	return nil
}

func checkZone(z string) error {
	if !zones.Valid(z) {
		return errors.New("want a zone like us-central1-b or europe-west1-c (<region>-<letter>)")
	}
	return nil
}

// isRFC1035 is GCE's rule for resource names: a lowercase letter, then
// lowercase letters, digits and hyphens, not ending in a hyphen.
func isRFC1035(s string) bool {
	if s == "" || len(s) > maxNameLen || s[0] < 'a' || s[0] > 'z' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

const rfc1035Rule = "lowercase letters, digits and hyphens, starting with a letter, not ending with a hyphen, at most 63 characters"

// checkPrefix also makes sure every name built from the prefix fits in 63
// characters, so a long prefix fails here and not halfway through `up`.
func checkPrefix(p string) error {
	if !isRFC1035(p) {
		return fmt.Errorf("want a name prefix of %s", rfc1035Rule)
	}
	c := Config{Prefix: p}
	longest := ""
	for _, n := range c.prefixNames() {
		if len(n) > len(longest) {
			longest = n
		}
	}
	if len(longest) > maxNameLen {
		return fmt.Errorf("too long: resource name %q would have %d characters, GCE allows %d; use a prefix of at most %d characters",
			longest, len(longest), maxNameLen, maxNameLen-(len(longest)-len(p)))
	}
	return nil
}

func checkNetwork(n string) error {
	if !isRFC1035(n) {
		return fmt.Errorf("want a network name of %s", rfc1035Rule)
	}
	c := Config{Network: n}
	if fw := c.SSHFirewallName(); len(fw) > maxNameLen {
		return fmt.Errorf("too long: firewall rule %q would have %d characters, GCE allows %d", fw, len(fw), maxNameLen)
	}
	return nil
}

func checkReplica(r string) error {
	if r == "" {
		return nil
	}
	if !isRFC1035(r) {
		return fmt.Errorf("want a replica name of %s", rfc1035Rule)
	}
	if d := (&Config{}).MasterDiskName(r); len(d) > maxNameLen {
		return fmt.Errorf("too long: its disk %q would have %d characters, GCE allows %d", d, len(d), maxNameLen)
	}
	return nil
}

// checkReplicaOf refuses a replica of another cluster: kube-up's replicas are
// the master itself or <master>-<suffix>.
func checkReplicaOf(replica, master string) error {
	if replica == master || strings.HasPrefix(replica, master+"-") && len(replica) > len(master)+1 {
		return nil
	}
	return fmt.Errorf("not a master replica of this cluster (want %s or %s-<suffix>; check --prefix)", master, master)
}

func checkMachineType(t string) error {
	if !isRFC1035(t) {
		return errors.New("want a machine type like e2-standard-2")
	}
	return nil
}

func checkDiskType(t string) error {
	if !isRFC1035(t) {
		return errors.New("want a disk type like pd-standard, pd-balanced or pd-ssd")
	}
	return nil
}

func checkBootDiskSize(gb int) error {
	if gb < minBootDiskGB {
		return fmt.Errorf("want at least %dGB for a boot disk", minBootDiskGB)
	}
	return nil
}

func checkDataDiskSize(gb int) error {
	if gb < minDataDiskGB {
		return fmt.Errorf("want at least %dGB for a persistent disk", minDataDiskGB)
	}
	return nil
}

func checkImageFamily(f string) error {
	if !isRFC1035(f) {
		return errors.New("want an image family like debian-12")
	}
	return nil
}

// checkEndpoint wants what gcloud's CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE
// and the Go client's option.WithEndpoint want: the full base URL.
func checkEndpoint(e string) error {
	if e == "" {
		return nil
	}
	u, err := url.Parse(e)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		!strings.HasSuffix(u.Path, "/compute/v1/") || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("want an absolute http(s) URL ending in /compute/v1/, e.g. http://127.0.0.1:8080/compute/v1/")
	}
	return nil
}

// shellQuote quotes s only when a shell would need it, so messages show
// inputs the way users type them.
func shellQuote(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@+,=", r)) {
			return strconv.Quote(s)
		}
	}
	return s
}

// Pod ranges: every VM gets a /24 of CLUSTER_IP_RANGE (GCE's alias range
// per VM, kube-up's size), so the range bounds the VMs of the cluster.
const (
	podBlockBits = 24
	maxMasters   = 5 // one per zone of the largest region, with room
)

func checkPodRange(s string) error {
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil || !p.Addr().Is4():
		return fmt.Errorf("want an IPv4 CIDR such as 10.64.0.0/14, got %q", s)
	case p.Masked() != p:
		return fmt.Errorf("%s is not a network address: did you mean %s?", s, p.Masked())
	case p.Bits() > podBlockBits-3 || p.Bits() < 8:
		return fmt.Errorf("want a prefix from /8 to /%d (every VM takes a /%d), got /%d", podBlockBits-3, podBlockBits, p.Bits())
	}
	return nil
}

// PodRangeVMs is how many VMs' /24 pod ranges the range holds (0 when it
// does not parse).
func PodRangeVMs(s string) int {
	p, err := netip.ParsePrefix(s)
	if err != nil || p.Bits() > podBlockBits {
		return 0
	}
	return 1 << (podBlockBits - p.Bits())
}

// prefixFor is the longest prefix whose range holds n VMs' /24s.
func prefixFor(n int) int {
	bits := podBlockBits
	for bits > 8 && 1<<(podBlockBits-bits) < n {
		bits--
	}
	return bits
}
