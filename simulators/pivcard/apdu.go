package pivcard

// Status words a YubiKey answers with (ISO/IEC 7816-4 §5.1.3, SP 800-73-4 Part 2 §5.6).
const (
	swOK                  uint16 = 0x9000
	swBytesRemaining      uint16 = 0x6100 // low byte: bytes available (00: 256 or more)
	swVerifyFail          uint16 = 0x63c0 // low nibble: retries left
	swMemoryFailure       uint16 = 0x6581
	swWrongLength         uint16 = 0x6700
	swSecurityStatus      uint16 = 0x6982
	swAuthBlocked         uint16 = 0x6983
	swConditionsNotMet    uint16 = 0x6985
	swWrongData           uint16 = 0x6a80
	swFuncNotSupported    uint16 = 0x6a81
	swFileNotFound        uint16 = 0x6a82
	swNotEnoughMemory     uint16 = 0x6a84
	swIncorrectP1P2       uint16 = 0x6a86
	swReferenceNotFound   uint16 = 0x6a88
	swLastCommandExpected uint16 = 0x6883
	swInsNotSupported     uint16 = 0x6d00
	swClaNotSupported     uint16 = 0x6e00
)

// command is a parsed command APDU (ISO/IEC 7816-4 §5.1, short and extended
// length).
type command struct {
	cla, ins, p1, p2 byte
	data             []byte
	le               int  // expected response length; 0 when absent
	extended         bool // extended-length encoding
}

// parseCommand splits a command APDU into its fields. It returns
// swWrongLength when the length fields disagree with the APDU's size.
func parseCommand(b []byte) (command, uint16) {
	if len(b) < 4 {
		return command{}, swWrongLength
	}
	c := command{cla: b[0], ins: b[1], p1: b[2], p2: b[3]}
	body := b[4:]
	switch {
	case len(body) == 0: // case 1
		return c, swOK
	case len(body) == 1: // case 2 short
		c.le = int(body[0])
		if c.le == 0 {
			c.le = 256
		}
		return c, swOK
	case body[0] != 0: // case 3 or 4 short
		lc := int(body[0])
		switch len(body) {
		case 1 + lc:
			c.data = body[1:]
		case 2 + lc:
			c.data = body[1 : 1+lc]
			c.le = int(body[1+lc])
			if c.le == 0 {
				c.le = 256
			}
		default:
			return command{}, swWrongLength
		}
		return c, swOK
	}
	// Extended length: a 0x00 marker, then two length bytes.
	if len(body) < 3 {
		return command{}, swWrongLength
	}
	c.extended = true
	n := int(body[1])<<8 | int(body[2])
	if len(body) == 3 { // case 2 extended
		c.le = n
		if c.le == 0 {
			c.le = 65536
		}
		return c, swOK
	}
	if n == 0 {
		return command{}, swWrongLength
	}
	switch len(body) {
	case 3 + n:
		c.data = body[3:]
	case 5 + n:
		c.data = body[3 : 3+n]
		c.le = int(body[3+n])<<8 | int(body[4+n])
		if c.le == 0 {
			c.le = 65536
		}
	default:
		return command{}, swWrongLength
	}
	return c, swOK
}

func appendSW(b []byte, sw uint16) []byte { return append(b, byte(sw>>8), byte(sw)) }
