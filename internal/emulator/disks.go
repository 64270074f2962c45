package emulator

func (s *Server) routesDisks() {}
