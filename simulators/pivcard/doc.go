// Package pivcard is a YubiKey-compatible PIV smart card: the PIV applet of
// NIST SP 800-73-4 with the Yubico extensions (version, serial, metadata,
// attestation, reset, management key and retry settings), reachable by real
// PC/SC software through pcscd and the vsmartcard virtual reader driver
// (vpcd).
//
// A Card is the applet: Transmit takes a command APDU and returns the
// response APDU, exactly as the chip would. Serve connects a Card to vpcd's
// TCP socket, which makes it appear in a PC/SC reader ("Virtual PCD 00 00"
// on port 35963, "Virtual PCD 00 01" on 35964 with Debian's default
// configuration).
//
// Concurrency: a Card is safe for use by several goroutines; one mutex
// serialises APDUs, as the single-threaded chip does. Its persistent state
// (PIN, PUK, counters, management key, keys, data objects) is written to a
// JSON file after every command that changed it, so a card survives a
// restart; the security state (PIN verified, management key authenticated)
// is volatile and cleared by a power cycle or reset, as on the chip.
//
// The simulator keeps private keys and PINs in the clear in its state file:
// it is a test device, never a place for real secrets.
package pivcard
