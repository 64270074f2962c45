package emulator

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// filterExpr is a parsed list filter evaluated against a resource's JSON.
type filterExpr interface {
	match(obj map[string]any) bool
	// fields adds the top-level fields the expression reads, so a list can
	// decode those alone.
	fields(add func(string))
}

func topField(path string) string {
	top, _, _ := strings.Cut(path, ".")
	return top
}

// parseFilter parses Compute's two list filter syntaxes, which cannot be
// mixed:
//
//   - AIP-160 style: `name = "a"`, `status != TERMINATED`, `labels.env:*`,
//     `(a = 1) (b = 2)`, `x = 1 AND (y = 2 OR z = 3)`, `NOT x = 1`;
//   - legacy regex: `name eq 'kube-.*'`, `(name eq a.*) (status ne TERMINATED)`,
//     where the literal is an RE2 expression matching the whole field.
//
// Anything unparsable is a 400, never silently ignored.
func parseFilter(s string) (filterExpr, *apiError) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	toks, err := lexFilter(s)
	if err != nil {
		return nil, errInvalidField("filter", s, err.Error())
	}
	p := &filterParser{toks: toks}
	legacy, modern := false, false
	for _, t := range toks {
		if t.kind == tokOp {
			switch t.text {
			case "eq", "ne":
				legacy = true
			default:
				modern = true
			}
		}
	}
	if legacy && modern {
		return nil, errInvalidField("filter", s, "Cannot mix the 'eq'/'ne' syntax with comparison operators.")
	}
	p.legacy = legacy
	e, err := p.parseOr()
	if err == nil && p.pos < len(p.toks) {
		err = fmt.Errorf("unexpected %q", p.toks[p.pos].text)
	}
	if err != nil {
		return nil, errInvalidField("filter", s, "Invalid list filter expression: "+err.Error()+".")
	}
	return e, nil
}

type tokKind int

const (
	tokWord tokKind = iota
	tokString
	tokOp
	tokLParen
	tokRParen
)

type token struct {
	kind tokKind
	text string
}

func lexFilter(s string) ([]token, error) {
	var out []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case unicode.IsSpace(rune(c)):
			i++
		case c == '(':
			out = append(out, token{tokLParen, "("})
			i++
		case c == ')':
			out = append(out, token{tokRParen, ")"})
			i++
		case c == '"' || c == '\'':
			j := i + 1
			var b strings.Builder
			for j < len(s) && s[j] != c {
				// Only an escaped quote is unescaped: regex escapes such as
				// \b must reach the regex engine intact.
				if s[j] == '\\' && j+1 < len(s) && s[j+1] == c {
					j++
				}
				b.WriteByte(s[j])
				j++
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string")
			}
			out = append(out, token{tokString, b.String()})
			i = j + 1
		case c == '!' && i+1 < len(s) && s[i+1] == '=':
			out = append(out, token{tokOp, "!="})
			i += 2
		case c == '<' || c == '>':
			if i+1 < len(s) && s[i+1] == '=' {
				out = append(out, token{tokOp, s[i : i+2]})
				i += 2
			} else {
				out = append(out, token{tokOp, s[i : i+1]})
				i++
			}
		case c == '=' || c == ':' || c == '~':
			out = append(out, token{tokOp, s[i : i+1]})
			i++
		default:
			j := i
			for j < len(s) && !unicode.IsSpace(rune(s[j])) && !strings.ContainsRune("()=!<>:~\"'", rune(s[j])) {
				j++
			}
			w := s[i:j]
			if w == "eq" || w == "ne" {
				out = append(out, token{tokOp, w})
			} else {
				out = append(out, token{tokWord, w})
			}
			i = j
		}
	}
	return out, nil
}

type filterParser struct {
	toks   []token
	pos    int
	legacy bool
}

func (p *filterParser) peek() (token, bool) {
	if p.pos >= len(p.toks) {
		return token{}, false
	}
	return p.toks[p.pos], true
}

func (p *filterParser) parseOr() (filterExpr, error) {
	left, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for {
		t, ok := p.peek()
		if !ok || t.kind != tokWord || t.text != "OR" {
			return left, nil
		}
		p.pos++
		right, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		left = orExpr{left, right}
	}
}

// parseAnd handles explicit AND and juxtaposition, which also means AND.
func (p *filterParser) parseAnd() (filterExpr, error) {
	left, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	for {
		t, ok := p.peek()
		if !ok || t.kind == tokRParen || (t.kind == tokWord && t.text == "OR") {
			return left, nil
		}
		if t.kind == tokWord && t.text == "AND" {
			p.pos++
		}
		right, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		left = andExpr{left, right}
	}
}

func (p *filterParser) parseUnary() (filterExpr, error) {
	t, ok := p.peek()
	if !ok {
		return nil, fmt.Errorf("unexpected end")
	}
	if t.kind == tokWord && (t.text == "NOT" || t.text == "-") {
		p.pos++
		e, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		return notExpr{e}, nil
	}
	if t.kind == tokLParen {
		p.pos++
		e, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if t, ok := p.peek(); !ok || t.kind != tokRParen {
			return nil, fmt.Errorf("missing ')'")
		}
		p.pos++
		return e, nil
	}
	return p.parseTerm()
}

