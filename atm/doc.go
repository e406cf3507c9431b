// Package atm is the host side of the egate ATM serial link: the frame codec
// (frame.go, crc.go), the message set (messages.go), the link with ACK/NAK,
// retransmission, duplicate suppression and line-rate pacing (link.go), the
// serial port through github.com/tarm/serial (port.go), and the ATM driver
// (driver.go). The protocol is specified in PROTOCOL.md, written for the
// vendor who implements the ATM side; simulators/atm is the reference ATM.
//
// Concurrency model:
//   - A Link owns one io.ReadWriteCloser. A reader goroutine reads the line;
//     a receive goroutine decodes frames, answers ACK/NAK and queues data
//     frames. Send is stop-and-wait and may be called from any goroutine.
//   - A Driver owns one Link at a time and is the only user of its port.
//     Commands are serialised (one in flight) and each takes a
//     context.Context. A dispatcher goroutine per link routes replies to the
//     waiting command and events to Driver.Events. A failed line is reopened
//     by the next command, which starts with HELLO.
//
// Exactly-once dispense: DISPENSE carries a 128-bit TxnID and the ATM keys
// its journal on it, so re-sending the same id can never dispense twice; the
// driver re-sends only when the ATM says it never accepted the id, and
// resolves every lost reply by asking the ATM (TXN_STATUS), never by
// guessing. The QR withdrawal state machine above it persists its own state
// before calling Dispense and settles on the per-cassette counts returned.
//
// The package never logs; errors are typed (ErrNoAck, ErrNoReply,
// *DeviceError with the ATM's code and counts, *UncertainError).
package atm
