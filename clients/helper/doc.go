// Package helper is the customer's desktop security helper (egate helper):
// the bank's "online banking assistant" and token driver, modelled on
// Estonia's Web eID native app and BankID's desktop client.
//
// Started by the passport page's autostart link (egate://order?ref=…&token=…,
// a URL scheme the helper registers) or given the link by hand, it opens the
// signing order through the device API (authsvc/orders), checks that what
// it is asked to sign is exactly the text it shows and the challenge, shows
// the text, asks the customer to confirm, asks the token PIN (from the
// terminal, or a pin-source in tests; never stored, never logged; wiped
// after use), signs with the customer's token and posts the proof.
//
// Tools: a 1st-generation U-shield through the token vendor's PKCS#11 module
// (SoftHSM2 in development), a 2nd-generation U-shield (its own display and
// confirm button; `egate sim ushield` plays it, reached over its local
// link), and a PIV token through PC/SC with piv-go. A wrong PIN shows the
// retries left; a blocked PIN says how to unblock it; a token pulled during
// the signature cancels the order with the reason, so the page offers a new
// one. Every failure on the device ends the order: nothing stays open.
//
// Concurrency: a Helper runs one order at a time; each Tool opens its
// device for one signature and closes it (one owner per device, no PIN
// kept between signatures).
package helper
