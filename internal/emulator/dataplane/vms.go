package dataplane

import (
	"fmt"
	"net/netip"
	"sort"
	"time"

	"github.com/hakube/hakube/internal/emulator/guest"
)

// reconcileVMs keeps the guests of VMs that are up running and ends the
// boots of the others, and asks for the listeners the running guests
// need: their services, and the NAT from their external IPs.
func (d *Plane) reconcileVMs(ps *pass, add func(netip.AddrPort, *want), wake func(time.Time)) []InstanceStatus {
	kube := d.host.Kubernetes()
	out := make([]InstanceStatus, 0, len(ps.vms))
	for _, v := range ps.vms {
		cfg := v.rt.config(v.md, kube)
		ips := v.ips()
		st := InstanceStatus{Instance: v.Link, Status: v.Status, Master: cfg.Master, Kubernetes: kube,
			APIServerPort: cfg.APIServerPort, HealthCheckPort: cfg.HealthCheckPort}
		for _, a := range ips {
			st.IPs = append(st.IPs, a.String())
		}
		if cfg.Master && !kube {
			st.Cert = cfg.CertSource()
		}
		m := v.rt.machine
		switch {
		case v.Status != "RUNNING":
			st.State = "stopped"
			m.Stop(v.Deleting)
		case v.ZoneDown:
			// The emulator cannot freeze processes: they die with the zone
			// and the VM boots again when it comes back.
			st.State = "zoneDown"
			m.Stop(false)
		case ps.now.Before(v.rt.readyAt):
			st.State = "booting"
			st.ReadyAt = v.rt.readyAt
			wake(v.rt.readyAt)
			m.Stop(false) // a reset or reboot: the old boot is over
		default:
			m.Run(d.bootSpec(v, cfg, ips))
			d.addGuestListeners(v, cfg, ips, add)
		}
		gs := m.Status()
		st.Boots, st.Components = gs.Boots, gs.Components
		if st.State == "" {
			st.State, st.Error = runningState(kube, cfg, gs)
		}
		if st.Error == "" && !kube {
			st.Error = cfg.Err
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Instance < out[j].Instance })
	return out
}

func (d *Plane) bootSpec(v *vmPass, cfg *guest.Config, ips []netip.Addr) guest.BootSpec {
	spec := guest.BootSpec{Key: v.rt.boot, Config: cfg, Project: v.Project, Zone: v.Zone,
		External: v.External, IPs: ips, MachineType: v.MachineType, CPUs: v.CPUs, MemoryMB: v.MemoryMB, DataDisk: v.DataDisk, PodCIDR: v.PodCIDR}
	if len(v.Internal) > 0 {
		spec.Internal = v.Internal[0]
	}
	return spec
}

// addGuestListeners asks for the running guest's services (on every IP,
// or on the internal ones) and for the NAT of its ports from every
// external IP to nic0's internal IP.
func (d *Plane) addGuestListeners(v *vmPass, cfg *guest.Config, ips []netip.Addr, add func(netip.AddrPort, *want)) {
	m := v.rt.machine
	for _, svc := range m.Services() {
		on := ips
		if svc.Internal {
			on = v.Internal
		}
		for _, a := range on {
			add(netip.AddrPortFrom(a, uint16(svc.Port)), &want{kind: kindGuest, owner: v.Link, vm: v, cfg: cfg, svc: svc})
		}
	}
	if len(v.Internal) == 0 {
		return
	}
	for _, port := range m.NATPorts() {
		target := netip.AddrPortFrom(v.Internal[0], uint16(port))
		for _, a := range v.External {
			add(netip.AddrPortFrom(a, uint16(port)), &want{kind: kindNAT, owner: v.Link, vm: v, target: target,
				svc: guest.Service{What: fmt.Sprintf("the NAT of %s to %s", v.Name, target), PrivilegedFix: natFix(cfg, port)}})
		}
	}
}

// natFix names the setting that moves a NAT port off a privileged one.
func natFix(cfg *guest.Config, port int) string {
	switch port {
	case cfg.APIServerPort:
		return "Set APISERVER_PORT ≥ 1024 in the VM's kube-env, e.g. hakube --apiserver-port 6443"
	case cfg.HealthCheckPort:
		return "Set HEALTHCHECK_PORT ≥ 1024 in the VM's kube-env, e.g. hakube --healthcheck-port 3990"
	}
	return "Run the emulator with --ssh-port ≥ 1024 (Options.SSHPort), e.g. --ssh-port 2222"
}

// runningState is what an up VM's guest reports: with Kubernetes, the
// machine's own state (starting, running, failing, failed); the static guest
// answers, or does not as a non-master or a master it cannot configure.
func runningState(kube bool, cfg *guest.Config, gs guest.Status) (state, errText string) {
	if kube {
		if gs.State == "" {
			return "starting", gs.Error
		}
		return gs.State, gs.Error
	}
	switch {
	case !cfg.Master:
		return "notMaster", gs.Error
	case cfg.Err != "":
		return "failed", cfg.Err
	}
	return "answering", gs.Error
}
