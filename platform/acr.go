package platform

import (
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"golang.org/x/oauth2"

	"github.com/egate-bank/egate/authsvc/oidcop"
)

// acrValues asks the passport for level n.
func acrValues(n int) rp.URLParamOpt {
	return func() []oauth2.AuthCodeOption {
		return []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("acr_values", oidcop.ACR(n))}
	}
}
