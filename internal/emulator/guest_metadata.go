// What a VM's guest reaches from inside: its metadata server
// (metadata.google.internal: its own and the project's attributes, and the
// guest attributes it writes, which instances.getGuestAttributes reads) and
// the shutdown a `sudo halt` asks the machine for. Guests (package guest and
// what it runs) call these Go methods where a real VM makes HTTP requests to
// 169.254.169.254 or ACPI calls.

package emulator

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	compute "google.golang.org/api/compute/v1"

	"github.com/hakube/hakube/internal/vmcontract"
)

// GuestRef names the instance a guest runs in. ID, when not 0, must match:
// the guest of a deleted VM must not reach a new one of the same name.
type GuestRef struct {
	Project, Zone, Name string
	ID                  uint64
}

func (r GuestRef) String() string {
	return "projects/" + r.Project + "/zones/" + r.Zone + "/instances/" + r.Name
}

// GuestMetadata is what the metadata server serves a guest: the instance's
// attributes (instance/attributes/) and the project's (project/attributes/).
type GuestMetadata struct {
	Instance, Project map[string]string
}

// Errors the metadata server answers a guest with.
var (
	// ErrNoInstance: the instance is gone (or is another one by now).
	ErrNoInstance = errors.New("no such instance")
	// ErrGuestAttributesDisabled is the metadata server's 403 to a guest
	// attribute write when enable-guest-attributes is not TRUE.
	ErrGuestAttributesDisabled = errors.New("guest attributes endpoint access is disabled")
)

// guestInstance finds the instance r names. Called under mu.
func (s *Server) guestInstance(r GuestRef) (*project, *instanceRec, error) {
	p := s.projects[r.Project]
	if p == nil {
		return nil, nil, fmt.Errorf("%s: %w", r, ErrNoInstance)
	}
	in, ok := p.instances.get("zones/"+r.Zone, r.Name)
	if !ok || in.gone || (r.ID != 0 && in.Id != r.ID) {
		return nil, nil, fmt.Errorf("%s: %w", r, ErrNoInstance)
	}
	return p, in, nil
}

// GuestMetadata reads the instance's and its project's metadata as they are
// now: what a guest agent sees on each of its reads (ssh-keys are read at
// every SSH connection).
func (s *Server) GuestMetadata(r GuestRef) (GuestMetadata, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, in, err := s.guestInstance(r)
	if err != nil {
		return GuestMetadata{}, err
	}
	return GuestMetadata{Instance: metadataValues(in.Metadata), Project: metadataValues(p.commonMetadata)}, nil
}

// guestAttributesEnabled is GCE's (and gcloud's) rule: the instance's
// enable-guest-attributes when it has one, else the project's; TRUE in any
// case enables.
func guestAttributesEnabled(instance, project map[string]string) bool {
	v, ok := instance[vmcontract.KeyEnableGuestAttributes]
	if !ok {
		v = project[vmcontract.KeyEnableGuestAttributes]
	}
	return strings.EqualFold(v, "true")
}

// SetGuestAttribute is a guest's PUT to
// instance/guest-attributes/<namespace>/<key>, refused with
// ErrGuestAttributesDisabled unless guest attributes are enabled.
func (s *Server) SetGuestAttribute(r GuestRef, namespace, key, value string) error {
	if !validGuestAttributeName(namespace) || !validGuestAttributeName(key) {
		return fmt.Errorf("guest attribute %q/%q: names are letters, digits, - and _", namespace, key)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, in, err := s.guestInstance(r)
	if err != nil {
		return err
	}
	if !guestAttributesEnabled(metadataValues(in.Metadata), metadataValues(p.commonMetadata)) {
		return fmt.Errorf("%s: %w", r, ErrGuestAttributesDisabled)
	}
	if in.guestAttrs == nil {
		in.guestAttrs = map[string]map[string]string{}
	}
	if in.guestAttrs[namespace] == nil {
		in.guestAttrs[namespace] = map[string]string{}
	}
	in.guestAttrs[namespace][key] = value
	return nil
}

func validGuestAttributeName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// GuestShutdown is a shutdown from inside the guest (`sudo halt`,
// `poweroff`): the instance goes TERMINATED at once, as on GCE, where no
// operation records it. An instance that is not RUNNING is left as it is.
func (s *Server) GuestShutdown(r GuestRef) error {
	s.mu.Lock()
	p, in, err := s.guestInstance(r)
	if err == nil && in.Status == "RUNNING" && !in.deleting {
		p.terminate(in)
	}
	s.mu.Unlock()
	if err == nil {
		s.changed()
	}
	return err
}

func (s *Server) instancesGetGuestAttributes(c *call) (any, *apiError) {
	in, _, e := s.findInstance(c)
	if e != nil {
		return nil, e
	}
	self := c.p.link("zones", c.zone, "instances", c.name, "guestAttributes")
	if vk := c.query("variableKey"); vk != "" {
		ns, key := splitGuestPath(vk)
		v, ok := in.guestAttrs[ns][key]
		if !ok || key == "" {
			return nil, errGuestAttributeNotFound(vk)
		}
		return &compute.GuestAttributes{Kind: "compute#guestAttributes", VariableKey: vk, VariableValue: v, SelfLink: self + "/" + vk}, nil
	}
	qp := c.query("queryPath")
	ns, key := splitGuestPath(qp)
	if strings.Count(qp, "/") > 1 || (qp != "" && !strings.Contains(qp, "/")) {
		return nil, errInvalidField("queryPath", qp, "Must be empty or of the form '<namespace>/' or '<namespace>/<key>'.")
	}
	var items []*compute.GuestAttributesEntry
	for _, n := range slices.Sorted(maps.Keys(in.guestAttrs)) {
		if qp != "" && n != ns {
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(in.guestAttrs[n])) {
			if key == "" || k == key {
				items = append(items, &compute.GuestAttributesEntry{Namespace: n, Key: k, Value: in.guestAttrs[n][k]})
			}
		}
	}
	if len(items) == 0 && qp != "" {
		return nil, errGuestAttributeNotFound(qp)
	}
	g := &compute.GuestAttributes{Kind: "compute#guestAttributes", QueryPath: qp, QueryValue: &compute.GuestAttributesValue{Items: items}, SelfLink: self + "/" + qp}
	return g, nil
}

// splitGuestPath splits "<namespace>/<key>" (key may be empty).
func splitGuestPath(p string) (ns, key string) {
	ns, key, _ = strings.Cut(p, "/")
	return ns, key
}

// errGuestAttributeNotFound is GCE's answer for a path nothing was written
// under; gcloud compute ssh recognises it by its text.
func errGuestAttributeNotFound(path string) *apiError {
	return &apiError{Code: 404, Reason: "notFound", Message: fmt.Sprintf("The resource '%s' of type 'Guest Attribute' was not found.", path)}
}
