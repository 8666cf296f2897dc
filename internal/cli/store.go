package cli

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/orkrun/ork/internal/project"
	"github.com/orkrun/ork/internal/store"
)

// storePath picks the run store: --db, else $ORK_DB, else .ork/ork.db in the
// project.
func storePath(p *project.Project, flag string) string {
	switch {
	case flag != "":
		return flag
	case os.Getenv("ORK_DB") != "":
		return os.Getenv("ORK_DB")
	}
	return filepath.Join(p.Root, ".ork", "ork.db")
}

func openStore(ctx context.Context, p *project.Project, flag string) (*store.Store, error) {
	return store.Open(ctx, storePath(p, flag))
}

var paramKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)

// parseParams turns key=value flags into JSON-compatible values typed by
// YAML rules: 3 is a number, true a boolean, [a, b] a list, "3" a string.
func parseParams(flags []string) (map[string]any, error) {
	out := map[string]any{}
	for _, f := range flags {
		k, v, ok := strings.Cut(f, "=")
		if !ok || !paramKey.MatchString(k) {
			return nil, fmt.Errorf("--param %q must be key=value with a key of letters, digits, _ . - (e.g. --param day=2026-11-28)", f)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("--param %s is given twice", k)
		}
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(v), &doc); err != nil {
			return nil, fmt.Errorf("--param %s: the value is not valid YAML (%v); quote it to pass it as text", k, err)
		}
		val, err := jsonable(&doc)
		if err != nil {
			return nil, fmt.Errorf("--param %s: %v; quote it to pass it as text", k, err)
		}
		out[k] = val
	}
	return out, nil
}

// jsonable turns a decoded YAML value into a JSON-compatible one: a
// timestamp stays the text the user wrote (2026-11-28, not a Go time) at any
// depth, and mapping keys become strings.
func jsonable(n *yaml.Node) (any, error) {
	return nodeValue(n, 0)
}

// maxParamDepth bounds nesting (and alias expansion) in a --param value.
const maxParamDepth = 100

func nodeValue(n *yaml.Node, depth int) (any, error) {
	if depth > maxParamDepth {
		return nil, fmt.Errorf("the value nests deeper than %d levels", maxParamDepth)
	}
	switch n.Kind {
	case 0:
		return nil, nil // an empty value
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return nodeValue(n.Content[0], depth+1)
	case yaml.AliasNode:
		return nodeValue(n.Alias, depth+1)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := nodeValue(c, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			if key.ShortTag() == "!!merge" {
				if err := mergeInto(out, val, depth+1); err != nil {
					return nil, err
				}
				continue
			}
			if key.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("a mapping key must be plain text, not a %s", kindName(key.Kind))
			}
			v, err := nodeValue(val, depth+1)
			if err != nil {
				return nil, err
			}
			out[key.Value] = v
		}
		return out, nil
	case yaml.ScalarNode:
		if n.ShortTag() == "!!timestamp" {
			return n.Value, nil
		}
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, err
		}
		if f, ok := v.(float64); ok && (math.IsInf(f, 0) || math.IsNaN(f)) {
			return nil, fmt.Errorf("%s is not a finite number, which JSON can't hold", n.Value)
		}
		return v, nil
	}
	return nil, fmt.Errorf("unexpected YAML node kind %d", n.Kind)
}

// mergeInto applies a merge key (<<: *base, or a list of them): keys
// already in out win.
func mergeInto(out map[string]any, n *yaml.Node, depth int) error {
	v, err := nodeValue(n, depth)
	if err != nil {
		return err
	}
	var maps []any
	switch x := v.(type) {
	case map[string]any:
		maps = []any{x}
	case []any:
		maps = x
	default:
		return fmt.Errorf("a merge key (<<) needs a mapping or a list of mappings")
	}
	for _, m := range maps {
		mm, ok := m.(map[string]any)
		if !ok {
			return fmt.Errorf("a merge key (<<) needs a mapping or a list of mappings")
		}
		for k, e := range mm {
			if _, set := out[k]; !set {
				out[k] = e
			}
		}
	}
	return nil
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.SequenceNode:
		return "list"
	case yaml.MappingNode:
		return "mapping"
	}
	return "value"
}
