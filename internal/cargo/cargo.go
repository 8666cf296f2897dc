// Package cargo builds Rust crates into WASI modules with the user's cargo
// and rustc, and caches the result by a hash of everything the build reads.
package cargo

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/orkrun/ork/internal/atomicfile"
	"github.com/orkrun/ork/internal/wasmstrip"
)

// Builder builds crates. Its zero value is not usable; use New.
type Builder struct {
	cacheDir string
	cargo    string
	rustc    string
	log      io.Writer

	mu        sync.Mutex
	toolchain *toolchain
	locks     map[string]*sync.Mutex
}

// New returns a Builder caching modules under cacheDir. cargo and rustc come
// from $CARGO and $RUSTC when set, else from PATH. Build progress (cargo's
// own output) goes to log.
func New(cacheDir string, log io.Writer) *Builder {
	b := &Builder{cacheDir: cacheDir, cargo: "cargo", rustc: "rustc", log: log, locks: map[string]*sync.Mutex{}}
	if v := os.Getenv("CARGO"); v != "" {
		b.cargo = v
	}
	if v := os.Getenv("RUSTC"); v != "" {
		b.rustc = v
	}
	if b.log == nil {
		b.log = io.Discard
	}
	return b
}

// Module is a built module.
type Module struct {
	Path   string // the cached, stripped .wasm
	Cached bool   // true when no build was needed
	Target string // the WASI target it was built for
}

type toolchain struct {
	rustcVersion string // "1.63.0"
	verbose      string // rustc -vV
	target       string
}

// Error explains a build failure, with what to do about it.
type Error struct {
	Crate string
	Msg   string
	Err   error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("building crate %s: %s: %v", e.Crate, e.Msg, e.Err)
	}
	return fmt.Sprintf("building crate %s: %s", e.Crate, e.Msg)
}

func (e *Error) Unwrap() error { return e.Err }

const debianHint = "on Debian 12: apt-get install rustc cargo libstd-rust-dev-wasm32 lld-14, then set CARGO=/usr/bin/cargo RUSTC=/usr/bin/rustc and put [target.wasm32-wasi] linker = \"wasm-ld-14\" in ~/.cargo/config.toml (see \"Debian's Rust toolchain in your own projects\" in ork's README)"

func (b *Builder) detect(ctx context.Context, display string) (*toolchain, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.toolchain != nil {
		return b.toolchain, nil
	}
	if _, err := exec.LookPath(b.cargo); err != nil {
		return nil, &Error{Crate: display, Msg: fmt.Sprintf("cargo (%q) was not found: install Rust with rustup and run `rustup target add wasm32-wasip1`, or %s; set $CARGO to use another cargo", b.cargo, debianHint)}
	}
	out, err := exec.CommandContext(ctx, b.rustc, "-vV").Output()
	if err != nil {
		return nil, &Error{Crate: display, Msg: fmt.Sprintf("running %q -vV failed: install Rust with rustup, or %s; set $RUSTC to use another rustc", b.rustc, debianHint), Err: err}
	}
	tc := &toolchain{verbose: string(out)}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "release: "); ok {
			tc.rustcVersion = strings.TrimSpace(v)
		}
	}
	tc.target = TargetFor(tc.rustcVersion)
	sysroot, err := exec.CommandContext(ctx, b.rustc, "--print", "sysroot").Output()
	if err != nil {
		return nil, &Error{Crate: display, Msg: fmt.Sprintf("running %q --print sysroot failed", b.rustc), Err: err}
	}
	lib := filepath.Join(strings.TrimSpace(string(sysroot)), "lib", "rustlib", tc.target)
	if _, err := os.Stat(lib); err != nil {
		return nil, &Error{Crate: display, Msg: fmt.Sprintf("the Rust target %s is not installed for %s (rustc %s): run `rustup target add %s`, or %s",
			tc.target, b.rustc, tc.rustcVersion, tc.target, debianHint)}
	}
	b.toolchain = tc
	return tc, nil
}

