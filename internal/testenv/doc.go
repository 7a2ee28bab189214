// Package testenv decides what a test may skip.
//
// Root integration tests need root, tools that `make deps` installs and
// kernel features. Outside CI a missing prerequisite skips the test. In
// strict mode (SLIM_TEST_STRICT=1, which .ci/run sets through make test) a
// missing tool or root is a failure, because `make deps` should have
// provided it; only a kernel feature the machine lacks may skip, and the
// skip names it ("kernel feature missing: …").
package testenv
