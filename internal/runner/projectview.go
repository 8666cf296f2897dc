package runner

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/orkrun/ork/abi"
	"github.com/orkrun/ork/internal/project"
	"github.com/orkrun/ork/runtime"
)

// stateDir is where ork keeps a project's run store, run directories and,
// by convention, its embedded databases. No task may read it: it holds
// every run's outputs and logs and other executors' data.
const stateDir = ".ork"

// projectMounts returns the read-only mounts through which a task sees the
// project at the same relative paths: each top-level directory mounted at
// /NAME, and at / a view directory (under .ork, kept in step with the project
// here) holding hard links to (or copies of) the project's top-level files
// and an empty directory per mounted one, so that listing / shows the
// project. .ork itself is in none of them, and neither are a project's own
// tmp and output, which the task's scratch and output directories would hide
// anyway. A WASI guest can only reach the directories it is given: a mount
// of the whole project could not leave .ork out.
func projectMounts(root string) ([]runtime.Mount, error) {
	view := filepath.Join(root, stateDir, "view")
	if err := os.MkdirAll(view, 0o755); err != nil {
		return nil, fmt.Errorf("preparing the project's view for tasks: %w", err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("reading the project directory: %w", err)
	}
	hidden := map[string]bool{stateDir: true, strings.TrimPrefix(abi.ScratchDir, "/"): true, strings.TrimPrefix(abi.OutputDir, "/"): true}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, err
	}
	mounts := []runtime.Mount{{HostPath: view, GuestPath: "/"}}
	keep := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if hidden[name] {
			continue
		}
		src := filepath.Join(root, name)
		// A link is followed only to something inside the project, as
		// inside the sandbox.
		real, err := filepath.EvalSymlinks(src)
		if err != nil || !project.Within(realRoot, real) || project.Within(filepath.Join(realRoot, stateDir), real) {
			continue
		}
		info, err := os.Stat(real)
		if err != nil {
			continue
		}
		switch {
		case info.IsDir():
			if real == realRoot {
				continue
			}
			if err := ensureDir(filepath.Join(view, name)); err != nil {
				return nil, err
			}
			mounts = append(mounts, runtime.Mount{HostPath: real, GuestPath: "/" + name})
		case info.Mode().IsRegular():
			if err := mirrorFile(real, filepath.Join(view, name)); err != nil {
				return nil, fmt.Errorf("preparing the project's view for tasks: %s: %w", name, err)
			}
		default:
			continue
		}
		keep[name] = true
	}
	stale, err := os.ReadDir(view)
	if err != nil {
		return nil, err
	}
	for _, e := range stale {
		if !keep[e.Name()] && !strings.HasPrefix(e.Name(), ".ork-tmp-") {
			_ = os.RemoveAll(filepath.Join(view, e.Name()))
		}
	}
	sort.Slice(mounts[1:], func(i, j int) bool { return mounts[1+i].GuestPath < mounts[1+j].GuestPath })
	return mounts, nil
}

// ensureDir makes dst an empty directory (a mount point in the view).
func ensureDir(dst string) error {
	if info, err := os.Lstat(dst); err == nil {
		if info.IsDir() {
			return nil
		}
		if err := os.Remove(dst); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dst, 0o755); err != nil && !os.IsExist(err) {
		return err
	}
	return nil
}

// mirrorFile makes dst the same file as src: a hard link, or a copy where
// the file system has none. It replaces dst atomically, so a task of another
// run reading it sees the old file or the new one, never a part.
func mirrorFile(src, dst string) error {
	si, err := os.Stat(src)
	if err != nil {
		return err
	}
	if di, err := os.Lstat(dst); err == nil {
		if os.SameFile(si, di) {
			return nil
		}
		if di.IsDir() {
			if err := os.RemoveAll(dst); err != nil {
				return err
			}
		}
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	tmp := filepath.Join(filepath.Dir(dst), ".ork-tmp-"+hex.EncodeToString(b[:]))
	if err := os.Link(src, tmp); err != nil {
		if err := copyFile(src, tmp, si.Mode().Perm()); err != nil {
			_ = os.Remove(tmp)
			return err
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// removeEscapingLinks removes the symbolic links below dir (a task's output
// directory) that point outside it, and returns their paths relative to
// dir. wasmtime lets a guest create such a link, though not follow it; the
// user, or a tool reading the run's outputs, would.
func removeEscapingLinks(dir string) []string {
	var removed []string
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.Type()&os.ModeSymlink == 0 {
			return nil
		}
		target, err := os.Readlink(path)
		if err != nil {
			return nil
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		if !project.Within(dir, filepath.Clean(target)) {
			if os.Remove(path) == nil {
				rel, _ := filepath.Rel(dir, path)
				removed = append(removed, rel)
			}
		}
		return nil
	})
	return removed
}
