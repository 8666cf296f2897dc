package pyinstall

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// wheel is a wheel file, inspected but not yet unpacked.
type wheel struct {
	File     string // path of the .whl file
	Name     string // project name as published (METADATA Name)
	Version  string // METADATA Version
	DistInfo string // the wheel's NAME-VERSION.dist-info directory
	// Native lists the compiled files the wheel would install (extension
	// modules and the shared libraries in *.libs directories), by size,
	// largest first; Extensions is the same without the *.libs directories.
	Native     []string
	Extensions []string
	// Modules are the top-level importable names the wheel installs.
	Modules []string
	// Entries are the top-level names the wheel installs (modules, data
	// files, the dist-info directory), after dropping what is left out.
	Entries []string
	files   []wheelFile
	skip    []string // modules not to import-check (see speedup)
	// native is the refusal for a wheel whose compiled files were left out
	// on trust (not a known speed-up): if one of its modules then fails to
	// import in the sandbox, the package needs its native code.
	native *Refusal
	closer io.Closer // the open zip file
}

func (w *wheel) close() {
	if w.closer != nil {
		w.closer.Close()
		w.closer = nil
	}
}

// wheelFile is one member of a wheel and where it goes.
type wheelFile struct {
	f    *zip.File
	dest string // slash path relative to the install directory; "" = skipped
	size uint64
}

var (
	wheelFileRe = regexp.MustCompile(`^([^-]+)-([^-]+)(?:-\d[^-]*)?-([^-]+)-([^-]+)-([^-]+)\.whl$`)
	identRe     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	normRe      = regexp.MustCompile(`[-_.]+`)
)

// normalize is the PEP 503 normal form of a project name.
func normalize(name string) string {
	return strings.ToLower(normRe.ReplaceAllString(name, "-"))
}

// isPureTag reports whether a wheel file name's tags are only *-none-any.
func isPureTag(file string) bool {
	m := wheelFileRe.FindStringSubmatch(filepath.Base(file))
	if m == nil {
		return false
	}
	for _, abi := range strings.Split(m[4], ".") {
		if abi != "none" {
			return false
		}
	}
	for _, plat := range strings.Split(m[5], ".") {
		if plat != "any" {
			return false
		}
	}
	return true
}

// wheelNameVersion reads the project name and version from a wheel file name.
func wheelNameVersion(file string) (name, version string, ok bool) {
	m := wheelFileRe.FindStringSubmatch(filepath.Base(file))
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// isCompiled reports whether a file is native code: an extension module or
// a shared library.
func isCompiled(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".so", ".pyd", ".dll", ".dylib":
		return true
	}
	// Versioned shared libraries: libfoo.so.1.2
	return strings.Contains(path.Base(name), ".so.")
}

// openWheel reads a wheel's directory and metadata. The caller closes the
// returned reader.
func openWheel(file string) (*wheel, *zip.ReadCloser, error) {
	zr, err := zip.OpenReader(file)
	if err != nil {
		return nil, nil, fmt.Errorf("reading wheel %s: %w", filepath.Base(file), err)
	}
	w, err := inspectWheel(file, &zr.Reader)
	if err != nil {
		zr.Close()
		return nil, nil, err
	}
	return w, zr, nil
}

