package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

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
		var val any
		if err := yaml.Unmarshal([]byte(v), &val); err != nil {
			return nil, fmt.Errorf("--param %s: the value is not valid YAML (%v); quote it to pass it as text", k, err)
		}
		out[k] = jsonable(val, v)
	}
	return out, nil
}

// jsonable keeps what YAML decoded as a timestamp as the text the user wrote,
// and makes maps JSON objects.
func jsonable(v any, raw string) any {
	switch x := v.(type) {
	case time.Time:
		return strings.TrimSpace(raw)
	case map[string]any:
		for k, e := range x {
			x[k] = jsonable(e, fmt.Sprint(e))
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = jsonable(e, fmt.Sprint(e))
		}
		return x
	}
	return v
}
