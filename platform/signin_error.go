package platform

import (
	"html/template"
	"net/http"
	"regexp"
)

var signinErrorPage = template.Must(template.New("signin-error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} — sign-in not completed</title>
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto}</style></head>
<body><h1>Sign-in not completed</h1>
<p id="signin-error" data-error="{{.Code}}">{{.Text}}</p>
<p><a id="home" href="/">Back to {{.Title}}</a> · <a id="retry" href="/login">Try again</a></p>
</body></html>`))

var errorCodeRE = regexp.MustCompile(`^[a-z_]{1,40}$`)

// signinError is the page a customer sees when the passport sends them back
// without a login (an OAuth error at the callback: a locked password, no
// tool of the level, prompt=none without a session): what happened in the
// bank's words, a link home and a link to try again. The passport's
// error_description is not shown: the callback's query can be written by
// anyone, so only the known codes are put into words.
func signinError(name string) func(w http.ResponseWriter, r *http.Request, code, desc, state string) {
	return func(w http.ResponseWriter, r *http.Request, code, desc, state string) {
		text := "The sign-in did not complete. Try again, or call the bank if it keeps failing."
		switch code {
		case "access_denied":
			text = "The passport did not sign you in: your password or tool may be locked, or this service needs an authentication tool you do not have yet. The passport's page said what to do."
		case "login_required":
			text = "You need to sign in with your passport."
		}
		if !errorCodeRE.MatchString(code) {
			code = "invalid"
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusForbidden)
		signinErrorPage.Execute(w, map[string]string{"Title": titles[name], "Code": code, "Text": text})
	}
}
