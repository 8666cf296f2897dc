package pysnap

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// A minimal WebAssembly binary reader and writer: just enough to check the
// interpreter's assumptions and to add two exports and one function.

// Names of what Prepare adds to the module.
const (
	// StackPointerExport exports global 0, the shadow-stack pointer.
	StackPointerExport = "__pysnap_stack_pointer"
	// TrampolineExport is (idx, a, b, c, d) -> call_indirect idx (a, b, c, d).
	TrampolineExport = "__pysnap_call"
)

var wasmMagic = []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}

const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12

	valI32 = 0x7f
)

// DataSegment is an active data segment of memory 0.
type DataSegment struct {
	Offset uint32
	Data   []byte // a view into the module bytes
}

// Prepared is python.wasm made restorable. Prepare it once per interpreter.
type Prepared struct {
	// Digest is the sha256 of the module Prepare was given.
	Digest string
	// Full is the module with global 0 exported and the trampoline added.
	Full []byte
	// Dataless is Full without its data segments: restores map the snapshot
	// image instead, and a boot writes Segments itself before _start.
	Dataless []byte
	// DatalessDigest is the sha256 of Dataless.
	DatalessDigest string
	// Segments are the data segments removed from Dataless.
	Segments []DataSegment
	// StackPointerInit is global 0's initial value.
	StackPointerInit uint32
	// MemoryMinPages is the declared initial size of memory 0.
	MemoryMinPages uint32
	// TableSize is the declared initial size of table 0.
	TableSize uint32
	// What verify needs to check the vectorcall slot (see tableFunc).
	tableFuncs []uint32 // function index per table slot (^0 = empty)
	funcTypes  []uint32 // type index per function (imports first)
	types      []funcType
	funcNames  map[uint32]string
}

type funcType struct{ params, results []byte }

func (t funcType) is(params, results int) bool {
	if len(t.params) != params || len(t.results) != results {
		return false
	}
	for _, p := range t.params {
		if p != valI32 {
			return false
		}
	}
	for _, r := range t.results {
		if r != valI32 {
			return false
		}
	}
	return true
}

type section struct {
	id      byte
	payload []byte
}

// Prepare checks that wasm is an interpreter whose whole mutable state is its
// linear memory plus global 0 (one mutable global, a table nothing changes at
// run time, no start section, no memory.init/data.drop), and returns the
// module with global 0 exported and the trampoline added, and a variant
// without data segments.
func Prepare(wasm []byte) (*Prepared, error) {
	if len(wasm) < len(wasmMagic) || !bytes.Equal(wasm[:len(wasmMagic)], wasmMagic) {
		return nil, errors.New("pysnap: not a WebAssembly module (bad magic or version)")
	}
	var secs []section
	for r := (reader{b: wasm, off: len(wasmMagic)}); r.off < len(r.b); {
		id := r.byte()
		size := r.u32()
		payload := r.bytes(int(size))
		if r.err != nil {
			return nil, fmt.Errorf("pysnap: malformed module: %w", r.err)
		}
		secs = append(secs, section{id, payload})
	}
	sum := sha256.Sum256(wasm)
	p := &Prepared{Digest: hex.EncodeToString(sum[:])}
	m, err := analyze(secs, p)
	if err != nil {
		return nil, fmt.Errorf("pysnap: this interpreter cannot be snapshotted: %w", err)
	}
	full, dataless := m.rewrite(secs)
	p.Full = full
	p.Dataless = dataless
	dsum := sha256.Sum256(dataless)
	p.DatalessDigest = hex.EncodeToString(dsum[:])
	return p, nil
}

// module is what analyze learned and rewrite needs.
type module struct {
	numTypes       uint32
	numFuncImports uint32
	numFuncs       uint32 // defined
	callType       uint32 // (i32 x4) -> i32, appended when missing
	appendCallType bool
	trampType      uint32 // (i32 x5) -> i32, always appended
}

