package emulator

// routes registers the Compute API. Paths follow the v1 discovery document;
// each resource file registers its own methods.
func (s *Server) routes() {
	s.mux.HandleFunc("/compute/v1/", s.notFoundHandler)

	s.handle("GET", "", "compute.projects.get", s.projectsGet)
	s.handle("GET", "zones", "compute.zones.list", s.zonesList)
	s.handle("GET", "zones/{zone}", "compute.zones.get", s.zonesGet)
	s.handle("GET", "regions", "compute.regions.list", s.regionsList)
	s.handle("GET", "regions/{region}", "compute.regions.get", s.regionsGet)
	s.handle("GET", "zones/{zone}/machineTypes", "compute.machineTypes.list", s.machineTypesList)
	s.handle("GET", "zones/{zone}/machineTypes/{machineType}", "compute.machineTypes.get", s.machineTypesGet)
	s.handle("GET", "aggregated/machineTypes", "compute.machineTypes.aggregatedList", s.machineTypesAggregated)
	s.handle("GET", "zones/{zone}/diskTypes", "compute.diskTypes.list", s.diskTypesList)
	s.handle("GET", "zones/{zone}/diskTypes/{diskType}", "compute.diskTypes.get", s.diskTypesGet)
	s.handle("GET", "global/images", "compute.images.list", s.imagesList)
	s.handle("GET", "global/images/{image}", "compute.images.get", s.imagesGet)
	s.handle("GET", "global/images/family/{family}", "compute.images.getFromFamily", s.imagesGetFromFamily)

	for _, sc := range []struct{ prefix, coll string }{
		{"zones/{zone}/", "zoneOperations"},
		{"regions/{region}/", "regionOperations"},
		{"global/", "globalOperations"},
	} {
		s.handle("GET", sc.prefix+"operations", "compute."+sc.coll+".list", s.opsList)
		s.handle("GET", sc.prefix+"operations/{operation}", "compute."+sc.coll+".get", s.opsGet)
		s.handle("DELETE", sc.prefix+"operations/{operation}", "compute."+sc.coll+".delete", s.opsDelete)
		s.handle("POST", sc.prefix+"operations/{operation}/wait", "compute."+sc.coll+".wait", nil)
	}
	s.handle("GET", "aggregated/operations", "compute.globalOperations.aggregatedList", s.opsAggregated)
	// No autoscaler can exist here, but gcloud lists them to describe or
	// list managed instance groups: answer with empty lists, as GCE does.
	s.handle("GET", "zones/{zone}/autoscalers", "compute.autoscalers.list", s.autoscalersList)
	s.handle("GET", "regions/{region}/autoscalers", "compute.regionAutoscalers.list", s.autoscalersList)
	s.handle("GET", "aggregated/autoscalers", "compute.autoscalers.aggregatedList", func(c *call) (any, *apiError) {
		return s.aggregatedResponse(c, "compute#autoscalerAggregatedList", "autoscalers", map[string][]any{},
			append(s.regionScopes(), s.zoneScopes()...))
	})

	s.routesNetworks()
	s.routesAddresses()
	s.routesFirewalls()
	s.routesRoutes()
	s.routesDisks()
	s.routesInstances()
	s.routesTemplates()
	s.routesMIGs()
	s.handle("GET", "aggregated/instanceGroupManagers", "compute.instanceGroupManagers.aggregatedList", s.migsAggregated)
	s.routesInstanceGroups()
	s.routesTargetPools()
	s.routesHealthChecks()
	s.routesForwardingRules()
}

func (s *Server) projectsGet(c *call) (any, *apiError) { return s.projectObj(c.p), nil }

func (s *Server) autoscalersList(c *call) (any, *apiError) {
	return s.listResponse(c, "compute#autoscalerList", nil, s.link(c.p.name, s.opScope(c), "autoscalers"))
}

