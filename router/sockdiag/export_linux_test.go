package sockdiag

// OneDump is the single dump TCP makes for both families, without its
// fallback to a dump per family.
func OneDump(states uint32) ([]Socket, error) { return dump(bothFamiliesRequest(states)) }
