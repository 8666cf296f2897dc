package runtime

import (
	"context"
	"encoding/binary"
	"errors"

	"github.com/orkrun/ork/abi"
)

// The host ABI's functions (ork:host/v1 call and response), written once
// against guestMemory so that every engine traps on the same misuse with the
// same message. Engines wrap them: wazero panics with the returned error
// (which wazero turns into an error of the call), wasmtime returns a trap and
// keeps the error for classify.

// guestMemory is a guest's linear memory. wazero's api.Memory implements it;
// so does memBytes, a view of a wasmtime memory during a host call.
type guestMemory interface {
	Read(offset, n uint32) ([]byte, bool) // a view, not a copy
	Write(offset uint32, b []byte) bool
	ReadUint32Le(offset uint32) (uint32, bool)
	WriteUint32Le(offset, v uint32) bool
	WriteUint64Le(offset uint32, v uint64) bool
	Size() uint32
}

// memBytes is a guestMemory over a byte slice (the memory's current data).
type memBytes []byte

func (m memBytes) Read(offset, n uint32) ([]byte, bool) {
	if uint64(offset)+uint64(n) > uint64(len(m)) {
		return nil, false
	}
	return m[offset : offset+n : offset+n], true
}

func (m memBytes) Write(offset uint32, b []byte) bool {
	if uint64(offset)+uint64(len(b)) > uint64(len(m)) {
		return false
	}
	copy(m[offset:], b)
	return true
}

func (m memBytes) ReadUint32Le(offset uint32) (uint32, bool) {
	b, ok := m.Read(offset, 4)
	if !ok {
		return 0, false
	}
	return binary.LittleEndian.Uint32(b), true
}

func (m memBytes) WriteUint32Le(offset, v uint32) bool {
	b, ok := m.Read(offset, 4)
	if !ok {
		return false
	}
	binary.LittleEndian.PutUint32(b, v)
	return true
}

func (m memBytes) WriteUint64Le(offset uint32, v uint64) bool {
	b, ok := m.Read(offset, 8)
	if !ok {
		return false
	}
	binary.LittleEndian.PutUint64(b, v)
	return true
}

func (m memBytes) Size() uint32 { return uint32(len(m)) }

// checkSession returns the trap for a host call made while no task runs.
func checkSession(s *abi.Session, fn string) error {
	if s == nil {
		return abi.Trapf(fn, "no task is running")
	}
	return nil
}

func readGuest(mem guestMemory, what string, ptr, n uint32) ([]byte, error) {
	if mem == nil {
		return nil, abi.Trapf(abi.FuncCall, "the module exports no memory")
	}
	if what == "req" && n > abi.MaxRequestBytes {
		return nil, abi.Trapf(abi.FuncCall, "request of %d bytes exceeds the %d MiB limit", n, abi.MaxRequestBytes>>20)
	}
	b, ok := mem.Read(ptr, n)
	if !ok {
		return nil, abi.Trapf(abi.FuncCall, "out of bounds: %s_ptr=%#x %s_len=%d, memory is %d bytes", what, ptr, what, n, mem.Size())
	}
	return b, nil
}

// hostCall is ork:host/v1 call(op_ptr, op_len, req_ptr, req_len) -> i32.
func hostCall(ctx context.Context, s *abi.Session, mem guestMemory, opPtr, opLen, reqPtr, reqLen uint32) (int32, error) {
	if err := checkSession(s, abi.FuncCall); err != nil {
		return 0, err
	}
	if opLen > abi.MaxOpNameLen {
		return 0, abi.Trapf("", "operation name of %d bytes exceeds the %d-byte limit", opLen, abi.MaxOpNameLen)
	}
	opb, err := readGuest(mem, "op", opPtr, opLen)
	if err != nil {
		return 0, err
	}
	op := string(opb)
	var req []byte
	if reqLen > 0 {
		if req, err = readGuest(mem, "req", reqPtr, reqLen); err != nil {
			return 0, err
		}
	}
	resp, err := s.DispatchContext(ctx, op, req)
	if err != nil {
		var oe *abi.OpError
		if errors.As(err, &oe) {
			b := abi.ErrorResponse(oe)
			s.SetPending(b, true)
			return -int32(len(b)), nil
		}
		return 0, err
	}
	s.SetPending(resp, false)
	return int32(len(resp)), nil
}

// hostResponse is ork:host/v1 response(buf_ptr, buf_len) -> i32.
func hostResponse(s *abi.Session, mem guestMemory, ptr, n uint32) (int32, error) {
	if err := checkSession(s, abi.FuncResponse); err != nil {
		return 0, err
	}
	b, _, err := s.TakePending(abi.FuncResponse, n)
	if err != nil {
		return 0, err
	}
	if mem == nil || !mem.Write(ptr, b) {
		size := uint32(0)
		if mem != nil {
			size = mem.Size()
		}
		return 0, abi.Trapf(abi.FuncResponse, "out of bounds: buf_ptr=%#x buf_len=%d, memory is %d bytes", ptr, n, size)
	}
	return int32(len(b)), nil
}
