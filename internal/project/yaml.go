package project

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// parseYAML parses data as a single YAML document and returns its root
// node, or nil when the document is empty (no content, only comments, or a
// lone null). file is the display path used in errors.
func parseYAML(file string, data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, yamlSyntaxError(file, data, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, yamlSyntaxError(file, data, err)
	default:
		line := next.Line
		if line == 0 {
			line = 1
		}
		return nil, &Error{Pos: Pos{File: file, Line: line, Column: 1},
			Msg: "a second YAML document starts here; keep everything in one document and remove the extra \"---\""}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	return root, nil
}

var (
	yamlLineRe          = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	yamlUnknownAnchorRe = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)
)

// yaml.v3 reports these parser (as opposed to scanner) problems with a
// 0-based line number, and leaves the line out when it is 0.
var yamlParserProblems = map[string]bool{
	"did not find expected key":              true,
	"did not find expected '-' indicator":    true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found undefined tag handle":             true,
	"did not find expected <document start>": true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"did not find expected <stream-start>":   true,
}

// yamlSyntaxError turns a yaml.v3 parse error ("yaml: line N: problem")
// into an *Error positioned in file. yaml.v3 reports no columns and, for
// some problems, the line where the enclosing construct starts, so the
// line is refined to the first line at which the problem shows up, and the
// column is that of the line's first non-blank character.
func yamlSyntaxError(file string, data []byte, err error) error {
	msg := err.Error()
	if m := yamlUnknownAnchorRe.FindStringSubmatch(msg); m != nil {
		line, col := locate(data, findAlias(data, m[1]))
		return &Error{Pos: Pos{File: file, Line: line, Column: col},
			Msg: fmt.Sprintf("invalid YAML: alias *%s refers to an unknown anchor; define it with &%s before using it", m[1], m[1])}
	}
	line, problem := yamlProblem(msg)
	if yamlParserProblems[problem] {
		line++ // 0-based in yaml.v3
	}
	col := 0
	if off := badByte(data); off >= 0 && (problem == "control characters are not allowed" || strings.Contains(problem, "UTF-8")) {
		line, col = locate(data, off)
	} else if k := firstFailingLine(data, problem); k > 0 {
		line = k
	}
	lines := bytes.Split(data, []byte("\n"))
	line = max(1, min(line, len(lines)))
	if col == 0 {
		text := lines[line-1]
		col = utf8.RuneCount(text[:len(text)-len(bytes.TrimLeft(text, " "))]) + 1
	}
	return &Error{Pos: Pos{File: file, Line: line, Column: col},
		Msg: fmt.Sprintf("invalid YAML: %s; check the indentation, quoting and brackets here", problem)}
}

// yamlProblem splits a yaml.v3 error message into its line (0 when
// absent) and problem.
func yamlProblem(msg string) (int, string) {
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return line, m[2]
	}
	return 0, strings.TrimPrefix(msg, "yaml: ")
}

// maxRefineLines bounds the files whose syntax errors are located by
// re-parsing prefixes (quadratic in the number of lines).
const maxRefineLines = 2000

// firstFailingLine returns the smallest k such that parsing the first k
// lines of data fails with problem, or 0.
func firstFailingLine(data []byte, problem string) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) > maxRefineLines {
		return 0
	}
	size := 0
	for k := 1; k <= len(lines); k++ {
		size += len(lines[k-1])
		dec := yaml.NewDecoder(bytes.NewReader(data[:size]))
		for {
			var n yaml.Node
			err := dec.Decode(&n)
			if err == nil {
				continue
			}
			if _, p := yamlProblem(err.Error()); p == problem {
				return k
			}
			break
		}
	}
	return 0
}

// findAlias returns the offset of the first "*name" alias in data, or -1.
func findAlias(data []byte, name string) int {
	pat := []byte("*" + name)
	for off := 0; ; {
		i := bytes.Index(data[off:], pat)
		if i < 0 {
			return -1
		}
		end := off + i + len(pat)
		if end == len(data) || strings.IndexByte(" \t\r\n,[]{}", data[end]) >= 0 {
			return off + i
		}
		off += i + 1
	}
}

