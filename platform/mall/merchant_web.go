package mall

import (
	"net/http"
	"strings"

	"github.com/egate-bank/egate/internal/money"
)

type merchantData struct {
	Has        bool
	M          Merchant
	Categories []string
	App        Application
	Products   []Product
	Orders     []Order
	Keys       map[string]string // a fresh refund key per order
	StepUp     bool
	Need       int
	NewProduct struct{ Name, Description, Price, Stock string }
}

// merchantPage shows the customer's merchant: the application form, its
// state, or the shop's products and orders.
func (p *Pages) merchant(w http.ResponseWriter, r *http.Request, v *view) {
	p.showMerchant(w, r, v, http.StatusOK, nil)
}

func (p *Pages) showMerchant(w http.ResponseWriter, r *http.Request, v *view, status int, fill func(*merchantData)) {
	ctx := r.Context()
	mc, has, err := p.Mall.MerchantOf(ctx, v.C.ID)
	if err != nil {
		p.fail(w, r, v, err)
		return
	}
	d := merchantData{Has: has, M: mc, Categories: p.Mall.Categories(), Need: MerchantLevel, StepUp: v.C.Level < MerchantLevel, Keys: map[string]string{}}
	if has && mc.Status == Approved {
		if d.Products, err = p.Mall.Products(ctx, mc.ID); err == nil {
			d.Orders, err = p.Mall.Orders(ctx, "", mc.ID)
		}
		if err != nil {
			p.fail(w, r, v, err)
			return
		}
		for _, o := range d.Orders {
			d.Keys[o.ID] = newKey()
		}
	}
	if fill != nil {
		fill(&d)
	}
	v.Title, v.Data = v.P.T("mall.merchant"), d
	if has {
		v.Title = mc.Name
	}
	p.render(w, status, "merchant", v)
}

func (p *Pages) merchantApply(w http.ResponseWriter, r *http.Request, v *view) {
	g := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	a := Application{Owner: v.C.ID, Name: g("name"), Category: g("category"), Licence: g("licence"), Contact: g("contact")}
	mc, err := p.Mall.Apply(r.Context(), a)
	if err != nil {
		if status := refusal(v, err); status != 0 {
			p.showMerchant(w, r, v, status, func(d *merchantData) { d.App = a })
			return
		}
		p.fail(w, r, v, err)
		return
	}
	v.Notice = v.P.T("mall.applied")
	if !mc.Eligible() {
		v.Notice = v.P.T("mall.applied_problems")
	}
	p.showMerchant(w, r, v, http.StatusOK, nil)
}

// admitted returns the customer's approved merchant at MerchantLevel, or
// answers the request itself.
func (p *Pages) admitted(w http.ResponseWriter, r *http.Request, v *view) (Merchant, bool) {
	mc, has, err := p.Mall.MerchantOf(r.Context(), v.C.ID)
	if err != nil {
		p.fail(w, r, v, err)
		return mc, false
	}
	if !has || mc.Status != Approved {
		v.Error, v.Code = v.P.T("mall.err.not_merchant"), "not_merchant"
		p.showMerchant(w, r, v, http.StatusForbidden, nil)
		return mc, false
	}
	if v.C.Level < MerchantLevel {
		v.Error, v.Code = v.P.T("mall.err.step_up", MerchantLevel), "step_up_required"
		p.showMerchant(w, r, v, http.StatusForbidden, nil)
		return mc, false
	}
	return mc, true
}

func (p *Pages) merchantProduct(w http.ResponseWriter, r *http.Request, v *view) {
	mc, ok := p.admitted(w, r, v)
	if !ok {
		return
	}
	g := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	price, perr := money.ParseYuan(g("price"))
	stock, sok := formInt(r, "stock")
	var err error
	if perr != nil || !sok {
		err = ErrInvalid
	} else {
		_, err = p.Mall.AddProduct(r.Context(), NewProduct{Merchant: mc.ID, Name: g("name"), Description: g("description"), Price: price, Stock: stock})
	}
	if err != nil {
		if status := refusal(v, err); status != 0 {
			p.showMerchant(w, r, v, status, func(d *merchantData) {
				d.NewProduct.Name, d.NewProduct.Description, d.NewProduct.Price, d.NewProduct.Stock = g("name"), g("description"), g("price"), g("stock")
			})
			return
		}
		p.fail(w, r, v, err)
		return
	}
	v.Notice = v.P.T("mall.product_added", g("name"))
	p.showMerchant(w, r, v, http.StatusOK, nil)
}

// merchantOrder: POST /merchant/orders/{id}/ship|cancel|refund.
func (p *Pages) merchantOrder(w http.ResponseWriter, r *http.Request, v *view) {
	mc, ok := p.admitted(w, r, v)
	if !ok {
		return
	}
	ctx, id := r.Context(), r.PathValue("id")
	var err error
	switch r.PathValue("action") {
	case "ship":
		var o Order
		if o, err = p.Mall.Ship(ctx, mc.ID, id); err == nil {
			v.Notice = v.P.T("mall.shipped", o.ID, money.Yuan(o.Captured))
		}
	case "cancel":
		var o Order
		if o, err = p.Mall.Cancel(ctx, mc.ID, "", id); err == nil {
			v.Notice = v.P.T("mall.cancelled", money.Yuan(o.Total))
		}
	case "refund":
		amount, perr := money.ParseYuan(strings.TrimSpace(r.PostFormValue("amount")))
		if perr != nil {
			err = ErrInvalid
			break
		}
		var f Refund
		if f, err = p.Mall.Refund(ctx, RefundRequest{Merchant: mc.ID, Order: id, Key: r.PostFormValue("key"), Amount: amount}); err == nil {
			v.Notice = v.P.T("mall.refund_done", money.Yuan(f.Amount), id)
		}
	default:
		err = ErrNotFound
	}
	if err != nil {
		if status := refusal(v, err); status != 0 {
			p.showMerchant(w, r, v, status, nil)
			return
		}
		p.fail(w, r, v, err)
		return
	}
	p.showMerchant(w, r, v, http.StatusOK, nil)
}
