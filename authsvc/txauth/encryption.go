package txauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/jwe"
	"github.com/egate-bank/egate/internal/httpx"
)

// Transaction-instruction encryption: a platform may send the body of
// POST /v1/tx/authorize and POST /v1/tx/{hash}/proof as a compact JWE
// (Content-Type: application/jose) encrypted to the bank's key in the HSM
// (hsm.LabelTxEncryption), whose public half GET /keys/encryption
// publishes. The plaintext then goes through the same strict decoding as a
// JSON body. Intents of the channels in transactions.require-encryption,
// and proofs of such intents, are refused in clear.

// The refusals of encryption; nothing is decided, counted or stored.
var (
	ErrJWEMalformed       = apiErr(http.StatusBadRequest, "jwe_malformed", "the body is not a compact JWE")
	ErrJWENotAllowed      = apiErr(http.StatusBadRequest, "jwe_algorithm_not_allowed", "the JWE uses an algorithm egate does not accept")
	ErrJWEWrongKey        = apiErr(http.StatusBadRequest, "jwe_wrong_key", "the JWE is encrypted to another key than egate's (GET /keys/encryption)")
	ErrJWEUndecryptable   = apiErr(http.StatusBadRequest, "jwe_undecryptable", "the JWE does not decrypt with egate's key: it was encrypted to another key, or altered")
	ErrEncryptionRequired = apiErr(http.StatusBadRequest, "encryption_required", "intents of this channel must be sent encrypted")
	ErrEncryptionOff      = apiErr(http.StatusUnsupportedMediaType, "encryption_not_configured", "this egate has no transaction-encryption key: send the body as JSON")
)

// jweErr maps an error of jwe.Opener.Open to the API's.
func jweErr(err error) error {
	var e *Error
	switch {
	case errors.Is(err, jwe.ErrWrongKey):
		e = ErrJWEWrongKey
	case errors.Is(err, jwe.ErrNotAllowed):
		e = ErrJWENotAllowed
	case errors.Is(err, jwe.ErrUndecryptable):
		return ErrJWEUndecryptable
	case errors.Is(err, jwe.ErrMalformed):
		e = ErrJWEMalformed
	default:
		return unavailable(err)
	}
	return &Error{Status: e.Status, Code: e.Code, Msg: err.Error(), Err: err}
}

// isJOSE reports whether the request's body is a JWE.
func isJOSE(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if len(ct) < len(jwe.ContentType) || !strings.EqualFold(ct[:len(jwe.ContentType)], jwe.ContentType) {
		return false // JSON, the common case, without parsing
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == jwe.ContentType || mt == jwe.ContentType+"+json")
}

// readTxBody reads a bounded body and, when it is a JWE, opens it; it
// reports whether the body came encrypted.
func (s *Service) readTxBody(w http.ResponseWriter, r *http.Request) ([]byte, bool, error) {
	b, err := readBody(w, r)
	if err != nil || !isJOSE(r) {
		return b, false, err
	}
	if s.jwe == nil {
		return nil, true, ErrEncryptionOff
	}
	pt, err := s.jwe.Open(r.Context(), b)
	if err != nil {
		return nil, true, jweErr(err)
	}
	return pt, true, nil
}

// clearIntent refuses an intent sent in clear on a channel that requires
// encryption.
func (s *Service) clearIntent(in intent.Intent) error {
	if !slices.Contains(s.cfg.RequireEncryption, in.Channel) {
		return nil
	}
	return ErrEncryptionRequired.with(fmt.Sprintf("intents of channel %s must be sent encrypted: POST the body as a compact JWE (Content-Type: %s) encrypted to the key at /keys/encryption", in.Channel, jwe.ContentType))
}

// clearProof refuses a proof sent in clear for an intent whose channel
// requires encryption (read from the stored intent).
func (s *Service) clearProof(ctx context.Context, hash string) error {
	if len(s.cfg.RequireEncryption) == 0 || !validHash(hash) {
		return nil
	}
	row, err := s.load(ctx, hash)
	if err != nil || row == nil {
		return err
	}
	if !slices.Contains(s.cfg.RequireEncryption, row.Intent.Channel) {
		return nil
	}
	return ErrEncryptionRequired.with(fmt.Sprintf("proofs of intents of channel %s must be sent encrypted: POST the body as a compact JWE (Content-Type: %s) encrypted to the key at /keys/encryption", row.Intent.Channel, jwe.ContentType))
}

// httpEncryptionKey serves the public key as a JWKS (use enc, its alg and
// kid): GET /keys/encryption.
func (s *Service) httpEncryptionKey(w http.ResponseWriter, r *http.Request) {
	if s.jwe == nil {
		httpx.WriteError(w, r, http.StatusNotFound, "not_found", "this egate publishes no transaction-encryption key (none in its HSM): send intents as JSON")
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	w.Write(s.jwks)
}

// setEncryption takes the opener of Deps.Encryption.
func (s *Service) setEncryption(o *jwe.Opener) error {
	if o == nil {
		if len(s.cfg.RequireEncryption) > 0 {
			return fmt.Errorf("%w: transactions.require-encryption needs the transaction-encryption key in the HSM (%s, made by egate admin hsm init)", ErrConfig, s.cfg.EncryptionKey)
		}
		return nil
	}
	b, err := json.Marshal(o.JWKS())
	if err != nil {
		return fmt.Errorf("the encryption key's JWKS: %w", err)
	}
	s.jwe, s.jwks = o, b
	return nil
}

// validChannels checks transactions.require-encryption.
func validChannels(cs []intent.Channel) error {
	seen := map[intent.Channel]bool{}
	for i, c := range cs {
		if !slices.Contains(intent.Channels, c) {
			names := make([]string, len(intent.Channels))
			for j, k := range intent.Channels {
				names[j] = string(k)
			}
			return fmt.Errorf("%w: transactions.require-encryption[%d] %q: give channels among %s", ErrConfig, i, c, strings.Join(names, ", "))
		}
		if seen[c] {
			return fmt.Errorf("%w: transactions.require-encryption[%d]: channel %s listed twice", ErrConfig, i, c)
		}
		seen[c] = true
	}
	return nil
}
