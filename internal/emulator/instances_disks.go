package emulator

import (
	"fmt"
	"strconv"

	compute "google.golang.org/api/compute/v1"
)

// Disks attached to a running instance: attach, detach and whether a disk
// goes with the instance when it is deleted.

func (s *Server) instancesAttachDisk(c *call) (any, *apiError) {
	in, e := s.mutableInstance(c)
	if e != nil {
		return nil, e
	}
	var ad compute.AttachedDisk
	if e := c.decode(&ad); e != nil {
		return nil, e
	}
	if ad.Source == "" {
		return nil, errRequired("resource.source")
	}
	d, e := c.p.diskByRef(c.zone, ad.Source, "resource.source")
	if e != nil {
		return nil, e
	}
	if d.Zone != in.Zone {
		return nil, errInvalidField("resource.source", ad.Source, "Disk must be in the same zone as the instance.")
	}
	if d.Status != "READY" {
		return nil, errNotReady(s.trimLink(d.SelfLink))
	}
	if ad.Mode == "" {
		ad.Mode = "READ_WRITE"
	}
	if ad.Mode != "READ_WRITE" && ad.Mode != "READ_ONLY" {
		return nil, errInvalidField("resource.mode", ad.Mode, "")
	}
	index := 0
	for _, x := range in.Disks {
		if x.Source == d.SelfLink {
			return nil, errInvalidField("resource.source", ad.Source, "The disk is already attached to this instance.")
		}
		if int(x.Index) >= index {
			index = int(x.Index) + 1
		}
	}
	if ad.DeviceName == "" {
		ad.DeviceName = fmt.Sprintf("persistent-disk-%d", index)
	}
	for _, x := range in.Disks {
		if x.DeviceName == ad.DeviceName {
			return nil, errInvalidField("resource.deviceName", ad.DeviceName, "Device names must be unique.")
		}
	}
	ad.Boot = false
	obj := &ad
	return s.startInstanceOp(c, in, opSpec{Type: "attachDisk", Target: in.SelfLink, TargetID: in.Id, Scope: "zones/" + c.zone,
		Done: func() *apiError {
			if in.deleting || in.gone {
				return nil
			}
			if e := c.p.diskConflict(d, obj.Mode, in.SelfLink); e != nil {
				return e
			}
			if cur, ok := c.p.disks.get("zones/"+c.zone, d.Name); !ok || cur != d {
				return errNotFound(s.trimLink(d.SelfLink))
			}
			attachUser(d, in.SelfLink)
			renderAttached(obj, d, index)
			in.Disks = append(in.Disks, obj)
			in.Fingerprint = s.newFingerprint()
			return nil
		}}), nil
}

func (s *Server) instancesDetachDisk(c *call) (any, *apiError) {
	in, e := s.mutableInstance(c)
	if e != nil {
		return nil, e
	}
	dev := c.query("deviceName")
	if dev == "" {
		return nil, errRequired("deviceName")
	}
	var target *compute.AttachedDisk
	for _, ad := range in.Disks {
		if ad.DeviceName == dev {
			target = ad
		}
	}
	if target == nil {
		return nil, errInvalidField("deviceName", dev, "No attached disk found with that device name.")
	}
	if target.Boot && in.Status != "TERMINATED" {
		return nil, errInvalidField("deviceName", dev, "The boot disk can only be detached from a stopped instance.")
	}
	return s.startInstanceOp(c, in, opSpec{Type: "detachDisk", Target: in.SelfLink, TargetID: in.Id, Scope: "zones/" + c.zone,
		Done: func() *apiError {
			if in.deleting || in.gone {
				return nil
			}
			out := in.Disks[:0]
			for _, ad := range in.Disks {
				if ad != target {
					out = append(out, ad)
				}
			}
			in.Disks = out
			if d := c.p.diskOfAttached(target); d != nil {
				detachUser(d, in.SelfLink)
			}
			in.Fingerprint = s.newFingerprint()
			return nil
		}}), nil
}

// instancesSetDiskAutoDelete sets whether an attached disk is deleted with
// the instance (`gcloud compute instances delete --delete-disks` calls it
// for each disk first).
func (s *Server) instancesSetDiskAutoDelete(c *call) (any, *apiError) {
	in, e := s.mutableInstance(c)
	if e != nil {
		return nil, e
	}
	v := c.query("autoDelete")
	if v == "" {
		return nil, errRequired("autoDelete")
	}
	autoDelete, err := strconv.ParseBool(v)
	if err != nil {
		return nil, errInvalidField("autoDelete", v, "Must be true or false.")
	}
	dev := c.query("deviceName")
	if dev == "" {
		return nil, errRequired("deviceName")
	}
	var target *compute.AttachedDisk
	for _, ad := range in.Disks {
		if ad.DeviceName == dev {
			target = ad
		}
	}
	if target == nil {
		// GCE's message (fog/fog-google#166); the 400 invalid around it is
		// the emulator's guess: the status and reason were not recorded.
		return nil, errInvalid("No attached disk found with device name '%s'", dev)
	}
	return s.startInstanceOp(c, in, opSpec{Type: "setDiskAutoDelete", Target: in.SelfLink, TargetID: in.Id, Scope: "zones/" + c.zone,
		Done: func() *apiError {
			if in.deleting || in.gone {
				return nil
			}
			target.AutoDelete = autoDelete
			in.Fingerprint = s.newFingerprint()
			return nil
		}}), nil
}

// renderAttached fills an AttachedDisk as an instance GET shows it; the
// initializeParams a client sent are never returned.
func renderAttached(ad *compute.AttachedDisk, d *compute.Disk, index int) {
	ad.Kind = "compute#attachedDisk"
	ad.Type = "PERSISTENT"
	ad.Source = d.SelfLink
	ad.Index = int64(index)
	ad.Interface = "SCSI"
	ad.DiskSizeGb = d.SizeGb
	ad.InitializeParams = nil
	ad.ForceAttach = false
	if ad.Boot {
		ad.Architecture = d.Architecture
		ad.GuestOsFeatures = d.GuestOsFeatures
		ad.Licenses = d.Licenses
	}
	ad.ForceSendFields = append(ad.ForceSendFields, "AutoDelete", "Boot", "Index")
}

// diskConflict reports the in-use error GCE gives when attaching d in mode
// would clash with its current attachments.
func (p *project) diskConflict(d *compute.Disk, mode, user string) *apiError {
	for _, u := range d.Users {
		if u == user {
			continue
		}
		other := p.instanceByLink(u)
		otherMode := "READ_WRITE"
		if other != nil {
			for _, ad := range other.Disks {
				if ad.Source == d.SelfLink {
					otherMode = ad.Mode
				}
			}
		}
		if mode == "READ_WRITE" || otherMode == "READ_WRITE" {
			return errInUse("disk", p.st.trimLink(d.SelfLink), p.st.trimLink(u))
		}
	}
	return nil
}

func (p *project) diskOfAttached(ad *compute.AttachedDisk) *compute.Disk {
	r, ok := parseRef(ad.Source, ref{Project: p.name})
	if !ok || r.Coll != "disks" {
		return nil
	}
	d, _ := p.disks.get(r.Scope, r.Name)
	return d
}
