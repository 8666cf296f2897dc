package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/orkrun/ork/internal/cargo"
	"github.com/orkrun/ork/runtime"
)

// BuildOptions are the inputs of `ork build`.
type BuildOptions struct {
	IO     *IO
	Crates []string
}

// NewCmdBuild builds `ork build`.
func NewCmdBuild(ios *IO, runF func(context.Context, *BuildOptions) error) *cobra.Command {
	opts := &BuildOptions{IO: ios}
	cmd := &cobra.Command{
		Use:   "build CRATE_DIR...",
		Short: "Build Rust executor or task crates into WASI modules",
		Long: `Build Rust crates into WASI modules with cargo, in release mode, for the WASI
target your rustc provides (wasm32-wasip1, or wasm32-wasi before Rust 1.78).
Modules are cached by a hash of the crate's sources, path dependencies, lock
file, workspace manifest, cargo configuration, build environment (RUSTFLAGS,
CARGO_PROFILE_* ...) and toolchain, so unchanged crates are not rebuilt. ork
run builds what it needs by itself; this command builds ahead of time and
checks the result.

ork uses $CARGO and $RUSTC when set, and honours cargo's own configuration:
cargo runs in the crate's directory, so .cargo/config.toml there or in any
parent directory applies, then $CARGO_HOME/config.toml.`,
		Example: "  ork build executors/csv",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErr(fmt.Errorf("%s expects at least one crate directory\nUsage: %s", cmd.CommandPath(), cmd.UseLine()))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Crates = args
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return buildRun(cmd.Context(), opts)
		},
	}
	return cmd
}

func buildRun(ctx context.Context, opts *BuildOptions) error {
	dir, err := cacheDir()
	if err != nil {
		return failedErr(err)
	}
	host, err := runtime.New(runtime.WithCacheDir(dir), runtime.WithVersion(Version))
	if err != nil {
		return failedErr(err)
	}
	defer host.Close(context.Background())
	b := cargo.New(dir, opts.IO.ErrOut)
	for _, c := range opts.Crates {
		if st, err := os.Stat(filepath.Join(c, "Cargo.toml")); err != nil || st.IsDir() {
			return usageErr(fmt.Errorf("%s is not a crate directory (no Cargo.toml)", c))
		}
		m, err := b.Build(ctx, c, c)
		if err != nil {
			return failedErr(err)
		}
		bin, err := os.ReadFile(m.Path)
		if err != nil {
			return failedErr(err)
		}
		if _, err := host.LoadModule(ctx, c, bin); err != nil {
			return failedErr(err)
		}
		state := "built"
		if m.Cached {
			state = "up to date"
		}
		fmt.Fprintf(opts.IO.Out, "%s: %s (%s, %s) %s\n", c, state, m.Target, runtime.FormatBytes(uint64(len(bin))), m.Path)
	}
	return nil
}
