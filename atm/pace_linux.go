package atm

import (
	"errors"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// pacer sleeps until a frame would have left the line, to within the
// kernel's timer slack (about 50 µs). time.Sleep is coarser when the
// program is otherwise idle, as a link waiting for its line is: Go then
// waits for its timers in epoll_wait, whose timeout is whole milliseconds,
// so a sleep of a frame's line time ends up to 1 ms late; a dispense cycle
// at 115200 baud is eight frames of 0.7–6 ms (BenchmarkDispenseCycle in
// simulators/atm). A timerfd is a file the same epoll_wait waits on, and
// it wakes it the moment it fires. Closing the pacer ends a sleep at once.
type pacer struct {
	f  *os.File
	rc syscall.RawConn
}

// newPacer returns a pacer, or nil (sleep falls back to time.Sleep) when
// the kernel gives no timerfd.
func newPacer() *pacer {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil
	}
	f := os.NewFile(uintptr(fd), "atm-pacer")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil
	}
	return &pacer{f: f, rc: rc}
}

// sleep waits d, or less if the pacer is closed meanwhile.
func (p *pacer) sleep(d time.Duration) {
	if p == nil {
		time.Sleep(d)
		return
	}
	deadline := time.Now().Add(d)
	var serr error
	err := p.rc.Control(func(fd uintptr) {
		serr = unix.TimerfdSettime(int(fd), 0, &unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}, nil)
	})
	if err != nil {
		return // closed
	}
	if serr != nil {
		time.Sleep(d)
		return
	}
	var buf [8]byte
	if _, err := p.f.Read(buf[:]); err != nil && !errors.Is(err, os.ErrClosed) {
		time.Sleep(time.Until(deadline))
	}
}

func (p *pacer) close() {
	if p != nil {
		p.f.Close()
	}
}
