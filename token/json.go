package token

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// members calls fn for each member of the JSON object in data, in order,
// with a decoder positioned at the member's value; fn must consume the value
// (skipValue does). Duplicate names, after unescaping, are an error, as is
// anything but one object.
func members(data []byte, fn func(name string, dec *json.Decoder) error) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return errors.New("not JSON")
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errors.New("not a JSON object")
	}
	var seen [16]string
	names := seen[:0]
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return errors.New("not JSON")
		}
		name, _ := tok.(string)
		for _, n := range names {
			if n == name {
				return fmt.Errorf("duplicate member %q", truncate(name))
			}
		}
		names = append(names, name)
		if err := fn(name, dec); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return errors.New("not JSON")
	}
	if _, err := dec.Token(); err == nil {
		return errors.New("data after the JSON object")
	}
	return nil
}

// skipValue consumes one JSON value.
func skipValue(dec *json.Decoder) error {
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return errors.New("not JSON")
	}
	return nil
}

// stringValue decodes a JSON string; anything else is an error naming the member.
func stringValue(dec *json.Decoder, name string) (string, error) {
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return "", errors.New("not JSON")
	}
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", fmt.Errorf("%s is not a string", name)
	}
	return s, nil
}

// maxNumericDate is the last second of year 9999.
const maxNumericDate = 253402300799

// dateValue decodes a NumericDate (RFC 7519 §2): a JSON number of seconds
// since the epoch, possibly fractional, between 0 and the end of year 9999.
func dateValue(dec *json.Decoder, name string) (time.Time, error) {
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return time.Time{}, errors.New("not JSON")
	}
	if len(raw) == 0 || !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		return time.Time{}, fmt.Errorf("%s is not a number", name)
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f < 0 || f > maxNumericDate {
		return time.Time{}, fmt.Errorf("%s is out of range", name)
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
}

// truncate shortens attacker-controlled text for an error message.
func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
