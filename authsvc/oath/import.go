package oath

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/egate-bank/egate/devices/otp"
	"github.com/egate-bank/egate/devices/otp/pskc"
	"github.com/egate-bank/egate/internal/store"
)

// ImportSummary reports what an import did.
type ImportSummary struct {
	Imported       int
	Duplicates     int // already in the database (never overwritten: counters stay)
	PINKeysSkipped int
	ByAlgorithm    map[string]int // "hotp/SHA1/6", "totp/SHA256/8/30s", "ocra/OCRA-1:…"
	// Expired are the keys whose ExpiryDate had passed: skipped, unless
	// ImportOptions.ImportExpired, when they are imported (and listed here
	// all the same, so the operator is told).
	Expired []ExpiredKey
}

// ExpiredKey names a key of the file that had expired at import.
type ExpiredKey struct {
	Index      int
	KeyID      string
	Serial     string
	ExpiryDate time.Time
}

// Progress is reported while importing.
type Progress struct {
	Phase string // "checking" (bytes read of Total) or "storing" (keys of Total)
	Done  int64
	Total int64 // 0 when unknown
}

// ImportOptions configure ImportPSKC.
type ImportOptions struct {
	PSKC     pskc.Options
	Size     int64 // file size for checking progress; 0 when unknown
	Progress func(Progress)
	// ImportExpired imports keys whose ExpiryDate has passed (they are
	// refused at verification all the same); without it they are skipped.
	ImportExpired bool
	// TransportKey names the key in the HSM (a pkcs11: URI or a label)
	// that the file's values are encrypted to: a pre-shared AES key or the
	// RSA private key of the file's certificate. Seeds are then unwrapped
	// and re-wrapped by the storage key (Config.WrapKeyLabel, a seed-wrap
	// key that must be CKA_TRUSTED) inside the HSM, never in this
	// process's memory.
	TransportKey string
	// SignerCerts, when set, demand a document signed (enveloped XML-DSig,
	// RFC 6030 §7) by one of these vendor certificates. It is verified
	// whole, in memory, before anything is read, and both passes read the
	// document as signed, so what is imported is what was signed.
	SignerCerts []*x509.Certificate
}

