package otp

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/egate-bank/egate/internal/testenv"
)

var (
	seed20 = []byte("12345678901234567890")
	seed32 = []byte("12345678901234567890123456789012")
	seed64 = []byte("1234567890123456789012345678901234567890123456789012345678901234")
)

func TestHOTPRFC4226AppendixD(t *testing.T) {
	t.Parallel()
	want := []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}
	ctx := context.Background()
	for c, w := range want {
		t.Run("counter"+strconv.Itoa(c), func(t *testing.T) {
			got, err := HOTP(ctx, SoftwareMAC{seed20}, crypto.SHA1, uint64(c), 6)
			if err != nil || got != w {
				t.Fatalf("HOTP(%d) = %q, %v; want %q", c, got, err, w)
			}
		})
	}
	win, err := HOTPWindow(ctx, SoftwareMAC{seed20}, crypto.SHA1, 0, len(want), 6)
	if err != nil || strings.Join(win, ",") != strings.Join(want, ",") {
		t.Fatalf("HOTPWindow = %v, %v; want %v", win, err, want)
	}
}

func TestTOTPRFC6238AppendixB(t *testing.T) {
	t.Parallel()
	cases := []struct {
		unix               int64
		sha1, sha256, s512 string
	}{
		{59, "94287082", "46119246", "90693936"},
		{1111111109, "07081804", "68084774", "25091201"},
		{1111111111, "14050471", "67062674", "99943326"},
		{1234567890, "89005924", "91819424", "93441116"},
		{2000000000, "69279037", "90698825", "38618901"},
		{20000000000, "65353130", "77737706", "47863826"},
	}
	ctx := context.Background()
	for _, tc := range cases {
		for _, h := range []struct {
			hash crypto.Hash
			seed []byte
			want string
		}{{crypto.SHA1, seed20, tc.sha1}, {crypto.SHA256, seed32, tc.sha256}, {crypto.SHA512, seed64, tc.s512}} {
			t.Run(strconv.FormatInt(tc.unix, 10)+"/"+HashName(h.hash), func(t *testing.T) {
				p := TOTP{Hash: h.hash, Digits: 8, Period: 30 * time.Second}
				got, err := p.Code(ctx, SoftwareMAC{h.seed}, time.Unix(tc.unix, 0))
				if err != nil || got != h.want {
					t.Fatalf("TOTP = %q, %v; want %q", got, err, h.want)
				}
			})
		}
	}
}

