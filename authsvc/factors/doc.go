// Package factors is the one place that builds every second-factor tool of
// the passport from config: SMS codes and grid cards (level 2), the
// dynamic-password token (level 3), the 1st-generation U-shield and the PIV
// card (level 4) and the 2nd-generation U-shield (level 5), over one
// database, one HSM and the bank CA. `egate authsvc` and `egate demo` call
// Build and hand Set.Factors to authsvc.Deps.Factors and mount Set.Handler.
//
//	set, err := factors.Build(ctx, cfg.Factors, factors.Deps{DB: db, HSM: h})
//	srv, err := authsvc.New(ctx, cfg.Authsvc, authsvc.Deps{DB: db, Signer: signer, Factors: set.Factors})
//	set.Attempts = srv.Passport() // the one counter of the tools without their own
//	mux.Handle("/ca/", set.Handler)
//	mux.Handle("/v1/otp/", backendClients.Require(backend.ScopeOTPVerify, set.Handler)) // see internal/app
//
// # SMS gateway
//
// SMS codes leave through the operator's HTTP API (sms.HTTPGateway) built
// from factors.sms.gateway.url, .token-source (file:/path or env:NAME; the
// bearer token is never in the config) and .timeout [10s]. The development
// sink, which keeps every message with its live code in clear in the
// database for `egate sim sms` and egate demo's /sim/sms/, is used only when
// factors.sms.dev-sink is true (egate demo sets it). With sms enabled,
// exactly one of the two must be set, or Build (and Config.Validate) fails
// naming both keys. Deps.SMS overrides both (tests).
//
// # The bank CA
//
// The U-shield and PIV tools verify certificates of the bank CA. Build
// loads it from the database (with its issuing key from the HSM); when the
// database has none it makes it only if ca.auto-init is set (the demo),
// otherwise it fails naming the tools that need it and `egate admin ca
// init`. With no certificate tool enabled a missing CA is no error.
//
// # Login
//
// The passport's login pages (authsvc/login.go) offer the customer's
// enrolled tools at or above the level a platform asks for, call Begin with
// authn.PurposeLogin and Verify with the form's answer: a code typed by
// the customer, or for U-shield and PIV the EGP1 signature proof over the
// challenge Data shown on the page, base64-encoded.
//
// # Transaction authorization
//
// Transaction authorization (DESIGN.md §3) uses the same factors through
// the same two calls, bound to one intent. It computes the intent's
// canonical hash H and its human-readable text T (sms.Describe: "transfer
// of CNY 1,234.56 to account ending 4321"), begins a challenge and stores
// ch.ID with the intent:
//
//	ch, err := f.Begin(ctx, authn.BeginRequest{PassportID: pid,
//		Purpose: authn.PurposeTransaction, TxText: T, TxHash: H, ClientIP: ip})
//
// What each tool does with T and H:
//
//   - sms: the message names T ("… is your code to authorize T", or in
//     Chinese when TxLang is intent.LangZH); T must be one line of at most
//     160 characters; the code belongs to ch.ID.
//   - gridcard: fresh random cells, bound to H through ch.ID.
//   - otp: an OCRA token gets a question (ch.Data) bound to H (for questions
//     that carry the payee's digits and the amount, call Set.OTP.BeginOCRA
//     with otp.TxDetails instead); an HOTP/TOTP token gets a code prompt,
//     bound to H through ch.ID.
//   - ushield, ushield2, piv: ch.Data is exactly what the token signs and a
//     2nd-generation token displays: T, a newline and "Challenge: " with a
//     fresh nonce (ushield.SignedText).
//
// With the customer's answer it calls
//
//	res, err := set.VerifyTransaction(ctx, f.Name(), H,
//		authn.VerifyRequest{PassportID: pid, ChallengeID: ch.ID, Response: answer, ClientIP: ip})
//
// which hands the answer to the tool as given for PurposeTransaction and H
// (authn.VerifyRequest's Purpose and TxHash). Every tool keeps its
// challenges in the one store, authsvc/challenge, and opens them there
// (challenge.Store.Open), which refuses a challenge begun for another intent
// or for a login (ErrOtherTransaction, wrapping authn.ErrUnknown) before the
// answer is looked at, so it costs no attempt and leaves the challenge
// usable; the login page's answers go the same way with PurposeLogin, so a
// transaction's challenge never logs anybody in. Then the tool's Verify checks the answer, the customer, expiry, single use,
// lockout and, for signatures, that the signed bytes are exactly ch.Data (a
// signature over another T is refused). res.Level is the level reached;
// res.ConfirmedOnDevice is true only for a 2nd-generation U-shield, whose
// key signs only after the customer pressed confirm on the device showing
// T. On success the challenge is consumed and authorization issues its
// grant for H.
//
// Errors are authn's sentinels wrapped with %w (ErrWrongAnswer, ErrExpired,
// ErrUsed, ErrUnknown, ErrLocked via *authn.LockedError, ErrReplay,
// ErrRevoked, ErrRateLimited, ErrBadResponse); their messages are safe to
// show, wrapped details are not.
package factors
