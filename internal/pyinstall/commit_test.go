package pyinstall

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeTree creates files (slash path -> content) under dir; a path ending
// in "/" is an empty directory.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, data := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if strings.HasSuffix(p, "/") {
			require.NoError(t, os.MkdirAll(full, 0o755))
			continue
		}
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, []byte(data), 0o644))
	}
}

func withDirs(files map[string]string) map[string]string {
	out := map[string]string{}
	for p, data := range files {
		out[p] = data
		for d := filepath.ToSlash(filepath.Dir(p)); d != "."; d = filepath.ToSlash(filepath.Dir(d)) {
			out[d+"/"] = ""
		}
	}
	return out
}

// The target of most cases: jinja2 3.1.5 with markupsafe, plus a module put
// there by hand and a namespace package shared by two projects.
var existingTarget = map[string]string{
	"jinja2/__init__.py":                     "old jinja2",
	"jinja2/removed_in_316.py":               "old",
	"jinja2-3.1.5.dist-info/METADATA":        "Name: Jinja2\nVersion: 3.1.5\n",
	"jinja2-3.1.5.dist-info/RECORD":          "jinja2/__init__.py,,\njinja2/removed_in_316.py,,\njinja2_ext_old.py,,\njinja2-3.1.5.dist-info/RECORD,,\n",
	"jinja2_ext_old.py":                      "only in 3.1.5",
	"markupsafe/__init__.py":                 "old markupsafe",
	"markupsafe-2.1.5.dist-info/RECORD":      "markupsafe/__init__.py,,\n",
	"handmade.py":                            "mine",
	"nspkg/alpha/__init__.py":                "alpha",
	"nspkg_alpha-1.0.dist-info/RECORD":       "nspkg/alpha/__init__.py,,\n",
	"nspkg/beta/__init__.py":                 "beta",
	"nspkg_beta-1.0.dist-info/RECORD":        "nspkg/beta/__init__.py,,\n",
	"nspkg_beta-1.0.dist-info/top_level.txt": "nspkg\n",
}

func TestPythonCommit(t *testing.T) {
	tests := []struct {
		name       string
		existing   map[string]string // nil: no target directory
		staged     map[string]string
		installing []string
		want       map[string]string // the target afterwards; nil: unchanged
		wantErr    string
	}{
		{
			name:       "new target",
			staged:     map[string]string{"pkg/__init__.py": "new", "pkg-1.0.dist-info/RECORD": "pkg/__init__.py,,\n"},
			installing: []string{"pkg"},
			want:       map[string]string{"pkg/__init__.py": "new", "pkg-1.0.dist-info/RECORD": "pkg/__init__.py,,\n"},
		},
		{
			name:     "upgrade replaces the old version and keeps the rest",
			existing: existingTarget,
			staged: map[string]string{
				"jinja2/__init__.py":            "new jinja2",
				"jinja2-3.1.6.dist-info/RECORD": "jinja2/__init__.py,,\n",
			},
			installing: []string{"jinja2"},
			want: map[string]string{
				"jinja2/__init__.py":                     "new jinja2",
				"jinja2-3.1.6.dist-info/RECORD":          "jinja2/__init__.py,,\n",
				"markupsafe/__init__.py":                 "old markupsafe",
				"markupsafe-2.1.5.dist-info/RECORD":      "markupsafe/__init__.py,,\n",
				"handmade.py":                            "mine",
				"nspkg/alpha/__init__.py":                "alpha",
				"nspkg_alpha-1.0.dist-info/RECORD":       "nspkg/alpha/__init__.py,,\n",
				"nspkg/beta/__init__.py":                 "beta",
				"nspkg_beta-1.0.dist-info/RECORD":        "nspkg/beta/__init__.py,,\n",
				"nspkg_beta-1.0.dist-info/top_level.txt": "nspkg\n",
			},
		},
		{
			name:       "an entry of the same name made by hand is replaced",
			existing:   map[string]string{"handmade.py": "mine", "other.py": "kept"},
			staged:     map[string]string{"handmade.py": "packaged", "handmade-2.0.dist-info/RECORD": "handmade.py,,\n"},
			installing: []string{"handmade"},
			want:       map[string]string{"handmade.py": "packaged", "handmade-2.0.dist-info/RECORD": "handmade.py,,\n", "other.py": "kept"},
		},
		{
			name:       "a namespace shared with a project not being installed",
			existing:   existingTarget,
			staged:     map[string]string{"nspkg/alpha/__init__.py": "alpha 2", "nspkg_alpha-2.0.dist-info/RECORD": "nspkg/alpha/__init__.py,,\n"},
			installing: []string{"nspkg-alpha"},
			wantErr:    "nspkg: it also holds files of nspkg-beta, which is not being installed; install nspkg-beta in the same command",
		},
		{
			name:     "a namespace shared by projects installed together",
			existing: existingTarget,
			staged: map[string]string{
				"nspkg/alpha/__init__.py": "alpha 2", "nspkg_alpha-2.0.dist-info/RECORD": "nspkg/alpha/__init__.py,,\n",
				"nspkg/beta/__init__.py": "beta 2", "nspkg_beta-2.0.dist-info/RECORD": "nspkg/beta/__init__.py,,\n",
			},
			installing: []string{"nspkg-alpha", "nspkg-beta"},
			want: func() map[string]string {
				m := map[string]string{}
				for k, v := range existingTarget {
					if !strings.HasPrefix(k, "nspkg") {
						m[k] = v
					}
				}
				m["nspkg/alpha/__init__.py"] = "alpha 2"
				m["nspkg_alpha-2.0.dist-info/RECORD"] = "nspkg/alpha/__init__.py,,\n"
				m["nspkg/beta/__init__.py"] = "beta 2"
				m["nspkg_beta-2.0.dist-info/RECORD"] = "nspkg/beta/__init__.py,,\n"
				return m
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			target := filepath.Join(root, "vendor")
			if tt.existing != nil {
				writeTree(t, target, tt.existing)
			}
			staging := filepath.Join(root, "vendor.ork-staging-1")
			writeTree(t, staging, tt.staged)
			installing := map[string]bool{}
			for _, n := range tt.installing {
				installing[n] = true
			}
			err := commit(staging, target, installing)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.Equal(t, withDirs(tt.existing), tree(t, target))
			} else {
				require.NoError(t, err)
				assert.Equal(t, withDirs(tt.want), tree(t, target))
			}
			left := names(t, root)
			assert.NotContains(t, strings.Join(left, " "), "backup", "the backup directory is removed")
		})
	}
}