// TargetFor picks the WASI target name for a rustc version: wasm32-wasi was
// renamed wasm32-wasip1 (the old name was removed in Rust 1.84; the new one
// exists since 1.78).
func TargetFor(rustcVersion string) string {
	parts := strings.SplitN(rustcVersion, ".", 3)
	if len(parts) >= 2 {
		major, _ := strconv.Atoi(parts[0])
		minor, _ := strconv.Atoi(parts[1])
		if major == 1 && minor < 78 {
			return "wasm32-wasi"
		}
	}
	return "wasm32-wasip1"
}

func (b *Builder) lock(dir string) func() {
	b.mu.Lock()
	l, ok := b.locks[dir]
	if !ok {
		l = &sync.Mutex{}
		b.locks[dir] = l
	}
	b.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// Build builds the crate at dir (a directory with Cargo.toml) in release mode
// for WASI, unless a module built from the same sources, lock file and
// toolchain is already cached. display names the crate in messages.
func (b *Builder) Build(ctx context.Context, dir, display string) (*Module, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	defer b.lock(abs)()
	if _, err := os.Stat(filepath.Join(abs, "Cargo.toml")); err != nil {
		return nil, &Error{Crate: display, Msg: "no Cargo.toml in " + display}
	}
	tc, err := b.detect(ctx, display)
	if err != nil {
		return nil, err
	}
	key, bin, err := b.sourceKey(ctx, abs, display, tc)
	if err != nil {
		return nil, err
	}
	cached := filepath.Join(b.cacheDir, "modules", key+".wasm")
	if _, err := os.Stat(cached); err == nil {
		return &Module{Path: cached, Cached: true, Target: tc.target}, nil
	}
	fmt.Fprintf(b.log, "building %s (cargo, %s, rustc %s)\n", display, tc.target, tc.rustcVersion)
	cmd := exec.CommandContext(ctx, b.cargo, "build", "--release", "--target", tc.target,
		"--manifest-path", filepath.Join(abs, "Cargo.toml"), "--message-format=json-render-diagnostics", "--bin", bin)
	cmd.Dir = abs // cargo reads .cargo/config.toml from its working directory up
	cmd.Env = append(os.Environ(), "RUSTC="+b.rustc)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = b.log
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &Error{Crate: display, Msg: "cargo build failed (its errors are above)", Err: err}
	}
	artifact, err := findArtifact(stdout.Bytes(), bin)
	if err != nil {
		return nil, &Error{Crate: display, Msg: err.Error()}
	}
	raw, err := os.ReadFile(artifact)
	if err != nil {
		return nil, &Error{Crate: display, Msg: "reading the built module", Err: err}
	}
	stripped, err := wasmstrip.Strip(raw)
	if err != nil {
		return nil, &Error{Crate: display, Msg: "the built module " + artifact + " is not valid WebAssembly", Err: err}
	}
	if err := atomicfile.Write(cached, stripped, 0o644); err != nil {
		return nil, &Error{Crate: display, Msg: "caching the module", Err: err}
	}
	return &Module{Path: cached, Target: tc.target}, nil
}

type metadata struct {
	Packages []struct {
		Name         string  `json:"name"`
		ID           string  `json:"id"`
		Source       *string `json:"source"`
		ManifestPath string  `json:"manifest_path"`
		Targets      []struct {
			Name string   `json:"name"`
			Kind []string `json:"kind"`
		} `json:"targets"`
	} `json:"packages"`
	Resolve *struct {
		Nodes []struct {
			ID   string `json:"id"`
			Deps []struct {
				Pkg      string `json:"pkg"`
				DepKinds []struct {
					Kind *string `json:"kind"`
				} `json:"dep_kinds"`
			} `json:"deps"`
		} `json:"nodes"`
	} `json:"resolve"`
	WorkspaceRoot string `json:"workspace_root"`
}

