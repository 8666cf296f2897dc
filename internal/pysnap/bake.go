package pysnap

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// Baking ("approach A" of the shared notes python-snapshot.md) turns a
// snapshot into a standalone module for engines that restore memory from a
// module's own data segments, copy-on-write (wasmtime maps a compiled
// module's memory image from its file): the prepared interpreter with
//
//   - its data segments replaced by the image's non-zero runs,
//   - global 0 (the stack pointer) initialised to its value at the trigger,
//   - memory's minimum raised to the image's pages,
//   - an exported entry, EntryExport, that calls the runner through the
//     trampoline.
//
// An instance of it is the snapshot: the host writes the task's request
// into the mailbox (Request.Write), or gives it on stdin, and calls the
// entry, which ends with os._exit like Start's call.

// EntryExport is a baked module's task entry, of type () -> ().
const EntryExport = "__pysnap_entry"

// BakeFormat changes whenever Bake's output changes meaning; it is part of
// BakedKey.
const BakeFormat = "pysnap-bake-1"

// bakeGap is the longest run of zero bytes kept inside one data segment:
// shorter gaps cost fewer bytes than the segment header they save, and
// fewer segments compile faster. The engine's memory image is made of whole
// pages anyway.
const bakeGap = 64

// BakedKey identifies the module Bake returns: the snapshot's image and
// everything Bake reads besides it.
func (s *Snapshot) BakedKey() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%s\n%d %d %d %d %d\n", BakeFormat, s.Meta.Key, s.Meta.ImageSHA256, s.prepared.DatalessDigest,
		s.Meta.Pages, s.Meta.StackPointer, s.Meta.Runner, s.Meta.Vectorcall, bakeGap)
	return hex.EncodeToString(h.Sum(nil))
}

// Bake returns the snapshot as a standalone module (see above). It reads
// the image, so it fails once the snapshot is closed.
func (s *Snapshot) Bake() ([]byte, error) {
	image, err := s.readImage()
	if err != nil {
		return nil, err
	}
	out, err := bake(s.prepared.Full, image, s.Meta)
	if err != nil {
		return nil, fmt.Errorf("pysnap: baking the snapshot into a module: %w", err)
	}
	return out, nil
}

// readImage returns the image's bytes (read from the mapped file, or the
// copy kept in memory; do not modify them).
func (s *Snapshot) readImage() ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	switch {
	case s.closed:
		return nil, errors.New("pysnap: the snapshot is closed")
	case s.image != nil:
		return s.image, nil
	case s.file != nil:
		b := make([]byte, s.size())
		if _, err := s.file.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("pysnap: reading the snapshot image: %w", err)
		}
		return b, nil
	}
	return nil, errors.New("pysnap: the snapshot has no image")
}

// dataRuns are the image's non-zero runs, with gaps of up to gap zero bytes
// inside a run.
func dataRuns(image []byte, gap int) []chunk {
	var out []chunk
	i, n := 0, len(image)
	for i < n {
		for i < n && image[i] == 0 {
			i++
		}
		if i == n {
			break
		}
		start := i
		end := i
		for i < n {
			if image[i] != 0 {
				i++
				end = i
				continue
			}
			// A zero run: part of this segment when short and followed by data.
			j := i
			for j < n && image[j] == 0 && j-i <= gap {
				j++
			}
			if j == n || j-i > gap {
				break
			}
			i = j
		}
		out = append(out, chunk{start, end})
		i = end
	}
	return out
}

