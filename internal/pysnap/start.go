package pysnap

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/orkrun/ork/internal/wasifs"
)

// TaskSpec is one task to start from a snapshot.
type TaskSpec struct {
	// Engine runs the task (the snapshot's own when nil). Its memory limit
	// is the task's; it must be at least the image's size.
	Engine *Engine
	// Mounts must have the snapshot's layout (guest paths, order, flags);
	// the host directories are the task's own.
	Mounts []Mount
	// Argv becomes sys.argv (as for `python -c CODE a b`: ["-c", "a", "b"]).
	Argv []string
	// Env ("NAME=value") becomes os.environ; nothing else is visible.
	Env []string
	// Path, when non-nil, replaces sys.path (otherwise the boot's stays).
	Path []string
	// Code is the Python source to run in a fresh __main__, as `-c` does.
	Code string
	// Filename names Code in tracebacks ("<string>" by default).
	Filename string
	// Stdout and Stderr receive the guest's output (nil discards).
	Stdout, Stderr io.Writer
	// Timeout, when set, bounds the task on top of ctx.
	Timeout time.Duration
	// Configure, when set, adjusts the module config after pysnap's
	// (clocks, random source, ...). It must not change the mounts or stdin
	// (a request too large for the mailbox travels on stdin).
	Configure func(wazero.ModuleConfig) wazero.ModuleConfig
}

type request struct {
	Argv     []string          `json:"argv"`
	Env      map[string]string `json:"env"`
	Path     []string          `json:"path"`
	Code     string            `json:"code"`
	Filename string            `json:"filename,omitempty"`
	Seed     string            `json:"seed"`
}

// Mailbox header, little-endian u32s, then the request JSON at offset 16.
const (
	mailboxHeader = 16
	flagOnStdin   = 1
)

// ErrMountMismatch means a task's mounts do not have the snapshot's layout.
var ErrMountMismatch = errors.New("pysnap: the task's mounts differ from the snapshot's layout (guest paths, order and flags must match)")

// Request is one task's request to the runner, encoded: what the host of a
// restored instance writes into its mailbox (Write) and, when the request is
// too large for the mailbox, gives it on stdin (Stdin). It is engine-neutral:
// Start uses it on wazero, ork's runtime on wasmtime.
type Request struct {
	// Stdin is the request when it travels on stdin (nil otherwise).
	Stdin []byte

	mailbox uint32 // address of the mailbox payload
	header  []byte
	body    []byte // in the mailbox after the header (nil when on stdin)
}

// NewRequest checks that spec's mounts have the snapshot's layout and
// encodes the task's request (argv, environment, sys.path, code, a fresh
// random seed). Only the task fields of spec are read.
func (s *Snapshot) NewRequest(spec TaskSpec) (*Request, error) {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return nil, errors.New("pysnap: the snapshot is closed")
	}
	if MountHash(spec.Mounts) != s.Meta.MountHash {
		return nil, ErrMountMismatch
	}
	req, err := encodeRequest(spec)
	if err != nil {
		return nil, err
	}
	r := &Request{mailbox: s.Meta.MailboxData, header: make([]byte, mailboxHeader), body: req}
	binary.LittleEndian.PutUint32(r.header[0:], uint32(len(req)))
	if mailboxHeader+len(req) > int(s.Meta.MailboxSize) {
		binary.LittleEndian.PutUint32(r.header[4:], flagOnStdin)
		r.Stdin, r.body = req, nil
	}
	return r, nil
}

// Write puts the request into the mailbox of mem, a restored instance's
// linear memory (a view of it: wazero's Memory.Read(0, size), wasmtime's
// Memory.UnsafeData).
func (r *Request) Write(mem []byte) error {
	end := uint64(r.mailbox) + mailboxHeader + uint64(len(r.body))
	if end > uint64(len(mem)) {
		return errors.New("pysnap: the mailbox is outside memory")
	}
	copy(mem[r.mailbox:], r.header)
	copy(mem[r.mailbox+mailboxHeader:], r.body)
	return nil
}

