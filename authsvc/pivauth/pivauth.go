package pivauth

import (
	"context"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	gopiv "github.com/go-piv/piv-go/v2/piv"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/ca"
	"github.com/egate-bank/egate/authsvc/challenge"
	"github.com/egate-bank/egate/authsvc/ushield"
	"github.com/egate-bank/egate/devices/piv"
	"github.com/egate-bank/egate/internal/store"
)

// Name is the factor's name; its level is 4 and its AMR "hwk".
const Name = "piv"

// Level of a PIV token (DESIGN.md §2).
const Level authn.Level = 4

// Service keeps PIV bindings and verifies proofs.
type Service struct {
	db  *store.DB
	ca  *ca.CA
	us  *ushield.Service // certificate checks shared with the U-shield
	ch  *challenge.Store
	now func() time.Time
	TTL time.Duration // challenge lifetime; 2 minutes by default
	// VendorRoots are the attestation roots a card enrolled by the
	// customer (EnrolAttested) must chain to; nil: customers cannot enrol
	// PIV cards themselves (operators can: egate admin piv enroll).
	VendorRoots *x509.CertPool
}

// New returns a service over the database and the bank CA.
func New(db *store.DB, c *ca.CA, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{db: db, ca: c, us: ushield.New(db, c, now), ch: challenge.New(db, now), now: now, TTL: 2 * time.Minute}
}

// Binding is one enrolled PIV key.
type Binding struct {
	CertSerial  string
	PassportID  string
	CardSerial  uint32
	Slot        string // "9a", "9c", …
	Firmware    string
	PINPolicy   string
	TouchPolicy string
	Status      string // "active", "lost", "replaced"
}

// Active reports whether the binding may be used.
func (b Binding) Active() bool { return b.Status == "active" }

// EnrollOptions say what key to make.
type EnrollOptions struct {
	Slot        gopiv.Slot        // default 9a (PIV authentication)
	Algorithm   gopiv.Algorithm   // default ECDSA P-256
	PINPolicy   gopiv.PINPolicy   // default once
	TouchPolicy gopiv.TouchPolicy // default never
}

// Enroll makes card's key in opt.Slot the customer's PIV token: the key is
// generated on the card, its attestation is checked up to the driver's
// vendor roots (devices/piv) and again by the CA against the card's serial
// and slot, the bank CA issues the certificate, the certificate is stored on
// the card and the binding recorded. A key the slot held before is gone,
// so an earlier binding of the same card and slot is marked replaced and
// its certificate revoked (superseded). If a step after issuance fails, the
// new certificate is revoked.
func (s *Service) Enroll(ctx context.Context, card *piv.Card, passportID string, opt EnrollOptions) (*Binding, error) {
	if opt.Slot == (gopiv.Slot{}) {
		opt.Slot = gopiv.SlotAuthentication
	}
	var issued *x509.Certificate
	iss := &ca.PIVIssuer{CA: s.ca, Owner: passportID, Serial: card.Serial(), Slot: opt.Slot, VendorRoots: card.VendorRoots(),
		Issued: func(c *x509.Certificate) { issued = c }}
	cert, att, err := card.Enroll(ctx, opt.Slot, piv.EnrollOptions{Algorithm: opt.Algorithm, PINPolicy: opt.PINPolicy, TouchPolicy: opt.TouchPolicy}, iss)
	if err != nil {
		if issued != nil {
			s.ca.Revoke(context.WithoutCancel(ctx), ca.SerialHex(issued.SerialNumber), ca.ReasonCessation)
		}
		return nil, fmt.Errorf("enrolling PIV card %d for %s: %w", card.Serial(), passportID, err)
	}
	b := &Binding{CertSerial: ca.SerialHex(cert.SerialNumber), PassportID: passportID, CardSerial: att.Serial,
		Slot: att.Slot.String(), Firmware: fmt.Sprintf("%d.%d.%d", att.Version.Major, att.Version.Minor, att.Version.Patch),
		PINPolicy: pinPolicy(att.PINPolicy), TouchPolicy: touchPolicy(att.TouchPolicy), Status: "active"}
	if err := s.Bind(ctx, b); err != nil {
		s.ca.Revoke(context.WithoutCancel(ctx), b.CertSerial, ca.ReasonCessation)
		return nil, err
	}
	return b, nil
}

