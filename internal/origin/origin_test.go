package origin

import (
	"net/url"
	"testing"
)

func TestOf(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://example.com/a?b#c", "https://example.com"},
		{"https://EXAMPLE.com:443/", "https://example.com"},
		{"HTTP://example.com:80/x", "http://example.com"},
		{"http://example.com:8080/", "http://example.com:8080"},
		{"https://example.com:80/", "https://example.com:80"},
		{"http://127.0.0.1:9000", "http://127.0.0.1:9000"},
		{"https://[::1]:443/", "https://[::1]"},
		{"https://example.com:8443", "https://example.com:8443"},
		{"http://example.com:443/x", "http://example.com:443"},
		{"HTTPS://user:pw@Example.com/", "https://example.com"},
		{"http://[::1]:8080/", "http://[::1]:8080"},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := Of(u); got != tt.want {
			t.Errorf("Of(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
