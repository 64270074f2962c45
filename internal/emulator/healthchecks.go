package emulator

func (s *Server) routesHealthChecks() {}
