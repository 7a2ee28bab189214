package launch

// RouterSecure asks the router at routerSock with HELLO whether it runs
// in secure mode (false when it cannot be reached in time), for the OCI
// runtime wrapper.
func RouterSecure(routerSock string) bool { return routerSecure(routerSock) }
