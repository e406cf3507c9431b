package dclink

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	c := NewConn(&buf)
	in := &Msg{Type: TypeCommand, ID: "c1", ATM: "ATM-0101", Op: OpStatus}
	if err := c.Write(in); err != nil {
		t.Fatal(err)
	}
	out, err := c.Read()
	if err != nil || out.Type != TypeCommand || out.ID != "c1" || out.Digest() != in.Digest() {
		t.Fatalf("round trip: %+v %v", out, err)
	}
	tests := []struct {
		name  string
		bytes []byte
		want  string
	}{
		{"too large", frame(MaxFrame+1, nil), "too large"},
		{"not JSON", frame(3, []byte("{{{")), "does not decode"},
		{"no type", frame(2, []byte("{}")), "without a type"},
		{"truncated", frame(10, []byte(`{"type"`)), io.ErrUnexpectedEOF.Error()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewConn(bytes.NewBuffer(tc.bytes)).Read()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Read = %v, want %q", err, tc.want)
			}
		})
	}
	if err := NewConn(&buf).Write(&Msg{Type: TypeResult, Result: []byte(`"` + strings.Repeat("x", MaxFrame) + `"`)}); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("writing an oversized frame: %v", err)
	}
}

func frame(n uint32, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, n)
	return append(b, body...)
}

// TestDigest: a re-sent command has the digest of the first; another ATM,
// operation or argument changes it.
func TestDigest(t *testing.T) {
	base := Msg{ID: "x", ATM: "A", Op: OpDispense, Args: []byte(`{"txn":"1"}`)}
	same := base
	same.ID = "y"
	if base.Digest() != same.Digest() {
		t.Fatal("the id is part of the digest")
	}
	for _, m := range []Msg{{ATM: "B", Op: OpDispense, Args: base.Args}, {ATM: "A", Op: OpRetract, Args: base.Args}, {ATM: "A", Op: OpDispense, Args: []byte(`{"txn":"2"}`)}} {
		if m.Digest() == base.Digest() {
			t.Fatalf("%+v has the digest of %+v", m, base)
		}
	}
}

// FuzzRead: any bytes from the network either decode to a message with a
// type, which encodes and decodes to the same, or give an error; never a
// panic or an allocation beyond MaxFrame.
func FuzzRead(f *testing.F) {
	var buf bytes.Buffer
	NewConn(&buf).Write(&Msg{Type: TypeHello, Version: Version, Branch: "BR-01", ATMs: []string{"ATM-0101"}})
	f.Add(buf.Bytes())
	f.Add(frame(2, []byte("{}")))
	f.Add(frame(0xffffffff, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := NewConn(bytes.NewBuffer(b)).Read()
		if err != nil {
			return
		}
		if m.Type == "" {
			t.Fatal("a message without a type was accepted")
		}
		var out bytes.Buffer
		if err := NewConn(&out).Write(m); err != nil {
			t.Fatal(err)
		}
		again, err := NewConn(&out).Read()
		if err != nil || again.Type != m.Type || again.ID != m.ID || again.ATM != m.ATM || again.Op != m.Op {
			t.Fatalf("re-encoded %+v decodes to %+v (%v)", m, again, err)
		}
	})
}
