package pivcard

import (
	"net"
	"syscall"
)

// quickAck asks the kernel to acknowledge the next segments at once. vpcd
// writes a message's length and its body in two writes; with Nagle's
// algorithm on its side and delayed ACKs on ours, the body would wait about
// 40 ms for our ACK of the length. Linux clears the flag after a while, so
// it is set again before every read.
func quickAck(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}
