package runtime

import (
	"context"
	"encoding/binary"
	"errors"

	"github.com/orkrun/ork/abi"
)

// The clock gate: interpreted guests (CPython) cannot import ork:host/v1, so
// they reach the host ABI through WASI's clock_res_get with a mailbox
// address as the clock id. abi/ABI.md specifies the protocol.

const (
	wasiModule      = "wasi_snapshot_preview1"
	gateFunc        = "clock_res_get"
	gateMinID       = 64 // ids below are clocks
	mailboxHeader   = 16
	bytearraySize   = 8  // ob_size in PyByteArrayObject (wasm32)
	bytearrayBytes  = 16 // ob_bytes
	gateStatusOK    = 0
	gateStatusError = 1
	gateStatusBig   = 2

	errnoSuccess = 0
	errnoFault   = 21
	errnoInval   = 28
)

// gateClockResGet is WASI's clock_res_get(id, result_ptr) with the gate:
// it returns the errno for the guest, or the error to trap with.
func gateClockResGet(ctx context.Context, s *abi.Session, mem guestMemory, id, resPtr uint32) (uint32, error) {
	if id < gateMinID {
		if id > 3 {
			return errnoInval, nil
		}
		if mem == nil || !mem.WriteUint64Le(resPtr, 1) {
			return errnoFault, nil
		}
		return errnoSuccess, nil
	}
	if err := checkSession(s, gateFunc); err != nil {
		return 0, err
	}
	if err := gate(ctx, s, mem, id); err != nil {
		return 0, err
	}
	return errnoSuccess, nil
}

func gate(ctx context.Context, s *abi.Session, mem guestMemory, obj uint32) error {
	if mem == nil {
		return abi.Trapf(gateFunc, "the module exports no memory")
	}
	size, ok1 := mem.ReadUint32Le(obj + bytearraySize)
	data, ok2 := mem.ReadUint32Le(obj + bytearrayBytes)
	if !ok1 || !ok2 {
		return abi.Trapf(gateFunc, "mailbox object at %#x is outside memory (%d bytes)", obj, mem.Size())
	}
	if size < mailboxHeader || uint64(data)+uint64(size) > uint64(mem.Size()) {
		return abi.Trapf(gateFunc, "mailbox at %#x of %d bytes is not a buffer of at least %d bytes inside memory (%d bytes)", data, size, mailboxHeader, mem.Size())
	}
	buf, _ := mem.Read(data, size) // a view of guest memory, bounds checked above
	opLen := binary.LittleEndian.Uint32(buf[0:])
	reqLen := binary.LittleEndian.Uint32(buf[4:])
	var resp []byte
	isErr := false
	if opLen == 0 {
		b, e, err := s.TakePending(gateFunc, size-mailboxHeader)
		if err != nil {
			return err
		}
		resp, isErr = b, e
	} else {
		if uint64(mailboxHeader)+uint64(opLen)+uint64(reqLen) > uint64(size) {
			return abi.Trapf(gateFunc, "request (op %d + payload %d bytes) runs past the end of the %d-byte mailbox", opLen, reqLen, size)
		}
		if opLen > abi.MaxOpNameLen {
			return abi.Trapf("", "operation name of %d bytes exceeds the %d-byte limit", opLen, abi.MaxOpNameLen)
		}
		op := string(buf[mailboxHeader : mailboxHeader+opLen])
		req := buf[mailboxHeader+opLen : mailboxHeader+opLen+reqLen]
		r, err := s.DispatchContext(ctx, op, req)
		var oe *abi.OpError
		switch {
		case errors.As(err, &oe):
			resp, isErr = abi.ErrorResponse(oe), true
		case err != nil:
			return err
		default:
			resp = r
		}
	}
	status := uint32(gateStatusOK)
	if isErr {
		status = gateStatusError
	}
	if uint64(mailboxHeader)+uint64(len(resp)) > uint64(size) {
		s.SetPending(resp, isErr)
		status = gateStatusBig
	} else {
		copy(buf[mailboxHeader:], resp)
	}
	binary.LittleEndian.PutUint32(buf[0:], status)
	binary.LittleEndian.PutUint32(buf[4:], uint32(len(resp)))
	binary.LittleEndian.PutUint32(buf[8:], 0)
	binary.LittleEndian.PutUint32(buf[12:], 0)
	return nil
}
