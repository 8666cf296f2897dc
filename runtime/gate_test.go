package runtime_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orkrun/ork/abi"
	"github.com/orkrun/ork/internal/pyruntime"
	"github.com/orkrun/ork/runtime"
)

// gatePrelude speaks the clock-gate protocol by hand, without the SDK.
const gatePrelude = `
import json, struct, time
def call(mb, op, req):
    op = op if isinstance(op, bytes) else op.encode(); req = req.encode()
    struct.pack_into("<IIII", mb, 0, len(op), len(req), 0, 0)
    mb[16:16 + len(op) + len(req)] = op + req
    key = struct.pack("<I", id(mb))
    time.clock_getres(id(key) + 16)
    status, n = struct.unpack_from("<II", mb, 0)
    return status, n, bytes(mb[16:16 + n]) if status != 2 else b""
def fetch(mb):
    struct.pack_into("<IIII", mb, 0, 0, 0, 0, 0)
    key = struct.pack("<I", id(mb))
    time.clock_getres(id(key) + 16)
    status, n = struct.unpack_from("<II", mb, 0)
    return status, n, bytes(mb[16:16 + n])
`

// python loads the interpreter on f's host, or skips the test.
func (f *fixture) python(t testing.TB) *runtime.Module {
	t.Helper()
	bin, err := pyruntime.Wasm()
	if err != nil {
		t.Skip(err) // built without the interpreter: `make test` fetches it
	}
	m, err := f.host.LoadInterpreter(context.Background(), "python.wasm", bin)
	require.NoError(t, err)
	return m
}

func runPython(t *testing.T, f *fixture, script string) (*runtime.Result, *abi.Session, string) {
	t.Helper()
	m := f.python(t)
	sess := abi.NewSession(abi.Task{Info: abi.TaskInfo{Task: "gate", Workflow: "wf", RunID: "r"}}, "ork/test", nil)
	var stdout, stderr bytes.Buffer
	res, err := f.host.Run(context.Background(), runtime.Task{
		Module: m, Session: sess, Stdout: &stdout, Stderr: &stderr,
		Policy: runtime.Policy{Mounts: []runtime.Mount{{HostPath: f.project, GuestPath: "/"}}},
		Args:   []string{"python", "-c", gatePrelude + script},
	})
	require.NoError(t, err)
	return res, sess, stdout.String() + stderr.String()
}

func TestGateRoundTripAndGrowth(t *testing.T) {
	eachEngine(t, testGateRoundTripAndGrowth)
}

func testGateRoundTripAndGrowth(t *testing.T, f *fixture) {
	res, sess, out := runPython(t, f, `
mb = bytearray(64)
status, n, body = call(mb, "abi.hello", '{"abi":1,"sdk":"raw"}')
print("hello", status, json.loads(body))
status, n, _ = call(mb, "task.info", "")
print("big", status, n > 48)
mb = bytearray(16 + n)
status, _, body = fetch(mb)
print("fetched", status, json.loads(body)["task"])
status, _, body = call(mb, "metrics.record", '{"name":"1x","value":1}')
print("operror", status, json.loads(body)["error"])
`)
	require.Nil(t, res.Failure, out)
	assert.Contains(t, out, "hello 0 {'abi': 1, 'host': 'ork/test'}")
	assert.Contains(t, out, "big 2 True")
	assert.Contains(t, out, "fetched 0 gate")
	assert.Contains(t, out, `operror 1 metric name "1x" must match`)
	assert.True(t, sess.HelloDone())
}

func TestRealClocksStillWork(t *testing.T) {
	eachEngine(t, testRealClocksStillWork)
}

func testRealClocksStillWork(t *testing.T, f *fixture) {
	res, _, out := runPython(t, f, `
assert time.clock_getres(time.CLOCK_MONOTONIC) == 1e-09, time.clock_getres(time.CLOCK_MONOTONIC)
t0 = time.monotonic(); time.sleep(0.05); assert time.monotonic() - t0 >= 0.05
print("clocks ok")`)
	require.Nil(t, res.Failure, out)
	assert.Contains(t, out, "clocks ok")
}
