package pivcard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Defaults of a YubiKey fresh from the factory or after a reset.
var (
	defaultPIN     = padPIN([]byte("123456"))
	defaultPUK     = padPIN([]byte("12345678"))
	defaultMgmtKey = []byte{
		1, 2, 3, 4, 5, 6, 7, 8,
		1, 2, 3, 4, 5, 6, 7, 8,
		1, 2, 3, 4, 5, 6, 7, 8,
	}
)

const (
	defaultRetries = 3
	// maxObjectSize is the largest data object a YubiKey 5 stores.
	maxObjectSize = 3052
)

// state is what the card keeps across power cycles; it is saved as JSON.
type state struct {
	Serial     uint32  `json:"serial"`
	Version    [3]byte `json:"version"`
	FormFactor byte    `json:"form_factor"`

	PIN        []byte `json:"pin"` // 8 bytes, padded with 0xff
	PINRetries int    `json:"pin_retries"`
	PINMax     int    `json:"pin_max"`
	PUK        []byte `json:"puk"`
	PUKRetries int    `json:"puk_retries"`
	PUKMax     int    `json:"puk_max"`

	MgmtAlg   byte   `json:"mgmt_alg"`
	MgmtKey   []byte `json:"mgmt_key"`
	MgmtTouch byte   `json:"mgmt_touch"`

	// Keys by slot ("9a", "82", "f9"); Objects by tag in hex ("5fc105").
	Keys    map[string]*slotKey `json:"keys"`
	Objects map[string][]byte   `json:"objects"`
}

// slotKey is a private key in a slot, with its policies.
type slotKey struct {
	Alg         byte   `json:"alg"`
	PINPolicy   byte   `json:"pin_policy"`
	TouchPolicy byte   `json:"touch_policy"`
	Origin      byte   `json:"origin"`
	PKCS8       []byte `json:"pkcs8"`
}

func padPIN(p []byte) []byte {
	out := bytes.Repeat([]byte{0xff}, 8)
	copy(out, p)
	return out
}

// resetApplet puts the applet back to its factory settings, keeping the
// serial, the version and the attestation key and certificate.
func (s *state) resetApplet() {
	s.PIN, s.PINRetries, s.PINMax = bytes.Clone(defaultPIN), defaultRetries, defaultRetries
	s.PUK, s.PUKRetries, s.PUKMax = bytes.Clone(defaultPUK), defaultRetries, defaultRetries
	s.MgmtAlg, s.MgmtKey, s.MgmtTouch = alg3DES, bytes.Clone(defaultMgmtKey), touchPolicyNever
	att := s.Keys["f9"]
	attCert, hasCert := s.Objects[objAttestation]
	s.Keys = map[string]*slotKey{}
	s.Objects = map[string][]byte{}
	if att != nil {
		s.Keys["f9"] = att
	}
	if hasCert {
		s.Objects[objAttestation] = attCert
	}
}

func loadState(path string) (*state, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("parsing card state %s: %w", path, err)
	}
	if len(s.PIN) != 8 || len(s.PUK) != 8 || s.Keys == nil || s.Objects == nil {
		return nil, fmt.Errorf("card state %s is incomplete", path)
	}
	return &s, nil
}

// save writes the state atomically: a temporary file renamed over the old.
func (s *state) save(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".pivcard-*")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), path)
}
