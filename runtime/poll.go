package runtime

import (
	"context"
	"encoding/binary"
	"time"
)

// poll_oneoff for clock subscriptions, relative and absolute. wazero's own
// rejects absolute deadlines, which is how CPython's time.sleep waits, so ork
// replaces it; wasmtime's would accept them but sleeps through a cancelled
// or timed-out task, so ork replaces it there too, with this same one.
// Subscriptions on file descriptors are not supported: no task has anything
// to wait for there (stdin is empty, there are no sockets).

const (
	pollFunc         = "poll_oneoff"
	subscriptionSize = 48
	eventSize        = 32
	eventTypeClock   = 0
	subClockAbstime  = 1
	clockRealtime    = 0
	clockMonotonic   = 1
	errnoNotsup      = 58
)

// epoch anchors the monotonic clock that guests read (see nanotime) so
// absolute monotonic deadlines can be turned into durations. Both engines
// give guests these clocks: wazero through WithWalltime/WithNanotime,
// wasmtime through ork's clock_time_get.
var epoch = time.Now()

func walltime() (sec int64, nsec int32) {
	now := time.Now()
	return now.Unix(), int32(now.Nanosecond())
}

func nanotime() int64 { return int64(time.Since(epoch)) }

// pollOneoff is WASI's poll_oneoff(in, out, nsubscriptions, result.nevents):
// it waits for the earliest clock subscription, or until ctx is done, and
// returns the errno for the guest.
func pollOneoff(ctx context.Context, mem guestMemory, in, out, n, neventsPtr uint32) uint32 {
	if n == 0 {
		return errnoInval
	}
	if mem == nil {
		return errnoFault
	}
	subs, ok := mem.Read(in, n*subscriptionSize)
	if !ok || uint64(out)+uint64(n)*eventSize > uint64(mem.Size()) {
		return errnoFault
	}
	subs = append([]byte(nil), subs...)
	deadlines := make([]time.Duration, n) // from now
	var earliest time.Duration = -1
	for i := uint32(0); i < n; i++ {
		s := subs[i*subscriptionSize:]
		if s[8] != eventTypeClock {
			return errnoNotsup
		}
		id := binary.LittleEndian.Uint32(s[16:])
		timeout := binary.LittleEndian.Uint64(s[24:])
		flags := binary.LittleEndian.Uint16(s[40:])
		d := time.Duration(timeout)
		if flags&subClockAbstime != 0 {
			switch id {
			case clockRealtime:
				d = time.Until(time.Unix(0, int64(timeout)))
			case clockMonotonic:
				d = time.Duration(int64(timeout) - nanotime())
			default:
				return errnoInval
			}
		} else if id != clockRealtime && id != clockMonotonic {
			return errnoInval
		}
		if d < 0 {
			d = 0
		}
		deadlines[i] = d
		if earliest < 0 || d < earliest {
			earliest = d
		}
	}
	if earliest > 0 {
		t := time.NewTimer(earliest)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	events := 0
	for i := uint32(0); i < n; i++ {
		if deadlines[i] > earliest {
			continue
		}
		ev := make([]byte, eventSize)
		copy(ev[0:8], subs[i*subscriptionSize:i*subscriptionSize+8]) // userdata
		ev[10] = eventTypeClock
		mem.Write(out+uint32(events)*eventSize, ev)
		events++
	}
	if !mem.WriteUint32Le(neventsPtr, uint32(events)) {
		return errnoFault
	}
	return errnoSuccess
}
