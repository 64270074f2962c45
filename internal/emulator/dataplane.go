package emulator

// dataPlane makes the emulated network real on loopback.
type dataPlane struct{ s *Server }

func newDataPlane(s *Server) *dataPlane { return &dataPlane{s: s} }

func (d *dataPlane) close() {}
