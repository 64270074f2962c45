// Names and links: how resources refer to each other, and the small
// conversions every resource file needs.

package emulator

import (
	"net/netip"
	"strings"
)

// link renders an absolute resource URL under the configured link base.
func (st *state) link(project string, parts ...string) string {
	return st.linkBase + "projects/" + project + "/" + strings.Join(parts, "/")
}

// link renders a link to one of the project's resources.
func (p *project) link(parts ...string) string { return p.st.link(p.name, parts...) }

// relPath is the relative path GCE quotes in error messages
// ("projects/p/zones/z/instances/n").
func relPath(project, scope, coll, name string) string {
	return "projects/" + project + "/" + scope + "/" + coll + "/" + name
}

// trimLink turns an absolute link into the relative path GCE quotes.
func (st *state) trimLink(link string) string {
	if len(link) > len(st.linkBase) && link[:len(st.linkBase)] == st.linkBase {
		return link[len(st.linkBase):]
	}
	return link
}

// lastSegment returns the name at the end of a URL or path.
func lastSegment(s string) string {
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// ref is a parsed resource reference from a request body: a full URL, a
// partial "projects/..." path, a scope-relative path or a bare name.
type ref struct {
	Project string
	Scope   string // "zones/z", "regions/r", "global"
	Coll    string
	Name    string
}

func (r ref) scopeName() string {
	if i := strings.IndexByte(r.Scope, '/'); i >= 0 {
		return r.Scope[i+1:]
	}
	return ""
}

// parseRef resolves a reference. def supplies what a shorter form leaves out.
func parseRef(s string, def ref) (ref, bool) {
	if s == "" {
		return ref{}, false
	}
	if i := strings.Index(s, "/projects/"); i >= 0 && strings.Contains(s, "://") {
		s = s[i+1:]
	}
	parts := strings.Split(strings.Trim(s, "/"), "/")
	r := def
	if len(parts) == 1 {
		r.Name = parts[0]
		return r, r.Name != ""
	}
	if parts[0] == "projects" {
		if len(parts) < 2 {
			return ref{}, false
		}
		r.Project = parts[1]
		parts = parts[2:]
	}
	switch {
	case len(parts) == 3 && parts[0] == "global":
		r.Scope, r.Coll, r.Name = "global", parts[1], parts[2]
	case len(parts) == 4 && (parts[0] == "zones" || parts[0] == "regions"):
		r.Scope, r.Coll, r.Name = parts[0]+"/"+parts[1], parts[2], parts[3]
	case len(parts) == 2 && def.Scope != "":
		r.Coll, r.Name = parts[0], parts[1]
	case len(parts) == 4 && parts[0] == "global" && parts[1] == "images" && parts[2] == "family":
		r.Scope, r.Coll, r.Name = "global", "images/family", parts[3]
	default:
		return ref{}, false
	}
	return r, r.Name != "" && r.Project != ""
}

// addrOf parses an IPv4 string; invalid input yields the zero Addr.
func addrOf(s string) netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a
}

func uitoa(n uint64) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

func projectServiceAccount(p *project) string {
	return uitoa(p.number) + "-compute@developer.gserviceaccount.com"
}

// validName reports whether name follows RFC 1035 as Compute requires.
func validName(name string) bool {
	if len(name) == 0 || len(name) > 63 {
		return false
	}
	for i, c := range name {
		switch {
		case c >= 'a' && c <= 'z':
		case (c >= '0' && c <= '9') || c == '-':
			if i == 0 {
				return false
			}
		default:
			return false
		}
	}
	return name[len(name)-1] != '-'
}

func checkName(name string) *apiError {
	if name == "" {
		return errRequired("resource.name")
	}
	if !validName(name) {
		return errInvalidField("resource.name", name,
			"Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?|[1-9][0-9]{0,19})'")
	}
	return nil
}
