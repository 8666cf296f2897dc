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
// wasmtime runs them twice: as is, and with a CPU limit (wasmtime+fuel),
// which runs them on its fuel-metered configuration; fuel/op is the fuel a
// task consumed. Modules are compiled (and cached) before the timer starts.
//
//	go test -run '^$' -bench Engines ./runtime/
func BenchmarkEngines(b *testing.B) {
	ctx := context.Background()
	type variant struct {
		name, engine string
		policy       runtime.Policy
	}
	var variants []variant
	for _, e := range runtime.Engines() {
		variants = append(variants, variant{e, e, runtime.Policy{}})
		if e == "wasmtime" {
			variants = append(variants, variant{e + "+fuel", e, runtime.Policy{CPU: 1e12}})
		}
	}
	// bench runs task in a loop, after one run outside the timer (the fuel
	// configuration compiles its modules, or loads them, on first use).
	bench := func(b *testing.B, h *runtime.Host, task func() runtime.Task) {
		run := func() *runtime.Result {
			res, err := h.Run(ctx, task())
			if err != nil || res.Failure != nil {
				b.Fatal(err, res.Failure)
			}
			return res
		}
		run()
		b.ReportAllocs()
		var fuel, n uint64
		for b.Loop() {
			fuel += run().Fuel
			n++
		}
		if fuel > 0 {
			b.ReportMetric(float64(fuel)/float64(n), "fuel/op")
		}
	}
	for _, v := range variants {
		b.Run("probe-echo/"+v.name, func(b *testing.B) {
			f := setupEngine(b, v.engine)
			bench(b, f.host, func() runtime.Task {
				sess := abi.NewSession(abi.Task{Params: map[string]any{"action": "echo"}}, "ork/bench", nil)
				return runtime.Task{Module: f.probe, Policy: v.policy, Session: sess}
			})
		})
	}
	for _, v := range variants {
		b.Run("python-pass/"+v.name, func(b *testing.B) {
			f := setupEngine(b, v.engine)
			m := f.python(b)
			bench(b, f.host, func() runtime.Task {
				return runtime.Task{Module: m, Policy: v.policy, Session: abi.NewSession(abi.Task{}, "ork/bench", nil),
					Args: []string{"python", "-c", "pass"}}
			})
		})
	}
}
