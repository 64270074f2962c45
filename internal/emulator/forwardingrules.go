package emulator

func (s *Server) routesForwardingRules() {}
