package runtime

import (
	"context"
	"encoding/binary"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// poll_oneoff for clock subscriptions, relative and absolute. wazero's own
// rejects absolute deadlines, which is how CPython's time.sleep waits, so ork
// replaces it. Subscriptions on file descriptors are not supported: no task
// has anything to wait for there (stdin is empty, there are no sockets).

const (
	subscriptionSize = 48
	eventSize        = 32
	eventTypeClock   = 0
	subClockAbstime  = 1
	clockRealtime    = 0
	clockMonotonic   = 1
	errnoNotsup      = 58
)

// epoch anchors the monotonic clock that guests read (see nanotime) so
// absolute monotonic deadlines can be turned into durations.
var epoch = time.Now()

func walltime() (sec int64, nsec int32) {
	now := time.Now()
	return now.Unix(), int32(now.Nanosecond())
}

func nanotime() int64 { return int64(time.Since(epoch)) }

var (
	_ sys.Walltime = walltime
	_ sys.Nanotime = nanotime
)

func pollOneoff(ctx context.Context, mod api.Module, stack []uint64) {
	in, out := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	n, neventsPtr := api.DecodeU32(stack[2]), api.DecodeU32(stack[3])
	mem := mod.Memory()
	if n == 0 {
		stack[0] = errnoInval
		return
	}
	subs, ok := mem.Read(in, n*subscriptionSize)
	if !ok || uint64(out)+uint64(n)*eventSize > uint64(mem.Size()) {
		stack[0] = errnoFault
		return
	}
	subs = append([]byte(nil), subs...)
	deadlines := make([]time.Duration, n) // from now
	var earliest time.Duration = -1
	for i := uint32(0); i < n; i++ {
		s := subs[i*subscriptionSize:]
		if s[8] != eventTypeClock {
			stack[0] = errnoNotsup
			return
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
				stack[0] = errnoInval
				return
			}
		} else if id != clockRealtime && id != clockMonotonic {
			stack[0] = errnoInval
			return
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
		stack[0] = errnoFault
		return
	}
	stack[0] = errnoSuccess
}
