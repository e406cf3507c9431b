package oath

// Label is the tool's name for customers (the passport's login pages).
func (Factor) Label() string { return "Dynamic-password token" }

// ChallengeUsedByFailure tells the login pages that a wrong answer uses up
// the challenge (Verify consumes it before comparing, so a replayed or
// guessed code is never checked twice): after a failure they begin a new
// one at once.
func (Factor) ChallengeUsedByFailure() bool { return true }

// CountsOwnFailures: the token's one lockout counter is its own (failures
// and locked_until in otp_tokens, max-failures then lock-for), which the
// back-end verify API counts too and egate admin token unlock clears; at
// login and for transactions alike (authn.Counted).
func (Factor) CountsOwnFailures() bool { return true }