func (p *filterParser) parseTerm() (filterExpr, error) {
	f, ok := p.peek()
	if !ok || f.kind != tokWord {
		return nil, fmt.Errorf("expected a field name")
	}
	p.pos++
	op, ok := p.peek()
	if !ok || op.kind != tokOp {
		return nil, fmt.Errorf("expected an operator after %q", f.text)
	}
	p.pos++
	v, ok := p.peek()
	if !ok || (v.kind != tokWord && v.kind != tokString) {
		return nil, fmt.Errorf("expected a value after %q", op.text)
	}
	p.pos++
	switch op.text {
	case "eq", "ne", "~":
		re, err := regexp.Compile("^(?:" + v.text + ")$")
		if err != nil {
			return nil, fmt.Errorf("bad regular expression %q", v.text)
		}
		if op.text == "~" {
			re, _ = regexp.Compile(v.text)
		}
		return regexTerm{field: f.text, re: re, negate: op.text == "ne"}, nil
	}
	return cmpTerm{field: f.text, op: op.text, value: v.text, quoted: v.kind == tokString}, nil
}

type andExpr struct{ a, b filterExpr }

func (e andExpr) match(o map[string]any) bool { return e.a.match(o) && e.b.match(o) }
func (e andExpr) fields(add func(string))     { e.a.fields(add); e.b.fields(add) }

type orExpr struct{ a, b filterExpr }

func (e orExpr) match(o map[string]any) bool { return e.a.match(o) || e.b.match(o) }
func (e orExpr) fields(add func(string))     { e.a.fields(add); e.b.fields(add) }

type notExpr struct{ a filterExpr }

func (e notExpr) match(o map[string]any) bool { return !e.a.match(o) }
func (e notExpr) fields(add func(string))     { e.a.fields(add) }

type regexTerm struct {
	field  string
	re     *regexp.Regexp
	negate bool
}

func (t regexTerm) fields(add func(string)) { add(topField(t.field)) }

func (t regexTerm) match(o map[string]any) bool {
	vals := fieldValues(o, t.field)
	if len(vals) == 0 {
		vals = []string{""}
	}
	for _, v := range vals {
		if t.re.MatchString(v) {
			return !t.negate
		}
	}
	return t.negate
}

type cmpTerm struct {
	field, op, value string
	quoted           bool
}

func (t cmpTerm) fields(add func(string)) { add(topField(t.field)) }

func (t cmpTerm) match(o map[string]any) bool {
	vals := fieldValues(o, t.field)
	if t.op == ":" && t.value == "*" && !t.quoted {
		return len(vals) > 0
	}
	if t.op == "!=" {
		for _, v := range vals {
			if compareValues(v, "=", t.value) {
				return false
			}
		}
		return true
	}
	for _, v := range vals {
		if compareValues(v, t.op, t.value) {
			return true
		}
	}
	return false
}

// compareValues compares a field value with a filter literal: numerically
// when both are numbers, else as strings; "=" and ":" accept * wildcards.
func compareValues(v, op, lit string) bool {
	if op == "=" || op == ":" {
		if strings.Contains(lit, "*") {
			pat := "^" + strings.ReplaceAll(regexp.QuoteMeta(lit), `\*`, ".*") + "$"
			ok, _ := regexp.MatchString(pat, v)
			return ok
		}
		if op == ":" {
			return v == lit || strings.HasSuffix(v, "/"+lit)
		}
		return v == lit
	}
	a, errA := strconv.ParseFloat(v, 64)
	b, errB := strconv.ParseFloat(lit, 64)
	if errA == nil && errB == nil {
		switch op {
		case "<":
			return a < b
		case "<=":
			return a <= b
		case ">":
			return a > b
		case ">=":
			return a >= b
		}
	}
	switch op {
	case "<":
		return v < lit
	case "<=":
		return v <= lit
	case ">":
		return v > lit
	case ">=":
		return v >= lit
	}
	return false
}

// fieldValues returns the string values at a dotted path; arrays fan out, so
// `networkInterfaces.networkIP` matches any interface.
func fieldValues(o map[string]any, path string) []string {
	var out []string
	var walk func(v any, parts []string)
	walk = func(v any, parts []string) {
		if len(parts) == 0 {
			switch x := v.(type) {
			case nil:
			case string:
				out = append(out, x)
			case bool:
				out = append(out, strconv.FormatBool(x))
			case float64:
				out = append(out, strconv.FormatFloat(x, 'f', -1, 64))
			case []any:
				for _, e := range x {
					walk(e, nil)
				}
			default:
				out = append(out, fmt.Sprint(x))
			}
			return
		}
		switch x := v.(type) {
		case map[string]any:
			if c, ok := x[parts[0]]; ok {
				walk(c, parts[1:])
			}
		case []any:
			for _, e := range x {
				walk(e, parts)
			}
		}
	}
	walk(o, strings.Split(path, "."))
	return out
}
