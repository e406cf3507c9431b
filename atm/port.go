package atm

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/tarm/serial"
)

// OpenSerial opens a serial port (a real UART or a pseudo-terminal's
// /dev/pts/N) through github.com/tarm/serial, 8N1 at baud.
//
// tarm/serial puts the descriptor in blocking mode, where a pending read
// cannot be interrupted; the port is therefore opened with a short read
// timeout and reads that time out are retried here until Close.
func OpenSerial(name string, baud int) (io.ReadWriteCloser, error) {
	p, err := serial.OpenPort(&serial.Config{Name: name, Baud: baud, ReadTimeout: 50 * time.Millisecond})
	if err != nil {
		return nil, fmt.Errorf("opening serial port %s: %w", name, err)
	}
	// Bytes that arrived while nobody had the port open belong to an old
	// session; the driver starts every session with HELLO.
	p.Flush()
	return &serialPort{p: p}, nil
}

type serialPort struct {
	p      *serial.Port
	closed atomic.Bool
}

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

func (s *serialPort) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.p.Close()
}
