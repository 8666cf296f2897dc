package runtime_test

import (
	"context"
	"testing"

	"github.com/orkrun/ork/abi"
	"github.com/orkrun/ork/runtime"
)

// BenchmarkEngines compares the engines end to end, a fresh instance per
// task: the Rust probe's echo (abi.hello, task.info, params, a metric, a
// log line, stdout and stderr, the output), and CPython's `-c pass`, cold.
// Modules are compiled (and cached) before the timer starts.
//
//	go test -run '^$' -bench Engines ./runtime/
func BenchmarkEngines(b *testing.B) {
	ctx := context.Background()
	for _, e := range runtime.Engines() {
		b.Run("probe-echo/"+e, func(b *testing.B) {
			f := setupEngine(b, e)
			b.ReportAllocs()
			for b.Loop() {
				sess := abi.NewSession(abi.Task{Params: map[string]any{"action": "echo"}}, "ork/bench", nil)
				res, err := f.host.Run(ctx, runtime.Task{Module: f.probe, Session: sess})
				if err != nil || res.Failure != nil {
					b.Fatal(err, res.Failure)
				}
			}
		})
		b.Run("python-pass/"+e, func(b *testing.B) {
			f := setupEngine(b, e)
			m := f.python(b)
			b.ReportAllocs()
			for b.Loop() {
				res, err := f.host.Run(ctx, runtime.Task{Module: m, Session: abi.NewSession(abi.Task{}, "ork/bench", nil),
					Args: []string{"python", "-c", "pass"}})
				if err != nil || res.Failure != nil {
					b.Fatal(err, res.Failure)
				}
			}
		})
	}
}
