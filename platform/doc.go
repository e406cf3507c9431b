// Package platform is what the three customer platforms — ebank, mall and
// messenger — share: each is an OpenID Connect relying party of the passport
// (authorization code with PKCE, through zitadel/oidc's rp package), keeps
// its customer session in an encrypted cookie (so replicas stay stateless),
// asks the passport for the level it needs with acr_values, and steps up
// when a page needs more. Logging in to one platform logs the customer in to
// the others without a new password: the passport's own session (single
// sign-on) answers their authorization requests, unless they ask for a
// higher level than the session has reached. Logging out of one logs the
// customer out of all: the passport posts a logout token (OpenID Connect
// Back-Channel Logout 1.0) to each platform's POST /backchannel-logout,
// which verifies it against the passport's JWKS and, through Logouts, stops
// counting every session of that customer made before it.
//
// The platforms' business (accounts and the ledger, orders, conversations)
// is built on this in their own packages.
package platform