// ImportPSKC imports a vendor PSKC file in two streaming passes: the first
// reads and checks every entry (decryption, MAC, parameters, duplicates in
// the file) and stores nothing; the second wraps each seed in the HSM and
// inserts it, all in one transaction that is rolled back on any error. So a
// bad file imports nothing, and the error names the entry. open is called
// once per pass.
func (s *Service) ImportPSKC(ctx context.Context, open func() (io.ReadCloser, error), o ImportOptions) (ImportSummary, error) {
	progress := o.Progress
	if progress == nil {
		progress = func(Progress) {}
	}
	if o.TransportKey != "" {
		th, ok := s.hsm.(TransportHSM)
		if !ok {
			return ImportSummary{}, ErrNoTransport
		}
		o.PSKC.Transport = hsmTransport{h: th, ref: o.TransportKey, storage: s.cfg.WrapKeyLabel}
	}
	now := s.now()
	if len(o.SignerCerts) > 0 {
		rc, err := open()
		if err != nil {
			return ImportSummary{}, err
		}
		signed, err := pskc.VerifySignature(rc, o.SignerCerts, now)
		rc.Close()
		if err != nil {
			return ImportSummary{}, err
		}
		open = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(signed)), nil }
		o.Size = int64(len(signed))
	}
	// Pass 1: check.
	chk, err := s.checkPass(ctx, open, o, now, progress)
	defer chk.wipe()
	if err != nil {
		return ImportSummary{}, err
	}
	total := chk.n
	// Pass 2: wrap and store.
	sum := ImportSummary{ByAlgorithm: map[string]int{}, Expired: chk.expired}
	o.PSKC.PINKey = nil
	rc, err := open()
	if err != nil {
		return ImportSummary{}, err
	}
	defer rc.Close()
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		r := pskc.NewReader(rc, o.PSKC)
		nowMS := now.UnixMilli()
		stmt, err := tx.PrepareContext(ctx, s.db.Rebind(`INSERT INTO otp_tokens (id, serial, key_id, manufacturer, kind, hash, digits, period_s, t0, suite, wrap_label, wrapped, counter, drift, passport_id, status, failures, locked_until_ms, not_before_ms, not_after_ms, imported_ms, assigned_ms, pin_mode, pin_min, pin_max, pin_mac)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 'active', 0, 0, ?, ?, ?, 0, ?, ?, ?, ?) ON CONFLICT (serial, key_id) DO NOTHING`))
		if err != nil {
			return err
		}
		defer stmt.Close()
		var done int64
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			k, err := r.NextContext(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("the file changed between the two passes: %w", err)
			}
			if expired(k, now) && !o.ImportExpired {
				k.Wipe()
				continue
			}
			wrapped := k.Wrapped // unwrapped and wrapped in the HSM (TransportKey)
			if wrapped == nil {
				wrapped, err = s.hsm.WrapSecret(ctx, s.cfg.WrapKeyLabel, k.Secret)
				k.Wipe()
				if err != nil {
					return &pskc.EntryError{Index: k.Index, KeyID: k.ID, Serial: k.Serial, Err: fmt.Errorf("wrapping the seed in the HSM: %w", err)}
				}
			}
			var (
				pinMode        string
				pinMin, pinMax int
				pinMAC         []byte
			)
			if pp := k.PIN; pp != nil {
				pin, ok := chk.pins[pp.KeyID]
				if !ok { // checked in pass 1
					return &pskc.EntryError{Index: k.Index, KeyID: k.ID, Serial: k.Serial, Err: fmt.Errorf("the file changed between the two passes: PIN key %q is gone", pp.KeyID)}
				}
				msg := pinMessage(string(pin))
				macs, err := s.hsm.HMACWrapped(ctx, s.cfg.WrapKeyLabel, wrapped, k.Params.Hash, [][]byte{msg})
				clear(msg)
				if err != nil || len(macs) != 1 {
					return &pskc.EntryError{Index: k.Index, KeyID: k.ID, Serial: k.Serial, Err: fmt.Errorf("computing the PIN check in the HSM: %w", err)}
				}
				pinMode, pinMin, pinMax, pinMAC = pp.Mode, pp.Min, pp.Max, macs[0]
			}
			p := k.Params
			var nb, na int64
			if !k.StartDate.IsZero() {
				nb = k.StartDate.UnixMilli()
			}
			if !k.ExpiryDate.IsZero() {
				na = k.ExpiryDate.UnixMilli()
			}
			res, err := stmt.ExecContext(ctx, newID(), k.Serial, k.ID, k.Manufacturer, string(p.Kind), otp.HashName(p.Hash), p.Digits,
				int64(p.Period.Seconds()), p.T0, p.Suite, s.cfg.WrapKeyLabel, wrapped, int64(k.Counter), k.TimeDrift, nb, na, nowMS, pinMode, pinMin, pinMax, pinMAC)
			if err != nil {
				return &pskc.EntryError{Index: k.Index, KeyID: k.ID, Serial: k.Serial, Err: fmt.Errorf("storing: %w", err)}
			}
			if n, _ := res.RowsAffected(); n == 0 {
				sum.Duplicates++
			} else {
				sum.Imported++
				sum.ByAlgorithm[algName(p)]++
			}
			done++
			if done%256 == 0 || done == total {
				progress(Progress{Phase: "storing", Done: done, Total: total})
			}
		}
		sum.PINKeysSkipped = r.SkippedPINKeys()
		return nil
	})
	if err != nil {
		return ImportSummary{}, err
	}
	return sum, nil
}

// checked is what the first pass learnt: the number of keys to store, the
// expired ones, and the PINs that keys with a server-checked PIN name
// (kept for the second pass, wiped after).
type checked struct {
	n       int64
	expired []ExpiredKey
	pins    map[string][]byte
}

func (c *checked) wipe() {
	for _, p := range c.pins {
		clear(p)
	}
}

// expired says whether the key's ExpiryDate has passed at now.
func expired(k *pskc.Key, now time.Time) bool {
	return !k.ExpiryDate.IsZero() && !now.Before(k.ExpiryDate)
}