// TestCommitRollback makes every rename of an upgrade fail in turn: the
// target must end up exactly as it was, with no backup left behind.
func TestPythonCommitRollback(t *testing.T) {
	staged := map[string]string{
		"jinja2/__init__.py":                "new jinja2",
		"jinja2-3.1.6.dist-info/RECORD":     "jinja2/__init__.py,,\n",
		"markupsafe/__init__.py":            "new markupsafe",
		"markupsafe-3.0.2.dist-info/RECORD": "markupsafe/__init__.py,,\n",
		"handmade.py":                       "packaged",
	}
	installing := map[string]bool{"jinja2": true, "markupsafe": true, "handmade": true}
	// Count the renames of a successful commit.
	total := 0
	{
		root := t.TempDir()
		writeTree(t, filepath.Join(root, "vendor"), existingTarget)
		writeTree(t, filepath.Join(root, "staging"), staged)
		rename = func(a, b string) error { total++; return os.Rename(a, b) }
		err := commit(filepath.Join(root, "staging"), filepath.Join(root, "vendor"), installing)
		rename = os.Rename
		require.NoError(t, err)
	}
	require.Equal(t, 11, total, "6 entries moved aside, 5 moved in")

	for failAt := 1; failAt <= total; failAt++ {
		root := t.TempDir()
		target := filepath.Join(root, "vendor")
		writeTree(t, target, existingTarget)
		staging := filepath.Join(root, "vendor.ork-staging-1")
		writeTree(t, staging, staged)
		n := 0
		rename = func(a, b string) error {
			n++
			if n == failAt {
				return errors.New("disk on fire")
			}
			return os.Rename(a, b)
		}
		err := commit(staging, target, installing)
		rename = os.Rename
		require.Error(t, err, "failing rename %d", failAt)
		assert.Contains(t, err.Error(), "disk on fire (its previous content was put back)")
		assert.Equal(t, withDirs(existingTarget), tree(t, target), "failing rename %d", failAt)
		assert.Equal(t, []string{"vendor", "vendor.ork-staging-1"}, names(t, root), "failing rename %d", failAt)
	}
}

// TestCommitRollbackFails: when putting back fails too, the error says where
// the previous content is.
func TestPythonCommitRollbackFails(t *testing.T) {
	root := t.TempDir()
	target := filepath.Join(root, "vendor")
	writeTree(t, target, map[string]string{"a.py": "old a", "b.py": "old b"})
	staging := filepath.Join(root, "vendor.ork-staging-1")
	writeTree(t, staging, map[string]string{"a.py": "new a", "b.py": "new b"})
	n := 0
	rename = func(a, b string) error {
		n++
		if n >= 4 && strings.Contains(a, "ork-backup") || n == 4 {
			return errors.New("disk on fire")
		}
		return os.Rename(a, b)
	}
	defer func() { rename = os.Rename }()
	err := commit(staging, target, map[string]bool{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "putting back its previous content failed too")
	assert.Contains(t, err.Error(), "what was replaced is in "+filepath.Join(root, "vendor.ork-backup-"))
}