// badByte returns the offset of the first byte YAML does not accept
// (invalid UTF-8 or a control character other than tab, CR and LF), or -1.
func badByte(data []byte) int {
	for off := 0; off < len(data); {
		r, size := utf8.DecodeRune(data[off:])
		if r == utf8.RuneError && size <= 1 {
			return off
		}
		if (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f || (r >= 0x80 && r < 0xa0 && r != 0x85) {
			return off
		}
		off += size
	}
	return -1
}

// locate converts a byte offset into a 1-based line and column (in runes).
// A negative offset gives 0, 0.
func locate(data []byte, off int) (line, col int) {
	if off < 0 || off > len(data) {
		return 0, 0
	}
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	start := bytes.LastIndexByte(before, '\n') + 1
	return line, utf8.RuneCount(before[start:]) + 1
}

// deref follows alias nodes to the node they stand for.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// isNull says whether n is absent or a YAML null.
func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// describe names the kind of value n holds, for "expected X, got Y".
func describe(n *yaml.Node) string {
	n = deref(n)
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!str":
			return fmt.Sprintf("a string (%q)", n.Value)
		case "!!int":
			return fmt.Sprintf("an integer (%s)", n.Value)
		case "!!float":
			return fmt.Sprintf("a number (%s)", n.Value)
		case "!!bool":
			return fmt.Sprintf("a boolean (%s)", n.Value)
		case "!!null":
			return "null (no value)"
		case "!!timestamp":
			return fmt.Sprintf("a timestamp (%s)", n.Value)
		default:
			return fmt.Sprintf("a value tagged %s", n.Tag)
		}
	}
	return "an unsupported YAML node"
}

// fileDecoder decodes the nodes of one file, reporting problems to a
// collector.
type fileDecoder struct {
	later []func() // checks that need the whole file (references between sections)
	file  string   // display path
	c     *collector
}

func (d *fileDecoder) pos(n *yaml.Node) Pos {
	if n == nil {
		return Pos{File: d.file, Line: 1, Column: 1}
	}
	return Pos{File: d.file, Line: n.Line, Column: n.Column}
}

func (d *fileDecoder) errorf(n *yaml.Node, format string, args ...any) {
	d.c.addf(d.pos(n), format, args...)
}

// pair is one key/value of a mapping.
type pair struct {
	Key   *yaml.Node // the key as written (for positions)
	Value *yaml.Node // the value as written (may be an alias)
	Name  string
}

// pairs returns the entries of mapping m in file order. Keys that are not
// scalars and repeated keys are reported and left out. Merge keys ("<<:
// *anchor") are expanded in place; keys written in m win over merged ones.
// noun names what a key is ("key", "task", "executor") and where says
// where the mapping is ("in task \"load\"").
func (d *fileDecoder) pairs(m *yaml.Node, noun, where string) []pair {
	return d.pairsDepth(m, noun, where, 0)
}

// maxMergeDepth bounds nested merge keys (and breaks merge cycles).
const maxMergeDepth = 16

func (d *fileDecoder) pairsDepth(m *yaml.Node, noun, where string, depth int) []pair {
	m = deref(m)
	explicit := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := deref(m.Content[i]); k.Kind == yaml.ScalarNode && k.Tag != "!!merge" {
			explicit[k.Value] = true
		}
	}
	var out []pair
	first := map[string]*yaml.Node{}
	merged := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		kd := deref(k)
		if kd.Kind != yaml.ScalarNode {
			d.errorf(k, "invalid %s %s: expected a name, got %s; use a plain name as the key", noun, where, describe(kd))
			continue
		}
		if kd.Tag == "!!merge" {
			for _, mm := range d.mergeSources(v, where, depth) {
				for _, p := range d.pairsDepth(mm, noun, where, depth+1) {
					if !explicit[p.Name] && !merged[p.Name] {
						merged[p.Name] = true
						out = append(out, p)
					}
				}
			}
			continue
		}
		if prev, ok := first[kd.Value]; ok {
			d.errorf(k, "duplicate %s %q %s; it is already defined at line %d, so remove or rename one of them", noun, kd.Value, where, prev.Line)
			continue
		}
		first[kd.Value] = k
		out = append(out, pair{Key: k, Value: v, Name: kd.Value})
	}
	return out
}

// mergeSources returns the mappings named by the value of a merge key: a
// mapping or a list of mappings.
func (d *fileDecoder) mergeSources(v *yaml.Node, where string, depth int) []*yaml.Node {
	if depth >= maxMergeDepth {
		d.errorf(v, "merge keys (<<) %s are nested too deeply or refer to themselves; write the keys out", where)
		return nil
	}
	items := []*yaml.Node{v}
	if vd := deref(v); vd.Kind == yaml.SequenceNode {
		items = vd.Content
	}
	var out []*yaml.Node
	for _, it := range items {
		if deref(it).Kind != yaml.MappingNode {
			d.errorf(it, "invalid merge (<<) %s: expected a mapping or a list of mappings, got %s", where, describe(it))
			continue
		}
		out = append(out, it)
	}
	return out
}

