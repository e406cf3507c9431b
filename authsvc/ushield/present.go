package ushield

// Label is the tool's name for customers (the passport's login pages).
func (f *factor) Label() string {
	if f.gen == 2 {
		return "U-shield with display"
	}
	return "U-shield"
}

// AnswerIsProof tells the login pages that the answer is an EGP1 signature
// proof (devices/pkcs11token) over the challenge's Data, which the page
// shows; the form carries it base64-encoded.
func (f *factor) AnswerIsProof() bool { return true }
