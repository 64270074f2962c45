package emulator

// dataPlane makes the emulated network real on loopback.
type dataPlane struct{ s *Server }

func newDataPlane(s *Server) *dataPlane { return &dataPlane{s: s} }

func (d *dataPlane) close() {}

// memberHealth is a pool member's health as targetPools.getHealth reports
// it: from the data plane's health checker when it runs, else from the
// instance's status. Called under Server.mu.
func (s *Server) memberHealth(p *project, poolLink, instanceLink string) string {
	in := s.instanceByLink(p, instanceLink)
	if in == nil || in.Status != "RUNNING" || s.zoneDown[s.zoneOf(in)] {
		return "UNHEALTHY"
	}
	return "HEALTHY"
}

func (s *Server) zoneOf(in *instanceRec) string { return lastSegment(in.Zone) }
