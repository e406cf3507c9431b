package passport

import (
	"bufio"
	_ "embed"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

//go:embed common-passwords.txt
var commonPasswordsFile string

var (
	commonOnce sync.Once
	commonSet  map[string]struct{}
)

func commonPasswords() map[string]struct{} {
	commonOnce.Do(func() {
		commonSet = make(map[string]struct{}, 512)
		sc := bufio.NewScanner(strings.NewReader(commonPasswordsFile))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			commonSet[strings.ToLower(line)] = struct{}{}
		}
	})
	return commonSet
}

// StrengthRules are the password rules. Zero values take the defaults.
type StrengthRules struct {
	MinLength  int `yaml:"min-length"`  // default 10
	MaxLength  int `yaml:"max-length"`  // default 128
	MinClasses int `yaml:"min-classes"` // of lower, upper, digit, symbol; default 3
}

func (r StrengthRules) withDefaults() StrengthRules {
	if r.MinLength == 0 {
		r.MinLength = 10
	}
	if r.MaxLength == 0 {
		r.MaxLength = 128
	}
	if r.MinClasses == 0 {
		r.MinClasses = 3
	}
	return r
}

// PersonalData is what a password must not contain.
type PersonalData struct {
	LoginName string
	Mobile    string
	Birthday  string // YYYY-MM-DD, may be empty
}

// Violation codes, stable for the HTTP layer and the pages.
const (
	ViolationTooShort    = "too_short"
	ViolationTooLong     = "too_long"
	ViolationClasses     = "too_few_classes"
	ViolationLoginName   = "contains_login_name"
	ViolationMobile      = "contains_mobile"
	ViolationBirthday    = "contains_birthday"
	ViolationCommon      = "common_password"
	ViolationControlChar = "control_character"
)

var violationText = map[string]string{
	ViolationTooShort:    "is too short",
	ViolationTooLong:     "is too long",
	ViolationClasses:     "needs more kinds of characters (lower case, upper case, digits, symbols)",
	ViolationLoginName:   "contains the login name",
	ViolationMobile:      "contains the mobile number",
	ViolationBirthday:    "contains the birthday",
	ViolationCommon:      "is a commonly used password",
	ViolationControlChar: "contains control characters",
}

// WeakPasswordError lists every rule a new password breaks. It never
// carries the password.
type WeakPasswordError struct{ Violations []string }

func (e *WeakPasswordError) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = violationText[v]
	}
	return "the password " + strings.Join(parts, "; ")
}

// CheckStrength returns a *WeakPasswordError when password breaks a rule.
func CheckStrength(rules StrengthRules, password string, pd PersonalData) error {
	rules = rules.withDefaults()
	var v []string
	n := utf8.RuneCountInString(password)
	if n < rules.MinLength {
		v = append(v, ViolationTooShort)
	}
	if n > rules.MaxLength {
		v = append(v, ViolationTooLong)
	}
	var lower, upper, digit, symbol, ctrl bool
	for _, r := range password {
		switch {
		case unicode.IsControl(r):
			ctrl = true
		case unicode.IsLower(r):
			lower = true
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsDigit(r):
			digit = true
		default:
			symbol = true
		}
	}
	if ctrl {
		v = append(v, ViolationControlChar)
	}
	classes := 0
	for _, b := range []bool{lower, upper, digit, symbol} {
		if b {
			classes++
		}
	}
	if classes < rules.MinClasses {
		v = append(v, ViolationClasses)
	}
	lp := strings.ToLower(password)
	if name := strings.ToLower(strings.TrimSpace(pd.LoginName)); len(name) >= 3 && strings.Contains(lp, name) {
		v = append(v, ViolationLoginName)
	}
	if m := digitsOnly(pd.Mobile); len(m) >= 6 {
		// The whole number, or its last 8 or 6 digits (the parts people use).
		for _, frag := range []string{m, m[max(0, len(m)-8):], m[len(m)-6:]} {
			if strings.Contains(lp, frag) {
				v = append(v, ViolationMobile)
				break
			}
		}
	}
	if forms := birthdayForms(pd.Birthday); len(forms) > 0 {
		for _, f := range forms {
			if strings.Contains(lp, f) {
				v = append(v, ViolationBirthday)
				break
			}
		}
	}
	if isCommon(lp) {
		v = append(v, ViolationCommon)
	}
	if len(v) > 0 {
		return &WeakPasswordError{Violations: v}
	}
	return nil
}

func isCommon(lp string) bool {
	set := commonPasswords()
	if _, ok := set[lp]; ok {
		return true
	}
	// "Password123!" is "password" with decoration: strip trailing and
	// leading non-letters and look again.
	base := strings.TrimFunc(lp, func(r rune) bool { return !unicode.IsLetter(r) })
	if len(base) >= 4 {
		if _, ok := set[base]; ok {
			return true
		}
	}
	return false
}

func digitsOnly(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// birthdayForms returns the ways people write a birthday into a password.
func birthdayForms(bd string) []string {
	d := digitsOnly(bd)
	if len(d) != 8 {
		return nil
	}
	y, m, day := d[0:4], d[4:6], d[6:8]
	return []string{
		y + m + day, day + m + y, m + day + y, // 19900521, 21051990, 05211990
		y[2:] + m + day, day + m + y[2:], // 900521, 210590
		y + "-" + m + "-" + day, day + "." + m + "." + y, y + "/" + m + "/" + day,
	}
}
