// Package pysnap starts Python tasks from a snapshot of a pre-initialised
// CPython instead of booting the interpreter for each one.
//
// Prepare makes python.wasm restorable (global 0, the shadow-stack pointer,
// exported; a call_indirect trampoline added; a variant without data
// segments). Build boots it once with a script that imports a warm module
// set, defines a runner and calls a trigger that the host intercepts to copy
// linear memory and the stack pointer. Snapshot.Start then runs each task in
// a fresh instance whose memory is that image, mapped copy-on-write where
// the platform allows it (copied otherwise), by calling the runner through
// the trampoline. The runner reads the task from a mailbox in memory, makes
// what the image froze fresh (random seed, environment, argv, import
// caches), runs the code in a new __main__ and always ends with os._exit.
//
// See shared notes python-snapshot.md for the design and its measurements.
package pysnap

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/orkrun/ork/internal/atomicfile"
	"github.com/orkrun/ork/internal/wasifs"
)

// FormatVersion changes whenever the image, its metadata or the boot script
// change meaning; it is part of every cache key.
const FormatVersion = "pysnap-1"

const pageSize = 64 << 10

// DefaultWarmModules is imported at boot when a BootSpec names none.
var DefaultWarmModules = []string{
	"abc", "argparse", "base64", "collections", "contextlib", "copy", "csv",
	"dataclasses", "datetime", "decimal", "enum", "functools", "hashlib",
	"importlib", "importlib.util", "inspect", "io", "itertools", "json",
	"logging", "math", "pathlib", "random", "re", "string", "struct",
	"textwrap", "traceback", "typing", "uuid",
}

// DefaultKeep is how many snapshot images a cache directory keeps.
const DefaultKeep = 8

// DefaultMailboxSize is the request mailbox of a BootSpec that names none;
// larger requests travel on stdin.
const DefaultMailboxSize = 64 << 10

// Mount makes a host directory a WASI preopen. Guest paths, their order and
// flags must be the same at boot and at every restore: wasi-libc and wasi-vfs
// keep preopen file descriptors in memory, so a different layout would
// silently cross-wire directories. The host directories may differ per task.
type Mount struct {
	HostPath  string
	GuestPath string
	Writable  bool
}

