// Package redact removes secret values from text and JSON before they reach
// logs, errors, outputs or the run store.
package redact

import (
	"encoding/json"
	"sort"
	"strings"
)

// Mask replaces a secret value.
const Mask = "[redacted]"

// Redactor replaces known secret values. The zero value redacts nothing.
type Redactor struct {
	r  *strings.Replacer
	vs []string // the values, longest first
}

// New returns a Redactor for values (empty values are ignored). Longer values
// are replaced first, so a secret containing another is masked whole; each
// value is also matched in its JSON-escaped form.
func New(values ...string) *Redactor {
	seen := map[string]bool{}
	var vs []string
	add := func(v string) {
		if v != "" && !seen[v] {
			seen[v] = true
			vs = append(vs, v)
		}
	}
	for _, v := range values {
		add(v)
		if b, err := json.Marshal(v); err == nil {
			add(string(b[1 : len(b)-1]))
		}
	}
	if len(vs) == 0 {
		return &Redactor{}
	}
	sort.Slice(vs, func(i, j int) bool { return len(vs[i]) > len(vs[j]) })
	pairs := make([]string, 0, 2*len(vs))
	for _, v := range vs {
		pairs = append(pairs, v, Mask)
	}
	return &Redactor{r: strings.NewReplacer(pairs...), vs: vs}
}

// CutTail masks s, text cut short, and also a start of a secret it ends
// with: the rest of that secret was cut off, so String cannot match it.
func (r *Redactor) CutTail(s string) string {
	if r == nil || r.r == nil {
		return s
	}
	s = r.r.Replace(s)
	cut := 0 // the longest start of a secret s ends with
	for _, v := range r.vs {
		for k := min(len(v)-1, len(s)); k > cut; k-- {
			if strings.HasSuffix(s, v[:k]) {
				cut = k
				break
			}
		}
	}
	if cut == 0 {
		return s
	}
	return s[:len(s)-cut] + Mask
}

// String masks every secret in s.
func (r *Redactor) String(s string) string {
	if r == nil || r.r == nil {
		return s
	}
	return r.r.Replace(s)
}

// JSON masks every secret in a JSON document; the result stays valid JSON
// because values are matched in their escaped form inside strings.
func (r *Redactor) JSON(b json.RawMessage) json.RawMessage {
	if r == nil || r.r == nil || len(b) == 0 {
		return b
	}
	out := r.r.Replace(string(b))
	if !json.Valid([]byte(out)) {
		return json.RawMessage(`"` + Mask + `"`)
	}
	return json.RawMessage(out)
}

// Fields masks secrets in log fields (keys and string values, recursively).
func (r *Redactor) Fields(f map[string]any) map[string]any {
	if r == nil || r.r == nil || f == nil {
		return f
	}
	out := make(map[string]any, len(f))
	for k, v := range f {
		out[r.String(k)] = r.value(v)
	}
	return out
}

func (r *Redactor) value(v any) any {
	switch x := v.(type) {
	case string:
		return r.String(x)
	case map[string]any:
		return r.Fields(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = r.value(e)
		}
		return out
	}
	return v
}

// Active reports whether there is anything to redact.
func (r *Redactor) Active() bool { return r != nil && r.r != nil }