func inspectWheel(file string, zr *zip.Reader) (*wheel, error) {
	base := filepath.Base(file)
	w := &wheel{File: file}
	var dataDirs []string
	for _, f := range zr.File {
		name, err := memberPath(f.Name)
		if err != nil {
			return nil, fmt.Errorf("wheel %s: %w", base, err)
		}
		if name == "" {
			continue
		}
		top, _, _ := strings.Cut(name, "/")
		switch {
		case strings.HasSuffix(top, ".dist-info") && top != w.DistInfo:
			if w.DistInfo != "" {
				return nil, fmt.Errorf("wheel %s has two .dist-info directories, %s and %s", base, w.DistInfo, top)
			}
			w.DistInfo = top
		case strings.HasSuffix(top, ".data") && strings.Contains(name, "/"):
			dataDirs = append(dataDirs, top)
		}
	}
	if w.DistInfo == "" {
		return nil, fmt.Errorf("wheel %s has no .dist-info directory; it is not a valid wheel", base)
	}
	meta, err := readMember(zr, w.DistInfo+"/METADATA")
	if err != nil {
		return nil, fmt.Errorf("wheel %s: %w", base, err)
	}
	w.Name, w.Version = metadataNameVersion(meta)
	if w.Name == "" || w.Version == "" {
		return nil, fmt.Errorf("wheel %s: %s/METADATA has no Name or Version", base, w.DistInfo)
	}
	for _, f := range zr.File {
		name, _ := memberPath(f.Name)
		if name == "" || strings.HasSuffix(f.Name, "/") {
			continue
		}
		dest := name
		top, rest, _ := strings.Cut(name, "/")
		if strings.HasSuffix(top, ".data") && slices.Contains(dataDirs, top) {
			// NAME.data/purelib and platlib go to site-packages; scripts,
			// headers and data have no place in the sandbox.
			kind, sub, _ := strings.Cut(rest, "/")
			dest = ""
			if (kind == "purelib" || kind == "platlib") && sub != "" {
				dest = sub
			}
		}
		w.files = append(w.files, wheelFile{f: f, dest: dest, size: f.UncompressedSize64})
	}
	w.scan()
	return w, nil
}

// scan fills Native, Extensions, Modules and Entries from files.
func (w *wheel) scan() {
	var native []wheelFile
	entries := map[string]bool{}
	modules := map[string]bool{}
	for _, wf := range w.files {
		if wf.dest == "" {
			continue
		}
		if isCompiled(wf.dest) {
			native = append(native, wf)
		}
		top, _, isDir := strings.Cut(wf.dest, "/")
		entries[top] = true
		if mod := moduleName(top, isDir); mod != "" {
			modules[mod] = true
		}
	}
	sort.SliceStable(native, func(i, j int) bool {
		if native[i].size != native[j].size {
			return native[i].size > native[j].size
		}
		return native[i].dest < native[j].dest
	})
	w.Native, w.Extensions = nil, nil
	for _, wf := range native {
		w.Native = append(w.Native, wf.dest)
		if top, _, _ := strings.Cut(wf.dest, "/"); !strings.HasSuffix(top, ".libs") {
			w.Extensions = append(w.Extensions, wf.dest)
		}
	}
	w.Entries = slices.Sorted(maps.Keys(entries))
	w.Modules = slices.Sorted(maps.Keys(modules))
}

// moduleName is the importable name of a top-level entry, or "".
func moduleName(top string, isDir bool) string {
	if isDir {
		if identRe.MatchString(top) && top != "__pycache__" {
			return top
		}
		return ""
	}
	var mod string
	switch {
	case strings.HasSuffix(top, ".py"):
		mod = strings.TrimSuffix(top, ".py")
	case isCompiled(top):
		mod, _, _ = strings.Cut(top, ".")
	default:
		return ""
	}
	if !identRe.MatchString(mod) {
		return ""
	}
	return mod
}

// leaveOutCompiled drops the wheel's compiled files and *.libs directories.
func (w *wheel) leaveOutCompiled() []string {
	var left []string
	for i, wf := range w.files {
		if wf.dest == "" {
			continue
		}
		top, _, _ := strings.Cut(wf.dest, "/")
		if isCompiled(wf.dest) || strings.HasSuffix(top, ".libs") {
			left = append(left, wf.dest)
			w.files[i].dest = ""
		}
	}
	sort.Strings(left)
	w.scan()
	return left
}

// memberPath validates a zip member name and returns it cleaned, "" for the
// root itself.
func memberPath(name string) (string, error) {
	if strings.Contains(name, "\\") || strings.HasPrefix(name, "/") || filepath.VolumeName(name) != "" {
		return "", fmt.Errorf("unsafe member path %q", name)
	}
	clean := path.Clean(name)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("unsafe member path %q", name)
	}
	if clean == "." {
		return "", nil
	}
	return clean, nil
}