// bake rewrites full (a Prepare output) into the baked module of image.
func bake(full, image []byte, meta Meta) ([]byte, error) {
	if len(full) < len(wasmMagic) || !bytes.Equal(full[:len(wasmMagic)], wasmMagic) {
		return nil, errors.New("not a WebAssembly module")
	}
	if len(image) != int(meta.Pages)*pageSize {
		return nil, fmt.Errorf("the image is %d bytes, not %d pages", len(image), meta.Pages)
	}
	var secs []section
	for r := (reader{b: full, off: len(wasmMagic)}); r.off < len(r.b); {
		id := r.byte()
		payload := r.bytes(int(r.u32()))
		if r.err != nil {
			return nil, fmt.Errorf("malformed module: %w", r.err)
		}
		secs = append(secs, section{id, payload})
	}
	// What the rewrite needs: the type count, the function count, and the
	// trampoline's index.
	var numTypes, numFuncs uint32
	tramp := ^uint32(0)
	for _, s := range secs {
		r := &reader{b: s.payload}
		switch s.id {
		case secType:
			numTypes = r.u32()
		case secImport:
			n := r.u32()
			for i := uint32(0); i < n && r.err == nil; i++ {
				r.name()
				r.name()
				if kind := r.byte(); kind != 0 {
					return nil, fmt.Errorf("import %d is of kind %d", i, kind)
				}
				r.u32()
				numFuncs++
			}
		case secFunction:
			numFuncs += r.u32()
		case secExport:
			n := r.u32()
			for i := uint32(0); i < n && r.err == nil; i++ {
				name, kind, idx := r.name(), r.byte(), r.u32()
				if name == TrampolineExport && kind == 0 {
					tramp = idx
				}
				if name == EntryExport {
					return nil, fmt.Errorf("it already exports %s", EntryExport)
				}
			}
		}
		if r.err != nil {
			return nil, fmt.Errorf("section %d: %w", s.id, r.err)
		}
	}
	if tramp == ^uint32(0) {
		return nil, fmt.Errorf("it does not export %s (was it prepared?)", TrampolineExport)
	}
	runs := dataRuns(image, bakeGap)
	entryType, entryFunc := numTypes, numFuncs

	var out bytes.Buffer
	out.Write(wasmMagic)
	emit := func(id byte, payload []byte) {
		out.WriteByte(id)
		out.Write(appendU32(nil, uint32(len(payload))))
		out.Write(payload)
	}
	seen := map[byte]bool{}
	for _, s := range secs {
		seen[s.id] = true
		r := &reader{b: s.payload}
		switch s.id {
		case secType:
			emit(s.id, appendVec(s.payload, numTypes+1, []byte{0x60, 0, 0}))
		case secFunction:
			emit(s.id, appendVec(s.payload, r.u32()+1, appendU32(nil, entryType)))
		case secMemory:
			r.u32()
			flags := r.byte()
			r.u32() // the declared minimum
			b := appendU32(nil, 1)
			b = append(b, flags)
			b = appendU32(b, meta.Pages)
			if flags&1 != 0 {
				maxPages := r.u32()
				if maxPages < meta.Pages {
					return nil, fmt.Errorf("memory's declared maximum (%d pages) is below the image's %d", maxPages, meta.Pages)
				}
				b = appendU32(b, maxPages)
			}
			if r.err != nil || r.off != len(r.b) {
				return nil, errors.New("unexpected memory section")
			}
			emit(s.id, b)
		case secGlobal:
			n := r.u32()
			r.byte()
			r.byte()
			if _, ok := r.constExpr(); !ok || n == 0 || r.err != nil {
				return nil, errors.New("global 0 is not initialised by a constant")
			}
			b := appendU32(nil, n)
			b = append(b, valI32, 1, 0x41)
			b = appendS32(b, int32(meta.StackPointer))
			b = append(b, 0x0b)
			emit(s.id, append(b, s.payload[r.off:]...))
		case secExport:
			extra := appendName(nil, EntryExport)
			extra = append(extra, 0)
			extra = appendU32(extra, entryFunc)
			emit(s.id, appendVec(s.payload, r.u32()+1, extra))
		case secCode:
			// i32.const runner, 0, 0, 0; i32.const vectorcall: the
			// trampoline's (idx, a, b, c, d) is call_indirect idx (a, b, c, d).
			body := []byte{0x00}
			body = append(body, 0x41)
			body = appendS32(body, int32(meta.Vectorcall))
			body = append(body, 0x41)
			body = appendS32(body, int32(meta.Runner))
			body = append(body, 0x41, 0, 0x41, 0, 0x41, 0, 0x10)
			body = appendU32(body, tramp)
			body = append(body, 0x1a, 0x0b) // drop, end
			entry := appendU32(nil, uint32(len(body)))
			entry = append(entry, body...)
			emit(s.id, appendVec(s.payload, r.u32()+1, entry))
		case secDataCount:
			emit(s.id, appendU32(nil, uint32(len(runs))))
		case secData:
			emit(s.id, dataSection(image, runs))
		default:
			emit(s.id, s.payload)
		}
	}
	if !seen[secData] {
		return nil, errors.New("it has no data section")
	}
	return out.Bytes(), nil
}

func dataSection(image []byte, runs []chunk) []byte {
	size := 0
	for _, c := range runs {
		size += c.end - c.off + 16
	}
	b := make([]byte, 0, size+8)
	b = appendU32(b, uint32(len(runs)))
	for _, c := range runs {
		b = append(b, 0, 0x41)
		b = appendS32(b, int32(uint32(c.off)))
		b = append(b, 0x0b)
		b = appendU32(b, uint32(c.end-c.off))
		b = append(b, image[c.off:c.end]...)
	}
	return b
}

// appendS32 appends v as a signed LEB128 (i32.const's immediate).
func appendS32(b []byte, v int32) []byte {
	x := int64(v)
	for {
		c := byte(x & 0x7f)
		x >>= 7
		if (x == 0 && c&0x40 == 0) || (x == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
