package hsm

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"strconv"
	"unsafe"

	"github.com/egate-bank/egate/devices/p11"
	"github.com/miekg/pkcs11"
)

// LabelSeedWrap is the standard seed-wrap key (KeySeedWrap): the only key
// that wraps OTP seeds. authsvc/oath stores every seed as WrapSeed's blob
// and computes its HMACs with HMACWrapped(ctx, LabelSeedWrap, …).
const LabelSeedWrap = "egate-otp-seed-wrap"

// seedKeyAttrs are the attributes of every key unwrapped by a seed-wrap
// key; the seed-wrap key's CKA_UNWRAP_TEMPLATE holds them, so the HSM
// refuses (CKR_TEMPLATE_INCONSISTENT) an unwrap that asks for anything
// else: a seed comes out of its blob only as a sensitive, never extractable
// HMAC key that signs and does nothing else, and whose attributes cannot be
// changed afterwards (CKA_MODIFIABLE false: no C_SetAttributeValue turning
// on CKA_DERIVE to derive an extractable copy).
func seedKeyAttrs() []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, false),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, false),
	}
}

// unwrappedSeedTemplate is the template HMACWrapped unwraps with: a session
// object carrying exactly the unwrap template's attributes. Any unwrapping
// key accepts it, so seeds still wrapped by an older plain AES key are
// unwrapped the same way.
func unwrappedSeedTemplate() []*pkcs11.Attribute {
	return append([]*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
	}, seedKeyAttrs()...)
}

// seedWrapKeyAttrs are the seed-wrap key's own attributes besides those
// every secret key gets (token, private, sensitive, never extractable,
// label, id): wrap and unwrap with RFC 5649 key wrap only
// (CKA_ALLOWED_MECHANISMS), no encrypt or decrypt (so no C_Decrypt of a
// blob: AES key wrap is AES-ECB decryption that anyone could finish in
// software), the unwrap template above, and not modifiable (so neither the
// usages nor the template can be changed once the key exists). release
// frees what the template points to, after the key is generated.
func seedWrapKeyAttrs() (attrs []*pkcs11.Attribute, release func(), err error) {
	tmpl, release, err := attrArray(pkcs11.CKA_UNWRAP_TEMPLATE, seedKeyAttrs())
	if err != nil {
		return nil, nil, err
	}
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, true),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, false),
		pkcs11.NewAttribute(pkcs11.CKA_ALLOWED_MECHANISMS, ulongs(pkcs11.CKM_AES_KEY_WRAP_PAD)),
		pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, false),
		tmpl,
	}, release, nil
}

// ckULong is the size of CK_ULONG, C's unsigned long: 8 bytes on the
// LP64 systems egate runs on (Linux, macOS).
const ckULong = 8

// ulongs encodes a CK_ULONG array (CKA_ALLOWED_MECHANISMS) in host order.
func ulongs(vs ...uint) []byte {
	b := make([]byte, 0, ckULong*len(vs))
	for _, v := range vs {
		b = binary.NativeEndian.AppendUint64(b, uint64(v))
	}
	return b
}

// attrArray encodes an attribute-array attribute such as
// CKA_UNWRAP_TEMPLATE: a C array of CK_ATTRIBUTE {type, pValue,
// ulValueLen}. miekg/pkcs11 copies an Attribute's Value into C memory but
// knows no nested attributes, so the inner values sit in one Go buffer,
// pinned (runtime.Pinner) so that the module may read it during the call;
// release unpins it and must be called after the call returns.
func attrArray(typ uint, attrs []*pkcs11.Attribute) (*pkcs11.Attribute, func(), error) {
	if strconv.IntSize != 64 || unsafe.Sizeof(uintptr(0)) != ckULong {
		return nil, nil, fmt.Errorf("%w: attribute templates are built for 64-bit systems only", ErrBadConfig)
	}
	n := 0
	for _, a := range attrs {
		n += len(a.Value)
	}
	vals := make([]byte, n+1) // never empty, so &vals[0] exists
	var pin runtime.Pinner
	pin.Pin(&vals[0])
	arr := make([]byte, 0, 3*ckULong*len(attrs))
	off := 0
	for _, a := range attrs {
		copy(vals[off:], a.Value)
		p := uintptr(0)
		if len(a.Value) > 0 {
			p = uintptr(unsafe.Pointer(&vals[off]))
		}
		arr = binary.NativeEndian.AppendUint64(arr, uint64(a.Type))
		arr = binary.NativeEndian.AppendUint64(arr, uint64(p))
		arr = binary.NativeEndian.AppendUint64(arr, uint64(len(a.Value)))
		off += len(a.Value)
	}
	return &pkcs11.Attribute{Type: typ, Value: arr}, func() { pin.Unpin(); runtime.KeepAlive(vals) }, nil
}

// attrArrayTypes decodes the attribute types of an attribute array read
// back with C_GetAttributeValue (miekg/pkcs11 asks for the array only, so
// the inner values are not filled in).
func attrArrayTypes(b []byte) []uint {
	var out []uint
	for len(b) >= 3*ckULong {
		out = append(out, uint(binary.NativeEndian.Uint64(b)))
		b = b[3*ckULong:]
	}
	return out
}