// fields is pairs for a mapping with a fixed set of keys: unknown keys are
// reported (with a suggestion) and left out. covered holds the allowed keys
// that are present or that an unknown key was suggested for, so that a
// misspelt required key is reported once, as unknown, not also as missing.
func (d *fileDecoder) fields(m *yaml.Node, where string, allowed []string) (out []pair, covered map[string]bool) {
	covered = map[string]bool{}
	for _, p := range d.pairs(m, "key", where) {
		if !contains(allowed, p.Name) {
			if s := suggest(p.Name, allowed); s != "" {
				covered[s] = true
			}
			d.errorf(p.Key, "unknown key %q %s%sallowed keys: %s", p.Name, where, suggestSep(p.Name, allowed), strings.Join(allowed, ", "))
			continue
		}
		covered[p.Name] = true
		out = append(out, p)
	}
	return out, covered
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// mapping checks that n is a mapping (or null, when nullOK) and reports
// "expected ..., got ..." otherwise. what names the value ("executors in
// ork.yaml"), expected describes it ("a mapping of executor names to
// executors").
func (d *fileDecoder) mapping(n *yaml.Node, what, expected string, nullOK bool) bool {
	nd := deref(n)
	if nullOK && isNull(nd) {
		return false
	}
	if nd.Kind != yaml.MappingNode {
		d.errorf(n, "invalid %s: expected %s, got %s", what, expected, describe(nd))
		return false
	}
	return true
}

// sequence is mapping for lists.
func (d *fileDecoder) sequence(n *yaml.Node, what, expected string) ([]*yaml.Node, bool) {
	nd := deref(n)
	if isNull(nd) {
		return nil, true
	}
	if nd.Kind != yaml.SequenceNode {
		d.errorf(n, "invalid %s: expected %s, got %s", what, expected, describe(nd))
		return nil, false
	}
	return nd.Content, true
}

// str returns the string value of n. A null, a non-string scalar or a
// collection is reported; hint says what a valid value looks like.
func (d *fileDecoder) str(n *yaml.Node, what, hint string) (string, bool) {
	nd := deref(n)
	switch {
	case isNull(nd):
		d.errorf(n, "missing value for %s; %s", what, hint)
		return "", false
	case nd.Kind == yaml.ScalarNode && nd.Tag == "!!str":
		if nd.Value == "" {
			d.errorf(n, "empty %s; %s", what, hint)
			return "", false
		}
		return nd.Value, true
	case nd.Kind == yaml.ScalarNode:
		d.errorf(n, "invalid %s: expected a string, got %s; quote it if you mean the text %q", what, describe(nd), nd.Value)
	default:
		d.errorf(n, "invalid %s: expected a string, got %s; %s", what, describe(nd), hint)
	}
	return "", false
}

// maxConfigValues bounds the size of a decoded config after alias
// expansion, so that a few lines of nested aliases cannot exhaust memory.
const maxConfigValues = 1 << 20

// freeform decodes n into JSON-compatible values: map[string]any, []any,
// string, int64, float64, bool and nil. Aliases and merge keys are
// expanded; non-string keys and values JSON cannot hold are reported.
// where names the value ("config of executor \"csv\"").
func (d *fileDecoder) freeform(n *yaml.Node, where string) (any, bool) {
	st := &ffState{budget: maxConfigValues, active: map[*yaml.Node]bool{}, root: n}
	v := d.ffValue(n, where, st)
	return v, !st.failed
}

type ffState struct {
	root   *yaml.Node // the value being decoded, where size errors are reported
	budget int
	active map[*yaml.Node]bool // alias nodes being expanded
	failed bool
	over   bool
}

func (d *fileDecoder) fferr(st *ffState, n *yaml.Node, format string, args ...any) {
	st.failed = true
	d.errorf(n, format, args...)
}

func (d *fileDecoder) ffValue(n *yaml.Node, where string, st *ffState) any {
	if st.over {
		return nil
	}
	st.budget--
	if st.budget < 0 {
		st.over = true
		d.fferr(st, st.root, "%s is too large: it expands to more than %d values through aliases; simplify it", where, maxConfigValues)
		return nil
	}
	switch n.Kind {
	case yaml.AliasNode:
		if st.active[n] || n.Alias == nil {
			d.fferr(st, n, "alias *%s in %s refers to a value that contains it; JSON can't hold recursive values, so remove the alias", n.Value, where)
			return nil
		}
		st.active[n] = true
		v := d.ffValue(n.Alias, where, st)
		delete(st.active, n)
		return v
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			out = append(out, d.ffValue(c, where, st))
		}
		return out
	case yaml.MappingNode:
		return d.ffMapping(n, where, st)
	case yaml.ScalarNode:
		return d.ffScalar(n, where, st)
	}
	d.fferr(st, n, "unsupported YAML node in %s", where)
	return nil
}