func (s *Service) checkPass(ctx context.Context, open func() (io.ReadCloser, error), o ImportOptions, now time.Time, progress func(Progress)) (*checked, error) {
	chk := &checked{pins: map[string][]byte{}}
	rc, err := open()
	if err != nil {
		return chk, err
	}
	defer rc.Close()
	cr := &countingReader{r: rc}
	popts := o.PSKC
	pinIndex := map[string]int{}
	popts.PINKey = func(p pskc.PINKey) error {
		if first, dup := pinIndex[p.ID]; dup {
			return fmt.Errorf("%w: PIN key id %q is also used by key package %d", pskc.ErrMalformed, p.ID, first)
		}
		pinIndex[p.ID] = p.Index
		chk.pins[p.ID] = append([]byte(nil), p.Value...)
		return nil
	}
	r := pskc.NewReader(cr, popts)
	seen := map[string]int{}
	type pinUse struct {
		k   pskc.Key
		pin pskc.PINPolicy
	}
	var uses []pinUse
	for {
		if err := ctx.Err(); err != nil {
			return chk, err
		}
		k, err := r.NextContext(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return chk, err
		}
		k.Wipe()
		if k.Wrapped != nil {
			// The HSM must accept the seed as an HMAC key of the token's
			// hash (SoftHSM2 refuses keys shorter than the hash output).
			if _, err := s.hsm.HMACWrapped(ctx, s.cfg.WrapKeyLabel, k.Wrapped, k.Params.Hash, [][]byte{[]byte("egate-import-probe")}); err != nil {
				return chk, &pskc.EntryError{Index: k.Index, KeyID: k.ID, Serial: k.Serial, Err: fmt.Errorf("the HSM refuses the seed as an HMAC-%s key: %w", otp.HashName(k.Params.Hash), err)}
			}
		}
		id := k.Serial + "\x00" + k.ID
		if first, dup := seen[id]; dup {
			return chk, &pskc.EntryError{Index: k.Index, KeyID: k.ID, Serial: k.Serial, Err: fmt.Errorf("%w: the same serial and key id as key package %d", pskc.ErrMalformed, first)}
		}
		seen[id] = k.Index
		if expired(k, now) {
			chk.expired = append(chk.expired, ExpiredKey{Index: k.Index, KeyID: k.ID, Serial: k.Serial, ExpiryDate: k.ExpiryDate})
			if !o.ImportExpired {
				continue
			}
		}
		if k.PIN != nil {
			uses = append(uses, pinUse{k: pskc.Key{Index: k.Index, ID: k.ID, Serial: k.Serial}, pin: *k.PIN})
		}
		chk.n++
		if chk.n%256 == 0 {
			progress(Progress{Phase: "checking", Done: cr.n, Total: o.Size})
		}
	}
	// A PIN key may come before or after the keys that name it.
	for _, u := range uses {
		pin, ok := chk.pins[u.pin.KeyID]
		var why error
		switch {
		case !ok:
			why = fmt.Errorf("%w: PINUsageMode %s names PIN key %q, which the file does not hold", pskc.ErrMalformed, u.pin.Mode, u.pin.KeyID)
		case len(pin) < u.pin.Min || len(pin) > u.pin.Max || !otp.ValidCode(string(pin), len(pin)):
			why = fmt.Errorf("%w: the PIN of PIN key %q is not %d to %d decimal digits as its PINPolicy says", pskc.ErrMalformed, u.pin.KeyID, u.pin.Min, u.pin.Max)
		}
		if why != nil {
			return chk, &pskc.EntryError{Index: u.k.Index, KeyID: u.k.ID, Serial: u.k.Serial, Err: why}
		}
	}
	progress(Progress{Phase: "checking", Done: cr.n, Total: max(o.Size, cr.n)})
	if chk.n == 0 && len(chk.expired) == 0 {
		return chk, fmt.Errorf("%w: the file holds no OTP keys", pskc.ErrMalformed)
	}
	return chk, nil
}

func algName(p otp.Params) string {
	switch p.Kind {
	case otp.KindOCRA:
		return "ocra/" + p.Suite
	case otp.KindTOTP:
		return fmt.Sprintf("totp/%s/%d/%s", otp.HashName(p.Hash), p.Digits, p.Period)
	}
	return fmt.Sprintf("hotp/%s/%d", otp.HashName(p.Hash), p.Digits)
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