func analyze(secs []section, p *Prepared) (*module, error) {
	m := &module{}
	var (
		seen        = map[byte]bool{}
		numGlobals  uint32
		numTables   uint32
		haveMemory  bool
		memExported bool
		dataCount   = -1
		dataSegs    = 0
		codeCount   = -1
		exportNames = map[string]bool{}
	)
	for _, s := range secs {
		if s.id != secCustom {
			if seen[s.id] {
				return nil, fmt.Errorf("section %d appears twice", s.id)
			}
			seen[s.id] = true
		}
		r := &reader{b: s.payload}
		switch s.id {
		case secCustom:
			name := r.name()
			if name == "name" && r.err == nil {
				p.funcNames = parseFuncNames(r)
			}
		case secType:
			n := r.u32()
			for i := uint32(0); i < n && r.err == nil; i++ {
				if r.byte() != 0x60 {
					return nil, fmt.Errorf("type %d is not a function type", i)
				}
				var t funcType
				t.params = r.bytes(int(r.u32()))
				t.results = r.bytes(int(r.u32()))
				p.types = append(p.types, t)
			}
			m.numTypes = n
		case secImport:
			n := r.u32()
			for i := uint32(0); i < n && r.err == nil; i++ {
				mod, name := r.name(), r.name()
				kind := r.byte()
				if kind != 0 {
					return nil, fmt.Errorf("it imports %s.%s of kind %d; only function imports are supported (an imported global, table or memory would be state outside the image)", mod, name, kind)
				}
				p.funcTypes = append(p.funcTypes, r.u32())
				m.numFuncImports++
			}
		case secFunction:
			n := r.u32()
			for i := uint32(0); i < n && r.err == nil; i++ {
				p.funcTypes = append(p.funcTypes, r.u32())
			}
			m.numFuncs = n
		case secTable:
			numTables = r.u32()
			if numTables != 1 {
				return nil, fmt.Errorf("it has %d tables, want 1", numTables)
			}
			if et := r.byte(); et != 0x70 {
				return nil, fmt.Errorf("table 0 holds type %#x, not funcref", et)
			}
			flags := r.byte()
			p.TableSize = r.u32()
			if flags&1 != 0 {
				r.u32()
			}
		case secMemory:
			if n := r.u32(); n != 1 {
				return nil, fmt.Errorf("it has %d memories, want 1", n)
			}
			flags := r.byte()
			if flags&2 != 0 {
				return nil, errors.New("its memory is shared")
			}
			if flags&4 != 0 {
				return nil, errors.New("its memory is 64-bit")
			}
			p.MemoryMinPages = r.u32()
			haveMemory = true
		case secGlobal:
			numGlobals = r.u32()
			for i := uint32(0); i < numGlobals && r.err == nil; i++ {
				vt, mut := r.byte(), r.byte()
				v, isConst := r.constExpr()
				switch {
				case i == 0:
					if vt != valI32 || mut != 1 || !isConst {
						return nil, errors.New("global 0 is not a mutable i32 initialised by a constant (the shadow-stack pointer)")
					}
					p.StackPointerInit = v
				case mut != 0:
					return nil, fmt.Errorf("global %d is mutable; only global 0 (the stack pointer) may be, or the image would not hold the whole state", i)
				}
			}
		case secExport:
			n := r.u32()
			for i := uint32(0); i < n && r.err == nil; i++ {
				name := r.name()
				kind := r.byte()
				idx := r.u32()
				exportNames[name] = true
				if kind == 2 && idx == 0 && name == "memory" {
					memExported = true
				}
			}
		case secStart:
			return nil, errors.New("it has a start section (code that runs at instantiation would run again on every restore)")
		case secElement:
			if err := parseElements(r, p); err != nil {
				return nil, err
			}
		case secDataCount:
			dataCount = int(r.u32())
		case secCode:
			n := r.u32()
			codeCount = int(n)
			for i := uint32(0); i < n && r.err == nil; i++ {
				body := r.bytes(int(r.u32()))
				if r.err != nil {
					break
				}
				if err := checkCode(body); err != nil {
					name := p.funcNames[m.numFuncImports+i]
					if name == "" {
						name = fmt.Sprintf("function %d", m.numFuncImports+i)
					}
					return nil, fmt.Errorf("%s: %w", name, err)
				}
			}
		case secData:
			n := r.u32()
			dataSegs = int(n)
			for i := uint32(0); i < n && r.err == nil; i++ {
				flags := r.u32()
				if flags == 2 {
					if mem := r.u32(); mem != 0 {
						return nil, fmt.Errorf("data segment %d targets memory %d", i, mem)
					}
				} else if flags != 0 {
					return nil, fmt.Errorf("data segment %d is passive (flags %d): it could be applied at run time", i, flags)
				}
				off, ok := r.constExpr()
				if !ok {
					return nil, fmt.Errorf("data segment %d has a non-constant offset", i)
				}
				data := r.bytes(int(r.u32()))
				p.Segments = append(p.Segments, DataSegment{Offset: off, Data: data})
			}
		}
		if r.err != nil {
			return nil, fmt.Errorf("section %d: %w", s.id, r.err)
		}
	}
	switch {
	case !haveMemory || !memExported:
		return nil, errors.New(`it does not define and export "memory"`)
	case numGlobals == 0:
		return nil, errors.New("it has no globals (expected the shadow-stack pointer as global 0)")
	case numTables == 0:
		return nil, errors.New("it has no function table")
	case codeCount != int(m.numFuncs):
		return nil, fmt.Errorf("its code section has %d bodies for %d functions", codeCount, m.numFuncs)
	case dataCount >= 0 && dataCount != dataSegs:
		return nil, fmt.Errorf("its data count (%d) does not match its %d data segments", dataCount, dataSegs)
	case !seen[secType] || !seen[secFunction] || !seen[secExport] || !seen[secCode]:
		return nil, errors.New("it lacks a type, function, export or code section")
	}
	for _, name := range []string{StackPointerExport, TrampolineExport} {
		if exportNames[name] {
			return nil, fmt.Errorf("it already exports %q (prepared twice?)", name)
		}
	}
	m.callType = ^uint32(0)
	for i, t := range p.types {
		if t.is(4, 1) {
			m.callType = uint32(i)
			break
		}
	}
	next := m.numTypes
	if m.callType == ^uint32(0) {
		m.callType, m.appendCallType = next, true
		next++
	}
	m.trampType = next
	return m, nil
}

