package emulator

func (s *Server) routesTemplates() {}
