package event

import "strings"

// EmailKey is id with the address of an e-mail key (email:ADDR) in lower case, as
// segment keeps a profile's ids and an order's customer e-mail: an agent looking a
// customer up, an import or a chat token naming one as its viewer may write it
// otherwise ("email:Ann@Shop.com"), and every part that compares viewer ids compares
// this.
func EmailKey(id string) string {
	const prefix = "email:"
	if len(id) <= len(prefix) || id[0]|0x20 != 'e' || !strings.EqualFold(id[:len(prefix)], prefix) {
		return id // most ids, at the cost of a byte's look: this runs for every event
	}
	if k := prefix + strings.ToLower(id[len(prefix):]); k != id {
		return k
	}
	return id // already so: no copy
}