// checkCode scans one function body for instructions that would put state
// outside linear memory and global 0, or re-apply data at run time.
func checkCode(body []byte) error {
	r := &reader{b: body}
	groups := r.u32()
	for i := uint32(0); i < groups && r.err == nil; i++ {
		r.u32()
		r.byte()
	}
	for r.off < len(r.b) && r.err == nil {
		op := r.byte()
		switch {
		case op == 0x00, op == 0x01, op == 0x05, op == 0x0b, op == 0x0f, op == 0x1a, op == 0x1b, op == 0xd1:
		case op >= 0x45 && op <= 0xc4:
		case op >= 0x02 && op <= 0x04:
			r.s33()
		case op == 0x0c, op == 0x0d, op == 0x10, op == 0xd2:
			r.u32()
		case op == 0x0e:
			n := r.u32()
			for j := uint32(0); j <= n && r.err == nil; j++ {
				r.u32()
			}
		case op == 0x11:
			r.u32()
			r.u32()
		case op == 0x1c:
			r.bytes(int(r.u32()))
		case op >= 0x20 && op <= 0x23:
			r.u32()
		case op == 0x24:
			if g := r.u32(); g != 0 {
				return fmt.Errorf("global.set %d (only global 0 may change)", g)
			}
		case op == 0x25:
			r.u32()
		case op == 0x26:
			return errors.New("table.set (the function table must be static)")
		case op >= 0x28 && op <= 0x3e:
			r.u32()
			r.u32()
		case op == 0x3f, op == 0x40:
			r.u32()
		case op == 0x41:
			r.s64()
		case op == 0x42:
			r.s64()
		case op == 0x43:
			r.bytes(4)
		case op == 0x44:
			r.bytes(8)
		case op == 0xd0:
			r.byte()
		case op == 0xfc:
			switch sub := r.u32(); {
			case sub <= 7:
			case sub == 8:
				return errors.New("memory.init (data segments are applied at run time)")
			case sub == 9:
				return errors.New("data.drop")
			case sub == 10:
				r.u32()
				r.u32()
			case sub == 11:
				r.u32()
			case sub == 16:
				r.u32()
			case sub >= 12 && sub <= 17:
				return fmt.Errorf("table instruction 0xfc %d (the function table must be static)", sub)
			default:
				return fmt.Errorf("unknown instruction 0xfc %d", sub)
			}
		default:
			return fmt.Errorf("instruction %#x is not supported by the checker (SIMD, threads, exceptions or tail calls)", op)
		}
	}
	if r.err != nil {
		return r.err
	}
	return nil
}

