// An instance's life after insert: delete, stop, start and reset, and what
// its removal gives back.

package emulator

import (
	"time"

	compute "google.golang.org/api/compute/v1"
)

func (s *Server) instancesDelete(c *call) (any, *apiError) {
	in, path, e := s.findInstance(c)
	if e != nil {
		return nil, e
	}
	if in.deleting {
		return nil, errNotReady(path)
	}
	if in.DeletionProtection {
		return nil, errBadRequest("Invalid resource usage: 'Resource cannot be deleted if it's protected against deletion.'.")
	}
	return s.deleteInstance(c, in, nil), nil
}

// deleteInstance starts an instance delete: STOPPING at once, gone when the
// operation is DONE. It is allowed while the insert still runs, which then
// fails with 409. done, if set, hears whether the VM went away.
func (s *Server) deleteInstance(c *call, in *instanceRec, done func(ok bool)) *operation {
	prev := in.Status
	in.deleting = true
	in.Status = "STOPPING"
	s.changed()
	return s.startInstanceOp(c, in, opSpec{Type: "delete", Target: in.SelfLink, TargetID: in.Id, Scope: "zones/" + c.zone,
		Kind: "compute.instances.delete",
		Done: func() *apiError {
			s.destroyInstance(c.p, in, false)
			if done != nil {
				done(true)
			}
			return nil
		},
		Fail: func() {
			if !in.gone {
				in.deleting = false
				in.Status = prev
			}
			if done != nil {
				done(false)
			}
		}})
}

// destroyInstance removes an instance (project.removeInstance) and tells
// its MIG. failedInsert marks the rollback of a failed creation. Idempotent.
func (s *Server) destroyInstance(p *project, rec *instanceRec, failedInsert bool) {
	if !p.removeInstance(rec) {
		return
	}
	if rec.member != nil {
		s.migMemberGone(rec, failedInsert)
	}
	s.changed()
}

// removeInstance takes an instance out of the inventory and undoes what it
// holds: disks are deleted (autoDelete, or created by a failed insert) or
// detached, IPs go back (static ones to RESERVED) and pools forget it. It
// reports false when the instance was already gone.
func (p *project) removeInstance(rec *instanceRec) bool {
	if rec.gone {
		return false
	}
	rec.gone = true
	scope := "zones/" + lastSegment(rec.Zone)
	if cur, ok := p.instances.get(scope, rec.Name); ok && cur == rec {
		p.instances.del(scope, rec.Name)
	}
	created := map[*compute.Disk]bool{}
	for _, d := range rec.created {
		created[d] = true
	}
	rec.created = nil
	for _, ad := range rec.Disks {
		d := p.diskOfAttached(ad)
		if d == nil {
			continue
		}
		detachUser(d, rec.SelfLink)
		if (ad.AutoDelete || created[d]) && len(d.Users) == 0 {
			ds := "zones/" + lastSegment(d.Zone)
			if cur, ok := p.disks.get(ds, d.Name); ok && cur == d {
				p.disks.del(ds, d.Name)
			}
		}
	}
	for _, ni := range rec.NetworkInterfaces {
		p.releaseInternalIP(addrOf(ni.NetworkIP), rec.SelfLink)
		for _, ar := range ni.AliasIpRanges {
			p.releaseAlias(ni.Subnetwork, ar, rec.SelfLink)
		}
		for _, ac := range ni.AccessConfigs {
			p.releaseExternalIP(addrOf(ac.NatIP), rec.SelfLink)
		}
	}
	p.dropFromTargetPools(rec.SelfLink)
	return true
}

func (s *Server) instancesStop(c *call) (any, *apiError) {
	in, e := s.mutableInstance(c)
	if e != nil {
		return nil, e
	}
	spec := opSpec{Type: "stop", Target: in.SelfLink, TargetID: in.Id, Scope: "zones/" + c.zone}
	switch in.Status {
	case "TERMINATED": // nothing to do; GCE answers with a successful op
	case "RUNNING":
		in.Status = "STOPPING"
		spec.Done = func() *apiError {
			if !in.deleting && !in.gone {
				c.p.terminate(in)
			}
			return nil
		}
		spec.Fail = func() {
			if in.Status == "STOPPING" && !in.deleting {
				in.Status = "RUNNING"
			}
		}
	default:
		return nil, errNotReady(relPath(c.p.name, "zones/"+c.zone, "instances", c.name))
	}
	return s.startInstanceOp(c, in, spec), nil
}

// terminate is what a stop ends with, and a shutdown from inside the
// guest too: TERMINATED, and an ephemeral external IP is given back (a
// static one stays).
func (p *project) terminate(in *instanceRec) {
	in.Status = "TERMINATED"
	in.LastStopTimestamp = timestamp(time.Now())
	in.CpuPlatform = "Unknown CPU Platform"
	p.releaseEphemeralIPs(in)
	in.raw = nil
}

func (s *Server) instancesStart(c *call) (any, *apiError) {
	in, e := s.mutableInstance(c)
	if e != nil {
		return nil, e
	}
	spec := opSpec{Type: "start", Target: in.SelfLink, TargetID: in.Id, Scope: "zones/" + c.zone}
	switch in.Status {
	case "RUNNING": // nothing to do
	case "TERMINATED":
		region := s.cat.regionOf(c.zone)
		if e := c.p.newQuotaBatch(region).take(map[string]float64{"CPUS": float64(in.guestCPUs())}); e != nil {
			return nil, e
		}
		in.Status = "STAGING"
		spec.Done = func() *apiError {
			if in.deleting || in.gone {
				return nil
			}
			// Access configs that lost their ephemeral IP at stop get a new one.
			for _, ni := range in.NetworkInterfaces {
				for _, ac := range ni.AccessConfigs {
					if ac.NatIP != "" {
						continue
					}
					ip, e := s.allocEphemeral(in.SelfLink)
					if e != nil {
						in.Status = "TERMINATED"
						return e
					}
					ac.NatIP = ip.String()
				}
			}
			s.markRunning(in)
			return nil
		}
		spec.Fail = func() {
			if in.Status == "STAGING" && !in.deleting {
				in.Status = "TERMINATED"
			}
		}
	default:
		return nil, errNotReady(relPath(c.p.name, "zones/"+c.zone, "instances", c.name))
	}
	return s.startInstanceOp(c, in, spec), nil
}

func (s *Server) instancesReset(c *call) (any, *apiError) {
	in, e := s.mutableInstance(c)
	if e != nil {
		return nil, e
	}
	if in.Status != "RUNNING" {
		return nil, errNotReady(relPath(c.p.name, "zones/"+c.zone, "instances", c.name))
	}
	// A reset is a hard reboot of the guest: its processes are killed and
	// it boots again.
	return s.startInstanceOp(c, in, opSpec{Type: "reset", Target: in.SelfLink, TargetID: in.Id, Scope: "zones/" + c.zone,
		Done: func() *apiError {
			if in.Status == "RUNNING" && !in.deleting && !in.gone {
				in.reboots++
			}
			return nil
		}}), nil
}

// markRunning is the moment a VM reaches RUNNING (insert or start DONE).
func (st *state) markRunning(rec *instanceRec) {
	rec.Status = "RUNNING"
	rec.LastStartTimestamp = timestamp(time.Now())
	rec.reboots = 0
	rec.CpuPlatform = cpuPlatforms[st.rng.IntN(len(cpuPlatforms))]
}
