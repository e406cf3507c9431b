package messenger

import (
	"context"
	"net/http"
	"strings"

	"github.com/egate-bank/egate/internal/money"
)

type aaFormData struct {
	C       Conversation
	Name    string
	Total   string
	Memo    string
	Mode    string // equal or set
	Picked  map[string]bool
	Shares  map[string]string
	RemTo   string
	Members []Member
}

func (p *Pages) aaForm(w http.ResponseWriter, r *http.Request, v *view) {
	c, err := p.Svc.Store.Get(r.Context(), r.PathValue("id"), v.C.ID)
	if err == nil && c.Kind != Group && c.Kind != Direct {
		err = ErrNotPayee
	}
	if err != nil {
		p.refuse(w, r, v, err, "")
		return
	}
	picked := map[string]bool{}
	for _, m := range c.Members {
		picked[m.ID] = true
	}
	p.showAAForm(w, v, aaFormData{C: c, Name: title(v.P, c, v.C.ID), Mode: "equal", Picked: picked, Shares: map[string]string{}, RemTo: v.C.ID, Members: c.Members}, http.StatusOK)
}

func (p *Pages) showAAForm(w http.ResponseWriter, v *view, d aaFormData, status int) {
	v.Title, v.Data = v.P.T("msg.aa_new"), d
	p.render(w, status, "aa_new", v)
}

// aaCreate opens the collection: members ticked (the collector may tick
// themselves: their share is their own), equal shares with the remainder
// assigned to the member named, or the shares typed.
func (p *Pages) aaCreate(w http.ResponseWriter, r *http.Request, v *view) {
	ctx := r.Context()
	c, err := p.Svc.Store.Get(ctx, r.PathValue("id"), v.C.ID)
	if err != nil {
		p.refuse(w, r, v, err, "")
		return
	}
	r.ParseForm()
	d := aaFormData{C: c, Name: title(v.P, c, v.C.ID), Total: strings.TrimSpace(r.PostFormValue("total")), Memo: r.PostFormValue("memo"),
		Mode: r.PostFormValue("mode"), Picked: map[string]bool{}, Shares: map[string]string{}, RemTo: r.PostFormValue("remainder_to"), Members: c.Members}
	var members []string
	for _, id := range r.PostForm["member"] {
		d.Picked[id] = true
		members = append(members, id)
	}
	for _, m := range c.Members {
		d.Shares[m.ID] = strings.TrimSpace(r.PostFormValue("share_" + m.ID))
	}
	id, err := p.createAA(ctx, v.C.ID, d, members)
	if err != nil {
		if e, ok := err.(*Error); ok {
			v.Error, v.Code = v.P.T("msg.err."+e.Code), e.Code
			p.showAAForm(w, v, d, e.Status)
			return
		}
		p.refuse(w, r, v, err, "")
		return
	}
	http.Redirect(w, r, "/aa/"+id, http.StatusSeeOther)
}

func (p *Pages) createAA(ctx context.Context, me string, d aaFormData, members []string) (string, error) {
	total, err := money.ParseYuan(d.Total)
	if err != nil || total <= 0 {
		return "", ErrBadAmount
	}
	var set map[string]int64
	if d.Mode == "set" {
		set = map[string]int64{}
		for _, m := range members {
			a, err := money.ParseYuan(d.Shares[m])
			if err != nil || a <= 0 {
				return "", ErrBadSplit
			}
			set[m] = a
		}
	}
	shares, err := Split(total, members, set, d.RemTo)
	if err != nil {
		return "", err
	}
	return p.Svc.OpenAA(ctx, d.C.ID, me, total, d.Memo, shares)
}

// OpenAA opens an AA collection and posts it in its conversation.
func (s *Service) OpenAA(ctx context.Context, conv, collector string, total int64, memo string, shares []Share) (string, error) {
	id, err := s.Store.CreateAA(ctx, conv, collector, total, memo, shares)
	if err != nil {
		return "", err
	}
	a, err := s.Store.AA(ctx, id)
	if err != nil {
		return "", err
	}
	_, err = s.Post(ctx, Message{Conversation: conv, Sender: collector, Kind: KindAA, Body: a.Memo, Amount: total, Ref: "aa:" + id, State: AAOpen})
	return id, err
}

// CloseAA closes the collection (its collector only) and shows it closed.
func (s *Service) CloseAA(ctx context.Context, id, by string) error {
	if err := s.Store.CloseAA(ctx, id, by); err != nil {
		return err
	}
	a, err := s.Store.AA(ctx, id)
	if err != nil {
		return err
	}
	s.setState(ctx, a.Conversation, "aa:"+id, AAClosed)
	return nil
}

type aaData struct {
	A          AA
	Mine       Share
	HasShare   bool
	Collector  bool
	Paid, Due  int64
	Key        string
	CanPay     bool
	Conv       string
	StateText  string
	ShareTexts map[string]string
}

func (p *Pages) aaView(w http.ResponseWriter, r *http.Request, v *view) {
	p.showAA(w, r, v, r.PathValue("id"), http.StatusOK)
}

func (p *Pages) showAA(w http.ResponseWriter, r *http.Request, v *view, id string, status int) {
	ctx := r.Context()
	a, err := p.Svc.Store.AA(ctx, id)
	if err != nil {
		p.refuse(w, r, v, err, "")
		return
	}
	if _, err := p.Svc.Store.Get(ctx, a.Conversation, v.C.ID); err != nil {
		p.refuse(w, r, v, ErrAAUnknown, "") // not shown to outsiders
		return
	}
	d := aaData{A: a, Collector: a.Collector == v.C.ID, Conv: a.Conversation, StateText: v.P.T("msg.state." + a.State), ShareTexts: map[string]string{}}
	d.Mine, d.HasShare = a.ShareOf(v.C.ID)
	d.Paid, d.Due = a.Paid()
	_, perr := a.CheckPayable(v.C.ID)
	d.CanPay = perr == nil
	for _, s := range a.Shares {
		d.ShareTexts[s.Member] = v.P.T("msg.share." + s.State)
	}
	v.Title, v.Data = v.P.T("msg.aa_title"), d
	p.render(w, status, "aa", v)
}

func (p *Pages) aaClose(w http.ResponseWriter, r *http.Request, v *view) {
	id := r.PathValue("id")
	if err := p.Svc.CloseAA(r.Context(), id, v.C.ID); err != nil {
		if e, ok := err.(*Error); ok && e != ErrAAUnknown {
			v.Error, v.Code = v.P.T("msg.err."+e.Code), e.Code
			p.showAA(w, r, v, id, e.Status)
			return
		}
		p.refuse(w, r, v, err, "")
		return
	}
	http.Redirect(w, r, "/aa/"+id, http.StatusSeeOther)
}
