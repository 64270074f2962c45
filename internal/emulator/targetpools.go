package emulator

func (s *Server) routesTargetPools() {}