func (s *Server) zonesList(c *call) (any, *apiError) {
	var items []any
	for _, z := range s.cat.zones {
		items = append(items, s.zoneObj(c.p.name, z))
	}
	return s.listResponse(c, "compute#zoneList", items, s.link(c.p.name, "zones"))
}

func (s *Server) zonesGet(c *call) (any, *apiError) { return s.zoneObj(c.p.name, c.zone), nil }

func (s *Server) regionsList(c *call) (any, *apiError) {
	var items []any
	for _, r := range s.cat.regNames {
		items = append(items, s.regionObj(c.p, r))
	}
	return s.listResponse(c, "compute#regionList", items, s.link(c.p.name, "regions"))
}

func (s *Server) regionsGet(c *call) (any, *apiError) { return s.regionObj(c.p, c.region), nil }

func (s *Server) machineTypesList(c *call) (any, *apiError) {
	var items []any
	for _, m := range machineTypes() {
		items = append(items, s.machineTypeObj(c.p.name, c.zone, m))
	}
	return s.listResponse(c, "compute#machineTypeList", items, s.link(c.p.name, "zones", c.zone, "machineTypes"))
}

func (s *Server) machineTypesGet(c *call) (any, *apiError) {
	m, ok := findMachineType(c.name)
	if !ok {
		return nil, errNotFound(relPath(c.p.name, "zones/"+c.zone, "machineTypes", c.name))
	}
	return s.machineTypeObj(c.p.name, c.zone, m), nil
}

func (s *Server) machineTypesAggregated(c *call) (any, *apiError) {
	by := map[string][]any{}
	for _, z := range s.cat.zones {
		for _, m := range machineTypes() {
			by["zones/"+z] = append(by["zones/"+z], s.machineTypeObj(c.p.name, z, m))
		}
	}
	return s.aggregatedResponse(c, "compute#machineTypeAggregatedList", "machineTypes", by, s.zoneScopes())
}

func (s *Server) diskTypesList(c *call) (any, *apiError) {
	var items []any
	for _, d := range diskTypes {
		items = append(items, s.diskTypeObj(c.p.name, c.zone, d))
	}
	return s.listResponse(c, "compute#diskTypeList", items, s.link(c.p.name, "zones", c.zone, "diskTypes"))
}

func (s *Server) diskTypesGet(c *call) (any, *apiError) {
	d, ok := findDiskType(c.name)
	if !ok {
		return nil, errNotFound(relPath(c.p.name, "zones/"+c.zone, "diskTypes", c.name))
	}
	return s.diskTypeObj(c.p.name, c.zone, d), nil
}

func (s *Server) imagesList(c *call) (any, *apiError) {
	var items []any
	for _, im := range publicImages {
		if im.project == c.p.name {
			items = append(items, s.imageObj(im))
		}
	}
	return s.listResponse(c, "compute#imageList", items, s.link(c.p.name, "global", "images"))
}

func (s *Server) imagesGet(c *call) (any, *apiError) {
	im, ok := findImage(c.p.name, c.name)
	if !ok {
		return nil, errNotFound(relPath(c.p.name, "global", "images", c.name))
	}
	return s.imageObj(im), nil
}

func (s *Server) imagesGetFromFamily(c *call) (any, *apiError) {
	im, ok := familyImage(c.p.name, c.name)
	if !ok {
		return nil, errNotFound(relPath(c.p.name, "global", "images/family", c.name))
	}
	return s.imageObj(im), nil
}

func (s *Server) opsAggregated(c *call) (any, *apiError) {
	by := c.p.ops.scoped()
	for k, v := range by {
		for i, o := range v {
			v[i] = o.(*operation).op
		}
		by[k] = v
	}
	scopes := append([]string{"global"}, s.regionScopes()...)
	scopes = append(scopes, s.zoneScopes()...)
	return s.aggregatedResponse(c, "compute#operationAggregatedList", "operations", by, scopes)
}
