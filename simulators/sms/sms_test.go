package sms

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	authsms "github.com/egate-bank/egate/authsvc/sms"
	"github.com/egate-bank/egate/internal/store/storetest"
)

func TestPageListsMessages(t *testing.T) {
	sink := authsms.NewSink(storetest.SQLite(t), nil)
	ctx := context.Background()
	for _, m := range []authsms.Message{{To: "13800005678", Body: "first <b>"}, {To: "13900001234", Body: "second"}} {
		if err := sink.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(Handler(sink))
	defer srv.Close()
	cases := []struct {
		name, path string
		want       []string
		not        []string
	}{
		{"page", "/", []string{"first &lt;b&gt;", "second", "13800005678"}, []string{"first <b>"}},
		{"json", "/messages.json", []string{`"body":"second"`, `"to":"13800005678"`}, nil},
		{"json for one phone", "/messages.json?to=13900001234", []string{"second"}, []string{"first"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Get(srv.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, w := range tc.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("%s lacks %q:\n%s", tc.path, w, b)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(string(b), n) {
					t.Errorf("%s contains %q", tc.path, n)
				}
			}
		})
	}
	resp, _ := http.Get(srv.URL + "/messages.json")
	var msgs []authsms.Sent
	json.NewDecoder(resp.Body).Decode(&msgs)
	resp.Body.Close()
	if len(msgs) != 2 || msgs[0].Body != "second" {
		t.Fatalf("newest first: %+v", msgs)
	}
}
