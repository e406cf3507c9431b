package otp

import (
	"context"
	"errors"
	"fmt"
	"io"

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
	// Pass 1: check.
	total, err := s.checkPass(ctx, open, o, progress)
	if err != nil {
		return ImportSummary{}, err
	}
	// Pass 2: wrap and store.
	sum := ImportSummary{ByAlgorithm: map[string]int{}}
	rc, err := open()
	if err != nil {
		return ImportSummary{}, err
	}
	defer rc.Close()
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		r := pskc.NewReader(rc, o.PSKC)
		now := s.now().UnixMilli()
		stmt, err := tx.PrepareContext(ctx, s.db.Rebind(`INSERT INTO otp_tokens (id, serial, key_id, manufacturer, kind, hash, digits, period_s, t0, suite, wrap_label, wrapped, counter, drift, passport_id, status, failures, locked_until_ms, not_before_ms, not_after_ms, imported_ms, assigned_ms)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, NULL, 'active', 0, 0, ?, ?, ?, 0) ON CONFLICT (serial, key_id) DO NOTHING`))
		if err != nil {
			return err
		}
		defer stmt.Close()
		var done int64
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			k, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("the file changed between the two passes: %w", err)
			}
			wrapped, err := s.hsm.WrapSecret(ctx, s.cfg.WrapKeyLabel, k.Secret)
			k.Wipe()
			if err != nil {
				return &pskc.EntryError{Index: k.Index, KeyID: k.ID, Serial: k.Serial, Err: fmt.Errorf("wrapping the seed in the HSM: %w", err)}
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
				int64(p.Period.Seconds()), p.T0, p.Suite, s.cfg.WrapKeyLabel, wrapped, int64(k.Counter), nb, na, now)
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

func (s *Service) checkPass(ctx context.Context, open func() (io.ReadCloser, error), o ImportOptions, progress func(Progress)) (int64, error) {
	rc, err := open()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	cr := &countingReader{r: rc}
	r := pskc.NewReader(cr, o.PSKC)
	seen := map[string]int{}
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		k, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, err
		}
		k.Wipe()
		id := k.Serial + "\x00" + k.ID
		if first, dup := seen[id]; dup {
			return 0, &pskc.EntryError{Index: k.Index, KeyID: k.ID, Serial: k.Serial, Err: fmt.Errorf("%w: the same serial and key id as key package %d", pskc.ErrMalformed, first)}
		}
		seen[id] = k.Index
		n++
		if n%256 == 0 {
			progress(Progress{Phase: "checking", Done: cr.n, Total: o.Size})
		}
	}
	progress(Progress{Phase: "checking", Done: cr.n, Total: max(o.Size, cr.n)})
	if n == 0 {
		return 0, fmt.Errorf("%w: the file holds no OTP keys", pskc.ErrMalformed)
	}
	return n, nil
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
