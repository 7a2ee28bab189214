// Package oci is slim's OCI runtime wrapper: engines (podman, containerd,
// Docker, Kubernetes through a RuntimeClass) run it in place of runc. On
// `create` and `run` it reads the container's bundle, decides whether the
// container uses Slim (an annotation, an environment variable, or the
// host-wide default) and, when the image's C library can take the shim,
// mounts the router's directory (which holds the shim) and sets the
// preload in the container's environment; on `exec` it does the same for
// the new process. Containers whose runtime makes their network namespace
// itself (Docker's --network none, ctr run) are attached to Slim's
// network by OCI hooks that run the CNI plugin. Then it runs the real
// runtime with the arguments it was given. It never fails a container
// because of Slim: whatever it cannot do is one line in its log, and the
// container runs as it would have (over the overlay). docs/oci.md.
package oci
