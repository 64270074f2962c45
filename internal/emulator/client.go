package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// Control is a small client of the control API, for tests, benchmarks and
// scripts. BaseURL is the emulator's root (http://127.0.0.1:PORT); a
// Compute endpoint ending in /compute/v1/ is accepted too.
type Control struct {
	BaseURL string
	HTTP    *http.Client
}

// NewControl returns a client for the emulator at base.
func NewControl(base string) *Control {
	base = strings.TrimSuffix(strings.TrimSuffix(base, "/"), "/compute/v1")
	return &Control{BaseURL: base, HTTP: http.DefaultClient}
}

func (c *Control) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+"/emulator/v1/"+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("emulator control %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("emulator control %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// Inventory returns every resource (of one project when project is set).
func (c *Control) Inventory(ctx context.Context, project string) (*Inventory, error) {
	var inv Inventory
	path := "inventory"
	if project != "" {
		path += "?project=" + project
	}
	return &inv, c.do(ctx, "GET", path, nil, &inv)
}

// Names lists the inventory as sorted relative paths
// ("projects/p/zones/z/instances/n"), the form scenario tests compare.
func (inv *Inventory) Names() []string {
	var out []string
	for _, colls := range inv.Projects {
		for _, items := range colls {
			for _, raw := range items {
				var obj struct {
					SelfLink string `json:"selfLink"`
				}
				if json.Unmarshal(raw, &obj) == nil && obj.SelfLink != "" {
					if i := strings.Index(obj.SelfLink, "/projects/"); i >= 0 {
						out = append(out, obj.SelfLink[i+1:])
					}
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// Mark snapshots request counters; RequestsSince reports counts after it.
func (c *Control) Mark(ctx context.Context) (int, error) {
	var out struct {
		Mark int `json:"mark"`
	}
	err := c.do(ctx, "POST", "marks", nil, &out)
	return out.Mark, err
}

// RequestsSince returns request counts per method since a mark (0: start).
func (c *Control) RequestsSince(ctx context.Context, mark int) (*RequestCounts, error) {
	var rc RequestCounts
	return &rc, c.do(ctx, "GET", fmt.Sprintf("requests?mark=%d", mark), nil, &rc)
}

// Reset returns the emulator to its starting state.
func (c *Control) Reset(ctx context.Context) error { return c.do(ctx, "POST", "reset", nil, nil) }

// SetLatency changes the latency preset and time scale.
func (c *Control) SetLatency(ctx context.Context, l Latency) error {
	return c.do(ctx, "PUT", "latency", l, nil)
}

// AddFault installs a fault rule and returns it with its id.
func (c *Control) AddFault(ctx context.Context, f Fault) (Fault, error) {
	var out Fault
	return out, c.do(ctx, "POST", "faults", f, &out)
}

// Faults lists the fault rules with how often each fired.
func (c *Control) Faults(ctx context.Context) ([]Fault, error) {
	var out struct {
		Faults []Fault `json:"faults"`
	}
	return out.Faults, c.do(ctx, "GET", "faults", nil, &out)
}

// ClearFaults removes every fault rule.
func (c *Control) ClearFaults(ctx context.Context) error {
	return c.do(ctx, "DELETE", "faults", nil, nil)
}

// SetZone marks a zone "UP" or "DOWN".
func (c *Control) SetZone(ctx context.Context, zone, status string) error {
	return c.do(ctx, "PUT", "zones/"+zone, map[string]string{"status": status}, nil)
}

// SetQuota sets a quota limit.
func (c *Control) SetQuota(ctx context.Context, q QuotaLimit) error {
	return c.do(ctx, "PUT", "quotas", q, nil)
}

// SetRateLimits sets per-minute request limits per rate group (0 or absent: unlimited).
func (c *Control) SetRateLimits(ctx context.Context, limits map[string]int) error {
	return c.do(ctx, "PUT", "ratelimits", limits, nil)
}

// DataPlane reports what answers on each emulated IP, each master's boot,
// each forwarding rule's propagation and each pool member's health.
func (c *Control) DataPlane(ctx context.Context) (*DataPlane, error) {
	var out DataPlane
	return &out, c.do(ctx, "GET", "dataplane", nil, &out)
}

// Console reads an instance's serial console from start (0: the oldest
// output kept; negative: the last -start bytes), as
// instances.getSerialPortOutput does.
func (c *Control) Console(ctx context.Context, project, zone, instance string, start int64) (*ConsoleOutput, error) {
	var out ConsoleOutput
	path := fmt.Sprintf("instances/%s/%s/%s/console?start=%d", url.PathEscape(project), url.PathEscape(zone), url.PathEscape(instance), start)
	return &out, c.do(ctx, "GET", path, nil, &out)
}
