package pivcard

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"io"
	"math/big"
)

// Instructions (SP 800-73-4 Part 2 Table 3 and Yubico's extensions).
const (
	insVerify         = 0x20
	insChangeRef      = 0x24
	insResetRetry     = 0x2c
	insGenerate       = 0x47
	insAuthenticate   = 0x87
	insSelect         = 0xa4
	insGetData        = 0xcb
	insPutData        = 0xdb
	insGetMetadata    = 0xf7
	insGetSerial      = 0xf8
	insAttest         = 0xf9
	insSetPINRetries  = 0xfa
	insReset          = 0xfb
	insGetVersion     = 0xfd
	insImportKey      = 0xfe
	insSetMgmtKey     = 0xff
	keyRefPIN         = 0x80
	keyRefPUK         = 0x81
	keyRefMgmt        = 0x9b
	keyRefAttestation = 0xf9
)

var (
	aidPIV = []byte{0xa0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00}
	// discovery is the Discovery Object (SP 800-73-4 Part 1 §3.3.2): the PIV
	// AID and a PIN usage policy of "application PIN only".
	discovery = tlvBytes(0x7e, append(tlvBytes(0x4f, aidPIV), tlvBytes(0x5f2f, []byte{0x40, 0x00})...))
)

const objAttestation = "5fff01"

// slotObject maps a key reference to the tag of its certificate object.
func slotObject(slot byte) (uint32, bool) {
	switch {
	case slot == 0x9a:
		return 0x5fc105, true
	case slot == 0x9c:
		return 0x5fc10a, true
	case slot == 0x9d:
		return 0x5fc10b, true
	case slot == 0x9e:
		return 0x5fc101, true
	case slot >= 0x82 && slot <= 0x95:
		return 0x5fc10d + uint32(slot-0x82), true
	case slot == keyRefAttestation:
		return 0x5fff01, true
	}
	return 0, false
}

// isKeySlot: slots where keys can be generated and used.
func isKeySlot(slot byte) bool { _, ok := slotObject(slot); return ok && slot != keyRefAttestation }

func slotName(slot byte) string { return hex.EncodeToString([]byte{slot}) }

// defaultPINPolicy follows the YubiKey: the signature slot asks for the PIN
// every time, card authentication never, the rest once per session.
func defaultPINPolicy(slot byte) byte {
	switch slot {
	case 0x9c:
		return pinPolicyAlways
	case 0x9e:
		return pinPolicyNever
	}
	return pinPolicyOnce
}

func (c *Card) dispatch(cmd command) ([]byte, uint16) {
	if !(cmd.ins == insAuthenticate && cmd.p2 == keyRefMgmt) {
		c.mgmtPending, c.mgmtMode = nil, 0
	}
	if cmd.ins == insSelect {
		return c.doSelect(cmd)
	}
	if !c.selected {
		return nil, swInsNotSupported
	}
	switch cmd.ins {
	case insGetVersion:
		return c.st.Version[:], swOK
	case insGetSerial:
		return binary.BigEndian.AppendUint32(nil, c.st.Serial), swOK
	case insVerify:
		return c.doVerify(cmd)
	case insChangeRef:
		return c.doChangeRef(cmd)
	case insResetRetry:
		return c.doResetRetry(cmd)
	case insAuthenticate:
		return c.doAuthenticate(cmd)
	case insGenerate:
		return c.doGenerate(cmd)
	case insGetData:
		return c.doGetData(cmd)
	case insPutData:
		return c.doPutData(cmd)
	case insGetMetadata:
		return c.doMetadata(cmd)
	case insAttest:
		return c.doAttest(cmd)
	case insSetMgmtKey:
		return c.doSetMgmtKey(cmd)
	case insSetPINRetries:
		return c.doSetRetries(cmd)
	case insReset:
		return c.doReset(cmd)
	case insImportKey:
		return c.doImport(cmd)
	}
	return nil, swInsNotSupported
}