// MountHash identifies a mount layout: guest paths, order and flags.
func MountHash(mounts []Mount) string {
	h := sha256.New()
	for _, m := range mounts {
		mode := "ro"
		if m.Writable {
			mode = "rw"
		}
		fmt.Fprintf(h, "%q %s\n", m.GuestPath, mode)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// BootSpec describes the interpreter state to snapshot.
type BootSpec struct {
	// WarmModules are imported at boot (DefaultWarmModules when nil).
	WarmModules []string
	// Extra is Python run at boot after the warm imports (e.g. importing
	// the ork SDK). Keep it free of anything task- or secret-specific.
	Extra string
	// Mounts is the preopen layout; tasks bring their own directories. A
	// mount without a HostPath shows an empty directory at boot (use that
	// for the project and scratch). One with a HostPath shows that
	// directory (e.g. the ork SDK, to import it at boot): whatever the boot
	// reads from it is frozen into the image, so it must not change while
	// the snapshot is in use; name its version in CacheKey.
	Mounts []Mount
	// CacheKey is extra material for the cache key: the version of what
	// boot-time host directories and Extra depend on.
	CacheKey string
	// Env is the environment the interpreter boots with (PYTHONPATH,
	// PYTHONDONTWRITEBYTECODE, ...). It is frozen into the image: never put
	// secrets here; tasks get their own environment.
	Env []string
	// MailboxSize is the request mailbox's size (DefaultMailboxSize if 0).
	MailboxSize int
	// CacheDir keeps images across processes ("" keeps them in memory and
	// an unlinked temporary file).
	CacheDir string
	// Keep is how many images CacheDir keeps (DefaultKeep if 0): storing a
	// new one removes the least recently used beyond that.
	Keep int
	// NoCoW forces the plain-copy restore even where copy-on-write mapping
	// is available.
	NoCoW bool
	// Stderr receives the boot's stderr (nil discards it; its tail is in
	// errors either way).
	Stderr io.Writer
	// Timeout bounds the boot (DefaultBootTimeout if 0).
	Timeout time.Duration
}

// DefaultBootTimeout bounds a boot whose BootSpec names no timeout.
const DefaultBootTimeout = 2 * time.Minute

// Meta is what a snapshot records about the image.
type Meta struct {
	Format       string `json:"format"`
	Key          string `json:"key"`
	WasmDigest   string `json:"wasm_digest"`
	MountHash    string `json:"mount_hash"`
	Pages        uint32 `json:"pages"`
	StackPointer uint32 `json:"stack_pointer"`
	Runner       uint32 `json:"runner"`
	Vectorcall   uint32 `json:"vectorcall"`
	Mailbox      uint32 `json:"mailbox"`
	MailboxData  uint32 `json:"mailbox_data"`
	MailboxSize  uint32 `json:"mailbox_size"`
	ImageSHA256  string `json:"image_sha256"`
	NonZeroBytes int64  `json:"nonzero_bytes"`
	Modules      int    `json:"modules"`
}

// Snapshot is a booted interpreter, ready to start tasks. It is safe for
// concurrent use.
type Snapshot struct {
	Meta Meta
	// FromCache says whether the image came from BootSpec.CacheDir.
	FromCache bool
	// BuildTime is how long Build took (boot or load, plus the self-test).
	BuildTime time.Duration
	// SelfTest is the self-test task's result.
	SelfTest *Result

	eng      *Engine
	prepared *Prepared
	image    []byte
	chunks   []chunk      // non-zero 4 KiB runs of image, for the copy restore
	mu       sync.RWMutex // guards file against Close
	file     *os.File
	cow      bool
	mounts   []Mount
	closed   bool
}

type chunk struct{ off, end int }

// size is the image's length in bytes.
func (s *Snapshot) size() int { return int(s.Meta.Pages) * pageSize }

//go:embed boot.py
var bootTemplate string

func bootScript(spec BootSpec) (string, error) {
	warm := spec.WarmModules
	if warm == nil {
		warm = DefaultWarmModules
	}
	w, err := json.Marshal(warm)
	if err != nil {
		return "", err
	}
	size := spec.MailboxSize
	if size == 0 {
		size = DefaultMailboxSize
	}
	if size < 64 {
		return "", fmt.Errorf("pysnap: a mailbox of %d bytes is too small", size)
	}
	return strings.NewReplacer(
		"__PYSNAP_WARM__", strconv.Quote(string(w)),
		"__PYSNAP_EXTRA__", spec.Extra,
		"__PYSNAP_MAILBOX_SIZE__", strconv.Itoa(size),
		"__PYSNAP_MAGIC__", strconv.Itoa(TriggerClockID),
	).Replace(bootTemplate), nil
}

func cacheKey(p *Prepared, script string, spec BootSpec) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%q\n%d\n", FormatVersion, p.Digest, MountHash(spec.Mounts), spec.CacheKey, len(script))
	for _, m := range spec.Mounts {
		fmt.Fprintf(h, "%q\n", m.HostPath)
	}
	h.Write([]byte(script))
	for _, kv := range spec.Env {
		fmt.Fprintf(h, "\n%q", kv)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Build returns a snapshot of p booted per spec on eng: from spec.CacheDir
// when a matching image is there, otherwise by booting the interpreter. It
// runs a self-test task on the snapshot before returning it. Any error means
// the snapshot is unusable and tasks should cold start.
func Build(ctx context.Context, eng *Engine, p *Prepared, spec BootSpec) (*Snapshot, error) {
	start := time.Now()
	script, err := bootScript(spec)
	if err != nil {
		return nil, err
	}
	key := cacheKey(p, script, spec)
	if spec.CacheDir != "" {
		if s, err := load(ctx, eng, p, spec, key); err == nil {
			s.FromCache = true
			if err = s.selfTest(ctx); err == nil {
				s.BuildTime = time.Since(start)
				return s, nil
			}
			s.Close()
			// A cached image that fails its self-test is rebuilt.
		}
		removeCached(spec.CacheDir, key)
	}
	s, err := boot(ctx, eng, p, spec, script, key)
	if err != nil {
		return nil, err
	}
	if err := s.selfTest(ctx); err != nil {
		s.Close()
		if spec.CacheDir != "" {
			removeCached(spec.CacheDir, key)
		}
		return nil, err
	}
	s.BuildTime = time.Since(start)
	return s, nil
}

// Close releases the image; Start fails afterwards. Tasks still running
// keep their own mappings.
func (s *Snapshot) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file != nil {
		_ = s.file.Close()
		s.file = nil
	}
	s.image, s.chunks, s.closed = nil, nil, true
}

// CopyOnWrite reports whether tasks map the image copy-on-write (rather
// than copying it).
func (s *Snapshot) CopyOnWrite() bool { return s.cow }

type bootInfo struct {
	Runner        uint32 `json:"runner"`
	FunctionType  uint32 `json:"function_type"`
	RunnerGlobals uint32 `json:"runner_globals"`
	RunnerName    uint32 `json:"runner_name"`
	RunnerCode    uint32 `json:"runner_code"`
	Probe         uint32 `json:"probe"`
	Mailbox       uint32 `json:"mailbox"`
	BytearrayType uint32 `json:"bytearray_type"`
	MailboxSize   uint32 `json:"mailbox_size"`
	Key           uint32 `json:"key"`
	Version       []int  `json:"version"`
	Platform      string `json:"platform"`
	PointerSize   int    `json:"pointer_size"`
	OpenFDs       []int  `json:"open_fds"`
	Modules       int    `json:"modules"`
}

const infoMarker = "__PYSNAP_INFO__ "

func boot(ctx context.Context, eng *Engine, p *Prepared, spec BootSpec, script, key string) (*Snapshot, error) {
	cm, err := eng.compile(ctx, p)
	if err != nil {
		return nil, err
	}
	fs := wazero.NewFSConfig()
	for _, m := range spec.Mounts {
		dir := m.HostPath
		if dir == "" {
			tmp, err := os.MkdirTemp("", "pysnap-boot-")
			if err != nil {
				return nil, err
			}
			defer os.RemoveAll(tmp)
			dir = tmp
		}
		fs = wasifs.Mount(fs, dir, m.GuestPath, m.Writable)
	}
	var stdout bytes.Buffer
	stderr := &tailWriter{w: orDiscard(spec.Stderr)}
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions().
		WithArgs("python", "-c", script).
		WithFSConfig(fs).
		WithSysWalltime().
		WithSysNanotime().
		WithSysNanosleep().
		WithRandSource(rand.Reader).
		WithStdout(&stdout).
		WithStderr(stderr)
	for _, kv := range spec.Env {
		k, v, _ := strings.Cut(kv, "=")
		cfg = cfg.WithEnv(k, v)
	}
	mod, err := eng.rt.InstantiateModule(ctx, cm, cfg)
	if err != nil {
		return nil, fmt.Errorf("pysnap: instantiating the interpreter: %w", err)
	}
	defer mod.Close(context.Background())
	mem := mod.Memory()
	for _, seg := range p.Segments {
		if !mem.Write(seg.Offset, seg.Data) {
			return nil, fmt.Errorf("pysnap: data segment at %#x of %d bytes is outside memory", seg.Offset, len(seg.Data))
		}
	}
	c := &capture{}
	timeout := spec.Timeout
	if timeout <= 0 {
		timeout = DefaultBootTimeout
	}
	bootCtx, cancel := context.WithTimeout(context.WithValue(ctx, captureKey{}, c), timeout)
	defer cancel()
	_, callErr := mod.ExportedFunction("_start").Call(bootCtx)
	if !c.done {
		msg := "exited without reaching the snapshot trigger"
		if callErr != nil {
			msg = callErr.Error()
		}
		return nil, fmt.Errorf("pysnap: the boot failed: %s\n%s", msg, stderr.String())
	}
	if c.err != nil {
		return nil, fmt.Errorf("pysnap: taking the snapshot: %w", c.err)
	}
	info, err := parseInfo(stdout.Bytes())
	if err != nil {
		return nil, fmt.Errorf("pysnap: %w\n%s", err, stderr.String())
	}
	meta, err := verify(p, c.image, c.stackPointer, info, len(spec.Mounts))
	if err != nil {
		return nil, fmt.Errorf("pysnap: the interpreter's layout is not what snapshots rely on: %w", err)
	}
	meta.Key = key
	meta.WasmDigest = p.Digest
	meta.MountHash = MountHash(spec.Mounts)
	sum := sha256.Sum256(c.image)
	meta.ImageSHA256 = hex.EncodeToString(sum[:])
	s := &Snapshot{Meta: meta, eng: eng, prepared: p, image: c.image, mounts: spec.Mounts}
	s.chunks, s.Meta.NonZeroBytes = nonZeroChunks(c.image)
	if err := s.store(spec); err != nil {
		return nil, err
	}
	return s, nil
}

func parseInfo(stdout []byte) (*bootInfo, error) {
	i := bytes.LastIndex(stdout, []byte(infoMarker))
	if i < 0 {
		return nil, errors.New("the boot printed no snapshot info")
	}
	line := stdout[i+len(infoMarker):]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	var info bootInfo
	if err := json.Unmarshal(line, &info); err != nil {
		return nil, fmt.Errorf("the boot's snapshot info is not JSON: %w", err)
	}
	return &info, nil
}

// Offsets in CPython 3.12 objects on wasm32.
const (
	obType          = 4
	funcGlobals     = 8
	funcName        = 16
	funcCode        = 24
	funcVectorcall  = 64
	bytearraySize   = 8
	bytearrayAlloc  = 12
	bytearrayBytes  = 16
	bytearrayStart  = 20
	bytesPayload    = 16
	shadowStackSize = 512 << 10
)

// verify checks every assumption a restore relies on against the image.
func verify(p *Prepared, image []byte, sp uint32, info *bootInfo, mounts int) (Meta, error) {
	var m Meta
	u32 := func(addr uint32) uint32 {
		if uint64(addr)+4 > uint64(len(image)) {
			return 0
		}
		return binary.LittleEndian.Uint32(image[addr:])
	}
	switch {
	case len(image)%pageSize != 0 || len(image) == 0:
		return m, fmt.Errorf("memory of %d bytes is not whole pages", len(image))
	case len(info.Version) < 2 || info.Version[0] != 3 || info.Version[1] != 12:
		return m, fmt.Errorf("CPython %v; the object layouts checked here are those of 3.12", info.Version)
	case info.Platform != "wasi" || info.PointerSize != 4:
		return m, fmt.Errorf("platform %s with %d-byte pointers, want wasi wasm32", info.Platform, info.PointerSize)
	case sp == 0 || sp > p.StackPointerInit || sp%16 != 0:
		return m, fmt.Errorf("stack pointer %#x at the trigger is not inside the shadow stack below %#x", sp, p.StackPointerInit)
	case p.StackPointerInit-sp > shadowStackSize/2:
		return m, fmt.Errorf("the boot uses %d bytes of the shadow stack at the trigger, leaving too little for tasks", p.StackPointerInit-sp)
	}
	// Only stdio and the preopens may be open; wasi-vfs adds one preopen
	// after the host's (for the embedded stdlib).
	for _, fd := range info.OpenFDs {
		if fd > 2+mounts+1 {
			return m, fmt.Errorf("file descriptors %v are open at the trigger; only stdio and the %d preopens may be", info.OpenFDs, mounts)
		}
	}
	if got := u32(info.Key + bytesPayload); got != TriggerClockID {
		return m, fmt.Errorf("bytes payload is not at offset %d (read %#x)", bytesPayload, got)
	}
	r := info.Runner
	if got := u32(r + obType); got != info.FunctionType {
		return m, fmt.Errorf("runner ob_type %#x != type(runner) %#x", got, info.FunctionType)
	}
	if u32(r+funcGlobals) != info.RunnerGlobals || u32(r+funcName) != info.RunnerName || u32(r+funcCode) != info.RunnerCode {
		return m, errors.New("PyFunctionObject fields func_globals/func_name/func_code are not at offsets 8/16/24")
	}
	vc := u32(r + funcVectorcall)
	if vc == 0 || u32(info.Probe+funcVectorcall) != vc || u32(info.Probe+obType) != info.FunctionType {
		return m, fmt.Errorf("PyFunctionObject.vectorcall at offset %d is %#x for the runner and %#x for another function", funcVectorcall, vc, u32(info.Probe+funcVectorcall))
	}
	if name, ok := p.tableFunc(vc); !ok {
		return m, fmt.Errorf("vectorcall %#x is not a table slot holding a function of type (i32 x4) -> i32", vc)
	} else if name != "" && name != "_PyFunction_Vectorcall" {
		return m, fmt.Errorf("vectorcall %#x is %s, not _PyFunction_Vectorcall", vc, name)
	}
	mb := info.Mailbox
	if got := u32(mb + obType); got != info.BytearrayType {
		return m, fmt.Errorf("mailbox ob_type %#x != bytearray %#x", got, info.BytearrayType)
	}
	data := u32(mb + bytearrayBytes)
	switch {
	case u32(mb+bytearraySize) != info.MailboxSize || u32(mb+bytearrayAlloc) < info.MailboxSize:
		return m, errors.New("PyByteArrayObject ob_size/ob_alloc are not at offsets 8/12")
	case u32(mb+bytearrayStart) != data:
		return m, errors.New("PyByteArrayObject ob_start differs from ob_bytes")
	case uint64(data)+uint64(info.MailboxSize) > uint64(len(image)) || !bytes.Equal(image[data:data+8], []byte("PYSNAPMB")):
		return m, fmt.Errorf("the mailbox payload is not at ob_bytes (offset %d)", bytearrayBytes)
	}
	return Meta{
		Format:       FormatVersion,
		Pages:        uint32(len(image) / pageSize),
		StackPointer: sp,
		Runner:       r,
		Vectorcall:   vc,
		Mailbox:      mb,
		MailboxData:  data,
		MailboxSize:  info.MailboxSize,
		Modules:      info.Modules,
	}, nil
}

const chunkSize = 4 << 10

func nonZeroChunks(image []byte) ([]chunk, int64) {
	var out []chunk
	var total int64
	zero := make([]byte, chunkSize)
	for off := 0; off < len(image); off += chunkSize {
		end := min(off+chunkSize, len(image))
		if bytes.Equal(image[off:end], zero[:end-off]) {
			continue
		}
		total += int64(end - off)
		if n := len(out); n > 0 && out[n-1].end == off {
			out[n-1].end = end
		} else {
			out = append(out, chunk{off, end})
		}
	}
	return out, total
}

func cachePaths(dir, key string) (img, meta string) {
	base := filepath.Join(dir, "python-"+key[:32])
	return base + ".img", base + ".json"
}

func removeCached(dir, key string) {
	img, meta := cachePaths(dir, key)
	_ = os.Remove(meta)
	_ = os.Remove(img)
}

// prune removes the least recently used images of dir beyond the newest
// keep (a load touches an image's metadata). Images in use stay mapped:
// removing the files does not disturb running tasks.
func prune(dir string, keep int) {
	metas, _ := filepath.Glob(filepath.Join(dir, "python-*.json"))
	if len(metas) <= keep {
		return
	}
	type entry struct {
		meta string
		used time.Time
	}
	var es []entry
	for _, m := range metas {
		if fi, err := os.Stat(m); err == nil {
			es = append(es, entry{m, fi.ModTime()})
		}
	}
	sort.Slice(es, func(i, j int) bool { return es[i].used.After(es[j].used) })
	for _, e := range es[min(keep, len(es)):] {
		_ = os.Remove(e.meta)
		_ = os.Remove(strings.TrimSuffix(e.meta, ".json") + ".img")
	}
}

// store writes the image (sparse: zero runs are holes) and opens it for
// mapping; with a cache dir it also writes the metadata, both atomically.
func (s *Snapshot) store(spec BootSpec) error {
	cow := cowSupported && !spec.NoCoW
	if spec.CacheDir == "" && !cow {
		return nil // the copy restore needs only s.image and s.chunks
	}
	dir := spec.CacheDir
	if dir == "" {
		dir = os.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("pysnap: creating the snapshot cache %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".pysnap-*.tmp")
	if err != nil {
		return fmt.Errorf("pysnap: writing the snapshot image: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	for _, c := range s.chunks {
		if _, err := f.WriteAt(s.image[c.off:c.end], int64(c.off)); err != nil {
			return fmt.Errorf("pysnap: writing the snapshot image: %w", err)
		}
	}
	if err := f.Truncate(int64(len(s.image))); err != nil {
		return fmt.Errorf("pysnap: writing the snapshot image: %w", err)
	}
	if spec.CacheDir == "" {
		// Private to this process: unlinked, kept open for mapping.
		if err := os.Remove(f.Name()); err != nil {
			return err
		}
	} else {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("pysnap: writing the snapshot image: %w", err)
		}
		img, metaPath := cachePaths(spec.CacheDir, s.Meta.Key)
		if err := os.Rename(f.Name(), img); err != nil {
			return fmt.Errorf("pysnap: writing the snapshot image: %w", err)
		}
		b, _ := json.MarshalIndent(s.Meta, "", "  ")
		if err := atomicfile.Write(metaPath, b, 0o644); err != nil {
			return err
		}
		keep := spec.Keep
		if keep <= 0 {
			keep = DefaultKeep
		}
		prune(spec.CacheDir, keep)
	}
	ok = true
	if cow {
		// Tasks map the file: the bytes need not stay in the heap.
		s.file, s.cow = f, true
		s.image, s.chunks = nil, nil
	} else {
		f.Close()
	}
	return nil
}

// load opens a cached image whose metadata matches.
func load(ctx context.Context, eng *Engine, p *Prepared, spec BootSpec, key string) (*Snapshot, error) {
	imgPath, metaPath := cachePaths(spec.CacheDir, key)
	b, err := os.ReadFile(metaPath)
	if err != nil {
		return nil, err
	}
	var meta Meta
	if err := json.Unmarshal(b, &meta); err != nil {
		return nil, err
	}
	if meta.Format != FormatVersion || meta.Key != key || meta.WasmDigest != p.Digest || meta.MountHash != MountHash(spec.Mounts) {
		return nil, errors.New("stale snapshot metadata")
	}
	f, err := os.Open(imgPath)
	if err != nil {
		return nil, err
	}
	// Mark it used, for prune.
	now := time.Now()
	_ = os.Chtimes(metaPath, now, now)
	image, err := io.ReadAll(f)
	if err == nil {
		sum := sha256.Sum256(image)
		if hex.EncodeToString(sum[:]) != meta.ImageSHA256 || len(image) != int(meta.Pages)*pageSize {
			err = errors.New("snapshot image does not match its metadata")
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	if _, err := eng.compile(ctx, p); err != nil {
		f.Close()
		return nil, err
	}
	s := &Snapshot{Meta: meta, eng: eng, prepared: p, mounts: spec.Mounts}
	if cowSupported && !spec.NoCoW {
		s.file, s.cow = f, true
	} else {
		f.Close()
		s.image = image
		s.chunks, _ = nonZeroChunks(image)
	}
	return s, nil
}

// selfTestCode exercises the restore: the request's argv, env and seed, a
// warm module, the runner's output and exit status.
const selfTestCode = `import json, os, sys
print(json.dumps({"argv": sys.argv[1:], "env": os.environ.get("PYSNAP_SELFTEST"), "main": __name__}))
sys.exit(3)
`

func (s *Snapshot) selfTest(ctx context.Context) error {
	res, err := s.SelfTestWith(ctx, s.Start)
	if err != nil {
		return err
	}
	s.SelfTest = res
	return nil
}

// SelfTestWith runs the snapshot's self-test task with start, which starts a
// task of this snapshot on some engine (Start, on wazero): the request's
// argv, environment and code, a warm module, the runner's output and exit
// status must all come through. Build runs it with Start; an engine that
// restores the image its own way runs it before its first task. An error
// means that engine cannot start tasks from the snapshot.
func (s *Snapshot) SelfTestWith(ctx context.Context, start func(context.Context, TaskSpec) (*Result, error)) (*Result, error) {
	var stdout, stderr bytes.Buffer
	mounts := make([]Mount, 0)
	for _, m := range s.mounts {
		if m.HostPath == "" {
			dir, err := os.MkdirTemp("", "pysnap-selftest-")
			if err != nil {
				return nil, err
			}
			defer os.RemoveAll(dir)
			m.HostPath = dir
		}
		mounts = append(mounts, m)
	}
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := start(tctx, TaskSpec{
		Mounts: mounts,
		Argv:   []string{"-c", "self", "test"},
		Env:    []string{"PYSNAP_SELFTEST=ok"},
		Code:   selfTestCode,
		Stdout: &stdout,
		Stderr: &stderr,
	})
	if err != nil {
		return nil, fmt.Errorf("pysnap: the snapshot's self-test could not start: %w", err)
	}
	want := `{"argv": ["self", "test"], "env": "ok", "main": "__main__"}` + "\n"
	if res.Err != nil || res.ExitCode != 3 || stdout.String() != want {
		return nil, fmt.Errorf("pysnap: the snapshot's self-test failed: exit %d, error %v, stdout %q, stderr %q", res.ExitCode, res.Err, stdout.String(), stderr.String())
	}
	return res, nil
}
