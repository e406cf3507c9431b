package atm

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/tarm/serial"
	"golang.org/x/sys/unix"
)

// ErrPortBusy is matched (errors.Is) by the error OpenSerial returns when
// another process holds the port.
var ErrPortBusy = errors.New("atm: serial port owned by another process")

// PortBusyError says which port another process holds.
type PortBusyError struct{ Port string }

func (e *PortBusyError) Error() string {
	return "port " + e.Port + " is owned by another process (the egate agent?)"
}

func (e *PortBusyError) Is(target error) bool { return target == ErrPortBusy }

// OpenSerial opens a serial port (a real UART or a pseudo-terminal's
// /dev/pts/N) through github.com/tarm/serial, 8N1 at baud.
//
// One owner per line (PROTOCOL.md §9) is enforced by the OS: before the
// port is configured, OpenSerial takes an exclusive advisory lock
// (flock LOCK_EX|LOCK_NB) on the device through a descriptor of its own,
// held until Close. If another process (or another OpenSerial in this one)
// holds it, the error is a *PortBusyError matching ErrPortBusy and the port
// is left untouched. The lock dies with the process, so a kill -9 of the
// owner frees the port.
//
// The port says whether it paces itself (SelfPacedLine): a pseudo-terminal
// moves bytes at memory speed whatever baud it is told, so a Link on it
// paces its own writes; a real UART shifts them out at the baud after the
// write, so a Link on it does not wait as well (isPTY decides).
//
// tarm/serial puts the descriptor in blocking mode, where a pending read
// cannot be interrupted; the port is therefore opened with a short read
// timeout and reads that time out are retried here until Close.
func OpenSerial(name string, baud int) (io.ReadWriteCloser, error) {
	// O_NONBLOCK: do not wait for carrier on a real UART; this descriptor
	// is only ever used for the lock.
	lockFD, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening serial port %s: %w", name, err)
	}
	if err := unix.Flock(lockFD, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(lockFD)
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &PortBusyError{Port: name}
		}
		return nil, fmt.Errorf("locking serial port %s: %w", name, err)
	}
	p, err := serial.OpenPort(&serial.Config{Name: name, Baud: baud, ReadTimeout: 50 * time.Millisecond})
	if err != nil {
		unix.Close(lockFD)
		return nil, fmt.Errorf("opening serial port %s: %w", name, err)
	}
	// Bytes that arrived while nobody had the port open belong to an old
	// session; the driver starts every session with HELLO.
	p.Flush()
	return &serialPort{p: p, lockFD: lockFD, pty: isPTY(lockFD, name)}, nil
}

type serialPort struct {
	p      *serial.Port
	lockFD int
	pty    bool
	closed atomic.Bool
}

// SelfPaced is true on a real UART, false on a pseudo-terminal.
func (s *serialPort) SelfPaced() bool { return !s.pty }

func (s *serialPort) Read(b []byte) (int, error) {
	for {
		n, err := s.p.Read(b)
		if s.closed.Load() {
			return 0, ErrClosed
		}
		if n == 0 && (err == nil || errors.Is(err, io.EOF)) {
			continue // VTIME expired with nothing read
		}
		return n, err
	}
}

func (s *serialPort) Write(b []byte) (int, error) { return s.p.Write(b) }

// Close closes the port and then releases the lock, so that the next owner
// never shares the line with this one.
func (s *serialPort) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	err := s.p.Close()
	unix.Close(s.lockFD)
	return err
}
