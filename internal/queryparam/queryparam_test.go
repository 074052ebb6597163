package queryparam

import (
	"strings"
	"testing"
)

func TestFind(t *testing.T) {
	tests := []struct {
		rawQuery, name string
		wantValue      string
		wantN          int
	}{
		{"", "token", "", 0},
		{"a=1", "token", "", 0},
		{"token=abc", "token", "abc", 1},
		{"a=1&token=abc.def.ghi&b=2", "token", "abc.def.ghi", 1},
		{"token=first&token=second", "token", "first", 2},
		{"token=a&tok%65n=b&token=c", "token", "a", 3},
		{"tok%65n=abc", "token", "abc", 1},
		{"tok%6", "tok%6", "", 1},
		{"token=a%2Eb", "token", "a.b", 1},
		{"token=a+b", "token", "a b", 1},
		{"token=%zz", "token", "%zz", 1},
		{"token", "token", "", 1},
		{"token=", "token", "", 1},
		{"token=a=b", "token", "a=b", 1},
		{"TOKEN=abc&tokens=x&xtoken=y", "token", "", 0},
		{"my+key=v&my%20key=w", "my key", "v", 2},
		{"a=1;token=abc", "token", "", 0},
		{"&&token=abc&&", "token", "abc", 1},
	}
	for _, tt := range tests {
		value, n := Find(tt.rawQuery, tt.name)
		if value != tt.wantValue || n != tt.wantN {
			t.Errorf("Find(%q, %q) = %q, %d; want %q, %d", tt.rawQuery, tt.name, value, n, tt.wantValue, tt.wantN)
		}
	}
}

func TestRemove(t *testing.T) {
	tests := []struct {
		rawQuery, name, want string
	}{
		{"", "token", ""},
		{"token=abc", "token", ""},
		{"a=1&token=abc&b=2", "token", "a=1&b=2"},
		{"z=9&a=1&token=abc&m=%41%42&n=a+b&flag", "token", "z=9&a=1&m=%41%42&n=a+b&flag"},
		{"token=a&tok%65n=b&token", "token", ""},
		{"a=1&&b=2&", "token", "a=1&b=2"},
		{"a=%zz&token=x", "token", "a=%zz"},
		{"tokens=1&TOKEN=2&=3", "token", "tokens=1&TOKEN=2&=3"},
		{"code=x&state=y", "code", "state=y"},
	}
	for _, tt := range tests {
		if got := Remove(tt.rawQuery, tt.name); got != tt.want {
			t.Errorf("Remove(%q, %q) = %q, want %q", tt.rawQuery, tt.name, got, tt.want)
		}
		if _, n := Find(Remove(tt.rawQuery, tt.name), tt.name); n != 0 {
			t.Errorf("Remove(%q, %q) leaves %d occurrences", tt.rawQuery, tt.name, n)
		}
	}
}

func TestSet(t *testing.T) {
	tests := []struct {
		rawQuery, name, value, want string
	}{
		{"", "token", "T", "token=T"},
		{"a=1", "token", "a.b-c_d", "a=1&token=a.b-c_d"},
		{"a=1;b=2", "token", "T", "a=1;b=2&token=T"},
		{"a=%zz", "token", "T", "a=%zz&token=T"},
		{"q=a+b&e=&f", "token", "T", "q=a+b&e=&f&token=T"},
		{"token=old&x=1&token=older", "token", "T", "token=T&x=1"},
		{"%74oken=old", "token", "T", "token=T"},
		{"a=1&&b=2&", "token", "T", "a=1&b=2&token=T"},
		{"", "token", "a b&c", "token=a+b%26c"},
	}
	for _, tt := range tests {
		got := Set(tt.rawQuery, tt.name, tt.value)
		if got != tt.want {
			t.Errorf("Set(%q, %q, %q) = %q, want %q", tt.rawQuery, tt.name, tt.value, got, tt.want)
		}
		if v, n := Find(got, tt.name); v != tt.value || n != 1 {
			t.Errorf("Find(Set(%q)) = %q, %d; want %q, 1", tt.rawQuery, v, n, tt.value)
		}
	}
}

// TestSplit checks where Split cuts the query Set makes around the value (TestSet checks what Set
// makes of the two parts).
func TestSplit(t *testing.T) {
	tests := []struct {
		rawQuery, name, before, after string
	}{
		{"", "token", "token=", ""},
		{"a=1", "token", "a=1&token=", ""},
		{"a=1;b=2", "token", "a=1;b=2&token=", ""},
		{"token=old", "token", "token=", ""},
		{"token=old&x=1&token=older", "token", "token=", "&x=1"},
		{"z=9&%74oken=old&a=1", "token", "z=9&token=", "&a=1"},
		{"a=1&&token=old&&b=2&", "token", "a=1&token=", "&b=2"},
		{"q=a+b&e=&f", "t", "q=a+b&e=&f&t=", ""},
		{"tokens=1&TOKEN=2", "token", "tokens=1&TOKEN=2&token=", ""},
		{"my+key=v&b=2", "my key", "my+key=", "&b=2"},
	}
	for _, tt := range tests {
		before, after := Split(tt.rawQuery, tt.name)
		if before != tt.before || after != tt.after {
			t.Errorf("Split(%q, %q) = %q, %q; want %q, %q", tt.rawQuery, tt.name, before, after, tt.before, tt.after)
		}
	}
}

func TestCheckName(t *testing.T) {
	for _, name := range []string{"token", "t", "a-b_c.d~e", "T0K3N"} {
		if err := CheckName(name); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range []string{"", "to ken", "to%6ben", "a&b", "a=b", "a+b", "tökén", "a#b", "a;b"} {
		err := CheckName(name)
		if err == nil {
			t.Errorf("CheckName(%q) = nil, want an error", name)
			continue
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("CheckName(%q) error spans lines: %q", name, err)
		}
	}
}