func (c *Card) doSelect(cmd command) ([]byte, uint16) {
	if cmd.p1 != 0x04 || cmd.p2 != 0x00 {
		return nil, swIncorrectP1P2
	}
	if len(cmd.data) < 5 || !bytes.HasPrefix(aidPIV, cmd.data) {
		return nil, swFileNotFound
	}
	c.selected = true
	// Application Property Template (SP 800-73-4 Part 2 Table 3).
	apt := appendTLV(nil, 0x4f, aidPIV[5:])
	apt = appendTLV(apt, 0x79, tlvBytes(0x4f, aidPIV[:5]))
	return tlvBytes(0x61, apt), swOK
}

// retrySW is the status for a failed verification with n tries left.
func retrySW(n int) uint16 {
	if n > 15 {
		n = 15
	}
	return swVerifyFail | uint16(n)
}

// validPIN: 6 to 8 bytes, padded to 8 with 0xff (the YubiKey's rule).
func validPIN(p []byte) bool {
	if len(p) != 8 {
		return false
	}
	n := bytes.IndexByte(p, 0xff)
	if n == -1 {
		n = 8
	}
	if n < 6 {
		return false
	}
	for _, b := range p[n:] {
		if b != 0xff {
			return false
		}
	}
	return true
}

func (c *Card) doVerify(cmd command) ([]byte, uint16) {
	if cmd.p2 != keyRefPIN {
		return nil, swReferenceNotFound
	}
	switch cmd.p1 {
	case 0xff: // reset the verification status
		if len(cmd.data) != 0 {
			return nil, swWrongLength
		}
		c.pinVerified, c.pinFresh = false, false
		return nil, swOK
	case 0x00:
	default:
		return nil, swIncorrectP1P2
	}
	if len(cmd.data) == 0 { // status query
		if c.st.PINRetries == 0 {
			return nil, swAuthBlocked
		}
		if c.pinVerified {
			return nil, swOK
		}
		return nil, retrySW(c.st.PINRetries)
	}
	if len(cmd.data) != 8 {
		return nil, swWrongData
	}
	if c.st.PINRetries == 0 {
		return nil, swAuthBlocked
	}
	if subtle.ConstantTimeCompare(cmd.data, c.st.PIN) != 1 {
		c.st.PINRetries--
		c.dirty = true
		c.pinVerified, c.pinFresh = false, false
		return nil, retrySW(c.st.PINRetries)
	}
	if c.st.PINRetries != c.st.PINMax {
		c.st.PINRetries = c.st.PINMax
		c.dirty = true
	}
	c.pinVerified, c.pinFresh = true, true
	return nil, swOK
}

func (c *Card) doChangeRef(cmd command) ([]byte, uint16) {
	if cmd.p1 != 0 {
		return nil, swIncorrectP1P2
	}
	var retries *int
	var max int
	var cur *[]byte
	switch cmd.p2 {
	case keyRefPIN:
		cur, retries, max = &c.st.PIN, &c.st.PINRetries, c.st.PINMax
	case keyRefPUK:
		cur, retries, max = &c.st.PUK, &c.st.PUKRetries, c.st.PUKMax
	default:
		return nil, swReferenceNotFound
	}
	if len(cmd.data) != 16 || !validPIN(cmd.data[8:]) {
		return nil, swWrongData
	}
	if *retries == 0 {
		return nil, swAuthBlocked
	}
	if subtle.ConstantTimeCompare(cmd.data[:8], *cur) != 1 {
		*retries--
		c.dirty = true
		if cmd.p2 == keyRefPIN {
			c.pinVerified, c.pinFresh = false, false
		}
		return nil, retrySW(*retries)
	}
	*cur = bytes.Clone(cmd.data[8:])
	*retries = max
	c.dirty = true
	return nil, swOK
}

