package emulator

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/hakube/hakube/internal/emulator/dataplane"
	"github.com/hakube/hakube/internal/emulator/guest"
	"github.com/hakube/hakube/internal/vmcontract"
	compute "google.golang.org/api/compute/v1"
)

// dataDiskDevice is the device name of a master's data disk, which holds
// its etcd data.
const dataDiskDevice = vmcontract.EtcdDeviceName

// The emulator's side of the VMs' guests (package guest): the host they
// run on, what they may ask of the emulator (a guest's own halt or reboot,
// its current metadata), and their serial consoles.

// startDataPlane starts the guests' host and the data plane that drives
// them.
func (s *Server) startDataPlane() error {
	dir := s.opts.StateDir
	if dir == "" && (s.opts.Kubernetes || s.opts.Extras != nil) {
		var err error
		if dir, err = os.MkdirTemp("", "gce-emulator-state-"); err != nil {
			return fmt.Errorf("state directory: %w", err)
		}
		s.tmpWD = dir
	}
	host, err := guest.NewHost(guest.Options{
		Kubernetes: s.opts.Kubernetes, Binary: s.opts.KubeBinary, StateDir: dir,
		SSHPort: s.opts.SSHPort, Extras: s.opts.Extras, Log: s.log.Named("guest"),
		Power: s.guestPower, Metadata: s.guestMetadata, GuestAttribute: s.guestAttribute, Dial: s.guestDial,
	})
	if err == nil {
		s.dp, err = dataplane.New(s.dataPlaneSnapshot, s.log.Named("dataplane"), s.opts.Seed, host)
		if err != nil {
			host.Close()
		}
	}
	if err != nil {
		if s.tmpWD != "" {
			_ = os.RemoveAll(s.tmpWD)
		}
		return err
	}
	s.host = host
	return nil
}

// guestDial is a guest's connection, through the data plane (which
// startDataPlane makes before any VM boots).
func (s *Server) guestDial(ctx context.Context, from netip.Addr, network, addr string) (net.Conn, error) {
	return s.dp.Dial(ctx, from, network, addr)
}

// guestPower is a guest's own shutdown (sudo halt, poweroff or reboot over
// SSH). A halt makes the instance TERMINATED at once, without an
// operation, as a shutdown from inside does on GCE; a reboot keeps it
// RUNNING and starts its next boot. A request from a boot that is already
// over (or an instance deleted and re-created since) does nothing.
func (s *Server) guestPower(vm guest.VMRef, p guest.Power) {
	s.mu.Lock()
	in := s.instanceOfLink(vm.Link)
	if in == nil || in.Id != vm.ID || in.deleting || in.Status != "RUNNING" ||
		in.LastStartTimestamp != vm.Key.Start || in.reboots != vm.Key.Reboots {
		s.mu.Unlock()
		return
	}
	switch p {
	case guest.PowerHalt:
		s.haltInstance(in)
	case guest.PowerReboot:
		in.reboots++
	}
	in.raw = nil
	s.mu.Unlock()
	s.changed()
}

// haltInstance is a stop with no operation: TERMINATED now, its ephemeral
// external IPs released. Called under mu.
func (s *Server) haltInstance(in *instanceRec) {
	if p := s.projects[linkProject(in.SelfLink)]; p != nil {
		p.terminate(in)
	}
}

// guestAttribute is a guest's write to its metadata server's
// guest-attributes/.
func (s *Server) guestAttribute(_ context.Context, link string, id uint64, namespace, key, value string) error {
	r, ok := parseRef(link, ref{})
	if !ok {
		return fmt.Errorf("instance %s: %w", link, ErrNoInstance)
	}
	return s.SetGuestAttribute(GuestRef{Project: r.Project, Zone: strings.TrimPrefix(r.Scope, "zones/"), Name: r.Name, ID: id}, namespace, key, value)
}

// releaseEphemeralIPs gives back a stopped VM's ephemeral external IPs; a
// static one stays on its access config, as on GCE.
func (p *project) releaseEphemeralIPs(in *instanceRec) {
	for _, ni := range in.NetworkInterfaces {
		for _, ac := range ni.AccessConfigs {
			ip := addrOf(ac.NatIP)
			if ip.IsValid() && p.findAddressByIP("", ip) == nil {
				p.releaseExternalIP(ip, in.SelfLink)
				ac.NatIP = ""
			}
		}
	}
}

