// Package setting gives every package the same way to report a bad setting (the key,
// the value, what is allowed) and to declare list flags. It imports nothing of liveroom.
package setting
