package pivauth

// Label is the tool's name for customers (the passport's login pages).
func (factor) Label() string { return "PIV card" }

// AnswerIsProof tells the login pages that the answer is an EGP1 signature
// proof (devices/pkcs11token) over the challenge's Data, which the page
// shows; the form carries it base64-encoded.
func (factor) AnswerIsProof() bool { return true }
