package pivcard

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// DefaultPort is vpcd's first reader port (CHANNELID 0x8C7B in
// /etc/reader.conf.d/vpcd); the driver's second slot listens on the next one.
const DefaultPort = 35963

// vpcd control messages (vsmartcard's "virtual smart card" protocol): a
// one-byte message is control, anything longer is a command APDU.
const (
	vpcdPowerOff = 0x00
	vpcdPowerOn  = 0x01
	vpcdReset    = 0x02
	vpcdGetATR   = 0x04
)

// Addr is vpcd's address for a port on the local host.
func Addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// Serve inserts the card into the vpcd reader at addr: it connects to the
// reader and answers its messages until ctx ends or the reader closes the
// connection. Returning removes the card from the reader.
func Serve(ctx context.Context, addr string, c *Card) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connecting to vpcd at %s: %w", addr, err)
	}
	return ServeConn(ctx, conn, c)
}

// ServeConn answers vpcd's messages on an established connection, which it
// closes on return.
func ServeConn(ctx context.Context, conn net.Conn, c *Card) error {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	c.PowerOff()
	var hdr [2]byte
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	for {
		quickAck(conn)
		if _, err := io.ReadFull(conn, hdr[:]); err != nil {
			return closed(ctx, err)
		}
		msg := make([]byte, binary.BigEndian.Uint16(hdr[:]))
		quickAck(conn)
		if _, err := io.ReadFull(conn, msg); err != nil {
			return closed(ctx, err)
		}
		var resp []byte
		if len(msg) == 1 {
			switch msg[0] {
			case vpcdPowerOff:
				c.PowerOff()
			case vpcdPowerOn:
				c.PowerOn()
			case vpcdReset:
				c.Reset()
			case vpcdGetATR:
				resp = c.ATR()
				c.markPowered()
			}
			if resp == nil {
				continue
			}
		} else {
			resp = c.Transmit(msg)
		}
		out := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(resp)), uint16(len(resp)))
		if _, err := conn.Write(append(out, resp...)); err != nil {
			return closed(ctx, err)
		}
	}
}

func closed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("vpcd closed the connection: %w", err)
	}
	return fmt.Errorf("vpcd link: %w", err)
}

// ServeForever keeps the card inserted: it reconnects, after retry, whenever
// the reader is not there or drops the link (pcscd restarted), until ctx
// ends. onDrop, if not nil, is told why each link ended.
func ServeForever(ctx context.Context, addr string, c *Card, retry time.Duration, onDrop func(err error)) error {
	for {
		err := Serve(ctx, addr, c)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if onDrop != nil {
			onDrop(err)
		}
		t := time.NewTimer(retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
