package emulator

func (s *Server) routesInstanceGroups() {}