func (d *fileDecoder) ffMapping(n *yaml.Node, where string, st *ffState) map[string]any {
	out := map[string]any{}
	first := map[string]*yaml.Node{}
	var merges []map[string]any
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		kd := deref(k)
		if kd.Kind == yaml.ScalarNode && kd.Tag == "!!merge" {
			merges = append(merges, d.ffMerge(v, where, st)...)
			continue
		}
		if kd.Kind != yaml.ScalarNode || kd.Tag != "!!str" {
			hint := "use a string key"
			if kd.Kind == yaml.ScalarNode {
				hint = fmt.Sprintf("quote it: %q", kd.Value)
			}
			d.fferr(st, k, "invalid key in %s: expected a string, got %s; JSON objects only have string keys, so %s", where, describe(kd), hint)
			continue
		}
		if prev, ok := first[kd.Value]; ok {
			d.fferr(st, k, "duplicate key %q in %s; it is already defined at line %d, so remove or rename one of them", kd.Value, where, prev.Line)
			continue
		}
		first[kd.Value] = k
		out[kd.Value] = d.ffValue(v, where, st)
	}
	// Explicit keys win over merged ones; earlier merged mappings win over later ones.
	for _, m := range merges {
		for k, v := range m {
			if _, ok := out[k]; !ok {
				out[k] = v
			}
		}
	}
	return out
}

// ffMerge decodes the value of a "<<" merge key: a mapping or a list of
// mappings.
func (d *fileDecoder) ffMerge(v *yaml.Node, where string, st *ffState) []map[string]any {
	one := func(n *yaml.Node) map[string]any {
		if deref(n).Kind != yaml.MappingNode {
			d.fferr(st, n, "invalid merge (<<) in %s: expected a mapping or a list of mappings, got %s", where, describe(n))
			return nil
		}
		m, _ := d.ffValue(n, where, st).(map[string]any)
		return m
	}
	if vd := deref(v); vd.Kind == yaml.SequenceNode {
		var out []map[string]any
		for _, c := range vd.Content {
			if m := one(c); m != nil {
				out = append(out, m)
			}
		}
		return out
	}
	if m := one(v); m != nil {
		return []map[string]any{m}
	}
	return nil
}

func (d *fileDecoder) ffScalar(n *yaml.Node, where string, st *ffState) any {
	switch n.Tag {
	case "!!str", "!!timestamp":
		return n.Value
	case "!!null":
		return nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			d.fferr(st, n, "invalid boolean %q in %s; use true or false", n.Value, where)
			return nil
		}
		return b
	case "!!int":
		var v any
		if err := n.Decode(&v); err != nil {
			d.fferr(st, n, "invalid integer %q in %s; write a plain integer or quote the value", n.Value, where)
			return nil
		}
		switch x := v.(type) {
		case int:
			return int64(x)
		case int64:
			return x
		case uint64:
			if x <= math.MaxInt64 {
				return int64(x)
			}
		case float64:
			return x
		}
		d.fferr(st, n, "integer %s in %s is out of range; use a value between %d and %d or quote it", n.Value, where, int64(math.MinInt64), int64(math.MaxInt64))
		return nil
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			d.fferr(st, n, "invalid number %q in %s; write a plain number or quote the value", n.Value, where)
			return nil
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			d.fferr(st, n, "%s in %s is not a finite number, which JSON can't hold; quote it if you mean the text %q", n.Value, where, n.Value)
			return nil
		}
		return f
	case "!!binary":
		d.fferr(st, n, "binary value in %s can't be represented in JSON; remove the !!binary tag to keep the base64 text as a string", where)
		return nil
	}
	d.fferr(st, n, "unsupported YAML tag %s in %s; remove the tag or quote the value", n.Tag, where)
	return nil
}
