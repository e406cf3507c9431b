// Package payqr is the text of the messenger's receive QR: what the
// payee's page draws (platform/messenger) and the bank's phone app reads
// (simulators/phone). A leaf package, so that both can use it.
package payqr

import "strings"

// Prefix starts the text of a receive QR; the pay page's URL follows.
const Prefix = "EGPAY1:"

// Text is the QR's text for the pay page at url (…/pay/<token>).
func Text(url string) string { return Prefix + url }

// Parse returns the pay page's URL in the text of a receive QR.
func Parse(text string) (string, bool) {
	u, ok := strings.CutPrefix(text, Prefix)
	return u, ok && strings.Contains(u, "/pay/") && (strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://"))
}
