package wasmstrip

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
)

func section(id byte, payload []byte) []byte {
	return append(append([]byte{id}, uleb(uint32(len(payload)))...), payload...)
}

func custom(name string, data []byte) []byte {
	p := append(uleb(uint32(len(name))), name...)
	return section(0, append(p, data...))
}

func uleb(v uint32) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

// A module exporting answer() -> i32 (returning 42), its standard sections
// interleaved with custom ones; one custom payload is 200 bytes so its size
// needs a two-byte LEB128.
var (
	typeSec   = section(1, []byte{1, 0x60, 0, 1, 0x7f})
	funcSec   = section(3, []byte{1, 0})
	exportSec = section(7, append(append([]byte{1}, append(uleb(6), "answer"...)...), 0, 0))
	codeSec   = section(10, []byte{1, 4, 0, 0x41, 42, 0x0b})

	debugInfo = custom(".debug_info", bytes.Repeat([]byte{0xAB}, 200))
	debugLine = custom(".debug_line", []byte{1, 2, 3})
	extDebug  = custom("external_debug_info", []byte("x.dwarf"))
	srcMap    = custom("sourceMappingURL", []byte("x.map"))
	names     = custom("name", []byte{})
	producers = custom("producers", []byte{0})
)

func module(parts ...[]byte) []byte {
	return bytes.Join(append([][]byte{magic}, parts...), nil)
}

func TestStripDropsDebugSectionsAndKeepsTheRest(t *testing.T) {
	in := module(debugInfo, typeSec, names, funcSec, debugLine, exportSec, extDebug, codeSec, srcMap, producers)
	got, err := Strip(in)
	if err != nil {
		t.Fatal(err)
	}
	want := module(typeSec, names, funcSec, exportSec, codeSec, producers)
	if !bytes.Equal(got, want) {
		t.Fatalf("Strip:\n got %x\nwant %x", got, want)
	}
	callAnswer(t, got)
}

func TestStripAllDropsEveryCustomSection(t *testing.T) {
	in := module(debugInfo, typeSec, names, funcSec, debugLine, exportSec, extDebug, codeSec, srcMap, producers)
	got, err := StripAll(in)
	if err != nil {
		t.Fatal(err)
	}
	want := module(typeSec, funcSec, exportSec, codeSec)
	if !bytes.Equal(got, want) {
		t.Fatalf("StripAll:\n got %x\nwant %x", got, want)
	}
	callAnswer(t, got)
}

func TestStripLeavesAModuleWithoutDebugInfoAlone(t *testing.T) {
	in := module(typeSec, funcSec, exportSec, codeSec, names)
	got, err := Strip(in)
	if err != nil {
		t.Fatal(err)
	}
	if &got[0] != &in[0] || len(got) != len(in) {
		t.Fatal("Strip copied a module it had nothing to remove from")
	}
}

func TestStripRefusesMalformedInput(t *testing.T) {
	for name, tc := range map[string]struct {
		in   []byte
		want string
	}{
		"not wasm":        {[]byte("#!/bin/sh\necho hi\n"), "not a WebAssembly module"},
		"empty":           {nil, "not a WebAssembly module"},
		"section too big": {module(typeSec, []byte{0, 100, 1, 2}), "section at offset 15 runs past the end of the module"},
		"truncated size":  {module(typeSec, []byte{0, 0x80}), "section at offset 15: truncated LEB128"},
	} {
		t.Run(name, func(t *testing.T) {
			for _, f := range []func([]byte) ([]byte, error){Strip, StripAll} {
				_, err := f(tc.in)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("got %v, want an error containing %q", err, tc.want)
				}
			}
		})
	}
}

// callAnswer compiles and runs the stripped module, so what is left is still
// a valid module that behaves the same.
func callAnswer(t *testing.T, bin []byte) {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	m, err := r.Instantiate(ctx, bin)
	if err != nil {
		t.Fatalf("the stripped module does not load: %v", err)
	}
	res, err := m.ExportedFunction("answer").Call(ctx)
	if err != nil || len(res) != 1 || res[0] != 42 {
		t.Fatalf("answer() = %v, %v; want 42", res, err)
	}
}
