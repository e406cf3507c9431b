package mall

import (
	"net/http"

	"github.com/egate-bank/egate/internal/money"
)

type ordersData struct {
	Orders   []Order
	Merchant bool // the merchant's view
}

type orderData struct {
	Order     Order
	Merchant  bool
	RefundKey string
}

func (p *Pages) orders(w http.ResponseWriter, r *http.Request, v *view) {
	list, err := p.Mall.Orders(r.Context(), v.C.ID, "")
	if err != nil {
		p.fail(w, r, v, err)
		return
	}
	v.Title, v.Data = v.P.T("mall.orders"), ordersData{Orders: list}
	p.render(w, http.StatusOK, "orders", v)
}

// mine returns the customer's order id, or false (another's is not found).
func (p *Pages) mine(w http.ResponseWriter, r *http.Request, v *view) (Order, bool) {
	o, err := p.Mall.Order(r.Context(), r.PathValue("id"))
	if err == nil && o.Customer != v.C.ID {
		err = ErrNotFound
	}
	if err != nil {
		if status := refusal(v, err); status != 0 {
			v.Title = v.P.T("mall.orders")
			p.render(w, status, "error", v)
			return o, false
		}
		p.fail(w, r, v, err)
		return o, false
	}
	return o, true
}

func (p *Pages) order(w http.ResponseWriter, r *http.Request, v *view) {
	if o, ok := p.mine(w, r, v); ok {
		p.showOrder(w, r, v, o, http.StatusOK)
	}
}

func (p *Pages) showOrder(w http.ResponseWriter, r *http.Request, v *view, o Order, status int) {
	v.Title = v.P.T("mall.order", o.ID)
	v.Data = orderData{Order: o}
	p.render(w, status, "order", v)
}

func (p *Pages) orderCancel(w http.ResponseWriter, r *http.Request, v *view) {
	o, ok := p.mine(w, r, v)
	if !ok {
		return
	}
	got, err := p.Mall.Cancel(r.Context(), "", v.C.ID, o.ID)
	if err == nil {
		v.Notice = v.P.T("mall.cancelled", money.Yuan(got.Total))
		p.showOrder(w, r, v, got, http.StatusOK)
		return
	}
	if status := refusal(v, err); status != 0 {
		o, _ = p.Mall.Order(r.Context(), o.ID)
		p.showOrder(w, r, v, o, status)
		return
	}
	p.fail(w, r, v, err)
}
