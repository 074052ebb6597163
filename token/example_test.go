package token_test

import (
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/magiclink-dev/magiclink/token"
)

// A backend that sends email mints a link with the private key; the gateway
// verifies it with the public key set.
func Example() {
	privateJWK, publicJWKS, err := token.GenerateKey(token.EdDSA, "2026-11")
	if err != nil {
		log.Fatal(err)
	}

	signer, err := token.ParseSigner(privateJWK)
	if err != nil {
		log.Fatal(err)
	}
	tok, err := signer.Sign(token.Claims{
		Subject:  "user_42",
		Audience: []string{"https://shop.example.com"},
		Expiry:   time.Now().Add(48 * time.Hour),
		Email:    "ann@example.com",
		Path:     "/cart",
	})
	if err != nil {
		log.Fatal(err)
	}
	link, err := token.Link("https://shop.example.com/cart?utm_source=email", "token", tok)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.HasPrefix(link, "https://shop.example.com/cart?utm_source=email&token=ey"))

	keys, err := token.ParseKeys(publicJWKS)
	if err != nil {
		log.Fatal(err)
	}
	verifier, err := token.NewVerifier(keys, token.Config{
		Audience:   "https://shop.example.com",
		Leeway:     token.DefaultLeeway,
		MaxLinkAge: token.DefaultMaxLinkAge,
	})
	if err != nil {
		log.Fatal(err)
	}
	header, claims, err := verifier.Verify(tok)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(header.KeyID, claims.Subject, claims.Path)
	// Output:
	// true
	// 2026-11 user_42 /cart
}
