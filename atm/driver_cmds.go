package atm

// The driver's commands that move no money (HELLO, STATUS, SHOW_QR,
// CANCEL_QR, PURGE, PIN): one request, one reply, no transaction to
// resolve if the reply is lost.

import (
	"context"
	"fmt"
)

// Hello (re)starts the session and returns what the ATM said.
func (d *Driver) Hello(ctx context.Context) (HelloReply, error) {
	if err := d.lock(ctx); err != nil {
		return HelloReply{}, err
	}
	defer d.unlock()
	d.needHello.Store(true)
	if err := d.connect(ctx); err != nil {
		return HelloReply{}, err
	}
	return d.hello, nil
}

// Status asks for the ATM's status.
func (d *Driver) Status(ctx context.Context) (Status, error) {
	f, err := d.call(ctx, TypeStatus, nil)
	if err != nil {
		return Status{}, err
	}
	return ParseStatus(f.Payload)
}

func (d *Driver) result(ctx context.Context, t MsgType, payload []byte) error {
	f, err := d.call(ctx, t, payload)
	return resultErr(t, f, err)
}

func resultErr(t MsgType, f Frame, err error) error {
	if err != nil {
		return err
	}
	r, err := ParseResult(f.Payload)
	if err != nil {
		return fmt.Errorf("atm: %s reply: %w", t, err)
	}
	if r.Code != OK {
		return &DeviceError{Op: t, Code: r.Code}
	}
	return nil
}

// ShowQR puts a QR code on the ATM's screen, in the mode m names (the ATM
// refuses a mode it did not advertise with CodeUnsupported). DisplayQR
// chooses the mode itself.
func (d *Driver) ShowQR(ctx context.Context, m ShowQR) error {
	return d.result(ctx, TypeShowQR, m.Marshal())
}

// DisplayQR puts a QR code for text on the ATM's screen in a mode the ATM
// advertised in its HELLO reply: as text if it renders QR codes itself
// (QR_TEXT), else as a module bitmap rendered here (QR_BITMAP). It returns
// the mode used. An ATM with neither capability gets nothing and the error
// matches ErrCode(CodeUnsupported).
func (d *Driver) DisplayQR(ctx context.Context, session TxnID, ttlSec uint16, text string) (mode uint8, err error) {
	f, err := d.callBuild(ctx, TypeShowQR, func(h HelloReply) ([]byte, error) {
		m, err := QRMessage(session, ttlSec, text, h.Capabilities)
		mode = m.Mode
		return m.Marshal(), err
	})
	return mode, resultErr(TypeShowQR, f, err)
}

// CancelQR removes the QR code of session from the screen.
func (d *Driver) CancelQR(ctx context.Context, session TxnID) error {
	return d.result(ctx, TypeCancelQR, TxnRequest{session}.Marshal())
}

// Purge clears the transport into the reject bin and returns the note count.
func (d *Driver) Purge(ctx context.Context) (int, error) {
	f, err := d.call(ctx, TypePurge, nil)
	if err != nil {
		return 0, err
	}
	r, err := ParseResult(f.Payload)
	if err != nil {
		return 0, err
	}
	if r.Code != OK {
		return int(r.Notes), &DeviceError{Op: TypePurge, Code: r.Code}
	}
	return int(r.Notes), nil
}

// PIN asks the PIN pad for a PIN; the reply holds the encrypted PIN block.
func (d *Driver) PIN(ctx context.Context, m PINRequest) (PINReply, error) {
	f, err := d.call(ctx, TypePIN, m.Marshal())
	if err != nil {
		return PINReply{}, err
	}
	r, err := ParsePINReply(f.Payload)
	if err != nil {
		return r, err
	}
	if r.Code != OK {
		return r, &DeviceError{Op: TypePIN, Code: r.Code}
	}
	return r, nil
}
