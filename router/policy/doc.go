// Package policy holds the connection policy of secure mode: an ordered
// list of rules, each allowing or denying connections by source (a
// container or an overlay CIDR) and destination (an overlay CIDR and a port
// range). The first rule that matches decides; no match allows. The kernel
// evaluates the rules and counts their hits (package secure); a Set is what
// the router keeps, shows and saves to a file atomically.
//
// Rules read as text:
//
//	deny from 198.19.2.0/24 to 198.19.1.0/24 port 5432
//	allow from container h2-c1 to 198.19.1.2/32 port 8000-8100
//	deny to 198.19.3.0/24
//
// A missing "from" matches every source, a missing "to" every destination,
// a missing "port" every port.
package policy
