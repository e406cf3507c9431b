package simatm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/skip2/go-qrcode"

	"github.com/egate-bank/egate/atm"
	"github.com/egate-bank/egate/internal/money"
)

// Screen is the ATM's display: the QR is rendered to a PNG file, to a small
// web page (Handler) and, as text, to a terminal.
type Screen struct {
	PNGPath string    // where the QR PNG is written ("" = not written)
	Term    io.Writer // terminal rendering ("" = none)

	mu      sync.Mutex
	session atm.TxnID
	text    string
	png     []byte
	prompt  string
	expire  *time.Timer
}

// Prompt shows msg (the PIN prompt, "Take your cash") in place of the QR,
// which it removes: the customer is past it. "" shows the welcome again.
func (s *Screen) Prompt(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prompt = msg
	if msg != "" && s.png != nil {
		s.text, s.png = "", nil
		if s.PNGPath != "" {
			os.Remove(s.PNGPath)
		}
	}
}

func (s *Screen) promptNow() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.prompt
}

// Show renders a SHOW_QR request.
func (s *Screen) Show(m atm.ShowQR) error {
	var img []byte
	var small string
	switch m.Mode {
	case atm.QRModeText:
		q, err := qrcode.New(m.Text, qrcode.Medium)
		if err != nil {
			return fmt.Errorf("rendering QR: %w", err)
		}
		if img, err = q.PNG(256); err != nil {
			return fmt.Errorf("rendering QR: %w", err)
		}
		small = q.ToSmallString(false)
	case atm.QRModeBitmap:
		bm := atm.UnpackBitmap(m.Size, m.Bitmap)
		img = bitmapPNG(bm, 8)
		small = bitmapText(bm)
	default:
		return fmt.Errorf("QR mode %d", m.Mode)
	}
	s.mu.Lock()
	s.session, s.text, s.png, s.prompt = m.Session, m.Text, img, ""
	if s.expire != nil {
		s.expire.Stop()
	}
	if m.TTLSec > 0 { // the ATM removes the QR on its own after its lifetime
		s.expire = time.AfterFunc(time.Duration(m.TTLSec)*time.Second, func() { s.Cancel(m.Session) })
	}
	s.mu.Unlock()
	if s.PNGPath != "" {
		tmp := s.PNGPath + ".tmp"
		if err := os.WriteFile(tmp, img, 0o644); err != nil {
			return fmt.Errorf("writing QR PNG: %w", err)
		}
		if err := os.Rename(tmp, s.PNGPath); err != nil {
			return fmt.Errorf("writing QR PNG: %w", err)
		}
	}
	if s.Term != nil {
		fmt.Fprintf(s.Term, "ATM screen: scan to withdraw (session %s)\n%s\n", m.Session, small)
	}
	return nil
}

// Cancel clears the QR if it belongs to session.
func (s *Screen) Cancel(session atm.TxnID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.session == session {
		s.text, s.png = "", nil
		if s.PNGPath != "" {
			os.Remove(s.PNGPath)
		}
	}
}

// Current returns the text and PNG on screen (empty when none).
func (s *Screen) Current() (string, []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.text, s.png
}

