package claimtext

import "testing"

func TestHasControl(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"", false}, {"user_42", false}, {"Ada Lovelace", false}, {"café ☕", false},
		{"a\x00b", true}, {"a\nb", true}, {"a\x1fb", true}, {"a\x7fb", true},
		{"a\u0085b", true}, {"a\u009fb", true}, {"a\xffb", true}, {"a\u00a0b", false},
	}
	for _, tt := range tests {
		if got := HasControl(tt.s); got != tt.want {
			t.Errorf("HasControl(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}