func TestOCRARFC6287AppendixC(t *testing.T) {
	t.Parallel()
	const ts = 0x132d0b6 // 2008-03-25 12:06:00 UTC in minutes, the RFC's timestamp
	type vec struct {
		q    string
		c    uint64
		want string
	}
	digits8 := func(i int) string { return strings.Repeat(strconv.Itoa(i), 8) }
	cases := []struct {
		name  string
		suite string
		seed  []byte
		pin   string
		ts    uint64
		vecs  []vec
	}{
		{name: "C.1 QN08", suite: "OCRA-1:HOTP-SHA1-6:QN08", seed: seed20, vecs: func() []vec {
			w := []string{"237653", "243178", "653583", "740991", "608993", "388898", "816933", "224598", "750600", "294470"}
			var v []vec
			for i, r := range w {
				v = append(v, vec{q: digits8(i), want: r})
			}
			return v
		}()},
		{name: "C.1 C-QN08-PSHA1", suite: "OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1", seed: seed32, pin: "1234", vecs: func() []vec {
			w := []string{"65347737", "86775851", "78192410", "71565254", "10104329", "65983500", "70069104", "91771096", "75011558", "08522129"}
			var v []vec
			for i, r := range w {
				v = append(v, vec{q: "12345678", c: uint64(i), want: r})
			}
			return v
		}()},
		{name: "C.1 QN08-PSHA1", suite: "OCRA-1:HOTP-SHA256-8:QN08-PSHA1", seed: seed32, pin: "1234", vecs: func() []vec {
			w := []string{"83238735", "01501458", "17957585", "86776967", "86807031"}
			var v []vec
			for i, r := range w {
				v = append(v, vec{q: digits8(i), want: r})
			}
			return v
		}()},
		{name: "C.1 C-QN08 SHA512", suite: "OCRA-1:HOTP-SHA512-8:C-QN08", seed: seed64, vecs: func() []vec {
			w := []string{"07016083", "63947962", "70123924", "25341727", "33203315", "34205738", "44343969", "51946085", "20403879", "31409299"}
			var v []vec
			for i, r := range w {
				v = append(v, vec{q: digits8(i), c: uint64(i), want: r})
			}
			return v
		}()},
		{name: "C.1 QN08-T1M", suite: "OCRA-1:HOTP-SHA512-8:QN08-T1M", seed: seed64, ts: ts, vecs: func() []vec {
			w := []string{"95209754", "55907591", "22048402", "24218844", "36209546"}
			var v []vec
			for i, r := range w {
				v = append(v, vec{q: digits8(i), want: r})
			}
			return v
		}()},
		{name: "C.2 mutual server SHA256", suite: "OCRA-1:HOTP-SHA256-8:QA08", seed: seed32, vecs: []vec{
			{q: "CLI22220SRV11110", want: "28247970"}, {q: "CLI22221SRV11111", want: "01984843"},
			{q: "CLI22222SRV11112", want: "65387857"}, {q: "CLI22223SRV11113", want: "03351211"},
			{q: "CLI22224SRV11114", want: "83412541"},
		}},
		{name: "C.2 mutual client SHA256", suite: "OCRA-1:HOTP-SHA256-8:QA08", seed: seed32, vecs: []vec{
			{q: "SRV11110CLI22220", want: "15510767"}, {q: "SRV11111CLI22221", want: "90175646"},
			{q: "SRV11112CLI22222", want: "33777207"}, {q: "SRV11113CLI22223", want: "95285278"},
			{q: "SRV11114CLI22224", want: "28934924"},
		}},
		{name: "C.2 mutual server SHA512", suite: "OCRA-1:HOTP-SHA512-8:QA08", seed: seed64, vecs: []vec{
			{q: "CLI22220SRV11110", want: "79496648"}, {q: "CLI22221SRV11111", want: "76831980"},
			{q: "CLI22222SRV11112", want: "12250499"}, {q: "CLI22223SRV11113", want: "90856481"},
			{q: "CLI22224SRV11114", want: "12761449"},
		}},
		{name: "C.2 mutual client SHA512 PIN", suite: "OCRA-1:HOTP-SHA512-8:QA08-PSHA1", seed: seed64, pin: "1234", vecs: []vec{
			{q: "SRV11110CLI22220", want: "18806276"}, {q: "SRV11111CLI22221", want: "70020315"},
			{q: "SRV11112CLI22222", want: "01600026"}, {q: "SRV11113CLI22223", want: "18951020"},
			{q: "SRV11114CLI22224", want: "32528969"},
		}},
		{name: "C.3 plain signature", suite: "OCRA-1:HOTP-SHA256-8:QA08", seed: seed32, vecs: []vec{
			{q: "SIG10000", want: "53095496"}, {q: "SIG11000", want: "04110475"}, {q: "SIG12000", want: "31331128"},
			{q: "SIG13000", want: "76028668"}, {q: "SIG14000", want: "46554205"},
		}},
		{name: "C.3 signature with time", suite: "OCRA-1:HOTP-SHA512-8:QA10-T1M", seed: seed64, ts: ts, vecs: []vec{
			{q: "SIG1000000", want: "77537423"}, {q: "SIG1100000", want: "31970405"}, {q: "SIG1200000", want: "10235557"},
			{q: "SIG1300000", want: "95213541"}, {q: "SIG1400000", want: "65360607"},
		}},
	}
	ctx := context.Background()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSuite(tc.suite)
			if err != nil {
				t.Fatal(err)
			}
			var ins []OCRAInput
			for _, v := range tc.vecs {
				in := OCRAInput{Counter: v.c, Question: v.q, PIN: tc.pin, Timestamp: tc.ts}
				ins = append(ins, in)
				got, err := s.Compute(ctx, SoftwareMAC{tc.seed}, in)
				if err != nil || got != v.want {
					t.Errorf("%s Q=%s C=%d: got %q, %v; want %q", tc.suite, v.q, v.c, got, err, v.want)
				}
			}
			batch, err := s.ComputeBatch(ctx, SoftwareMAC{tc.seed}, ins)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range tc.vecs {
				if batch[i] != v.want {
					t.Errorf("batch[%d] = %q, want %q", i, batch[i], v.want)
				}
			}
		})
	}
	// The RFC's timestamp is 2008-03-25 12:06:00 UTC.
	s, _ := ParseSuite("OCRA-1:HOTP-SHA512-8:QN08-T1M")
	if got := s.TimeSteps(time.Date(2008, 3, 25, 12, 6, 30, 0, time.UTC)); got != ts {
		t.Errorf("TimeSteps = %#x, want %#x", got, ts)
	}
}