func (c *Card) doResetRetry(cmd command) ([]byte, uint16) {
	if cmd.p1 != 0 {
		return nil, swIncorrectP1P2
	}
	if cmd.p2 != keyRefPIN {
		return nil, swReferenceNotFound
	}
	if len(cmd.data) != 16 || !validPIN(cmd.data[8:]) {
		return nil, swWrongData
	}
	if c.st.PUKRetries == 0 {
		return nil, swAuthBlocked
	}
	if subtle.ConstantTimeCompare(cmd.data[:8], c.st.PUK) != 1 {
		c.st.PUKRetries--
		c.dirty = true
		return nil, retrySW(c.st.PUKRetries)
	}
	c.st.PIN = bytes.Clone(cmd.data[8:])
	c.st.PINRetries, c.st.PUKRetries = c.st.PINMax, c.st.PUKMax
	c.dirty = true
	return nil, swOK
}

// mgmtCipher is the block cipher of the management key.
func (c *Card) mgmtCipher() (cipher.Block, error) {
	if c.st.MgmtAlg == alg3DES {
		return des.NewTripleDESCipher(c.st.MgmtKey)
	}
	return aes.NewCipher(c.st.MgmtKey)
}

func (c *Card) random(n int) []byte {
	b := make([]byte, n)
	if _, err := io.ReadFull(c.rand, b); err != nil {
		panic("pivcard: entropy source failed: " + err.Error())
	}
	return b
}

func (c *Card) doAuthenticate(cmd command) ([]byte, uint16) {
	outer, err := parseTLVs(cmd.data)
	if err != nil || len(outer) != 1 || outer[0].tag != 0x7c {
		return nil, swWrongData
	}
	in, err := parseTLVs(outer[0].value)
	if err != nil {
		return nil, swWrongData
	}
	if cmd.p2 == keyRefMgmt {
		return c.authMgmt(cmd, in)
	}
	return c.useKey(cmd, in)
}

// authMgmt runs the management-key protocols of SP 800-73-4 Part 2 App. A.1:
// mutual authentication (witness, then challenge) and external
// authentication (challenge, then response).
func (c *Card) authMgmt(cmd command, in []tlv) ([]byte, uint16) {
	if cmd.p1 != c.st.MgmtAlg {
		return nil, swWrongData
	}
	blk, err := c.mgmtCipher()
	if err != nil {
		return nil, swWrongData
	}
	bs := blk.BlockSize()
	witness, hasW := find(in, 0x80)
	chal, hasC := find(in, 0x81)
	resp, hasR := find(in, 0x82)
	pending, mode := c.mgmtPending, c.mgmtMode
	c.mgmtPending, c.mgmtMode = nil, 0
	switch {
	case hasW && len(witness) == 0 && !hasC && !hasR: // step 1 of mutual: ask for a witness
		c.mgmtAuthed = false
		w := c.random(bs)
		enc := make([]byte, bs)
		blk.Encrypt(enc, w)
		c.mgmtPending, c.mgmtMode = w, 0x80
		return tlvBytes(0x7c, tlvBytes(0x80, enc)), swOK
	case hasW && len(witness) > 0: // step 2 of mutual: decrypted witness and our challenge
		if mode != 0x80 || len(witness) != bs || (hasC && len(chal) != bs) {
			return nil, swWrongData
		}
		if subtle.ConstantTimeCompare(witness, pending) != 1 {
			return nil, swSecurityStatus
		}
		c.mgmtAuthed = true
		if !hasC {
			return nil, swOK
		}
		enc := make([]byte, bs)
		blk.Encrypt(enc, chal)
		return tlvBytes(0x7c, tlvBytes(0x82, enc)), swOK
	case hasC && len(chal) == 0 && !hasW: // external: ask for a challenge
		c.mgmtAuthed = false
		ch := c.random(bs)
		c.mgmtPending, c.mgmtMode = ch, 0x81
		return tlvBytes(0x7c, tlvBytes(0x81, ch)), swOK
	case hasR && len(resp) > 0 && !hasW: // external: the encrypted challenge
		if mode != 0x81 || len(resp) != bs {
			return nil, swWrongData
		}
		want := make([]byte, bs)
		blk.Encrypt(want, pending)
		if subtle.ConstantTimeCompare(resp, want) != 1 {
			return nil, swSecurityStatus
		}
		c.mgmtAuthed = true
		return nil, swOK
	}
	return nil, swWrongData
}

