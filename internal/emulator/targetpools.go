package emulator

func (s *Server) routesTargetPools() {}

// dropFromTargetPools removes a deleted instance from every pool, as GCE
// does on its own.
func (s *Server) dropFromTargetPools(p *project, instanceLink string) {
	for _, tp := range p.targetPools.list("") {
		out := tp.Instances[:0]
		for _, l := range tp.Instances {
			if l != instanceLink {
				out = append(out, l)
			}
		}
		tp.Instances = out
	}
}
