package pysnap

import (
	"context"
	"crypto/rand"
	"io"
	"os"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
)

const benchJSON = `import json, re, datetime
d = json.loads(json.dumps({"when": datetime.datetime(2026, 11, 28, 12, 0).isoformat(), "rows": list(range(50))}))
m = re.match(r"(\d+)-(\d+)-(\d+)T", d["when"])
print(datetime.date(*map(int, m.groups())) + datetime.timedelta(days=1), sum(d["rows"]))
`

// BenchmarkColdVsSnapshot compares one Python task per iteration: a fresh
// interpreter booted from scratch (what ork does today) against a fresh
// instance restored from a snapshot, copy-on-write and copied.
func BenchmarkColdVsSnapshot(b *testing.B) {
	f := shared(b)
	ctx := context.Background()
	copied, err := Build(ctx, f.eng, f.prepared, BootSpec{Mounts: testLayout, NoCoW: true})
	if err != nil {
		b.Fatal(err)
	}
	defer copied.Close()
	full, err := f.eng.rt.CompileModule(ctx, f.prepared.Full)
	if err != nil {
		b.Fatal(err)
	}
	defer full.Close(ctx)
	mounts := dirs(b, nil)

	cold := func(b *testing.B, code string) {
		for b.Loop() {
			fs := wazero.NewFSConfig().
				WithReadOnlyDirMount(mounts[0].HostPath, "/").
				WithDirMount(mounts[1].HostPath, "/tmp")
			cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions().
				WithArgs("python", "-c", code).WithFSConfig(fs).
				WithSysWalltime().WithSysNanotime().WithSysNanosleep().WithRandSource(rand.Reader).
				WithStdout(io.Discard).WithStderr(os.Stderr)
			tctx, cancel := context.WithTimeout(ctx, time.Minute)
			mod, err := f.eng.rt.InstantiateModule(tctx, full, cfg)
			if err != nil {
				b.Fatal(err)
			}
			_, err = mod.ExportedFunction("_start").Call(tctx)
			mod.Close(ctx)
			cancel()
			if err != nil && err.Error() != "module closed with exit_code(0)" {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/task")
	}
	snap := func(b *testing.B, s *Snapshot, code string) {
		var restore time.Duration
		for b.Loop() {
			tctx, cancel := context.WithTimeout(ctx, time.Minute)
			res, err := s.Start(tctx, TaskSpec{Mounts: mounts, Code: code, Stderr: os.Stderr})
			cancel()
			if err != nil || res.Err != nil || res.ExitCode != 0 {
				b.Fatal(err, res)
			}
			restore += res.Restore
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/task")
		b.ReportMetric(float64(restore.Microseconds())/1000/float64(b.N), "restore-ms/task")
	}
	b.Run("cold/pass", func(b *testing.B) { cold(b, "pass") })
	b.Run("cold/json+re+datetime", func(b *testing.B) { cold(b, benchJSON) })
	b.Run("snapshot/pass", func(b *testing.B) { snap(b, f.snap, "pass") })
	b.Run("snapshot/json+re+datetime", func(b *testing.B) { snap(b, f.snap, benchJSON) })
	b.Run("snapshot-copy/pass", func(b *testing.B) { snap(b, copied, "pass") })
	b.Run("snapshot-copy/json+re+datetime", func(b *testing.B) { snap(b, copied, benchJSON) })
}