func (c *Card) loadSlot(slot byte) (*slotKey, crypto.PrivateKey, bool) {
	sk := c.st.Keys[slotName(slot)]
	if sk == nil {
		return nil, nil, false
	}
	k, err := parseKey(sk.PKCS8)
	if err != nil {
		return nil, nil, false
	}
	return sk, k, true
}

// authorize applies a key's PIN and touch policies.
func (c *Card) authorize(slot byte, sk *slotKey) uint16 {
	switch sk.PINPolicy {
	case pinPolicyOnce:
		if !c.pinVerified {
			return swSecurityStatus
		}
	case pinPolicyAlways:
		if !c.pinVerified || !c.pinFresh {
			return swSecurityStatus
		}
		c.pinFresh = false
	}
	switch sk.TouchPolicy {
	case touchPolicyAlways, touchPolicyCached:
		if sk.TouchPolicy == touchPolicyCached && c.touchCached[slot] {
			break
		}
		if c.touch != nil && !c.touch(slot) {
			return swConditionsNotMet
		}
		if c.touchCached == nil {
			c.touchCached = map[byte]bool{}
		}
		c.touchCached[slot] = true
	}
	return swOK
}

// useKey signs, decrypts or agrees a key with the key in a slot.
func (c *Card) useKey(cmd command, in []tlv) ([]byte, uint16) {
	if !isKeySlot(cmd.p2) {
		return nil, swIncorrectP1P2
	}
	if !isAsymmetric(cmd.p1) {
		return nil, swIncorrectP1P2
	}
	if v, ok := find(in, 0x82); !ok || len(v) != 0 {
		return nil, swWrongData
	}
	data, isSign := find(in, 0x81)
	peer, isECDH := find(in, 0x85)
	if isSign == isECDH {
		return nil, swWrongData
	}
	sk, key, ok := c.loadSlot(cmd.p2)
	if !ok || sk.Alg != cmd.p1 {
		return nil, swWrongData
	}
	var out []byte
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if !isSign {
			return nil, swWrongData
		}
		if sw := c.authorize(cmd.p2, sk); sw != swOK {
			return nil, sw
		}
		if out, ok = rsaRaw(k, data); !ok {
			return nil, swWrongData
		}
	case *ecdsa.PrivateKey:
		if isSign {
			if len(data) == 0 || len(data) > (k.Curve.Params().BitSize+7)/8 {
				return nil, swWrongData
			}
			if sw := c.authorize(cmd.p2, sk); sw != swOK {
				return nil, sw
			}
			sig, err := ecdsa.SignASN1(c.rand, k, data)
			if err != nil {
				return nil, swWrongData
			}
			out = sig
			break
		}
		priv, err := k.ECDH()
		if err != nil {
			return nil, swWrongData
		}
		pub, err := priv.Curve().NewPublicKey(peer)
		if err != nil {
			return nil, swWrongData
		}
		if sw := c.authorize(cmd.p2, sk); sw != swOK {
			return nil, sw
		}
		if out, err = priv.ECDH(pub); err != nil {
			return nil, swWrongData
		}
	case ed25519.PrivateKey:
		if !isSign {
			return nil, swWrongData
		}
		if sw := c.authorize(cmd.p2, sk); sw != swOK {
			return nil, sw
		}
		out = ed25519.Sign(k, data)
	case *ecdh.PrivateKey:
		if isSign {
			return nil, swWrongData
		}
		pub, err := k.Curve().NewPublicKey(peer)
		if err != nil {
			return nil, swWrongData
		}
		if sw := c.authorize(cmd.p2, sk); sw != swOK {
			return nil, sw
		}
		if out, err = k.ECDH(pub); err != nil {
			return nil, swWrongData
		}
	default:
		return nil, swWrongData
	}
	return tlvBytes(0x7c, tlvBytes(0x82, out)), swOK
}

