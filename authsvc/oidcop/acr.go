package oidcop

import (
	"strconv"
	"strings"
)

// MaxLevel is the highest authentication level (DESIGN.md §2).
const MaxLevel = 5

// ACRPrefix: the acr of a login that reached level N is "urn:egate:loa:N".
const ACRPrefix = "urn:egate:loa:"

// ACR returns the acr value of level.
func ACR(level int) string { return ACRPrefix + strconv.Itoa(level) }

// ParseACR returns the level of an acr value, or 0 if it is not one of ours.
func ParseACR(s string) int {
	n, ok := strings.CutPrefix(s, ACRPrefix)
	if !ok {
		return 0
	}
	l, err := strconv.Atoi(n)
	if err != nil || l < 1 || l > MaxLevel || strconv.Itoa(l) != n {
		return 0
	}
	return l
}

// RequiredLevel is the level a login must reach: the client's minimum,
// raised (never lowered) by the highest of our acr values the request asks
// for. Unknown acr values are ignored (they are voluntary claims).
func RequiredLevel(clientMin int, acrValues []string) int {
	l := clientMin
	for _, v := range acrValues {
		if n := ParseACR(v); n > l {
			l = n
		}
	}
	return l
}
