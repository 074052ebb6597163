package token

import (
	"fmt"
	"strconv"
	"time"

	"github.com/magiclink-dev/magiclink/internal/jsonobj"
)

// stringValue decodes a member's raw value that must be a string.
func stringValue(raw, name string) (string, error) {
	s, err := jsonobj.String(raw)
	if err != nil {
		return "", fmt.Errorf("%s is not a string of valid UTF-8", name)
	}
	return s, nil
}

// boolValue decodes a member's raw value that must be true or false.
func boolValue(raw, name string) (bool, error) {
	b, err := jsonobj.Bool(raw)
	if err != nil {
		return false, fmt.Errorf("%s is not true or false", name)
	}
	return b, nil
}

// maxNumericDate is the last second of year 9999.
const maxNumericDate = 253402300799

// dateValue decodes a NumericDate (RFC 7519 §2): a JSON number of seconds
// since the epoch, possibly fractional, between 0 and the end of year 9999.
func dateValue(raw, name string) (time.Time, error) {
	if len(raw) == 0 || !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		return time.Time{}, fmt.Errorf("%s is not a number", name)
	}
	f, err := strconv.ParseFloat(raw, 64)
	if err != nil || f < 0 || f > maxNumericDate {
		return time.Time{}, fmt.Errorf("%s is out of range", name)
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
}