// guestMetadata is what a guest's metadata server answers now: the
// instance's metadata and its project's common metadata.
func (s *Server) guestMetadata(_ context.Context, link string, id uint64) (instance, project map[string]string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.instanceOfLink(link)
	if in == nil || in.Id != id {
		return nil, nil, fmt.Errorf("instance %s no longer exists", link)
	}
	instance = metadataValues(in.Metadata)
	if p := s.projects[linkProject(link)]; p != nil {
		project = metadataValues(p.projectObj().CommonInstanceMetadata)
	}
	return instance, project, nil
}

func metadataValues(md *compute.Metadata) map[string]string {
	out := map[string]string{}
	if md == nil {
		return out
	}
	for _, it := range md.Items {
		if it != nil && it.Value != nil {
			out[it.Key] = *it.Value
		}
	}
	return out
}

// instanceOfLink finds an instance of any project by its selfLink. Called
// under mu.
func (s *Server) instanceOfLink(link string) *instanceRec {
	p := s.projects[linkProject(link)]
	if p == nil {
		return nil
	}
	return p.instanceByLink(link)
}

func linkProject(link string) string {
	r, ok := parseRef(link, ref{})
	if !ok {
		return ""
	}
	return r.Project
}

// instancesGetSerialPortOutput reads the VM's serial console: what its
// guest and its processes printed (docs/vm-contract.md, Logs). Port 1 is
// the console; ports 2 to 4 exist and stay empty.
func (s *Server) instancesGetSerialPortOutput(c *call) (any, *apiError) {
	in, _, e := s.findInstance(c)
	if e != nil {
		return nil, e
	}
	port := int64(1)
	if v := c.query("port"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > 4 {
			return nil, errInvalidField("port", v, "Must be between 1 and 4.")
		}
		port = n
	}
	var start int64
	if v := c.query("start"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, errInvalidField("start", v, "")
		}
		start = n
	}
	out := &compute.SerialPortOutput{Kind: "compute#serialPortOutput", SelfLink: in.SelfLink + "/serialPort",
		ForceSendFields: []string{"Start", "Next", "Contents"}}
	if port == 1 {
		contents, from, next := in.console.Read(start)
		out.Contents, out.Start, out.Next = string(contents), from, next
	}
	return out, nil
}

// ConsoleOutput is a VM's serial console from a position, as the control
// API returns it (GET /emulator/v1/instances/{project}/{zone}/{name}/console).
type ConsoleOutput struct {
	Instance string `json:"instance"`
	Contents string `json:"contents"`
	Start    int64  `json:"start"`
	Next     int64  `json:"next"`
}

func (s *Server) ctlConsole(w http.ResponseWriter, r *http.Request) {
	var start int64
	if v := r.URL.Query().Get("start"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			ctlError(w, 400, "start must be a number")
			return
		}
		start = n
	}
	s.mu.Lock()
	p := s.projects[r.PathValue("project")]
	var in *instanceRec
	if p != nil {
		in, _ = p.instances.get("zones/"+r.PathValue("zone"), r.PathValue("name"))
	}
	s.mu.Unlock()
	if in == nil {
		ctlError(w, 404, fmt.Sprintf("no instance %s in %s/%s", r.PathValue("name"), r.PathValue("project"), r.PathValue("zone")))
		return
	}
	contents, from, next := in.console.Read(start)
	ctlJSON(w, 200, ConsoleOutput{Instance: in.SelfLink, Contents: string(contents), Start: from, Next: next})
}

// dataPlaneDisks are the ids of every disk, for the guests' host to drop
// the data of deleted ones. Called under mu, with Kubernetes only.
func (s *Server) dataPlaneDisks() map[uint64]bool {
	out := map[uint64]bool{}
	for _, p := range s.projects {
		for _, r := range p.disks.rows {
			out[r.v.Id] = true
		}
	}
	return out
}

// dataDisk is the id of the disk an instance has attached as master-pd.
func (p *project) dataDisk(in *instanceRec) uint64 {
	for _, ad := range in.Disks {
		if ad.DeviceName == dataDiskDevice {
			if d := p.diskOfAttached(ad); d != nil {
				return d.Id
			}
		}
	}
	return 0
}
