package demo

import (
	"context"
	"crypto"
	"crypto/rand"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/egate-bank/egate/authsvc/factors"
	"github.com/egate-bank/egate/authsvc/gridcard"
	"github.com/egate-bank/egate/authsvc/oath"
	"github.com/egate-bank/egate/devices/otp"
	"github.com/egate-bank/egate/devices/otp/pskc"
	"github.com/egate-bank/egate/simulators/oathtoken"
)

// Files of the demo customer's tools under the demo directory.
const (
	totpFile     = "demo-alice-totp.pskc"    // the token's memory: what the vendor ships
	gridCardFile = "demo-alice-gridcard.png" // the printed card
)

// enrollTools gives the demo customer a grid card (level 2) and a TOTP
// token (level 3) on the first start; SMS (level 2) needs only the mobile
// number registered with the customer.
func enrollTools(ctx context.Context, set *factors.Set, passportID, varDir string) error {
	if set.GridCard != nil {
		if _, err := os.Stat(filepath.Join(varDir, gridCardFile)); err != nil {
			card, err := set.GridCard.Issue(ctx, passportID)
			if err != nil {
				return fmt.Errorf("issuing the demo grid card: %w", err)
			}
			f, err := os.OpenFile(filepath.Join(varDir, gridCardFile), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			err = gridcard.RenderPNG(f, card)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("printing the demo grid card: %w", err)
			}
		}
	}
	if set.OTP != nil {
		path := filepath.Join(varDir, totpFile)
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		seed := make([]byte, 20)
		rand.Read(seed)
		serial := fmt.Sprintf("DEMO%08d", time.Now().Unix()%100000000)
		k := &pskc.Key{ID: "1", Serial: serial, Manufacturer: "egate demo", Params: otp.Params{Kind: otp.KindTOTP, Hash: crypto.SHA1, Digits: 6, Period: 30 * time.Second}, Secret: seed}
		tmp := path + ".tmp"
		f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		w, err := pskc.NewWriter(f, pskc.WriterOptions{})
		if err == nil {
			err = w.Add(k)
		}
		if err == nil {
			err = w.Close()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		if _, err := set.OTP.ImportPSKC(ctx, func() (io.ReadCloser, error) { return os.Open(tmp) }, oath.ImportOptions{}); err != nil {
			return fmt.Errorf("importing the demo token: %w", err)
		}
		if err := set.OTP.Assign(ctx, serial, "", passportID); err != nil {
			return fmt.Errorf("assigning the demo token: %w", err)
		}
		return os.Rename(tmp, path)
	}
	return nil
}

var tokenPage = template.Must(template.New("token").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5"><title>alice's dynamic-password token</title>
<style>body{font-family:sans-serif;max-width:30em;margin:2em auto}.code{font:bold 3em monospace;letter-spacing:.2em;padding:.4em;border:2px solid #333;display:inline-block}</style></head>
<body><h1>Dynamic-password token</h1><p>Serial {{.Serial}} ({{.Describe}})</p>
<div class="code" id="code">{{.Code}}</div><p>valid for {{.Left}} more seconds</p>
<p><a href="/sim/gridcard.png">alice's grid card</a> · <a href="/sim/sms/">SMS messages</a></p></body></html>`))

var indexPage = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>egate demo</title>
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto}li{margin:.3em 0}</style></head>
<body><h1>egate demo</h1><p>The passport (login pages, OIDC provider) serves no page of its own at /: log in through a platform.</p>
<ul>{{range .}}<li><a href="{{.URL}}">{{.Name}}</a></li>{{end}}</ul></body></html>`))

// indexHandler lists the demo's pages at the passport's / (egate authsvc
// has none there): the platforms, the simulated devices, the discovery.
func indexHandler(platforms map[string]string) http.Handler {
	type link struct{ Name, URL string }
	links := []link{
		{"ebank", platforms["ebank"]}, {"mall", platforms["mall"]}, {"messenger", platforms["messenger"]},
		{"the ATM's screen (QR withdrawal, PIN pad)", "/sim/atm/"},
		{"alice's dynamic-password token", "/sim/otp/"}, {"alice's grid card", "/sim/gridcard.png"},
		{"SMS messages (codes and alerts)", "/sim/sms/"},
		{"the branch agent's ATMs", "/agent/atms"}, {"the agent gateway's links", "/agent-gateway/agents"},
		{"OIDC discovery", "/.well-known/openid-configuration"}, {"the API description", "/openapi.yaml"},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		indexPage.Execute(w, links)
	})
}

// toolsHandler shows the demo customer's token and grid card, as the
// customer would hold them: /sim/otp/ and /sim/gridcard.png.
func toolsHandler(varDir string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sim/otp/{$}", func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(filepath.Join(varDir, totpFile))
		if err != nil {
			http.Error(w, "the demo has no token", http.StatusNotFound)
			return
		}
		defer f.Close()
		tok, err := oathtoken.Load(f, pskc.Options{}, "")
		if err != nil {
			http.Error(w, "the token file is unreadable", http.StatusInternalServerError)
			return
		}
		defer tok.Key.Wipe()
		code, left, err := tok.Press(r.Context(), time.Now())
		if err != nil {
			http.Error(w, "the token could not compute a code", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		tokenPage.Execute(w, map[string]any{"Serial": tok.Key.Serial, "Describe": tok.Describe(), "Code": code, "Left": int(left.Seconds())})
	})
	mux.HandleFunc("GET /sim/gridcard.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		http.ServeFile(w, r, filepath.Join(varDir, gridCardFile))
	})
	return mux
}