func parseElements(r *reader, p *Prepared) error {
	p.tableFuncs = make([]uint32, p.TableSize)
	for i := range p.tableFuncs {
		p.tableFuncs[i] = ^uint32(0)
	}
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		flags := r.u32()
		var off uint32
		switch flags {
		case 0:
			v, ok := r.constExpr()
			if !ok {
				return fmt.Errorf("element segment %d has a non-constant offset", i)
			}
			off = v
		case 2:
			if t := r.u32(); t != 0 {
				return fmt.Errorf("element segment %d targets table %d", i, t)
			}
			v, ok := r.constExpr()
			if !ok {
				return fmt.Errorf("element segment %d has a non-constant offset", i)
			}
			off = v
			if k := r.byte(); k != 0 {
				return fmt.Errorf("element segment %d has element kind %d", i, k)
			}
		default:
			return fmt.Errorf("element segment %d has flags %d (only active function-index segments are supported)", i, flags)
		}
		k := r.u32()
		for j := uint32(0); j < k && r.err == nil; j++ {
			f := r.u32()
			if int(off+j) < len(p.tableFuncs) {
				p.tableFuncs[off+j] = f
			}
		}
	}
	return r.err
}

func parseFuncNames(r *reader) map[uint32]string {
	names := map[uint32]string{}
	for r.off < len(r.b) && r.err == nil {
		id := r.byte()
		sub := &reader{b: r.bytes(int(r.u32()))}
		if r.err != nil || id != 1 {
			continue
		}
		n := sub.u32()
		for i := uint32(0); i < n && sub.err == nil; i++ {
			idx := sub.u32()
			names[idx] = sub.name()
		}
	}
	return names
}

// tableFunc describes table slot idx: whether it holds a function of type
// (i32 x4) -> i32, and that function's name when known.
func (p *Prepared) tableFunc(idx uint32) (name string, ok bool) {
	if idx >= uint32(len(p.tableFuncs)) {
		return "", false
	}
	f := p.tableFuncs[idx]
	if f == ^uint32(0) || f >= uint32(len(p.funcTypes)) {
		return "", false
	}
	t := p.funcTypes[f]
	if t >= uint32(len(p.types)) || !p.types[t].is(4, 1) {
		return "", false
	}
	return p.funcNames[f], true
}

