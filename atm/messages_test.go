package atm

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"testing"
)

// codec is one message's Marshal and Parse, for the round-trip tests.
type codec struct {
	name string
	// parse parses p and returns the message and its encoding again.
	parse func(p []byte) (msg any, re []byte, err error)
	// canonical: every payload the parser accepts is its message's only
	// encoding (re == p). HELLO's reply is not: any has_last other than 1
	// reads as "no last transaction" and is written back as 0.
	canonical bool
}

func codecOf[M any](name string, parse func([]byte) (M, error), marshal func(M) []byte, canonical bool) codec {
	return codec{name, func(p []byte) (any, []byte, error) {
		m, err := parse(p)
		if err != nil {
			return nil, nil, err
		}
		return m, marshal(m), nil
	}, canonical}
}

// codecs lists every message of PROTOCOL.md §6. Result has two encodings,
// each its own codec: the code alone (SHOW_QR, CANCEL_QR) and the code with
// a count (PURGE).
var codecs = []codec{
	codecOf("HELLO", ParseHello, Hello.Marshal, true),
	codecOf("HELLO reply", ParseHelloReply, HelloReply.Marshal, false),
	codecOf("STATUS reply", ParseStatus, Status.Marshal, true),
	codecOf("SHOW_QR", ParseShowQR, ShowQR.Marshal, true),
	codecOf("PIN", ParsePINRequest, PINRequest.Marshal, true),
	codecOf("PIN reply", ParsePINReply, PINReply.Marshal, true),
	codecOf("DISPENSE", ParseDispense, Dispense.Marshal, true),
	codecOf("txn request", ParseTxnRequest, TxnRequest.Marshal, true),
	codecOf("txn reply", ParseTxnReply, TxnReply.Marshal, true),
	codecOf("result, code alone", onlyLen(1, ParseResult), Result.Marshal, true),
	codecOf("result with a count", onlyLen(3, ParseResult), Result.MarshalPurge, true),
	codecOf("BOOT", ParseBoot, Boot.Marshal, true),
	codecOf("PROGRESS", ParseProgress, Progress.Marshal, true),
	codecOf("EVENT", ParseEventMsg, EventMsg.Marshal, true),
	codecOf("ERROR", ParseErrorMsg, ErrorMsg.Marshal, true),
}

// onlyLen parses only payloads of n bytes.
func onlyLen[M any](n int, parse func([]byte) (M, error)) func([]byte) (M, error) {
	return func(p []byte) (M, error) {
		if len(p) != n {
			var m M
			return m, ErrShort
		}
		return parse(p)
	}
}

