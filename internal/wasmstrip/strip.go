// Package wasmstrip removes DWARF debug sections from WebAssembly binaries.
//
// Debug info makes modules many times larger, slows compilation and makes
// every trap expensive to report. The "name" section is kept, so traps still
// name the guest function.
package wasmstrip

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

var magic = []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}

// Strip returns bin without its ".debug_*" and "external_debug_info" custom
// sections. It returns bin itself when there is nothing to remove.
func Strip(bin []byte) ([]byte, error) { return strip(bin, dropCustom) }

// StripAll returns bin without any custom section.
func StripAll(bin []byte) ([]byte, error) {
	return strip(bin, func([]byte) bool { return true })
}

func strip(bin []byte, drop func(payload []byte) bool) ([]byte, error) {
	if len(bin) < len(magic) || !bytes.Equal(bin[:len(magic)], magic) {
		return nil, errors.New("not a WebAssembly module (bad magic or version)")
	}
	out := make([]byte, 0, len(bin))
	out = append(out, magic...)
	removed := false
	for off := len(magic); off < len(bin); {
		start := off
		id := bin[off]
		off++
		size, n, err := uleb32(bin[off:])
		if err != nil {
			return nil, fmt.Errorf("section at offset %d: %w", start, err)
		}
		off += n
		end := off + int(size)
		if end > len(bin) || end < off {
			return nil, fmt.Errorf("section at offset %d runs past the end of the module", start)
		}
		if id == 0 && drop(bin[off:end]) {
			removed = true
		} else {
			out = append(out, bin[start:end]...)
		}
		off = end
	}
	if !removed {
		return bin, nil
	}
	return out, nil
}

func dropCustom(payload []byte) bool {
	l, n, err := uleb32(payload)
	if err != nil || n+int(l) > len(payload) {
		return false
	}
	name := string(payload[n : n+int(l)])
	return strings.HasPrefix(name, ".debug_") || name == "external_debug_info" || name == "sourceMappingURL"
}

func uleb32(b []byte) (uint32, int, error) {
	var v uint32
	for i := 0; i < 5; i++ {
		if i >= len(b) {
			return 0, 0, errors.New("truncated LEB128")
		}
		v |= uint32(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1, nil
		}
	}
	return 0, 0, errors.New("LEB128 too long")
}
