// Package orders keeps signing orders: what a customer's own device is asked
// to sign, and how far it got. The models are Sweden's BankID (an order with
// a reference, an autostart link for a device on the same computer, an
// animated QR for a phone, a collect call the page polls) and Estonia's Web
// eID (a native helper that signs an origin-bound challenge with a card).
//
// A page (the passport's factor step, or a transaction confirmation) creates
// an order with the text the customer must see, the challenge bound to it
// (a login nonce, or a transaction challenge bound to the intent's hash),
// the tool's single-use challenge id and an expiry. The order's Data is
// exactly what the device signs: the text, a newline and "Challenge: " with
// the challenge in upper-case hex (ushield.SignedText), so the signature
// covers the text shown and the challenge together.
//
// States only move forward:
//
//	pending ──open──▶ user_sign ──sign ok──▶ complete ──finish──▶ (collected)
//	   │                  │ └────sign refused──▶ failed
//	   └──────────────────┴──cancel──▶ cancelled;  past the expiry: expired
//
// A device opens a pending order with either the autostart link's token
// (egate://order?ref=…&token=…, given to the page that created the order) or
// the content of the order's animated QR: "EGQ1.<ref>.<t>.<mac>", where t is
// the whole seconds since the order was made and mac an HMAC-SHA-256 over
// (ref, t) under a per-order secret that never leaves the server. The page
// gets a fresh QR image every second from the server; a code more than
// QRWindow old is refused, so a photo of the QR relayed to someone else is
// stale within seconds. Opening hands the device a token of its own; only
// that device may sign or cancel, and only one device opens an order.
//
// Signing calls the Verifier the caller gave New (the tool's own
// verification: certificate chain to the bank CA, binding, revocation, the
// signature over Data, consuming the tool's challenge). Only the browser
// that created the order (the SHA-256 of its secret cookie is kept) can
// collect it; another browser gets ErrUnknown, exactly as for an unknown
// reference. Finish marks a complete order's result used, once.
//
// Concurrency: the Service keeps no state; every transition is one guarded
// UPDATE (… WHERE state = <from> …) checked by its row count, so of any
// number of replicas racing on one order exactly one transition wins.
package orders
