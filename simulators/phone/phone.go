// Package phone simulates the bank's phone app (egate sim phone): bound
// once to a customer (password and an SMS code at the passport), it holds a
// device key that never leaves its state file and answers signing orders
// by scanning the page's animated QR from an image (a screenshot), decoded
// with gozxing as a camera frame would be. It shows the order's text, asks
// the app PIN (from which it derives the PIN key the bank checks, so wrong
// PINs are counted at the bank with a lockout), signs exactly the text and
// the challenge, and posts the proof.
//
// The device key is sealed under the app PIN: the state file keeps its
// scalar XOR a mask derived from the PIN (argon2id over the PIN and a salt
// of its own, SealSalt, independent of the salt of the PIN key the bank
// holds). Nothing in the file tells a right PIN from a wrong one — there is
// no checksum, no public key and no PIN key in it — so any PIN unseals *a*
// key, and only the bank can tell whether it was the device's: a wrong
// PIN's proof carries a wrong PIN MAC (and a signature by another key),
// which the bank refuses and counts toward the phone's lockout. Someone who
// copies the file cannot test PINs offline; each guess is an attempt the
// bank counts (the "cryptographic camouflage" of software key stores).
package phone

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // screenshots may be JPEG
	_ "image/png"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"github.com/egate-bank/egate/authsvc/orders"
	authphone "github.com/egate-bank/egate/authsvc/phone"
	"github.com/egate-bank/egate/platform/messenger/payqr"
)

// State is what the app keeps (mode 0600): the binding and the device key
// sealed under the app PIN.
type State struct {
	Server     string `json:"server"`
	DeviceID   string `json:"device_id"`
	PassportID string `json:"passport_id"`
	SealedKey  []byte `json:"sealed_key"` // the key's 32-byte scalar XOR sealMask(PIN, SealSalt)
	SealSalt   []byte `json:"seal_salt"`
	PINSalt    []byte `json:"pin_salt"`
	// Key is an older app's unsealed key (PKCS#8): refused by Load.
	Key []byte `json:"key,omitempty"`
}

// Load reads a state file.
func Load(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("the app is not bound (no state in %s): run egate sim phone bind first", path)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil || s.DeviceID == "" {
		return nil, fmt.Errorf("the app's state %s is damaged", path)
	}
	if len(s.Key) > 0 {
		return nil, fmt.Errorf("the app's state %s keeps its device key unsealed (an older app): bind the app again", path)
	}
	if len(s.SealedKey) != scalarLen || len(s.SealSalt) < 16 {
		return nil, fmt.Errorf("the app's state %s is damaged", path)
	}
	return &s, nil
}

const scalarLen = 32

// sealMask is the mask of the key's scalar under pin: argon2id (as the PIN
// key, but over SealSalt).
func sealMask(pin, salt []byte) []byte { return authphone.PINKey(pin, salt) }

// Seal makes the sealed form of k under pin with a fresh salt.
func Seal(k *ecdsa.PrivateKey, pin []byte) (sealed, salt []byte, err error) {
	d, err := k.Bytes()
	if err != nil {
		return nil, nil, err
	}
	defer clear(d)
	salt = make([]byte, 16)
	rand.Read(salt)
	mask := sealMask(pin, salt)
	defer clear(mask)
	sealed = make([]byte, scalarLen)
	for i := range sealed {
		sealed[i] = d[i] ^ mask[i]
	}
	return sealed, salt, nil
}

// Save writes the state file, readable by the owner only.
func (s *State) Save(path string) error {
	b, _ := json.MarshalIndent(s, "", "  ")
	return os.WriteFile(path, b, 0o600)
}

// Unseal is the device key under pin: the device's own for the right PIN,
// another key for a wrong one (the app cannot tell; the bank can).
func (s *State) Unseal(pin []byte) (*ecdsa.PrivateKey, error) {
	if len(s.SealedKey) != scalarLen {
		return nil, errors.New("the app's device key is damaged")
	}
	mask := sealMask(pin, s.SealSalt)
	defer clear(mask)
	d := make([]byte, scalarLen)
	defer clear(d)
	for i := range d {
		d[i] = s.SealedKey[i] ^ mask[i]
	}
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
	if err != nil {
		// About one PIN in 2^32 unseals to no scalar at all.
		return nil, errors.New("the app PIN is wrong")
	}
	return k, nil
}

func post(ctx context.Context, hc *http.Client, url string, in, out any) error {
	body, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("reaching the bank: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Code, Message string }
		}
		json.Unmarshal(b, &e)
		return &orders.APIError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	return json.Unmarshal(b, out)
}

