package emulator

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
)

const maxPageSize = 500

// listBody is the shape of every Compute list response.
type listBody struct {
	Kind          string            `json:"kind"`
	ID            string            `json:"id"`
	Items         []json.RawMessage `json:"items,omitempty"`
	NextPageToken string            `json:"nextPageToken,omitempty"`
	SelfLink      string            `json:"selfLink"`
}

// pageParams reads maxResults and pageToken. Tokens are opaque offsets.
func pageParams(c *call) (offset, size int, e *apiError) {
	size = maxPageSize
	if v := c.query("maxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, 0, errInvalidField("maxResults", v, "Must be a non-negative integer.")
		}
		if n > maxPageSize {
			return 0, 0, errInvalidField("maxResults", v, fmt.Sprintf("Must be less than or equal to %d.", maxPageSize))
		}
		if n > 0 {
			size = n
		}
	}
	if tok := c.query("pageToken"); tok != "" {
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || !strings.HasPrefix(string(raw), "o:") {
			return 0, 0, errInvalidField("pageToken", tok, "Invalid page token.")
		}
		n, err := strconv.Atoi(string(raw[2:]))
		if err != nil || n < 0 {
			return 0, 0, errInvalidField("pageToken", tok, "Invalid page token.")
		}
		offset = n
	}
	return offset, size, nil
}

func pageToken(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("o:" + strconv.Itoa(offset)))
}

// encoded is one item ready for output, with its decoded form for filters.
type encoded struct {
	raw json.RawMessage
	obj map[string]any
}

// filterViewer is an item that can give a filter the top-level fields it
// reads without decoding the whole resource each time (a VM with its
// startup script and kube-env is tens of kilobytes; a list of 5,000 of
// them, filtered by label, would otherwise decode them all on every page).
type filterViewer interface {
	filterView(fields []string) (map[string]any, error)
}

// encodeFiltered marshals items and keeps those the request's filter matches.
func encodeFiltered(c *call, items []any) ([]encoded, *apiError) {
	f, e := parseFilter(c.query("filter"))
	if e != nil {
		return nil, e
	}
	var need []string
	if f != nil {
		f.fields(func(name string) {
			if !slices.Contains(need, name) {
				need = append(need, name)
			}
		})
	}
	if c.query("orderBy") != "" {
		need = append(need, "creationTimestamp")
	}
	internal := func(err error) *apiError { return &apiError{Code: 500, Reason: "internalError", Message: err.Error()} }
	out := make([]encoded, 0, len(items))
	for _, it := range items {
		var en encoded
		if need != nil {
			if v, ok := it.(filterViewer); ok {
				obj, err := v.filterView(need)
				if err != nil {
					return nil, internal(err)
				}
				en.obj = obj
			} else if obj, ok, err := structView(it, need); ok || err != nil {
				if err != nil {
					return nil, internal(err)
				}
				en.obj = obj
			} else {
				raw, err := json.Marshal(it)
				if err != nil {
					return nil, internal(err)
				}
				if err := json.Unmarshal(raw, &en.obj); err != nil {
					return nil, internal(err)
				}
				en.raw = raw
			}
			if f != nil && !f.match(en.obj) {
				continue
			}
		}
		if en.raw == nil {
			if w, ok := it.(lazyWire); ok {
				// Its cached encoding as is: json.Marshal would re-scan
				// every byte of every VM on every page.
				raw, e := w.r.wire()
				if e != nil {
					return nil, e
				}
				en.raw = raw
			} else {
				raw, err := json.Marshal(it)
				if err != nil {
					return nil, internal(err)
				}
				en.raw = raw
			}
		}
		out = append(out, en)
	}
	if ob := strings.TrimSpace(c.query("orderBy")); ob != "" {
		switch ob {
		case "name":
		case "creationTimestamp desc":
			sort.SliceStable(out, func(i, j int) bool {
				return fmt.Sprint(out[i].obj["creationTimestamp"]) > fmt.Sprint(out[j].obj["creationTimestamp"])
			})
		default:
			return nil, errInvalidField("orderBy", ob, "Only 'name' and 'creationTimestamp desc' are supported.")
		}
	}
	return out, nil
}

// listResponse pages, filters and renders items (already in name order).
func (s *Server) listResponse(c *call, kind string, items []any, selfLink string) (any, *apiError) {
	offset, size, e := pageParams(c)
	if e != nil {
		return nil, e
	}
	base := 0 // items before the first one encoded
	if unfiltered(c) {
		// Nothing to match or reorder: encode only this page, so that paging
		// through thousands of VMs is not quadratic.
		items, base = pageWindow(items, offset, size)
		offset -= base
	}
	enc, e := encodeFiltered(c, items)
	if e != nil {
		return nil, e
	}
	body := &listBody{Kind: kind, SelfLink: selfLink, ID: strings.TrimPrefix(selfLink, s.linkBase)}
	if offset > len(enc) {
		offset = len(enc)
	}
	end := offset + size
	if end < len(enc) {
		body.NextPageToken = pageToken(base + end)
	} else {
		end = len(enc)
	}
	for _, en := range enc[offset:end] {
		body.Items = append(body.Items, en.raw)
	}
	return body, nil
}

