// The project itself: projects.get and its common instance metadata, which
// every VM of the project reads beside its own (project-wide ssh-keys,
// enable-guest-attributes).

package emulator

import (
	"strings"

	compute "google.golang.org/api/compute/v1"
)

func (s *Server) routesProjects() {
	s.handle("GET", "", "compute.projects.get", s.projectsGet)
	s.handle("POST", "setCommonInstanceMetadata", "compute.projects.setCommonInstanceMetadata", s.projectsSetCommonInstanceMetadata)
}

func (s *Server) projectsGet(c *call) (any, *apiError) { return c.p.projectObj(), nil }

// commonMetadataObj is a copy of the project metadata as projects.get shows it.
func (p *project) commonMetadataObj() *compute.Metadata {
	md := *p.commonMetadata
	md.Items = append([]*compute.MetadataItems(nil), md.Items...)
	return &md
}

// projectsSetCommonInstanceMetadata replaces the project metadata, as
// instances.setMetadata does an instance's: the fingerprint read with it
// must match, and the change is a global operation on the project.
func (s *Server) projectsSetCommonInstanceMetadata(c *call) (any, *apiError) {
	var md compute.Metadata
	if e := c.decode(&md); e != nil {
		return nil, e
	}
	if md.Fingerprint != c.p.commonMetadata.Fingerprint {
		return nil, errFingerprint("Supplied fingerprint does not match current metadata fingerprint.")
	}
	if e := checkMetadata(&md, "metadata"); e != nil {
		return nil, e
	}
	c.p.commonMetadata = &compute.Metadata{Kind: "compute#metadata", Fingerprint: s.newFingerprint(), Items: cleanMetadataItems(md.Items)}
	return s.startOp(c, opSpec{Type: "setCommonInstanceMetadata", Target: strings.TrimSuffix(c.p.link(), "/"),
		TargetID: c.p.number, Scope: "global"}), nil
}