// Bind binds a new app to the customer: password, then the SMS code that
// smsCode returns (it is shown the bank's prompt), with a device key made
// here and the PIN key of pin.
func Bind(ctx context.Context, hc *http.Client, server, login, password string, smsCode func(prompt string) (string, error), pin []byte, label string) (*State, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	server = strings.TrimSuffix(server, "/")
	var start struct {
		BindID string `json:"bind_id"`
		Prompt string `json:"prompt"`
	}
	if err := post(ctx, hc, server+"/v1/phone/bind/start", map[string]string{"login_name": login, "password": password}, &start); err != nil {
		return nil, err
	}
	code, err := smsCode(start.Prompt)
	if err != nil {
		return nil, err
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	pub, _ := x509.MarshalPKIXPublicKey(k.Public())
	sealed, sealSalt, err := Seal(k, pin)
	if err != nil {
		return nil, err
	}
	salt := make([]byte, 16)
	rand.Read(salt)
	pinKey := authphone.PINKey(pin, salt)
	defer clear(pinKey)
	var done struct {
		DeviceID   string `json:"device_id"`
		PassportID string `json:"passport_id"`
	}
	if err := post(ctx, hc, server+"/v1/phone/bind/finish", map[string]any{"bind_id": start.BindID, "sms_code": code, "public_key": pub,
		"pin_salt": salt, "pin_key": pinKey, "label": label}, &done); err != nil {
		return nil, err
	}
	return &State{Server: server, DeviceID: done.DeviceID, PassportID: done.PassportID, SealedKey: sealed, SealSalt: sealSalt, PINSalt: salt}, nil
}

// ScanImage decodes the QR code in an image file (PNG or JPEG), as the
// app's camera would read the page.
func ScanImage(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return "", fmt.Errorf("reading the image %s: %w", path, err)
	}
	return Scan(img)
}

// Scan decodes the QR code in img: first as a clean code filling the
// image (a screenshot of the page's QR), then searching the whole image
// harder (a photo, a screenshot of the whole page).
func Scan(img image.Image) (string, error) {
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", err
	}
	var last error
	for _, hints := range []map[gozxing.DecodeHintType]interface{}{
		{gozxing.DecodeHintType_PURE_BARCODE: true},
		{gozxing.DecodeHintType_TRY_HARDER: true},
		nil,
	} {
		res, err := qrcode.NewQRCodeReader().Decode(bmp, hints)
		if err == nil {
			return res.GetText(), nil
		}
		last = err
	}
	return "", fmt.Errorf("no QR code found in the image: %w", last)
}

// UI is how the app talks to the customer.
type UI interface {
	Show(o *orders.Opened, data []byte)
	Confirm(ctx context.Context) (bool, error)
	PIN(ctx context.Context) ([]byte, error)
	Say(msg string)
}

// Answer opens the order of a scanned QR code, shows it, asks to confirm
// and the app PIN, signs and posts. A wrong PIN is refused by the bank
// (and counted there): the order fails and the page offers a new one.
func (s *State) Answer(ctx context.Context, hc *http.Client, qr string, ui UI) error {
	c := &orders.Client{Base: s.Server, HTTP: hc}
	op, err := c.Open(ctx, orders.OpenRequest{QR: qr})
	if err != nil {
		return err
	}
	data, err := op.SignedData()
	if err != nil {
		c.Cancel(ctx, op.Ref, op.DeviceToken, "declined")
		return err
	}
	if op.Factor != authphone.Name {
		c.Cancel(ctx, op.Ref, op.DeviceToken, "no_token")
		return fmt.Errorf("this order is for a %s, not the phone app", op.Factor)
	}
	ui.Show(op, data)
	if ok, err := ui.Confirm(ctx); err != nil || !ok {
		c.Cancel(context.WithoutCancel(ctx), op.Ref, op.DeviceToken, "declined")
		ui.Say("Declined: the order is cancelled.")
		return errors.New("declined")
	}
	pin, err := ui.PIN(ctx)
	if err != nil {
		c.Cancel(context.WithoutCancel(ctx), op.Ref, op.DeviceToken, "declined")
		return err
	}
	pinKey := authphone.PINKey(pin, s.PINSalt)
	defer clear(pinKey)
	k, err := s.Unseal(pin)
	clear(pin)
	if err != nil {
		c.Cancel(context.WithoutCancel(ctx), op.Ref, op.DeviceToken, "wrong_pin")
		ui.Say(err.Error())
		return err
	}
	proof, err := authphone.Sign(s.DeviceID, k, pinKey, data)
	if err != nil {
		return err
	}
	if err := c.Sign(ctx, op.Ref, op.DeviceToken, proof); err != nil {
		ui.Say("The bank refused: " + err.Error())
		return err
	}
	ui.Say("Signed. The page goes on by itself.")
	return nil
}

// ReceiveQR reads a messenger receive QR (a payee's "receive money" code)
// from an image, as the app's camera would, and returns the pay page it
// names: the app opens it for the customer to confirm and pay.
func ReceiveQR(path string) (string, error) {
	text, err := ScanImage(path)
	if err != nil {
		return "", err
	}
	u, ok := payqr.Parse(text)
	if !ok {
		return "", errors.New("this QR code is not a receive code of the bank's messenger")
	}
	return u, nil
}
