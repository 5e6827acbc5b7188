package wire

import (
	"context"
	"errors"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
)

// errCode is the Kafka error code to put on the wire for err: the code of
// the *kerr.Error it wraps, 0 for nil, REQUEST_TIMED_OUT when a Backend
// call ran out of its request's time, and UNKNOWN_SERVER_ERROR for
// anything else (a bug or an I/O failure the client cannot act on).
func errCode(err error) int16 {
	if err == nil {
		return 0
	}
	if ke := (*kerr.Error)(nil); errors.As(err, &ke) && ke != nil {
		return ke.Code
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return kerr.RequestTimedOut.Code
	}
	return kerr.UnknownServerError.Code
}

// errMessage is the error message for APIs that carry one: err's text,
// which says what went wrong beyond the code, or nil for success. Clients
// print the code's name and description next to the message, so the
// wrapped *kerr.Error's own text is cut from its end rather than said
// twice.
func errMessage(err error) *string {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if ke := (*kerr.Error)(nil); errors.As(err, &ke) && ke != nil {
		msg = strings.TrimSuffix(msg, ": "+ke.Error())
	}
	return &msg
}

// errAt returns errs[i], or an error when the Backend answered fewer
// results than it was asked for, so a Backend bug shows up as
// UNKNOWN_SERVER_ERROR on the affected items instead of a panic.
func errAt(errs []error, i int) error {
	if i < len(errs) {
		return errs[i]
	}
	return errBackendShortAnswer
}

var errBackendShortAnswer = errors.New("wire: backend returned fewer results than requests")