// CheckLimit says whether instances capped at limitPages can hold the image.
func (s *Snapshot) CheckLimit(limitPages uint32) error {
	if limitPages < s.Meta.Pages {
		return fmt.Errorf("pysnap: the memory limit (%d pages) is below the snapshot's size (%d pages)", limitPages, s.Meta.Pages)
	}
	return nil
}

// ErrRunnerReturned means the task runner returned instead of ending with
// os._exit, as it always does: the restored state is not what it should be.
var ErrRunnerReturned = errors.New("pysnap: the task runner returned instead of exiting")

// SetOutcome records how the call of the runner ended: with exit status
// code when the guest exited (proc_exit), otherwise with callErr (a trap, or
// the engine's error for a timeout or cancellation), or ErrRunnerReturned
// when the call returned. Every engine interprets a task's end this way.
func (r *Result) SetOutcome(exited bool, code int, callErr error) {
	switch {
	case exited:
		r.ExitCode, r.Err = code, nil
	case callErr == nil:
		r.ExitCode, r.Err = -1, ErrRunnerReturned
	default:
		r.ExitCode, r.Err = -1, callErr
	}
}

// Start runs one task in a fresh instance restored from the snapshot. The
// returned error is for problems on the host side (the task did not run);
// what the guest did is in the Result.
func (s *Snapshot) Start(ctx context.Context, spec TaskSpec) (*Result, error) {
	begin := time.Now()
	req, err := s.NewRequest(spec)
	if err != nil {
		return nil, err
	}
	eng := spec.Engine
	if eng == nil {
		eng = s.eng
	}
	if err := s.CheckLimit(eng.limitPages); err != nil {
		return nil, err
	}
	cm, err := eng.compile(ctx, s.prepared)
	if err != nil {
		return nil, err
	}

	alloc, err := s.allocator(uint64(eng.limitPages) * pageSize)
	if err != nil {
		return nil, err
	}
	defer alloc.free() // idempotent; normally wazero frees it on close

	fs := wazero.NewFSConfig()
	for _, m := range spec.Mounts {
		fs = wasifs.Mount(fs, m.HostPath, m.GuestPath, m.Writable)
	}
	var stdin io.Reader = eofReader{}
	if req.Stdin != nil {
		stdin = bytes.NewReader(req.Stdin)
	}
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions().
		WithFSConfig(fs).
		WithSysWalltime().
		WithSysNanotime().
		WithSysNanosleep().
		WithRandSource(rand.Reader).
		WithStdin(stdin).
		WithStdout(orDiscard(spec.Stdout)).
		WithStderr(orDiscard(spec.Stderr))
	if spec.Configure != nil {
		cfg = spec.Configure(cfg)
	}

	runCtx := ctx
	if spec.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, spec.Timeout)
		defer cancel()
	}
	mod, err := eng.rt.InstantiateModule(experimental.WithMemoryAllocator(runCtx, alloc), cm, cfg)
	if err != nil {
		return nil, fmt.Errorf("pysnap: instantiating the interpreter: %w", err)
	}
	defer mod.Close(context.Background())
	mem := mod.Memory()
	if cur := mem.Size() / pageSize; cur < s.Meta.Pages {
		if _, ok := mem.Grow(s.Meta.Pages - cur); !ok {
			return nil, fmt.Errorf("pysnap: growing memory to the snapshot's %d pages failed", s.Meta.Pages)
		}
	}
	if int(mem.Size()) != s.size() {
		return nil, fmt.Errorf("pysnap: restored memory is %d bytes, the image %d", mem.Size(), s.size())
	}
	sp, ok := mod.ExportedGlobal(StackPointerExport).(api.MutableGlobal)
	if !ok {
		return nil, fmt.Errorf("pysnap: %s is not an exported mutable global", StackPointerExport)
	}
	sp.Set(api.EncodeU32(s.Meta.StackPointer))
	view, _ := mem.Read(0, mem.Size())
	if err := req.Write(view); err != nil {
		return nil, err
	}
	call := mod.ExportedFunction(TrampolineExport)
	if call == nil {
		return nil, fmt.Errorf("pysnap: the module does not export %s", TrampolineExport)
	}
	res := &Result{ExitCode: -1, Restore: time.Since(begin)}
	_, callErr := call.Call(runCtx, uint64(s.Meta.Vectorcall), uint64(s.Meta.Runner), 0, 0, 0)
	res.Total = time.Since(begin)
	res.MemoryBytes = uint64(mem.Size()) // the length only: the memory may be unmapped already
	var ee *sys.ExitError
	exited := errors.As(callErr, &ee) && ee.ExitCode() != sys.ExitCodeDeadlineExceeded && ee.ExitCode() != sys.ExitCodeContextCanceled
	code := 0
	if exited {
		code = int(ee.ExitCode())
	}
	res.SetOutcome(exited, code, callErr)
	return res, nil
}

