// Package pkcs11uri is egate's one parser of RFC 7512 `pkcs11:` URIs, the
// names of keys, tokens and modules everywhere in egate.
//
// Parsing is strict: an unknown attribute (a typo such as "objcet=") is an
// error rather than silently ignored, as is a repeated attribute, a bad
// percent escape, a character that must be escaped, an unknown type or a
// non-numeric slot-id. Vendor attributes are accepted only with an "x-" name
// prefix. A PIN is never accepted inline: pin-value is refused so that a PIN
// cannot reach a config file, a command line or a log through a key name; use
// pin-source instead.
//
// String produces a canonical form (attributes in a fixed order, everything
// outside the RFC's allowed characters percent-encoded, id always fully
// percent-encoded), and Parse(u.String()) gives back u.
package pkcs11uri

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Scheme is the URI scheme prefix, including the colon.
const Scheme = "pkcs11:"

// ErrBadURI is matched (errors.Is) by every parse error.
var ErrBadURI = errors.New("malformed pkcs11 URI")

// Error says what is wrong with a URI. It never repeats the URI's values:
// a URI may carry secrets (a pin-value that is refused).
type Error struct {
	Attr   string // the attribute at fault, if any
	Reason string
}

func (e *Error) Error() string {
	if e.Attr != "" {
		return fmt.Sprintf("malformed pkcs11 URI: attribute %q: %s", e.Attr, e.Reason)
	}
	return "malformed pkcs11 URI: " + e.Reason
}

// Is makes errors.Is(err, ErrBadURI) true.
func (e *Error) Is(target error) bool { return target == ErrBadURI }

// Object classes allowed in the type attribute.
const (
	TypePublic    = "public"
	TypePrivate   = "private"
	TypeCert      = "cert"
	TypeSecretKey = "secret-key"
	TypeData      = "data"
)

// URI is a parsed pkcs11 URI. Empty fields were absent. Values are decoded
// (no percent escapes).
type URI struct {
	// Path attributes (identify the module, slot, token and object).
	Token               string
	Manufacturer        string
	Serial              string
	Model               string
	LibraryManufacturer string
	LibraryDescription  string
	LibraryVersion      string // "M" or "M.N"
	SlotManufacturer    string
	SlotDescription     string
	SlotID              *uint64
	Object              string // CKA_LABEL
	ID                  []byte // CKA_ID, any bytes
	Type                string // one of the Type* constants

	// Query attributes.
	PINSource  string
	ModuleName string
	ModulePath string

	// Vendor attributes ("x-" names), path and query.
	VendorPath  map[string]string
	VendorQuery map[string]string
}

var pathOrder = []string{"token", "manufacturer", "serial", "model", "library-manufacturer", "library-description", "library-version", "slot-manufacturer", "slot-description", "slot-id", "object", "type", "id"}
var queryOrder = []string{"pin-source", "module-name", "module-path"}

func isPathAttr(n string) bool  { return contains(pathOrder, n) }
func isQueryAttr(n string) bool { return contains(queryOrder, n) || n == "pin-value" }

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// Parse parses a pkcs11 URI strictly.
func Parse(s string) (*URI, error) {
	if len(s) < len(Scheme) || !strings.EqualFold(s[:len(Scheme)], Scheme) {
		return nil, &Error{Reason: `must start with "pkcs11:"`}
	}
	rest := s[len(Scheme):]
	path, query, hasQuery := strings.Cut(rest, "?")
	u := &URI{}
	seen := map[string]bool{}
	if path != "" {
		for _, a := range strings.Split(path, ";") {
			if err := u.setAttr(a, false, seen); err != nil {
				return nil, err
			}
		}
	}
	if hasQuery {
		if query == "" {
			return nil, &Error{Reason: `empty query after "?"`}
		}
		for _, a := range strings.Split(query, "&") {
			if err := u.setAttr(a, true, seen); err != nil {
				return nil, err
			}
		}
	}
	return u, nil
}

