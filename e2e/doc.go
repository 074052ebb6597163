// Package e2e holds the end-to-end tests of magiclink: headless Chromium, driven with chromedp,
// against Caddy with the magic_link handler in front of a small app. They need /usr/bin/chromium;
// without it they are skipped, except in CI (CI=true), where they fail.
package e2e