// parsePolicies reads the optional AA (PIN) and AB (touch) policy tags.
func parsePolicies(in []tlv, slot byte) (pp, tp byte, ok bool) {
	pp, tp = pinPolicyDefault, touchPolicyDefault
	if v, has := find(in, 0xaa); has {
		if len(v) != 1 || v[0] > pinPolicyAlways {
			return 0, 0, false
		}
		pp = v[0]
	}
	if v, has := find(in, 0xab); has {
		if len(v) != 1 || v[0] > touchPolicyCached {
			return 0, 0, false
		}
		tp = v[0]
	}
	if pp == pinPolicyDefault {
		pp = defaultPINPolicy(slot)
	}
	if tp == touchPolicyDefault {
		tp = touchPolicyNever
	}
	return pp, tp, true
}

func (c *Card) doGenerate(cmd command) ([]byte, uint16) {
	if cmd.p1 != 0 || !isKeySlot(cmd.p2) {
		return nil, swIncorrectP1P2
	}
	if !c.mgmtAuthed {
		return nil, swSecurityStatus
	}
	outer, err := parseTLVs(cmd.data)
	if err != nil || len(outer) != 1 || outer[0].tag != 0xac {
		return nil, swWrongData
	}
	in, err := parseTLVs(outer[0].value)
	if err != nil {
		return nil, swWrongData
	}
	a, ok := find(in, 0x80)
	if !ok || len(a) != 1 || !isAsymmetric(a[0]) {
		return nil, swWrongData
	}
	pp, tp, ok := parsePolicies(in, cmd.p2)
	if !ok {
		return nil, swWrongData
	}
	key, err := generateKey(c.rand, a[0])
	if err != nil {
		return nil, swWrongData
	}
	der, err := marshalKey(key)
	if err != nil {
		return nil, swWrongData
	}
	c.st.Keys[slotName(cmd.p2)] = &slotKey{Alg: a[0], PINPolicy: pp, TouchPolicy: tp, Origin: originGenerated, PKCS8: der}
	c.dirty = true
	return tlvBytes(0x7f49, publicTLV(key)), swOK
}

func (c *Card) doImport(cmd command) ([]byte, uint16) {
	if _, ok := slotObject(cmd.p2); !ok {
		return nil, swIncorrectP1P2
	}
	if !isAsymmetric(cmd.p1) {
		return nil, swIncorrectP1P2
	}
	if !c.mgmtAuthed {
		return nil, swSecurityStatus
	}
	in, err := parseTLVs(cmd.data)
	if err != nil {
		return nil, swWrongData
	}
	pp, tp, ok := parsePolicies(in, cmd.p2)
	if !ok {
		return nil, swWrongData
	}
	var key crypto.PrivateKey
	switch cmd.p1 {
	case algECCP256, algECCP384:
		d, ok := find(in, 0x06)
		if !ok {
			return nil, swWrongData
		}
		curve := elliptic.P256()
		if cmd.p1 == algECCP384 {
			curve = elliptic.P384()
		}
		k, err := ecdsa.ParseRawPrivateKey(curve, d)
		if err != nil {
			return nil, swWrongData
		}
		key = k
	case algEd25519:
		seed, ok := find(in, 0x07)
		if !ok || len(seed) != ed25519.SeedSize {
			return nil, swWrongData
		}
		key = ed25519.NewKeyFromSeed(seed)
	case algX25519:
		d, ok := find(in, 0x08)
		if !ok {
			return nil, swWrongData
		}
		k, err := ecdh.X25519().NewPrivateKey(d)
		if err != nil {
			return nil, swWrongData
		}
		key = k
	default: // RSA from its CRT parameters
		p, ok1 := find(in, 0x01)
		q, ok2 := find(in, 0x02)
		if !ok1 || !ok2 {
			return nil, swWrongData
		}
		k, ok := rsaFromPrimes(new(big.Int).SetBytes(p), new(big.Int).SetBytes(q))
		if !ok || k.N.BitLen() != rsaBits(cmd.p1) {
			return nil, swWrongData
		}
		key = k
	}
	der, err := marshalKey(key)
	if err != nil {
		return nil, swWrongData
	}
	c.st.Keys[slotName(cmd.p2)] = &slotKey{Alg: cmd.p1, PINPolicy: pp, TouchPolicy: tp, Origin: originImported, PKCS8: der}
	c.dirty = true
	return nil, swOK
}