func (u *URI) setAttr(a string, inQuery bool, seen map[string]bool) error {
	where := "path"
	if inQuery {
		where = "query"
	}
	if a == "" {
		return &Error{Reason: "empty attribute in the " + where + ` (doubled or trailing separator)`}
	}
	name, raw, ok := strings.Cut(a, "=")
	if !ok {
		return &Error{Reason: fmt.Sprintf("%s attribute without \"=\" (%s)", where, safeName(name))}
	}
	if err := checkName(name); err != nil {
		return err
	}
	if name == "pin-value" {
		// Refused outright, and its value never echoed.
		return &Error{Attr: name, Reason: "PINs are never accepted inline; put the PIN in a file or environment variable and name it with pin-source=file:/path or pin-source=env:NAME"}
	}
	vendor := strings.HasPrefix(name, "x-")
	switch {
	case vendor:
	case inQuery && isPathAttr(name):
		return &Error{Attr: name, Reason: "is a path attribute but appears in the query (after \"?\"); move it before the \"?\" separated by \";\""}
	case !inQuery && isQueryAttr(name):
		return &Error{Attr: name, Reason: "is a query attribute but appears in the path; write it after \"?\""}
	case !isPathAttr(name) && !isQueryAttr(name):
		return &Error{Attr: name, Reason: "unknown attribute (known: " + strings.Join(pathOrder, ", ") + "; query: " + strings.Join(queryOrder, ", ") + "; vendor attributes start with x-)"}
	}
	if seen[name] {
		return &Error{Attr: name, Reason: "appears more than once"}
	}
	seen[name] = true
	val, err := decode(raw, inQuery)
	if err != nil {
		return &Error{Attr: name, Reason: err.Error()}
	}
	if vendor {
		m := &u.VendorPath
		if inQuery {
			m = &u.VendorQuery
		}
		if *m == nil {
			*m = map[string]string{}
		}
		(*m)[name] = string(val)
		return nil
	}
	v := string(val)
	switch name {
	case "token":
		u.Token = v
	case "manufacturer":
		u.Manufacturer = v
	case "serial":
		u.Serial = v
	case "model":
		u.Model = v
	case "library-manufacturer":
		u.LibraryManufacturer = v
	case "library-description":
		u.LibraryDescription = v
	case "library-version":
		if !validVersion(v) {
			return &Error{Attr: name, Reason: `must be "major" or "major.minor" in decimal digits`}
		}
		u.LibraryVersion = v
	case "slot-manufacturer":
		u.SlotManufacturer = v
	case "slot-description":
		u.SlotDescription = v
	case "slot-id":
		if v == "" || strings.Trim(v, "0123456789") != "" {
			return &Error{Attr: name, Reason: "must be a decimal number"}
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return &Error{Attr: name, Reason: "number out of range"}
		}
		u.SlotID = &n
	case "object":
		u.Object = v
	case "type":
		switch v {
		case TypePublic, TypePrivate, TypeCert, TypeSecretKey, TypeData:
		default:
			return &Error{Attr: name, Reason: "must be one of public, private, cert, secret-key, data"}
		}
		u.Type = v
	case "id":
		u.ID = val
	case "pin-source":
		if v == "" {
			return &Error{Attr: name, Reason: "is empty; give file:/path or env:NAME"}
		}
		u.PINSource = v
	case "module-name":
		u.ModuleName = v
	case "module-path":
		u.ModulePath = v
	}
	return nil
}

func safeName(n string) string {
	if len(n) > 40 {
		n = n[:40] + "…"
	}
	return strconv.Quote(n)
}

func checkName(n string) error {
	if n == "" {
		return &Error{Reason: "attribute with an empty name"}
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return &Error{Reason: fmt.Sprintf("attribute name %s has a character outside letters, digits, - and _", safeName(n))}
		}
	}
	return nil
}

func validVersion(v string) bool {
	maj, min, hasMin := strings.Cut(v, ".")
	digits := func(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }
	return digits(maj) && (!hasMin || digits(min))
}

const unreservedChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
const resAvail = ":[]@!$'()*+,="

func allowed(c byte, inQuery bool) bool {
	if strings.IndexByte(unreservedChars, c) >= 0 || strings.IndexByte(resAvail, c) >= 0 {
		return true
	}
	if inQuery {
		return c == '/' || c == '?' || c == '|'
	}
	return c == '&'
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func decode(s string, inQuery bool) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+2 >= len(s) {
				return nil, fmt.Errorf("truncated percent escape at byte %d of the value", i)
			}
			h, ok1 := unhex(s[i+1])
			l, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("bad percent escape at byte %d of the value (want %%XX with hex digits)", i)
			}
			out = append(out, h<<4|l)
			i += 2
			continue
		}
		if !allowed(c, inQuery) {
			return nil, fmt.Errorf("character %q at byte %d must be percent-encoded (%%%02X)", c, i, c)
		}
		out = append(out, c)
	}
	return out, nil
}

func encode(b []byte, inQuery, all bool) string {
	var sb strings.Builder
	for _, c := range b {
		if !all && allowed(c, inQuery) && c != '&' && c != '?' && c != '|' {
			sb.WriteByte(c)
			continue
		}
		fmt.Fprintf(&sb, "%%%02X", c)
	}
	return sb.String()
}

// String returns the canonical text form.
func (u *URI) String() string {
	var path []string
	add := func(name, v string, present bool) {
		if present {
			path = append(path, name+"="+encode([]byte(v), false, false))
		}
	}
	add("token", u.Token, u.Token != "")
	add("manufacturer", u.Manufacturer, u.Manufacturer != "")
	add("serial", u.Serial, u.Serial != "")
	add("model", u.Model, u.Model != "")
	add("library-manufacturer", u.LibraryManufacturer, u.LibraryManufacturer != "")
	add("library-description", u.LibraryDescription, u.LibraryDescription != "")
	add("library-version", u.LibraryVersion, u.LibraryVersion != "")
	add("slot-manufacturer", u.SlotManufacturer, u.SlotManufacturer != "")
	add("slot-description", u.SlotDescription, u.SlotDescription != "")
	if u.SlotID != nil {
		path = append(path, "slot-id="+strconv.FormatUint(*u.SlotID, 10))
	}
	add("object", u.Object, u.Object != "")
	add("type", u.Type, u.Type != "")
	if u.ID != nil {
		path = append(path, "id="+encode(u.ID, false, true))
	}
	for _, k := range sortedKeys(u.VendorPath) {
		path = append(path, k+"="+encode([]byte(u.VendorPath[k]), false, false))
	}
	var query []string
	addq := func(name, v string) {
		if v != "" {
			query = append(query, name+"="+encode([]byte(v), true, false))
		}
	}
	addq("pin-source", u.PINSource)
	addq("module-name", u.ModuleName)
	addq("module-path", u.ModulePath)
	for _, k := range sortedKeys(u.VendorQuery) {
		query = append(query, k+"="+encode([]byte(u.VendorQuery[k]), true, false))
	}
	s := Scheme + strings.Join(path, ";")
	if len(query) > 0 {
		s += "?" + strings.Join(query, "&")
	}
	return s
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
