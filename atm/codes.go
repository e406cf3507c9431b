package atm

// Result and error codes (PROTOCOL.md §7): their names, the meanings an
// operator reads, and DeviceError, the error a non-OK code becomes.

import "fmt"

// Code is a result or error code (PROTOCOL.md §7).
type Code uint8

// Result codes.
const (
	OK Code = iota
	CodeBadMessage
	CodeUnknownType
	CodeBusy
	CodeCashAtExit
	CodeCannotMakeAmount
	CodeCassetteMissing
	CodeCassetteEmpty
	CodeJam
	CodeTooManyRejects
	CodeShutterFault
	CodeTxnConflict
	CodeUnknownTxn
	CodeTimeout
	CodeNotPresented
	CodeRetractCountUnknown
	CodeVersion
	CodeCancelled
	CodePowerLoss
	CodeInProgress
	CodeNoSession
	CodeHardware
	// CodeUnsupported refuses a request that needs a capability the ATM did
	// not advertise in its HELLO reply (e.g. SHOW_QR in a mode it lacks);
	// nothing was done.
	CodeUnsupported
)

var codeNames = [...]string{"OK", "BAD_MESSAGE", "UNKNOWN_TYPE", "BUSY", "CASH_AT_EXIT",
	"CANNOT_MAKE_AMOUNT", "CASSETTE_MISSING", "CASSETTE_EMPTY", "JAM", "TOO_MANY_REJECTS",
	"SHUTTER_FAULT", "TXN_CONFLICT", "UNKNOWN_TXN", "TIMEOUT", "NOT_PRESENTED",
	"RETRACT_COUNT_UNKNOWN", "VERSION", "CANCELLED", "POWER_LOSS", "IN_PROGRESS", "NO_SESSION", "HARDWARE",
	"UNSUPPORTED"}

// codeMeanings are PROTOCOL.md §7's explanations, word for word
// (TestCodesMatchProtocol), for operators' messages.
var codeMeanings = [...]string{
	"done",
	"payload does not parse or is inconsistent",
	"message type not known",
	"another operation is running",
	"notes lie in the tray; nothing dispensed",
	"note list does not make the amount, or too few notes",
	"a named cassette is not fitted",
	"a named cassette is empty",
	"the transport jammed; counts tell how far it got",
	"more than the reject limit; dispense abandoned",
	"shutter failed to open or close",
	"known txn id with different content",
	"txn id never accepted",
	"customer or mechanism timeout",
	"nothing at the exit for this txn (e.g. already taken)",
	"retracted, count unknown",
	"no common protocol version",
	"customer cancelled",
	"operation interrupted by power loss; counts from the journal",
	"the operation for this txn id is still running",
	"HELLO first",
	"other device fault",
	"the request needs a capability the ATM did not advertise in HELLO; nothing done",
}

// Meaning explains the code in words (PROTOCOL.md §7), or "" for a code
// this version does not know.
func (c Code) Meaning() string {
	if int(c) < len(codeMeanings) {
		return codeMeanings[c]
	}
	return ""
}

func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("CODE_%d", uint8(c))
}

// DeviceError is a non-OK code reported by the ATM. Use errors.As to get the
// code and, where the ATM sent one, the record with the counts.
type DeviceError struct {
	Op     MsgType
	Code   Code
	Msg    string
	Record *TxnRecord
}

func (e *DeviceError) Error() string {
	s := fmt.Sprintf("atm: %s: %s", e.Op, e.Code)
	if e.Msg != "" {
		s += ": " + e.Msg
	} else if m := e.Code.Meaning(); m != "" {
		s += ": " + m
	}
	return s
}

// Is lets errors.Is(err, CodeJam) style checks work through CodeError values.
func (e *DeviceError) Is(target error) bool {
	t, ok := target.(codeErr)
	return ok && Code(t) == e.Code
}

type codeErr Code

func (c codeErr) Error() string { return Code(c).String() }

// ErrCode returns a sentinel for errors.Is(err, atm.ErrCode(atm.CodeJam)).
func ErrCode(c Code) error { return codeErr(c) }
