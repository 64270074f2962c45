package emulator

// apiRoutes registers the Compute API. Paths follow the v1 discovery
// document; each resource file registers its own methods.
func (s *Server) apiRoutes() {
	s.mux.HandleFunc("/compute/v1/", s.notFoundHandler)

	s.routesProjects()

	// No autoscaler can exist here, but gcloud lists them to describe or
	// list managed instance groups: answer with empty lists, as GCE does.
	s.handle("GET", "zones/{zone}/autoscalers", "compute.autoscalers.list", s.autoscalersList)
	s.handle("GET", "regions/{region}/autoscalers", "compute.regionAutoscalers.list", s.autoscalersList)
	s.handle("GET", "aggregated/autoscalers", "compute.autoscalers.aggregatedList", func(c *call) (any, *apiError) {
		return s.aggregatedResponse(c, "compute#autoscalerAggregatedList", "autoscalers", map[string][]any{},
			append(s.regionScopes(), s.zoneScopes()...))
	})

	s.routesCatalog()
	s.routesOperations()
	s.routesNetworks()
	s.routesAddresses()
	s.routesFirewalls()
	s.routesRoutes()
	s.routesDisks()
	s.routesInstances()
	s.routesTemplates()
	s.routesMIGs()
	s.routesInstanceGroups()
	s.routesTargetPools()
	s.routesHealthChecks()
	s.routesForwardingRules()
}

func (s *Server) autoscalersList(c *call) (any, *apiError) {
	return s.listResponse(c, "compute#autoscalerList", nil, c.p.link(c.scope(), "autoscalers"))
}
