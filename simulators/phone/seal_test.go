package phone

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSealedKey: the state file holds the device key sealed under the app
// PIN. The file itself holds neither the key (raw or PKCS#8) nor anything
// that checks a PIN: the right PIN unseals the device's key, every wrong
// PIN unseals some other key without an error (so a copied file cannot be
// tested offline; only the bank can tell, and it counts), and an older
// app's unsealed state is refused.
func TestSealedKey(t *testing.T) {
	t.Parallel()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sealed, salt, err := Seal(k, []byte("2468"))
	if err != nil {
		t.Fatal(err)
	}
	st := &State{Server: "http://bank", DeviceID: "dev-1", PassportID: "P1", SealedKey: sealed, SealSalt: salt, PINSalt: bytes.Repeat([]byte{7}, 16)}
	path := filepath.Join(t.TempDir(), "phone.json")
	if err := st.Save(path); err != nil {
		t.Fatal(err)
	}
	file, _ := os.ReadFile(path)
	raw, _ := k.Bytes()
	p8, _ := x509.MarshalPKCS8PrivateKey(k)
	pub, _ := x509.MarshalPKIXPublicKey(k.Public())
	for what, secret := range map[string][]byte{"the raw key": raw, "the PKCS#8 key": p8, "the public key": pub} {
		if bytes.Contains(file, secret) || strings.Contains(string(file), b64(secret)) {
			t.Errorf("the state file holds %s", what)
		}
	}
	loaded, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, pin string
		same      bool
	}{
		{"the right PIN", "2468", true},
		{"a wrong PIN", "1111", false},
		{"another wrong PIN", "24680", false},
		{"no PIN", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := loaded.Unseal([]byte(tc.pin))
			if err != nil {
				t.Fatalf("unseal: %v (a wrong PIN must not be told apart here)", err)
			}
			if got.PublicKey.Equal(&k.PublicKey) != tc.same {
				t.Fatalf("unsealed the device's key: %v, want %v", !tc.same, tc.same)
			}
		})
	}
	t.Run("an older app's unsealed key", func(t *testing.T) {
		t.Parallel()
		old := filepath.Join(t.TempDir(), "old.json")
		os.WriteFile(old, []byte(`{"server":"http://bank","device_id":"dev-1","passport_id":"P1","key":"`+b64(p8)+`","pin_salt":"BwcHBwcHBwcHBwcHBwcHBw=="}`), 0o600)
		if _, err := Load(old); err == nil || !strings.Contains(err.Error(), "bind the app again") {
			t.Fatalf("load: %v", err)
		}
	})
}

// b64 is how the state's JSON writes bytes.
func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
