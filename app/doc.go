// Package app wires liveroom together: it builds media, chat and segment from the
// configuration, connects them through the event tap, hands them to the gateway, serves
// HTTP(S) and drains on shutdown. cmd/liveroom calls it; nothing imports it back.
package app
