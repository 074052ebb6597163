package token

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// members calls fn for each member of the JSON object in data, in order,
// with the member's raw value. Anything but one valid JSON object is an
// error, and so are duplicate names (compared after unescaping). Names and
// values are substrings of data.
func members(data string, fn func(name, value string) error) error {
	if !json.Valid([]byte(data)) {
		return errors.New("not JSON")
	}
	i := skipSpace(data, 0)
	if data[i] != '{' {
		return errors.New("not a JSON object")
	}
	var seen [16]string
	names := seen[:0]
	for i = skipSpace(data, i+1); data[i] != '}'; i = skipSpace(data, i) {
		if data[i] == ',' {
			i = skipSpace(data, i+1)
		}
		end := valueEnd(data, i)
		name, err := stringOf(data[i:end])
		if err != nil {
			return err
		}
		for _, n := range names {
			if n == name {
				return fmt.Errorf("duplicate member %q", truncate(name))
			}
		}
		names = append(names, name)
		i = skipSpace(data, skipSpace(data, end)+1) // past the colon
		end = valueEnd(data, i)
		if err := fn(name, data[i:end]); err != nil {
			return err
		}
		i = end
	}
	return nil
}

func skipSpace(data string, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// valueEnd returns the index just past the value starting at data[i], in
// data already known to be valid JSON.
func valueEnd(data string, i int) int {
	depth := 0
	for ; i < len(data); i++ {
		switch data[i] {
		case '"':
			for i++; data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1
			}
			if depth < 0 {
				return i
			}
		case ',', ' ', '\t', '\n', '\r', ':':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}

// stringOf decodes a raw JSON value that must be a string of valid UTF-8
// (RFC 8259 §8.1).
func stringOf(raw string) (string, error) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", errors.New("not a string")
	}
	body := raw[1 : len(raw)-1]
	if !utf8.ValidString(body) {
		return "", errors.New("not valid UTF-8")
	}
	if !strings.Contains(body, `\`) {
		return body, nil
	}
	var s string
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return "", errors.New("not a string")
	}
	return s, nil
}

// stringValue decodes a member's raw value that must be a string.
func stringValue(raw, name string) (string, error) {
	s, err := stringOf(raw)
	if err != nil {
		return "", fmt.Errorf("%s is not a string of valid UTF-8", name)
	}
	return s, nil
}

// boolValue decodes a member's raw value that must be true or false.
func boolValue(raw, name string) (bool, error) {
	switch raw {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("%s is not true or false", name)
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

// truncate shortens attacker-controlled text for an error message.
func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
