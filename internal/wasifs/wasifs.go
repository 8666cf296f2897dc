// Package wasifs mounts host directories into wazero sandboxes so that no
// path a guest uses can leave its mount, symbolic links included.
//
// wazero's own directory mounts refuse a path that climbs out lexically
// ("../../etc/passwd") but follow symbolic links wherever they point, so a
// guest with a writable directory could create tmp/e -> ../../../proc/self
// and read or write any host file. Here every path is resolved on the host,
// one component at a time, before wazero's file system sees it: a link that
// leads above the mount, or is absolute, fails with EPERM (as wasmtime, whose
// WASI follows links only beneath a preopened directory, refuses it), and a
// guest cannot create such a link in the first place.
//
// Resolving and then using the path is safe from races because nothing else
// changes a mount while its task runs: a guest is single-threaded, the
// project is read-only to every task, and writable mounts (scratch, output)
// belong to one task.
package wasifs

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tetratelabs/wazero"
	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/sys"
)

// maxLinks is how many symbolic links one path may go through, as Linux's
// MAXSYMLINKS.
const maxLinks = 40

// Mount adds hostDir to cfg at guestPath, writable or read-only, with every
// path kept beneath hostDir.
func Mount(cfg wazero.FSConfig, hostDir, guestPath string, writable bool) wazero.FSConfig {
	var base experimentalsys.FS = sysfs.DirFS(hostDir)
	if !writable {
		base = &sysfs.ReadFS{FS: base}
	}
	return cfg.(sysfs.FSConfig).WithSysFSMount(New(base, hostDir), guestPath)
}

// New wraps fs, a file system rooted at the host directory root, so that
// every path is resolved beneath root.
func New(fs experimentalsys.FS, root string) experimentalsys.FS {
	return &beneath{FS: fs, root: root}
}

type beneath struct {
	experimentalsys.FS
	root string
}

// split returns the components of a slash-separated path, without empty
// ones and ".".
func split(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// resolve returns name (relative to the mount) with every symbolic link on
// the way replaced by its target, the last component's only when follow is
// set, or EPERM if that leaves the mount. A component that does not exist
// ends the resolution: the rest cannot be reached through it either, and the
// operation then fails (or creates it) as it would have.
func (b *beneath) resolve(name string, follow bool) (string, experimentalsys.Errno) {
	rest := split(name)
	var done []string
	links := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		if c == ".." {
			if len(done) == 0 {
				return "", experimentalsys.EPERM
			}
			done = done[:len(done)-1]
			continue
		}
		if len(rest) == 0 && !follow {
			done = append(done, c)
			break
		}
		host := filepath.Join(b.root, filepath.Join(done...), c)
		fi, err := os.Lstat(host)
		if err != nil {
			done = append(append(done, c), rest...)
			break
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = append(done, c)
			continue
		}
		if links++; links > maxLinks {
			return "", experimentalsys.ELOOP
		}
		target, err := os.Readlink(host)
		if err != nil {
			return "", experimentalsys.UnwrapOSError(err)
		}
		if strings.HasPrefix(target, "/") {
			return "", experimentalsys.EPERM
		}
		rest = append(split(target), rest...)
	}
	return strings.Join(done, "/"), 0
}

func (b *beneath) OpenFile(path string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	p, errno := b.resolve(path, flag&experimentalsys.O_NOFOLLOW == 0)
	if errno != 0 {
		return nil, errno
	}
	return b.FS.OpenFile(p, flag, perm)
}

func (b *beneath) Lstat(path string) (st sys.Stat_t, errno experimentalsys.Errno) {
	p, errno := b.resolve(path, false)
	if errno != 0 {
		return st, errno
	}
	return b.FS.Lstat(p)
}

func (b *beneath) Stat(path string) (st sys.Stat_t, errno experimentalsys.Errno) {
	p, errno := b.resolve(path, true)
	if errno != 0 {
		return st, errno
	}
	return b.FS.Stat(p)
}

func (b *beneath) Mkdir(path string, perm fs.FileMode) experimentalsys.Errno {
	p, errno := b.resolve(path, false)
	if errno != 0 {
		return errno
	}
	return b.FS.Mkdir(p, perm)
}

func (b *beneath) Chmod(path string, perm fs.FileMode) experimentalsys.Errno {
	p, errno := b.resolve(path, true)
	if errno != 0 {
		return errno
	}
	return b.FS.Chmod(p, perm)
}

func (b *beneath) Rename(from, to string) experimentalsys.Errno {
	f, errno := b.resolve(from, false)
	if errno != 0 {
		return errno
	}
	t, errno := b.resolve(to, false)
	if errno != 0 {
		return errno
	}
	return b.FS.Rename(f, t)
}

func (b *beneath) Rmdir(path string) experimentalsys.Errno {
	p, errno := b.resolve(path, false)
	if errno != 0 {
		return errno
	}
	return b.FS.Rmdir(p)
}

func (b *beneath) Unlink(path string) experimentalsys.Errno {
	p, errno := b.resolve(path, false)
	if errno != 0 {
		return errno
	}
	return b.FS.Unlink(p)
}

func (b *beneath) Link(oldPath, newPath string) experimentalsys.Errno {
	o, errno := b.resolve(oldPath, false)
	if errno != 0 {
		return errno
	}
	n, errno := b.resolve(newPath, false)
	if errno != 0 {
		return errno
	}
	return b.FS.Link(o, n)
}

// Symlink creates a link only if its target, read from where the link is,
// stays beneath the mount: a link that cannot be followed has no use in a
// sandbox, and the host user may follow it later.
func (b *beneath) Symlink(oldPath, linkName string) experimentalsys.Errno {
	l, errno := b.resolve(linkName, false)
	if errno != 0 {
		return errno
	}
	if strings.HasPrefix(oldPath, "/") {
		return experimentalsys.EPERM
	}
	depth := len(split(l)) - 1 // the link's directory
	for _, c := range split(oldPath) {
		if c == ".." {
			if depth--; depth < 0 {
				return experimentalsys.EPERM
			}
		} else {
			depth++
		}
	}
	return b.FS.Symlink(oldPath, l)
}

func (b *beneath) Readlink(path string) (string, experimentalsys.Errno) {
	p, errno := b.resolve(path, false)
	if errno != 0 {
		return "", errno
	}
	return b.FS.Readlink(p)
}

func (b *beneath) Utimens(path string, atim, mtim int64) experimentalsys.Errno {
	p, errno := b.resolve(path, true)
	if errno != 0 {
		return errno
	}
	return b.FS.Utimens(p, atim, mtim)
}
