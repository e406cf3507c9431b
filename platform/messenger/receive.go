package messenger

import (
	"net/http"
	"strings"
	"time"

	"github.com/skip2/go-qrcode"

	"github.com/egate-bank/egate/internal/money"
	"github.com/egate-bank/egate/platform/messenger/payqr"
)

type receiveData struct {
	Amount, Memo string
	Code         ReceiveCode
	Key          string
	Expires      string
}

func (p *Pages) qrTTL() time.Duration {
	if p.QRTTL > 0 {
		return p.QRTTL
	}
	return 10 * time.Minute
}

func (p *Pages) receiveForm(w http.ResponseWriter, r *http.Request, v *view) {
	v.Title, v.Data = v.P.T("msg.receive"), receiveData{}
	p.render(w, http.StatusOK, "receive", v)
}

// receiveCreate makes a receive code: the amount fixed, or empty for the
// payer to say.
func (p *Pages) receiveCreate(w http.ResponseWriter, r *http.Request, v *view) {
	d := receiveData{Amount: strings.TrimSpace(r.PostFormValue("amount")), Memo: r.PostFormValue("memo")}
	var amount int64
	if d.Amount != "" {
		a, err := money.ParseYuan(d.Amount)
		if err != nil || a <= 0 {
			v.Error, v.Code = v.P.T("msg.err."+ErrBadAmount.Code), ErrBadAmount.Code
			v.Title, v.Data = v.P.T("msg.receive"), d
			p.render(w, ErrBadAmount.Status, "receive", v)
			return
		}
		amount = a
	}
	if err := p.Svc.Store.Profile(r.Context(), v.C.ID, v.C.Name); err != nil {
		p.refuse(w, r, v, err, "")
		return
	}
	if _, err := p.Svc.Bank.CurrentAccount(r.Context(), v.C.ID); err != nil {
		p.refuse(w, r, v, err, "")
		return
	}
	c, err := p.Svc.Store.NewReceiveCode(r.Context(), v.C.ID, amount, d.Memo, p.qrTTL())
	if err != nil {
		p.refuse(w, r, v, err, "")
		return
	}
	http.Redirect(w, r, "/receive/"+c.Token, http.StatusSeeOther)
}

// mine returns the customer's own receive code of the request.
func (p *Pages) mine(w http.ResponseWriter, r *http.Request, v *view) (ReceiveCode, bool) {
	c, err := p.Svc.Store.ReceiveCode(r.Context(), r.PathValue("token"))
	if err == nil && c.Payee != v.C.ID {
		err = ErrQRUnknown
	}
	if err != nil {
		p.refuse(w, r, v, err, "")
		return c, false
	}
	return c, true
}

func (p *Pages) receiveShow(w http.ResponseWriter, r *http.Request, v *view) {
	c, ok := p.mine(w, r, v)
	if !ok {
		return
	}
	v.Title, v.Data = v.P.T("msg.receive"), receiveData{Code: c, Expires: v.P.Time(c.Expires)}
	p.render(w, http.StatusOK, "receive_code", v)
}

// QRText is what a receive QR holds: payqr.Prefix and the pay page's URL.
func (p *Pages) QRText(token string) string {
	return payqr.Text(strings.TrimRight(p.PublicURL, "/") + "/pay/" + token)
}

func (p *Pages) receivePNG(w http.ResponseWriter, r *http.Request, v *view) {
	c, ok := p.mine(w, r, v)
	if !ok {
		return
	}
	png, err := qrcode.Encode(p.QRText(c.Token), qrcode.Medium, -6)
	if err != nil {
		p.refuse(w, r, v, err, "")
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Write(png)
}

// payQRForm is the page a scanned receive QR opens: who is paid, the
// amount (or a box for it), confirm.
func (p *Pages) payQRForm(w http.ResponseWriter, r *http.Request, v *view) {
	c, err := p.Svc.Store.ReceiveCode(r.Context(), r.PathValue("token"))
	if err == nil && c.Payee == v.C.ID {
		err = ErrQROwn
	}
	if err != nil {
		p.payRefused(w, r, v, PayForm{What: PayQR}, err)
		return
	}
	f := PayForm{What: PayQR, QR: c.Token, Payee: c.Payee, Key: newKey(), Memo: c.Memo}
	if c.Amount > 0 {
		f.Amount = money.Yuan(c.Amount)
	}
	v.Title, v.Data = v.P.T("msg.pay_qr"), payData{F: f, Code: c, Back: "/chats"}
	p.render(w, http.StatusOK, "pay_qr", v)
}
