// Package jsonobj reads one JSON object (RFC 8259) in a single pass, without
// reflection: it validates the whole text, rejects duplicate member names,
// and hands each member's name and raw value to a callback, which decodes
// the values it wants.
package jsonobj

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrDuplicate is the error Members wraps when a member name repeats.
var ErrDuplicate = errors.New("duplicate member")

// Members calls fn for each member of the JSON object in data, in order,
// with the member's unescaped name and raw value, a substring of data.
// Anything but one valid JSON object (nested at most 10,000 deep, as
// encoding/json allows) is an error, and so are names that are not valid
// UTF-8 and duplicate names, compared after unescaping: their error wraps
// ErrDuplicate. The object is validated whole before fn is called; Members
// returns the first error fn returns.
func Members(data string, fn func(name, value string) error) error {
	var buf [16]member
	list, err := scanObject(data, buf[:0])
	if err != nil {
		return err
	}
	var seen [16]string
	names := seen[:0]
	for _, m := range list {
		name, err := String(m.name)
		if err != nil {
			return err
		}
		for _, n := range names {
			if n == name {
				return fmt.Errorf("%w %q", ErrDuplicate, truncate(name))
			}
		}
		names = append(names, name)
		if err := fn(name, m.value); err != nil {
			return err
		}
	}
	return nil
}

// member is the raw name and the raw value of a member of a JSON object.
type member struct{ name, value string }

// maxDepth is how deep arrays and objects may nest, the top level counting
// as one: encoding/json's limit.
const maxDepth = 10000

// scanObject checks in one pass that data is one valid JSON value and, when
// it is an object, appends its members to list.
func scanObject(data string, list []member) ([]member, error) {
	i := skipSpace(data, 0)
	object := i < len(data) && data[i] == '{'
	var end int
	if object {
		end, list = objectEnd(data, i, 0, list)
	} else {
		end = valueEnd(data, i, 0)
	}
	if end < 0 || skipSpace(data, end) != len(data) {
		return nil, errors.New("not JSON")
	}
	if !object {
		return nil, errors.New("not a JSON object")
	}
	return list, nil
}

func skipSpace(data string, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// valueEnd returns the index just past the valid JSON value that starts at
// data[i], inside depth arrays and objects, or -1 when none does.
func valueEnd(data string, i, depth int) int {
	if i >= len(data) {
		return -1
	}
	switch c := data[i]; {
	case c == '"':
		return stringEnd(data, i)
	case c == '{':
		end, _ := objectEnd(data, i, depth, nil)
		return end
	case c == '[':
		return arrayEnd(data, i, depth)
	case c == '-' || c >= '0' && c <= '9':
		return numberEnd(data, i)
	}
	for _, lit := range [...]string{"true", "false", "null"} {
		if strings.HasPrefix(data[i:], lit) {
			return i + len(lit)
		}
	}
	return -1
}

// objectEnd is valueEnd for the object that starts at data[i]. When list is
// not nil, it also returns list with the object's members appended.
func objectEnd(data string, i, depth int, list []member) (int, []member) {
	if depth == maxDepth {
		return -1, nil
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return i + 1, list
	}
	for {
		name := i
		if i = stringEnd(data, i); i < 0 {
			return -1, nil
		}
		nameEnd := i
		if i = skipSpace(data, i); i >= len(data) || data[i] != ':' {
			return -1, nil
		}
		value := skipSpace(data, i+1)
		if i = valueEnd(data, value, depth+1); i < 0 {
			return -1, nil
		}
		if list != nil {
			list = append(list, member{data[name:nameEnd], data[value:i]})
		}
		if i = skipSpace(data, i); i >= len(data) {
			return -1, nil
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return i + 1, list
		default:
			return -1, nil
		}
	}
}

// arrayEnd is valueEnd for the array that starts at data[i].
func arrayEnd(data string, i, depth int) int {
	if depth == maxDepth {
		return -1
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		return i + 1
	}
	for {
		if i = valueEnd(data, i, depth+1); i < 0 {
			return -1
		}
		if i = skipSpace(data, i); i >= len(data) {
			return -1
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case ']':
			return i + 1
		default:
			return -1
		}
	}
}

// stringEnd is valueEnd for a string: no control characters, and only the
// escapes of RFC 8259 §7. Its bytes may be invalid UTF-8, as encoding/json
// allows; String checks those of the strings that are read.
func stringEnd(data string, i int) int {
	if i >= len(data) || data[i] != '"' {
		return -1
	}
	for i++; i < len(data); i++ {
		switch c := data[i]; {
		case c == '"':
			return i + 1
		case c < 0x20:
			return -1
		case c == '\\':
			if i++; i == len(data) {
				return -1
			}
			switch data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+5 > len(data) || !isHex(data[i+1]) || !isHex(data[i+2]) || !isHex(data[i+3]) || !isHex(data[i+4]) {
					return -1
				}
				i += 4
			default:
				return -1
			}
		}
	}
	return -1
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// numberEnd is valueEnd for a number: an optional minus, an integer part
// without leading zeros, and optional fraction and exponent parts, each with
// at least one digit.
func numberEnd(data string, i int) int {
	if data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && data[i] >= '1' && data[i] <= '9':
		i = digitsEnd(data, i)
	default:
		return -1
	}
	if i < len(data) && data[i] == '.' {
		if i = digitsEnd(data, i+1); i < 0 {
			return -1
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i = digitsEnd(data, i); i < 0 {
			return -1
		}
	}
	return i
}

// digitsEnd returns the index just past the decimal digits at data[i:], or
// -1 when there are none.
func digitsEnd(data string, i int) int {
	start := i
	for i < len(data) && data[i] >= '0' && data[i] <= '9' {
		i++
	}
	if i == start {
		return -1
	}
	return i
}

// String decodes raw, a JSON value that Members passed on, as
// encoding/json decodes it into a string. A value that is not a string, or
// not valid UTF-8 (RFC 8259 §8.1), is an error.
func String(raw string) (string, error) {
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

// Bool decodes raw, a JSON value that Members passed on, that must be true or
// false.
func Bool(raw string) (bool, error) {
	switch raw {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errors.New("not true or false")
}

// truncate shortens attacker-controlled text for an error message.
func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
