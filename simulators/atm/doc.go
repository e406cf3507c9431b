// Package simatm is an ATM on a serial line: it speaks the egate link
// protocol (atm/PROTOCOL.md) as the ATM side, with cassettes, a reject bin, a
// cash tray with a shutter, a scriptable customer and PIN pad, a screen that
// renders QR codes, a persistent journal, and every fault of DESIGN.md §5
// injectable (see Faults).
//
// Concurrency: one mutex guards the machine's state; one goroutine serves the
// line; at most one mechanical operation (dispense, retract, reject, purge)
// runs at a time in its own goroutine and sends PROGRESS while it runs.
//
// Files follow the parts of a real ATM, so that a fault or a protocol rule
// is found where that part of the machine lives. The link, the frames and
// every payload are the atm package's own (the same code as the host), so
// the simulator cannot drift from the protocol by encoding a reply by hand:
//   - machine.go: the state, the journal records that change it, power-up
//     recovery (journal.go: the journal file);
//   - serve.go: the line: session, request dispatch, STATUS, TXN_STATUS,
//     SHOW_QR, CANCEL_QR, EVENT, PROGRESS;
//   - dispense.go: DISPENSE (validate, pick, present), REJECT and PURGE;
//   - presenter.go: the cash at the exit, the customer, RETRACT;
//   - pinpad.go: PIN entry;
//   - screen.go: the QR display and the control page;
//   - faults.go: line and device faults;
//   - run.go, pty.go: serving in the background, on a pseudo-terminal.
package simatm