func readMember(zr *zip.Reader, name string) ([]byte, error) {
	f, err := zr.Open(name)
	if err != nil {
		return nil, fmt.Errorf("missing %s", name)
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 16<<20))
}

// metadataNameVersion reads Name and Version from core metadata headers.
func metadataNameVersion(meta []byte) (name, version string) {
	sc := bufio.NewScanner(bytes.NewReader(meta))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			break // end of headers
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.ToLower(k) {
		case "name":
			if name == "" {
				name = strings.TrimSpace(v)
			}
		case "version":
			if version == "" {
				version = strings.TrimSpace(v)
			}
		}
	}
	return name, version
}

// unpack writes the wheel's kept files under dir and rewrites its RECORD to
// match what was written.
func (w *wheel) unpack(dir string) error {
	base := filepath.Base(w.File)
	record := w.DistInfo + "/RECORD"
	kept := map[string]string{} // member name -> dest
	for _, wf := range w.files {
		if wf.dest == "" {
			continue
		}
		kept[path.Clean(wf.f.Name)] = wf.dest
		if wf.dest == record {
			continue
		}
		if err := writeMember(dir, wf); err != nil {
			return fmt.Errorf("unpacking %s: %w", base, err)
		}
	}
	var old []byte
	for _, wf := range w.files {
		if wf.dest == record {
			rc, err := wf.f.Open()
			if err != nil {
				return fmt.Errorf("unpacking %s: %w", base, err)
			}
			old, err = io.ReadAll(rc)
			rc.Close()
			if err != nil {
				return fmt.Errorf("unpacking %s: %w", base, err)
			}
		}
	}
	installer := w.DistInfo + "/INSTALLER"
	if err := writeFile(dir, installer, []byte("ork\n"), 0o644); err != nil {
		return fmt.Errorf("unpacking %s: %w", base, err)
	}
	rec, err := rewriteRecord(old, kept, installer, record)
	if err != nil {
		return fmt.Errorf("unpacking %s: %s: %w", base, record, err)
	}
	if err := writeFile(dir, record, rec, 0o644); err != nil {
		return fmt.Errorf("unpacking %s: %w", base, err)
	}
	return nil
}

// rewriteRecord maps RECORD rows to where their files went, drops the rows
// of files left out and adds the INSTALLER file.
func rewriteRecord(old []byte, kept map[string]string, installer, record string) ([]byte, error) {
	var rows [][]string
	if len(old) > 0 {
		r := csv.NewReader(bytes.NewReader(old))
		r.FieldsPerRecord = -1
		all, err := r.ReadAll()
		if err != nil {
			return nil, err
		}
		for _, row := range all {
			if len(row) == 0 || row[0] == "" {
				continue
			}
			dest, ok := kept[path.Clean(row[0])]
			if !ok || dest == installer {
				continue
			}
			row[0] = dest
			if dest == record {
				row = []string{record, "", ""}
			}
			rows = append(rows, row)
		}
	}
	rows = append(rows, []string{installer, "", ""})
	if _, ok := kept[record]; !ok {
		rows = append(rows, []string{record, "", ""})
	}
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	if err := cw.WriteAll(rows); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeMember(dir string, wf wheelFile) error {
	rc, err := wf.f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	mode := os.FileMode(0o644)
	if wf.f.Mode()&0o111 != 0 {
		mode = 0o755
	}
	dst := filepath.Join(dir, filepath.FromSlash(wf.dest))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	// A member's declared size bounds what is written (zip bombs).
	n, err := io.Copy(out, io.LimitReader(rc, int64(wf.size)+1))
	if err == nil && uint64(n) != wf.size {
		err = errors.New(wf.f.Name + ": size does not match the zip directory")
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

func writeFile(dir, rel string, data []byte, mode os.FileMode) error {
	dst := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, data, mode)
}
