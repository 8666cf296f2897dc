package pyinstall

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// rename is os.Rename; tests replace it to fail midway.
var rename = os.Rename

// commit moves the top-level entries of staging into target. Entries of the
// same name are replaced, and so are the files of earlier versions of the
// projects being installed (found through their dist-info RECORD). Replaced
// entries are kept in a backup directory beside target until every rename
// succeeded; on failure they are put back, so target keeps its previous
// content.
func commit(staging, target string, installing map[string]bool) error {
	if _, err := os.Lstat(target); errors.Is(err, fs.ErrNotExist) {
		return rename(staging, target)
	} else if err != nil {
		return err
	}
	ents, err := os.ReadDir(staging)
	if err != nil {
		return err
	}
	newEntries := make([]string, 0, len(ents))
	for _, e := range ents {
		newEntries = append(newEntries, e.Name())
	}
	old, err := installedDists(target)
	if err != nil {
		return err
	}
	owners := map[string][]string{} // top-level entry -> projects owning files in it
	for _, d := range old {
		for _, e := range d.entries {
			owners[e] = append(owners[e], d.name)
		}
	}

	move := map[string]bool{} // target entries to move aside
	for _, e := range newEntries {
		if _, err := os.Lstat(filepath.Join(target, e)); err == nil {
			for _, o := range owners[e] {
				if !installing[o] {
					return fmt.Errorf("cannot replace %s: it also holds files of %s, which is not being installed; install %s in the same command", filepath.Join(target, e), o, o)
				}
			}
			move[e] = true
		}
	}
	for _, d := range old {
		if !installing[d.name] {
			continue
		}
		// An earlier version of a project being installed: remove what it
		// installed, except what other projects still use.
	entries:
		for _, e := range d.entries {
			for _, o := range owners[e] {
				if !installing[o] {
					continue entries
				}
			}
			if _, err := os.Lstat(filepath.Join(target, e)); err == nil {
				move[e] = true
			}
		}
	}

	backup, err := os.MkdirTemp(filepath.Dir(target), filepath.Base(target)+".ork-backup-")
	if err != nil {
		return err
	}
	var movedAside, movedIn []string
	undo := func(cause error) error {
		var errs []error
		for i := len(movedIn) - 1; i >= 0; i-- {
			e := movedIn[i]
			if err := rename(filepath.Join(target, e), filepath.Join(staging, e)); err != nil {
				if err := os.RemoveAll(filepath.Join(target, e)); err != nil {
					errs = append(errs, err)
				}
			}
		}
		for i := len(movedAside) - 1; i >= 0; i-- {
			e := movedAside[i]
			if err := rename(filepath.Join(backup, e), filepath.Join(target, e)); err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("installing into %s: %w; putting back its previous content failed too (%v): what was replaced is in %s", target, cause, errors.Join(errs...), backup)
		}
		os.RemoveAll(backup)
		return fmt.Errorf("installing into %s: %w (its previous content was put back)", target, cause)
	}
	for _, e := range slices.Sorted(maps.Keys(move)) {
		if err := rename(filepath.Join(target, e), filepath.Join(backup, e)); err != nil {
			return undo(err)
		}
		movedAside = append(movedAside, e)
	}
	for _, e := range newEntries {
		if err := rename(filepath.Join(staging, e), filepath.Join(target, e)); err != nil {
			return undo(err)
		}
		movedIn = append(movedIn, e)
	}
	os.RemoveAll(backup)
	return nil
}

// dist is a project installed in a target directory.
type dist struct {
	name    string   // normalized
	entries []string // top-level entries holding its files, with its dist-info
}

// installedDists lists the projects installed in dir, from their dist-info
// directories.
func installedDists(dir string) ([]dist, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []dist
	for _, e := range ents {
		if !e.IsDir() || !strings.HasSuffix(e.Name(), ".dist-info") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(e.Name(), ".dist-info"), "-")
		d := dist{name: normalize(name)}
		tops := map[string]bool{e.Name(): true}
		if rec, err := os.ReadFile(filepath.Join(dir, e.Name(), "RECORD")); err == nil {
			r := csv.NewReader(bytes.NewReader(rec))
			r.FieldsPerRecord = -1
			rows, _ := r.ReadAll() // a damaged RECORD only loses ownership
			for _, row := range rows {
				if len(row) == 0 || row[0] == "" || strings.HasPrefix(row[0], "/") {
					continue
				}
				p := path.Clean(filepath.ToSlash(row[0]))
				if p == "." || p == ".." || strings.HasPrefix(p, "../") {
					continue
				}
				top, _, _ := strings.Cut(p, "/")
				tops[top] = true
			}
		}
		d.entries = slices.Sorted(maps.Keys(tops))
		out = append(out, d)
	}
	return out, nil
}