// closure returns the IDs of the packages that building the package self
// compiles: itself and its normal and build dependencies, transitively.
// Dev-dependencies are left out (a release build of a binary does not build
// them), and so are the workspace's other members.
func (md *metadata) closure(self string) (map[string]bool, error) {
	if md.Resolve == nil {
		return nil, errors.New("cargo metadata has no dependency resolution")
	}
	deps := map[string][]string{}
	for _, n := range md.Resolve.Nodes {
		for _, d := range n.Deps {
			dev := len(d.DepKinds) > 0
			for _, k := range d.DepKinds {
				if k.Kind == nil || *k.Kind != "dev" {
					dev = false
				}
			}
			// Dev-dependencies matter only to the package being tested,
			// which a release build never is.
			if !dev {
				deps[n.ID] = append(deps[n.ID], d.Pkg)
			}
		}
	}
	seen := map[string]bool{self: true}
	todo := []string{self}
	for len(todo) > 0 {
		id := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		for _, d := range deps[id] {
			if !seen[d] {
				seen[d] = true
				todo = append(todo, d)
			}
		}
	}
	return seen, nil
}

// buildEnv reports whether an environment variable changes what cargo builds:
// compiler flags, and cargo settings given as CARGO_BUILD_*, CARGO_PROFILE_*,
// CARGO_TARGET_<triple>_* and CARGO_UNSTABLE_* instead of in a config file.
// Where the output goes (CARGO_TARGET_DIR) does not.
func buildEnv(name string) bool {
	switch name {
	case "RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "RUSTC_WRAPPER", "RUSTC_WORKSPACE_WRAPPER", "RUSTC_BOOTSTRAP":
		return true
	case "CARGO_TARGET_DIR", "CARGO_BUILD_TARGET_DIR":
		return false
	}
	for _, p := range []string{"CARGO_BUILD_", "CARGO_PROFILE_", "CARGO_TARGET_", "CARGO_UNSTABLE_"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// cargoHome is where cargo keeps its own configuration.
func cargoHome() string {
	if v := os.Getenv("CARGO_HOME"); v != "" {
		return v
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cargo")
}

// configFiles lists the files besides the sources that can change what cargo
// builds in dir, in the order cargo reads them: cargo's configuration
// (.cargo/config.toml, or the older .cargo/config, in dir and each of its
// ancestors, then in $CARGO_HOME) and rustup's toolchain override
// (rust-toolchain.toml or rust-toolchain in dir or an ancestor). Cargo looks
// for its configuration from its working directory, which is dir.
// Each comes with a label that does not depend on where the project is, so a
// moved project keeps its cached modules.
func configFiles(dir string) (files, labels []string) {
	up := ""
	for d := dir; ; d = filepath.Dir(d) {
		for _, f := range []string{".cargo/config.toml", ".cargo/config", "rust-toolchain.toml", "rust-toolchain"} {
			files = append(files, filepath.Join(d, filepath.FromSlash(f)))
			labels = append(labels, up+f)
		}
		if filepath.Dir(d) == d {
			break
		}
		up += "../"
	}
	if home := cargoHome(); home != "" {
		for _, f := range []string{"config.toml", "config"} {
			files = append(files, filepath.Join(home, f))
			labels = append(labels, "$CARGO_HOME/"+f)
		}
	}
	return files, labels
}

// sourceKey hashes everything the build of the crate at dir reads besides
// registry sources, which their versions pin: the toolchain, the workspace's
// lock file and root manifest (where [profile] and [patch] live), the sources
// of every local package in the crate's dependency closure (its own and path
// dependencies, but not the workspace's other members), cargo's configuration
// files and the environment variables that configure cargo or rustc.
func (b *Builder) sourceKey(ctx context.Context, dir, display string, tc *toolchain) (string, string, error) {
	cmd := exec.CommandContext(ctx, b.cargo, "metadata", "--format-version", "1", "--manifest-path", filepath.Join(dir, "Cargo.toml"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "RUSTC="+b.rustc)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", "", &Error{Crate: display, Msg: "cargo metadata failed: " + strings.TrimSpace(stderr.String())}
	}
	var md metadata
	if err := json.Unmarshal(out, &md); err != nil {
		return "", "", &Error{Crate: display, Msg: "reading cargo metadata", Err: err}
	}
	h := sha256.New()
	fmt.Fprintf(h, "ork-cargo-v2\n%s\n%s\n", tc.verbose, tc.target)
	bin, selfID := "", ""
	for _, p := range md.Packages {
		if p.Source != nil || filepath.Dir(p.ManifestPath) != dir {
			continue
		}
		selfID = p.ID
		var bins []string
		for _, t := range p.Targets {
			for _, k := range t.Kind {
				if k == "bin" {
					bins = append(bins, t.Name)
				}
			}
		}
		switch len(bins) {
		case 0:
			return "", "", &Error{Crate: display, Msg: "the crate has no binary target: an ork module is a WASI program; put the #[executor] struct or #[ork::task] function in src/main.rs"}
		case 1:
			bin = bins[0]
		default:
			return "", "", &Error{Crate: display, Msg: fmt.Sprintf("the crate has several binary targets (%s): keep one per crate", strings.Join(bins, ", "))}
		}
	}
	if bin == "" {
		return "", "", &Error{Crate: display, Msg: "cargo metadata does not list the crate itself"}
	}
	used, err := md.closure(selfID)
	if err != nil {
		return "", "", &Error{Crate: display, Msg: err.Error()}
	}
	var dirs []string
	for _, p := range md.Packages {
		if !used[p.ID] {
			continue
		}
		if p.Source != nil {
			fmt.Fprintf(h, "dep %s\n", p.ID) // registry packages: the version pins the content
			continue
		}
		dirs = append(dirs, filepath.Dir(p.ManifestPath))
	}
	// Crates of one workspace share sources and a lock file: the crate and its
	// binary tell them apart.
	self, _ := filepath.Rel(md.WorkspaceRoot, dir)
	fmt.Fprintf(h, "crate %s bin %s\n", filepath.ToSlash(self), bin)
	sort.Strings(dirs)
	for _, d := range dirs {
		rel, _ := filepath.Rel(md.WorkspaceRoot, d)
		fmt.Fprintf(h, "package %s\n", filepath.ToSlash(rel))
		if err := hashTree(h, d); err != nil {
			return "", "", &Error{Crate: display, Msg: "hashing sources", Err: err}
		}
	}
	for _, name := range []string{"Cargo.lock", "Cargo.toml"} {
		if err := hashFile(h, "workspace "+name, filepath.Join(md.WorkspaceRoot, name)); err != nil {
			return "", "", &Error{Crate: display, Msg: "hashing the workspace's " + name, Err: err}
		}
	}
	files, labels := configFiles(dir)
	for i, f := range files {
		if err := hashFile(h, "config "+labels[i], f); err != nil {
			return "", "", &Error{Crate: display, Msg: "hashing cargo's configuration", Err: err}
		}
	}
	var env []string
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); buildEnv(name) {
			env = append(env, kv)
		}
	}
	sort.Strings(env)
	for _, kv := range env {
		fmt.Fprintf(h, "env %q\n", kv)
	}
	return hex.EncodeToString(h.Sum(nil)), bin, nil
}

// hashFile hashes the file at path under label, or nothing when there is no
// such file.
func hashFile(h io.Writer, label, path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(h, "%s %x\n", label, sha256.Sum256(b))
	return nil
}

// hashTree hashes every file under dir except build output and hidden
// entries.
func hashTree(h io.Writer, dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if path != dir && (strings.HasPrefix(name, ".") || (d.IsDir() && name == "target")) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		fmt.Fprintf(h, "file %s %x\n", filepath.ToSlash(rel), sum)
		return nil
	})
}

func findArtifact(out []byte, bin string) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var found string
	for sc.Scan() {
		var msg struct {
			Reason string `json:"reason"`
			Target struct {
				Name string   `json:"name"`
				Kind []string `json:"kind"`
			} `json:"target"`
			Filenames  []string `json:"filenames"`
			Executable *string  `json:"executable"`
		}
		if json.Unmarshal(sc.Bytes(), &msg) != nil || msg.Reason != "compiler-artifact" || msg.Target.Name != bin {
			continue
		}
		if msg.Executable != nil && strings.HasSuffix(*msg.Executable, ".wasm") {
			found = *msg.Executable
			continue
		}
		for _, f := range msg.Filenames {
			if strings.HasSuffix(f, ".wasm") {
				found = f
			}
		}
	}
	if found == "" {
		return "", errors.New("cargo reported no .wasm artifact for the binary " + bin)
	}
	return found, nil
}
