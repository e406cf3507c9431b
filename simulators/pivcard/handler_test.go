package pivcard

import (
	"bytes"
	"crypto/des"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

func newTestCard(t testing.TB) *Card {
	t.Helper()
	v, err := NewVendor(rand.Reader, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(Config{Vendor: v, Serial: 12345678})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func h(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

func sw(resp []byte) string { return hex.EncodeToString(resp[len(resp)-2:]) }

const selectPIV = "00a4040005a000000308"

// mgmtAuth authenticates with the default 3DES management key through the
// witness protocol, as piv-go does.
func mgmtAuth(t *testing.T, c *Card) {
	t.Helper()
	r := c.Transmit(h("0087039b047c028000"))
	if sw(r) != "9000" || len(r) != 14 {
		t.Fatalf("witness: % x", r)
	}
	blk, _ := des.NewTripleDESCipher(defaultMgmtKey)
	w := make([]byte, 8)
	blk.Decrypt(w, r[4:12])
	cmd := append(h("0087039b167c148008"), w...)
	cmd = append(cmd, h("81080102030405060708")...)
	if r := c.Transmit(cmd); sw(r) != "9000" {
		t.Fatalf("auth: % x", r)
	}
}

func TestHandler(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, c *Card)
		apdus []string // sent in order; the last one's status word is checked
		want  string
	}{
		{"too short", nil, []string{"00a4"}, "6700"},
		{"Lc larger than data", nil, []string{"00a404000aa000000308"}, "6700"},
		{"unknown CLA", nil, []string{"80a4040005a000000308"}, "6e00"},
		{"not selected", nil, []string{"00fd000000"}, "6d00"},
		{"select unknown AID", nil, []string{"00a4040005a000000999"}, "6a82"},
		{"select PIV", nil, []string{selectPIV}, "9000"},
		{"version", nil, []string{selectPIV, "00fd000000"}, "9000"},
		{"unknown INS", nil, []string{selectPIV, "0042000000"}, "6d00"},
		{"PIN status", nil, []string{selectPIV, "0020008000"}, "63c3"},
		{"PIN wrong", nil, []string{selectPIV, "002000800831313131313131ff"}, "63c2"},
		{"PIN wrong length", nil, []string{selectPIV, "0020008004313131ff"}, "6a80"},
		{"PIN unknown reference", nil, []string{selectPIV, "0020008108313233343536ffff"}, "6a88"},
		{"PIN right", nil, []string{selectPIV, "0020008008313233343536ffff"}, "9000"},
		{"generate without management key", nil, []string{selectPIV, "0047009a05ac03800111"}, "6982"},
		{"put data without management key", nil, []string{selectPIV, "00db3fff095c035fc10553020102"}, "6982"},
		{"generate bad algorithm", mgmtAuth, []string{"0047009a05ac038001ff"}, "6a80"},
		{"generate bad slot", mgmtAuth, []string{"0047009b05ac03800111"}, "6a86"},
		{"generate", mgmtAuth, []string{"0047009a05ac03800111"}, "9000"},
		{"sign with empty slot", nil, []string{selectPIV, "0087119a0a7c08820081041122334455"}, "6a80"},
		{"wrong management key response", nil, []string{selectPIV, "0087039b047c028000", "0087039b167c14800800000000000000008108" + "0102030405060708"}, "6982"},
		{"management step 2 without step 1", nil, []string{selectPIV, "0087039b167c14800800000000000000008108" + "0102030405060708"}, "6a80"},
		{"management wrong algorithm", nil, []string{selectPIV, "0087089b047c028000"}, "6a80"},
		{"get data missing object", nil, []string{selectPIV, "00cb3fff055c035fc105"}, "6a82"},
		{"get data bad tag", nil, []string{selectPIV, "00cb3fff055c03112233"}, "6a80"},
		{"get data bad P1P2", nil, []string{selectPIV, "00cb0000055c035fc105"}, "6a86"},
		{"get data discovery", nil, []string{selectPIV, "00cb3fff035c017e"}, "9000"},
		{"printed info needs PIN", nil, []string{selectPIV, "00cb3fff055c035fc109"}, "6982"},
		{"metadata empty slot", nil, []string{selectPIV, "00f7009a00"}, "6a88"},
		{"metadata bad slot", nil, []string{selectPIV, "00f7000100"}, "6a86"},
		{"metadata PIN", nil, []string{selectPIV, "00f7008000"}, "9000"},
		{"attest empty slot", nil, []string{selectPIV, "00f99a0000"}, "6a80"},
		{"reset with PIN not blocked", nil, []string{selectPIV, "00fb000000"}, "6985"},
		{"set retries without PIN", mgmtAuth, []string{"00fa050500"}, "6982"},
		{"set management key bad length", mgmtAuth, []string{"00ffffff0b089b08" + "0102030405060708"}, "6a80"},
		{"GET RESPONSE with nothing pending", nil, []string{selectPIV, "00c0000000"}, "6985"},
		{"chain then other command", nil, []string{selectPIV, "10db3fff035c035f", "00fd000000"}, "9000"},
		{"chained command", mgmtAuth, []string{"10db3fff035c035f", "00db3fff06c10553020102"}, "9000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newTestCard(t)
			if tc.setup != nil {
				c.Transmit(h(selectPIV))
				tc.setup(t, c)
			}
			var r []byte
			for _, a := range tc.apdus {
				r = c.Transmit(h(a))
			}
			if got := sw(r); got != tc.want {
				t.Errorf("status %s, want %s (response % x)", got, tc.want, r)
			}
		})
	}
}

func TestHandlerState(t *testing.T) {
	c := newTestCard(t)
	c.Transmit(h(selectPIV))
	// Block the PIN, then the PUK, then reset.
	for i := 0; i < 3; i++ {
		c.Transmit(h("002000800830303030303030ff"))
	}
	if r := c.Transmit(h("0020008008313233343536ffff")); sw(r) != "6983" {
		t.Fatalf("blocked PIN: % x", r)
	}
	for i := 0; i < 3; i++ {
		c.Transmit(h("002c008010" + "3030303030303030" + "313233343536ffff"))
	}
	if r := c.Transmit(h("002c008010" + "3132333435363738" + "313233343536ffff")); sw(r) != "6983" {
		t.Fatalf("blocked PUK: % x", r)
	}
	if r := c.Transmit(h("00fb000000")); sw(r) != "9000" {
		t.Fatalf("reset: % x", r)
	}
	if r := c.Transmit(h("0020008008313233343536ffff")); sw(r) != "9000" {
		t.Fatalf("default PIN after reset: % x", r)
	}

	// A long object is returned in 256-byte pieces with 61xx and GET RESPONSE.
	mgmtAuth(t, c)
	obj := bytes.Repeat([]byte{0xab}, 600)
	data := append(h("5c035fc10a53820258"), obj...)
	for len(data) > 255 {
		if r := c.Transmit(append(h("10db3fffff"), data[:255]...)); sw(r) != "9000" {
			t.Fatalf("chained part: % x", r)
		}
		data = data[255:]
	}
	if r := c.Transmit(append([]byte{0, 0xdb, 0x3f, 0xff, byte(len(data))}, data...)); sw(r) != "9000" {
		t.Fatalf("last part: % x", r)
	}
	r := c.Transmit(h("00cb3fff055c035fc10a"))
	var got []byte
	for sw(r)[:2] == "61" {
		got = append(got, r[:len(r)-2]...)
		r = c.Transmit(h("00c0000000"))
	}
	got = append(got, r[:len(r)-2]...)
	if sw(r) != "9000" || !bytes.Equal(got, append(h("53820258"), obj...)) {
		t.Fatalf("read back %d bytes, status %s", len(got), sw(r))
	}
	// Too large for the card.
	big := append(h("5c035fc10a53820c00"), bytes.Repeat([]byte{1}, 3072)...)
	for len(big) > 255 {
		c.Transmit(append(h("10db3fffff"), big[:255]...))
		big = big[255:]
	}
	if r := c.Transmit(append([]byte{0, 0xdb, 0x3f, 0xff, byte(len(big))}, big...)); sw(r) != "6a84" {
		t.Fatalf("oversized object: % x", r)
	}
}

func TestATRChecksum(t *testing.T) {
	var x byte
	for _, b := range ATR[1:] {
		x ^= b
	}
	if x != 0 {
		t.Errorf("ATR TCK does not check: XOR of T0..TCK = %#x", x)
	}
}

func FuzzAPDU(f *testing.F) {
	for _, s := range []string{selectPIV, "00fd000000", "0020008008313233343536ffff", "0087039b047c028000", "0047009a05ac03800111",
		"00cb3fff055c035fc105", "10db3fff035c035f", "00c0000000", "00f7009a00", "00f99a0000", "0000000000ffff"} {
		f.Add(h(s), h(s))
	}
	v, err := NewVendor(rand.Reader, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		c, err := Open(Config{Vendor: v, Serial: 1})
		if err != nil {
			t.Fatal(err)
		}
		c.Transmit(h(selectPIV))
		for _, apdu := range [][]byte{a, b} {
			r := c.Transmit(apdu)
			if len(r) < 2 {
				t.Fatalf("response without status word: % x", r)
			}
		}
		// The card still works after whatever came before. The first SELECT
		// may complete a command chain the fuzz input opened (same INS, P1,
		// P2: ISO 7816-4 joins their data, and the joined AID is unknown),
		// so it must answer a status word; the next one must select PIV.
		if r := c.Transmit(h(selectPIV)); len(r) < 2 {
			t.Fatalf("first select after fuzz without status word: % x", r)
		}
		if r := c.Transmit(h(selectPIV)); sw(r) != "9000" {
			t.Fatalf("select after fuzz: % x", r)
		}
		if c.st.PINRetries < 0 || c.st.PINRetries > c.st.PINMax || c.st.PUKRetries < 0 || c.st.PUKRetries > c.st.PUKMax {
			t.Fatalf("inconsistent counters %+v", c.st)
		}
	})
}