func rsaFromPrimes(p, q *big.Int) (*rsa.PrivateKey, bool) {
	if p.Sign() <= 0 || q.Sign() <= 0 {
		return nil, false
	}
	one := big.NewInt(1)
	e := big.NewInt(65537)
	phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
	d := new(big.Int).ModInverse(e, phi)
	if d == nil {
		return nil, false
	}
	k := &rsa.PrivateKey{
		PublicKey: rsa.PublicKey{N: new(big.Int).Mul(p, q), E: 65537},
		D:         d,
		Primes:    []*big.Int{p, q},
	}
	if k.Validate() != nil {
		return nil, false
	}
	k.Precompute()
	return k, true
}

// objectTag reads the tag list (5C) of GET DATA and PUT DATA.
func objectTag(v []byte) (uint32, bool) {
	switch len(v) {
	case 1:
		return uint32(v[0]), v[0] == 0x7e
	case 2:
		return uint32(v[0])<<8 | uint32(v[1]), v[0] == 0x7f && v[1] == 0x61
	case 3:
		t := uint32(v[0])<<16 | uint32(v[1])<<8 | uint32(v[2])
		return t, v[0] == 0x5f && (v[1] == 0xc1 || v[1] == 0xff)
	}
	return 0, false
}

func tagName(t uint32) string {
	return hex.EncodeToString([]byte{byte(t >> 16), byte(t >> 8), byte(t)})
}

// pinProtected objects are read only after the PIN (SP 800-73-4 Part 1 Table 2).
func pinProtected(t uint32) bool {
	switch t {
	case 0x5fc103, 0x5fc108, 0x5fc109, 0x5fc121:
		return true
	}
	return false
}

func (c *Card) doGetData(cmd command) ([]byte, uint16) {
	if cmd.p1 != 0x3f || cmd.p2 != 0xff {
		return nil, swIncorrectP1P2
	}
	in, err := parseTLVs(cmd.data)
	if err != nil || len(in) != 1 || in[0].tag != 0x5c {
		return nil, swWrongData
	}
	t, ok := objectTag(in[0].value)
	if !ok {
		return nil, swWrongData
	}
	if t == 0x7e {
		return bytes.Clone(discovery), swOK
	}
	if pinProtected(t) && !c.pinVerified {
		return nil, swSecurityStatus
	}
	v, ok := c.st.Objects[tagName(t)]
	if !ok {
		return nil, swFileNotFound
	}
	return tlvBytes(0x53, v), swOK
}

func (c *Card) doPutData(cmd command) ([]byte, uint16) {
	if cmd.p1 != 0x3f || cmd.p2 != 0xff {
		return nil, swIncorrectP1P2
	}
	if !c.mgmtAuthed {
		return nil, swSecurityStatus
	}
	in, err := parseTLVs(cmd.data)
	if err != nil || len(in) != 2 || in[0].tag != 0x5c || in[1].tag != 0x53 {
		return nil, swWrongData
	}
	t, ok := objectTag(in[0].value)
	if !ok || t == 0x7e || t == 0x7f61 {
		return nil, swWrongData
	}
	if len(in[1].value) > maxObjectSize {
		return nil, swNotEnoughMemory
	}
	if len(in[1].value) == 0 {
		delete(c.st.Objects, tagName(t))
	} else {
		c.st.Objects[tagName(t)] = bytes.Clone(in[1].value)
	}
	c.dirty = true
	return nil, swOK
}

