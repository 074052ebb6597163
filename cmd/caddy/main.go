// Command caddy is Caddy with its standard modules and the magic_link
// handler compiled in.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/magiclink-dev/magiclink/caddymodule"
)

func main() {
	caddycmd.Main()
}
