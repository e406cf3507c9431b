//go:build !race

package authsvc

const raceEnabled = false
