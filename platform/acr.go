package platform

import (
	"strconv"

	"golang.org/x/oauth2"
)

type oauth2AuthCodeOption = oauth2.AuthCodeOption

// acrValues asks for level n.
func acrValues(n int) []oauth2.AuthCodeOption {
	return []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("acr_values", "urn:egate:loa:"+strconv.Itoa(n))}
}
