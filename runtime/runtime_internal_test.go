package runtime

import (
	"testing"
	"time"
)

func TestDemangle(t *testing.T) {
	for in, want := range map[string]string{
		"_ZN5probe10probe_trap17h92216b892dd39a0fE":                                          "probe::probe_trap",
		"_ZN4core9panicking5panic17h0123456789abcdefE":                                       "core::panicking::panic",
		"_ZN53_$LT$std..io..Error$u20$as$u20$core..fmt..Display$GT$3fmt17h0123456789abcdefE": "<std::io::Error as core::fmt::Display>::fmt",
		"abort":      "abort",
		"_ZN3bad99E": "_ZN3bad99E",
	} {
		if got := demangle(in); got != want {
			t.Errorf("demangle(%q) = %q, want %q", in, got, want)
		}
	}
}

// memBytes is the guest memory of wasmtime's host functions: every access
// outside it must fail, without panicking, including at the 4 GiB wrap.
func TestMemBytesBounds(t *testing.T) {
	var m guestMemory = make(memBytes, 16)
	if m.Size() != 16 {
		t.Fatalf("Size() = %d", m.Size())
	}
	if !m.WriteUint32Le(12, 0xdeadbeef) {
		t.Fatal("WriteUint32Le(12) failed")
	}
	if v, ok := m.ReadUint32Le(12); !ok || v != 0xdeadbeef {
		t.Fatalf("ReadUint32Le(12) = %#x, %v", v, ok)
	}
	if !m.WriteUint64Le(8, 1) || !m.Write(0, []byte("ab")) {
		t.Fatal("in-bounds writes failed")
	}
	if b, ok := m.Read(0, 2); !ok || string(b) != "ab" {
		t.Fatalf("Read(0, 2) = %q, %v", b, ok)
	}
	if b, ok := m.Read(16, 0); !ok || len(b) != 0 {
		t.Fatalf("Read(16, 0) = %q, %v", b, ok)
	}
	for name, ok := range map[string]bool{
		"Read past the end":     func() bool { _, ok := m.Read(15, 2); return ok }(),
		"Read wrapping":         func() bool { _, ok := m.Read(0xffffffff, 2); return ok }(),
		"Write past the end":    m.Write(15, []byte("ab")),
		"ReadUint32Le at 13":    func() bool { _, ok := m.ReadUint32Le(13); return ok }(),
		"WriteUint32Le at 13":   m.WriteUint32Le(13, 1),
		"WriteUint64Le at 9":    m.WriteUint64Le(9, 1),
		"WriteUint64Le wrapped": m.WriteUint64Le(0xfffffffc, 1),
	} {
		if ok {
			t.Errorf("%s succeeded", name)
		}
	}
}

// The zero Policy is the default one: 256 MiB of memory and 10 minutes.
func TestPolicyDefaults(t *testing.T) {
	var p Policy
	if got := uint64(p.memoryPages()) * pageSize; got != 256<<20 {
		t.Errorf("default memory = %d bytes, want 256 MiB", got)
	}
	if p.timeout() != 10*time.Minute {
		t.Errorf("default timeout = %s, want 10m", p.timeout())
	}
	if p.timeoutFrom() != "the default timeout" {
		t.Errorf("default timeout source = %q", p.timeoutFrom())
	}
	if p.Env != nil || p.Mounts != nil || p.CPU != 0 {
		t.Errorf("default policy grants something: %+v", p)
	}
}
