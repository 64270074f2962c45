package emulator

// migsAggregated lists every zone's managed instance groups: hakube finds a
// cluster's node pools in all zones with one call.
func (s *Server) migsAggregated(c *call) (any, *apiError) {
	by := map[string][]any{}
	for _, m := range c.p.migs.list("") {
		s.migRefresh(m)
		scope := "zones/" + lastSegment(m.Zone)
		by[scope] = append(by[scope], m.InstanceGroupManager)
	}
	return s.aggregatedResponse(c, "compute#instanceGroupManagerAggregatedList", "instanceGroupManagers", by, s.zoneScopes())
}
