//go:build race

package authsvc

// raceEnabled: the race detector slows captcha rendering ~6×; the HTTP
// replica test then posts fewer guesses (the passport package's own test
// posts the full 1,000 either way).
const raceEnabled = true
