// Package atm is the host side of the egate ATM serial link. The protocol
// is specified in PROTOCOL.md, written for the vendor who implements the ATM
// side; simulators/atm is the reference ATM.
//
// Files are kept by concern, so that a change to one layer (a timer of the
// link, a field of a message, a rule for resolving a lost reply) is made and
// reviewed in one place, and the ATM side (the simulator) can reuse the
// lower layers without the driver:
//   - crc.go, frame.go: the frame codec (PROTOCOL.md §2);
//   - wire.go: the payload encoding (integers, TxnRecord) every message uses;
//   - messages.go: the message set, each with Marshal and Parse (§6);
//   - codes.go: result codes, their meanings, DeviceError (§7);
//   - txn.go: TxnID, TxnState, TxnRecord (the transaction model);
//   - link.go: ACK/NAK, retransmission, duplicate suppression, pacing (§3);
//   - port.go: the serial port through github.com/tarm/serial;
//   - driver.go: the driver's lifecycle: connect, HELLO, dispatch, round trip;
//   - driver_cmds.go: commands that move no money (STATUS, QR, PIN, PURGE);
//   - driver_txn.go: DISPENSE, RETRACT, REJECT, TXN_STATUS and the
//     resolution of lost replies;
//   - driver_records.go: the driver's transaction records and events;
//   - qr.go, mix.go, pinblock.go: QR mode choice, note mix, PIN blocks.
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
