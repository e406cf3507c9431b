package pivcard

import "errors"

var errTLV = errors.New("malformed BER-TLV")

// tlv is one BER-TLV data object; tag holds up to three tag bytes.
type tlv struct {
	tag   uint32
	value []byte
}

// parseTLVs decodes a sequence of BER-TLV objects (ISO/IEC 7816-4 §5.2:
// tags of one to three bytes, definite lengths of up to three bytes).
func parseTLVs(b []byte) ([]tlv, error) {
	var out []tlv
	for len(b) > 0 {
		t, v, rest, err := nextTLV(b)
		if err != nil {
			return nil, err
		}
		out = append(out, tlv{t, v})
		b = rest
	}
	return out, nil
}

func nextTLV(b []byte) (tag uint32, value, rest []byte, err error) {
	if len(b) < 2 {
		return 0, nil, nil, errTLV
	}
	tag = uint32(b[0])
	i := 1
	if b[0]&0x1f == 0x1f {
		for {
			if i >= len(b) || i > 3 {
				return 0, nil, nil, errTLV
			}
			tag = tag<<8 | uint32(b[i])
			i++
			if b[i-1]&0x80 == 0 {
				break
			}
		}
	}
	if i >= len(b) {
		return 0, nil, nil, errTLV
	}
	n := int(b[i])
	i++
	if n > 0x80 {
		k := n & 0x7f
		if k > 3 || i+k > len(b) {
			return 0, nil, nil, errTLV
		}
		n = 0
		for j := 0; j < k; j++ {
			n = n<<8 | int(b[i+j])
		}
		i += k
	} else if n == 0x80 {
		return 0, nil, nil, errTLV
	}
	if n > len(b)-i {
		return 0, nil, nil, errTLV
	}
	return tag, b[i : i+n], b[i+n:], nil
}

// find returns the value of the first object with the tag.
func find(ts []tlv, tag uint32) ([]byte, bool) {
	for _, t := range ts {
		if t.tag == tag {
			return t.value, true
		}
	}
	return nil, false
}

// appendTLV encodes one object with a definite length.
func appendTLV(b []byte, tag uint32, value []byte) []byte {
	switch {
	case tag > 0xffff:
		b = append(b, byte(tag>>16), byte(tag>>8), byte(tag))
	case tag > 0xff:
		b = append(b, byte(tag>>8), byte(tag))
	default:
		b = append(b, byte(tag))
	}
	n := len(value)
	switch {
	case n < 0x80:
		b = append(b, byte(n))
	case n < 0x100:
		b = append(b, 0x81, byte(n))
	case n < 0x10000:
		b = append(b, 0x82, byte(n>>8), byte(n))
	default:
		b = append(b, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, value...)
}

func tlvBytes(tag uint32, value []byte) []byte { return appendTLV(nil, tag, value) }
