// Package pinsource reads a PIN from where the configuration says it is, so
// that a PIN never appears in a config file, on a command line or in a log.
//
// A source is "file:/path/to/pin" (the first line of the file; the file must
// not be readable by others, mode 0600 or 0640) or "env:NAME" (an environment
// variable). "file:///path" is accepted too. Errors name the source (the
// path or the variable), never the PIN.
package pinsource

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ErrPINSource is matched (errors.Is) by every error of this package.
var ErrPINSource = errors.New("pin-source")

// Error says what is wrong with a pin source; it never contains the PIN.
type Error struct {
	Source string // the source as configured (a path or variable name, never a PIN)
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("pin-source %q: %s", e.Source, e.Reason)
}

// Is makes errors.Is(err, ErrPINSource) true.
func (e *Error) Is(target error) bool { return target == ErrPINSource }

// MaxLen bounds a PIN's length.
const MaxLen = 256

// Kind is where a PIN comes from.
type Kind int

const (
	File Kind = iota + 1
	Env
)

// Source is a parsed pin source.
type Source struct {
	Kind Kind
	Ref  string // the file path or the variable name
	raw  string
}

// String returns the source as it was written (it holds no PIN).
func (s Source) String() string { return s.raw }

// Parse checks a source's syntax without reading it.
func Parse(src string) (Source, error) {
	switch {
	case strings.HasPrefix(src, "file:"):
		p := strings.TrimPrefix(src, "file:")
		if strings.HasPrefix(p, "//") {
			// file:///abs/path (empty host) only.
			rest := strings.TrimPrefix(p, "//")
			if !strings.HasPrefix(rest, "/") {
				return Source{}, &Error{Source: src, Reason: `file URL with a host is not supported; write file:/path or file:///path`}
			}
			p = rest
		}
		if p == "" {
			return Source{}, &Error{Source: src, Reason: "no file path after file:"}
		}
		return Source{Kind: File, Ref: p, raw: src}, nil
	case strings.HasPrefix(src, "env:"):
		n := strings.TrimPrefix(src, "env:")
		if n == "" || strings.ContainsAny(n, "= \t\n") {
			return Source{}, &Error{Source: src, Reason: "want env:NAME with a variable name"}
		}
		return Source{Kind: Env, Ref: n, raw: src}, nil
	case src == "":
		return Source{}, &Error{Source: src, Reason: "no pin-source configured; set it to file:/path/to/pin-file (mode 0600) or env:VARIABLE"}
	default:
		return Source{}, &Error{Source: redactUnknown(src), Reason: "unknown kind; want file:/path/to/pin-file or env:VARIABLE (a PIN is never written inline)"}
	}
}

// redactUnknown avoids echoing something that may be a PIN typed inline.
func redactUnknown(s string) string {
	if i := strings.IndexByte(s, ':'); i > 0 {
		return s[:i+1] + "…"
	}
	return "…"
}

// Read parses src and returns the PIN it names.
func Read(src string) ([]byte, error) {
	s, err := Parse(src)
	if err != nil {
		return nil, err
	}
	return s.Read()
}

// Read returns the PIN. The caller should overwrite it when done.
func (s Source) Read() ([]byte, error) {
	var pin []byte
	switch s.Kind {
	case File:
		f, err := os.Open(s.Ref)
		if err != nil {
			return nil, &Error{Source: s.raw, Reason: fmt.Sprintf("cannot open the PIN file: %v", errors.Unwrap(err))}
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return nil, &Error{Source: s.raw, Reason: fmt.Sprintf("cannot stat the PIN file: %v", err)}
		}
		if !st.Mode().IsRegular() {
			return nil, &Error{Source: s.raw, Reason: "is not a regular file"}
		}
		if st.Mode().Perm()&0o007 != 0 {
			return nil, &Error{Source: s.raw, Reason: fmt.Sprintf("the PIN file is accessible to every user (mode %04o); run chmod 600 on it", st.Mode().Perm())}
		}
		r := bufio.NewReaderSize(io.LimitReader(f, MaxLen+2), MaxLen+2)
		line, err := r.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return nil, &Error{Source: s.raw, Reason: fmt.Sprintf("reading the PIN file: %v", err)}
		}
		pin = bytes.TrimRight(line, "\r\n")
	case Env:
		v, ok := os.LookupEnv(s.Ref)
		if !ok {
			return nil, &Error{Source: s.raw, Reason: fmt.Sprintf("environment variable %s is not set", s.Ref)}
		}
		pin = []byte(v)
	default:
		return nil, &Error{Source: s.raw, Reason: "not parsed"}
	}
	if len(pin) == 0 {
		return nil, &Error{Source: s.raw, Reason: "the PIN is empty"}
	}
	if len(pin) > MaxLen {
		return nil, &Error{Source: s.raw, Reason: fmt.Sprintf("the PIN is longer than %d bytes", MaxLen)}
	}
	return pin, nil
}

// Wipe overwrites a PIN in memory.
func Wipe(pin []byte) {
	for i := range pin {
		pin[i] = 0
	}
}
