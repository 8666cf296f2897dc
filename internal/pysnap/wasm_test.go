package pysnap

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/orkrun/ork/internal/pyruntime"
)

// toyModule is a hand-assembled interpreter stand-in: two functions of type
// (i32 x4) -> i32 in a table, one data segment, a mutable global 0.
type toyModule struct {
	start        bool
	secondMutGlb bool
	code         []byte // extra instructions at the start of function 0
	dataCount    bool
	importGlobal bool
	passiveData  bool
}

func sec(id byte, payload []byte) []byte {
	b := []byte{id}
	b = appendU32(b, uint32(len(payload)))
	return append(b, payload...)
}

func vec(items ...[]byte) []byte {
	b := appendU32(nil, uint32(len(items)))
	for _, it := range items {
		b = append(b, it...)
	}
	return b
}

func body(instrs ...byte) []byte {
	b := append([]byte{0}, instrs...) // no locals
	b = append(b, 0x0b)
	return append(appendU32(nil, uint32(len(b))), b...)
}

func (t toyModule) bytes() []byte {
	out := append([]byte(nil), wasmMagic...)
	out = append(out, sec(secType, vec(funcTypeBytes(4), []byte{0x60, 0, 0}))...)
	if t.importGlobal {
		imp := appendName(nil, "env")
		imp = appendName(imp, "g")
		imp = append(imp, 3, valI32, 0)
		out = append(out, sec(secImport, vec(imp))...)
	}
	out = append(out, sec(secFunction, vec([]byte{0}, []byte{0}, []byte{1}))...)
	out = append(out, sec(secTable, vec([]byte{0x70, 1, 2, 2}))...)
	out = append(out, sec(secMemory, vec([]byte{0, 1}))...)
	globals := [][]byte{{valI32, 1, 0x41, 0x80, 0x08, 0x0b}} // mut i32 = 1024
	if t.secondMutGlb {
		globals = append(globals, []byte{valI32, 1, 0x41, 0, 0x0b})
	} else {
		globals = append(globals, []byte{valI32, 0, 0x41, 0, 0x0b})
	}
	out = append(out, sec(secGlobal, vec(globals...))...)
	exp := appendName(nil, "memory")
	exp = append(exp, 2, 0)
	out = append(out, sec(secExport, vec(exp))...)
	if t.start {
		out = append(out, sec(secStart, appendU32(nil, 2))...)
	}
	out = append(out, sec(secElement, vec(append([]byte{0, 0x41, 0, 0x0b}, vec([]byte{0}, []byte{1})...)))...)
	if t.dataCount {
		out = append(out, sec(secDataCount, appendU32(nil, 1))...)
	}
	f0 := append(append([]byte(nil), t.code...), 0x20, 0, 0x20, 1, 0x6a, 0x20, 2, 0x6a, 0x20, 3, 0x6a) // a+b+c+d
	f1 := []byte{0x20, 0, 0x20, 1, 0x6c}                                                               // a*b
	out = append(out, sec(secCode, vec(body(f0...), body(f1...), body()))...)
	if t.passiveData {
		out = append(out, sec(secData, vec(append([]byte{1}, appendName(nil, "hello")...)))...)
	} else {
		out = append(out, sec(secData, vec(append([]byte{0, 0x41, 16, 0x0b}, appendName(nil, "hello")...)))...)
	}
	out = append(out, sec(secCustom, appendName(appendName(nil, "producers"), "x"))...)
	return out
}