// Bind records that a certificate the bank CA issued for a PIV key belongs
// to a customer, and retires the bindings of an earlier key in the same
// card and slot.
func (s *Service) Bind(ctx context.Context, b *Binding) error {
	ms := s.now().UnixMilli()
	var replaced []string
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		rows, err := tx.Query(ctx, `SELECT cert_serial FROM piv_tokens WHERE card_serial = ? AND slot = ? AND status = 'active'`, int64(b.CardSerial), b.Slot)
		if err != nil {
			return err
		}
		for rows.Next() {
			var cs string
			if err := rows.Scan(&cs); err != nil {
				rows.Close()
				return err
			}
			replaced = append(replaced, cs)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE piv_tokens SET status = 'replaced', lost_ms = ? WHERE card_serial = ? AND slot = ? AND status = 'active'`,
			ms, int64(b.CardSerial), b.Slot); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO piv_tokens (cert_serial, passport_id, card_serial, slot, firmware, pin_policy, touch_policy, status, enrolled_ms)
			VALUES (?, ?, ?, ?, ?, ?, ?, 'active', ?)`,
			b.CertSerial, b.PassportID, int64(b.CardSerial), b.Slot, b.Firmware, b.PINPolicy, b.TouchPolicy, ms)
		return err
	})
	if err != nil {
		return fmt.Errorf("binding the PIV card to %s: %w", b.PassportID, err)
	}
	for _, cs := range replaced {
		if err := s.ca.Revoke(ctx, cs, ca.ReasonSuperseded); err != nil {
			return fmt.Errorf("revoking the replaced PIV certificate: %w", err)
		}
	}
	return nil
}

// ReportLost marks the customer's PIV key lost and revokes its
// certificate; Begin and Verify refuse it from the next request on.
func (s *Service) ReportLost(ctx context.Context, passportID, certSerial string) error {
	res, err := s.db.Exec(ctx, `UPDATE piv_tokens SET status = 'lost', lost_ms = ? WHERE cert_serial = ? AND passport_id = ? AND status = 'active'`,
		s.now().UnixMilli(), certSerial, passportID)
	if err != nil {
		return fmt.Errorf("reporting the PIV card lost: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var status string
		err := s.db.QueryRow(ctx, `SELECT status FROM piv_tokens WHERE cert_serial = ? AND passport_id = ?`, certSerial, passportID).Scan(&status)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("PIV card %s of %s: %w", certSerial, passportID, authn.ErrNotEnrolled)
		}
		if err != nil {
			return fmt.Errorf("reporting the PIV card lost: %w", err)
		}
		// Already lost or replaced: make sure the certificate is revoked.
	}
	return s.ca.Revoke(ctx, certSerial, ca.ReasonKeyCompromise)
}

// ReportCardLost reports every active key of a card (by its serial) of the
// customer lost; it returns the certificate serials revoked.
func (s *Service) ReportCardLost(ctx context.Context, passportID string, cardSerial uint32) ([]string, error) {
	bs, err := s.Tokens(ctx, passportID)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, b := range bs {
		if b.CardSerial != cardSerial || !b.Active() {
			continue
		}
		if err := s.ReportLost(ctx, passportID, b.CertSerial); err != nil {
			return out, err
		}
		out = append(out, b.CertSerial)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("PIV card %d of %s: %w", cardSerial, passportID, authn.ErrNotEnrolled)
	}
	return out, nil
}

// Tokens lists the customer's PIV keys, oldest first.
func (s *Service) Tokens(ctx context.Context, passportID string) ([]Binding, error) {
	rows, err := s.db.Query(ctx, `SELECT cert_serial, card_serial, slot, firmware, pin_policy, touch_policy, status FROM piv_tokens
		WHERE passport_id = ? ORDER BY enrolled_ms, cert_serial`, passportID)
	if err != nil {
		return nil, fmt.Errorf("listing PIV cards: %w", err)
	}
	defer rows.Close()
	var out []Binding
	for rows.Next() {
		b := Binding{PassportID: passportID}
		var card int64
		if err := rows.Scan(&b.CertSerial, &card, &b.Slot, &b.Firmware, &b.PINPolicy, &b.TouchPolicy, &b.Status); err != nil {
			return nil, err
		}
		b.CardSerial = uint32(card)
		out = append(out, b)
	}
	return out, rows.Err()
}

func pinPolicy(p gopiv.PINPolicy) string {
	switch p {
	case gopiv.PINPolicyNever:
		return "never"
	case gopiv.PINPolicyOnce:
		return "once"
	case gopiv.PINPolicyAlways:
		return "always"
	}
	return strconv.Itoa(int(p))
}

func touchPolicy(p gopiv.TouchPolicy) string {
	switch p {
	case gopiv.TouchPolicyNever:
		return "never"
	case gopiv.TouchPolicyAlways:
		return "always"
	case gopiv.TouchPolicyCached:
		return "cached"
	}
	return strconv.Itoa(int(p))
}