func bitmapPNG(bm [][]bool, scale int) []byte {
	n := len(bm)
	quiet := 4
	side := (n + 2*quiet) * scale
	img := image.NewGray(image.Rect(0, 0, side, side))
	for i := range img.Pix {
		img.Pix[i] = 0xFF
	}
	for y, row := range bm {
		for x, dark := range row {
			if !dark {
				continue
			}
			for dy := range scale {
				for dx := range scale {
					img.SetGray((x+quiet)*scale+dx, (y+quiet)*scale+dy, color.Gray{})
				}
			}
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}

func bitmapText(bm [][]bool) string {
	var b strings.Builder
	for _, row := range bm {
		for _, d := range row {
			if d {
				b.WriteString("██")
			} else {
				b.WriteString("  ")
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Handler serves the simulator's screen and control endpoints:
//
//	GET  /          the screen (auto-refreshing page with the QR)
//	GET  /qr.png    the QR image
//	GET  /state     counts as JSON
//	POST /faults    body or query: name=value[&…] (see FaultNames)
//	POST /pin       digits=1234 or cancel=1: what the customer types next
//	POST /choose-qr the customer chooses QR withdrawal (Config.ChooseQR)
//	POST /take      the customer takes the cash at the exit now
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		text, img := s.cfg.Screen.Current()
		t := s.Totals()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		// Reloads every 2 s, except while the customer types on the PIN pad.
		fmt.Fprintf(w, `<!doctype html><html><head><title>egate ATM simulator</title>
<script>setInterval(function(){var a=document.activeElement;if(!a||a.name!=="digits")location.reload()},2000)</script></head><body style="font-family:sans-serif">
<h1>ATM</h1>`)
		prompt := s.cfg.Screen.promptNow()
		switch {
		case prompt != "":
			fmt.Fprintf(w, `<p style="font-size:150%%"><strong>%s</strong></p>`, html.EscapeString(prompt))
		case img != nil:
			fmt.Fprintf(w, `<p>Scan with the bank's app to withdraw cash:</p><p><img src="qr.png" alt="QR code" width="256" height="256"></p><p><code>%s</code></p>`, html.EscapeString(text))
		default:
			fmt.Fprint(w, `<p>Welcome. Cash without a card: choose QR withdrawal, then scan the code with the bank's app.</p>`)
			if s.cfg.ChooseQR != nil {
				fmt.Fprint(w, `<form method="post" action="choose-qr"><input type="hidden" name="page" value="1"><button>QR withdrawal</button></form>`)
			}
		}
		fmt.Fprint(w, `<form method="post" action="pin" style="margin-top:1em"><input type="hidden" name="page" value="1"><label>PIN pad <input name="digits" type="password" inputmode="numeric" autocomplete="off" size="8"></label> <button>Enter</button> <button name="cancel" value="1">Cancel</button></form>`)
		fmt.Fprintf(w, `<p>at exit: %d notes, reject bin: %d, taken: %d</p><ul>`, t.AtExit, t.RejectBin, t.Taken)
		for _, c := range t.Cassettes {
			fmt.Fprintf(w, `<li>cassette %d: %d × %s</li>`, c.ID, c.Count, money.Yuan(c.Denom))
		}
		fmt.Fprint(w, `</ul></body></html>`)
	})
	mux.HandleFunc("GET /qr.png", func(w http.ResponseWriter, r *http.Request) {
		_, img := s.cfg.Screen.Current()
		if img == nil {
			http.Error(w, "no QR on screen", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Write(img)
	})
	mux.HandleFunc("GET /state", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s.Totals())
	})
	mux.HandleFunc("POST /faults", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for name, vals := range r.Form {
			for _, v := range vals {
				if err := s.f.Set(name + "=" + v); err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /pin", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		e := PINEntry{Digits: r.Form.Get("digits"), Cancel: r.Form.Get("cancel") != ""}
		select {
		case s.pins <- e:
			if r.Form.Get("page") != "" {
				http.Redirect(w, r, "./", http.StatusSeeOther) // the screen page's form
				return
			}
			w.WriteHeader(http.StatusNoContent)
		default:
			http.Error(w, "PIN pad queue full", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("POST /choose-qr", func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.ChooseQR == nil {
			http.Error(w, "this ATM offers no QR withdrawal", http.StatusNotFound)
			return
		}
		if err := s.cfg.ChooseQR(r.Context()); err != nil {
			http.Error(w, "QR withdrawal is not available now: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		if r.FormValue("page") != "" {
			http.Redirect(w, r, "./", http.StatusSeeOther)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /take", func(w http.ResponseWriter, r *http.Request) {
		s.TakeNow()
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

// ScreenPNGPath is a helper for a PNG path inside dir.
func ScreenPNGPath(dir string) string { return filepath.Join(dir, "atm-qr.png") }

// ScreenNow returns the QR text and PNG on the ATM's screen (empty when
// none).
func (s *Sim) ScreenNow() (string, []byte) { return s.cfg.Screen.Current() }