func TestPrepareToyModule(t *testing.T) {
	ctx := context.Background()
	p, err := Prepare(toyModule{}.bytes())
	if err != nil {
		t.Fatal(err)
	}
	if p.StackPointerInit != 1024 || p.MemoryMinPages != 1 || p.TableSize != 2 {
		t.Fatalf("sp %d, pages %d, table %d", p.StackPointerInit, p.MemoryMinPages, p.TableSize)
	}
	if len(p.Segments) != 1 || p.Segments[0].Offset != 16 || string(p.Segments[0].Data) != "hello" {
		t.Fatalf("segments %+v", p.Segments)
	}
	if bytes.Contains(p.Full, []byte("producers")) {
		t.Error("custom sections other than name must be dropped")
	}
	if _, ok := p.tableFunc(1); !ok {
		t.Error("table slot 1 holds a function of type (i32 x4) -> i32")
	}
	if _, ok := p.tableFunc(2); ok {
		t.Error("table slot 2 does not exist")
	}

	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	for _, tc := range []struct {
		name     string
		bin      []byte
		wantData bool
	}{{"full", p.Full, true}, {"dataless", p.Dataless, false}} {
		t.Run(tc.name, func(t *testing.T) {
			mod, err := rt.InstantiateWithConfig(ctx, tc.bin, wazero.NewModuleConfig().WithName(""))
			if err != nil {
				t.Fatal(err)
			}
			defer mod.Close(ctx)
			got, _ := mod.Memory().Read(16, 5)
			if (string(got) == "hello") != tc.wantData {
				t.Errorf("data at 16 = %q", got)
			}
			call := mod.ExportedFunction(TrampolineExport)
			if r, err := call.Call(ctx, 0, 1, 2, 3, 4); err != nil || r[0] != 10 {
				t.Errorf("call_indirect 0 (1,2,3,4) = %v, %v; want 10", r, err)
			}
			if r, err := call.Call(ctx, 1, 3, 4, 0, 0); err != nil || r[0] != 12 {
				t.Errorf("call_indirect 1 (3,4) = %v, %v; want 12", r, err)
			}
			if _, err := call.Call(ctx, 2, 0, 0, 0, 0); err == nil {
				t.Error("call_indirect out of the table must trap")
			}
			g, ok := mod.ExportedGlobal(StackPointerExport).(api.MutableGlobal)
			if !ok || g.Get() != 1024 {
				t.Fatalf("stack pointer export: %v", g)
			}
			g.Set(512)
			if g.Get() != 512 {
				t.Error("stack pointer not settable")
			}
		})
	}
	if _, err := Prepare(p.Full); err == nil || !strings.Contains(err.Error(), "prepared twice") {
		t.Errorf("preparing twice: %v", err)
	}
}

func TestPrepareRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  toyModule
		want string
	}{
		{"start section", toyModule{start: true}, "start section"},
		{"second mutable global", toyModule{secondMutGlb: true}, "global 1 is mutable"},
		{"global.set 1", toyModule{code: []byte{0x41, 0, 0x24, 1}}, "global.set 1"},
		{"table.set", toyModule{code: []byte{0x41, 0, 0xd0, 0x70, 0x26, 0}}, "table.set"},
		{"table.grow", toyModule{code: []byte{0xd0, 0x70, 0x41, 1, 0xfc, 15, 0, 0x1a}}, "table instruction"},
		{"memory.init", toyModule{dataCount: true, code: []byte{0x41, 0, 0x41, 0, 0x41, 0, 0xfc, 8, 0, 0}}, "memory.init"},
		{"data.drop", toyModule{dataCount: true, code: []byte{0xfc, 9, 0}}, "data.drop"},
		{"passive data", toyModule{passiveData: true}, "passive"},
		{"imported global", toyModule{importGlobal: true}, "only function imports"},
		{"simd", toyModule{code: []byte{0xfd, 0x0c}}, "not supported by the checker"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Prepare(tc.mod.bytes())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
	if _, err := Prepare([]byte("not wasm")); err == nil {
		t.Error("accepted garbage")
	}
	bin := toyModule{}.bytes()
	if _, err := Prepare(bin[:len(bin)-3]); err == nil {
		t.Error("accepted a truncated module")
	}
}

func TestPreparePython(t *testing.T) {
	wasm := pythonWasm(t)
	p, err := Prepare(wasm)
	if err != nil {
		t.Fatal(err)
	}
	// What the design note relies on, for this interpreter.
	if p.StackPointerInit != 524288 {
		t.Errorf("stack pointer starts at %d, want 524288 (a 512 KiB shadow stack at the bottom)", p.StackPointerInit)
	}
	if p.MemoryMinPages != 160 {
		t.Errorf("memory starts at %d pages, want 160", p.MemoryMinPages)
	}
	// The stack grows down from 512 KiB; the data starts just below it
	// (python.wasm's data segments are wasi-vfs's pre-initialised memory,
	// which includes the last frames of that run).
	for _, s := range p.Segments {
		if s.Offset < p.StackPointerInit-4096 {
			t.Fatalf("data segment at %#x deep inside the shadow stack", s.Offset)
		}
	}
	if len(p.Dataless) >= len(p.Full) {
		t.Error("the data-less module is not smaller")
	}
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	// Validation only: the interpreter engine compiles lazily.
	for _, bin := range [][]byte{p.Full, p.Dataless} {
		cm, err := rt.CompileModule(ctx, bin)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := cm.ExportedFunctions()[TrampolineExport]; !ok {
			t.Error("no trampoline export")
		}
		cm.Close(ctx)
	}
}

func pythonWasm(t testing.TB) []byte {
	t.Helper()
	if !pyruntime.Available() {
		t.Skip("python.wasm is not embedded: run `make python-wasm`")
	}
	w, err := pyruntime.Wasm()
	if err != nil {
		t.Fatal(err)
	}
	return w
}

var _ experimental.MemoryAllocator = (*copyMemory)(nil)
