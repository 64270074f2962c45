package emulator

import compute "google.golang.org/api/compute/v1"

// instanceRec is an instance plus the emulator's private state about it.
type instanceRec struct {
	*compute.Instance
}

func (s *Server) routesInstances() {}

// instanceByLink finds an instance by its selfLink.
func (s *Server) instanceByLink(p *project, link string) *instanceRec {
	r, ok := parseRef(link, ref{Project: p.name})
	if !ok || r.Coll != "instances" {
		return nil
	}
	in, _ := p.instances.get(r.Scope, r.Name)
	return in
}
