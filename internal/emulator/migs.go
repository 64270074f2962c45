package emulator

import compute "google.golang.org/api/compute/v1"

// migRec is a managed instance group plus its private state.
type migRec struct {
	*compute.InstanceGroupManager
}

func (s *Server) routesMIGs() {}
