package mall

import (
	"errors"
	"net/http"
)

// Error is a refusal of the mall: a stable code, the HTTP status of the
// pages' answer and a sentence for the operator or the log. The customer's
// pages show the catalogue's sentence for the code (message key
// "mall.err.<code>"). A refusal changes nothing.
type Error struct {
	Code   string
	Status int
	msg    string
}

func (e *Error) Error() string { return e.msg }

// The mall's refusals.
var (
	ErrInvalid          = &Error{"invalid_request", http.StatusBadRequest, "the request is incomplete or malformed"}
	ErrNotFound         = &Error{"not_found", http.StatusNotFound, "no such merchant, product or order"}
	ErrOutOfStock       = &Error{"out_of_stock", http.StatusConflict, "not enough of the product is in stock"}
	ErrCartEmpty        = &Error{"cart_empty", http.StatusUnprocessableEntity, "the cart is empty"}
	ErrCartChanged      = &Error{"cart_changed", http.StatusConflict, "the cart changed after the payment was authorized"}
	ErrOtherMerchant    = &Error{"cart_other_merchant", http.StatusConflict, "the cart holds another merchant's products: pay for them or empty it first"}
	ErrMerchantNotOpen  = &Error{"merchant_not_open", http.StatusConflict, "the merchant is not admitted to the mall"}
	ErrOrderState       = &Error{"order_state", http.StatusConflict, "the order is not in a state that allows this"}
	ErrRefundTooLarge   = &Error{"refund_above_paid", http.StatusUnprocessableEntity, "the refund is more than was paid and not yet refunded"}
	ErrAlreadyApplied   = &Error{"already_applied", http.StatusConflict, "this customer has already applied as a merchant"}
	ErrIneligible       = &Error{"merchant_ineligible", http.StatusUnprocessableEntity, "the application breaks the admission rules and cannot be approved"}
	ErrRiskNotAccepted  = &Error{"risk_not_accepted", http.StatusConflict, "the application has risk flags: approve it only with the flags accepted"}
	ErrAlreadyReviewed  = &Error{"already_reviewed", http.StatusConflict, "the application was already approved or rejected"}
	ErrNoReason         = &Error{"reason_required", http.StatusBadRequest, "a rejection needs a reason"}
	ErrNotMerchantOwner = &Error{"not_merchant", http.StatusForbidden, "only the merchant's own staff may do this"}
)

// Code is the stable code of a mall refusal in err's chain, or "".
func Code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
