// Package hsm is egate's key service: the bank's server keys (passport
// signing, the bank CA, the wrapping key for secrets at rest, the audit
// checkpoint key, HMAC and ATM PIN keys, the transaction-encryption key) held in an HSM and used through any
// PKCS#11 module, through github.com/ThalesGroup/crypto11. SoftHSM2 plays
// the HSM in development and CI.
//
// Keys are generated inside the HSM (CKA_TOKEN, CKA_SENSITIVE true,
// CKA_EXTRACTABLE false), found again by label, named by RFC 7512 pkcs11:
// URIs (package pkcs11uri) and handed out in the standard library's shapes:
// a signing key is a crypto.Signer, the transaction-encryption key
// (KeyRSA2048Decrypt, decrypt.go) a crypto.Decrypter. Secrets at rest are sealed with AES-GCM
// computed in the HSM; OTP seeds are kept wrapped by an HSM AES key and are
// only ever unwrapped into a sensitive, non-extractable, sign-only session
// key whose HMAC the HSM computes.
//
// # Live seeds
//
// HMACWrapped keeps each seed it unwrapped as a session object of the
// pooled session that unwrapped it, for the next call with the same blob
// (hsm.live-seeds per session, default DefaultLiveSeeds, least recently
// used evicted and destroyed; -1 turns it off). The cache maps a SHA-256 of
// the wrap-key reference, its object handle and the blob to the object
// handle: the seed itself is never in Go memory, and the object is what
// the seed-wrap key's unwrap template made it. A session closed, lost or
// flushed when the module is reopened takes its seeds with it (the module
// destroys session objects with their session) and they are unwrapped
// again on the next call; an object found stale is unwrapped again too
// (TestLiveSeedsSessionLoss, TestLiveSeedsLRU, TestLiveSeedsSameMACs).
// A verification of a seed seen recently is then HMACs only
// (BenchmarkHMACWrapped). HMACWrappedUntil computes the MACs in order and
// stops after the one its caller accepts: authsvc/oath puts the expected
// counter first, so a right code costs one HMAC, not the window's.
//
// # Keys by name, and the seams
//
// Every method that takes a key (Signer, ResolveKey, Seal, Unseal, HMAC,
// WrapSecret, WrapSeed's key, HMACWrapped, RewrapSecret, ImportSecret,
// DecryptTransport, TransportPublicKey) takes a key reference: a plain
// label, as egate's config has always named keys, or an RFC 7512 pkcs11:
// URI whose object= is the label and whose token=, id= and type=, when
// present, must match the key (TestKeysByURI). "egate-hmac" and
// "pkcs11:token=egate;object=egate-hmac;type=secret-key" name one key;
// Key.URI is the full form.
//
// Callers declare the narrow interface they use next to their code
// (authsvc/gridcard.Sealer, authsvc/sms.MAC, authsvc/oath's HSM), which a
// Service, a simulator or a fake satisfies. Below the Service, its own
// PKCS#11 calls go through package p11's Ctx interface (the module
// loading, return values and token lookup it shares with
// devices/pkcs11token); OpenWrapped interposes on them, and
// p11test.Faulty makes any call fail with a chosen return value
// (TestInjectedFaultsRecover).
//
// # Seeds stay in the HSM
//
// OTP seeds are wrapped by a key of their own, the seed-wrap key
// (KeySeedWrap, standard label LabelSeedWrap "egate-otp-seed-wrap"), and
// by no other: WrapSecret refuses any other key. The seed-wrap key is
// sensitive, never extractable and not modifiable; it wraps and unwraps
// (CKA_WRAP, CKA_UNWRAP) with RFC 5649 key wrap only (CKA_ALLOWED_MECHANISMS)
// and cannot encrypt or decrypt, so nobody can C_Decrypt a stored blob with
// it (AES key wrap is AES decryption plus XORs anyone can finish); its
// CKA_UNWRAP_TEMPLATE makes every key it unwraps a sensitive, never
// extractable, unmodifiable generic secret that may sign (HMAC) and do
// nothing else, so nobody holding the user PIN and a blob can unwrap a seed
// as an extractable key, or loosen it afterwards. Sealing (Seal, Unseal:
// grid cards) uses egate-secrets-wrap, a plain aes-256 key, which never
// wraps a seed.
//
// A seed enters the HSM once, at import: WrapSecret (WrapSeed) creates it
// as a sensitive session object (CKA_EXTRACTABLE true only because
// C_WrapKey needs it), wraps it with C_WrapKey and destroys it. Seeds
// wrapped before the seed-wrap key existed (under egate-secrets-wrap) are
// moved inside the HSM by RewrapSecret: unwrapped by the old key into a
// sensitive session key, wrapped at once by the seed-wrap key, destroyed.
// The move is one-way: the seed-wrap key's template refuses the extractable
// copy a move needs.
//
// What SoftHSM2 2.6.1 enforces (TestSeedCannotLeaveTheHSM plays the
// attacker with raw PKCS#11 calls): C_UnwrapKey whose template disagrees
// with CKA_UNWRAP_TEMPLATE or omits one of its attributes fails with
// CKR_TEMPLATE_INCONSISTENT; C_DecryptInit with a key without CKA_DECRYPT
// fails with CKR_KEY_FUNCTION_NOT_PERMITTED; a mechanism outside
// CKA_ALLOWED_MECHANISMS fails; C_SetAttributeValue on an object with
// CKA_MODIFIABLE false fails with CKR_ACTION_PROHIBITED, and C_CopyObject
// may not change usages; CKA_VALUE_LEN cannot be given to C_UnwrapKey (no
// unwrapping a truncated seed). CKA_WRAP_WITH_TRUSTED is enforced by
// C_WrapKey, but CKA_TRUSTED can be set only by the security officer, and
// an unwrapped seed is never extractable anyway, so egate does not use
// them. miekg/pkcs11 has no attribute arrays: attrArray builds
// CKA_UNWRAP_TEMPLATE by hand, and only the attribute types of a template
// can be read back, so a found key is taken as a seed-wrap key when it has
// the usages above and a template naming every attribute egate puts there.
// An attacker with the PIN and a blob can still have the HSM compute HMACs
// (OTP codes) with it; only the seed itself is out of reach. Blobs made
// under egate-secrets-wrap before the move (in database backups, say) stay
// readable by a PIN holder for as long as that key exists: it still
// decrypts and unwraps without a template. Retiring it needs grid cards
// resealed under another sealing key first; egate does not do that yet.
//
// # Two paths to one module
//
// Through crypto11 (a crypto11.Context per Service):
//   - opening: crypto11.Configure loads the library, calls C_Initialize (its
//     module registry counts users per path, and the last Context.Close
//     calls C_Finalize), finds the token by label and logs in on its
//     long-lived session. Its errors are mapped to ErrModuleNotFound,
//     ErrTokenNotFound and *pin.Error (package pin) by the PKCS#11 return value, or, for
//     crypto11's untyped errors, by loading the module briefly on its own
//     to see whether it loads and which tokens it has;
//   - key generation: GenerateECDSAKeyPairWithAttributes,
//     GenerateRSAKeyPairWithAttributes and GenerateSecretKeyWithAttributes
//     with explicit templates (token, private, sensitive, never extractable,
//     label, a random 16-byte CKA_ID shared by a pair's halves, and only the
//     usages egate needs: sign/verify, encrypt/decrypt/wrap/unwrap for AES);
//   - signing: Signer wraps the crypto.Signer that crypto11's FindKeyPair
//     returns for the key's id and label (ECDSA, RSA PKCS#1 v1.5 and PSS;
//     egate turns rsa.PSSSaltLengthAuto, which crypto11 refuses, into the
//     explicit largest salt).
//
// Through github.com/miekg/pkcs11 (the library crypto11 stands on), on a
// second handle to the same library that never calls C_Finalize while
// crypto11 holds the module (C_Initialize through it answers
// CKR_CRYPTOKI_ALREADY_INITIALIZED, which is success):
//   - finding and describing keys (Keys, FindKey, ResolveKey, the "find" of
//     EnsureKey) by attribute read-back: egate lists every private and
//     secret key on the token, also keys of types crypto11 does not handle
//     (its FindAllKeyPairs fails on the first one, and needs each pair's
//     public half), and tells P-256 from other curves and 2048-bit RSA from
//     other sizes by CKA_EC_PARAMS, CKA_MODULUS and CKA_VALUE_LEN;
//   - WrapSecret, RewrapSecret and HMACWrapped: C_CreateObject, C_WrapKey
//     and C_UnwrapKey are not in crypto11;
//   - Seal and Unseal (AES-GCM): crypto11's AEAD computes the same
//     0x01 ‖ iv ‖ ct ‖ tag format on SoftHSM2 (with Config.GCMIVLength 12
//     and the IV supplied by egate, UseGCMIVFromHSM off;
//     TestCrypto11GCMMatchesSealFormat), but its Seal panics on any module
//     error and both Seal and Open flatten the PKCS#11 return value into a
//     string, so egate could not tell a lost session (recover, retry) from
//     a failed tag check (ErrSealed);
//   - HMAC with a token key: crypto11's NewHMAC gives the same MAC
//     (TestCrypto11HMACMatchesTokenHMAC), but when C_SignUpdate fails its
//     Sum panics before it returns the session to crypto11's pool, and a
//     Context whose pool lacks a session blocks forever in Close, which the
//     recovery below depends on.
//
// # Concurrency model
//
// A Service is safe for use by any number of goroutines. PKCS#11 sessions
// must not be used by two threads at once; each path lends one session to
// one operation at a time.
//
// crypto11 path: crypto11's own pool holds up to Config.Pool sessions
// (crypto11.Config.MaxSessions is Config.Pool+1: it keeps one more,
// long-lived, for the login). egate admits at most Config.Pool crypto11
// operations at once (a semaphore that honours the caller's context), so
// crypto11 never waits for a session of its own. Each operation holds the
// read side of an RWMutex over the current crypto11 "generation" (the
// Context and the key pairs found in it).
//
// miekg/pkcs11 path: the Service owns a second pool of at most Config.Pool
// sessions (Service.do): an operation takes a session, runs its C_* calls
// and gives it back; callers wait for a free session or their context.
// A Service thus holds at most 2×Config.Pool+1 sessions on the token.
//
// Logins: PKCS#11 keeps the login per process and token, and drops it when
// the process's last session on the token closes. crypto11's long-lived
// session holds it for both paths. egate logs in only through
// crypto11.Configure, under one mutex, never in parallel. The PIN is read
// from the pin-source (package pinsource) for that one call, passed to
// crypto11 in a string that shares the PIN's bytes, and wiped when
// Configure returns (crypto11 reads Config.Pin only inside Configure); it
// is never kept, logged or put in an error. A refused PIN is never retried:
// after CKR_PIN_INCORRECT or CKR_PIN_LOCKED the Service refuses every later
// login without calling the module, so egate never spends the token's retry
// counter on its own.
//
// # Recovery after a lost session
//
// When a crypto11 operation fails with a return value that means the
// session or its login is gone (CKR_SESSION_HANDLE_INVALID,
// CKR_SESSION_CLOSED, CKR_DEVICE_REMOVED, CKR_USER_NOT_LOGGED_IN,
// CKR_TOKEN_NOT_PRESENT, …; and CKR_OBJECT_HANDLE_INVALID, since a session
// crypto11's pool opens after the login was lost sees no private objects),
// the Service rebuilds the generation under the write side of the RWMutex:
// it configures a new crypto11 Context first (crypto11's per-path count
// keeps the module initialised), logging in only if a fresh session shows
// the token forgot the login, swaps it in, closes the old Context (which
// drops its pool, broken sessions included), and the operation runs once
// more, re-finding its key in the new generation. Callers that failed on
// the same generation share one rebuild. A second failure is returned as
// ErrSessionLost.
//
// On the miekg/pkcs11 path a lost session is dropped together with every
// idle one, cached object handles are forgotten, and the operation runs once
// more on a fresh session; if that session shows the login is gone, the
// crypto11 generation is rebuilt (which logs in again once) first.
//
// # Reopening an unreachable HSM
//
// A fresh session or context does not help when the token itself is gone:
// removed, behind a network that failed, or (SoftHSM2) its directory
// unreadable, after which SoftHSM2 forgets the token until the module is
// initialised again. Every operation (do and c11do, each with the recovery
// above) runs under the read side of resetMu through guarded. When one
// fails in a way a verdict does not explain (anything but a wrong type, a
// bad URI, a refused PIN, the caller's context; a missing key or a tampered
// blob are verdicts only if the token still answers), the Service asks the
// token for its info (C_GetTokenInfo, no session, no side effect). If the
// module reported a device, token or general error (CKR_DEVICE_REMOVED,
// CKR_DEVICE_ERROR, CKR_TOKEN_NOT_PRESENT, CKR_GENERAL_ERROR,
// CKR_CRYPTOKI_NOT_INITIALIZED, …), a lost session survived a fresh one, or
// the probe fails, the HSM is down:
//
//   - the first caller reopens the module at once (reset, under the write
//     side of resetMu, so while no operation runs): it closes every idle
//     session and the crypto11 Context, so that crypto11 finalises the
//     module when this Service was its last user in the process, configures
//     a new Context (C_Initialize again, then one C_Login under the login
//     mutex), finds the token's slot again, and the operation runs once
//     more;
//   - if that fails, calls fail at once with *UnavailableError (matching
//     ErrUnavailable, with RetryAfter) without touching the module until
//     the next attempt is due; each failed attempt doubles the wait from
//     Config.RetryMin to RetryMax (100 ms and 5 s by default), and the
//     first call after it (a request, or Check from a readiness probe)
//     tries again. The first success clears the backoff.
//
// Open itself asks again, up to three times with a doubling pause from
// 200 ms, when the module answers a device fault or loses the session
// while the service starts (seen once from SoftHSM2, CKR_GENERAL_ERROR,
// while another process used the same token); a refused PIN or a missing
// token is answered at once.
//
// A failure of an operation that began before the latest reopening is
// not held against the reopened module. A refused PIN is never retried
// here either. Modules that must be initialised again to see a token that
// came back (SoftHSM2) recover only when the Service is the module's only
// crypto11 user in the process (one Service per process, as egate's
// commands open it); another component of the process that uses the same
// library outside crypto11 loses its sessions when it is finalised. Callers treat ErrUnavailable as "try again later":
// nothing was computed, so nothing may be counted against a customer
// (authsvc's factors answer 503 and count no failure).
//
// Close waits for operations in flight, closes the miekg/pkcs11 sessions
// and handle, then the crypto11 Context. A module used by several Services
// in one process is initialised once and finalised by crypto11 when the
// last of them closes. Another component of the same process that
// initialises the same library outside crypto11 before the first Service
// opens makes crypto11.Configure fail (CKR_CRYPTOKI_ALREADY_INITIALIZED):
// open the HSM service first.
package hsm