// TestMessageRoundTrip marshals one message of each kind, parses it back
// and compares, and pins the bytes of the replies the simulator used to
// write by hand against PROTOCOL.md's layout.
func TestMessageRoundTrip(t *testing.T) {
	t.Parallel()
	id := TxnID{0: 0xA1, 15: 0x5F}
	rec := TxnRecord{ID: id, State: StateRetracted, Error: CodeRetractCountUnknown, Amount: 35000, Retracted: RetractUnknown,
		Cassettes: []CassetteCount{{Cassette: 1, Requested: 3, Picked: 4, Presented: 3, Rejected: 1}, {Cassette: 2, Requested: 1, Picked: 1, Presented: 1}}}
	size, bitmap := PackBitmap([][]bool{{true, false, true}, {false, true, false}, {true, true, true}})
	for _, tc := range []rtCase{
		rt("HELLO", Hello{1, 1, 1700000000000}, Hello.Marshal, ParseHello, ""),
		rt("HELLO reply with last", HelloReply{1, CapQRText | CapRetract, 2048, [16]byte{1, 2}, 7, &rec}, HelloReply.Marshal, ParseHelloReply, ""),
		rt("HELLO reply without last", HelloReply{Version: 1, MaxPayload: 2048}, HelloReply.Marshal, ParseHelloReply, ""),
		rt("STATUS reply", Status{1, ShutterOpen, 3, SensorTray, 9, []Cassette{{1, 10000, 480, CassetteOK}, {4, 1000, 0, CassetteMissing}}}, Status.Marshal, ParseStatus, ""),
		rt("SHOW_QR text", ShowQR{Session: id, TTLSec: 120, Mode: QRModeText, Text: "https://e.bank/qr/x"}, ShowQR.Marshal, ParseShowQR, ""),
		rt("SHOW_QR bitmap", ShowQR{Session: id, TTLSec: 60, Mode: QRModeBitmap, Size: size, Bitmap: bitmap}, ShowQR.Marshal, ParseShowQR, ""),
		rt("PIN", PINRequest{id, 4, 6, 30, "6222020200112233445"}, PINRequest.Marshal, ParsePINRequest, ""),
		rt("PIN reply OK", PINReply{OK, 4, 7, [16]byte{9: 9}}, PINReply.Marshal, ParsePINReply, ""),
		rt("PIN reply cancelled", PINReply{Code: CodeCancelled}, PINReply.Marshal, ParsePINReply, "11"),
		rt("DISPENSE", Dispense{id, 35000, []Notes{{1, 3}, {2, 1}}}, Dispense.Marshal, ParseDispense, ""),
		rt("txn request", TxnRequest{id}, TxnRequest.Marshal, ParseTxnRequest, ""),
		rt("txn reply", TxnReply{CodeRetractCountUnknown, rec}, TxnReply.Marshal, ParseTxnReply, ""),
		// §6.3, §6.4: code u8.
		rt("SHOW_QR reply", Result{Code: CodeUnsupported}, Result.Marshal, ParseResult, "16"),
		rt("CANCEL_QR reply", Result{Code: OK}, Result.Marshal, ParseResult, "00"),
		// §6.9: code u8, notes u16.
		rt("PURGE reply", Result{Code: OK, Notes: 0x0102}, Result.MarshalPurge, ParseResult, "000102"),
		rt("PURGE reply busy, nothing purged", Result{Code: CodeBusy}, Result.MarshalPurge, ParseResult, "030000"),
		// §6.13: boot_id [16].
		rt("BOOT", Boot{[16]byte{0: 0xB0, 15: 0x07}}, Boot.Marshal, ParseBoot, "b0000000000000000000000000000007"),
		rt("PROGRESS", Progress{StagePicking, 3}, Progress.Marshal, ParseProgress, "010003"),
		rt("EVENT", EventMsg{42, EventRetracted, rec}, EventMsg.Marshal, ParseEventMsg, ""),
		rt("ERROR", ErrorMsg{CodeNoSession, "send HELLO first"}, ErrorMsg.Marshal, ParseErrorMsg, ""),
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.want != "" && hex.EncodeToString(tc.enc) != tc.want {
				t.Fatalf("encoded %x, PROTOCOL.md's layout gives %s", tc.enc, tc.want)
			}
			got, err := tc.parse(tc.enc)
			if err != nil {
				t.Fatalf("parsing %x: %v", tc.enc, err)
			}
			if !reflect.DeepEqual(got, tc.msg) {
				t.Fatalf("round trip: %+v, want %+v", got, tc.msg)
			}
		})
	}
}

// rtCase is a message, its encoding and its parser.
type rtCase struct {
	name  string
	msg   any
	enc   []byte
	parse func([]byte) (any, error)
	want  string // hex of enc, where PROTOCOL.md pins it
}

func rt[M any](name string, m M, marshal func(M) []byte, parse func([]byte) (M, error), want string) rtCase {
	return rtCase{name, m, marshal(m), func(p []byte) (any, error) { return parse(p) }, want}
}

// FuzzMessageRoundTrip: whatever payload a parser accepts, the message's
// Marshal writes a payload the parser reads back as the same message, and
// for a canonical encoding the very same bytes; no parser panics.
func FuzzMessageRoundTrip(f *testing.F) {
	id := TxnID{3: 3}
	rec := TxnRecord{ID: id, State: StatePresented, Amount: 10000, Cassettes: []CassetteCount{{2, 2, 2, 2, 0}}}
	for _, p := range [][]byte{
		Hello{1, 1, 5}.Marshal(),
		HelloReply{Version: 1, Last: &rec}.Marshal(),
		Status{Cassettes: []Cassette{{1, 10000, 5, 0}}}.Marshal(),
		ShowQR{Session: id, Mode: QRModeText, Text: "x"}.Marshal(),
		ShowQR{Session: id, Mode: QRModeBitmap, Size: 3, Bitmap: []byte{0xAA, 0x80}}.Marshal(),
		PINRequest{id, 4, 6, 30, "622202020011"}.Marshal(),
		PINReply{Code: OK, Format: 4}.Marshal(),
		Dispense{id, 10000, []Notes{{1, 1}}}.Marshal(),
		TxnReply{OK, rec}.Marshal(),
		Result{Code: CodeBusy}.Marshal(),
		Result{Notes: 3}.MarshalPurge(),
		Boot{[16]byte{1}}.Marshal(),
		EventMsg{1, EventTaken, rec}.Marshal(),
		ErrorMsg{CodeBadMessage, "no"}.Marshal(),
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		for _, c := range codecs {
			m, re, err := c.parse(p)
			if err != nil {
				continue
			}
			if c.canonical && !bytes.Equal(re, p) {
				t.Fatalf("%s: %x parses as %+v, which marshals as %x", c.name, p, m, re)
			}
			again, _, err := c.parse(re)
			if err != nil || !reflect.DeepEqual(again, m) {
				t.Fatalf("%s: %x parses as %+v, marshals as %x, which parses as %+v (%v)", c.name, p, m, re, again, err)
			}
		}
	})
}