func (c *Card) doMetadata(cmd command) ([]byte, uint16) {
	if cmd.p1 != 0 {
		return nil, swIncorrectP1P2
	}
	b2i := func(b bool) byte {
		if b {
			return 1
		}
		return 0
	}
	switch slot := cmd.p2; {
	case slot == keyRefPIN || slot == keyRefPUK:
		cur, def, max, left := c.st.PIN, defaultPIN, c.st.PINMax, c.st.PINRetries
		if slot == keyRefPUK {
			cur, def, max, left = c.st.PUK, defaultPUK, c.st.PUKMax, c.st.PUKRetries
		}
		b := appendTLV(nil, 0x01, []byte{0xff})
		b = appendTLV(b, 0x05, []byte{b2i(bytes.Equal(cur, def))})
		return appendTLV(b, 0x06, []byte{byte(max), byte(left)}), swOK
	case slot == keyRefMgmt:
		b := appendTLV(nil, 0x01, []byte{c.st.MgmtAlg})
		b = appendTLV(b, 0x02, []byte{0x00, c.st.MgmtTouch})
		return appendTLV(b, 0x05, []byte{b2i(c.st.MgmtAlg == alg3DES && bytes.Equal(c.st.MgmtKey, defaultMgmtKey))}), swOK
	default:
		if _, ok := slotObject(slot); !ok {
			return nil, swIncorrectP1P2
		}
		sk, key, ok := c.loadSlot(slot)
		if !ok {
			return nil, swReferenceNotFound
		}
		b := appendTLV(nil, 0x01, []byte{sk.Alg})
		b = appendTLV(b, 0x02, []byte{sk.PINPolicy, sk.TouchPolicy})
		b = appendTLV(b, 0x03, []byte{sk.Origin})
		return appendTLV(b, 0x04, publicTLV(key)), swOK
	}
}

func (c *Card) doSetMgmtKey(cmd command) ([]byte, uint16) {
	if cmd.p1 != 0xff || (cmd.p2 != 0xff && cmd.p2 != 0xfe) {
		return nil, swIncorrectP1P2
	}
	if !c.mgmtAuthed {
		return nil, swSecurityStatus
	}
	d := cmd.data
	if len(d) < 3 || d[1] != keyRefMgmt || int(d[2]) != len(d)-3 {
		return nil, swWrongData
	}
	want := map[byte]int{alg3DES: 24, algAES128: 16, algAES192: 24, algAES256: 32}[d[0]]
	if want == 0 || want != len(d)-3 {
		return nil, swWrongData
	}
	c.st.MgmtAlg, c.st.MgmtKey = d[0], bytes.Clone(d[3:])
	c.st.MgmtTouch = touchPolicyNever
	if cmd.p2 == 0xfe {
		c.st.MgmtTouch = touchPolicyAlways
	}
	c.dirty = true
	return nil, swOK
}

func (c *Card) doSetRetries(cmd command) ([]byte, uint16) {
	if !c.mgmtAuthed || !c.pinVerified {
		return nil, swSecurityStatus
	}
	if cmd.p1 == 0 || cmd.p2 == 0 {
		return nil, swIncorrectP1P2
	}
	// As on the YubiKey, new counters come with the default PIN and PUK.
	c.st.PIN, c.st.PUK = bytes.Clone(defaultPIN), bytes.Clone(defaultPUK)
	c.st.PINMax, c.st.PINRetries = int(cmd.p1), int(cmd.p1)
	c.st.PUKMax, c.st.PUKRetries = int(cmd.p2), int(cmd.p2)
	c.pinVerified, c.pinFresh = false, false
	c.dirty = true
	return nil, swOK
}

func (c *Card) doReset(cmd command) ([]byte, uint16) {
	if cmd.p1 != 0 || cmd.p2 != 0 {
		return nil, swIncorrectP1P2
	}
	if c.st.PINRetries != 0 || c.st.PUKRetries != 0 {
		return nil, swConditionsNotMet
	}
	c.st.resetApplet()
	c.deauth()
	c.dirty = true
	return nil, swOK
}