func TestParseSuite(t *testing.T) {
	t.Parallel()
	good := []struct {
		s    string
		want Suite
	}{
		{"OCRA-1:HOTP-SHA1-6:QN08", Suite{Hash: crypto.SHA1, Digits: 6, QType: 'N', QLen: 8}},
		{"OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1", Suite{Hash: crypto.SHA256, Digits: 8, Counter: true, QType: 'N', QLen: 8, PINHash: crypto.SHA1}},
		{"OCRA-1:HOTP-SHA512-8:QN08-T1M", Suite{Hash: crypto.SHA512, Digits: 8, QType: 'N', QLen: 8, TimeStep: time.Minute}},
		{"OCRA-1:HOTP-SHA1-6:QH10-S128", Suite{Hash: crypto.SHA1, Digits: 6, QType: 'H', QLen: 10, SessionLen: 128}},
		{"OCRA-1:HOTP-SHA256-10:C-QA64-PSHA256-S-T48H", Suite{Hash: crypto.SHA256, Digits: 10, Counter: true, QType: 'A', QLen: 64, PINHash: crypto.SHA256, SessionLen: 64, TimeStep: 48 * time.Hour}},
	}
	for _, tc := range good {
		t.Run(tc.s, func(t *testing.T) {
			t.Parallel()
			s, err := ParseSuite(tc.s)
			if err != nil {
				t.Fatal(err)
			}
			tc.want.Raw = tc.s
			if *s != tc.want {
				t.Fatalf("ParseSuite = %+v, want %+v", *s, tc.want)
			}
		})
	}
	bad := []string{
		"", "OCRA-2:HOTP-SHA1-6:QN08", "OCRA-1:TOTP-SHA1-6:QN08", "OCRA-1:HOTP-SHA3-6:QN08",
		"OCRA-1:HOTP-SHA1-3:QN08", "OCRA-1:HOTP-SHA1-0:QN08", "OCRA-1:HOTP-SHA1-11:QN08",
		"OCRA-1:HOTP-SHA1-6:QX08", "OCRA-1:HOTP-SHA1-6:QN03", "OCRA-1:HOTP-SHA1-6:QN65",
		"OCRA-1:HOTP-SHA1-6:C", "OCRA-1:HOTP-SHA1-6:C-", "OCRA-1:HOTP-SHA1-6:QN08-PSHA3",
		"OCRA-1:HOTP-SHA1-6:QN08-S1000", "OCRA-1:HOTP-SHA1-6:QN08-T60M", "OCRA-1:HOTP-SHA1-6:QN08-T49H",
		"OCRA-1:HOTP-SHA1-6:QN08-T1X", "OCRA-1:HOTP-SHA1-6:QN08-T1M-PSHA1", "OCRA-1:HOTP-SHA1-6:QN08:x",
		"OCRA-1:HOTP-SHA1-6:X-QN08",
	}
	for _, s := range bad {
		t.Run("bad "+s, func(t *testing.T) {
			t.Parallel()
			if _, err := ParseSuite(s); !errors.Is(err, ErrUnsupported) {
				t.Fatalf("ParseSuite(%q) error = %v, want ErrUnsupported", s, err)
			}
		})
	}
}

func TestOCRAInputErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, suite string
		in          OCRAInput
	}{
		{"letters in QN", "OCRA-1:HOTP-SHA1-6:QN08", OCRAInput{Question: "12ab"}},
		{"non-hex in QH", "OCRA-1:HOTP-SHA1-6:QH08", OCRAInput{Question: "12xy"}},
		{"control char in QA", "OCRA-1:HOTP-SHA1-6:QA08", OCRAInput{Question: "ab\x00c"}},
		{"missing PIN", "OCRA-1:HOTP-SHA1-6:QN08-PSHA1", OCRAInput{Question: "1234"}},
		{"PIN without P", "OCRA-1:HOTP-SHA1-6:QN08", OCRAInput{Question: "1234", PIN: "1"}},
		{"counter without C", "OCRA-1:HOTP-SHA1-6:QN08", OCRAInput{Question: "1234", Counter: 3}},
		{"session too long", "OCRA-1:HOTP-SHA1-6:QN08-S002", OCRAInput{Question: "1234", Session: []byte{1, 2, 3}}},
		{"timestamp without T", "OCRA-1:HOTP-SHA1-6:QN08", OCRAInput{Question: "1234", Timestamp: 5}},
		{"wrong PIN hash size", "OCRA-1:HOTP-SHA1-6:QN08-PSHA256", OCRAInput{Question: "1234", PINHash: make([]byte, 20)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := ParseSuite(tc.suite)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Compute(context.Background(), SoftwareMAC{seed20}, tc.in); !errors.Is(err, ErrInvalid) {
				t.Fatalf("error = %v, want ErrInvalid", err)
			}
		})
	}
}

// The oathtool comparisons use random seeds so they test more than the
// RFC's few keys.
func TestAgainstOathtool(t *testing.T) {
	t.Parallel()
	tool := testenv.NeedCommand(t, "oathtool", "oathtool")
	ctx := context.Background()
	run := func(t *testing.T, args ...string) []string {
		t.Helper()
		out, err := exec.CommandContext(ctx, tool, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("oathtool %v: %v: %s", args[:len(args)-1], err, out)
		}
		return strings.Fields(string(out))
	}
	for _, size := range []int{10, 20, 32, 64} {
		seed := make([]byte, size)
		rand.Read(seed)
		k := hex.EncodeToString(seed)
		for _, digits := range []int{6, 7, 8} {
			t.Run("hotp/"+strconv.Itoa(size)+"/"+strconv.Itoa(digits), func(t *testing.T) {
				const start, window = 1000, 20
				want := run(t, "--hotp", "-d", strconv.Itoa(digits), "-c", strconv.Itoa(start), "-w", strconv.Itoa(window-1), k)
				got, err := HOTPWindow(ctx, SoftwareMAC{seed}, crypto.SHA1, start, window, digits)
				if err != nil || strings.Join(got, " ") != strings.Join(want, " ") {
					t.Fatalf("HOTPWindow = %v, %v; oathtool says %v", got, err, want)
				}
			})
			for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA512} {
				for _, period := range []int{30, 60} {
					name := "totp/" + HashName(h) + "/" + strconv.Itoa(size) + "/" + strconv.Itoa(digits) + "/" + strconv.Itoa(period)
					t.Run(name, func(t *testing.T) {
						when := int64(1700000000 + size*1000 + digits)
						want := run(t, "--totp="+strings.ToLower(HashName(h)), "-d", strconv.Itoa(digits), "-s", strconv.Itoa(period)+"s",
							"-N", "@"+strconv.FormatInt(when, 10), k)
						p := TOTP{Hash: h, Digits: digits, Period: time.Duration(period) * time.Second}
						got, err := p.Code(ctx, SoftwareMAC{seed}, time.Unix(when, 0))
						if err != nil || len(want) != 1 || got != want[0] {
							t.Fatalf("TOTP = %q, %v; oathtool says %v", got, err, want)
						}
					})
				}
			}
		}
	}
}

func TestTruncateDigits(t *testing.T) {
	t.Parallel()
	mac, _ := SoftwareMAC{seed20}.MAC(context.Background(), crypto.SHA1, [][]byte{CounterMessage(0)})
	for _, tc := range []struct {
		digits int
		want   string
		ok     bool
	}{{3, "", false}, {4, "5224", true}, {6, "755224", true}, {9, "284755224", true}, {10, "1284755224", true}, {11, "", false}} {
		t.Run(strconv.Itoa(tc.digits), func(t *testing.T) {
			got, err := Truncate(mac[0], tc.digits)
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("Truncate(%d) = %q, %v; want %q ok=%v", tc.digits, got, err, tc.want, tc.ok)
			}
		})
	}
}