// isSeedWrapKey tells a seed-wrap key from a plain AES key by its
// attributes: wrap and unwrap but no encrypt or decrypt, not modifiable,
// and an unwrap template that names every attribute of seedKeyAttrs.
// (Only the template's attribute types can be read back here; its values
// were chosen by generate and cannot have changed, the key being
// unmodifiable.)
func (s *Service) isSeedWrapKey(sh pkcs11.SessionHandle, h pkcs11.ObjectHandle) bool {
	a, err := s.p.GetAttributeValue(sh, h, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, nil),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, nil),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, nil),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, nil),
		pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, nil),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP_TEMPLATE, nil),
	})
	if err != nil {
		return false
	}
	isTrue := func(v []byte) bool { return len(v) == 1 && v[0] != 0 }
	if isTrue(a[0].Value) || isTrue(a[1].Value) || !isTrue(a[2].Value) || !isTrue(a[3].Value) || isTrue(a[4].Value) {
		return false
	}
	have := map[uint]bool{}
	for _, t := range attrArrayTypes(a[5].Value) {
		have[t] = true
	}
	for _, want := range seedKeyAttrs() {
		if !have[want.Type] {
			return false
		}
	}
	return true
}

// WrapSeed wraps an OTP seed under the standard seed-wrap key
// (LabelSeedWrap) for storage: WrapSecret(ctx, LabelSeedWrap, seed). The
// PSKC importer calls it (or WrapSecret with otp.wrap-key-label) with each
// seed it decrypted, and stores only the result.
func (s *Service) WrapSeed(ctx context.Context, seed []byte) ([]byte, error) {
	return s.WrapSecret(ctx, LabelSeedWrap, seed)
}

// RewrapSecret moves a secret wrapped by the key fromRef (an older plain
// AES key such as egate-secrets-wrap) under the seed-wrap key toRef
// without it leaving the HSM: C_UnwrapKey into a session key that is
// sensitive (its value is never readable) and extractable only so that
// C_WrapKey can wrap it under toRef at once; the session key is destroyed
// before RewrapSecret returns. A secret already under a seed-wrap key
// cannot be moved (its unwrap template forbids an extractable copy):
// rewrapping is one-way, and such a move fails with ErrOneWay.
func (s *Service) RewrapSecret(ctx context.Context, fromRef, toRef string, wrapped []byte) ([]byte, error) {
	if len(wrapped) < 2 || wrapped[0] != wrapV1KeyWrapPad {
		return nil, fmt.Errorf("%w: rewrapping a secret wrapped by %q: not a wrapped secret of a known format", ErrSealed, fromRef)
	}
	m := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP_PAD, nil)}
	var out []byte
	err := s.do(ctx, func(sh pkcs11.SessionHandle) error {
		from, err := s.refHandle(sh, fromRef, pkcs11.CKO_SECRET_KEY, "key")
		if err != nil {
			return err
		}
		to, err := s.seedWrapKey(sh, toRef)
		if err != nil {
			return err
		}
		key, err := s.p.UnwrapKey(sh, m, from, wrapped[1:], []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
			pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
		})
		switch {
		case p11.IsRV(err, pkcs11.CKR_TEMPLATE_INCONSISTENT):
			return fmt.Errorf("%w: %q is a seed-wrap key; what it wraps stays under it", ErrOneWay, fromRef)
		case p11.IsRV(err, pkcs11.CKR_WRAPPED_KEY_INVALID) || p11.IsRV(err, pkcs11.CKR_WRAPPED_KEY_LEN_RANGE) || p11.IsRV(err, pkcs11.CKR_GENERAL_ERROR):
			return fmt.Errorf("%w: the secret was not wrapped by %q or was altered", ErrSealed, fromRef)
		case err != nil:
			return err
		}
		defer s.p.DestroyObject(sh, key)
		out, err = s.p.WrapKey(sh, m, to, key)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("rewrapping a secret from %q to %q: %w", fromRef, toRef, err)
	}
	return append([]byte{wrapV1KeyWrapPad}, out...), nil
}

// seedWrapKey finds the key labelled label and checks that it is a
// seed-wrap key: WrapSecret never lets a seed out under a key that could
// decrypt it or unwrap it as an extractable key.
func (s *Service) seedWrapKey(sh pkcs11.SessionHandle, label string) (pkcs11.ObjectHandle, error) {
	h, err := s.refHandle(sh, label, pkcs11.CKO_SECRET_KEY, "key")
	if err != nil {
		return 0, err
	}
	if !s.isSeedWrapKey(sh, h) {
		return 0, fmt.Errorf("%w: key %q on token %q is not a seed-wrap key (it allows encrypt/decrypt or has no unwrap template): seeds are wrapped only under a %s key such as %s (egate admin hsm init makes it)", ErrKeyType, label, s.token, KeySeedWrap, LabelSeedWrap)
	}
	return h, nil
}

// GenerateTrustedSeedWrapKey generates, on a session of the token's
// security officer (c is the module, package p11), the trusted seed-wrap
// key TrustedSeedWrapKeyAttributes describes, under label, with
// C_GenerateKey (CKM_AES_KEY_GEN). egate never logs in as the SO itself:
// this is for the key ceremony's tools and for tests.
func GenerateTrustedSeedWrapKey(c p11.Ctx, sh pkcs11.SessionHandle, label string, private bool) error {
	attrs, release, err := TrustedSeedWrapKeyAttributes(label, private)
	if err != nil {
		return err
	}
	defer release()
	_, err = c.GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, attrs)
	return err
}
