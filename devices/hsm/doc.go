// Package hsm is egate's key service: the bank's server keys (passport
// signing, the bank CA, the wrapping key for secrets at rest, the audit
// checkpoint key, HMAC and ATM PIN keys) held in an HSM and used through any
// PKCS#11 module. SoftHSM2 plays the HSM in development and CI.
//
// Keys are generated inside the HSM (CKA_TOKEN, CKA_SENSITIVE true,
// CKA_EXTRACTABLE false), found again by label, named by RFC 7512 pkcs11:
// URIs (package pkcs11uri) and handed out in the standard library's shapes:
// a signing key is a crypto.Signer. Secrets at rest are sealed with AES-GCM
// computed in the HSM; OTP seeds are kept wrapped by an HSM AES key and are
// only ever unwrapped, for the length of one call, into a sensitive,
// non-extractable session key whose HMAC the HSM computes.
//
// # Concurrency model
//
// A Service is safe for use by any number of goroutines. PKCS#11 sessions
// must not be used by two threads at once, so the Service owns a pool of at
// most Config.Pool sessions and lends one session to one operation at a time
// (Service.do): an operation takes a session, runs its C_* calls, and gives
// the session back. No session is shared between goroutines and none is held
// between calls. When every session is lent, callers wait for one to come
// back, or until their context ends.
//
// One extra "anchor" session stays open for the life of the Service so that
// the login state (which PKCS#11 keeps per application and token, and drops
// when the last session closes) survives an empty pool.
//
// Logging in happens under one mutex, never in parallel, and only when a
// session reports it is not logged in. The PIN is read from the pin-source
// (package pinsource) at each login and wiped after C_Login; it is never kept,
// logged or put in an error. A refused PIN is never retried: after
// CKR_PIN_INCORRECT or CKR_PIN_LOCKED the Service refuses every later login
// without calling the module, so egate never spends the token's retry
// counter on its own.
//
// When the module reports that a session is gone (CKR_SESSION_HANDLE_INVALID,
// CKR_SESSION_CLOSED, CKR_DEVICE_REMOVED, CKR_USER_NOT_LOGGED_IN, …) the
// operation drops that session and every idle one (they usually went with
// it), forgets cached object handles, opens a fresh session (logging in again
// if the token forgot the login) and retries the operation once. A second
// failure is returned as ErrSessionLost.
//
// Close waits for operations in flight, closes every session and releases
// the module; every later call fails with ErrClosed. A module loaded by
// several Services in one process is initialised once and finalised when the
// last of them closes.
//
// Why not ThalesGroup/crypto11 for the pool: its pool returns a broken
// session to the pool rather than dropping it, it cannot log in again after
// the module forgot the login, and it has no C_WrapKey/C_UnwrapKey. The
// service therefore drives github.com/miekg/pkcs11 (the library crypto11
// itself stands on) directly, through the narrow interface p11 that the tests
// also use to count logins.
package hsm