// Result is the outcome of one task.
type Result struct {
	// ExitCode is the guest's exit status (os._exit); -1 when it did not
	// exit (see Err).
	ExitCode int
	// Err is set when the guest did not exit by itself: a trap, or the
	// *sys.ExitError wazero reports when the context was done (timeout or
	// cancellation). It is the error ork's classify expects from a call.
	Err error
	// Restore is the time from instantiation to calling the runner
	// (map or copy the image, grow, stack pointer, request).
	Restore time.Duration
	// Total is Restore plus running the task.
	Total time.Duration
	// MemoryBytes is the guest's memory size when it finished.
	MemoryBytes uint64
}

// TimedOut reports whether the task was stopped because its context was done.
func (r *Result) TimedOut() bool {
	var ee *sys.ExitError
	if errors.As(r.Err, &ee) {
		c := ee.ExitCode()
		return c == sys.ExitCodeDeadlineExceeded || c == sys.ExitCodeContextCanceled
	}
	return false
}

func encodeRequest(spec TaskSpec) ([]byte, error) {
	var seed [32]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, err
	}
	env := make(map[string]string, len(spec.Env))
	for _, kv := range spec.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("pysnap: environment entry %q is not NAME=value", kv)
		}
		env[k] = v
	}
	argv := spec.Argv
	if len(argv) == 0 {
		argv = []string{"-c"}
	}
	return json.Marshal(request{
		Argv: argv, Env: env, Path: spec.Path, Code: spec.Code,
		Filename: spec.Filename, Seed: hex.EncodeToString(seed[:]),
	})
}

type allocator interface {
	experimental.MemoryAllocator
	free()
}

// allocator returns the memory of one restored instance, of at most limit
// bytes.
func (s *Snapshot) allocator(limit uint64) (allocator, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	switch {
	case s.closed:
		return nil, errors.New("pysnap: the snapshot is closed")
	case s.cow:
		m, err := mapImage(s.file, s.size(), limit)
		if err != nil {
			return nil, fmt.Errorf("pysnap: mapping the snapshot image: %w", err)
		}
		return m, nil
	default:
		return &copyMemory{image: s.image, chunks: s.chunks, max: limit}, nil
	}
}

// copyMemory is the portable restore: fresh memory with the image's
// non-zero runs copied in.
type copyMemory struct {
	image  []byte
	chunks []chunk
	max    uint64
	buf    []byte
}

func (c *copyMemory) Allocate(_, max uint64) experimental.LinearMemory {
	if max < c.max {
		c.max = max
	}
	c.buf = make([]byte, len(c.image))
	for _, ch := range c.chunks {
		copy(c.buf[ch.off:ch.end], c.image[ch.off:ch.end])
	}
	return c
}

func (c *copyMemory) Reallocate(size uint64) []byte {
	if size > c.max {
		return nil
	}
	if size <= uint64(cap(c.buf)) {
		c.buf = c.buf[:size]
		return c.buf
	}
	grown := make([]byte, size, min(max(size, uint64(cap(c.buf))*2), c.max))
	copy(grown, c.buf)
	c.buf = grown
	return c.buf
}

func (c *copyMemory) Free() { c.buf = nil }

func (c *copyMemory) free() { c.Free() }

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// tailWriter passes writes through and keeps the last few KiB.
type tailWriter struct {
	w    io.Writer
	mu   sync.Mutex
	tail []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	t.tail = append(t.tail, p...)
	if len(t.tail) > 4<<10 {
		t.tail = append(t.tail[:0], t.tail[len(t.tail)-4<<10:]...)
	}
	t.mu.Unlock()
	return t.w.Write(p)
}

func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.tail)
}
