package runner

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/orkrun/ork/internal/store"
)

// Liveness is what ork can tell about the process recorded as running a run.
type Liveness int

const (
	// ProcessGone: the run is not running, or its process is dead.
	ProcessGone Liveness = iota
	// ProcessAlive: the process is running on this host.
	ProcessAlive
	// ProcessUnknown: the run is recorded as running on another host (or
	// with no pid), where ork cannot look.
	ProcessUnknown
)

// RunLiveness tells whether the ork process recorded for a "running" run is
// still there. A run in any other status has no live process.
func RunLiveness(r store.Run) Liveness {
	if r.Status != StatusRunning {
		return ProcessGone
	}
	if r.PID <= 0 {
		return ProcessUnknown
	}
	if host, _ := os.Hostname(); host != r.Host {
		return ProcessUnknown
	}
	if processAlive(r.PID) && sameProcess(r.PID, r.Proc) {
		return ProcessAlive
	}
	return ProcessGone
}

// ProcessIdentity tells a process apart from a later one with the same pid:
// the boot id and the process's start time in clock ticks since boot, read
// from /proc. It is "" where there is no /proc (the pid alone is used then).
func ProcessIdentity(pid int) string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	fields := procStat(pid)
	// Field 22 of /proc/PID/stat, counting from 1; fields[0] is field 3.
	if len(fields) < 20 {
		return ""
	}
	return strings.TrimSpace(string(boot)) + "/" + fields[19]
}

// sameProcess tells whether pid is still the process recorded as proc. A
// run recorded without an identity, or a system without /proc, can only
// go by the pid.
func sameProcess(pid int, proc string) bool {
	if proc == "" {
		return true
	}
	now := ProcessIdentity(pid)
	return now == "" || now == proc
}

// EffectiveStatus is a run's recorded status, except that a run whose ork
// process died is "interrupted".
func EffectiveStatus(r store.Run) string {
	if r.Status == StatusRunning && RunLiveness(r) == ProcessGone {
		return StatusInterrupted
	}
	return r.Status
}

// processAlive tells whether pid is a live process. A zombie (dead, not yet
// reaped by its parent) answers kill(pid, 0) but is gone.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	if err != nil && errors.Is(err, syscall.ESRCH) {
		return false
	}
	// EPERM: alive, but another user's.
	return !isZombie(pid)
}

// isZombie reads the process state from /proc where there is one (Linux).
func isZombie(pid int) bool {
	fields := procStat(pid)
	return len(fields) > 0 && fields[0] == "Z"
}

// procStat returns the fields of /proc/PID/stat after the command name,
// from the state (field 3) on; nil where there is none.
func procStat(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	// pid (comm) state ...; comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return nil
	}
	return strings.Fields(s[i+2:])
}

// liveError explains why a run whose process may still be running cannot be
// resumed.
func liveError(r store.Run) error {
	if RunLiveness(r) == ProcessUnknown {
		if r.PID <= 0 {
			return fmt.Errorf("run %s is recorded as still running, by no known process; wait for it to finish, then resume it", r.ID)
		}
		return fmt.Errorf("run %s is recorded as still running in process %d on host %s, which ork cannot check from here; wait for it to finish, or stop that process, then resume it (from host %s, ork sees whether the process is gone)", r.ID, r.PID, r.Host, r.Host)
	}
	return fmt.Errorf("run %s is still running in process %d on host %s; wait for it to finish, or stop that process (kill %d), then resume it", r.ID, r.PID, r.Host, r.PID)
}
