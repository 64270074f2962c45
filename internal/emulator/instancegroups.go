package emulator

import (
	"encoding/json"
	"strings"

	compute "google.golang.org/api/compute/v1"
)

// Instance groups exist here as the zonal groups MIGs come with; their
// membership is the MIG's VMs.

func (s *Server) routesInstanceGroups() {
	s.handle("GET", "zones/{zone}/instanceGroups", "compute.instanceGroups.list", s.instanceGroupsList)
	s.handle("GET", "zones/{zone}/instanceGroups/{instanceGroup}", "compute.instanceGroups.get", s.instanceGroupsGet)
	s.handle("POST", "zones/{zone}/instanceGroups/{instanceGroup}/listInstances", "compute.instanceGroups.listInstances", s.instanceGroupsListInstances)
}

// groupMIG returns the MIG behind an instance group, refreshing the group's size.
func (p *project) groupMIG(scope string, g *compute.InstanceGroup) *migRec {
	m, ok := p.migs.get(scope, g.Name)
	if !ok || m.group != g {
		return nil
	}
	m.refresh()
	return m
}

func (s *Server) instanceGroupsGet(c *call) (any, *apiError) {
	scope := "zones/" + c.zone
	g, _, e := getNamed(c, c.p.instanceGroups, "instanceGroups")
	if e != nil {
		return nil, e
	}
	c.p.groupMIG(scope, g)
	return g, nil
}

func (s *Server) instanceGroupsList(c *call) (any, *apiError) {
	scope := "zones/" + c.zone
	var items []any
	for _, g := range c.p.instanceGroups.list(scope) {
		c.p.groupMIG(scope, g)
		items = append(items, g)
	}
	return s.listResponse(c, "compute#instanceGroupList", items, c.p.link(scope, "instanceGroups"))
}

// instanceGroupsListInstances lists the group's existing VMs with their
// status; instanceState RUNNING keeps only running ones.
func (s *Server) instanceGroupsListInstances(c *call) (any, *apiError) {
	scope := "zones/" + c.zone
	g, _, e := getNamed(c, c.p.instanceGroups, "instanceGroups")
	if e != nil {
		return nil, e
	}
	var req compute.InstanceGroupsListInstancesRequest
	if strings.TrimSpace(string(c.body)) != "" {
		if err := json.Unmarshal(c.body, &req); err != nil {
			return nil, &apiError{Code: 400, Reason: "parseError", Message: "Invalid JSON payload received. " + err.Error()}
		}
	}
	switch req.InstanceState {
	case "", "ALL", "RUNNING":
	default:
		return nil, errInvalidField("instanceState", req.InstanceState, "")
	}
	offset, size, e := pageParams(c)
	if e != nil {
		return nil, e
	}
	resp := &compute.InstanceGroupsListInstances{
		Kind:     "compute#instanceGroupsListInstances",
		Id:       s.trimLink(g.SelfLink),
		SelfLink: g.SelfLink + "/listInstances",
	}
	var items []*compute.InstanceWithNamedPorts
	if m := c.p.groupMIG(scope, g); m != nil {
		for _, mem := range m.sortedMembers() {
			if mem.in == nil || req.InstanceState == "RUNNING" && mem.in.Status != "RUNNING" {
				continue
			}
			items = append(items, &compute.InstanceWithNamedPorts{Instance: mem.in.SelfLink, Status: mem.in.Status, NamedPorts: g.NamedPorts})
		}
	}
	if offset > len(items) {
		offset = len(items)
	}
	end := offset + size
	if end < len(items) {
		resp.NextPageToken = pageToken(end)
	} else {
		end = len(items)
	}
	resp.Items = items[offset:end]
	return resp, nil
}
