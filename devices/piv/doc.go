// Package piv drives PIV tokens (YubiKeys and compatible cards) through
// PC/SC with github.com/go-piv/piv-go: list cards, open one, enroll a key
// (generate on the card, check the attestation chain up to the vendor root,
// have the bank CA issue the certificate, store it on the card) and sign
// with it as a crypto.Signer.
//
// Concurrency: a Driver hands out at most one Card per reader at a time
// (Open fails with ErrInUse while another owner holds it), and a Card
// serialises its operations with a mutex: piv-go holds an exclusive PC/SC
// transaction, which must never be shared by two goroutines at once.
//
// Reconnection is lazy: before each operation the card is probed with GET
// SERIAL, which has no side effect. If the probe fails (the card was reset
// or removed, or pcscd restarted) the operation fails with ErrCardRemoved and
// the connection is dropped; the next operation reopens the card, and fails
// with ErrCardRemoved again if it is still gone or a different card is in
// the reader. A signature is not probed: it is one command, which a lost
// link fails before the card ever sees it, with the same ErrCardRemoved.
// Operations themselves are never repeated, but for one case: a signature
// with a PIN-once key is asked for first, and when the card refuses it for
// want of a verified PIN (6982, nothing signed) the PIN is verified and the
// signature asked for again. So a signature whose PIN is verified, or whose
// key needs none, is the one command a signature needs (piv-go keeps its
// PC/SC transaction and the PIV applet selected for the card's life).
//
// The seam is PC/SC itself: a Driver drives whatever card a reader presents,
// so simulators/piv (a card behind pcscd's virtual reader, vpcd) and a real
// token satisfy it alike, and every test runs the real stack down to the
// APDUs. Above the driver, code takes a crypto.Signer (Card.Signer) or the
// Issuer interface, which a fake can satisfy in a unit test.
//
// PINs come from a prompt function at the moment they are needed, are passed
// to the card once and are not kept. A wrong PIN is never retried: the
// error (a *pin.Error, package pin; ErrPINBlocked when none are left) says
// how many tries are left.
package piv