func unfiltered(c *call) bool {
	return strings.TrimSpace(c.query("filter")) == "" && strings.TrimSpace(c.query("orderBy")) == ""
}

// pageWindow cuts items down to the page at offset plus one more item (so
// the caller still sees whether a next page exists), and returns how many
// items were cut off before the window.
func pageWindow[V any](items []V, offset, size int) ([]V, int) {
	if offset > len(items) {
		offset = len(items)
	}
	end := offset + size + 1
	if end > len(items) {
		end = len(items)
	}
	return items[offset:end], offset
}

// aggregatedResponse renders an aggregatedList: items keyed by scope, with a
// NO_RESULTS_ON_PAGE warning for every scope that has none on this page.
// maxResults counts items across scopes.
func (s *Server) aggregatedResponse(c *call, kind, listKey string, byScope map[string][]any, scopes []string) (any, *apiError) {
	offset, size, e := pageParams(c)
	if e != nil {
		return nil, e
	}
	type scoped struct {
		scope string
		en    encoded
	}
	var all []scoped
	total := 0 // items before the first one encoded
	if unfiltered(c) {
		// Encode only this page (see listResponse).
		type item struct {
			scope string
			v     any
		}
		var flat []item
		for _, sc := range scopes {
			for _, v := range byScope[sc] {
				flat = append(flat, item{sc, v})
			}
		}
		flat, total = pageWindow(flat, offset, size)
		for _, it := range flat {
			enc, e := encodeFiltered(c, []any{it.v})
			if e != nil {
				return nil, e
			}
			all = append(all, scoped{it.scope, enc[0]})
		}
		offset -= total
	} else {
		for _, sc := range scopes {
			enc, e := encodeFiltered(c, byScope[sc])
			if e != nil {
				return nil, e
			}
			for _, en := range enc {
				all = append(all, scoped{sc, en})
			}
		}
	}
	if offset > len(all) {
		offset = len(all)
	}
	end := offset + size
	next := ""
	if end < len(all) {
		next = pageToken(total + end)
	} else {
		end = len(all)
	}
	page := map[string][]json.RawMessage{}
	for _, it := range all[offset:end] {
		page[it.scope] = append(page[it.scope], it.en.raw)
	}
	items := map[string]any{}
	for _, sc := range scopes {
		if raws, ok := page[sc]; ok {
			items[sc] = map[string]any{listKey: raws}
			continue
		}
		items[sc] = map[string]any{"warning": map[string]any{
			"code":    "NO_RESULTS_ON_PAGE",
			"message": fmt.Sprintf("There are no results for scope '%s' on this page.", sc),
			"data":    []map[string]string{{"key": "scope", "value": sc}},
		}}
	}
	out := map[string]any{
		"kind":     kind,
		"id":       "projects/" + c.p.name + "/aggregated/" + listKey,
		"items":    items,
		"selfLink": c.p.link("aggregated", listKey),
	}
	if next != "" {
		out["nextPageToken"] = next
	}
	return out, nil
}

// zoneScopes and regionScopes list every scope key for aggregatedList.
func (s *Server) zoneScopes() []string {
	out := make([]string, len(s.cat.zones))
	for i, z := range s.cat.zones {
		out[i] = "zones/" + z
	}
	return out
}

func (s *Server) regionScopes() []string {
	out := make([]string, len(s.cat.regNames))
	for i, r := range s.cat.regNames {
		out[i] = "regions/" + r
	}
	return out
}

// toAny converts a typed slice for listResponse.
func toAny[V any](in []V) []any {
	out := make([]any, len(in))
	for i, v := range in {
		out[i] = v
	}
	return out
}

// structView decodes the named top-level fields of an API struct (a
// *compute.Disk, say) one by one, as its JSON would carry them, without
// encoding the rest. It declines (false) what it cannot mirror exactly:
// embedded structs and fields sent as strings.
func structView(it any, fields []string) (map[string]any, bool, error) {
	v := reflect.ValueOf(it)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return nil, false, nil
	}
	v = v.Elem()
	t := v.Type()
	out := map[string]any{}
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue // googleapi.ServerResponse, say
		}
		if sf.Anonymous {
			return nil, false, nil
		}
		name, opts, _ := strings.Cut(tag, ",")
		if !slices.Contains(fields, name) {
			continue
		}
		if strings.Contains(opts, "string") {
			return nil, false, nil
		}
		fv := v.Field(i)
		if fv.IsZero() && strings.Contains(opts, "omitempty") {
			continue
		}
		b, err := json.Marshal(fv.Interface())
		if err != nil {
			return nil, false, err
		}
		var x any
		if err := json.Unmarshal(b, &x); err != nil {
			return nil, false, err
		}
		if x != nil {
			out[name] = x
		}
	}
	return out, true, nil
}