// rewrite returns the full and the data-less module.
func (m *module) rewrite(secs []section) (full, dataless []byte) {
	var out, outNoData bytes.Buffer
	out.Write(wasmMagic)
	outNoData.Write(wasmMagic)
	emit := func(id byte, payload []byte, withData bool) {
		var hdr []byte
		hdr = append(hdr, id)
		hdr = appendU32(hdr, uint32(len(payload)))
		out.Write(hdr)
		out.Write(payload)
		if !withData {
			outNoData.Write(hdr)
			outNoData.Write(payload)
		}
	}
	trampIdx := m.numFuncImports + m.numFuncs
	for _, s := range secs {
		switch s.id {
		case secCustom:
			r := &reader{b: s.payload}
			if r.name() != "name" {
				continue // drop producers, target_features, debug info
			}
			emit(s.id, s.payload, false)
		case secType:
			var extra []byte
			if m.appendCallType {
				extra = append(extra, funcTypeBytes(4)...)
			}
			extra = append(extra, funcTypeBytes(5)...)
			n := m.numTypes + 1
			if m.appendCallType {
				n++
			}
			emit(s.id, appendVec(s.payload, n, extra), false)
		case secFunction:
			emit(s.id, appendVec(s.payload, m.numFuncs+1, appendU32(nil, m.trampType)), false)
		case secExport:
			r := &reader{b: s.payload}
			n := r.u32()
			var extra []byte
			extra = appendName(extra, StackPointerExport)
			extra = append(extra, 3) // global
			extra = appendU32(extra, 0)
			extra = appendName(extra, TrampolineExport)
			extra = append(extra, 0) // func
			extra = appendU32(extra, trampIdx)
			emit(s.id, appendVec(s.payload, n+2, extra), false)
		case secCode:
			// local.get 1..4, local.get 0, call_indirect callType table 0, end
			body := []byte{0x00, 0x20, 1, 0x20, 2, 0x20, 3, 0x20, 4, 0x20, 0, 0x11}
			body = appendU32(body, m.callType)
			body = append(body, 0x00, 0x0b)
			entry := appendU32(nil, uint32(len(body)))
			entry = append(entry, body...)
			emit(s.id, appendVec(s.payload, m.numFuncs+1, entry), false)
		case secData, secDataCount:
			emit(s.id, s.payload, true)
		default:
			emit(s.id, s.payload, false)
		}
	}
	return out.Bytes(), outNoData.Bytes()
}

func funcTypeBytes(params int) []byte {
	b := []byte{0x60, byte(params)}
	for i := 0; i < params; i++ {
		b = append(b, valI32)
	}
	return append(b, 1, valI32)
}

// appendVec re-encodes a vector payload with count n and extra items after
// the existing ones.
func appendVec(payload []byte, n uint32, extra []byte) []byte {
	r := &reader{b: payload}
	r.u32()
	out := appendU32(nil, n)
	out = append(out, payload[r.off:]...)
	return append(out, extra...)
}

func appendU32(b []byte, v uint32) []byte {
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

func appendName(b []byte, s string) []byte {
	b = appendU32(b, uint32(len(s)))
	return append(b, s...)
}

// reader decodes a byte slice; the first error sticks and makes every later
// read return zero values.
type reader struct {
	b   []byte
	off int
	err error
}

var errTruncated = errors.New("truncated")

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.err = errTruncated
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || r.off+n > len(r.b) || r.off+n < r.off {
		r.err = errTruncated
		return nil
	}
	b := r.b[r.off : r.off+n]
	r.off += n
	return b
}

func (r *reader) u32() uint32 {
	var v uint32
	for i := 0; i < 5; i++ {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= uint32(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return v
		}
	}
	r.err = errors.New("LEB128 too long")
	return 0
}

// s64 reads a signed LEB128 of up to 64 bits.
func (r *reader) s64() int64 {
	var v int64
	var shift uint
	for i := 0; i < 10; i++ {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return v
		}
	}
	r.err = errors.New("LEB128 too long")
	return 0
}

// s33 reads a block type: 0x40, a value type, or a type index.
func (r *reader) s33() { r.s64() }

func (r *reader) name() string { return string(r.bytes(int(r.u32()))) }

// constExpr reads a constant expression; it returns the value of an
// `i32.const v; end` expression and whether it was one.
func (r *reader) constExpr() (uint32, bool) {
	var v uint32
	ok := true
	for n := 0; r.err == nil; n++ {
		switch op := r.byte(); op {
		case 0x0b:
			return v, ok && n == 1
		case 0x41:
			v = uint32(int32(r.s64()))
		case 0x42:
			r.s64()
			ok = false
		case 0x43:
			r.bytes(4)
			ok = false
		case 0x44:
			r.bytes(8)
			ok = false
		case 0x23, 0xd2:
			r.u32()
			ok = false
		case 0xd0:
			r.byte()
			ok = false
		default:
			r.err = fmt.Errorf("unsupported constant expression opcode %#x", op)
		}
	}
	return 0, false
}
