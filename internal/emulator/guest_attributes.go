// Guest attributes: what a VM's guest writes to its metadata server's
// instance/guest-attributes/<namespace>/<key> (the bootstrap's outcome,
// hakube/bootstrap), kept with the instance for its life and read back with
// instances.getGuestAttributes.

package emulator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hakube/hakube/internal/vmcontract"
	compute "google.golang.org/api/compute/v1"
)

// errGuestAttributesDisabled is the metadata server's refusal (a 403 on a
// real VM) when enable-guest-attributes is not TRUE.
var errGuestAttributesDisabled = errors.New("guest attributes are disabled: set metadata " + vmcontract.KeyGuestAttributes + " to TRUE")

// guestAttribute is a guest's write (guest.Options.GuestAttribute). The
// instance's enable-guest-attributes decides, else its project's, as on GCE.
func (s *Server) guestAttribute(_ context.Context, link string, id uint64, namespace, key, value string) error {
	if !validGuestAttributeName(namespace) || !validGuestAttributeName(key) {
		return fmt.Errorf("guest attribute %q/%q: names are letters, digits, - and _", namespace, key)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.instanceOfLink(link)
	if in == nil || in.Id != id || in.gone {
		return fmt.Errorf("instance %s no longer exists", link)
	}
	enabled, ok := metadataValues(in.Metadata)[vmcontract.KeyGuestAttributes]
	if p := s.projects[linkProject(link)]; !ok && p != nil {
		enabled = metadataValues(p.projectObj().CommonInstanceMetadata)[vmcontract.KeyGuestAttributes]
	}
	if !strings.EqualFold(enabled, "true") {
		return errGuestAttributesDisabled
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

// instancesGetGuestAttributes answers a variableKey ("<ns>/<key>") with
// its value, and a queryPath ("<ns>/" or "<ns>/<key>") with the entries
// under it; nothing there is GCE's 404, worded as gcloud recognises it.
// With neither it returns every entry.
func (s *Server) instancesGetGuestAttributes(c *call) (any, *apiError) {
	in, _, e := s.findInstance(c)
	if e != nil {
		return nil, e
	}
	self := in.SelfLink + "/guestAttributes"
	if vk := c.query("variableKey"); vk != "" {
		ns, key, _ := strings.Cut(vk, "/")
		v, ok := in.guestAttrs[ns][key]
		if !ok {
			return nil, errGuestAttributeNotFound(vk)
		}
		return &compute.GuestAttributes{Kind: "compute#guestAttributes", VariableKey: vk, VariableValue: v, SelfLink: self}, nil
	}
	qp := c.query("queryPath")
	ns, key, hasSlash := strings.Cut(qp, "/")
	if qp != "" && (!hasSlash || strings.Contains(key, "/")) {
		return nil, errInvalidField("queryPath", qp, "Must be of the form '<namespace>/' or '<namespace>/<key>'.")
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
	return &compute.GuestAttributes{Kind: "compute#guestAttributes", QueryPath: qp, SelfLink: self,
		QueryValue: &compute.GuestAttributesValue{Items: items}}, nil
}

// errGuestAttributeNotFound: GCE's 404 for a path nothing was written
// under (gcloud matches its text; hakube reads it as "nothing yet").
func errGuestAttributeNotFound(path string) *apiError {
	return &apiError{Code: 404, Reason: "notFound", Message: fmt.Sprintf("The resource '%s' of type 'Guest Attribute' was not found.", path)}
}
