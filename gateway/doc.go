// Package gateway is the only place that knows HTTP: routing, tokens and roles, CORS,
// security headers, body limits, JSON errors, the embedded web pages and the operations
// endpoints. It turns problem.Error kinds into statuses. media, chat and segment reach
// it only through the small interfaces declared here, one file per capability.
package gateway
