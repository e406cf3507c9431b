package simatm

import (
	"fmt"
	"os"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// PTY is a pseudo-terminal pair: the simulator serves the master end and the
// host opens TTYName through tarm/serial like a real port. Keeper holds the
// tty end open so that the host may close and reopen its port without the
// master seeing a hangup.
type PTY struct {
	Master  *os.File
	Keeper  *os.File
	TTYName string
}

// OpenPTY makes a pair with the tty end in raw mode from the start, so that
// nothing written before the host opens the port is echoed or translated.
func OpenPTY() (*PTY, error) {
	m, t, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("opening pseudo-terminal: %w", err)
	}
	tio, err := unix.IoctlGetTermios(int(t.Fd()), unix.TCGETS)
	if err == nil {
		tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		tio.Oflag &^= unix.OPOST
		tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		tio.Cflag &^= unix.CSIZE | unix.PARENB
		tio.Cflag |= unix.CS8
		tio.Cc[unix.VMIN], tio.Cc[unix.VTIME] = 1, 0
		err = unix.IoctlSetTermios(int(t.Fd()), unix.TCSETS, tio)
	}
	if err != nil {
		m.Close()
		t.Close()
		return nil, fmt.Errorf("setting pseudo-terminal raw: %w", err)
	}
	return &PTY{Master: m, Keeper: t, TTYName: t.Name()}, nil
}

// Close closes both ends.
func (p *PTY) Close() error {
	p.Keeper.Close()
	return p.Master.Close()
}
