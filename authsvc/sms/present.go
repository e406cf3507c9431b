package sms

// Label is the tool's name for customers (the passport's login pages).
func (factor) Label() string { return "SMS code" }
